"""The rep counter on its own: squeeze force frames in, reps out."""

from __future__ import annotations

import numpy as np

from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.reps import RepCounter

HOLD_N = 35.0


def pulses(count: int, rise_n: float, seconds: float, gap_s: float, lead_s: float = 3.0) -> np.ndarray:
    """A held squeeze, then ``count`` smooth pushes into the roller, ``gap_s`` apart, then the hold again."""
    lead = np.full(int(round(lead_s / FRAME_S)), HOLD_N)
    phase = np.linspace(0.0, np.pi, int(round(seconds / FRAME_S)) + 1)[1:]
    one = HOLD_N + rise_n * np.sin(phase) ** 2
    gap = np.full(int(round(gap_s / FRAME_S)), HOLD_N)
    return np.concatenate([lead] + [np.concatenate([one, gap]) for _ in range(count)] + [lead])


def count_reps(force: np.ndarray, rolling_until_s: float = -1.0, swaying: bool = False) -> int:
    counter = RepCounter()
    for k, f in enumerate(force):
        t = k * FRAME_S
        counter.update(t, float(f), rolling=t < rolling_until_s, swaying=swaying)
    return counter.count


def test_reps_from_a_held_squeeze_are_counted():
    assert count_reps(pulses(6, rise_n=25.0, seconds=2.0, gap_s=1.5)) == 6


def test_quick_reps_with_no_steady_moment_between_them_are_counted():
    assert count_reps(pulses(8, rise_n=28.0, seconds=1.0, gap_s=0.3)) == 8


def test_quick_reps_that_begin_while_the_roller_still_rolls_are_counted_from_the_first_trough():
    force = pulses(8, rise_n=28.0, seconds=1.0, gap_s=0.3, lead_s=1.0)
    # the first push starts while the roller is still rolling: that rise cannot be told
    # from rolling, and the squeeze is never steady again; the other seven still count
    assert count_reps(force, rolling_until_s=1.5) == 7


def test_taking_hold_of_the_handles_is_not_a_rep():
    grab = np.concatenate([np.full(20, 3.0), np.linspace(3.0, HOLD_N, 8), np.full(60, HOLD_N)])
    assert count_reps(grab) == 0


def test_squeezing_harder_for_good_is_not_a_rep():
    harder = np.concatenate([np.full(30, HOLD_N), np.linspace(HOLD_N, HOLD_N + 25, 10), np.full(80, HOLD_N + 25)])
    assert count_reps(harder) == 0


def test_a_small_sway_is_not_a_rep():
    sway = HOLD_N + 2.0 * np.sin(np.arange(200) * FRAME_S * 2 * np.pi / 2.0)
    assert count_reps(sway) == 0


def test_quick_reps_are_counted_while_a_bout_of_strokes_may_still_go_on():
    # just after gentle rolling, each rep's small tilt moves the pod as much as the
    # gentle strokes did: that must not wipe out the reps
    assert count_reps(pulses(7, rise_n=25.0, seconds=1.1, gap_s=0.3), swaying=True) == 7


def test_rolling_sways_the_squeeze_without_a_rep_while_a_bout_may_go_on():
    t = np.arange(300) * FRAME_S
    sway = 100.0 + 9.0 * np.sin(2 * np.pi * t / 2.0)  # +/-9 % of the squeeze, a stroke every 2 s
    assert count_reps(sway, swaying=True) == 0
    # held still, the same pulses would be small reps: the bout is what rules them out
    assert count_reps(sway) > 0


def test_a_rep_is_reported_early_in_the_relaxing():
    counter = RepCounter()
    force = pulses(1, rise_n=30.0, seconds=2.0, gap_s=2.0)
    reps = [counter.update(k * FRAME_S, float(f), rolling=False) for k, f in enumerate(force)]
    (rep,) = [r for r in reps if r is not None]
    # a quarter of the way down a 2 s push: a third of a second after its top
    assert 0.0 < rep.reported_t - rep.t <= 0.4


def test_a_push_that_sags_on_the_way_up_is_one_rep():
    # up 20 N, a 6 N sag (reported: over a quarter of the rise), on up to 40 N, and back down
    up = np.linspace(HOLD_N, HOLD_N + 20.0, 6)[1:]
    sag = np.linspace(HOLD_N + 20.0, HOLD_N + 14.0, 3)[1:]
    on = np.linspace(HOLD_N + 14.0, HOLD_N + 40.0, 8)[1:]
    down = np.linspace(HOLD_N + 40.0, HOLD_N, 10)[1:]
    hold = np.full(30, HOLD_N)
    assert count_reps(np.concatenate([hold, up, sag, on, down, hold])) == 1
