"""Hard but honest cases: named variations of the simulated person, thigh and pod.

Each case changes what a real person, thigh or sensor could plausibly do, and
nothing else; none is shaped after what the pipeline happens to handle. The
benchmarks (benchmarks/bench_accuracy.py) run the pipeline over many seeds of
every case and score it against the ground truth the script writes.

    session = simulate_case("fast-cadence", seed=3)
    session.script.steps          # the truth, per step

The ground truth is what a person watching would count:

- A stroke is one back-and-forth of the roller along the thigh under squeeze,
  whatever its speed (10 to 60 a minute) or length (5 to 30 cm). A hesitation
  at the far end or mid-way, or a pause of several seconds in the middle of a
  roll step, does not add a stroke. Twisting the roller while rolling is not a
  stroke either, in step with the strokes or at its own rhythm.
- A rep is one deliberate tightening and straightening of the leg against the
  held roller, fast (about a second) or slow with the leg held straight at the
  top. A partial rep (the leg straightens only part of the way: 40-70 % of the
  person's full push into the roller) counts. A twitch (1-3 N for a fraction of
  a second, the leg does not move) does not.
- Nothing counts outside a step: carrying the roller to the next site, sliding
  it to the next trigger point (with or without letting go, overshooting and
  coming back), searching for the tender spot, and a rest in which the person
  shifts on the chair, grabs the handles without pressing in, or jiggles the
  leg. Every count there is a phantom.
- A rep's time is its force peak; for a rep held at the top it is the moment
  the leg starts to relax (when a watcher knows it is done). A stroke's time is
  when the roller is back where the stroke began.

Sensor cases stay within datasheet limits (MPU-6050: zero-g offset up to
+/-50 mg, zero-rate offset up to +/-20 dps, noise 400 ug/sqrt(Hz) and
0.005 dps/sqrt(Hz); a bar load cell read by an HX711).

The physics here is the one of :func:`.world.simulate_session` (the same draws
in the same order, so the ``baseline`` case is that function's session for the
same seed), with some of the thigh's and the pod's numbers overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..routine.spec import Routine, load_routine
from . import world
from .person import FS, Habits, write_script
from .world import SimulatedSession, _angular_rate, _rot_x, _rot_y, _rot_z, random_rotation

# MPU-6050 datasheet limits (product specification rev 3.4, tables 6.1 and 6.2)
ZERO_G_OFFSET_G = 0.050
ZERO_RATE_OFFSET_DPS = 20.0
# zero-rate offset over temperature: +/-20 dps across -40..85 C, about 0.16 dps/C;
# a pod warmed 5-10 C by the hand over a session drifts by about a degree per second
GYRO_WARMUP_DRIFT_DPS = 1.5


@dataclass(frozen=True)
class Sensors:
    """Overrides of the thigh and the pod that world.simulate_session draws; None keeps the draw."""

    curvature_rad_per_m: tuple[float, float] | None = None  # range of |curvature|; its sign stays drawn
    mount: str = "random"  # "random" as world draws it, or "cube": a cube orientation tilted up to 45 degrees
    accel_bias_g: float | None = None  # each axis at +/- this (the datasheet's corner), signs drawn
    gyro_bias_dps: float | None = None
    gyro_drift_dps: float = 0.0  # zero-rate offset wandering this far over the session (warm-up)
    force_zero_drift_n: float | None = None  # the load cell's zero moves by half to all of this over the session
    force_creep_share: float = 0.0  # a sustained load reads this much higher after ...
    force_creep_tau_s: float = 30.0  # ... about this long (creep), recovering when unloaded


@dataclass(frozen=True)
class Case:
    name: str
    focus: str  # what it makes hard: "roll", "release", "rest" or "all"
    description: str
    habits: Callable[[Habits, np.random.Generator], dict] | None = None  # changes to a drawn person
    sensors: Sensors = field(default_factory=Sensors)


def _u(lo: float, hi: float):
    return lambda rng: float(rng.uniform(lo, hi))


CASES: dict[str, Case] = {case.name: case for case in (
    Case("baseline", "all", "a drawn person with the default sensors (the demo's sessions)"),
    Case("slow-cadence", "roll", "10-14 strokes a minute",
         lambda h, r: {"cadence_spm": _u(10, 14)(r)}),
    Case("fast-cadence", "roll", "50-60 strokes a minute, 8-16 cm",
         lambda h, r: {"cadence_spm": _u(50, 60)(r), "stroke_cm": _u(8, 16)(r)}),
    Case("short-strokes", "roll", "strokes of about 5 cm",
         lambda h, r: {"stroke_cm": _u(4.5, 5.5)(r)}),
    Case("long-strokes", "roll", "strokes of about 30 cm",
         lambda h, r: {"stroke_cm": _u(28, 32)(r)}),
    Case("hesitant", "roll", "60 % of strokes dwell 0.5-1.5 s at the far end or mid-way",
         lambda h, r: {"hesitation_p": 0.6, "dwell_range_s": (0.5, 1.5)}),
    Case("mid-pause", "roll", "every roll step stops for 3-6 s in the middle, still squeezing",
         lambda h, r: {"mid_pause_p": 1.0, "mid_pause_range_s": (3.0, 6.0)}),
    Case("twisting", "roll", "twists 20-35 degrees in step with the strokes, on every roll step",
         lambda h, r: {"twist_every_roll": True, "twist_deg": _u(20, 35)(r)}),
    Case("free-twist", "roll", "twists 10-25 degrees at its own rhythm (0.8-2.5 s) while rolling",
         lambda h, r: {"twist_free_period_s": _u(0.8, 2.5)(r), "twist_deg": _u(10, 25)(r)}),
    Case("slow-reps", "release", "reps of 4.5-6.5 s with the leg held straight 0.5-1.5 s at the top",
         lambda h, r: {"rep_seconds": _u(4.5, 6.5)(r), "rep_top_s": _u(0.5, 1.5)(r)}),
    Case("fast-reps", "release", "reps of about a second, 0.25-0.45 s apart",
         lambda h, r: {"rep_seconds": _u(0.9, 1.2)(r), "rep_gap_s": _u(0.25, 0.45)(r)}),
    Case("partial-reps", "release", "40 % of reps only part done (they count); twitches between reps (they do not)",
         lambda h, r: {"partial_rep_p": 0.4, "twitch_p": 0.5}),
    Case("force-drift", "release", "the load cell's zero drifts 5-10 N over the session and a held load creeps up 2 % in ~30 s",
         sensors=Sensors(force_zero_drift_n=10.0, force_creep_share=0.02, force_creep_tau_s=30.0)),
    Case("repositioning", "release", "three trigger points per release; slides on without letting go, may overshoot",
         lambda h, r: {"points_per_release": 3, "reposition_style": "adjust"}),
    Case("sensor-limits", "all", "IMU offsets at the datasheet's corners (50 mg, 20 dps) and gyro warm-up drift",
         sensors=Sensors(accel_bias_g=ZERO_G_OFFSET_G, gyro_bias_dps=ZERO_RATE_OFFSET_DPS,
                         gyro_drift_dps=GYRO_WARMUP_DRIFT_DPS)),
    Case("any-angle", "all", "the pod clipped on square to any face, or up to 45 degrees off it",
         sensors=Sensors(mount="cube")),
    Case("low-curvature", "roll", "a straight thigh: the frame tilts 0.1-0.3 rad per metre (default 0.6-1.6)",
         sensors=Sensors(curvature_rad_per_m=(0.1, 0.3))),
    Case("fidgety-rests", "rest", "6-12 s rests with shifting, grabbing the handles and a jiggling leg",
         lambda h, r: {"fidget_rests": True, "pause_s": _u(6, 12)(r)}),
)}


def case_habits(case: Case | str, seed: int) -> Habits | None:
    """The person of a case for a seed: a drawn person with the case's changes (None: as drawn)."""
    case = CASES[case] if isinstance(case, str) else case
    if case.habits is None:
        return None
    rng = np.random.default_rng([seed, 17])
    base = Habits.draw(rng)
    return dataclasses.replace(base, **case.habits(base, rng))


