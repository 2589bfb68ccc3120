"""How soon the user hears that a step is done.

Runs the production daemon in real time (speed 1) on the emulated devices with a
short two-step routine done by the simulated person, and measures, for every
step-done cue, the delay from the event that completed the step (the stroke or
rep as the pipeline reported it, on the clock) to the cue's first change on the
buzzer pin, and from the true end of that movement (the simulator's truth) to the
same pin change. Target: under 0.25 s at the median from the event.

    python benchmarks/bench_cues.py [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from kneeroll_device.config import load_config
from kneeroll_device.demo import run_demo
from kneeroll_device.routine.spec import parse_routine
from kneeroll_device.sim.world import simulate_session

SHORT_ROUTINE = {
    "routine": {"id": "bench", "name": "Two steps"},
    "steps": [
        {"id": "mid-thigh-roll", "name": "Roll", "kind": "roll", "instruction": "Roll.",
         "roll_seconds": {"min": 6, "max": 8}, "pressure_limit_kpa": 60, "colour": "green"},
        {"id": "mid-thigh-release", "name": "Reps", "kind": "release", "instruction": "Reps.",
         "reps_per_point": {"min": 3, "max": 4}, "points": 1, "pressure_limit_kpa": 60, "colour": "blue"},
    ],
}


class TimedPin(MockPWMPin):
    """A mock pin that also keeps the daemon's clock time of each change (once the daemon is known)."""

    clock = None  # the running daemon's clock, set when its first action arrives

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.changes: list[tuple[float, object]] = []

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed and TimedPin.clock is not None:
            self.changes.append((TimedPin.clock(), value))
        return changed


def one_run(seed: int) -> list[tuple[float, float]]:
    config = load_config()
    routine = parse_routine(SHORT_ROUTINE, "bench routine")
    session = simulate_session(routine, seed=seed)
    factory = MockFactory(revision="902120", pin_class=TimedPin)
    done_events: list[float] = []

    def on_action(action, daemon):
        TimedPin.clock = daemon.clock
        if action.kind == "step_done":
            done_events.append(action.t)

    with tempfile.TemporaryDirectory() as data_dir:
        run_demo(config, routine, session, data_dir=Path(data_dir), speed=1.0, on_action=on_action,
                 pin_factory=factory)
    TimedPin.clock = None
    buzzer = factory.pin(config.pins.buzzer)
    sounds = [t for t, value in buzzer.changes if value]
    truth_ends = []
    for step in session.script.steps:
        marks = step.stroke_ends if step.kind == "roll" else step.rep_peaks
        truth_ends.append(marks)
    out = []
    for event_t in done_events:
        first_sound = min(t for t in sounds if t >= event_t - 1e-3)
        # the movement that completed the step: the latest true stroke end or rep peak before the event
        truth = max(t for marks in truth_ends for t in marks if t <= event_t + 1e-3)
        out.append((first_sound - event_t, first_sound - truth))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    delays = []
    for seed in args.seeds:
        run = one_run(seed)
        delays += run
        print(f"seed {seed}: " + ", ".join(f"{a * 1000:.0f} ms after the event ({b * 1000:.0f} ms after the truth)"
                                             for a, b in run))
    from_event = [a for a, _ in delays]
    from_truth = [b for _, b in delays]
    print(f"\nstep-done cue on the buzzer pin, {len(delays)} steps, real time (speed 1):")
    print(f"  after the completing event: median {statistics.median(from_event) * 1000:.0f} ms, "
          f"max {max(from_event) * 1000:.0f} ms (target: median < 250 ms)")
    print(f"  after the true end of the movement: median {statistics.median(from_truth) * 1000:.0f} ms, "
          f"max {max(from_truth) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
