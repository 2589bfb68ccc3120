"""What a chip driver is: the identity WHO_AM_I gave, the FIFO's state, shared register access.

The drivers (mpu6050.py, lsm6dsox.py) build on :class:`RegisterDriver`; the streaming IMU
(imu.py) uses any of them through the :class:`ChipDriver` protocol; detect.py names the
chip and picks its driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ImuError
from .bus import I2cBus


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
