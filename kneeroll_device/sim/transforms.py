"""What must not change the counts: a simulated session recorded as another pod would record
it. The pod mounted at another angle, the IMU at another rate, the squeeze as an HX711 with
its RATE pin low delivers it, a load cell scaled otherwise, a gyro with a bias: the roller
did the same strokes and the same reps, so the counts must stay (within one; a rotation
exactly). Shared by the invariance tests and benchmarks/bench_invariance.py."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..recording import Recording
from .world import SimulatedSession, random_rotation

IMU_HZ = 100.0  # the pod's rates
FORCE_HZ = 80.0
HX711_SLOW_S = 0.1  # an HX711 with RATE low: 10 samples a second, each the mean over its 0.1 s


def recorded(session: SimulatedSession, imu_hz: float = IMU_HZ, force_hz: float = FORCE_HZ) -> Recording:
    """The session sampled at fixed rates, as a recording."""
    imu_t = np.arange(0.0, session.duration, 1.0 / imu_hz)
    accel, gyro = session.imu_at(imu_t)
    force_t = np.arange(0.0, session.duration, 1.0 / force_hz)
    return Recording(None, imu_t, accel, gyro, force_t, session.force_at(force_t))


def rotated(rec: Recording, rng: np.random.Generator) -> Recording:
    """The pod mounted at a random angle: both sensors' frames turned by one rotation."""
    q = random_rotation(rng)
    return Recording(None, rec.imu_t, rec.accel @ q.T, rec.gyro @ q.T, rec.force_t, rec.force)


def hx711_at_10_sps(rec: Recording) -> Recording:
    """The squeeze at 10 samples a second, each the mean of the 0.1 s before it."""
    edges = np.arange(rec.force_t[0] + HX711_SLOW_S, rec.force_t[-1], HX711_SLOW_S)
    ends = np.searchsorted(rec.force_t, edges)
    starts = np.searchsorted(rec.force_t, edges - HX711_SLOW_S)
    means = [rec.force[a:b].mean() for a, b in zip(starts, ends)]
    return Recording(None, rec.imu_t, rec.accel, rec.gyro, edges, np.array(means))


def force_scaled(rec: Recording, factor: float) -> Recording:
    return Recording(None, rec.imu_t, rec.accel, rec.gyro, rec.force_t, rec.force * factor)


def gyro_biased(rec: Recording, rng: np.random.Generator, dps: float) -> Recording:
    """A constant gyro bias of dps (deg/s) about a random axis."""
    axis = rng.normal(size=3)
    return Recording(None, rec.imu_t, rec.accel, rec.gyro + dps * axis / np.linalg.norm(axis), rec.force_t, rec.force)


ROTATION = "a rotated mount"

Transform = Callable[[SimulatedSession, np.random.Generator], Recording]
TRANSFORMS: dict[str, Transform] = {
    ROTATION: lambda session, rng: rotated(recorded(session), rng),
    "imu at 50 Hz": lambda session, rng: recorded(session, imu_hz=50.0),
    "imu at 200 Hz": lambda session, rng: recorded(session, imu_hz=200.0),
    "force at 10/s": lambda session, rng: hx711_at_10_sps(recorded(session)),
    "force x0.6": lambda session, rng: force_scaled(recorded(session), 0.6),
    "force x1.5": lambda session, rng: force_scaled(recorded(session), 1.5),
    "gyro bias +3 deg/s": lambda session, rng: gyro_biased(recorded(session), rng, 3.0),
    "gyro bias -3 deg/s": lambda session, rng: gyro_biased(recorded(session), rng, -3.0),
}
