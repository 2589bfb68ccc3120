"""What must not change the counts: how the pod is mounted, the sensors' rates, the squeeze's
scale, a gyro bias. Each transform of a simulated session keeps every step's count within
one of the untransformed session's (a rotation keeps it identical)."""

from __future__ import annotations

import numpy as np
import pytest

from kneeroll_device.pipeline import Pipeline
from kneeroll_device.recording import Recording
from kneeroll_device.replay import feed_recording
from simhelpers import sampled, simulated

SEEDS = (1, 2, 3)


def recording(seed: int, imu_hz: float = 100.0, force_hz: float = 80.0) -> Recording:
    imu_t, accel, gyro, force_t, force = sampled(simulated(seed), imu_hz, force_hz)
    return Recording(path=None, imu_t=imu_t, accel=accel, gyro=gyro, force_t=force_t, force=force)


def step_counts(seed: int, rec: Recording) -> list[int]:
    """Per step, strokes of a roll step or reps of a release step, in the step's window."""
    pipeline, strokes, reps = Pipeline(), [], []
    for _, batch in feed_recording(rec, pipeline):
        strokes += [s.t for s in batch.strokes]
        reps += [r.reported_t for r in batch.reps]
    out = []
    for step in simulated(seed).script.steps:
        times = strokes if step.kind == "roll" else reps
        out.append(sum(step.start <= t <= step.end + 1.0 for t in times))
    return out


def hx711_at_10_sps(rec: Recording) -> Recording:
    """The squeeze as an HX711 with its RATE pin low delivers it: 10 samples a second, each the
    mean of the last 0.1 s."""
    edges = np.arange(rec.force_t[0] + 0.1, rec.force_t[-1], 0.1)
    index = np.searchsorted(rec.force_t, edges)
    means = [rec.force[max(i - 8, 0):i].mean() for i in index]
    return Recording(None, rec.imu_t, rec.accel, rec.gyro, edges, np.array(means))


def rotated(rec: Recording, rng) -> Recording:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return Recording(None, rec.imu_t, rec.accel @ q.T, rec.gyro @ q.T, rec.force_t, rec.force)


TRANSFORMS = {
    "imu at 50 Hz": lambda seed, rng: recording(seed, imu_hz=50.0),
    "imu at 200 Hz": lambda seed, rng: recording(seed, imu_hz=200.0),
    "force at 10/s": lambda seed, rng: hx711_at_10_sps(recording(seed)),
    "force x0.6": lambda seed, rng: _scaled(recording(seed), 0.6),
    "force x1.5": lambda seed, rng: _scaled(recording(seed), 1.5),
    "gyro bias +3 deg/s": lambda seed, rng: _biased(recording(seed), rng, 3.0),
    "gyro bias -3 deg/s": lambda seed, rng: _biased(recording(seed), rng, -3.0),
}


def _scaled(rec: Recording, factor: float) -> Recording:
    return Recording(None, rec.imu_t, rec.accel, rec.gyro, rec.force_t, rec.force * factor)


def _biased(rec: Recording, rng, dps: float) -> Recording:
    axis = rng.normal(size=3)
    return Recording(None, rec.imu_t, rec.accel, rec.gyro + dps * axis / np.linalg.norm(axis), rec.force_t, rec.force)


@pytest.fixture(scope="module")
def untransformed():
    return {seed: step_counts(seed, recording(seed)) for seed in SEEDS}


def test_a_rotated_mount_gives_identical_counts(untransformed):
    rng = np.random.default_rng(7)
    for seed in SEEDS:
        assert step_counts(seed, rotated(recording(seed), rng)) == untransformed[seed]


@pytest.mark.parametrize("name", TRANSFORMS)
def test_the_counts_hold_within_one_under(name, untransformed):
    rng = np.random.default_rng(11)
    for seed in SEEDS:
        counts = step_counts(seed, TRANSFORMS[name](seed, rng))
        differences = [abs(a - b) for a, b in zip(counts, untransformed[seed])]
        assert max(differences) <= 1, (seed, counts, untransformed[seed])
