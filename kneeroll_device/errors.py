"""The project's one exception family.

Every error a user can meet is a :class:`KneerollError`. Each class also derives
from the builtin a caller would naturally catch (ValueError for bad input,
OSError for devices), so generic handlers keep working. The message says what
is wrong; ``fix`` says what to do about it. The CLI prints both on one or two
lines and exits 2 for bad input (:class:`InputError`) and 1 for everything else.
"""

from __future__ import annotations


class KneerollError(Exception):
    """Base of every error raised on purpose by kneeroll."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} ({self.fix})"
        return self.message


class InputError(KneerollError, ValueError):
    """Bad input from the user: a file, an option or a value. Exit code 2."""


class ConfigError(InputError):
    """A configuration key or value that is not allowed."""


class RoutineError(InputError):
    """A routine file that does not describe a valid routine."""


class RecordingError(InputError):
    """A recording folder or CSV that cannot be read."""


class DeviceError(KneerollError, OSError):
    """A device that cannot be opened or stopped answering. Exit code 1."""


class ImuError(DeviceError):
    """The IMU on the I2C bus is absent, unreachable or not a supported chip."""


class LinkError(DeviceError):
    """The serial link to the force sensor's Pico cannot be used."""


class BoardError(DeviceError):
    """The Pico on USB cannot be found, opened or programmed."""


class FrameError(KneerollError, ValueError):
    """A frame on the force link that is corrupt (bad CRC, bad length, bad stuffing)."""


class ProtocolError(KneerollError, ValueError):
    """A peer that speaks another protocol version or breaks the protocol's rules."""


class CalibrationError(KneerollError, ValueError):
    """A calibration that cannot be made or loaded."""


class StoreError(KneerollError, OSError):
    """The session log cannot be opened or written."""
