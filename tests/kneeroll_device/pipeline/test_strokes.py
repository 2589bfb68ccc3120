"""The stroke counter's two candidate axes: what is told when the count moves from one to the other."""

from __future__ import annotations

import math

import pytest

from kneeroll_device.pipeline.axis import AxisCovariance
from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.strokes import StrokeCounter

TILT_STROKE_S = 4.0  # the rolling, about y: a stroke ends every 4 s from 8 s on (the first is half learnt)


class ScriptedAxes:
    """The main axis is x, the reaching axis y, and the count moves to y at a set time."""

    def __init__(self, move_at_s: float):
        self.main, self.reach = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
        self.twisting = self.changed = False
        self.rates = AxisCovariance()
        self._frames, self._move_at = 0, round(move_at_s / FRAME_S)

    def update(self, rate, velocity=None, raw_rate=None):
        self._frames += 1
        self.changed = self._frames == self._move_at
        self.twisting = self.twisting or self.changed
        return self.reach if self.twisting else self.main

    def main_amplitude(self) -> float:
        return 0.0

    def forget(self) -> None:
        pass


def roll_and_twist(move_at_s: float, twist_dps: float) -> tuple[StrokeCounter, list[float]]:
    """40 s of a 10 deg/s tilt about y and a twist about x at its own 1.3 s rhythm."""
    counter = StrokeCounter()
    counter.axes = ScriptedAxes(move_at_s)
    told = []
    for k in range(int(40.0 / FRAME_S)):
        t = k * FRAME_S
        rate = (twist_dps * math.sin(2 * math.pi * t / 1.3), 10.0 * math.sin(2 * math.pi * t / TILT_STROKE_S), 0.0)
        event = counter.update(t, rate, (0.0, 0.0, 0.0), 60.0)
        if event is not None:
            told.append(event.t)
    return counter, told


def test_both_axes_are_followed_all_the_time():
    counter, _ = roll_and_twist(move_at_s=100.0, twist_dps=30.0)
    assert counter._on_main.strokes == 30  # every twist, on the axis the count stayed on
    assert counter._on_reach.strokes == 9  # and every tilt stroke on the other


def test_a_twist_told_as_a_stroke_before_the_count_moves_is_made_good():
    counter, told = roll_and_twist(move_at_s=2.0, twist_dps=30.0)
    assert told[0] < 2.0  # a twist cycle, told while the count was still on the main axis
    assert len(told) == counter._on_reach.strokes  # the next tilt stroke made up for it


def test_a_stroke_only_the_new_axis_saw_is_told_when_the_count_moves():
    counter, told = roll_and_twist(move_at_s=8.5, twist_dps=0.0)
    assert told[0] == pytest.approx(8.4)  # the tilt stroke that ended at 8 s, told at the move
    # one from seconds before is not the move's doing: the old axis had its own reasons
    assert len(told) == counter._on_reach.strokes - 1

