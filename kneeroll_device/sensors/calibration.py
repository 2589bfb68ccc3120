"""Gyro calibration: the bias measured at rest, checked for stillness, saved beside the log.

A MEMS gyro reads a few tenths of a deg/s when still; subtracted from every sample, the
bias no longer turns into a slow drift of the orientation. ``kneeroll calibrate imu``
measures it with :func:`calibrate_gyro` and saves it; ``open_imu`` applies it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import CalibrationError
from ..samples import ImuBlock

CALIBRATION_FILE = "imu_calibration.json"


@dataclass(frozen=True)
class ImuCalibration:
    """Gyro bias measured at rest, subtracted from every sample by open_imu."""

    gyro_bias_dps: tuple[float, float, float]
    accel_rest_g: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gyro_noise_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    chip: str = ""
    address: int = 0
    seconds: float = 0.0
    samples: int = 0
    created: str = ""  # wall-clock label for people; never used for timing

    @staticmethod
    def path_in(data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / CALIBRATION_FILE

    def save(self, data_dir: str | os.PathLike) -> Path:
        """Write imu_calibration.json atomically (a crash never leaves half a file)."""
        path = self.path_in(data_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps({"version": 1, **asdict(self)}, indent=2) + "\n")
            os.replace(temporary, path)
        except OSError as exc:
            raise CalibrationError(f"cannot write {path}: {exc.strerror or exc}", "check --data-dir and its permissions") from None
        return path

    @classmethod
    def load(cls, data_dir: str | os.PathLike) -> "ImuCalibration | None":
        """The saved calibration, None if there is none; a damaged file is a CalibrationError."""
        path = Path(data_dir)
        if path.is_dir() or path.suffix != ".json":
            path = cls.path_in(path)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read {path}: {exc}", "run `kneeroll calibrate imu` again") from None
        try:
            return cls._from_document(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{path} is not a valid IMU calibration ({exc})", "run `kneeroll calibrate imu` again") from None

    @classmethod
    def _from_document(cls, document: dict) -> "ImuCalibration":
        def triple(name: str, default: tuple = (0.0, 0.0, 0.0)) -> tuple[float, float, float]:
            values = tuple(float(v) for v in document.get(name, default))
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be three numbers")
            return values  # type: ignore[return-value]

        return cls(
            gyro_bias_dps=triple("gyro_bias_dps", document["gyro_bias_dps"]),
            accel_rest_g=triple("accel_rest_g"),
            gyro_noise_dps=triple("gyro_noise_dps"),
            chip=str(document.get("chip", "")),
            address=int(document.get("address", 0)),
            seconds=float(document.get("seconds", 0.0)),
            samples=int(document.get("samples", 0)),
            created=str(document.get("created", "")),
        )

    def apply(self, gyro_dps: np.ndarray) -> np.ndarray:
        return gyro_dps - np.asarray(self.gyro_bias_dps)


@dataclass(frozen=True)
class StillnessLimits:
    """How still "at rest" must be. Hand-held motion is tens of deg/s; sensor noise is < 0.2."""

    gyro_span_dps: float = 3.0  # peak-to-peak on any axis
    gyro_std_dps: float = 0.5
    accel_std_g: float = 0.02  # of the magnitude: a nudge or a vibrating floor
    gravity_low_g: float = 0.85  # the magnitude at rest is 1 g, whatever the orientation
    gravity_high_g: float = 1.15
    min_fraction: float = 0.8  # of the samples the rate promises


class StreamingImu(Protocol):
    """What calibration uses of an open IMU (imu.Imu)."""

    clock: Any
    rate_hz: float
    chip: str
    address: int
    gyro_bias_dps: np.ndarray

    def read(self) -> ImuBlock: ...


def calibrate_gyro(imu: StreamingImu, seconds: float = 5.0, *, poll_s: float = 0.05,
                   limits: StillnessLimits = StillnessLimits()) -> ImuCalibration:
    """Collect ``seconds`` at rest, check it really was still, and return the gyro bias."""
    if seconds <= 0:
        raise CalibrationError(f"calibration needs a positive duration, got {seconds}", "use --seconds 5")
    accel, gyro = _collect(imu, seconds, poll_s)
    expected = seconds * imu.rate_hz
    if len(accel) < limits.min_fraction * expected:
        raise CalibrationError(
            f"only {len(accel)} IMU samples in {seconds:g} s (expected about {expected:.0f})",
            "run `kneeroll doctor` to check the IMU, then calibrate again",
        )
    _check_still(accel, gyro, limits)
    return ImuCalibration(
        gyro_bias_dps=tuple(float(v) for v in gyro.mean(axis=0)),  # type: ignore[arg-type]
        accel_rest_g=tuple(float(v) for v in accel.mean(axis=0)),  # type: ignore[arg-type]
        gyro_noise_dps=tuple(float(v) for v in gyro.std(axis=0)),  # type: ignore[arg-type]
        chip=imu.chip,
        address=imu.address,
        seconds=float(seconds),
        samples=int(len(gyro)),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _collect(imu: StreamingImu, seconds: float, poll_s: float) -> tuple[np.ndarray, np.ndarray]:
    clock = imu.clock
    imu.read()  # drop what came before the user was told to keep still
    end = clock() + seconds
    accel_parts, gyro_parts = [], []
    while True:
        clock.sleep(poll_s)
        block = imu.read()
        keep = block.t <= end
        accel_parts.append(block.accel[keep])
        # undo any calibration in force: the bias is measured on raw rates
        gyro_parts.append(block.gyro[keep] + np.asarray(imu.gyro_bias_dps))
        if clock() >= end:
            break
    return np.concatenate(accel_parts), np.concatenate(gyro_parts)


def _check_still(accel: np.ndarray, gyro: np.ndarray, limits: StillnessLimits) -> None:
    fix = "lay the roller on the floor, let go of it, and run `kneeroll calibrate imu` again"
    span = float((gyro.max(axis=0) - gyro.min(axis=0)).max())
    std = float(gyro.std(axis=0).max())
    if span > limits.gyro_span_dps or std > limits.gyro_std_dps:
        raise CalibrationError(
            f"the IMU turned during calibration: gyro varied by {span:.2f} deg/s (std {std:.2f}), "
            f"allowed {limits.gyro_span_dps:g} (std {limits.gyro_std_dps:g})", fix,
        )
    magnitude = np.linalg.norm(accel, axis=1)
    if float(magnitude.std()) > limits.accel_std_g:
        raise CalibrationError(
            f"the IMU was shaken during calibration: acceleration varied by {magnitude.std():.3f} g "
            f"(allowed {limits.accel_std_g:g})", fix,
        )
    mean = float(magnitude.mean())
    if not limits.gravity_low_g <= mean <= limits.gravity_high_g:
        raise CalibrationError(
            f"the IMU reads {mean:.2f} g at rest instead of 1 g",
            "check the accelerometer range and the chip setting in [imu], then run `kneeroll doctor`",
        )


def as_calibration(calibration: "ImuCalibration | str | os.PathLike | None") -> ImuCalibration | None:
    """A calibration given as itself, or as the directory (or file) it was saved in."""
    if calibration is None or isinstance(calibration, ImuCalibration):
        return calibration
    return ImuCalibration.load(calibration)
