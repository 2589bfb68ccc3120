"""What every kneeroll command shares: option types, the parser, JSON output, loading the config."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

PROG = "kneeroll"


def number_in(low: float, high: float):
    """An argparse type: a finite number from low to high, or a one-line usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is not a number from {low:g} to {high:g}")
        return value

    return parse


def whole_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not from {low} to {high}")
        return value

    return parse


class Parser(argparse.ArgumentParser):
    """argparse that reports bad usage in one line, with the way to more help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kneeroll")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def json_out(document) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=json_default) + "\n")


def json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_for(args):
    from .config import load_config

    config = load_config(getattr(args, "config", None))
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["storage"] = {"data_dir": str(args.data_dir)}
    if getattr(args, "leg", None):
        overrides["routine"] = {"leg": args.leg}
    if getattr(args, "routine", None):
        overrides.setdefault("routine", {})["file"] = str(args.routine)
    return config.replace(**overrides) if overrides else config


def fmt(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def add_common_options(parser, *, config=True, data_dir=False, json_flag=False) -> None:
    # --debug after the subcommand too; SUPPRESS keeps the top-level value when it is not given here
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logging")
    if config:
        parser.add_argument("--config", metavar="FILE", help="config file (default: the built-in defaults, or $KNEEROLL_CONFIG)")
    if data_dir:
        parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where the session log lives (overrides the config)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
