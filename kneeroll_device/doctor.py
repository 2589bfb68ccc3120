"""`kneeroll doctor`: check the hardware the config describes and say what to fix.

Three families of checks, each a list of :class:`Finding`:

- I2C: the bus opens; each candidate address (0x68, 0x69, 0x6A, 0x6B, or the configured
  one) is probed for WHO_AM_I; the IMU found is started and must deliver samples at about
  its rate.
- Serial: the force port opens (serial.serial_for_url) and within 2 s bytes arrive; frames
  end with a 0x00 delimiter, so 0x00 bytes mean something frame-like is talking.
- GPIO: every pin of [pins] can be claimed through gpiozero.

The hardware is injected (a bus factory, a serial factory, a gpiozero pin factory and a
clock), so the same checks run on a Pi, in tests, and under ``--emulate`` (or
KNEEROLL_EMULATE=1): an emulated MPU-6050 on a FakeSMBus, a ``loop://`` port primed with
one frame, and gpiozero's MockFactory, all on a ManualClock so nothing waits.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from .errors import ImuError, KneerollError

EMULATE_ENV = "KNEEROLL_EMULATE"
SERIAL_WAIT_S = 2.0
SERIAL_POLL_S = 0.05
STREAM_CHECK_S = 0.5
FRAME_DELIMITER = 0x00


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'problem':8s}{self.check}: {self.detail}"
        return text + (f" -> {self.fix}" if self.fix and not self.ok else "")


@dataclass
class Hardware:
    """Where the checks get their devices: real ones by default."""

    bus_factory: Callable[[int], Any] | None = None
    serial_factory: Callable[..., Any] | None = None
    pin_factory: Any = None
    clock: Any = None


# --- I2C ---------------------------------------------------------------------------------


def check_i2c(imu_config: Any, bus_factory: Callable[[int], Any] | None = None, clock: Any = None) -> list[Finding]:
    from .sensors import bus as bus_module

    bus_factory = bus_factory or bus_module.open_bus
    try:
        bus = bus_factory(imu_config.bus)
    except ImuError as exc:
        return [Finding("i2c bus", False, exc.message, exc.fix or "")]
    findings = [Finding("i2c bus", True, f"/dev/i2c-{imu_config.bus} is open")]
    try:
        findings += _probe_findings(bus, imu_config)
        if all(f.ok for f in findings):
            findings.append(_stream_finding(bus, imu_config, clock))
    finally:
        _close_quietly(bus)
    return findings


def _configured(imu_config: Any) -> tuple[int | None, str | None]:
    address = None if imu_config.address == "auto" else int(imu_config.address)
    chip = None if imu_config.chip == "auto" else imu_config.chip
    return address, chip


def _probe_findings(bus: Any, imu_config: Any) -> list[Finding]:
    from .sensors.bus import FIX_JOIN_GROUP
    from .sensors.detect import CANDIDATE_ADDRESSES, not_found_error, probe_bus

    address, chip = _configured(imu_config)
    addresses = (address,) if address is not None else CANDIDATE_ADDRESSES
    try:
        probes = probe_bus(bus, addresses, chip)
    except PermissionError:
        return [Finding("i2c bus", False, f"no permission to use /dev/i2c-{imu_config.bus}", FIX_JOIN_GROUP)]
    findings = []
    for probe in probes:
        # an empty address is not a problem in itself; only "no IMU anywhere" is
        findings.append(Finding(f"i2c 0x{probe.address:02X}", True, probe.describe().split(": ", 1)[1]))
    found = [p for p in probes if p.identity is not None]
    if found:
        best = found[0]
        note = "" if best.identity.genuine else " (a compatible part; it will be used with a warning)"
        findings.append(Finding("imu", True, f"{best.identity.name} at 0x{best.address:02X}{note}"))
    elif chip is not None and any(p.who_am_i is not None for p in probes):
        findings.append(Finding("imu", True, f"an unknown part that the config names as {chip}"))
    else:
        error = not_found_error(bus, probes, chip)
        findings.append(Finding("imu", False, error.message, error.fix or ""))
    return findings


def _stream_finding(bus: Any, imu_config: Any, clock: Any) -> Finding:
    """Start the IMU for half a second: the FIFO must fill at about the configured rate."""
    from .clock import SystemClock
    from .sensors.imu import open_imu

    clock = clock or SystemClock()
    address, chip = _configured(imu_config)
    try:
        imu = open_imu(bus, address, imu_config.rate_hz, chip=chip, accel_range_g=imu_config.accel_range_g,
                       gyro_range_dps=imu_config.gyro_range_dps, clock=clock)
    except ImuError as exc:
        return Finding("imu stream", False, exc.message, exc.fix or "")
    with imu:
        imu.read()
        start = clock()
        count = 0
        while clock() - start < STREAM_CHECK_S:
            clock.sleep(0.05)
            count += len(imu.read())
        elapsed = max(clock() - start, 1e-9)
    measured = count / elapsed
    if measured < 0.7 * imu.rate_hz:
        return Finding("imu stream", False, f"{measured:.0f} samples/s from the FIFO, expected {imu.rate_hz:g}",
                       "check the wiring and the pull-ups; try a slower bus (dtparam=i2c_arm_baudrate=100000)")
    return Finding("imu stream", True, f"{measured:.0f} samples/s ({imu.describe()})")


# --- serial ------------------------------------------------------------------------------


def check_serial(port: str, baudrate: int, serial_factory: Callable[..., Any] | None = None,
                 clock: Any = None, wait_s: float = SERIAL_WAIT_S) -> Finding:
    return probe_serial(port, baudrate, serial_factory, clock, wait_s)[0]


def probe_serial(port: str, baudrate: int, serial_factory: Callable[..., Any] | None = None,
                 clock: Any = None, wait_s: float = SERIAL_WAIT_S) -> tuple[Finding, bytes]:
    """The serial finding, and what arrived (after asking the Pico to say who it is)."""
    import serial

    from firmware_bridge import protocol

    from .clock import SystemClock

    serial_factory = serial_factory or serial.serial_for_url
    clock = clock or SystemClock()
    try:
        link = serial_factory(port, baudrate=baudrate, timeout=0)
    except (serial.SerialException, OSError) as exc:
        return _serial_open_problem(port, exc), b""
    try:
        # the Pico answers a HELLO_REQUEST with its HELLO: firmware version and rate
        request = protocol.encode_frame(protocol.HELLO_REQUEST, 0)
        link.write(request)
        # (a loopback or an echoing adapter hands the request back: it is not the Pico's)
        received = _listen(link, clock, wait_s).replace(request, b"")
    except (serial.SerialException, OSError) as exc:
        return Finding("serial", False, f"{port} failed while reading: {exc}", "check the cable and the port"), b""
    finally:
        _close_quietly(link)
    return _serial_finding(port, baudrate, received, wait_s), received


def check_firmware(received: bytes) -> Finding:
    """The firmware the Pico said it runs, against the one this kneeroll carries."""
    from firmware_bridge import protocol
    from firmware_bridge.installer import package_version

    decoder = protocol.FrameDecoder()
    hellos = [m for m in decoder.feed(received) if m.type == protocol.HELLO]
    carried = package_version()
    if decoder.last_foreign_version is not None:
        return Finding("firmware", False, f"the Pico speaks force-link protocol {decoder.last_foreign_version}, "
                       f"this kneeroll speaks {protocol.PROTOCOL_VERSION}", "kneeroll firmware install")
    if not hellos:
        return Finding("firmware", False, "the Pico did not say which firmware it runs",
                       "kneeroll firmware status (over USB) tells; kneeroll firmware install brings it in step")
    f = hellos[-1].fields
    version = f"{f['fw_major']}.{f['fw_minor']}.{f['fw_patch']}"
    if version != carried:
        return Finding("firmware", False, f"the Pico runs firmware {version}, this kneeroll carries {carried}",
                       "kneeroll firmware install")
    return Finding("firmware", True, f"firmware {version} at {f['rate_hz']} samples/s")


def _serial_finding(port: str, baudrate: int, received: bytes, wait_s: float) -> Finding:
    if not received:
        return Finding("serial", False, f"no bytes from the Pico on {port} in {wait_s:g} s",
                       "check the Pico is powered and flashed, and that its TX goes to the Pi's RX (pin 10)")
    if FRAME_DELIMITER not in received:
        return Finding("serial", False, f"{len(received)} bytes on {port} but no frame delimiter (0x00)",
                       f"check force.baudrate ({baudrate}) matches the Pico, and that the Pico runs kneeroll's firmware")
    return Finding("serial", True, f"{port}: {len(received)} bytes in frames at {baudrate} baud")


def _listen(link: Any, clock: Any, wait_s: float) -> bytes:
    """Read what arrives for up to ``wait_s`` of clock time; stop early once the Pico's HELLO came."""
    from firmware_bridge import protocol

    decoder = protocol.FrameDecoder()
    received = bytearray()
    end = clock() + wait_s
    while clock() < end:
        chunk = link.read(4096)
        if chunk:
            received += chunk
            if any(m.type == protocol.HELLO for m in decoder.feed(chunk)):
                break
        else:
            clock.sleep(SERIAL_POLL_S)
    return bytes(received)


