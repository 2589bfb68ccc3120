"""The transforms the invariance checks apply to a simulated recording."""

from __future__ import annotations

import numpy as np

from kneeroll_device.sim.transforms import TRANSFORMS, gyro_biased, hx711_at_10_sps, recorded, rotated
from simhelpers import simulated


def test_a_recording_is_sampled_at_the_rates_asked_for():
    rec = recorded(simulated(1), imu_hz=50.0, force_hz=80.0)
    assert np.allclose(np.diff(rec.imu_t), 0.02)
    assert np.allclose(np.diff(rec.force_t), 1 / 80)
    assert rec.accel.shape == rec.gyro.shape == (len(rec.imu_t), 3)


def test_the_hx711_gives_ten_means_a_second():
    rec = recorded(simulated(1))
    slow = hx711_at_10_sps(rec)
    assert np.allclose(np.diff(slow.force_t), 0.1)
    k = 100
    window = (rec.force_t >= slow.force_t[k] - 0.1 - 1e-9) & (rec.force_t < slow.force_t[k] - 1e-9)
    assert np.isclose(slow.force[k], np.mean(rec.force[window]))


def test_a_rotation_turns_both_sensors_alike_and_keeps_their_magnitudes():
    rec = recorded(simulated(1))
    turned = rotated(rec, np.random.default_rng(3))
    assert np.allclose(np.linalg.norm(turned.accel, axis=1), np.linalg.norm(rec.accel, axis=1))
    assert np.allclose(np.linalg.norm(turned.gyro, axis=1), np.linalg.norm(rec.gyro, axis=1))
    # one rotation for both: the angle between gravity and the turn rate is kept
    assert np.allclose(np.sum(turned.accel * turned.gyro, axis=1), np.sum(rec.accel * rec.gyro, axis=1))


def test_a_gyro_bias_is_constant_and_of_the_size_asked_for():
    rec = recorded(simulated(1))
    added = gyro_biased(rec, np.random.default_rng(5), 3.0).gyro - rec.gyro
    assert np.allclose(added, added[0])
    assert np.isclose(np.linalg.norm(added[0]), 3.0)


def test_every_transform_keeps_the_sessions_length():
    session = simulated(1)
    for name, transform in TRANSFORMS.items():
        rec = transform(session, np.random.default_rng(0))
        assert abs(rec.imu_t[-1] - session.duration) < 0.05, name
        assert abs(rec.force_t[-1] - session.duration) < 0.15, name
