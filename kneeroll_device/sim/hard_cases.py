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
from .person import Habits, write_script
from .world import Sensors, SimulatedSession, sense

# MPU-6050 datasheet limits (product specification rev 3.4, tables 6.1 and 6.2)
ZERO_G_OFFSET_G = 0.050
ZERO_RATE_OFFSET_DPS = 20.0
# zero-rate offset over temperature: +/-20 dps across -40..85 C, about 0.16 dps/C;
# a pod warmed 5-10 C by the hand over a session drifts by about a degree per second
GYRO_WARMUP_DRIFT_DPS = 1.5


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
    return sense(script, seed, routine.id, case.sensors, scenario=case.name)
