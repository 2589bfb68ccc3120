"""Finding the IMU: which chip answers WHO_AM_I at which address, and the driver for it.

Probing reads one register at each candidate address (0x68/0x69 for the MPU-6050 family,
0x6A/0x6B for the LSM6s); an address that does not acknowledge is silence, not an error.
Clones that answer another WHO_AM_I are used with a warning, or on the config's word.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import ImuError
from . import registers as regs
from .bus import FIX_ENABLE_I2C, FIX_JOIN_GROUP, FIX_WIRING, I2cBus, bus_label, bus_number_of, errno_of
from .chip import ChipDriver, ChipIdentity
from .lsm6dsox import Lsm6ds3trcDriver, Lsm6dsoxDriver
from .mpu6050 import Mpu6050Driver

log = logging.getLogger(__name__)

CANDIDATE_ADDRESSES = (0x68, 0x69, 0x6A, 0x6B)
CHIP_FAMILIES = ("mpu6050", "lsm6dsox", "lsm6ds3trc")


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
            reason = "no answer" if errno_of(self.error) in (errno.EREMOTEIO, errno.ENXIO) else f"error {self.error}"
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
        return Mpu6050Driver(bus, address, identity, rate_hz, accel_range_g, gyro_range_dps, clock)
    cls = Lsm6dsoxDriver if identity.family == "lsm6dsox" else Lsm6ds3trcDriver
    return cls(bus, address, identity, rate_hz, accel_range_g, gyro_range_dps, clock)