def simulate_case(case: Case | str, seed: int = 1, routine: Routine | None = None) -> SimulatedSession:
    """One session of a case: the person's script, then the pod's and the load cell's readings."""
    case = CASES[case] if isinstance(case, str) else case
    routine = routine or load_routine("runners-knee")
    script = write_script(routine, seed=seed, habits=case_habits(case, seed))
    return _sense(script, seed, routine.id, case.sensors, scenario=case.name)


def _cube_mount(rng: np.random.Generator) -> np.ndarray:
    """One of the 24 ways to put a box square on a face, then tilted up to 45 degrees about a random axis."""
    faces = []
    for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (1, 0, 2), (0, 2, 1), (2, 1, 0)):
        for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, -1), (-1, -1, -1)):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if np.linalg.det(m) > 0:
                faces.append(m)
    square = faces[int(rng.integers(len(faces)))]
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.0, 45.0))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    tilt = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    return square @ tilt


def _creep(force: np.ndarray, share: float, tau_s: float) -> np.ndarray:
    """Reading excess of a creeping load cell: a first-order lag of the load, times ``share``."""
    step = 20  # the lag is slow: update it at FS/20 and hold between
    a = 1.0 - np.exp(-step / (tau_s * FS))
    coarse = force[::step]
    lagged = np.empty_like(coarse)
    y = 0.0
    for i, f in enumerate(coarse.tolist()):
        y += a * (f - y)
        lagged[i] = y
    return share * np.repeat(lagged, step)[: len(force)]


