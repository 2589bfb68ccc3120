"""The configuration: a TOML file read into frozen dataclasses.

The defaults live in ``default_config.toml`` beside this module, with a comment
for every key. A user's file overrides any subset. A key that does not exist,
or a value of the wrong type or out of range, is a :class:`ConfigError` that
names the key and what it allows: a typo must never be silently ignored on a
device without a screen.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

DEFAULT_CONFIG_TEXT = resources.files(__package__).joinpath("default_config.toml").read_text()
CONFIG_ENV = "KNEEROLL_CONFIG"
DATA_DIR_ENV = "KNEEROLL_DATA_DIR"


# --- rules: what each key allows -----------------------------------------------------


@dataclass(frozen=True)
class Rule:
    kind: type | tuple[type, ...]
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    parse: Callable[[Any], Any] | None = None  # turns a written form into the value (raises ValueError)
    shown: str | None = None  # how the allowed values are named in an error, if not by their repr

    def describe(self) -> str:
        if self.shown:
            return self.shown
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(names.get(k, k.__name__) for k in kinds)
        if self.low is not None and self.high is not None:
            text += f" from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            text += f" of at least {self.low:g}"
        return text

    def check(self, key: str, value: Any) -> Any:
        if self.parse is not None:
            try:
                value = self.parse(value)
            except ValueError:
                raise ConfigError(f"config key {key} = {value!r} is not allowed", f"use {self.describe()}") from None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok_type = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok_type or (self.choices and value not in self.choices):
            raise ConfigError(f"config key {key} = {value!r} is not allowed", f"use {self.describe()}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {key} = {value!r} is not a finite number", f"use {self.describe()}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ConfigError(f"config key {key} = {value!r} is out of range", f"use {self.describe()}")
        return value


GPIO = Rule(int, low=0, high=27)


def _i2c_address(value: Any) -> Any:
    """An I2C address as TOML gives it: 0x68 (an integer), or the string "0x68" or "auto"."""
    if isinstance(value, str) and value != "auto":
        return int(value, 0)
    return value
POSITIVE = Rule(float, low=1e-6)


# --- sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImuConfig:
    bus: int
    address: str | int
    chip: str
    rate_hz: int
    accel_range_g: int
    gyro_range_dps: int

    RULES = {
        "bus": Rule(int, low=0, high=255),
        "address": Rule((str, int), choices=("auto", 0x68, 0x69, 0x6A, 0x6B), parse=_i2c_address,
                        shown='"auto", or one of 0x68, 0x69, 0x6A, 0x6B'),
        "chip": Rule(str, choices=("auto", "mpu6050", "lsm6dsox", "lsm6ds3trc")),
        "rate_hz": Rule(int, low=50, high=400),
        "accel_range_g": Rule(int, choices=(2, 4, 8, 16)),
        "gyro_range_dps": Rule(int, choices=(250, 500, 1000, 2000)),
    }


@dataclass(frozen=True)
class ForceConfig:
    port: str
    baudrate: int
    sample_rate_hz: int
    counts_per_newton: float
    zero_offset: int

    RULES = {
        "port": Rule(str),
        "baudrate": Rule(int, choices=(9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)),
        "sample_rate_hz": Rule(int, choices=(10, 80)),
        "counts_per_newton": Rule(float, low=1e-3),
        "zero_offset": Rule(int, low=-(2**23), high=2**23 - 1),
    }


@dataclass(frozen=True)
class PinsConfig:
    led: str
    led_red: int
    led_green: int
    led_blue: int
    led_active_high: bool
    buzzer: int
    buzzer_kind: str
    buzzer_active_high: bool
    button: int

    RULES = {
        "led": Rule(str, choices=("rgb", "single")),
        "led_red": GPIO,
        "led_green": GPIO,
        "led_blue": GPIO,
        "led_active_high": Rule(bool),
        "buzzer": GPIO,
        "buzzer_kind": Rule(str, choices=("tonal", "active")),
        "buzzer_active_high": Rule(bool),
        "button": GPIO,
    }

    def used_pins(self) -> dict[str, int]:
        pins = {"led_red": self.led_red, "buzzer": self.buzzer, "button": self.button}
        if self.led == "rgb":
            pins.update(led_green=self.led_green, led_blue=self.led_blue)
        return pins


@dataclass(frozen=True)
class CuesConfig:
    quiet: bool
    tone_low_hz: float
    tone_high_hz: float

    RULES = {
        "quiet": Rule(bool),
        "tone_low_hz": Rule(float, low=20.0, high=20000.0),
        "tone_high_hz": Rule(float, low=20.0, high=20000.0),
    }


@dataclass(frozen=True)
class PressureConfig:
    min_area_cm2: float
    area_per_newton_cm2: float
    max_area_cm2: float
    warn_after_s: float
    warn_repeat_s: float

    RULES = {
        "min_area_cm2": Rule(float, low=1.0, high=500.0),
        "area_per_newton_cm2": POSITIVE,
        "max_area_cm2": Rule(float, low=1.0, high=500.0),
        "warn_after_s": Rule(float, low=0.0, high=10.0),
        "warn_repeat_s": Rule(float, low=0.5, high=60.0),
    }


@dataclass(frozen=True)
class RoutineConfig:
    file: str
    leg: str

    RULES = {"file": Rule(str), "leg": Rule(str, choices=("left", "right", "both"))}


@dataclass(frozen=True)
class SessionConfig:
    auto_start: bool
    idle_pause_s: float
    idle_abandon_s: float

    RULES = {
        "auto_start": Rule(bool),
        "idle_pause_s": Rule(float, low=5.0, high=600.0),
        "idle_abandon_s": Rule(float, low=10.0, high=7200.0),
    }


@dataclass(frozen=True)
class StorageConfig:
    data_dir: Path
    keep_recordings: bool
    recordings_max_days: int
    recordings_max_mb: int
    recordings_reserve_mb: int

    RULES = {
        "data_dir": Rule(str),
        "keep_recordings": Rule(bool),
        "recordings_max_days": Rule(int, low=1, high=3650),
        "recordings_max_mb": Rule(int, low=1, high=1_000_000),
        # at least 1 MB: the log's next writes (and its WAL) must always find room
        "recordings_reserve_mb": Rule(int, low=1, high=1_000_000),
    }


@dataclass(frozen=True)
class WebConfig:
    bind: str
    port: int
    token: str
    hosts: tuple[str, ...]
    live_socket: str

    RULES = {
        "bind": Rule(str),
        "port": Rule(int, low=1, high=65535),
        "token": Rule(str),
        "hosts": Rule(tuple, parse=lambda v: tuple(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v,
                      shown="a list of host names, for example [\"kneeroll.example\"]"),
        "live_socket": Rule(str),
    }


SECTIONS = {
    "imu": ImuConfig,
    "force": ForceConfig,
    "pins": PinsConfig,
    "cues": CuesConfig,
    "pressure": PressureConfig,
    "routine": RoutineConfig,
    "session": SessionConfig,
    "storage": StorageConfig,
    "web": WebConfig,
}


@dataclass(frozen=True)
class Config:
    imu: ImuConfig
    force: ForceConfig
    pins: PinsConfig
    cues: CuesConfig
    pressure: PressureConfig
    routine: RoutineConfig
    session: SessionConfig
    storage: StorageConfig
    web: WebConfig
    source: str = "defaults"

    def as_dict(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            section = asdict(getattr(self, name))
            out[name] = {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                         for k, v in section.items()}
        return out

    def replace(self, **sections_changes: dict[str, Any]) -> "Config":
        """A copy with some keys changed, validated like a file: replace(storage={"data_dir": "x"})."""
        merged = self.as_dict()
        for section, changes in sections_changes.items():
            merged[section].update(changes)
        return _build(merged, self.source)


# --- loading -------------------------------------------------------------------------


def default_data_dir() -> Path:
    """Where the log lives when the config leaves it empty: systemd's StateDirectory first."""
    for variable in (DATA_DIR_ENV, "STATE_DIRECTORY"):
        value = os.environ.get(variable)
        if value:
            return Path(value.split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "kneeroll"


def _merge(defaults: dict, overrides: dict, source: str) -> dict:
    merged = {name: dict(values) for name, values in defaults.items()}
    for section, values in overrides.items():
        if section not in merged:
            raise ConfigError(
                f"unknown config section [{section}] in {source}",
                "sections are " + ", ".join(f"[{s}]" for s in SECTIONS),
            )
        if not isinstance(values, dict):
            raise ConfigError(f"config key {section} in {source} must be a [{section}] table")
        for key, value in values.items():
            if key not in merged[section]:
                allowed = ", ".join(merged[section])
                raise ConfigError(f"unknown config key {section}.{key} in {source}", f"keys of [{section}] are {allowed}")
            merged[section][key] = value
    return merged


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    checked = {key: cls.RULES[key].check(f"{name}.{key}", value) for key, value in values.items()}
    if name == "storage":
        text = checked["data_dir"]
        checked["data_dir"] = Path(text).expanduser() if text else default_data_dir()
    return cls(**checked)


def _build(merged: dict, source: str) -> Config:
    sections = {name: _build_section(name, cls, merged[name]) for name, cls in SECTIONS.items()}
    config = Config(**sections, source=source)
    _check_across_keys(config)
    return config


def _check_across_keys(config: Config) -> None:
    if config.cues.tone_low_hz >= config.cues.tone_high_hz:
        raise ConfigError("config key cues.tone_low_hz must be below cues.tone_high_hz")
    if config.pressure.min_area_cm2 > config.pressure.max_area_cm2:
        raise ConfigError("config key pressure.min_area_cm2 must not exceed pressure.max_area_cm2")
    if config.session.idle_abandon_s <= config.session.idle_pause_s:
        raise ConfigError("config key session.idle_abandon_s must be longer than session.idle_pause_s")
    pins = config.pins.used_pins()
    seen: dict[int, str] = {}
    for name, pin in pins.items():
        if pin in seen:
            raise ConfigError(f"config keys pins.{seen[pin]} and pins.{name} both use GPIO{pin}", "give each its own pin")
        seen[pin] = name
    reserved = {2: "I2C SDA", 3: "I2C SCL", 14: "UART TX", 15: "UART RX"}
    for name, pin in pins.items():
        if pin in reserved:
            raise ConfigError(f"config key pins.{name} = {pin} is GPIO{pin}, the {reserved[pin]} pin", "choose a free GPIO")


def _parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}", "fix the line it names") from None


_DEFAULTS = _parse_toml(DEFAULT_CONFIG_TEXT, "default_config.toml")


def load_config(path: str | os.PathLike | None = None) -> Config:
    """The effective config: the defaults, overridden by ``path`` (or $KNEEROLL_CONFIG) if given."""
    explicit = path
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return _build(_DEFAULTS, "defaults")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        given = "--config" if file == Path(explicit or "") else f"${CONFIG_ENV}"
        raise ConfigError(f"config file {file} does not exist", f"check the path given to {given}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {file} is not a text file", "give a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc.strerror}") from None
    return _build(_merge(_DEFAULTS, _parse_toml(text, str(file)), str(file)), str(file))
