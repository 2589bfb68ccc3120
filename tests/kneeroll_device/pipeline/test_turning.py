"""Turning points: where a position-like signal reverses, whatever its scale, offset or axis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.turning import PathTurns, QuickTurn, TurningPoints


def turns_of(signal, detector) -> list:
    found = []
    for k, x in enumerate(signal):
        turn, _ = detector.update(k * FRAME_S, x)
        if turn is not None:
            found.append(turn)
    return found


def back_and_forth(cycles: int, period_s: float, amplitude: float, offset: float = 0.0) -> list[float]:
    t = np.arange(0.0, cycles * period_s + 2.0, FRAME_S)
    return list(offset + amplitude * (1 - np.cos(2 * np.pi * np.minimum(t, cycles * period_s) / period_s)) / 2)


@pytest.mark.parametrize("amplitude, offset", [(0.01, 0.0), (1.0, 5.0), (40.0, -120.0)])
def test_each_way_is_one_turn_whatever_the_scale_and_offset(amplitude, offset):
    turns = turns_of(back_and_forth(6, 2.0, amplitude, offset), TurningPoints(1e-4, 0.5, stall_s=0.8))
    assert len(turns) == 12  # out and back six times; the last back ends at rest
    assert [t.direction for t in turns] == [1, -1] * 6
    assert turns[-1].stalled


def test_a_pause_on_the_way_is_not_a_turn():
    t = np.arange(0.0, 10.0, FRAME_S)
    out = np.interp(t, [0, 1, 2.5, 3.5, 6, 10], [0, 0.5, 0.5, 1.0, 0.0, 0.0])  # out, pause, on out, back
    turns = turns_of(list(out), TurningPoints(1e-3, 0.5, stall_s=2.0))
    assert [t.direction for t in turns] == [1, -1]


def test_noise_below_the_floor_makes_no_turns():
    rng = np.random.default_rng(1)
    assert turns_of(list(rng.normal(0.0, 0.1, 300)), TurningPoints(1.0, 0.5, stall_s=0.8)) == []


def test_a_movement_in_any_direction_turns_the_same():
    strokes = back_and_forth(5, 2.0, 0.05)
    rng = np.random.default_rng(2)
    for _ in range(5):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        path = [tuple(axis * s + (0.3, -0.2, 0.9)) for s in strokes]
        turns = turns_of(path, PathTurns(1e-3, 0.5, stall_s=0.8))
        assert len(turns) == 10
        assert [t.direction for t in turns] == [1, -1] * 5
        assert turns[0].swing == pytest.approx(0.05, rel=0.05)


def test_the_scale_learnt_from_a_big_movement_fades():
    detector = TurningPoints(0.01, 0.5)
    turns_of(back_and_forth(1, 2.0, 10.0), detector)
    big = detector.swing
    for k in range(200):  # 20 s at rest
        detector.update(10.0 + k * FRAME_S, 0.0)
    assert detector.swing < big * math.exp(-1.5)


def test_the_path_learns_a_swing_far_above_its_floor_from_its_first_movements():
    # an arm swinging 60 degrees, on a floor of a tenth of a degree: the small wiggles at the
    # ends of each swing (a tenth of it) are not turns, from the second swing on
    t = np.arange(0.0, 16.0, FRAME_S)
    swing = 1.0 * (1 - np.cos(2 * np.pi * t / 4.0)) / 2 + 0.1 * np.sin(2 * np.pi * t / 0.5) * (t > 4.0)
    path = [(s, 0.0, 0.0) for s in swing]
    turns = turns_of(path, PathTurns(math.radians(0.1), 0.5, stall_s=0.8))
    assert len([t for t in turns if t.t > 4.0]) == 6  # out and back three times: no wiggle counted
    assert [t.swing for t in turns if t.t > 4.0] == pytest.approx([1.0] * 6, abs=0.25)


def test_one_wild_movement_does_not_deafen_the_path_to_the_next_ones():
    strokes = back_and_forth(3, 2.0, 0.05)
    grab = [0.05 + 0.05 * k for k in range(20)] + [1.05 - 0.05 * k for k in range(20)]  # out 1 m and back
    path = [(s, 0.0, 0.0) for s in strokes + grab + back_and_forth(3, 2.0, 0.05)]
    detector = PathTurns(1e-3, 0.5, stall_s=0.8)
    turns = turns_of(path, detector)
    after = [t for t in turns if t.t > (len(strokes) + len(grab)) * FRAME_S]
    assert len(after) == 6
    assert detector.swing == pytest.approx(0.05, rel=0.1)



QUICK = QuickTurn(share=0.3, speed=0.6)


def lags(signal, detector) -> list[float]:
    """How long after each turn it was confirmed (s)."""
    out = []
    for k, x in enumerate(signal):
        turn, _ = detector.update(k * FRAME_S, (x, 0.0, 0.0) if isinstance(detector, PathTurns) else x)
        if turn is not None:
            out.append(k * FRAME_S - turn.t)
    return out


@pytest.mark.parametrize("follower", [TurningPoints, PathTurns])
def test_a_movement_reversed_at_its_pace_is_a_turn_a_fifth_of_a_stroke_after_it(follower):
    # smooth strokes of 2 s: half the swing back is 0.5 s after the turn; coming back at its
    # pace, 0.3 of the swing is 0.37 s after it, and the frame that passes it confirms it
    signal = back_and_forth(6, 2.0, 0.05)
    plain, quick = lags(signal, follower(0.01, 0.5, 0.8)), lags(signal, follower(0.01, 0.5, 0.8, QUICK))
    assert len(quick) == len(plain) == 12
    # (the first movements teach the swing and the pace; the last one ends at rest)
    assert all(p >= 0.5 - 1e-9 and q == pytest.approx(0.4) for p, q in zip(plain[6:-1], quick[6:-1]))


def test_a_hesitation_that_comes_back_slowly_waits_for_the_whole_hysteresis():
    # strokes of 2 s, then on the way out a slip back of 0.35 of the swing in 0.6 s (at 0.4
    # of the strokes' pace) before it goes on to the far end: not a turn
    strokes = back_and_forth(4, 2.0, 1.0)[:80]
    t = np.arange(8.0, 16.0, FRAME_S)
    slipping = list(np.interp(t, [8.0, 9.0, 9.6, 10.6, 12.6, 16.0], [0.0, 0.6, 0.25, 1.0, 0.0, 0.0]))
    for follower in (PathTurns(0.1, 0.5, 0.8, QUICK), PathTurns(0.1, 0.5, 0.8)):
        turns = turns_of([(x, 0.0, 0.0) for x in strokes + slipping], follower)
        assert [turn.t for turn in turns[-3:]] == pytest.approx([8.0, 10.6, 12.6], abs=0.15)  # out to 10.6 s, and back
    # were any pace quick enough, the slip would be a turn
    turns = turns_of([(x, 0.0, 0.0) for x in strokes + slipping], PathTurns(0.1, 0.5, 0.8, QuickTurn(0.3, 0.2)))
    assert 9.0 in [round(turn.t, 1) for turn in turns]
