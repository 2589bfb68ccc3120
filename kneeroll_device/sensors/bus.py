"""The I2C bus: opening /dev/i2c-N, naming it in errors, reads longer than SMBus allows.

The bus is injected everywhere: production passes ``open_bus(1)`` (smbus2); tests and the
demo pass an emulated bus with the same methods (:class:`I2cBus`). This module holds what
every user of the bus shares, chip detection and the drivers alike: the fixes to print
when the bus cannot be used, and which of its errors are worth another try.
"""

from __future__ import annotations

import errno
from typing import Any, Protocol

from smbus2 import i2c_msg

from ..errors import ImuError

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


def errno_of(error: BaseException | None) -> int | None:
    """The errno of an OSError (smbus2 raises raw ones), None for anything else."""
    return getattr(error, "errno", None)
