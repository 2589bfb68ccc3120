"""Strokes: one out-and-back cycle of the roller along the leg (docs/counting.md).

The thigh is not a cylinder: it tapers and curves, so the roller's frame tilts as it
travels along it, and the tilt is a position-like signal: it goes one way on the way
out and comes back on the way back, whatever the speed, and a pause or a hesitation
only holds it where it is. The tilt is the direction of gravity in the pod's frame as
the gyro turns it (motion.py: how the frame turned, without the pod's own acceleration
that the accelerometer also reads), cut into half-strokes where it turns back
(turning.py: the distance from the last turning point, so no axis has to be learnt).
Two half-strokes in a row make one stroke.

The squeeze is a second position-like signal: the thigh is thicker in some places than
others, so the force follows the roller along it. Twisting the handles tilts the frame
at a rhythm of its own but leaves the squeeze alone. Both signals count the strokes of
each bout of rolling; the count told follows the tilt until the two disagree on the
rhythm of the roller's turns and the squeeze keeps a steady one, or until the frame turns
far more than rolling would turn it for how far the pod went (a twist of the handles):
from then on, for the rest of the bout, it follows the squeeze, and the bout's count
becomes the squeeze's.

A stroke is rolling only if the pod travelled: rolling along the leg moves the pod,
while the thigh lifting and tilting with a rep, or a twist, turn it almost in place.
Travel shows in the acceleration that the pod's turning does not explain. Nor is a
half-stroke rolling when the roller was not squeezed onto the leg (carried), and the
pod turned over (a flip for the hamstrings) restarts the count. A lone half-stroke,
never followed by the way back, is a slide to another spot.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..samples import StrokeEvent
from .framing import FRAME_S
from .motion import ema_alpha, seen_after_turn
from .turning import PathTurns, QuickTurn, Turn, TurningPoints, lower_median

G = 9.80665
GRIP_N = 10.0  # below this squeeze the pads are not pressed on the leg: a roller at rest reads 0-3 N
# A hand closes on the handles within about half a second (a quick grip reaches its force in
# 0.3-0.6 s); a squeeze that turns back within this long of rising through GRIP_N rose with
# the grip alone, and one still rising later rose with the roller's first way along the leg
# too (in the independent simulator's rolls: 0.4-0.7 s for the one, 0.8 s and more for the other)
GRIP_RISE_S = 0.8
# The pod travels when the roller rolls: a 10 cm stroke at 20 a minute accelerates it at
# 0.15 m/s^2 RMS, a 20 cm one at 30 a minute at 0.6. A rep lifts the thigh a few millimetres
# in a second or two (0.02-0.05 m/s^2), and the sensor's noise over a frame is about
# 0.01-0.02 m/s^2. Below this level the pod turned in place: it did not roll.
TRAVEL_MS2 = 0.08
TRAVEL_TAU_S = 0.5  # the acceleration level is an RMS over about half a second ...
# ... of the acceleration's changes that the pod's turning does not explain (so neither
# gravity nor the accelerometer's own offset, both of which only turn with the pod, show),
# summed with a 1 s memory and less their 1 s mean (what a gyro bias error adds steadily):
# a stroke's acceleration at 0.5 Hz passes at 90 %, and a movement's echo dies in a second
TRAVEL_MEMORY_S = 1.0
MEMORY_KEEP = math.exp(-FRAME_S / TRAVEL_MEMORY_S)  # (what of the sum a frame keeps)
TILT_FLOOR_RAD = math.radians(0.15)  # the smallest tilt swing followed: above the frame's wobble at rest
SQUEEZE_FLOOR_N = 2.0  # the smallest swing of the squeeze followed: a load cell's noise over a frame is 0.3-1 N
# the rhythm check: over the last 12 s (two slow strokes, twelve quick ones), the tilt and
# the squeeze disagree when one turned back 1.4 times as often as the other or more; a
# tilt that turned back more often shows a twist if its typical (median) half-strokes
# differ from the squeeze's by more than 1.15 times (a rhythm of its own, not a turn the
# squeeze missed now and then); the squeeze is believed only once it turned back 4 times
# itself (two strokes)
RHYTHM_WINDOW_S = 12.0
RHYTHM_DISAGREE = 1.4
RHYTHM_AGREE = 1.15
RHYTHM_MIN_HALVES = 4
# ... and by more than two frames: a turning point is placed on a 0.1 s frame, at the
# frame where the signal was furthest, so two signals' halves of one movement differ by a
# frame or two
TIMING_S = 2 * FRAME_S
# people roll at a steady rhythm: strokes within a fifth of each other's length (a cadence
# spread of 20 %); a signal whose strokes vary more has lost it
STEADY_UNEVENNESS = 0.2
# the way out and the way back of a stroke take within twice each other's time (people
# press slower one way, not three times slower); a turn missed makes one half-stroke three
# of its neighbours
LOPSIDED = 2.0
# no two strokes end closer than this: the quickest rolling, 60 a minute, ends one a second
STROKE_SPACING_S = 0.7
# a cycle out and back in less than half the median of the last five (over 12 s) is a
# wobble within a stroke: people keep a cadence within a fifth or so within a set
WOBBLE_SHARE = 0.5
TURN_SHARE = 0.5  # a turning point is confirmed once the signal came back half the recent swing ...
# ... or 0.3 of it, coming back at 0.6 of the pace the recent ways reached at their quickest
# (turning.QuickTurn): a smooth stroke comes back 0.3 of its swing a fifth of its period
# after the turn (instead of a quarter) and at 0.9 of its top pace by then, a roller that
# hesitates within a way comes back slowly if at all
QUICK_TURN = QuickTurn(share=0.3, speed=0.6)
STALL_S = 0.8  # ... or stayed at it this long: the stroke ended at rest
# A movement travelled, whatever its acceleration, if the pod went at least this far: the
# shortest stroke people roll (the 3-30 cm the product is built for). A slow stroke hardly
# accelerates the pod (10 cm at 12 a minute: 0.06 m/s^2 RMS, a rep lift's level) but it
# goes its length; a rep lifts the pod a few millimetres (see reach())
REACH_M = 0.03
# Rolling turns the frame only as the thigh's profile curves under it: by 0.1-1.6 rad per metre
# travelled in the thighs modelled, read as up to about 4 rad per metre of reach (the reach
# reads the slowest strokes at down to 40 % of their length), and up to 9 where the wrist
# turns in step with each stroke as well. Twisting the handles turns the frame in place: the
# pod, within 10 cm of the axis it turns about, goes at most 0.1 m per radian, so a twist
# turns it 10 rad per metre or more. A way that turned more than this per metre it reached
# turned in the hands, whatever the pod's acceleration: the tilt follows the hands there
TWIST_RAD_PER_M = 10.0
TWISTS_SHOWN = 2  # two ways that turned in place (a twist out and back) in the window: twisting
# the fastest rolling (60 a minute) takes 0.5 s a way: a quicker turn that did not take the
# pod a stroke's length (REACH_M) is a jolt
MIN_HALF_S = 0.3
ROLLING_HALVES_KEPT = math.ceil(RHYTHM_WINDOW_S / MIN_HALF_S)  # the most ways the rhythm's window can hold
MAX_GAP_S = 4.0  # the way back starts within this long of the way out (a pause at the far end)
# a bout of rolling has ended when no stroke ended for this long: the slowest rolling (10 a
# minute) ends one every 6 s, and a pause of a few seconds at one end is still the same bout
BOUT_GAP_S = 10.0
MAX_HALF_S = 6.0  # a half-stroke of the slowest rolling (10 a minute) takes 3 s; one this long is not rolling
# the pod turned over: gravity moved by more than 150 degrees within 2 s. No stroke, twist
# or exercise turns the frame that far; a flip turns it 180 degrees
TURNED_CHORD = 2.0 * math.sin(math.radians(150.0) / 2.0)
TURNED_FRAMES = round(2.0 / FRAME_S)


@dataclass
class HalfStroke:
    start_t: float
    end_t: float
    direction: int
    travel: float  # the largest acceleration level on the way, m/s^2 RMS
    force_mean: float  # N, NaN without force data
    reach: float = 0.0  # m: how far the pod moved on the way (the acceleration integrated twice)
    frames: int = 0  # how many frames the way's reach was measured over
    noise: float = 0.0  # m/s^2 RMS per axis: how far those frames' mean accelerations may be off
    turned: float = math.nan  # rad: how far the frame turned on the way (the tilt's half-strokes only)

    @property
    def on_the_leg(self) -> bool:
        """Squeezed onto the leg (or no force data), and not too slow to be rolling."""
        gripped = self.force_mean != self.force_mean or self.force_mean >= GRIP_N
        return gripped and self.end_t - self.start_t <= MAX_HALF_S

    @property
    def travelled(self) -> bool:
        """The pod went a stroke's length, or accelerated like rolling and went half of it:
        it rolled, or it was turned in the hands (see twisted). (The acceleration level
        lingers for a second after a movement, such as the pads settling after the grip,
        while the pod stays put; and a way whose turning points the signal placed off the
        pod's own, as a jolt or a tilt lagging the roller does, reads its reach short, to
        about half.)"""
        if self.reach <= self.noise_reach:
            return False  # the sensor's noise, integrated twice over a long way, reads that far
        return self.reach >= REACH_M or self.travel >= TRAVEL_MS2 and self.reach >= REACH_M / 2

    @property
    def noise_reach(self) -> float:
        """How far the sensor's noise alone could read the pod to have moved on the way (m)."""
        return noise_reach(self.frames, self.noise)

    @property
    def twisted(self) -> bool:
        """The pod moved, but the frame turned far more than rolling would turn it over the
        reach: the handles were twisted, and the tilt shows the hands more than the roller
        (never on the squeeze, whose half-strokes turn nothing)."""
        return self.travelled and self.turned > TWIST_RAD_PER_M * self.reach

    def took_hold(self, hold_t: float) -> bool:
        """Whether the hands took hold (at hold_t) on the way."""
        return self.start_t <= hold_t <= self.end_t


