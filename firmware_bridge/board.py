"""The Pico on USB: finding it, and talking to its MicroPython through mpremote.

mpremote (MicroPython's own tool) does the talking: its serial transport enters the
raw REPL, runs code on the board and writes files. This module only finds the board,
names each way it can fail in the user's words, and offers the few operations the
installer needs.

What a Pico looks like on USB (Raspberry Pi's vendor id 0x2E8A):
- running MicroPython: a CDC serial port, product 0x0005;
- in BOOTSEL mode: a mass-storage drive named RPI-RP2, product 0x0003, and no serial port.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from kneeroll_device.errors import BoardError

PICO_VID = 0x2E8A
MICROPYTHON_PID = 0x0005
BOOTSEL_PID = 0x0003
UF2_URL = "https://micropython.org/download/RPI_PICO/"
USB_DEVICES = Path("/sys/bus/usb/devices")
RAW_REPL_TIMEOUT_S = 5.0


def find_pico(port: str | None = None, usb_devices: Path = USB_DEVICES) -> str:
    """The serial port of a Pico running MicroPython: ``port`` if given, else found by USB id."""
    if port:
        return port
    from serial.tools import list_ports

    picos = [p for p in list_ports.comports() if p.vid == PICO_VID]
    if picos:
        return sorted(p.device for p in picos)[0]
    if in_bootsel(usb_devices):
        raise BoardError("the Pico is in BOOTSEL mode (a drive named RPI-RP2): it has no MicroPython yet",
                         f"copy the MicroPython UF2 for the Pico from {UF2_URL} onto the RPI-RP2 drive, "
                         "wait for the Pico to restart, then run this again")
    raise BoardError("no Pico found on USB",
                     "plug it in with a data cable (a charge-only cable shows nothing), or name its port with --port")


def in_bootsel(usb_devices: Path = USB_DEVICES) -> bool:
    """Whether a Pico in BOOTSEL mode is plugged in (from sysfs: no serial port shows it)."""
    if not usb_devices.is_dir():
        return False
    for device in usb_devices.iterdir():
        try:
            vid = int((device / "idVendor").read_text(), 16)
            pid = int((device / "idProduct").read_text(), 16)
        except (OSError, ValueError):
            continue
        if (vid, pid) == (PICO_VID, BOOTSEL_PID):
            return True
    return False


class Board:
    """MicroPython on the Pico, through mpremote's serial transport, in its raw REPL."""

    def __init__(self, transport, port: str):
        self._transport = transport
        self.port = port

    def run(self, code: str) -> str:
        """Runs code on the board; returns what it printed."""
        from mpremote.transport import TransportError

        try:
            return self._transport.exec(code).decode(errors="replace")
        except TransportError as exc:
            raise BoardError(f"the Pico on {self.port} failed running a command: {_last_line(exc)}",
                             "unplug it, plug it in again and run this again") from None

    def mpy_version(self) -> tuple[int, int] | None:
        """The .mpy format and sub-version the board's MicroPython loads, or None if it does not say."""
        text = self.run("import sys\ntry:\n print(sys.implementation._mpy & 0xff, sys.implementation._mpy >> 8 & 3)\n"
                        "except AttributeError:\n print('none')").strip()
        return None if text == "none" else tuple(int(x) for x in text.split())  # type: ignore[return-value]

    def write(self, name: str, data: bytes, progress=None) -> None:
        from mpremote.transport import TransportError

        try:
            self._transport.fs_writefile(name, data, progress_callback=progress)
        except (TransportError, OSError) as exc:
            raise BoardError(f"copying {name} to the Pico failed: {_last_line(exc)}",
                             "the board may be full or was unplugged: run this again") from None

    def read(self, name: str) -> bytes | None:
        if not self._transport.fs_exists(name):
            return None
        return self._transport.fs_readfile(name)

    def files(self) -> list[str]:
        return [entry.name for entry in self._transport.fs_listdir("")]

    def rename(self, old: str, new: str) -> None:
        self.run(f"import os\nos.rename({old!r}, {new!r})")

    def remove(self, name: str) -> None:
        self.run(f"import os\ntry:\n os.remove({name!r})\nexcept OSError:\n pass")

    def reset(self) -> None:
        """A hard reset: the board boots and runs main.py (the port goes away for a moment)."""
        try:
            self._transport.exec_raw_no_follow("import machine\nmachine.reset()")
        except Exception:  # the port vanishes under the reset: that is the reset working
            pass

    def close(self) -> None:
        try:
            self._transport.exit_raw_repl()
        except Exception:
            pass
        self._transport.close()

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_board(port: str, *, soft_reset: bool = False) -> Board:
    """Opens the port and enters MicroPython's raw REPL, or says in the user's words why not."""
    import serial
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    _probe(port, serial)
    try:
        # a read timeout: on a pty (and a board gone silent) a read would otherwise wait forever
        transport = SerialTransport(port, baudrate=115200, timeout=1.0)
    except TransportError as exc:
        raise _open_error(port, exc.__cause__ or exc) from None
    except (OSError, serial.SerialException) as exc:
        raise _open_error(port, exc) from None
    try:
        transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=RAW_REPL_TIMEOUT_S)
    except TransportError as exc:
        transport.close()
        raise BoardError(f"the device on {port} does not answer as MicroPython ({_last_line(exc)})",
                         "if it runs another program that ignores Ctrl-C, or no MicroPython at all: hold BOOTSEL, "
                         f"plug it in again and copy the MicroPython UF2 from {UF2_URL} onto the RPI-RP2 drive") from None
    return Board(transport, port)


