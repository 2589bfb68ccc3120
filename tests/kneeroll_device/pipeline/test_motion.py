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
