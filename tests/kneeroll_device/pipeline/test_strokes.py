"""The stroke counter's two candidate axes: what is told when the count moves from one to the other."""

from __future__ import annotations

import math

import pytest

from kneeroll_device.pipeline.axis import AxisCovariance
from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.strokes import G, StrokeCounter

TILT_STROKE_S = 4.0  # the rolling, about y


class ScriptedAxes:
    """The main axis is x, the reaching axis y, and the count moves at the set times."""

    def __init__(self, *move_at_s: float):
        self.main, self.reach = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
        self.twisting = self.changed = False
        self.rates = AxisCovariance()
        self._frames, self._moves = 0, {round(s / FRAME_S) for s in move_at_s}

    def update(self, rate, velocity=None, raw_rate=None):
        self._frames += 1
        self.changed = velocity is not None and self._frames in self._moves
        self.twisting ^= self.changed

    def main_amplitude(self) -> float:
        return 0.0

    def forget(self) -> None:
        pass


def roll_and_twist(*move_at_s: float, twist_dps: float = 30.0, gyro_until_s: float = 60.0,
                   tilt_off: tuple[float, float] = (0.0, 0.0)):
    """40 s of a 10 deg/s tilt about y (a stroke every 4 s) and a twist about x at its own
    1.3 s rhythm; the counter, and when it told its strokes."""
    counter = StrokeCounter()
    counter.axes = ScriptedAxes(*move_at_s)
    told = []
    for k in range(int(40.0 / FRAME_S)):
        t = k * FRAME_S
        phase = 2 * math.pi * t / TILT_STROKE_S
        tilt = 0.0 if tilt_off[0] <= t < tilt_off[1] else 10.0 * math.sin(phase)
        rate = (twist_dps * math.sin(2 * math.pi * t / 1.3), tilt, 0.0)
        # the travel that goes with the tilt, 25 cm each way, along x as the accelerometer
        # sees it (only the count without the gyro uses it: the scripted axes ignore it)
        travel = (0.125 * (2 * math.pi / TILT_STROKE_S) ** 2 * math.cos(phase) / G, 0.0, 0.0)
        event = counter.update(t, rate if t < gyro_until_s else None, travel, 60.0)
        if event is not None:
            told.append(event.t)
    return counter, told


TILT_STROKES = 9  # those the tilt makes in the 40 s, from 8 s on (the first half-stroke is learnt)


def test_both_axes_are_followed_all_the_time():
    counter, told = roll_and_twist()
    assert counter._on_main.strokes == len(told) == 30  # every twist, on the axis counted on
    assert counter._on_reach.strokes == TILT_STROKES  # and every tilt stroke on the other


def test_a_twist_told_as_a_stroke_before_the_count_moves_is_made_good():
    _, told = roll_and_twist(2.0)
    assert told[0] < 2.0  # a twist cycle, told while the count was still on the main axis
    assert len(told) == TILT_STROKES  # the next tilt stroke made up for it


def test_a_stroke_too_many_is_made_good_only_by_a_stroke_soon_after_the_move():
    # the rolling stops as the count moves and resumes 8 s later: a new bout, whose
    # first stroke is its own
    _, told = roll_and_twist(12.2, tilt_off=(12.2, 20.0))
    assert len([t for t in told if t < 12.2]) > 3  # twists, told on the main axis
    assert [t for t in told if t > 12.2] == pytest.approx([24.0, 28.0, 32.0, 36.0])


def test_a_stroke_only_the_new_axis_saw_is_told_when_the_count_moves():
    counter, told = roll_and_twist(8.5, twist_dps=0.0)
    assert told[0] == pytest.approx(8.4)  # the tilt stroke that ended at 8 s, told at the move
    # the one at 4 s is not the move's doing: the old axis missed it for reasons of its own
    assert len(told) == TILT_STROKES - 1


def test_a_stroke_is_told_once_however_often_the_count_moves_back_and_forth():
    _, told = roll_and_twist(8.3, 8.8, 9.3, twist_dps=0.0)
    assert told == pytest.approx([8.2, 12.0, 16.0, 20.0, 24.0, 28.0, 32.0, 36.0])


def test_without_the_gyro_the_count_goes_on_from_the_main_axis():
    # the gyro's frames stop while counting on the reaching axis: there is no reaching
    # signal any more, and the main one must not be left without a count
    counter, told = roll_and_twist(2.0, twist_dps=0.0, gyro_until_s=12.0)
    assert counter.axes.twisting
    assert len([t for t in told if t > 14.0]) >= 5


def test_rolling_that_begins_as_a_rep_eases_off_is_counted_from_its_first_half():
    # a rep was noted as the first half-stroke began, while it was still as small as a
    # rep's tilt; it grew to the full 10 deg/s of rolling, so it is rolling
    counter = StrokeCounter()
    counter.axes = ScriptedAxes()
    told = []
    for k in range(int(20.0 / FRAME_S)):
        t = k * FRAME_S
        rate = (10.0 * math.sin(2 * math.pi * t / TILT_STROKE_S), 0.0, 0.0)
        if t < 0.4:
            counter.note_rep(started=-1.0, t=t)
        event = counter.update(t, rate, (0.0, 0.0, 0.0), 60.0)
        if event is not None:
            told.append(event.t)
    assert told == pytest.approx([4.0, 8.0, 12.0, 16.0])