def _serial_open_problem(port: str, exc: BaseException) -> Finding:
    code = getattr(exc, "errno", None) or getattr(getattr(exc, "__context__", None), "errno", None)
    text = str(exc)
    if code == errno.EACCES or "Permission denied" in text:
        fix = "join group dialout with `sudo adduser $USER dialout`, then log out and in again"
    elif code == errno.ENOENT or "No such file" in text or "could not open port" in text:
        fix = ("enable the UART with `sudo raspi-config nonint do_serial_hw 0` and `sudo raspi-config nonint "
               "do_serial_cons 1`, reboot, and check force.port in the config")
    else:
        fix = "check force.port in the config"
    return Finding("serial", False, f"cannot open {port}: {text}", fix)


# --- GPIO --------------------------------------------------------------------------------


def check_pins(pins: dict[str, int], pin_factory: Any = None) -> list[Finding]:
    """Claim each pin as an input (harmless for LEDs and buzzers), then release it."""
    from gpiozero import InputDevice
    from gpiozero.exc import BadPinFactory, GPIOPinInUse, PinError, PinFactoryFallback

    findings = []
    for name, pin in pins.items():
        label = f"gpio {name}"
        try:
            with warnings.catch_warnings():
                # the fallback chain (lgpio, RPi.GPIO, pigpio, native) is noise here: the finding says it
                warnings.simplefilter("ignore", PinFactoryFallback)
                device = InputDevice(pin, pull_up=None, active_state=True, pin_factory=pin_factory)
        except BadPinFactory as exc:
            return findings + [Finding("gpio", False, f"no GPIO library works here ({exc})",
                                       "install python3-lgpio and create the venv with --system-site-packages")]
        except GPIOPinInUse:
            findings.append(Finding(label, False, f"GPIO{pin} is in use by another program or device",
                                    "stop the kneeroll service (`sudo systemctl stop kneeroll`) or pick another pin"))
            continue
        except PermissionError:
            findings.append(Finding(label, False, f"no permission for GPIO{pin}",
                                    "join group gpio with `sudo adduser $USER gpio`, then log out and in again"))
            continue
        except (PinError, OSError, ValueError) as exc:
            findings.append(Finding(label, False, f"GPIO{pin} cannot be claimed: {exc}", f"check pins.{name}"))
            continue
        device.close()
        findings.append(Finding(label, True, f"GPIO{pin} is free"))
    return findings


