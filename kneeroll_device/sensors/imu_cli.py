"""Command-line pieces for the IMU: `kneeroll calibrate imu` and `kneeroll doctor`.

cli.py stays thin: it calls ``register_calibrate(calibrate_subparsers)`` and
``register_doctor(subparsers)``; each subparser sets ``func`` to a handler(args) -> int.

Both commands take ``--emulate`` (or KNEEROLL_EMULATE=1): the hardware is then emulated
in memory (an MPU-6050 lying still with a known gyro bias, on a ManualClock), so they can
be tried and tested anywhere. On a Pi, leave it off.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import InputError, KneerollError
from ..store import record_calibration

DEFAULT_SECONDS = 5.0


def register_calibrate(calibrate_subparsers: Any) -> argparse.ArgumentParser:
    parser = calibrate_subparsers.add_parser(
        "imu",
        help="measure the gyro bias with the roller at rest",
        description="Measure the gyro bias: lay the roller down and do not touch it while this runs. "
        "The result goes to imu_calibration.json in the data directory and is applied from then on.",
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                        help=f"how long to measure (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where to save it (default: the config's)")
    parser.add_argument("--config", metavar="FILE", help="the config file (default: the built-in defaults)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--emulate", action="store_true", help="use an emulated IMU instead of the I2C bus")
    parser.set_defaults(func=calibrate_imu_command)
    return parser


def register_doctor(subparsers: Any) -> argparse.ArgumentParser:
    from ..doctor import doctor_command

    parser = subparsers.add_parser(
        "doctor",
        help="check the IMU, the force link and the pins, and say what to fix",
        description="Probe the I2C bus, the serial port of the force sensor and the GPIO pins of the config. "
        "Exit 0 if everything is fine, 1 if something needs fixing.",
    )
    parser.add_argument("--json", action="store_true", help='print {"findings": [...]} as one JSON document')
    parser.add_argument("--config", metavar="FILE", help="the config file (default: the built-in defaults)")
    parser.add_argument("--emulate", action="store_true", help="check emulated hardware (for trying it out)")
    parser.set_defaults(func=doctor_command)
    return parser


def calibrate_imu_command(args: Any) -> int:
    """Handler of `kneeroll calibrate imu`."""
    from ..config import load_config
    from ..doctor import emulation_requested
    from .bus import open_bus
    from .calibration import calibrate_gyro
    from .imu import open_imu

    try:
        config = load_config(getattr(args, "config", None))
        if args.seconds <= 0:
            raise InputError(f"--seconds must be positive, got {args.seconds:g}", "use --seconds 5")
        data_dir = Path(args.data_dir) if args.data_dir else config.storage.data_dir
        imu_cfg = config.imu
        if emulation_requested(args):
            # the emulated bus comes from the command's wiring (cli.py): drivers know no simulator
            bus = args.emulated().imu_bus(imu_cfg)
            clock = bus.clock
        else:
            bus = open_bus(imu_cfg.bus)
            clock = None
        _say(args, f"Keep the roller still for {args.seconds:g} s...")
        try:
            with open_imu(bus, None if imu_cfg.address == "auto" else int(imu_cfg.address), imu_cfg.rate_hz,
                          chip=None if imu_cfg.chip == "auto" else imu_cfg.chip,
                          accel_range_g=imu_cfg.accel_range_g, gyro_range_dps=imu_cfg.gyro_range_dps,
                          clock=clock) as imu:
                calibration = calibrate_gyro(imu, args.seconds)
        finally:
            bus.close()
        path = calibration.save(data_dir)
        record_calibration(data_dir, "imu", asdict(calibration))
    except KneerollError as exc:
        print(f"kneeroll calibrate imu: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    if args.json:
        print(json.dumps({"path": str(path), "calibration": asdict(calibration)}))
    else:
        bias = ", ".join(f"{v:+.3f}" for v in calibration.gyro_bias_dps)
        print(f"gyro bias ({bias}) deg/s from {calibration.samples} samples of a {calibration.chip}; saved to {path}")
    return 0


def _say(args: Any, text: str) -> None:
    """Progress for a person at a terminal; nothing when --json or piped."""
    if not args.json and sys.stdout.isatty():
        print(text, flush=True)