def _sense(script, seed: int, routine_id: str, sensors: Sensors, scenario: str) -> SimulatedSession:
    """world.simulate_session's physics with the overrides of ``sensors`` (same draws, same order)."""
    rng = np.random.default_rng([seed, 7])
    extra = np.random.default_rng([seed, 19])
    n = len(script.s_m)
    t = np.arange(n) / FS
    dt = 1.0 / FS

    slope = np.deg2rad(rng.uniform(-5.0, 15.0))
    curvature = rng.uniform(0.6, 1.6) * rng.choice([-1.0, 1.0])
    yaw = rng.uniform(-np.pi, np.pi)
    if sensors.curvature_rad_per_m is not None:
        curvature = np.sign(curvature) * extra.uniform(*sensors.curvature_rad_per_m)
    s_mid = float(np.median(script.s_m))
    pitch = slope + curvature * (script.s_m - s_mid) + script.rep_tilt_rad
    roll = script.placement_rad + script.twist_rad
    frame = _rot_z(yaw)[None] @ _rot_y(pitch) @ _rot_x(roll)
    mount = random_rotation(rng)
    if sensors.mount == "cube":
        mount = _cube_mount(extra)
    pod = frame @ mount

    axis_point = np.stack([script.s_m * np.cos(slope), np.zeros(n), -script.s_m * np.sin(slope)], -1) @ _rot_z(yaw).T
    position = axis_point + frame @ world.POD_ARM_M
    accel_world = np.gradient(np.gradient(position, dt, axis=0), dt, axis=0)
    specific_world = accel_world / world.G + np.array([0.0, 0.0, 1.0])
    accel = np.einsum("nji,nj->ni", pod, specific_world)
    gyro = np.rad2deg(_angular_rate(pod, dt))

    accel_bias = rng.uniform(-world.ACCEL_BIAS_G, world.ACCEL_BIAS_G, 3)
    accel_noise = rng.normal(0, world.ACCEL_NOISE_G, (n, 3))
    if sensors.accel_bias_g is not None:
        accel_bias = extra.choice([-1.0, 1.0], 3) * sensors.accel_bias_g
    accel += accel_bias + accel_noise
    gyro_bias = rng.uniform(-world.GYRO_BIAS_DPS, world.GYRO_BIAS_DPS, 3)
    gyro_noise = rng.normal(0, world.GYRO_NOISE_DPS, (n, 3))
    if sensors.gyro_bias_dps is not None:
        gyro_bias = extra.choice([-1.0, 1.0], 3) * sensors.gyro_bias_dps
    gyro += gyro_bias + gyro_noise
    if sensors.gyro_drift_dps:
        # warming up: the offset moves along a random direction, quickly at first, then settles
        direction = extra.normal(size=3)
        direction /= np.linalg.norm(direction)
        gyro += sensors.gyro_drift_dps * direction * (1.0 - np.exp(-t / 120.0))[:, None]
    creep_n = rng.uniform(-world.FORCE_DRIFT_N, world.FORCE_DRIFT_N)
    if sensors.force_zero_drift_n is not None:
        creep_n = extra.choice([-1.0, 1.0]) * extra.uniform(0.5, 1.0) * sensors.force_zero_drift_n
    creep = creep_n * t / max(t[-1], 1.0)
    force = script.force_n + creep + rng.normal(0, world.FORCE_NOISE_N, n)
    if sensors.force_creep_share:
        force = force + _creep(script.force_n, sensors.force_creep_share, sensors.force_creep_tau_s)
    return SimulatedSession(seed, scenario, routine_id, script, t, accel, gyro, force, script.force_n.copy())
