"""A seeded model of a person doing a routine with a handled clamp roller.

The person is a handful of habits drawn from published figures (ROUTINE.md):
a preferred cadence (33 +/- 10 strokes a minute, kept within 15-45), a stroke
length, a squeeze force around 130 N, reps that press the muscle into the
roller, pauses between steps. From those habits and the routine, a *script*
is written: the roller's travel along the thigh, its placement around the
thigh, its twist, the squeeze force, and the ground truth of every step
(strokes, reps, active rolling time, trigger points).

The physics of what the pod then senses lives in :mod:`.world`; this module
only decides what the person does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..routine.spec import Routine, Step
from ..scenarios import PERSON_SCENARIOS

FS = 400.0  # Hz: the script's time base, finer than any IMU rate we emulate

SCENARIOS = PERSON_SCENARIOS


@dataclass(frozen=True)
class Habits:
    """What differs from one person (and one session) to the next."""

    cadence_spm: float  # preferred strokes per minute
    cadence_jitter: float  # relative stroke-to-stroke variation
    stroke_cm: float  # one-way travel of a typical stroke
    stroke_jitter: float
    roll_force_n: float  # squeeze while rolling
    hold_force_n: float  # squeeze while holding a trigger point
    rep_rise_n: float  # extra force as the quadriceps contract into the roller
    rep_seconds: float  # one flex-straighten-relax
    rep_gap_s: float  # rest between reps
    pause_s: float  # between steps
    hesitation_p: float  # chance a stroke has a dwell at its far end or mid-way
    mid_pause_p: float  # chance a roll step has a pause of a few seconds in the middle
    twist_deg: float  # twisting of the roller while rolling the lower thigh
    curvature_rad_per_m: float  # how much the frame tilts per metre of travel
    thigh_slope_deg: float
    tendon_force_n: float
    # Optional quirks, used by the hard cases (sim/hard_cases.py). The defaults are what
    # every drawn person does, so a seed gives the same session with or without them.
    dwell_range_s: tuple[float, float] = (0.3, 0.9)  # length of a hesitation
    mid_pause_range_s: tuple[float, float] = (2.0, 4.0)
    twist_every_roll: bool = False  # twist on every roll step, not only the lower thigh
    twist_free_period_s: float = 0.0  # > 0: twisting at its own rhythm, not in step with the strokes
    rep_top_s: float = 0.0  # holding the straightened leg at the top of each rep
    partial_rep_p: float = 0.0  # chance a rep is only partly done (it still counts)
    partial_rep_scale: tuple[float, float] = (0.4, 0.7)  # a partial rep's share of a full one
    twitch_p: float = 0.0  # chance of a small twitch between reps (it does not count)
    points_per_release: int = 0  # trigger points per release step; 0 keeps the routine's number
    reposition_style: str = "lift"  # "lift": ease off and slide; "adjust": keep some pressure, search, overshoot
    fidget_rests: bool = False  # shift, grab the handles and jiggle the leg in the pauses between steps

    @classmethod
    def draw(cls, rng: np.random.Generator, scenario: str = "normal") -> "Habits":
        cadence = float(np.clip(rng.normal(33.0, 10.0), 15.0, 45.0))
        return cls(
            cadence_spm=cadence,
            cadence_jitter=float(rng.uniform(0.05, 0.15)),
            stroke_cm=float(rng.uniform(10.0, 22.0)),
            stroke_jitter=float(rng.uniform(0.08, 0.2)),
            roll_force_n=float(rng.uniform(80.0, 150.0)),
            hold_force_n=float(rng.uniform(70.0, 130.0)),
            rep_rise_n=float(rng.uniform(25.0, 60.0)),
            rep_seconds=float(rng.uniform(1.6, 3.2)),
            rep_gap_s=float(rng.uniform(0.6, 1.8)),
            pause_s=float(rng.uniform(3.0, 7.0)),
            hesitation_p=float(rng.uniform(0.0, 0.15)),
            mid_pause_p=float(rng.uniform(0.0, 0.4)),
            twist_deg=float(rng.uniform(8.0, 25.0)),
            curvature_rad_per_m=float(rng.uniform(0.6, 1.6)) * rng.choice([-1.0, 1.0]),
            thigh_slope_deg=float(rng.uniform(-5.0, 15.0)),
            tendon_force_n=float(rng.uniform(110.0, 150.0) if scenario == "heavy-tendon" else rng.uniform(30.0, 50.0)),
        )


@dataclass
class StepTruth:
    """What really happened in one step: the yardstick for the counts."""

    index: int
    id: str
    kind: str
    start: float
    end: float
    strokes: int = 0
    reps: int = 0
    points: int = 0
    active_s: float = 0.0
    skipped: bool = False
    stroke_ends: list[float] = field(default_factory=list)
    rep_peaks: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "index": self.index, "id": self.id, "kind": self.kind,
            "start": round(self.start, 3), "end": round(self.end, 3),
            "strokes": self.strokes, "reps": self.reps, "points": self.points,
            "active_s": round(self.active_s, 2), "skipped": self.skipped,
            "stroke_ends": [round(t, 3) for t in self.stroke_ends],
            "rep_peaks": [round(t, 3) for t in self.rep_peaks],
        }


@dataclass
class Script:
    """The person's actions sampled at FS, and the truth."""

    s_m: np.ndarray  # travel along the thigh (m)
    placement_rad: np.ndarray  # where around the thigh the roller sits (pi = flipped onto the back)
    twist_rad: np.ndarray  # twisting while rolling
    rep_tilt_rad: np.ndarray  # the thigh lifting a little as the leg straightens
    force_n: np.ndarray  # squeeze force
    steps: list[StepTruth]
    controls: list[tuple[float, str]]  # (time, "press" | "hold") on the button
    outcome: str  # "completed" or "abandoned"

    @property
    def duration(self) -> float:
        return len(self.s_m) / FS