# what the pod did in a frame, as the half-strokes keep it: (t, the acceleration level,
# the squeeze, the pod's own acceleration, the square of the acceleration's noise)
PodFrame = tuple[float, float, float, tuple[float, float, float], float]


class _Since:
    """What the pod did since the last turning point: per frame, its time, the acceleration
    level, the force and the pod's own acceleration; split at the furthest point when the
    turn is confirmed."""

    def __init__(self, angles: bool = False):
        self.frames: list[PodFrame] = []
        self.at_extreme = 0
        self.angles = angles

    def add(self, frame: PodFrame, extreme_moved: bool) -> None:
        self.frames.append(frame)
        if extreme_moved:
            self.at_extreme = len(self.frames)

    def split(self, turn: Turn, hold_t: float) -> HalfStroke | None:
        """The half-stroke that ended at the turn, or None if the signal never got further
        than where the last one ended (a flicker back and forth, not a movement). One on
        which the hands took hold (at hold_t) began on the leg there: before, the roller
        was carried to it."""
        if self.at_extreme == 0:
            return None
        mine, self.frames = self.frames[:self.at_extreme], self.frames[self.at_extreme:]
        self.at_extreme = 0
        start_t = turn.start_t
        if start_t < hold_t <= turn.t:
            start_t = hold_t
            mine = [frame for frame in mine if frame[0] >= hold_t] or mine[-1:]
        forces = [frame[2] for frame in mine if frame[2] == frame[2]]
        return HalfStroke(
            start_t=start_t, end_t=turn.t, direction=turn.direction,
            travel=max((frame[1] for frame in mine), default=0.0),
            reach=reach([frame[3] for frame in mine]),
            frames=len(mine), noise=math.sqrt(sum(frame[4] for frame in mine) / len(mine)),
            force_mean=sum(forces) / len(forces) if forces else math.nan,
            turned=turn.swing if self.angles else math.nan,
        )

    def mark_extreme(self) -> None:
        self.at_extreme = len(self.frames)

    def forget_before(self, t: float) -> None:
        """At rest: frames before t can be no movement's (a long rest must not grow the list)."""
        frames = self.frames
        if frames and frames[0][0] < t - MAX_HALF_S:  # (trimmed now and then, not every frame)
            gone = next((k for k, frame in enumerate(frames) if frame[0] >= t), len(frames))
            self.frames, self.at_extreme = frames[gone:], max(0, self.at_extreme - gone)

    def begin(self, start_t: float) -> None:
        """A movement began from rest at start_t: what happened at rest before it is not
        part of it."""
        kept = [frame for frame in self.frames if frame[0] >= start_t] or self.frames[-1:]
        self.frames, self.at_extreme = kept, len(kept)


