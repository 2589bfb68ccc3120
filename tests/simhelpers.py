"""Simulated sessions shared by the tests (simulating is deterministic and costs ~0.2 s each)."""

from __future__ import annotations

import functools

import numpy as np

from kneeroll_device.routine.spec import load_routine
from kneeroll_device.sim.world import simulate_session


@functools.lru_cache(maxsize=8)
def simulated(seed: int = 1, scenario: str = "normal"):
    return simulate_session(load_routine("runners-knee"), seed=seed, scenario=scenario)


def sampled(session, imu_hz: float = 100.0, force_hz: float = 80.0, until: float | None = None):
    """The session's IMU and force at fixed rates: (imu_t, accel, gyro, force_t, force)."""
    end = session.duration if until is None else until
    imu_t = np.arange(0.0, end, 1.0 / imu_hz)
    accel, gyro = session.imu_at(imu_t)
    force_t = np.arange(0.0, end, 1.0 / force_hz)
    return imu_t, accel, gyro, force_t, session.force_at(force_t)