def _probe(port: str, serial) -> None:
    """Opens the port once as mpremote will (exclusively), to name why it cannot be had:
    mpremote reports every failure to open as the same "failed to access"."""
    try:
        serial.Serial(port, exclusive=True).close()
    except (OSError, serial.SerialException) as exc:
        raise _open_error(port, exc) from None


NO_WATCHDOG_FILE = "nowdt"  # firmware/settings.py: with it on the board, main.py starts no watchdog
REBOOT_GONE_S = 2.0  # a reset Pico's USB port goes away within this long ...
REBOOT_BACK_S = 10.0  # ... and is back within this long


def take_over(port: str) -> bool:
    """Makes the board safe to work on for as long as it takes; returns whether it was rebooted.

    Our firmware starts the RP2040's watchdog (2 s), which nothing stops once started:
    interrupting main.py to copy files would have the board reset under the copy. So the
    first thing done at the REPL, well within those 2 s, is to leave the file that keeps
    main.py from starting the watchdog, then reboot into a board without one.
    """
    with open_board(port) as board:
        board.run(f"open({NO_WATCHDOG_FILE!r}, 'w').close()")
        if "main.py" not in board.files():
            return False  # nothing starts a watchdog: a fresh MicroPython
        board.reset()
    wait_for_reboot(port)
    return True


def wait_for_reboot(port: str) -> None:
    """Waits for the port to go (the board resets) and come back (it booted)."""
    deadline = time.monotonic() + REBOOT_GONE_S
    while os.path.exists(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    deadline = time.monotonic() + REBOOT_BACK_S
    while not os.path.exists(port):
        if time.monotonic() > deadline:
            raise BoardError(f"the Pico did not come back on {port} after a reset",
                             "unplug it, plug it in again and run this again")
        time.sleep(0.05)
    time.sleep(0.5)  # the port exists a moment before MicroPython answers on it


def _open_error(port: str, exc: BaseException) -> BoardError:
    text = str(exc)
    if port.startswith("/") and not os.path.exists(port):
        return BoardError(f"there is no port {port}", "check --port, or leave it out to find the Pico by its USB id")
    if isinstance(exc, PermissionError) or "Permission denied" in text or "[Errno 13]" in text:
        return BoardError(f"no permission to open {port}",
                          "add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again")
    if "exclusively lock" in text or "Resource temporarily unavailable" in text or "busy" in text.lower():
        return BoardError(f"{port} is in use by another program (the kneeroll service?)",
                          "stop it (sudo systemctl stop kneeroll), or pass --stop-service to have it stopped and "
                          "started again around the install")
    return BoardError(f"cannot open {port}: {text}", "unplug the Pico, plug it in again and run this again")


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__

