"""Routines as data: a TOML file of steps, read and checked.

A routine file has a ``[routine]`` table and one ``[[steps]]`` table per step.
Roll steps have a ``roll_seconds`` target (seconds of active rolling, a minimum
to finish and a maximum to aim for). Release steps have ``reps_per_point`` and
``points``, and may start with a short gentle roll (``roll_seconds`` with
min = 0). Every error names the step and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RoutineError

COLOURS: dict[str, tuple[float, float, float]] = {
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.2, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "yellow": (1.0, 0.7, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "orange": (1.0, 0.35, 0.0),
    "purple": (0.5, 0.0, 1.0),
}
# red is kept for the pressure warning and faults, so no step may use it
KINDS = ("roll", "release")
ORIENTATIONS = ("normal", "flipped")
STEP_KEYS = {
    "id", "name", "kind", "instruction", "roll_seconds", "reps_per_point", "points",
    "pressure_limit_kpa", "orientation", "colour",
}
ROUTINE_KEYS = {"id", "name", "sessions_per_day", "programme_days"}


@dataclass(frozen=True)
class Range:
    min: float
    max: float


@dataclass(frozen=True)
class Step:
    index: int  # 1-based position in the routine
    id: str
    name: str
    kind: str
    instruction: str
    roll_seconds: Range | None
    reps_per_point: Range | None
    points: int
    pressure_limit_kpa: float
    orientation: str
    colour: str

    @property
    def rgb(self) -> tuple[float, float, float]:
        return COLOURS[self.colour]

    def targets(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pressure_limit_kpa": self.pressure_limit_kpa}
        if self.roll_seconds:
            out["roll_seconds_min"] = self.roll_seconds.min
            out["roll_seconds_max"] = self.roll_seconds.max
        if self.reps_per_point:
            out["reps_per_point_min"] = self.reps_per_point.min
            out["reps_per_point_max"] = self.reps_per_point.max
            out["points"] = self.points
        return out


@dataclass(frozen=True)
class Routine:
    id: str
    name: str
    sessions_per_day: int
    programme_days: int
    steps: tuple[Step, ...]
    source: str

    def step(self, index: int) -> Step:
        return self.steps[index - 1]


def builtin_routines() -> list[str]:
    folder = resources.files(__package__).joinpath("routines")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_routine(name_or_path: str | Path) -> Routine:
    """A built-in routine by name ("runners-knee") or a routine TOML file by path."""
    text, source = _read_routine_text(str(name_or_path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutineError(f"routine {source} is not valid TOML: {exc}") from None
    return parse_routine(data, source)


def _read_routine_text(name_or_path: str) -> tuple[str, str]:
    if name_or_path in builtin_routines():
        file = resources.files(__package__).joinpath("routines", name_or_path + ".toml")
        return file.read_text(), f"built-in routine {name_or_path}"
    path = Path(name_or_path).expanduser()
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError:
        raise RoutineError(f"routine file {path} is not a text file", "give a routine TOML file") from None
    except FileNotFoundError:
        raise RoutineError(
            f"routine {name_or_path} is neither a built-in routine nor a file",
            "built-in routines: " + ", ".join(builtin_routines()),
        ) from None
    except OSError as exc:
        raise RoutineError(f"routine file {path} cannot be read: {exc.strerror}") from None


def parse_routine(data: dict[str, Any], source: str = "routine") -> Routine:
    head = data.get("routine")
    if not isinstance(head, dict):
        raise RoutineError(f"{source} has no [routine] table", "add [routine] with id and name")
    _reject_unknown(head, ROUTINE_KEYS, f"{source} [routine]")
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise RoutineError(f"{source} has no steps", "add one [[steps]] table per step")
    steps = tuple(_parse_step(i + 1, raw, source) for i, raw in enumerate(steps_data))
    ids = [s.id for s in steps]
    for step in steps:
        if ids.count(step.id) > 1:
            raise RoutineError(f"{source}: step id {step.id!r} is used twice", "give each step its own id")
    return Routine(
        id=_text(head, "id", f"{source} [routine]"),
        name=_text(head, "name", f"{source} [routine]"),
        sessions_per_day=_number(head, "sessions_per_day", f"{source} [routine]", 1, 6, default=2, integer=True),
        programme_days=_number(head, "programme_days", f"{source} [routine]", 1, 365, default=7, integer=True),
        steps=steps,
        source=source,
    )


def _parse_step(index: int, raw: Any, source: str) -> Step:
    where = f"{source} step {index}"
    if not isinstance(raw, dict):
        raise RoutineError(f"{where} is not a table")
    if isinstance(raw.get("id"), str):
        where = f"{source} step {index} ({raw['id']})"
    _reject_unknown(raw, STEP_KEYS, where)
    kind = _choice(raw, "kind", where, KINDS)
    roll = _range(raw, "roll_seconds", where, 0, 600) if "roll_seconds" in raw else None
    reps = _range(raw, "reps_per_point", where, 1, 100) if "reps_per_point" in raw else None
    if kind == "roll" and (roll is None or roll.min <= 0):
        raise RoutineError(f"{where}: a roll step needs roll_seconds with min > 0", "e.g. roll_seconds = { min = 15, max = 20 }")
    if kind == "release" and reps is None:
        raise RoutineError(f"{where}: a release step needs reps_per_point", "e.g. reps_per_point = { min = 5, max = 10 }")
    if kind == "roll" and reps is not None:
        raise RoutineError(f"{where}: key reps_per_point is for release steps only", "remove it or use kind = \"release\"")
    colour = _choice(raw, "colour", where, tuple(COLOURS))
    return Step(
        index=index,
        id=_text(raw, "id", where),
        name=_text(raw, "name", where),
        kind=kind,
        instruction=_text(raw, "instruction", where),
        roll_seconds=roll,
        reps_per_point=reps,
        points=_number(raw, "points", where, 1, 20, default=1, integer=True),
        pressure_limit_kpa=_number(raw, "pressure_limit_kpa", where, 1, 300),
        orientation=_choice(raw, "orientation", where, ORIENTATIONS, default="normal"),
        colour=colour,
    )


def _reject_unknown(table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise RoutineError(f"{where}: unknown key {key!r}", "keys are " + ", ".join(sorted(allowed)))


def _text(table: dict, key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RoutineError(f"{where}: key {key!r} must be a non-empty string")
    return value.strip()


def _choice(table: dict, key: str, where: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise RoutineError(f"{where}: key {key!r} = {value!r} is not allowed", "use one of " + ", ".join(choices))
    return value


def _number(table, key, where, low, high, default=None, integer=False) -> Any:
    value = table.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise RoutineError(f"{where}: key {key!r} = {value!r} is not allowed", f"use {kind} from {low} to {high}")
    return value if integer else float(value)


def _range(table: dict, key: str, where: str, low: float, high: float) -> Range:
    value = table.get(key)
    if not isinstance(value, dict) or set(value) != {"min", "max"}:
        raise RoutineError(f"{where}: key {key!r} must be a table {{ min = ..., max = ... }}")
    lo = _number(value, "min", f"{where} {key}", low, high)
    hi = _number(value, "max", f"{where} {key}", low, high)
    if hi < lo or hi == 0:
        raise RoutineError(f"{where}: key {key!r} has max {hi:g} below min {lo:g}", "make max at least min")
    return Range(lo, hi)
