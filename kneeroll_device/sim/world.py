"""The physics: what a pod clipped to the roller's frame senses while the person acts.

Frames: the world has z up and the thigh running along x from hip to knee.
The roller's frame rides on the thigh: it travels along it, tilts as the thigh's
shape changes under it (curvature), sits at a placement angle around it (pi is
flipped onto the back of the thigh) and twists. The pod is clipped to the
frame's handle at an arbitrary, seeded mounting orientation, 9 cm out from the
thigh's axis, so twisting also swings it. The accelerometer reads specific
force (acceleration minus gravity: +1 g up at rest) and the gyro the angular
rate, both in the pod's own axes, with datasheet-level noise and bias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..routine.spec import Routine
from .person import FS, Script, write_script

G = 9.80665
POD_ARM_M = np.array([0.0, 0.0, 0.09])  # pod on the handle, away from the thigh's axis

# MPU-6050 datasheet levels: accel noise 400 ug/sqrt(Hz), zero-g offset up to
# +/-50 mg; gyro noise 0.005 dps/sqrt(Hz), zero-rate offset up to +/-20 dps.
ACCEL_NOISE_G = 0.004  # rms over a ~44 Hz bandwidth
GYRO_NOISE_DPS = 0.1
ACCEL_BIAS_G = 0.05
GYRO_BIAS_DPS = 10.0
FORCE_NOISE_N = 0.4  # HX711 at 80 SPS with a bar load cell
FORCE_DRIFT_N = 3.0  # creep and temperature over a session


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random mounting of the pod (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _angular_rate(rot: np.ndarray, dt: float) -> np.ndarray:
    """Body-frame angular rate (rad/s) from a sequence of rotation matrices."""
    d_rot = np.gradient(rot, dt, axis=0)
    w = np.einsum("nji,njk->nik", rot, d_rot)  # R^T dR/dt, skew-symmetric
    return np.stack([w[:, 2, 1] - w[:, 1, 2], w[:, 0, 2] - w[:, 2, 0], w[:, 1, 0] - w[:, 0, 1]], -1) / 2.0


@dataclass
class SimulatedSession:
    """A person's session: true signals at FS and the truth, ready for emulators or a recording."""

    seed: int
    scenario: str
    routine_id: str
    script: Script
    t: np.ndarray  # seconds since the world began
    accel_g: np.ndarray  # (N, 3) as the pod's accelerometer reads it (noise, bias)
    gyro_dps: np.ndarray  # (N, 3)
    force_n: np.ndarray  # (N,) as the load cell reads it (noise, creep)
    true_force_n: np.ndarray

    @property
    def duration(self) -> float:
        return float(self.t[-1])

    def imu_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pod's IMU readings at any times (linear interpolation of the FS signals)."""
        times = np.clip(np.asarray(times, dtype=float), 0.0, self.duration)
        idx = times * FS
        lo = np.minimum(idx.astype(np.int64), len(self.t) - 2)
        frac = (idx - lo)[:, None]
        accel = self.accel_g[lo] * (1 - frac) + self.accel_g[lo + 1] * frac
        gyro = self.gyro_dps[lo] * (1 - frac) + self.gyro_dps[lo + 1] * frac
        return accel, gyro

    def force_at(self, times: np.ndarray) -> np.ndarray:
        times = np.clip(np.asarray(times, dtype=float), 0.0, self.duration)
        return np.interp(times, self.t, self.force_n)

    def truth(self) -> dict:
        return {
            "seed": self.seed,
            "scenario": self.scenario,
            "routine": self.routine_id,
            "outcome": self.script.outcome,
            "duration_s": round(self.duration, 3),
            "controls": [[round(t, 3), kind] for t, kind in self.script.controls],
            "steps": [s.as_dict() for s in self.script.steps],
        }


def simulate_session(routine: Routine, seed: int = 1, scenario: str = "normal", **script_options) -> SimulatedSession:
    script = write_script(routine, seed=seed, scenario=scenario, **script_options)
    rng = np.random.default_rng([seed, 7])  # sensor imperfections: independent of the person's habits
    n = len(script.s_m)
    t = np.arange(n) / FS
    dt = 1.0 / FS

    slope = np.deg2rad(rng.uniform(-5.0, 15.0))
    curvature = rng.uniform(0.6, 1.6) * rng.choice([-1.0, 1.0])
    yaw = rng.uniform(-np.pi, np.pi)
    s_mid = float(np.median(script.s_m))
    pitch = slope + curvature * (script.s_m - s_mid) + script.rep_tilt_rad
    roll = script.placement_rad + script.twist_rad
    frame = _rot_z(yaw)[None] @ _rot_y(pitch) @ _rot_x(roll)  # world from roller frame
    mount = random_rotation(rng)  # roller frame from pod
    pod = frame @ mount

    axis_point = np.stack([script.s_m * np.cos(slope), np.zeros(n), -script.s_m * np.sin(slope)], -1) @ _rot_z(yaw).T
    position = axis_point + frame @ POD_ARM_M
    accel_world = np.gradient(np.gradient(position, dt, axis=0), dt, axis=0)
    specific_world = accel_world / G + np.array([0.0, 0.0, 1.0])
    accel = np.einsum("nji,nj->ni", pod, specific_world)
    gyro = np.rad2deg(_angular_rate(pod, dt))

    accel += rng.uniform(-ACCEL_BIAS_G, ACCEL_BIAS_G, 3) + rng.normal(0, ACCEL_NOISE_G, (n, 3))
    gyro += rng.uniform(-GYRO_BIAS_DPS, GYRO_BIAS_DPS, 3) + rng.normal(0, GYRO_NOISE_DPS, (n, 3))
    creep = rng.uniform(-FORCE_DRIFT_N, FORCE_DRIFT_N) * t / max(t[-1], 1.0)
    force = script.force_n + creep + rng.normal(0, FORCE_NOISE_N, n)
    return SimulatedSession(seed, scenario, routine.id, script, t, accel, gyro, force, script.force_n.copy())


def write_recording(session: SimulatedSession, out_dir: Path, imu_rate_hz: float = 100.0, force_rate_hz: float = 80.0,
                    quantise=None, gzip: bool = False) -> Path:
    """The session as a recording folder (ARCHITECTURE.md): imu.csv, force.csv, meta.json."""
    from ..recording import write_recording_folder  # local: the sim does not need the reader otherwise

    imu_t = np.arange(0.0, session.duration, 1.0 / imu_rate_hz)
    accel, gyro = session.imu_at(imu_t)
    force_t = np.arange(0.0, session.duration, 1.0 / force_rate_hz)
    force = session.force_at(force_t)
    if quantise is not None:
        accel, gyro, force = quantise(accel, gyro, force)
    meta = {
        "source": "simulated",
        "imu_rate_hz": imu_rate_hz,
        "force_rate_hz": force_rate_hz,
        "device": {"imu": "simulated MPU-6050", "force": "simulated HX711"},
        "routine": session.routine_id,
        "truth": session.truth(),
    }
    return write_recording_folder(out_dir, imu_t, accel, gyro, force_t, force, meta, gzip=gzip)


def truth_json(session: SimulatedSession) -> str:
    return json.dumps(session.truth(), indent=2)
