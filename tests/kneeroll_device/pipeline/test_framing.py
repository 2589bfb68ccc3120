"""Framing: each frame's mean of the samples in it, and how far that mean may be off."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.framing import Framer

NOISE_G = 0.004  # an MPU-6050's accelerometer noise per sample at 100 Hz (datasheet density)


def frames_of(rate_hz: float, seconds: float = 60.0, block: int = 7) -> list:
    """A pod at rest sampled at rate_hz with white noise, fed ``block`` samples at a time."""
    rng = np.random.default_rng(5)
    t = np.arange(0.0, seconds, 1.0 / rate_hz)
    accel = np.array([0.0, 0.0, 1.0]) + rng.normal(0.0, NOISE_G, (len(t), 3))
    framer = Framer()
    framer.force_absent = True
    for i in range(0, len(t), block):
        framer.add_imu(t[i:i + block], accel[i:i + block], np.zeros((len(t[i:i + block]), 3)))
    return framer.frames()


@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 200.0])
def test_a_frames_noise_is_the_samples_spread_over_the_root_of_their_number(rate_hz):
    frames = frames_of(rate_hz)
    per_frame = rate_hz * 0.1
    rms = math.sqrt(np.mean([f.accel_noise ** 2 for f in frames]))
    assert rms == pytest.approx(NOISE_G / math.sqrt(per_frame), rel=0.05)
    # and the frames' means really are off by that much
    spread = np.std([f.accel[0] for f in frames])
    assert spread == pytest.approx(NOISE_G / math.sqrt(per_frame), rel=0.1)


def test_a_frames_noise_does_not_depend_on_the_block_sizes():
    assert [f.accel_noise for f in frames_of(100.0, 5.0, block=1)] == \
        [f.accel_noise for f in frames_of(100.0, 5.0, block=500)]


def test_with_one_sample_a_frame_no_noise_is_assumed():
    assert {f.accel_noise for f in frames_of(10.0, 5.0)} == {0.0}
