"""IMU acquisition over I2C: start the chip, stream its FIFO, survive faults.

``open_imu(bus, ...)`` finds the chip (MPU-6050 family, LSM6DSOX, LSM6DS3TR-C), configures
its range and rate, and streams its FIFO. Each ``read()`` returns an
:class:`~kneeroll_device.samples.ImuBlock` with the samples that arrived since the last
call. The bus is injected: production passes ``open_bus(1)``; tests and the demo pass
``kneeroll_device.sim.imu_emulator.FakeSMBus``.

Why the FIFO: a Python loop on a Pi Zero cannot poll 100-400 times a second without
missing samples; the sensor's FIFO holds 0.2-5 s of data and a burst read empties it.

The parts live beside this module, and the imports run one way (none of them imports
this one): bus.py (the I2C bus), chip.py (what a chip driver is), mpu6050.py and
lsm6dsox.py (the drivers, on bus.py and chip.py), detect.py (which chip answers, and its
driver), timeline.py (the samples' clock times, rebuilt because the samples carry none)
and calibration.py (the gyro bias at rest).

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

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..clock import SystemClock
from ..errors import ImuError
from ..samples import DeviceEvent, GapEvent, ImuBlock
from . import registers as regs
from .bus import FIX_WIRING, TRANSIENT_ERRNOS, I2cBus, bus_label, bus_number_of, errno_of, open_bus
from .calibration import ImuCalibration, as_calibration
from .chip import ChipDriver, FifoMisaligned
from .detect import detect_chip, make_driver, who_am_i_register
from .timeline import SampleTimeline

log = logging.getLogger(__name__)


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
                if errno_of(exc) not in TRANSIENT_ERRNOS or attempt == self.RETRIES:
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
            needs_reopen=errno_of(exc) not in TRANSIENT_ERRNOS,
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
    _attach_calibration(imu, as_calibration(calibration))
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


__all__ = ["Imu", "ImuStats", "open_imu"]
