"""Strokes: out-and-back cycles of the roller along the leg, told from the tilt or the squeeze."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.strokes import G, StrokeCounter

PERIOD_S = 2.0
LENGTH_M = 0.15
TAPER_RAD_PER_M = 0.4


def rolling(strokes: int, *, squeeze_n: float = 80.0, travel: bool = True, twist_deg: float = 0.0,
            twist_period_s: float = 1.1, force: bool = True, mount=np.eye(3)):
    """Frames of rest, then ``strokes`` strokes, then rest: (t, tilt, accel g, rate deg/s, force N)."""
    frames = []
    omega = 2 * math.pi / PERIOD_S
    rolling_s = strokes * PERIOD_S
    for k in range(int((rolling_s + 6.0) / FRAME_S)):
        t = k * FRAME_S
        s = min(max(t - 2.0, 0.0), rolling_s)
        on = 2.0 <= t < 2.0 + rolling_s
        x = LENGTH_M / 2 * (1 - math.cos(omega * s))
        v = LENGTH_M / 2 * omega * math.sin(omega * s) if on else 0.0
        a = LENGTH_M / 2 * omega**2 * math.cos(omega * s) if on and travel else 0.0
        pitch, pitch_rate = TAPER_RAD_PER_M * x, TAPER_RAD_PER_M * v
        wt = 2 * math.pi / twist_period_s
        roll = math.radians(twist_deg) * math.sin(wt * t) if on else 0.0
        roll_rate = math.radians(twist_deg) * wt * math.cos(wt * t) if on else 0.0
        # the frame pitches about the handles (y) with the thigh's taper and twists about the
        # thigh (x); body to world: R = Ry(pitch) Rx(roll)
        rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
        ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
        body = ry @ rx
        down = body.T @ np.array([0.0, 0.0, 1.0])  # what the accelerometer reads of gravity
        accel = down + body.T @ np.array([a / G, 0.0, 0.0])
        rate = np.degrees(rx.T @ np.array([0.0, pitch_rate, 0.0]) + np.array([roll_rate, 0.0, 0.0]))
        squeeze = (squeeze_n * (1 + 0.8 * x) if (2.0 <= t < 2.0 + rolling_s + 0.3) else 1.0) if force else math.nan
        tilt = mount @ down
        frames.append((t, tuple(tilt / np.linalg.norm(tilt)), tuple(mount @ accel), tuple(mount @ rate), squeeze))
    return frames


def count(frames) -> tuple[StrokeCounter, list[float]]:
    counter, told = StrokeCounter(), []
    for t, tilt, accel, rate, force in frames:
        event = counter.update(t, tilt, accel, rate, force)
        if event is not None:
            told.append(event.t)
    return counter, told


def test_each_stroke_is_told_once_at_its_end():
    _, told = count(rolling(10))
    assert len(told) == 10
    ends = [2.0 + PERIOD_S * (i + 1) for i in range(10)]
    assert all(0.0 <= t - end <= 0.9 for t, end in zip(told, ends))


def test_the_count_does_not_depend_on_how_the_pod_is_mounted():
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert len(count(rolling(8, mount=q))[1]) == 8


def test_a_roller_moved_without_squeezing_it_is_not_rolling():
    assert count(rolling(6, squeeze_n=2.0))[1] == []


def test_tilting_out_and_back_without_travelling_is_not_rolling():
    # the thigh lifting and tilting the frame with each rep: the same tilt, no travel along the leg
    assert count(rolling(6, travel=False))[1] == []


def test_without_a_force_sensor_the_tilt_alone_counts():
    assert len(count(rolling(8, force=False))[1]) == 8


@pytest.mark.parametrize("twist_period_s", [1.1, 3.7])
def test_a_twist_at_its_own_rhythm_moves_the_count_to_the_squeeze(twist_period_s):
    counter, told = count(rolling(16, twist_deg=20.0, twist_period_s=twist_period_s))
    assert counter.counting_on == "squeeze"
    # once the rhythms have been compared (12 s), every stroke is told once, at its end
    ends = [2.0 + PERIOD_S * (i + 1) for i in range(16) if 2.0 + PERIOD_S * (i + 1) >= 14.0]
    assert [sum(0.0 <= t - end <= 0.9 for t in told) for end in ends] == [1] * len(ends)
    assert all(any(0.0 <= t - end <= 0.9 for end in ends) for t in told if t >= 14.0)