def _pins_of(pins_config: Any) -> dict[str, int]:
    if hasattr(pins_config, "used_pins"):
        return dict(pins_config.used_pins())
    names = ["led_red", "buzzer", "button"]
    if getattr(pins_config, "led", "rgb") == "rgb":
        names += ["led_green", "led_blue"]
    return {name: getattr(pins_config, name) for name in names}


# --- running it --------------------------------------------------------------------------


def run_doctor(config: Any, hardware: Hardware | None = None) -> list[Finding]:
    hardware = hardware or Hardware()
    findings = check_i2c(config.imu, hardware.bus_factory, hardware.clock)
    serial_found, received = probe_serial(config.force.port, config.force.baudrate, hardware.serial_factory,
                                          hardware.clock)
    findings.append(serial_found)
    if serial_found.ok:
        findings.append(check_firmware(received))
    findings += check_pins(_pins_of(config.pins), hardware.pin_factory)
    return findings


def emulation_requested(args: Any) -> bool:
    return bool(getattr(args, "emulate", False)) or os.environ.get(EMULATE_ENV, "") not in ("", "0")


def report(findings: Iterable[Finding], as_json: bool, out: Any = None) -> int:
    out = out or sys.stdout
    findings = list(findings)
    if as_json:
        json.dump({"findings": [asdict(f) for f in findings]}, out, indent=2)
        out.write("\n")
    else:
        for finding in findings:
            out.write(finding.line() + "\n")
    return 0 if all(f.ok for f in findings) else 1


def doctor_command(args: Any) -> int:
    """Handler of `kneeroll doctor`: exit 0 if every check passed, 1 if one failed, 2 for a bad config."""
    from .config import load_config

    try:
        config = load_config(getattr(args, "config", None))
    except KneerollError as exc:
        print(f"kneeroll doctor: {exc}", file=sys.stderr)
        return 2
    # the emulated hardware comes from the command's wiring (cli.py): the doctor itself knows no simulator
    hardware = args.emulated().hardware(config.imu) if emulation_requested(args) else None
    return report(run_doctor(config, hardware), bool(getattr(args, "json", False)))


def _close_quietly(device: Any) -> None:
    try:
        device.close()
    except Exception:  # noqa: BLE001 - closing a broken device must not hide the finding
        pass
