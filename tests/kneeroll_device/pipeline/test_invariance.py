"""What must not change the counts: how the pod is mounted, the sensors' rates, the squeeze's
scale, a gyro bias (kneeroll_device/sim/transforms.py). Each transform of a simulated session
keeps every step's count within one of the untransformed session's (a rotation keeps it
identical). benchmarks/bench_invariance.py measures the same over many more sessions."""

from __future__ import annotations

import numpy as np
import pytest

from kneeroll_device.pipeline import Pipeline
from kneeroll_device.recording import Recording
from kneeroll_device.replay import feed_recording
from kneeroll_device.sim.transforms import ROTATION, TRANSFORMS, recorded
from simhelpers import simulated

SEEDS = (1, 2, 3)


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


@pytest.fixture(scope="module")
def untransformed():
    return {seed: step_counts(seed, recorded(simulated(seed))) for seed in SEEDS}


def test_a_rotated_mount_gives_identical_counts(untransformed):
    rng = np.random.default_rng(7)
    for seed in SEEDS:
        assert step_counts(seed, TRANSFORMS[ROTATION](simulated(seed), rng)) == untransformed[seed]


@pytest.mark.parametrize("name", [name for name in TRANSFORMS if name != ROTATION])
def test_the_counts_hold_within_one_under(name, untransformed):
    rng = np.random.default_rng(11)
    for seed in SEEDS:
        counts = step_counts(seed, TRANSFORMS[name](simulated(seed), rng))
        differences = [abs(a - b) for a, b in zip(counts, untransformed[seed])]
        assert max(differences) <= 1, (seed, counts, untransformed[seed])
