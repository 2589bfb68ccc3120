"""IMU acquisition over I2C: detection, FIFO streaming, timestamps, faults and gyro calibration.

``open_imu(bus, ...)`` finds the chip (MPU-6050 family, LSM6DSOX, LSM6DS3TR-C), configures
its range and rate, and streams its FIFO. Each ``read()`` returns an
:class:`~kneeroll_device.samples.ImuBlock` with the samples that arrived since the last
call. The bus is injected: production passes ``open_bus(1)``; tests and the demo pass
``kneeroll_device.sim.imu_emulator.FakeSMBus``.

Why the FIFO: a Python loop on a Pi Zero cannot poll 100-400 times a second without
missing samples; the sensor's FIFO holds 0.2-5 s of data and a burst read empties it.

Why timestamps are rebuilt: the samples carry no time. They are evenly spaced on the
sensor's own clock, which can be a few percent off, and the host reads them late by a
variable amount. :class:`SampleTimeline` estimates the true rate from (sample count,
clock) pairs with a slow filter and anchors the line under the lower envelope of the
observations (a sample cannot be older than the read that found it).

Why faults never raise from ``read()``: a loose wire or a brown-out must cost samples,
not the session. I2C errors are retried with backoff in clock time; a faulted IMU is
tried again at a steady short interval (not a growing one, so reading resumes within
one interval of the bus coming back), the bus can be reopened through the injected
``reopen`` callable, and the chip is reconfigured if it lost its settings. A chip that
kept its settings kept sampling into its FIFO, so the FIFO is read, not reset: only
what it could not hold is lost, and the loss is reported as a
:class:`~kneeroll_device.samples.GapEvent`. After any error that may have popped part
of the FIFO, the FIFO is reset so that no misaligned sample is ever delivered.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from smbus2 import i2c_msg

from ..clock import SystemClock
from ..errors import CalibrationError, ImuError
from ..samples import DeviceEvent, GapEvent, ImuBlock
from . import registers as regs

log = logging.getLogger(__name__)

CANDIDATE_ADDRESSES = (0x68, 0x69, 0x6A, 0x6B)
CHIP_FAMILIES = ("mpu6050", "lsm6dsox", "lsm6ds3trc")
I2C_MESSAGE_MAX_BYTES = 8192  # the kernel refuses a single i2c_msg longer than this
# errors worth retrying: bus error, no ACK, timeout, arbitration/busy
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EREMOTEIO, errno.ETIMEDOUT, errno.EAGAIN, errno.ENXIO, errno.EBUSY})

FIX_ENABLE_I2C = "enable I2C with `sudo raspi-config nonint do_i2c 0` and reboot"
FIX_JOIN_GROUP = "join group i2c with `sudo adduser $USER i2c`, then log out and in again"
FIX_WIRING = (
    "check the wiring: SDA to GPIO2 (pin 3), SCL to GPIO3 (pin 5), 3.3 V and GND; "
    "AD0/SA0 selects the address; `i2cdetect -y {bus}` lists what answers"
)


class I2cBus(Protocol):
    """What kneeroll uses of smbus2.SMBus."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...
    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...
    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...
    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...
    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...


# --- opening the bus ---------------------------------------------------------------------


def _smbus_class() -> type:
    import smbus2

    class NumberedSMBus(smbus2.SMBus):
        """smbus2.SMBus that remembers its bus number, so errors can name /dev/i2c-N."""

        bus_number: int = -1

    return NumberedSMBus


def open_bus(bus_number: int) -> I2cBus:
    """Open /dev/i2c-``bus_number`` with smbus2; a missing bus or permission is one clear ImuError."""
    path = f"/dev/i2c-{bus_number}"
    try:
        bus = _smbus_class()(bus_number)
    except FileNotFoundError:
        raise ImuError(f"I2C bus {bus_number} is not available: {path} does not exist", FIX_ENABLE_I2C) from None
    except PermissionError:
        raise ImuError(f"no permission to open {path} (I2C bus {bus_number})", FIX_JOIN_GROUP) from None
    except OSError as exc:
        raise ImuError(f"cannot open {path}: {exc.strerror or exc}", FIX_ENABLE_I2C) from None
    bus.bus_number = bus_number
    return bus


def bus_label(bus: object) -> str:
    number = bus_number_of(bus)
    return f"I2C bus {number} (/dev/i2c-{number})" if number is not None else "the I2C bus"