class ScriptWriter:
    """Appends the person's actions, sample by sample, keeping the state continuous."""

    def __init__(self, rng: np.random.Generator, habits: Habits, extra_rng: np.random.Generator | None = None):
        self.rng = rng
        # the optional quirks draw from their own generator, so the person's other choices stay as they were
        self.extra = extra_rng if extra_rng is not None else np.random.default_rng(0)
        self.h = habits
        self.chunks: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "place", "twist", "tilt", "force")}
        self.n = 0
        self.s = 0.20  # metres from the hip
        self.place = 0.0
        self.force = 0.0

    @property
    def t(self) -> float:
        return self.n / FS

    def _append(self, s, place, twist, tilt, force) -> None:
        n = len(s)
        for key, values in (("s", s), ("place", place), ("twist", twist), ("tilt", tilt), ("force", force)):
            self.chunks[key].append(np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy())
        self.n += n
        self.s, self.place, self.force = float(s[-1]), float(np.asarray(place).reshape(-1)[-1]), float(np.asarray(force).reshape(-1)[-1])

    @staticmethod
    def _ease(n: int) -> np.ndarray:
        """0 to 1 over n samples with zero speed at both ends (a raised cosine)."""
        if n <= 0:
            return np.zeros(0)
        return 0.5 - 0.5 * np.cos(np.pi * np.arange(1, n + 1) / n)

    def _samples(self, seconds: float) -> int:
        return max(1, int(round(seconds * FS)))

    # --- actions -----------------------------------------------------------------

    def hold(self, seconds: float, force: float | None = None) -> None:
        """Stay in place; the squeeze eases to ``force`` over the first half second."""
        n = self._samples(seconds)
        target = self.force if force is None else force
        ramp = np.ones(n)
        k = min(n, self._samples(0.5))
        ramp[:k] = self._ease(k)
        f = self.force + (target - self.force) * ramp
        self._append(np.full(n, self.s), self.place, 0.0, 0.0, f)

    def move(self, s_to: float, seconds: float, place_to: float | None = None, force: float | None = None) -> None:
        """Slide or carry the roller somewhere: a transition, not a stroke."""
        n = self._samples(seconds)
        e = self._ease(n)
        place_to = self.place if place_to is None else place_to
        f_to = self.force if force is None else force
        self._append(
            self.s + (s_to - self.s) * e,
            self.place + (place_to - self.place) * e,
            0.0, 0.0,
            self.force + (f_to - self.force) * e,
        )

    def stroke(self, length_m: float, seconds: float, twist_rad: float, force: float, dwell_s: float, dwell_mid: bool) -> float:
        """One back-and-forth: out by ``length_m`` and back. Returns when the stroke ended."""
        half = self._samples(seconds / 2)
        out = self._ease(half)
        back = 1.0 - self._ease(half)
        if dwell_s > 0 and dwell_mid:
            # stop half-way out, then carry on in the same direction
            first = self._ease(half // 2) * 0.5
            stay = np.full(self._samples(dwell_s), 0.5)
            rest = 0.5 + self._ease(half - half // 2) * 0.5
            out = np.concatenate([first, stay, rest])
        elif dwell_s > 0:
            out = np.concatenate([out, np.ones(self._samples(dwell_s))])
        path = np.concatenate([out, back])
        phase = np.linspace(0.0, 2 * np.pi, len(path), endpoint=False)
        # people push a little harder on the way towards the knee
        f = force * (1.0 + 0.08 * np.sin(phase)) + (self.force - force) * np.exp(-np.arange(len(path)) / (0.3 * FS))
        self._append(self.s + length_m * path, self.place, twist_rad * np.sin(phase), 0.0, f)
        return self.t

    def rep(self, rise_n: float, seconds: float, tilt_deg: float = 1.0, top_s: float = 0.0) -> float:
        """Tighten, straighten, relax against the held roller. Returns the time of the force peak.

        With ``top_s`` the straightened leg is held at the top for that long, and the time
        returned is the end of that hold, when the leg starts to relax.
        """
        n = self._samples(seconds)
        x = np.arange(n) / n
        # rises over 40 %, holds briefly near the top, falls over the rest
        shape = np.where(x < 0.4, 0.5 - 0.5 * np.cos(np.pi * x / 0.4), 0.5 + 0.5 * np.cos(np.pi * (x - 0.4) / 0.6))
        peak = self.t + 0.4 * seconds
        if top_s > 0:
            k = int(np.searchsorted(x, 0.4))
            shape = np.concatenate([shape[:k], np.ones(self._samples(top_s)), shape[k:]])
            n = len(shape)
            peak += top_s
        tilt = np.deg2rad(tilt_deg) * shape  # the thigh lifts a touch as the quadriceps contract
        self._append(np.full(n, self.s), self.place, 0.0, tilt, self.force + rise_n * shape)
        return peak

    def jiggle(self, seconds: float, amplitude_deg: float, hz: float) -> None:
        """The leg bounces on the ball of the foot: the thigh (and the roller on it) rocks quickly."""
        n = self._samples(seconds)
        k = np.arange(n)
        envelope = np.minimum(1.0, np.minimum(k, n - 1 - k) / (0.3 * FS))
        tilt = np.deg2rad(amplitude_deg) * np.sin(2 * np.pi * hz * k / FS) * envelope
        self._append(np.full(n, self.s), self.place, 0.0, tilt, np.full(n, self.force))

    def build(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(self.chunks[k]) for k in ("s", "place", "twist", "tilt", "force"))


# --- the routine, step by step -------------------------------------------------------

# where around the thigh each step's muscles are (radians from the top of the thigh)
PLACEMENT = {"normal": 0.0, "outer": 0.9, "flipped": np.pi}
STEP_SITES = {  # (start of travel from the hip in metres, placement)
    "mid-thigh-roll": (0.18, 0.4), "mid-thigh-release": (0.20, 0.8),
    "tfl-roll": (0.05, 1.1), "tfl-release": (0.08, 1.1),
    "lower-thigh-roll": (0.25, 0.3), "lower-thigh-release": (0.33, 0.3),
    "patellar-tendon": (0.42, 0.0), "hamstrings": (0.15, np.pi),
}


def _site(step: Step) -> tuple[float, float]:
    if step.id in STEP_SITES:
        return STEP_SITES[step.id]
    return (0.2, np.pi if step.orientation == "flipped" else 0.0)


def write_script(routine: Routine, seed: int = 1, scenario: str = "normal", habits: Habits | None = None,
                 idle_after_s: float = 330.0, legs: int = 1) -> Script:
    """The whole session: a press to start, every step, the pauses between them.

    With ``legs`` = 2 the person does the routine on one leg and then the other (the
    steps of the second leg are numbered on: 9 to 16 for an 8-step routine).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng(seed)
    habits = habits or Habits.draw(rng, scenario)
    w = ScriptWriter(rng, habits, extra_rng=np.random.default_rng([seed, 13]))
    controls: list[tuple[float, str]] = []
    truths: list[StepTruth] = []
    outcome = "completed"

    w.hold(1.0, force=0.0)
    controls.append((w.t, "press"))
    w.hold(1.5, force=0.0)
    skip_index = 4 if scenario == "skip" else None
    leave_after = 4 if scenario == "idle" else None

    plan = [(leg * len(routine.steps) + step.index, step) for leg in range(legs) for step in routine.steps]
    for position, step in plan:
        if position > len(routine.steps) and step.index == 1:
            w.move(w.s, 2.0, place_to=0.0, force=0.0)  # over to the other leg
            w.hold(4.0, force=0.0)
        start_s, place = _site(step)
        w.move(start_s, 1.2 + rng.uniform(0, 0.8), place_to=place, force=0.0)
        if position == skip_index:
            # the person decides to leave this step out: holds the button, goes on
            w.hold(0.6)
            controls.append((w.t, "hold"))
            truths.append(StepTruth(position, step.id, step.kind, w.t, w.t, skipped=True))
            w.hold(2.0, force=0.0)
            continue
        truth = StepTruth(position, step.id, step.kind, w.t, w.t)
        if step.kind == "roll":
            _roll(w, step, truth, habits, gentle=False)
        else:
            _release(w, step, truth, habits, scenario)
        truth.end = w.t
        truths.append(truth)
        w.hold(0.8, force=0.0)  # lets go of the handles
        if leave_after is not None and position == leave_after:
            outcome = "abandoned"
            w.move(w.s + 0.1, 1.5, force=0.0)
            w.hold(idle_after_s, force=0.0)
            break
        pause = habits.pause_s * rng.uniform(0.7, 1.3)
        if habits.fidget_rests:
            _fidget(w, pause)
        else:
            w.hold(pause, force=0.0)
    w.hold(3.0, force=0.0)
    s, place, twist, tilt, force = w.build()
    if habits.twist_free_period_s > 0:
        twist = twist + _free_twist(s, truths, habits, w.extra)
    return Script(s, place, twist, tilt, force, truths, controls, outcome)


def _fidget(w: ScriptWriter, seconds: float) -> None:
    """A rest between steps that is not still: the hands off the squeeze, the leg restless."""
    x = w.extra
    end = w.t + seconds
    w.hold(min(0.5, seconds), force=0.0)
    while end - w.t > 1.5:
        kind = x.choice(["shift", "grab", "jiggle"])
        if kind == "shift":  # the leg shifts on the chair; the loosely held roller rides along
            w.move(w.s + x.uniform(-0.02, 0.02), x.uniform(0.4, 0.9), place_to=w.place + np.deg2rad(x.uniform(-8, 8)))
        elif kind == "grab":  # takes hold of the handles without pressing in, lets go again
            w.hold(x.uniform(0.6, 1.5), force=x.uniform(6.0, 18.0))
            w.hold(0.5, force=0.0)
        else:
            w.jiggle(min(x.uniform(1.5, 4.0), end - w.t), x.uniform(0.3, 1.2), x.uniform(3.0, 5.0))
        w.hold(min(x.uniform(0.3, 1.5), max(end - w.t, 0.05)), force=0.0)
    if end - w.t > 0:
        w.hold(end - w.t, force=0.0)


def _free_twist(s_m: np.ndarray, truths: list[StepTruth], h: Habits, x: np.random.Generator) -> np.ndarray:
    """Twisting back and forth at the person's own rhythm while the roller travels (roll steps)."""
    twist = np.zeros(len(s_m))
    speed = np.abs(np.gradient(s_m)) * FS
    window = np.ones(int(0.6 * FS)) / int(0.6 * FS)
    for truth in truths:
        if truth.kind != "roll" or truth.skipped:
            continue
        i0, i1 = int(truth.start * FS), min(int(truth.end * FS), len(s_m))
        moving = np.convolve((speed[i0:i1] > 0.01).astype(float), window, mode="same")
        k = np.arange(i1 - i0)
        period = h.twist_free_period_s * x.uniform(0.85, 1.15)
        twist[i0:i1] = np.deg2rad(h.twist_deg) * np.sin(2 * np.pi * k / (period * FS) + x.uniform(0, 2 * np.pi)) * moving
    return twist


def _roll(w: ScriptWriter, step: Step, truth: StepTruth, h: Habits, gentle: bool, seconds: float | None = None) -> None:
    """Roll until the active time reaches a little past the target, with the person's quirks."""
    rng = w.rng
    if seconds is None:
        lo, hi = step.roll_seconds.min, step.roll_seconds.max
        seconds = rng.uniform(lo + 2.0, hi + 3.0)
    force = h.tendon_force_n if gentle else h.roll_force_n
    w.hold(0.6, force=force)
    active_start = w.t
    paused = 0.0
    mid_pause_at = seconds * rng.uniform(0.35, 0.65) if rng.random() < h.mid_pause_p else None
    if (step.id == "lower-thigh-roll" or h.twist_every_roll) and h.twist_free_period_s <= 0:
        twist = np.deg2rad(h.twist_deg)
    else:
        twist = np.deg2rad(rng.uniform(0, 3))
    length_scale = 0.5 if gentle else 1.0
    while w.t - active_start - paused < seconds:
        if mid_pause_at is not None and w.t - active_start - paused >= mid_pause_at:
            pause = rng.uniform(*h.mid_pause_range_s)
            w.hold(pause)
            paused += pause
            mid_pause_at = None
        period = 60.0 / h.cadence_spm * (1.0 + rng.normal(0, h.cadence_jitter))
        period = float(np.clip(period, 60.0 / 65.0, 60.0 / 9.0))
        length = h.stroke_cm / 100.0 * length_scale * float(np.clip(1.0 + rng.normal(0, h.stroke_jitter), 0.5, 1.6))
        dwell = rng.uniform(*h.dwell_range_s) if rng.random() < h.hesitation_p else 0.0
        end = w.stroke(length, period, twist, force * rng.uniform(0.9, 1.1), dwell, dwell_mid=rng.random() < 0.5)
        truth.stroke_ends.append(end)
    truth.strokes = len(truth.stroke_ends)
    truth.active_s = w.t - active_start - paused


def _release(w: ScriptWriter, step: Step, truth: StepTruth, h: Habits, scenario: str) -> None:
    """Hold on each trigger point and do the reps; slide to the next point between them."""
    rng = w.rng
    gentle = step.pressure_limit_kpa < 30  # the patellar tendon: light pressure only
    if step.roll_seconds is not None and step.roll_seconds.max > 0:
        _roll(w, step, truth, h, gentle=True, seconds=rng.uniform(6.0, step.roll_seconds.max))
    hold = h.tendon_force_n if gentle else h.hold_force_n
    rise = h.rep_rise_n * (0.6 if gentle else 1.0)  # the quadriceps' push does not depend on the squeeze
    lo, hi = step.reps_per_point.min, step.reps_per_point.max
    points = h.points_per_release if h.points_per_release > 0 and not gentle else step.points
    x = w.extra
    for point in range(points):
        if point > 0 and h.reposition_style == "adjust":
            _adjust_to_next_point(w, hold)
        elif point > 0:
            # ease off, slide a few centimetres to the next tender spot, press again
            w.hold(0.5, force=hold * 0.3)
            w.move(w.s + rng.uniform(0.03, 0.08) * rng.choice([-1, 1]), rng.uniform(0.8, 1.4))
        w.hold(1.2, force=hold)
        reps = int(rng.integers(int(lo) + 1, int(hi) + 1))
        for _ in range(reps):
            seconds = h.rep_seconds * rng.uniform(0.8, 1.25)
            size = rise * rng.uniform(0.75, 1.25)
            tilt = 1.0
            if h.partial_rep_p > 0 and x.random() < h.partial_rep_p:
                share = x.uniform(*h.partial_rep_scale)  # the leg only half straightens: still a rep
                size, tilt, seconds = size * share, tilt * share, seconds * (0.6 + 0.4 * share)
            truth.rep_peaks.append(w.rep(size, seconds, tilt_deg=tilt, top_s=h.rep_top_s * x.uniform(0.8, 1.2) if h.rep_top_s > 0 else 0.0))
            gap = h.rep_gap_s * rng.uniform(0.7, 1.4)
            if h.twitch_p > 0 and x.random() < h.twitch_p and gap > 0.8:
                # a small involuntary twitch of the muscle: the leg does not move, not a rep
                w.hold(gap * 0.3)
                w.rep(x.uniform(1.0, 3.0), x.uniform(0.25, 0.5), tilt_deg=0.0)
                w.hold(max(gap * 0.7 - 0.5, 0.1))
            else:
                w.hold(gap)
    truth.reps = len(truth.rep_peaks)
    truth.points = points


def _adjust_to_next_point(w: ScriptWriter, hold: float) -> None:
    """Moving on without letting go: keep some squeeze, slide, maybe overshoot and come back."""
    x = w.extra
    w.hold(0.5, force=hold * x.uniform(0.5, 0.8))
    direction = x.choice([-1.0, 1.0])
    distance = x.uniform(0.04, 0.12) * direction
    if x.random() < 0.5:
        over = x.uniform(0.015, 0.035) * direction
        w.move(w.s + distance + over, x.uniform(0.8, 1.4))
        w.move(w.s - over, x.uniform(0.5, 0.9))
    else:
        w.move(w.s + distance, x.uniform(0.8, 1.4))
