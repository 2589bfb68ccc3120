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


def simulate_session(routine: Routine, seed: int = 1, scenario: str = "normal", sensors: Sensors | None = None,
                     **script_options) -> SimulatedSession:
    script = write_script(routine, seed=seed, scenario=scenario, **script_options)
    return sense(script, seed, routine.id, sensors, scenario)


@dataclass(frozen=True)
class Sensors:
    """Overrides of the thigh and the pod that world.simulate_session draws; None keeps the draw."""

    curvature_rad_per_m: tuple[float, float] | None = None  # range of |curvature|; its sign stays drawn
    mount: str = "random"  # "random" as world draws it, or "cube": a cube orientation tilted up to 45 degrees
    accel_bias_g: float | None = None  # each axis at +/- this (the datasheet's corner), signs drawn
    gyro_bias_dps: float | None = None
    gyro_drift_dps: float = 0.0  # zero-rate offset wandering this far over the session (warm-up)
    force_zero_drift_n: float | None = None  # the load cell's zero moves by half to all of this over the session
    force_creep_share: float = 0.0  # a sustained load reads this much higher after ...
    force_creep_tau_s: float = 30.0  # ... about this long (creep), recovering when unloaded


def _cube_mount(rng: np.random.Generator) -> np.ndarray:
    """One of the 24 ways to put a box square on a face, then tilted up to 45 degrees about a random axis."""
    faces = []
    for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (1, 0, 2), (0, 2, 1), (2, 1, 0)):
        for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, -1), (-1, -1, -1)):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if np.linalg.det(m) > 0:
                faces.append(m)
    square = faces[int(rng.integers(len(faces)))]
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.0, 45.0))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    tilt = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    return square @ tilt


def _creep(force: np.ndarray, share: float, tau_s: float) -> np.ndarray:
    """Reading excess of a creeping load cell: a first-order lag of the load, times ``share``."""
    step = 20  # the lag is slow: update it at FS/20 and hold between
    a = 1.0 - np.exp(-step / (tau_s * FS))
    coarse = force[::step]
    lagged = np.empty_like(coarse)
    y = 0.0
    for i, f in enumerate(coarse.tolist()):
        y += a * (f - y)
        lagged[i] = y
    return share * np.repeat(lagged, step)[: len(force)]


def sense(script: Script, seed: int, routine_id: str, sensors: Sensors | None = None,
          scenario: str = "normal") -> SimulatedSession:
    """The pod's and the load cell's readings of a script; ``sensors`` overrides some of the draws.

    The random draws come in the same order whatever the overrides (which draw from
    their own generator), so a seed gives the same thigh and pod with or without them.
    """
    sensors = sensors or Sensors()
    rng = np.random.default_rng([seed, 7])
    extra = np.random.default_rng([seed, 19])
    n = len(script.s_m)
    t = np.arange(n) / FS
    dt = 1.0 / FS

    slope = np.deg2rad(rng.uniform(-5.0, 15.0))
    curvature = rng.uniform(0.6, 1.6) * rng.choice([-1.0, 1.0])
    yaw = rng.uniform(-np.pi, np.pi)
    if sensors.curvature_rad_per_m is not None:
        curvature = np.sign(curvature) * extra.uniform(*sensors.curvature_rad_per_m)
    s_mid = float(np.median(script.s_m))
    pitch = slope + curvature * (script.s_m - s_mid) + script.rep_tilt_rad
    roll = script.placement_rad + script.twist_rad
    frame = _rot_z(yaw)[None] @ _rot_y(pitch) @ _rot_x(roll)
    mount = random_rotation(rng)
    if sensors.mount == "cube":
        mount = _cube_mount(extra)
    pod = frame @ mount

    axis_point = np.stack([script.s_m * np.cos(slope), np.zeros(n), -script.s_m * np.sin(slope)], -1) @ _rot_z(yaw).T
    position = axis_point + frame @ POD_ARM_M
    accel_world = np.gradient(np.gradient(position, dt, axis=0), dt, axis=0)
    specific_world = accel_world / G + np.array([0.0, 0.0, 1.0])
    accel = np.einsum("nji,nj->ni", pod, specific_world)
    gyro = np.rad2deg(_angular_rate(pod, dt))

    accel_bias = rng.uniform(-ACCEL_BIAS_G, ACCEL_BIAS_G, 3)
    accel_noise = rng.normal(0, ACCEL_NOISE_G, (n, 3))
    if sensors.accel_bias_g is not None:
        accel_bias = extra.choice([-1.0, 1.0], 3) * sensors.accel_bias_g
    accel += accel_bias + accel_noise
    gyro_bias = rng.uniform(-GYRO_BIAS_DPS, GYRO_BIAS_DPS, 3)
    gyro_noise = rng.normal(0, GYRO_NOISE_DPS, (n, 3))
    if sensors.gyro_bias_dps is not None:
        gyro_bias = extra.choice([-1.0, 1.0], 3) * sensors.gyro_bias_dps
    gyro += gyro_bias + gyro_noise
    if sensors.gyro_drift_dps:
        # warming up: the offset moves along a random direction, quickly at first, then settles
        direction = extra.normal(size=3)
        direction /= np.linalg.norm(direction)
        gyro += sensors.gyro_drift_dps * direction * (1.0 - np.exp(-t / 120.0))[:, None]
    creep_n = rng.uniform(-FORCE_DRIFT_N, FORCE_DRIFT_N)
    if sensors.force_zero_drift_n is not None:
        creep_n = extra.choice([-1.0, 1.0]) * extra.uniform(0.5, 1.0) * sensors.force_zero_drift_n
    creep = creep_n * t / max(t[-1], 1.0)
    force = script.force_n + creep + rng.normal(0, FORCE_NOISE_N, n)
    if sensors.force_creep_share:
        force = force + _creep(script.force_n, sensors.force_creep_share, sensors.force_creep_tau_s)
    return SimulatedSession(seed, scenario, routine_id, script, t, accel, gyro, force, script.force_n.copy())


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
