"""`kneeroll firmware install` and `kneeroll firmware status`: the Pico's firmware from the Pi."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from typing import Any

from kneeroll_device.cliutil import add_common_options, load_for
from kneeroll_device.errors import BoardError

from . import board as boards
from . import installer

SERVICE = "kneeroll.service"


def register(commands: Any) -> None:
    firmware = commands.add_parser("firmware", help="install the Pico's firmware from the Pi, or check it")
    sub = firmware.add_subparsers(dest="firmware_command", metavar="COMMAND", required=True)

    install = sub.add_parser("install", help="copy the firmware onto the Pico over USB, then check the force link",
                             description="Finds the Pico on USB (or --port), compiles the modules with mpy-cross where "
                             "the board's MicroPython loads them, copies them with mpremote, writes the settings, "
                             "resets the Pico and checks through the force link that it answers with this version "
                             "and rate and that samples arrive.")
    install.add_argument("--port", metavar="PORT", help="the Pico's USB serial port (default: found by its USB id)")
    install.add_argument("--rate", type=int, choices=installer.RATES_HZ, default=None,
                         help="the HX711's rate as the board is wired: 10 (RATE pin low, most breakout boards) or "
                              "80 (RATE high); default: force.sample_rate_hz of the config")
    install.add_argument("--link-port", metavar="URL", help="the force link to check afterwards (default: force.port)")
    install.add_argument("--no-check", action="store_true", help="do not check the force link afterwards")
    install.add_argument("--stop-service", action="store_true",
                         help="stop the kneeroll service while installing (it holds the ports) and start it again")
    add_common_options(install, json_flag=True)
    install.set_defaults(func=install_command)

    status = sub.add_parser("status", help="the firmware version and settings on the Pico against this kneeroll's")
    status.add_argument("--port", metavar="PORT", help="the Pico's USB serial port (default: found by its USB id)")
    add_common_options(status, json_flag=True)
    status.set_defaults(func=status_command)


def install_command(args) -> int:
    config = load_for(args)
    rate = args.rate or config.force.sample_rate_hz
    out = sys.stderr if args.json else sys.stdout
    say = _printer(out)
    started = time.monotonic()
    with _service_stopped(args.stop_service, say):
        port = boards.find_pico(args.port)
        say(f"Pico on {port}: copying firmware {installer.package_version()} for {rate} samples/s")
        if boards.take_over(port):
            say("rebooted it without its watchdog, to copy in peace")
        with boards.open_board(port) as board:
            manifest = installer.install(board, rate, say=say)
            board.remove(boards.NO_WATCHDOG_FILE)
            board.reset()
        check = None
        if not args.no_check:
            link = args.link_port or config.force.port
            say(f"reset; checking the force link on {link}")
            check = installer.verify_link(link, config.force.baudrate, rate)
    document = {"port": port, "installed": manifest["version"], "rate_hz": rate, "files": sorted(manifest["files"]),
                "check": check, "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(document, indent=2))
    if check is not None and not check["ok"]:
        print(f"kneeroll firmware install: installed {manifest['version']}, but the force link disagrees: "
              f"{'; '.join(check['problems'])} (check the wiring and force.port, then run kneeroll firmware status)",
              file=sys.stderr)
        return 1
    verdict = "not checked (--no-check)" if check is None else (
        f"it works: {check['samples']} samples in {check['seconds']:g} s on {check['link']}")
    say(f"installed firmware {manifest['version']} at {rate} samples/s; {verdict}")
    return 0


def status_command(args) -> int:
    load_for(args)
    port = boards.find_pico(args.port)
    with boards.open_board(port, soft_reset=False) as board:
        found = installer.status(board)
    found["port"] = port
    if args.json:
        print(json.dumps(found, indent=2))
    elif found["matches"]:
        print(f"Pico on {port}: firmware {found['installed']} at {found['rate_hz']} samples/s, as this kneeroll carries")
    else:
        print(f"Pico on {port}: {found['problem']} (this kneeroll carries {found['carried']}); "
              "fix: kneeroll firmware install")
    return 0 if found["matches"] else 1


def _printer(out):
    def say(text: str) -> None:
        print(text, file=out, flush=True)
    return say


@contextlib.contextmanager
def _service_stopped(stop: bool, say):
    """With --stop-service: the kneeroll service is stopped for the install, and started again after."""
    if not stop:
        yield
        return
    systemctl = shutil.which("systemctl")
    active = systemctl is not None and subprocess.run([systemctl, "is-active", "--quiet", SERVICE]).returncode == 0
    if active:
        say("stopping the kneeroll service for the install")
        if subprocess.run([systemctl, "stop", SERVICE]).returncode != 0:
            raise BoardError("could not stop the kneeroll service", "run this with sudo, or stop it yourself")
    try:
        yield
    finally:
        if active:
            say("starting the kneeroll service again")
            subprocess.run([systemctl, "start", SERVICE])