def bus_number_of(bus: object) -> int | None:
    for name in ("bus_number", "bus"):
        value = getattr(bus, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def read_burst(bus: I2cBus, address: int, register: int, length: int, chunk: int = I2C_MESSAGE_MAX_BYTES) -> bytes:
    """Read ``length`` bytes from ``register`` through i2c_rdwr: one transfer with a repeated start.

    read_i2c_block_data stops at 32 bytes; i2c_rdwr does not, but the kernel limits one
    message to 8192 bytes, so longer reads are split in ``chunk``-byte pieces (callers pass a
    whole number of FIFO packets so each piece ends on a packet boundary).
    """
    chunk = min(chunk, I2C_MESSAGE_MAX_BYTES)
    parts: list[bytes] = []
    remaining = length
    while remaining > 0:
        size = min(remaining, chunk)
        select = i2c_msg.write(address, [register])
        data = i2c_msg.read(address, size)
        bus.i2c_rdwr(select, data)
        parts.append(bytes(data))
        remaining -= size
    return b"".join(parts)


# --- chips -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipIdentity:
    """What WHO_AM_I said: the driver family, the chip's name, and whether it is the real thing."""

    family: str
    name: str
    who_am_i: int
    genuine: bool = True


@dataclass(frozen=True)
class FifoStatus:
    samples: int  # whole samples waiting in the FIFO
    overflow: bool = False  # the FIFO overflowed: its contents are no longer trustworthy
    misaligned: bool = False  # the next byte is not the start of a sample


class FifoMisaligned(Exception):
    """Raised by a driver when the bytes it read do not form whole, ordered samples."""


class ChipDriver(Protocol):
    identity: ChipIdentity
    address: int
    bus: I2cBus
    rate_hz: float
    accel_range_g: int
    gyro_range_dps: int
    accel_counts_per_g: float
    gyro_counts_per_dps: float

    def configure(self) -> None: ...
    def is_configured(self) -> bool: ...
    def reset_fifo(self) -> None: ...
    def fifo_status(self) -> FifoStatus: ...
    def read_fifo(self, samples: int) -> tuple[np.ndarray, np.ndarray]: ...
    def power_down(self) -> None: ...


class RegisterDriver:
    """What every chip driver shares: its place on the bus, named register access, the
    check that the chip kept its settings. Subclasses give REGISTERS (a register map)."""

    REGISTERS: Any

    def __init__(self, bus: I2cBus, address: int, identity: ChipIdentity, clock: Any,
                 accel_range_g: int, gyro_range_dps: int):
        self.bus = bus
        self.address = address
        self.identity = identity
        self.clock = clock
        self.accel_range_g = accel_range_g
        self.gyro_range_dps = gyro_range_dps

    def _write(self, name: str, value: int) -> None:
        self.bus.write_byte_data(self.address, self.REGISTERS.address(name), value)

    def _read(self, name: str) -> int:
        return self.bus.read_byte_data(self.address, self.REGISTERS.address(name))

    def _settings_not_kept(self, wrote: list[int], first: str, got: list[int], why: str = "") -> ImuError:
        """The error for a chip that reads back other settings than were written."""
        start = self.REGISTERS.address(first)
        return ImuError(
            f"{self.identity.name} at 0x{self.address:02X} does not keep its settings "
            f"(wrote {_hex(wrote)} to 0x{start:02X}-0x{start + len(wrote) - 1:02X}, read back {_hex(got)}){why}",
            "replace the board, or set chip in [imu] to the chip it really is",
        )


def _hex(values: list[int]) -> str:
    return " ".join(f"{v:02X}" for v in values)


def identify(family_hint: str | None, who_am_i: int) -> ChipIdentity | None:
    """The chip a WHO_AM_I value names, or None if it is not one kneeroll knows."""
    if family_hint in (None, "mpu6050"):
        if who_am_i in regs.MPU6050_GENUINE_IDS:
            return ChipIdentity("mpu6050", regs.MPU6050_GENUINE_IDS[who_am_i], who_am_i, True)
        if who_am_i in regs.MPU6050_COMPATIBLE_IDS:
            return ChipIdentity("mpu6050", regs.MPU6050_COMPATIBLE_IDS[who_am_i], who_am_i, False)
    if family_hint in (None, "lsm6dsox", "lsm6ds3trc") and who_am_i in regs.LSM6_IDS:
        family, name, genuine = regs.LSM6_IDS[who_am_i]
        if family_hint in (None, family):
            return ChipIdentity(family, name, who_am_i, genuine)
    return None


def who_am_i_register(family: str | None, address: int) -> int:
    """MPU-6050s live at 0x68/0x69 with WHO_AM_I at 0x75; the LSM6 at 0x6A/0x6B with it at 0x0F."""
    if family == "mpu6050" or (family is None and address in (0x68, 0x69)):
        return regs.MPU6050.address("WHO_AM_I")
    return regs.LSM6DSOX.address("WHO_AM_I")


@dataclass(frozen=True)
class Probe:
    """The answer of one address: a WHO_AM_I value, or the error that stood for silence."""

    address: int
    register: int
    who_am_i: int | None
    error: OSError | None = None
    identity: ChipIdentity | None = None

    def describe(self) -> str:
        if self.who_am_i is None:
            reason = "no answer" if _errno(self.error) in (errno.EREMOTEIO, errno.ENXIO) else f"error {self.error}"
            return f"0x{self.address:02X}: {reason}"
        if self.identity:
            note = "" if self.identity.genuine else ", compatible"
            return f"0x{self.address:02X}: WHO_AM_I 0x{self.who_am_i:02X} = {self.identity.name}{note}"
        return f"0x{self.address:02X}: WHO_AM_I 0x{self.who_am_i:02X} (register 0x{self.register:02X}) is no supported chip"


def probe_address(bus: I2cBus, address: int, family: str | None = None) -> Probe:
    register = who_am_i_register(family, address)
    try:
        value = bus.read_byte_data(address, register)
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as exc:
        return Probe(address, register, None, exc)
    return Probe(address, register, value, None, identify(family, value))


def probe_bus(bus: I2cBus, addresses: tuple[int, ...] = CANDIDATE_ADDRESSES, family: str | None = None) -> list[Probe]:
    return [probe_address(bus, address, family) for address in addresses]


def detect_chip(bus: I2cBus, address: int | None = None, chip: str | None = None) -> tuple[int, ChipIdentity]:
    """Find the IMU: by WHO_AM_I at each candidate address, or at the configured one.

    A configured ``chip`` makes an unknown WHO_AM_I a warning instead of an error: the
    user has said what the part is (many clone boards answer odd values).
    """
    if chip is not None and chip not in CHIP_FAMILIES:
        raise ImuError(f"unknown IMU chip {chip!r}", "use one of " + ", ".join(CHIP_FAMILIES))
    addresses = (address,) if address is not None else CANDIDATE_ADDRESSES
    try:
        probes = probe_bus(bus, addresses, chip)
    except (FileNotFoundError, PermissionError) as exc:
        raise _open_error(bus, exc) from None
    for found in probes:
        if found.identity is not None:
            if not found.identity.genuine:
                log.warning(
                    "IMU at 0x%02X answers WHO_AM_I 0x%02X (%s), not a genuine %s: going on, it behaves alike",
                    found.address, found.who_am_i, found.identity.name, found.identity.family,
                )
            return found.address, found.identity
    if chip is not None:
        answered = [p for p in probes if p.who_am_i is not None]
        if answered:
            found = answered[0]
            log.warning(
                "IMU at 0x%02X answers WHO_AM_I 0x%02X, unknown for %s: going on because the config names the chip",
                found.address, found.who_am_i, chip,
            )
            return found.address, ChipIdentity(chip, f"{chip} (WHO_AM_I 0x{found.who_am_i:02X})", found.who_am_i, False)
    raise not_found_error(bus, probes, chip)


def _errno(error: BaseException | None) -> int | None:
    return getattr(error, "errno", None)


def _open_error(bus: object, exc: OSError) -> ImuError:
    if isinstance(exc, PermissionError):
        return ImuError(f"no permission to use {bus_label(bus)}", FIX_JOIN_GROUP)
    return ImuError(f"{bus_label(bus)} does not exist", FIX_ENABLE_I2C)


def not_found_error(bus: object, probes: list[Probe], chip: str | None) -> ImuError:
    what = chip or "MPU-6050, LSM6DSOX or LSM6DS3TR-C"
    places = ", ".join(p.describe() for p in probes)
    number = bus_number_of(bus)
    fix = FIX_WIRING.format(bus=number if number is not None else 1)
    if any(p.who_am_i is not None for p in probes):
        fix += '; for a clone that answers another WHO_AM_I, set chip = "mpu6050" (or the right chip) in [imu]'
    return ImuError(f"no {what} IMU found on {bus_label(bus)}: {places}", fix)


def make_driver(bus: I2cBus, address: int, identity: ChipIdentity, rate_hz: float,
                accel_range_g: int, gyro_range_dps: int, clock: Any) -> ChipDriver:
    if identity.family == "mpu6050":
        from .mpu6050 import Mpu6050Driver

        return Mpu6050Driver(bus, address, identity, rate_hz, accel_range_g, gyro_range_dps, clock)
    from .lsm6dsox import Lsm6ds3trcDriver, Lsm6dsoxDriver

    cls = Lsm6dsoxDriver if identity.family == "lsm6dsox" else Lsm6ds3trcDriver
    return cls(bus, address, identity, rate_hz, accel_range_g, gyro_range_dps, clock)


# --- timestamps --------------------------------------------------------------------------


class SampleTimeline:
    """Clock times of FIFO samples, rebuilt from their index.

    Sample ``k`` of a run was taken at ``offset + period * (k - base)``. Each poll gives one
    observation: the newest sample index that existed when the FIFO count was read, and the
    clock just after. The period is the nominal one corrected by a weighted least-squares
    slope over the observations, forgotten over ``averaging_s`` seconds (the "slow filter":
    it averages away the poll-phase jitter and follows temperature drift) and pulled
    towards the previous estimate at the start of a run. The offset puts the line under
    the lowest observation of a recent window: a sample cannot be newer than the read
    that found it, and over many polls at varied phases the lowest one is read almost
    the instant the sample was taken. Host stalls only raise observations, so they do
    not move the line.
    """

    def __init__(self, nominal_rate_hz: float, *, averaging_s: float = 20.0, envelope_points: int = 64,
                 tolerance: float = 0.08):
        self.nominal_rate_hz = float(nominal_rate_hz)
        self.nominal_period = 1.0 / self.nominal_rate_hz
        self._decay_per_sample = math.exp(-1.0 / (averaging_s * self.nominal_rate_hz))
        self._max_delta = tolerance * self.nominal_period
        self._envelope_points = envelope_points
        self._delta = 0.0
        self.restart(0, prior_seconds=1.0)

    def restart(self, base_index: int, *, prior_seconds: float = 5.0) -> None:
        """A new run (after a FIFO reset): keep the rate estimate as a prior, forget the rest."""
        self.base = base_index
        self._prior_delta = self._delta
        self._prior_weight = self._spread_of(prior_seconds)
        self._w = self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._ref_x: float | None = None
        self._ref_t = 0.0
        self._last_x: float | None = None
        self._envelope: deque[tuple[float, float]] = deque(maxlen=self._envelope_points)
        self._offset: float | None = None

    def _spread_of(self, seconds: float) -> float:
        """The weighted index spread that `seconds` of polling at 10 Hz would give."""
        polls = 10.0 * seconds
        span = seconds * self.nominal_rate_hz
        return polls * span * span / 12.0

    @property
    def period(self) -> float:
        return self.nominal_period + self._delta

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.period

    @property
    def anchored(self) -> bool:
        return self._offset is not None

    def observe(self, newest_index: int, t_clock: float) -> None:
        """Sample ``newest_index`` existed when the clock read ``t_clock``."""
        x = float(newest_index - self.base)
        if not self._is_late(x, t_clock):
            self._update_rate(x, t_clock)
        self._envelope.append((x, t_clock))
        period = self.period
        self._offset = min(t - period * xi for xi, t in self._envelope)

    def _is_late(self, x: float, t_clock: float) -> bool:
        """An observation far above the line (a host stall between the count and the clock read)."""
        if self._offset is None:
            return False
        residual = t_clock - (self._offset + self.period * x)
        return residual > max(4 * self.period, 0.02)

    def _update_rate(self, x: float, t_clock: float) -> None:
        if self._ref_x is None:
            self._ref_x, self._ref_t = x, t_clock
        if self._last_x is not None and x > self._last_x:
            decay = self._decay_per_sample ** (x - self._last_x)
            self._w *= decay
            self._sx *= decay
            self._sy *= decay
            self._sxx *= decay
            self._sxy *= decay
        self._last_x = x if self._last_x is None else max(self._last_x, x)
        xr = x - self._ref_x
        y = t_clock - self._ref_t - self.nominal_period * xr  # small: the deviation from nominal
        self._w += 1.0
        self._sx += xr
        self._sy += y
        self._sxx += xr * xr
        self._sxy += xr * y
        covariance = self._sxy - self._sx * self._sy / self._w
        spread = self._sxx - self._sx * self._sx / self._w
        delta = (covariance + self._prior_weight * self._prior_delta) / (spread + self._prior_weight)
        self._delta = min(self._max_delta, max(-self._max_delta, delta))
        if abs(xr) > 1e5:
            self._rebase(xr)

    def _rebase(self, shift: float) -> None:
        """Move the reference point forward so the running sums keep their precision for days."""
        self._sxx = self._sxx - 2.0 * shift * self._sx + shift * shift * self._w
        self._sxy = self._sxy - shift * self._sy
        self._sx = self._sx - shift * self._w
        self._ref_x += shift
        self._ref_t += self.nominal_period * shift

    def time_of(self, index: int) -> float:
        if self._offset is None:
            raise RuntimeError("no observation yet")
        return self._offset + self.period * (index - self.base)

    def times(self, first_index: int, count: int) -> np.ndarray:
        return self.time_of(first_index) + self.period * np.arange(count, dtype=np.float64)


# --- calibration -------------------------------------------------------------------------

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


def calibrate_gyro(imu: "Imu", seconds: float = 5.0, *, poll_s: float = 0.05,
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


def _collect(imu: "Imu", seconds: float, poll_s: float) -> tuple[np.ndarray, np.ndarray]:
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


def _as_calibration(calibration: "ImuCalibration | str | os.PathLike | None") -> ImuCalibration | None:
    if calibration is None or isinstance(calibration, ImuCalibration):
        return calibration
    return ImuCalibration.load(calibration)


# --- the streaming IMU -------------------------------------------------------------------


@dataclass
class _Fault:
    since: float
    error: str
    next_attempt: float
    attempts: int = 0
    needs_reopen: bool = False
    reopened_at: float = -math.inf


@dataclass
class ImuStats:
    samples: int = 0
    samples_lost: int = 0
    gaps: int = 0
    i2c_errors: int = 0
    retries: int = 0
    recoveries: int = 0
    reopens: int = 0
    fifo_resets: int = 0


class Imu:
    """A configured IMU streaming its FIFO. Use ``read()``; ``close()`` is safe twice.

    Attributes: ``chip`` (driver family), ``chip_name`` (what WHO_AM_I named), ``who_am_i``,
    ``address``, ``rate_hz`` (the rate the chip really runs at), ``requested_rate_hz``,
    ``accel_range_g``, ``gyro_range_dps``, ``calibration``, ``clock``, ``healthy``, ``stats``.
    """

    RETRIES = 3  # attempts of one transaction before the IMU counts as faulted
    RETRY_BACKOFF_S = 0.002  # doubled at each attempt, in clock time
    # A faulted IMU is tried again this often, however long it has been away: the chip
    # keeps sampling meanwhile, and each wait past its return costs samples. Shorter
    # than a reader's 50 ms poll, so every poll tries and reading resumes within one poll
    # of the bus coming back; a caller in a tight loop is held to 40 tries a second, each
    # one register read (about 0.1 ms of a 400 kHz bus).
    RECOVERY_INTERVAL_S = 0.025
    REOPEN_AFTER_ATTEMPTS = 2  # failed recoveries before the bus itself is reopened
    REOPEN_INTERVAL_S = 1.0  # a dead handle is reopened at most this often

    def __init__(self, bus: I2cBus, driver: ChipDriver, *, requested_rate_hz: float, clock: Any,
                 calibration: ImuCalibration | None = None, reopen: Callable[[], I2cBus] | None = None):
        self.bus = bus
        self._driver = driver
        self.clock = clock
        self._reopen = reopen
        self.chip = driver.identity.family
        self.chip_name = driver.identity.name
        self.who_am_i = driver.identity.who_am_i
        self.address = driver.address
        self.rate_hz = driver.rate_hz
        self.requested_rate_hz = requested_rate_hz
        self.accel_range_g = driver.accel_range_g
        self.gyro_range_dps = driver.gyro_range_dps
        self.calibration = calibration
        self.gyro_bias_dps = np.asarray(calibration.gyro_bias_dps if calibration else (0.0, 0.0, 0.0))
        self.stats = ImuStats()
        self._timeline = SampleTimeline(self.rate_hz)
        self._next_index = 0
        self._last_index = -1
        self._last_time = clock()  # the FIFO was just reset: the first sample comes after this
        self._last_delivered_t: float | None = None
        self._pending_gaps: list[GapEvent] = []
        self._events: list[DeviceEvent] = [DeviceEvent(self._last_time, "imu", "up", self.describe())]
        self._fault: _Fault | None = None
        self._fifo_trusted = True  # False while a reset is due: a burst or a reset was cut short by a fault
        self._recovery_note: str | None = None  # the fault a kept FIFO came through, for its first read
        self._closed = False

    def describe(self) -> str:
        return (f"{self.chip_name} at 0x{self.address:02X} on {bus_label(self.bus)}, {self.rate_hz:g} Hz, "
                f"+/-{self.accel_range_g} g, +/-{self.gyro_range_dps} deg/s")

    @property
    def healthy(self) -> bool:
        return self._fault is None

    @property
    def period(self) -> float:
        return self._timeline.period

    @property
    def estimated_rate_hz(self) -> float:
        """The sensor's true rate as measured against the clock (a few % off the nominal one)."""
        return self._timeline.rate_hz

    def drain_events(self) -> tuple[DeviceEvent, ...]:
        """Health changes since the last call: up, fault, recovered, reset."""
        events, self._events = tuple(self._events), []
        return events

    # --- reading ---

    def read(self) -> ImuBlock:
        """The samples that arrived since the last call. Never raises for an I2C fault."""
        if self._closed:
            raise ImuError("read() on a closed IMU", "open it again with open_imu()")
        if self._fault is not None and not self._try_recover():
            return self._empty_block()
        try:
            return self._read_fifo()
        except OSError as exc:
            self._enter_fault(exc)
            return self._empty_block()
        finally:
            self._recovery_note = None

    def _read_fifo(self) -> ImuBlock:
        status = self._with_retries(self._driver.fifo_status)
        t_status = self.clock()
        if status.overflow or status.misaligned:
            reason = "FIFO overflow" if status.overflow else "FIFO misaligned"
            if self._recovery_note:
                reason += f" during an {self._recovery_note}"
            self._restart_fifo(reason)
            return self._empty_block()
        if status.samples == 0:
            if self._next_index > self._timeline.base:
                self._timeline.observe(self._next_index - 1, t_status)
            return self._empty_block()
        try:
            accel_raw, gyro_raw = self._driver.read_fifo(status.samples)
        except FifoMisaligned as exc:
            self._restart_fifo(f"FIFO misaligned ({exc})")
            return self._empty_block()
        except OSError as exc:
            # part of the FIFO may have been popped: the next byte is no longer known to
            # start a sample, so the FIFO is reset rather than the read retried
            self.stats.i2c_errors += 1
            log.warning("IMU FIFO read failed (%s): resetting the FIFO", exc)
            self._restart_fifo(f"I2C error during FIFO read ({exc})")
            return self._empty_block()
        got = len(accel_raw)
        self._timeline.observe(self._next_index + status.samples - 1, t_status)
        return self._samples_block(accel_raw, gyro_raw, got)

    def _samples_block(self, accel_raw: np.ndarray, gyro_raw: np.ndarray, count: int) -> ImuBlock:
        if count == 0:
            return self._empty_block()
        t = self._timeline.times(self._next_index, count)
        t = self._keep_increasing(t)
        accel = regs.counts_to_units(accel_raw, self._driver.accel_counts_per_g)
        gyro = regs.counts_to_units(gyro_raw, self._driver.gyro_counts_per_dps) - self.gyro_bias_dps
        self._next_index += count
        self._last_index = self._next_index - 1
        self._last_time = self._last_delivered_t = float(t[-1])
        self.stats.samples += count
        return ImuBlock(t=t, accel=accel, gyro=gyro, gaps=tuple(self._take_gaps()))

    def _keep_increasing(self, t: np.ndarray) -> np.ndarray:
        """A better anchor can move the line back a little: never let time run backwards."""
        if self._last_delivered_t is None:
            return t
        floor = self._last_delivered_t + 0.5 * self._timeline.period * np.arange(1, len(t) + 1)
        return np.maximum(t, floor)

    def _empty_block(self) -> ImuBlock:
        gaps = tuple(self._take_gaps())
        return ImuBlock(t=np.zeros(0), accel=np.zeros((0, 3)), gyro=np.zeros((0, 3)), gaps=gaps)

    def _take_gaps(self) -> list[GapEvent]:
        gaps, self._pending_gaps = self._pending_gaps, []
        return gaps

    # --- faults ---

    def _with_retries(self, action: Callable[[], Any]) -> Any:
        """Run a transaction that is safe to repeat, retrying transient errors with backoff."""
        delay = self.RETRY_BACKOFF_S
        for attempt in range(1, self.RETRIES + 1):
            try:
                return action()
            except OSError as exc:
                self.stats.i2c_errors += 1
                if _errno(exc) not in TRANSIENT_ERRNOS or attempt == self.RETRIES:
                    raise
                self.stats.retries += 1
                self.clock.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _restart_fifo(self, reason: str) -> None:
        """Reset the FIFO, account for what was lost since the last delivered sample, start a new run."""
        self._fifo_trusted = False  # a reset cut short leaves the FIFO in an unknown state
        self._with_retries(self._driver.reset_fifo)
        self._fifo_trusted = True
        self.stats.fifo_resets += 1
        self._account_restart(self.clock(), reason)

    def _account_restart(self, t_reset: float, reason: str) -> None:
        period = self._timeline.period
        lost = max(0, math.floor((t_reset - self._last_time) / period + 1e-6))
        if lost:
            gap = GapEvent(t=self._last_time + period, source="imu", samples_lost=lost, reason=reason)
            self._pending_gaps.append(gap)
            self.stats.gaps += 1
            self.stats.samples_lost += lost
            log.warning("IMU lost %d samples: %s", lost, reason)
        self._next_index = self._last_index + 1 + lost
        self._last_index = self._next_index - 1
        self._last_time = t_reset
        self._timeline.restart(self._next_index)
        self._events.append(DeviceEvent(t_reset, "imu", "reset", reason))

    def _enter_fault(self, exc: OSError) -> None:
        now = self.clock()
        self._fault = _Fault(
            since=now, error=str(exc), next_attempt=now + self.RECOVERY_INTERVAL_S,
            needs_reopen=_errno(exc) not in TRANSIENT_ERRNOS,
        )
        self._events.append(DeviceEvent(now, "imu", "fault", str(exc)))
        log.warning("IMU at 0x%02X stopped answering (%s): retrying", self.address, exc)

    def _try_recover(self) -> bool:
        fault = self._fault
        assert fault is not None
        now = self.clock()
        if now < fault.next_attempt:
            return False
        fault.attempts += 1
        try:
            if self._should_reopen(fault, now):
                fault.reopened_at = now
                self._reopen_bus()
            fifo_kept = self._bring_back()
        except (OSError, ImuError) as exc:
            fault.next_attempt = self.clock() + self.RECOVERY_INTERVAL_S
            fault.error = str(exc)
            return False
        t_back = self.clock()
        self._fault = None
        self.stats.recoveries += 1
        note = f"I2C fault ({fault.error}), back after {t_back - fault.since:.2f} s"
        if fifo_kept:
            self._recovery_note = note  # the next read delivers what the FIFO kept, or accounts its overflow
        else:
            self._account_restart(t_back, note)
        self._events.append(DeviceEvent(t_back, "imu", "recovered", f"after {t_back - fault.since:.2f} s"))
        log.warning("IMU at 0x%02X is back after %.2f s", self.address, t_back - fault.since)
        return True

    def _should_reopen(self, fault: _Fault, now: float) -> bool:
        """Reopen a handle that is dead, or may be, but not at every try: opening a bus is a system call."""
        if self._reopen is None:
            return False
        suspect = fault.needs_reopen or fault.attempts >= self.REOPEN_AFTER_ATTEMPTS
        return suspect and now - fault.reopened_at >= self.REOPEN_INTERVAL_S

    def _bring_back(self) -> bool:
        """Check it is still our chip and make it stream again; True if its FIFO was kept.

        A chip that kept its settings (the bus failed, not the chip) went on filling its
        FIFO: those samples are good unless a burst or a reset was cut short by the fault.
        A chip that lost them (a brown-out) is configured again, which empties the FIFO.
        """
        identity = self._driver.identity
        register = who_am_i_register(identity.family, self.address)
        who = self.bus.read_byte_data(self.address, register)
        if who != identity.who_am_i:
            raise ImuError(f"the device at 0x{self.address:02X} now answers WHO_AM_I 0x{who:02X}")
        if self._driver.is_configured():
            if self._fifo_trusted:
                return True
            self._driver.reset_fifo()
        else:
            self._fifo_trusted = False
            self._driver.configure()
        self._fifo_trusted = True
        return False

    def _reopen_bus(self) -> None:
        assert self._reopen is not None
        old = self.bus
        try:
            old.close()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the old handle may already be dead
            pass
        self.bus = self._reopen()
        self._driver.bus = self.bus
        self.stats.reopens += 1

    # --- lifetime ---

    def close(self) -> None:
        """Put the chip to sleep (best effort) and stop. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._driver.power_down()
        except OSError as exc:
            log.debug("IMU power-down failed: %s", exc)

    def __enter__(self) -> "Imu":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Imu {self.describe()}>"


def open_imu(bus: I2cBus | int, address: int | str | None = None, rate_hz: float = 100, *, chip: str | None = None,
             accel_range_g: int = 4, gyro_range_dps: int = 500, clock: Any = None,
             calibration: ImuCalibration | str | os.PathLike | None = None,
             reopen: Callable[[], I2cBus] | None = None) -> Imu:
    """Detect, configure and start the IMU; see the module docstring.

    ``bus`` is an smbus2.SMBus-like object (or a bus number, opened with open_bus);
    ``address`` None probes 0x68, 0x69, 0x6A, 0x6B; ``chip`` None (or "auto") trusts WHO_AM_I.
    ``calibration`` is an ImuCalibration or the directory holding imu_calibration.json.
    Errors at start are one ImuError that names the bus, the addresses, WHO_AM_I and the fix.
    """
    opened_here = isinstance(bus, int) and not isinstance(bus, bool)
    if opened_here:
        number = int(bus)  # type: ignore[arg-type]
        bus = open_bus(number)
        reopen = reopen or (lambda: open_bus(number))
    try:
        return _start(bus, address, rate_hz, chip, accel_range_g, gyro_range_dps, clock, calibration, reopen)
    except BaseException:
        if opened_here:
            bus.close()  # type: ignore[union-attr]
        raise


def _start(bus: I2cBus, address: int | str | None, rate_hz: float, chip: str | None, accel_range_g: int,
           gyro_range_dps: int, clock: Any, calibration: Any, reopen: Callable[[], I2cBus] | None) -> Imu:
    chip = None if chip in (None, "auto") else chip
    if isinstance(address, str):
        address = None if address == "auto" else int(address, 0)
    if not 50 <= rate_hz <= 400:
        raise ImuError(f"IMU rate {rate_hz} Hz is out of range", "use 50 to 400 Hz")
    clock = clock or SystemClock()
    found_at, identity = detect_chip(bus, address, chip)
    _check_ranges(identity.family, accel_range_g, gyro_range_dps)
    driver = make_driver(bus, found_at, identity, rate_hz, accel_range_g, gyro_range_dps, clock)
    try:
        driver.configure()
    except ImuError:
        raise
    except OSError as exc:
        raise ImuError(
            f"{identity.name} at 0x{found_at:02X} on {bus_label(bus)} stopped answering while being set up: {exc}",
            FIX_WIRING.format(bus=bus_number_of(bus) or 1),
        ) from None
    imu = Imu(bus, driver, requested_rate_hz=rate_hz, clock=clock, calibration=None, reopen=reopen)
    _attach_calibration(imu, _as_calibration(calibration))
    log.info("IMU: %s", imu.describe())
    return imu


def _check_ranges(family: str, accel_range_g: int, gyro_range_dps: int) -> None:
    try:
        regs.accel_counts_per_g(family, accel_range_g)
        regs.gyro_counts_per_dps(family, gyro_range_dps)
    except ValueError as exc:
        raise ImuError(str(exc), "accel_range_g: 2, 4, 8 or 16; gyro_range_dps: 250, 500, 1000 or 2000") from None


def _attach_calibration(imu: Imu, calibration: ImuCalibration | None) -> None:
    if calibration is None:
        return
    if calibration.chip and calibration.chip != imu.chip:
        log.warning("IMU calibration was made on a %s, this is a %s: not applied (run `kneeroll calibrate imu`)",
                    calibration.chip, imu.chip)
        return
    imu.calibration = calibration
    imu.gyro_bias_dps = np.asarray(calibration.gyro_bias_dps, dtype=np.float64)


__all__ = [
    "CANDIDATE_ADDRESSES", "ChipIdentity", "FifoStatus", "FifoMisaligned", "Imu", "ImuCalibration", "ImuStats",
    "Probe", "SampleTimeline", "StillnessLimits", "calibrate_gyro", "detect_chip", "open_bus", "open_imu",
    "probe_bus", "read_burst",
]
