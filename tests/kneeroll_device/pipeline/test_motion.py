"""Motion: gravity, stillness and the pod's side, whichever way the pod is mounted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.motion import MotionTracker


def wobble(frames: int, amplitude_g: float, seed: int = 3) -> list[np.ndarray]:
    """A pod at rest under a resting hand: gravity wobbling a little about (0, 0, 1) g and
    coming back, in random directions."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(frames):
        tip = amplitude_g * np.sin(2 * math.pi * k / 10) * rng.normal(size=3) / math.sqrt(3)
        out.append(np.array([0.0, 0.0, 1.0]) + tip)
    return out


def still_frames(readings, mount: np.ndarray) -> list[bool]:
    tracker, out = MotionTracker(), []
    for a in readings:
        tracker.update(tuple(mount @ a), (0.0, 0.0, 0.0))
        out.append(tracker.still)
    return out


def random_mounts(n: int):
    rng = np.random.default_rng(8)
    for _ in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        yield q * np.sign(np.linalg.det(q))


def test_stillness_does_not_depend_on_how_the_pod_is_mounted():
    # a wobble near the limit: judged axis by axis, a mount that spreads it over two axes
    # would be still where the upright one is not, or the other way round
    for amplitude in (0.02, 0.03, 0.04, 0.05):
        readings = wobble(80, amplitude)
        upright = still_frames(readings, np.eye(3))
        for mount in random_mounts(6):
            assert still_frames(readings, mount) == upright, amplitude


def test_a_pod_at_rest_is_still_and_a_wide_wobble_is_not():
    assert still_frames(wobble(60, 0.0), np.eye(3))[-1]
    assert not any(still_frames(wobble(60, 0.2), np.eye(3)))


def test_the_sensors_noise_is_learnt_at_rest_and_not_before():
    tracker = MotionTracker()
    for k in range(30):  # 3 s of a pod on the move: the samples within a frame move too
        angle = 0.4 * math.sin(k / 3)
        tracker.update((math.sin(angle), 0.0, math.cos(angle)), (0.0, 40.0 * math.cos(k / 3), 0.0), accel_noise=0.02)
    assert not tracker.still and tracker.accel_noise == 0.0
    for k in range(300):  # 30 s at rest, its frames' means off by 1.3 mg; every other frame
        # holds a lone sample (an IMU at 15 Hz), whose noise is unknown, not nothing
        tracker.update((0.0, 0.0, 1.0), (0.5, -0.2, 0.1), accel_noise=0.0013 if k % 2 else 0.0)
    assert tracker.accel_noise == pytest.approx(0.0013, rel=0.01)


def tipping(seconds: float, drift_dps: float, flip_at_s: float = math.inf):
    """Frames of a pod tipping back and forth by 20 degrees about x at 0.5 Hz (the
    accelerometer reads gravity alone), turned over about x at flip_at_s (180 degrees in a
    second), its gyro's zero drifted by drift_dps about y since its bias was learnt:
    (accelerometer g, gyro deg/s, the true gravity) per frame."""
    def angle(t: float) -> float:
        turn = math.pi * min(max(t - flip_at_s, 0.0), 1.0)
        return math.radians(20.0) * math.sin(math.pi * t) + turn

    for k in range(round(seconds / 0.1)):
        t0, t1 = k * 0.1, (k + 1) * 0.1
        rate = math.degrees(angle(t1) - angle(t0)) / 0.1  # the frame's mean rate
        truth = (0.0, math.sin(angle(t1)), math.cos(angle(t1)))
        yield truth, (rate, drift_dps, 0.0), truth


def degrees_between(a, b) -> float:
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def tracker_at_rest() -> MotionTracker:
    tracker = MotionTracker()
    for _ in range(30):  # 3 s at rest: the gyro's bias is learnt
        tracker.update((0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    assert tracker.bias_known
    return tracker


def test_gravity_follows_the_accelerometer_back_when_the_gyros_zero_drifts_on_the_move():
    # two minutes on the move, never still, so the bias is not learnt again: the gyro alone
    # would have carried gravity 120 degrees off
    tracker = tracker_at_rest()
    worst = 0.0
    for accel, gyro, truth in tipping(120.0, drift_dps=1.0):
        tracker.update(accel, gyro)
        worst = max(worst, degrees_between(tracker.gravity, truth))
    assert worst < 8.0  # the drift over the correction's 5 s memory, and no more


def test_the_side_is_told_right_over_a_long_session_with_a_drifting_gyro():
    tracker = tracker_at_rest()
    sides = []
    for accel, gyro, _ in tipping(240.0, drift_dps=1.0, flip_at_s=180.0):
        tracker.update(accel, gyro)
        sides.append(tracker.flipped)
    assert not any(sides[:1800])  # three minutes on the front of the thigh
    assert all(sides[1850:])  # turned over for the hamstrings


def test_the_tilt_follows_the_frames_turning_and_not_the_pods_own_acceleration():
    # tipping back and forth while pushed along by 0.1 g: the tilt is where the turning took it
    tracker = tracker_at_rest()
    for (ax, ay, az), gyro, truth in tipping(20.0, drift_dps=0.0):
        tracker.update((ax + 0.1, ay, az), gyro)
        assert degrees_between(tracker.tilt(), truth) < 1e-6
    # pushed along without turning: the accelerometer leans 0.1 g one way, then the other,
    # which gravity (the accelerometer's, slowly) follows a little and the tilt not at all
    tracker = tracker_at_rest()
    leaned = 0.0
    for k in range(20):
        push = 0.1 if k < 10 else -0.1
        tracker.update((push, 0.0, 1.0), (0.0, 0.0, 0.0))
        assert tracker.tilt() == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
        leaned = max(leaned, degrees_between(tracker.gravity, (0.0, 0.0, 1.0)))
    assert leaned > 0.5


def test_a_still_moment_leaves_the_bias_along_the_tilt_so_a_drifted_tilt_stays_put():
    # a minute on the move with the gyro's zero drifted about y: the tilt, which the gyro
    # alone turns, ends some 60 degrees from gravity. Then the pod rests and its gyro reads
    # the drift and a new zero along the true vertical: what a still window cannot tell
    # apart from a turn about the vertical. Learnt along gravity's vertical, the zero left
    # off there would turn the drifted tilt by 1.7 deg/s at rest
    tracker = tracker_at_rest()
    for accel, gyro, _ in tipping(60.0, drift_dps=1.0):
        tracker.update(accel, gyro)
    assert degrees_between(tracker.tilt(), tracker.gravity) > 45.0
    tilts = []
    for _ in range(300):  # 30 s at rest
        tracker.update((0.0, 0.0, 1.0), (0.0, 1.0, 2.0))
        tilts.append(tracker.tilt())
    assert tracker.still
    assert degrees_between(tilts[100], tilts[-1]) < 0.5  # the last 20 s