class _Track:
    """Half-strokes and strokes on one position-like signal: the tilt, or the squeeze."""

    def __init__(self, turns, grip_shows: bool = False):
        self.turns = turns
        self.grip_shows = grip_shows  # the signal rises as the hands take hold (the squeeze does)
        self.since = _Since(angles=not grip_shows)
        self.twist_ends: deque[float] = deque(maxlen=TWISTS_SHOWN)  # when its newest half-strokes that twisted ended
        self.pending: HalfStroke | None = None  # the way out of a stroke, waiting for the way back
        self.last: HalfStroke | None = None  # the newest half-stroke on the leg
        self.jolted = False  # the newest turn was a jolt: the movement before it goes on
        # its recent rolling half-strokes: as many as fit in the rhythm's window, at most
        self.rolling_halves: deque[HalfStroke] = deque(maxlen=ROLLING_HALVES_KEPT)
        self.counted: list[tuple[HalfStroke, HalfStroke]] = []  # the strokes it saw in the bout under way
        self.last_end_t = -math.inf  # when its movement ended
        self._periods: deque[tuple[float, float]] = deque(maxlen=5)  # (end, duration) of recent cycles

    @property
    def strokes(self) -> int:
        return len(self.counted)

    def restart(self) -> HalfStroke | None:
        """Forget the movement under way and its rhythm (the pod turned over: what came
        before is another side's); returns a half-stroke left waiting."""
        self.turns.restart()
        self.since = _Since(angles=not self.grip_shows)
        self.twist_ends.clear()
        self.last, self.jolted = None, False
        self.rolling_halves.clear()
        self._periods.clear()
        pending, self.pending = self.pending, None
        return pending

    def follow(self, t: float, x, frame: PodFrame, hold_t: float) -> HalfStroke | None:
        """One frame of the signal: a half-stroke that ended now, if one did."""
        was_resting = self.turns.direction == 0
        turn, extreme_moved = self.turns.update(t, x)
        self.since.add(frame, extreme_moved)
        resting = self.turns.direction == 0
        if was_resting and resting:
            self.since.forget_before(t - MAX_HALF_S)  # the longest way that is still rolling
        elif was_resting:
            # a movement began from rest: the signal passed half the hysteresis only now, but a
            # slow one began to move when it left its noise around the resting point, and the
            # pod's reach must be measured from there; looked for no further back than the
            # acceleration's memory, since the reach drifts over a rest
            start_t = self.turns.movement_start_t
            began = max(min(self.turns.still_t, start_t), start_t - TRAVEL_MEMORY_S)
            self.since.begin(began)
        if turn is None:
            return None
        half = self.since.split(turn, hold_t)
        if not turn.stalled:
            self.since.mark_extreme()  # the movement that began at the turn is furthest now
        return half

    def end_here(self, t: float, hold_t: float) -> HalfStroke | None:
        turn = self.turns.end_here(t)
        return None if turn is None else self.since.split(turn, hold_t)

    def pair(self, half: HalfStroke, hold_t: float) -> tuple[HalfStroke | None, tuple[HalfStroke, HalfStroke] | None]:
        """Takes a half-stroke, and when the hands last took hold: returns a lone half-stroke
        it leaves behind (a slide to another spot) and the two halves of a stroke it
        completes, if any."""
        if half.end_t - half.start_t < MIN_HALF_S and half.reach < REACH_M:
            # (a way that went a stroke's length is no jolt, however short it seemed: one
            # that set off from a pause at the far end is timed from when it left the pause)
            self.jolted = True
            return None, None
        jolted, self.jolted = self.jolted, False
        last = self.last
        # (not a way that ended before the hands took hold: that was another movement, the
        # roller carried or put down, and the jolt was the grip)
        if jolted and last is not None and last.end_t >= hold_t and last.direction == half.direction:
            # a jolt interrupted one way: the two parts are one half-stroke
            last.end_t, last.travel = half.end_t, max(last.travel, half.travel)
            last.reach += half.reach  # (about: the jolt itself went little way)
            last.turned += half.turned
            frames = last.frames + half.frames  # (the noise over both parts, the frames' mean)
            last.noise = math.sqrt((last.frames * last.noise ** 2 + half.frames * half.noise ** 2) / max(frames, 1))
            last.frames = frames
            return None, None
        self.last = half
        pending = self.pending
        if half.took_hold(hold_t):
            # the hands took hold on the way: how far the signal swung as the roller was put
            # on (the squeeze from nothing) says nothing of how far it swings along the leg
            self.turns.forget_swing()
            if self.grip_shows and half.end_t - hold_t < GRIP_RISE_S - FRAME_S / 2:
                # the squeeze rose with the grip alone: not a way along the leg. (Were it
                # taken for one, every stroke after it would pair out of step, and the fall
                # as the hands let go would make one stroke too many.)
                self.pending = None
                return pending, None
        if not half.on_the_leg:
            # carried or put down: how far it swung says nothing of the strokes to come
            self.turns.forget_swing()
            self.pending = None
            return pending, None
        if half.twisted:
            self.twist_ends.append(half.end_t)
        if half.travelled:
            self.rolling_halves.append(half)
        if pending is None or half.start_t - pending.end_t > MAX_GAP_S:
            self.pending = half
            return pending, None
        self.pending = None
        # (a way out on which the hands took hold travelled as the roller was put on)
        out_travelled = pending.travelled and not pending.took_hold(hold_t)
        if not (out_travelled or half.travelled):
            return None, None  # out and back almost in place: the thigh lifting with a rep, not rolling
        return None, (pending, half)

    def count(self, stroke: tuple[HalfStroke, HalfStroke]) -> bool:
        """Counts a stroke this signal completed, unless it is a wobble within a stroke or
        ends too soon after the last one. Returns whether it was counted."""
        out, back = stroke
        if self._a_wobble(out, back) or back.end_t - self.last_end_t < STROKE_SPACING_S:
            return False
        self.counted.append(stroke)
        self.last_end_t = back.end_t
        return True

    def _a_wobble(self, out: HalfStroke, back: HalfStroke) -> bool:
        """Out and back in less than half the recent strokes' time: a wobble within a
        stroke, not a stroke (people roll at a steady cadence, within a fifth or so). The
        cycles that were not counted are remembered too, so a cadence that really doubled
        is followed after three of its strokes."""
        recent = self._periods
        while recent and recent[0][0] < back.end_t - RHYTHM_WINDOW_S:
            recent.popleft()
        period = back.end_t - out.start_t
        periods = sorted(p for _, p in recent)
        recent.append((back.end_t, period))
        return len(periods) >= 3 and period < WOBBLE_SHARE * periods[len(periods) // 2]

    def twists_since(self, t: float) -> int:
        """How many of its half-strokes that ended since t turned in place (HalfStroke.twisted)."""
        recent = self.twist_ends
        while recent and recent[0] < t:
            recent.popleft()
        return len(recent)

    def rolling_since(self, t: float) -> int:
        """How many rolling half-strokes ended since t."""
        self._forget_rolling_before(t)
        return len(self.rolling_halves)

    def halves_since(self, t: float) -> list[float]:
        """The durations of the rolling half-strokes that ended since t."""
        self._forget_rolling_before(t)
        # (a half-stroke a jolt interrupted has grown to its whole length since)
        return [half.end_t - half.start_t for half in self.rolling_halves]

    def _forget_rolling_before(self, t: float) -> None:
        recent = self.rolling_halves
        while recent and recent[0].end_t < t:
            recent.popleft()


class StrokeCounter:
    def __init__(self):
        self._tilt = _Track(PathTurns(TILT_FLOOR_RAD, TURN_SHARE, STALL_S, QUICK_TURN))
        self._squeeze = _Track(TurningPoints(SQUEEZE_FLOOR_N, TURN_SHARE, STALL_S, QUICK_TURN), grip_shows=True)
        self._counted = self._tilt
        self._recent_force: deque[float] = deque(maxlen=3)
        self._recent_tilt: deque[tuple[float, float, float]] = deque(maxlen=TURNED_FRAMES)
        self._last_accel: tuple[float, float, float] | None = None
        self._last_rate: tuple[float, float, float] | None = None
        # the pod's own acceleration now (m/s^2, in its frame): what its turning and gravity do
        # not explain, high-passed with a 1 s memory; and its mean, what a gyro bias error adds
        self.moving = (0.0, 0.0, 0.0)
        self._moving_mean = (0.0, 0.0, 0.0)
        self._a_level = ema_alpha(TRAVEL_TAU_S)
        self._level_sq = 0.0
        self.travel = 0.0  # the pod's acceleration level now (m/s^2 RMS): above TRAVEL_MS2 it is travelling
        self.moved: HalfStroke | None = None  # a lone half-stroke: the roller slid to another spot
        self.count = 0
        self.told = 0  # strokes told in the bout under way
        self._rep_t = -math.inf  # when the newest rep peaked
        self._force_t = -math.inf  # when the squeeze was last read
        self._hold_t = -math.inf  # when the hands last took hold (the squeeze rose through GRIP_N)
        self._bout_t = -math.inf  # when the bout under way began
        self.last_stroke_t = -math.inf
        self.last_end_t = -math.inf  # when the newest stroke's movement ended (its turning point)
        self._force = math.nan

    @property
    def counting_on(self) -> str:
        """Which signal the strokes are counted on now: "tilt" or "squeeze"."""
        return "tilt" if self._counted is self._tilt else "squeeze"

    def update(self, t: float, tilt: tuple[float, float, float], accel: tuple[float, float, float],
               rate: tuple[float, float, float] | None, force: float,
               last_rep_t: float = -math.inf, accel_noise: float = 0.0) -> StrokeEvent | None:
        """One frame: the tilt (MotionTracker.tilt: a unit vector), the accelerometer
        (g), the gyro's rate less its bias (deg/s, None without a gyro), the squeeze (N,
        NaN without force data), when the newest rep peaked and how far the frame's mean
        acceleration may be off from the sensor's noise (g RMS per axis, MotionTracker.accel_noise)."""
        if last_rep_t > self._rep_t:
            # a rep is counted only on a roller held still: the bout of rolling is over
            self._rep_t = last_rep_t
            self._new_bout(t)
        self._follow_travel(accel, rate)
        if self._turned_over(tilt) and force < GRIP_N:
            # the roller turned over in the hands (the pads cannot stay on the leg through
            # half a turn). Without force data this cannot be told from a wide swing out and
            # back (an arm's, a torso's); the pairing of out and back keeps a one-way turn
            # from being a stroke anyway
            self._restart(t)
            return None
        let_go = force < GRIP_N <= self._force  # (False without force data: NaN compares False)
        if self._force < GRIP_N <= force:
            self._hold_t = t
        self._force = force
        tracks = [(self._tilt, tilt)]
        if force == force:
            if t - self._force_t > MAX_GAP_S:
                self._new_bout(t)  # the squeeze is back: its count starts here, and so does the bout's
            recent = self._recent_force
            recent.append(force)
            tracks.append((self._squeeze, sorted(recent)[len(recent) // 2]))
            self._force_t = t
        elif self._counted is self._squeeze and t - self._force_t > MAX_GAP_S:
            # the force sensor went quiet while the count was on the squeeze (longer than a
            # pause at the far end): the tilt carries on, as a bout of its own, since its
            # count of the bout so far holds the twist's turns
            self._new_bout(t)
        frame = (t, self.travel, force, self.moving, (accel_noise * G) ** 2)
        for track, x in tracks:
            # letting go of the handles ends the stroke where the roller was: what the
            # frame does as the pads spring back is not travel along the leg
            if let_go:
                half = track.end_here(t, self._hold_t)
            else:
                half = track.follow(t, x, frame, self._hold_t)
            if half is None:
                continue
            lone, stroke = track.pair(half, self._hold_t)
            if lone is not None and lone.travelled and track is self._counted:
                self.moved = lone
            if stroke is not None:
                track.count(stroke)
        for track, _ in tracks:
            pending = track.pending
            if pending is not None and t - pending.end_t > MAX_GAP_S and track.turns.direction == 0:
                track.pending = None
                if pending.travelled and track is self._counted:
                    self.moved = pending
        self._choose_track(t)
        self._end_a_quiet_bout(t)
        return self._tell(t)

    def _tell(self, t: float) -> StrokeEvent | None:
        """A stroke, if the signal the strokes are counted on saw more of them in this bout
        than were told. When the count moves to the other signal, the strokes it saw earlier
        in the bout are told late, and those the first one told too many are not told twice."""
        track = self._counted
        self.last_end_t = max(self.last_end_t, track.last_end_t)
        if track.strokes <= self.told:
            return None
        self.told += 1
        return self._stroke(t, *track.counted[self.told - 1])

    def _end_a_quiet_bout(self, t: float) -> None:
        # a bout of rolling ends when neither signal saw a stroke for a while; the next one
        # is counted afresh, on whichever signal follows it
        tilt, squeeze = self._tilt, self._squeeze
        if self.told or tilt.counted or squeeze.counted:
            if t - max(tilt.last_end_t, squeeze.last_end_t) > BOUT_GAP_S:
                self._new_bout(t)

    def _new_bout(self, t: float) -> None:
        self.told = 0
        self._bout_t = t
        self._counted = self._tilt
        for track in (self._tilt, self._squeeze):
            track.counted = []

    def _choose_track(self, t: float) -> None:
        # The squeeze follows the thigh's girth under the pads, so it follows the roller's
        # position; the tilt does too on a tapering thigh, but twisting the handles also
        # tilts the frame, at a rhythm of its own, and where the thigh hardly tapers the tilt
        # misses turns. When the two disagree on how often the roller turned back lately,
        # and the squeeze kept a steady rhythm, the count moves to the squeeze and stays
        # there for the rest of the bout: the tilt's count of the bout holds the twist's
        # turns even once the twisting stopped.
        if self._counted is self._squeeze or len(self._squeeze.rolling_halves) < min(TWISTS_SHOWN, RHYTHM_MIN_HALVES):
            # (too few ways kept on the squeeze for either test, however many are recent; those
            # not forgotten now are next time, as the window's start only moves on)
            return
        since = max(t - RHYTHM_WINDOW_S, self._bout_t)  # (what came before the bout is another's)
        on_squeeze_n = self._squeeze.rolling_since(since)
        if self._tilt.twists_since(since) >= TWISTS_SHOWN and on_squeeze_n >= TWISTS_SHOWN:
            # the tilt is following the hands, not the roller; the squeeze does not twist, and
            # it saw a stroke's ways along the leg itself (on a thigh of even girth it sees
            # none, and the tilt's count, twist and all, is the better one)
            self._counted = self._squeeze
            return
        if on_squeeze_n < RHYTHM_MIN_HALVES:
            return
        on_squeeze = self._squeeze.halves_since(since)
        on_tilt = self._tilt.halves_since(since)
        squeeze_more = len(on_squeeze) >= RHYTHM_DISAGREE * max(len(on_tilt), 1)
        if not squeeze_more and len(on_tilt) < RHYTHM_DISAGREE * len(on_squeeze):
            return  # they agree on how often the roller turned back
        if _unevenness(on_squeeze) > STEADY_UNEVENNESS or _lopsidedness(on_squeeze) > LOPSIDED:
            return  # the squeeze has lost the steady rhythm people roll at: turns it missed
        if squeeze_more:
            # the tilt missed turns: where the frame hardly tilts, or under a wide swing's
            # hysteresis
            self._counted = self._squeeze
            return
        # the tilt turned back more often than the squeeze: a twist, if its halves keep a
        # rhythm of their own (typically more than 1.15 times, and two frames, apart from the
        # squeeze's, so it is not a turn the squeeze missed now and then)
        typical_tilt, typical_squeeze = _median(on_tilt), _median(on_squeeze)
        # (times are frame times: half a frame of margin keeps their rounding out of it)
        other_rhythm = (_ratio(typical_tilt, typical_squeeze) > RHYTHM_AGREE
                        and abs(typical_tilt - typical_squeeze) > TIMING_S + FRAME_S / 2)
        if other_rhythm:
            self._counted = self._squeeze

    def _follow_travel(self, accel: tuple[float, float, float], rate: tuple[float, float, float] | None) -> None:
        last, self._last_accel = self._last_accel, accel
        last_rate, self._last_rate = self._last_rate, rate
        if last is None:
            return
        if rate is not None and last_rate is not None:
            # the turn between two frames' means: half of each frame's
            rate = ((rate[0] + last_rate[0]) / 2, (rate[1] + last_rate[1]) / 2, (rate[2] + last_rate[2]) / 2)
        ex, ey, ez = last if rate is None else seen_after_turn(last, rate)
        (mx, my, mz), (nx, ny, nz), keep = self.moving, self._moving_mean, MEMORY_KEEP
        mx, my, mz = keep * mx + (accel[0] - ex) * G, keep * my + (accel[1] - ey) * G, keep * mz + (accel[2] - ez) * G
        lose = 1.0 - keep
        nx, ny, nz = keep * nx + lose * mx, keep * ny + lose * my, keep * nz + lose * mz
        self.moving, self._moving_mean = (mx, my, mz), (nx, ny, nz)
        total = (mx - nx) * (mx - nx) + (my - ny) * (my - ny) + (mz - nz) * (mz - nz)
        self._level_sq += self._a_level * (total - self._level_sq)
        self.travel = math.sqrt(self._level_sq)

    def _turned_over(self, tilt: tuple[float, float, float]) -> bool:
        recent = self._recent_tilt
        recent.append(tilt)
        old = recent[0]
        dx, dy, dz = tilt[0] - old[0], tilt[1] - old[1], tilt[2] - old[2]
        return math.sqrt(dx * dx + dy * dy + dz * dz) > TURNED_CHORD

    def _restart(self, t: float) -> None:
        # what the swings and the acceleration level learnt from the turn over must not linger
        self.moving = (0.0, 0.0, 0.0)
        self._moving_mean = (0.0, 0.0, 0.0)
        self._level_sq = self.travel = 0.0
        for track in (self._tilt, self._squeeze):
            pending = track.restart()
            if pending is not None and pending.travelled and track is self._counted:
                self.moved = pending
        self._new_bout(t)

    def _stroke(self, t: float, out: HalfStroke, back: HalfStroke) -> StrokeEvent:
        self.count += 1
        self.last_stroke_t = t
        self.last_end_t = back.end_t
        duration = back.end_t - out.start_t
        forces = [f for f in (out.force_mean, back.force_mean) if f == f]
        return StrokeEvent(t=t, duration=duration, length_cm=_length_cm(max(out.travel, back.travel), duration),
                           mean_force_n=sum(forces) / len(forces) if forces else math.nan)

    def take_moved(self) -> HalfStroke | None:
        half, self.moved = self.moved, None
        return half


def _median(values: list[float]) -> float:
    return lower_median(values) if values else math.inf  # (the lower: one long pause must not set it)


def _ratio(a: float, b: float) -> float:
    """How many times the larger is the smaller."""
    low, high = min(a, b), max(a, b)
    return math.inf if low <= 0.0 else high / low


def _lopsidedness(halves: list[float]) -> float:
    """How many times longer one way typically takes than the other: the median ratio of
    consecutive half-strokes."""
    return _median([_ratio(a, b) for a, b in zip(halves, halves[1:])])


def _unevenness(halves: list[float]) -> float:
    """How unevenly strokes came: the spread of the durations of consecutive pairs of
    half-strokes over their mean (a pair, so the way out and the way back may differ)."""
    pairs = [a + b for a, b in zip(halves, halves[1:])]
    if len(pairs) < 2:
        return math.inf
    mean = sum(pairs) / len(pairs)
    return math.sqrt(sum((d - mean) ** 2 for d in pairs) / len(pairs)) / mean


def reach(accelerations: list) -> float:
    """How far the pod moved over a movement from rest to rest (m), from its acceleration
    each frame (m/s^2): the speed integrated from the acceleration is put back to zero at the
    end along a straight line, since the pod is at rest at both ends (which takes out a
    steady error of the acceleration too), and the position integrated from that; the
    furthest it got."""
    n = len(accelerations)
    if n < 2:
        return 0.0
    speeds, vx, vy, vz = [], 0.0, 0.0, 0.0  # (in m/s per FRAME_S, scaled once at the end)
    for ax, ay, az in accelerations:
        vx, vy, vz = vx + ax, vy + ay, vz + az
        speeds.append((vx, vy, vz))
    x = y = z = furthest = 0.0
    for k, (sx, sy, sz) in enumerate(speeds, start=1):
        share = k / n
        x, y, z = x + sx - share * vx, y + sy - share * vy, z + sz - share * vz
        here = x * x + y * y + z * z
        if here > furthest:
            furthest = here
    return math.sqrt(furthest) * FRAME_S * FRAME_S


# The reach white noise reads is a sum of many independent frames, so nearly Gaussian along
# each axis: four standard deviations of it at the way's worst frame (a way of noise alone
# reads further about once in a thousand, over 2-4 s ways)
NOISE_SDS = 4.0
# noise older than this has left the acceleration's 1 s memory: exp(-5)
NOISE_MEMORY_FRAMES = round(5 * TRAVEL_MEMORY_S / FRAME_S)
LONGEST_WAY_FRAMES = round(MAX_HALF_S / FRAME_S)
MEMORY_FRAMES = round(TRAVEL_MEMORY_S / FRAME_S)  # a way's reach is measured from up to 1 s before it


def noise_reach(frames: int, noise: float) -> float:
    """How far a way of that many frames reads the pod to have moved (m) from the sensor's
    noise alone: the frames' mean accelerations off by ``noise`` (m/s^2 RMS per axis, white),
    through the acceleration's memory and reach(). A way twice as long reads 2.3-2.7 times
    as far, and over the 3-6 s ways of the slowest strokes it is centimetres; it grows with
    the noise of a frame's mean, which a slower IMU (fewer samples a frame) makes larger."""
    if noise <= 0.0 or frames < 2:
        return 0.0
    # (a way longer than the slowest rolling's is no stroke's, whatever its reach: the
    # longest rolling way's noise, with the second before it that its reach may be
    # measured from, is as far as it needs working out, in memory and time)
    return NOISE_SDS * noise * _unit_noise_reach(min(frames, LONGEST_WAY_FRAMES + MEMORY_FRAMES))


@functools.lru_cache(maxsize=LONGEST_WAY_FRAMES + MEMORY_FRAMES)
def _unit_noise_reach(frames: int) -> float:
    """The standard deviation, along one axis at the worst frame, of reach()'s position for
    frames of white noise of 1 m/s^2, fed through the moving acceleration's high-pass."""
    total = frames + NOISE_MEMORY_FRAMES + 1
    # each frame's change of acceleration, summed with the memory's decay (StrokeCounter._follow_travel)
    changes = np.diff(np.eye(total), axis=0)
    decay = MEMORY_KEEP ** np.subtract.outer(np.arange(total - 1), np.arange(total - 1)).clip(min=0)
    moving = (np.tril(decay) @ changes)[-frames:]
    speeds = np.cumsum(moving, axis=0)
    speeds -= (np.arange(1, frames + 1) / frames)[:, None] * speeds[-1]
    positions = np.cumsum(speeds, axis=0) * FRAME_S * FRAME_S
    return float(np.sqrt((positions * positions).sum(axis=1)).max())


def _length_cm(travel_rms: float, duration: float) -> float:
    # for x = (L/2) sin(wt) the acceleration's RMS is (L/2) w^2 / sqrt(2): a rough estimate
    # of the one-way travel, for the log (strokes are not counted on it)
    if duration <= 0.0:
        return math.nan
    omega = 2.0 * math.pi / duration
    return round(100.0 * 2.0 * math.sqrt(2.0) * travel_rms / omega**2, 1)
