"""Command-line pieces for the force link: `kneeroll bridge ...` and `kneeroll calibrate force`.

kneeroll_device/cli.py stays thin: it calls ``register(subparsers)`` and
``register_calibrate(calibrate_subparsers)``; each subparser sets ``func`` to a
handler(args) -> int exit code (0 done, 1 failed, 2 bad input). Handlers print
a KneerollError as one line on stderr; with ``args.debug`` set they re-raise it.
"""

from __future__ import annotations

import argparse
import json
import signal as signals
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kneeroll_device.errors import InputError, KneerollError, LinkError

DEFAULT_LISTEN_SECONDS = 5.0
UP_TIMEOUT_S = 5.0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `bridge emulate` and `bridge listen`."""
    bridge = subparsers.add_parser(
        "bridge",
        help="the force link to the Pico: emulate one, or listen to one",
        description="Tools for the serial link between the Pi and the Pico that reads the load cell.",
    )
    commands = bridge.add_subparsers(dest="bridge_command", metavar="COMMAND", required=True)

    emulate = commands.add_parser(
        "emulate",
        help="serve an emulated Pico on a new pty",
        description="Serve a software Pico on a new pty. The first line printed is the pty's path; "
        "give it to `kneeroll bridge listen` or to force.port. Runs until Ctrl-C or SIGTERM.",
    )
    emulate.add_argument("--signal", choices=("ramp", "sim"), default="sim",
                         help="ramp: sample i reads i mod 2**23; sim: a light hold with a squeeze every 6 s "
                              "(default)")
    emulate.add_argument("--faults", metavar="SPEC", default="",
                         help="faults to inject, e.g. bitflip=0.001,drop=0.0005,truncate=0.001,reset@30,"
                              "stall@60+3,unplug@90+2 (times in seconds since start)")
    emulate.add_argument("--rate", type=float, default=80.0, metavar="HZ", help="samples per second (default 80)")
    emulate.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the fault randomness (default 0)")
    emulate.set_defaults(func=emulate_command)

    listen = commands.add_parser(
        "listen",
        help="connect to a Pico (or an emulated one) and count what arrives",
        description="Open URL (a device path, a pty path, loop://, ...), read for S seconds and print "
        "the counters received, lost, crc_errors, resyncs and reconnects.",
    )
    listen.add_argument("url", metavar="URL", help="the serial port, e.g. /dev/serial0")
    listen.add_argument("--seconds", type=float, default=DEFAULT_LISTEN_SECONDS, metavar="S",
                        help=f"how long to listen (default {DEFAULT_LISTEN_SECONDS:g})")
    listen.add_argument("--baudrate", type=int, default=115200, help="default 115200")
    listen.add_argument("--json", action="store_true",
                        help='print {"counters": {...}, "samples": [[seq, device_time_us, raw], ...]}')
    listen.set_defaults(func=listen_command)
    return bridge


def register_calibrate(calibrate_subparsers: Any) -> argparse.ArgumentParser:
    """Add `calibrate force`."""
    parser = calibrate_subparsers.add_parser(
        "force",
        help="measure the load cell's scale with a known mass",
        description="Tare with no load, then weigh a known mass. The result goes to "
        "force_calibration.json in the data directory and is applied from then on.",
    )
    parser.add_argument("--known-mass", type=float, required=True, metavar="KG", help="the mass used, in kg")
    parser.add_argument("--port", metavar="URL", help="the Pico's serial port (default: force.port of the config)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where to save it (default: the config's)")
    parser.add_argument("--config", metavar="FILE", help="the config file (default: the built-in defaults)")
    parser.add_argument("--seconds", type=float, default=2.0, metavar="S",
                        help="how long to average each step (default 2)")
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON document on stdout (the prompts go to stderr)")
    parser.set_defaults(func=calibrate_force_command)
    return parser


# --- handlers -----------------------------------------------------------------------------


def _fail(args: Any, command: str, exc: KneerollError) -> int:
    if getattr(args, "debug", False):
        raise exc
    print(f"kneeroll {command}: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, InputError) else 1


def emulate_command(args: Any) -> int:
    """`kneeroll bridge emulate`: serve until SIGINT or SIGTERM."""
    from firmware_bridge.emulator import PicoEmulator, parse_faults, ramp, squeeze_signal

    try:
        faults = parse_faults(args.faults)
        if not 0 < args.rate <= 1000:
            raise InputError(f"--rate must be above 0 and at most 1000, got {args.rate:g}", "use --rate 80")
        signal = ramp if args.signal == "ramp" else squeeze_signal(args.rate, seed=args.seed)
        emulator = PicoEmulator.on_pty(signal=signal, rate_hz=args.rate, faults=faults, seed=args.seed)
    except KneerollError as exc:
        return _fail(args, "bridge emulate", exc)
    stop = threading.Event()
    previous = _on_signals(lambda *_: stop.set())
    try:
        print(emulator.port_name, flush=True)
        emulator.start()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.close()
        _restore_signals(previous)
    return 0


def listen_command(args: Any) -> int:
    """`kneeroll bridge listen URL`."""
    from firmware_bridge.link import ForceLink

    samples: list[list[int]] = []
    try:
        if not args.seconds > 0:
            raise InputError(f"--seconds must be positive, got {args.seconds:g}", "use --seconds 5")
        with ForceLink(args.url, baudrate=args.baudrate) as link:
            stop = threading.Event()
            end = link.clock() + args.seconds
            while True:
                batch = link.read()
                if args.json:
                    samples.extend(
                        [int(s), int(t), int(r)] for s, t, r in zip(batch.seq, batch.device_time_us, batch.raw)
                    )
                remaining = end - link.clock()
                if remaining <= 0:
                    break
                link.clock.wait(stop, min(0.2, remaining))
            counters = link.counters()
            fault = link.fault
    except KneerollError as exc:
        return _fail(args, "bridge listen", exc)
    if args.json:
        print(json.dumps({"counters": counters, "samples": samples}))
    else:
        for name in ("received", "lost", "crc_errors", "resyncs", "reconnects"):
            print(f"{name} {counters[name]}")
    if fault is not None:
        print(f"kneeroll bridge listen: {fault}", file=sys.stderr)
        return 1
    return 0


def calibrate_force_command(args: Any) -> int:
    """`kneeroll calibrate force --known-mass KG`."""
    from firmware_bridge.link import ForceLink
    from kneeroll_device.config import load_config
    from kneeroll_device.sensors.force import calibrate_force

    try:
        config = load_config(getattr(args, "config", None))
        if not args.seconds > 0:
            raise InputError(f"--seconds must be positive, got {args.seconds:g}", "use --seconds 2")
        if not (0.1 <= args.known_mass <= 200):
            # checked before the port is opened: a typo should not wait for the Pico
            raise InputError(f"--known-mass {args.known_mass:g} kg is not a test mass",
                             "hang or press a known mass of 0.1 to 200 kg, e.g. --known-mass 5")
        port = args.port or config.force.port
        data_dir = Path(args.data_dir) if args.data_dir else config.storage.data_dir
        with ForceLink(port, baudrate=config.force.baudrate) as link:
            if not link.wait_until(lambda: link.is_up, UP_TIMEOUT_S):
                raise LinkError(
                    f"no frames from the Pico on {port} within {UP_TIMEOUT_S:g} s",
                    "check that the Pico runs kneeroll's firmware, the TX/RX wires cross, and force.baudrate",
                )
            if link.fault is not None:
                raise link.fault
            # with --json the prompts go to stderr, so that stdout is the document alone
            prompts = sys.stderr if args.json else sys.stdout
            calibration = calibrate_force(
                link, args.known_mass, ask=lambda text: _ask(text, prompts),
                say=lambda text: print(text, file=prompts, flush=True), settle_s=args.seconds,
            )
        path = calibration.save(data_dir)
        from kneeroll_device.store import record_calibration

        record_calibration(data_dir, "force", asdict(calibration))
    except KneerollError as exc:
        return _fail(args, "calibrate force", exc)
    except (EOFError, KeyboardInterrupt):
        print("kneeroll calibrate force: cancelled, nothing saved", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"sensor": "force", "known_mass_kg": args.known_mass, **asdict(calibration),
                          "saved_to": str(path)}, indent=2))
        return 0
    print(
        f"{calibration.counts_per_newton:.3f} counts per newton, zero at {calibration.zero_offset:.0f} counts; "
        f"saved to {path}"
    )
    return 0


def _ask(text: str, out) -> str:
    print(text, end="", file=out, flush=True)
    return input("")


def _on_signals(handler: Any) -> dict[int, Any]:
    previous = {}
    for number in (signals.SIGINT, signals.SIGTERM):
        try:
            previous[number] = signals.signal(number, handler)
        except ValueError:  # not the main thread (a test calling the handler)
            pass
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signals.signal(number, handler)
