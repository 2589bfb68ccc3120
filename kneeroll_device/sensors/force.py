"""The force sensor as the daemon sees it: ForceBlocks in newtons.

The load cell's HX711 is read by a Pico (firmware_bridge); :class:`ForceSensor`
turns the link's raw counts into :class:`~kneeroll_device.samples.ForceBlock`
with a :class:`ForceCalibration`. Scaling is a pure function. Automatic
re-zeroing while the roller is still belongs to the pipeline; :meth:`ForceSensor.tare`
is the explicit one.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kneeroll_device.errors import CalibrationError
from kneeroll_device.samples import DeviceEvent, ForceBlock, GapEvent

CALIBRATION_FILE = "force_calibration.json"
RAW_MIN = -0x800000  # the HX711 saturates at its rails
RAW_MAX = 0x7FFFFF
STANDARD_GRAVITY = 9.80665


def raw_to_newtons(raw: np.ndarray, counts_per_newton: float, zero_offset: float) -> np.ndarray:
    """Force in newtons from signed 24-bit counts: (raw - zero) / scale."""
    return (np.asarray(raw, dtype=np.float64) - zero_offset) / counts_per_newton


def saturated(raw: np.ndarray) -> np.ndarray:
    """True where the HX711 sat on a rail: the force there is a floor, not a value."""
    raw = np.asarray(raw)
    return (raw >= RAW_MAX) | (raw <= RAW_MIN)


@dataclass(frozen=True)
class ForceCalibration:
    """Counts per newton (the load cell's scale) and the counts at no load."""

    counts_per_newton: float = 420.0
    zero_offset: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.counts_per_newton) or self.counts_per_newton == 0:
            raise CalibrationError(
                f"counts_per_newton must be a non-zero number, got {self.counts_per_newton}",
                "run `kneeroll calibrate force --known-mass KG`",
            )
        if not math.isfinite(self.zero_offset):
            raise CalibrationError(f"zero_offset must be a number, got {self.zero_offset}")

    def to_newtons(self, raw: np.ndarray) -> np.ndarray:
        return raw_to_newtons(raw, self.counts_per_newton, self.zero_offset)

    def with_zero(self, zero_offset: float) -> "ForceCalibration":
        return replace(self, zero_offset=float(zero_offset))

    @classmethod
    def from_config(cls, force_config: Any) -> "ForceCalibration":
        """From the [force] config section (anything with counts_per_newton and zero_offset)."""
        return cls(float(force_config.counts_per_newton), float(force_config.zero_offset))

    # --- persistence ------------------------------------------------------------------

    @staticmethod
    def path_in(state_dir: str | os.PathLike[str]) -> Path:
        return Path(state_dir) / CALIBRATION_FILE

    def save(self, state_dir: str | os.PathLike[str]) -> Path:
        """Write force_calibration.json atomically; returns its path."""
        path = self.path_in(state_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(".json.tmp")
            staging.write_text(
                json.dumps({"counts_per_newton": self.counts_per_newton, "zero_offset": self.zero_offset}, indent=2)
                + "\n"
            )
            os.replace(staging, path)
        except OSError as exc:
            raise CalibrationError(
                f"cannot save the force calibration to {path}: {exc.strerror or exc}",
                "check that the data directory is writable (--data-dir DIR)",
            ) from exc
        return path

    @classmethod
    def load(
        cls, state_dir: str | os.PathLike[str], default: "ForceCalibration | None" = None
    ) -> "ForceCalibration":
        """The saved calibration, or ``default`` (or the built-in one) when none was saved."""
        path = cls.path_in(state_dir)
        if not path.exists():
            return default if default is not None else cls()
        fix = f"run `kneeroll calibrate force --known-mass KG` again, or delete {path}"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read the force calibration {path}: {exc}", fix) from exc
        if not isinstance(data, dict):
            raise CalibrationError(f"{path} does not hold a force calibration", fix)
        try:
            return cls(float(data["counts_per_newton"]), float(data["zero_offset"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{path} lacks a valid {exc}", fix) from exc


class ForceSensor:
    """ForceBlocks from a started force link (anything with read() -> LinkBatch and close())."""

    def __init__(self, link: Any, calibration: ForceCalibration, *, recent_samples: int = 800):
        self.link = link
        self.calibration = calibration
        self._recent: deque[np.ndarray] = deque()
        self._recent_count = 0
        self._recent_limit = recent_samples
        self._closed = False

    @property
    def frame_interval_s(self) -> float:
        """How often samples arrive at the slowest (one frame of the Pico's batch), 0 if unknown."""
        return getattr(self.link, "frame_interval_s", 0.0)

    def read(self) -> ForceBlock:
        """Everything since the last call, in newtons at host times."""
        batch = self.link.read()
        raw = np.asarray(batch.raw)
        if len(raw):
            self._remember(raw)
        return ForceBlock(
            t=np.asarray(batch.host_t, dtype=np.float64),
            force=self.calibration.to_newtons(raw),
            saturated=saturated(raw),
            gaps=tuple(e for e in batch.events if isinstance(e, GapEvent)),
            events=tuple(e for e in batch.events if isinstance(e, DeviceEvent)),
        )

    def recent_raw(self, count: int | None = None) -> np.ndarray:
        """The newest raw counts seen by read(), oldest first."""
        if not self._recent:
            return np.zeros(0, np.int64)
        raw = np.concatenate(list(self._recent))
        return raw if count is None else raw[-count:]

    def tare(self, samples: int = 80, *, max_spread_newtons: float | None = 2.0) -> ForceCalibration:
        """Zero at the median of the last ``samples`` readings; the roller must be unloaded.

        Raises CalibrationError if there are too few readings, they sit on a
        rail, or they wander more than ``max_spread_newtons`` (someone is
        holding it).
        """
        raw = self.recent_raw(samples)
        self.calibration = self.calibration.with_zero(
            zero_from(raw, self.calibration.counts_per_newton, max_spread_newtons, minimum=max(1, samples // 4))
        )
        return self.calibration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.link.close()

    def __enter__(self) -> "ForceSensor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _remember(self, raw: np.ndarray) -> None:
        self._recent.append(raw)
        self._recent_count += len(raw)
        while self._recent_count - len(self._recent[0]) >= self._recent_limit:
            self._recent_count -= len(self._recent.popleft())


def zero_from(
    raw: np.ndarray, counts_per_newton: float, max_spread_newtons: float | None, minimum: int = 8
) -> float:
    """The zero offset (median counts) of readings taken at no load, after checking them."""
    raw = np.asarray(raw)
    if len(raw) < minimum:
        raise CalibrationError(
            f"only {len(raw)} force readings to tare from (need {minimum})",
            "check that the force sensor is streaming (kneeroll bridge listen PORT)",
        )
    if saturated(raw).any():
        raise CalibrationError(
            "the load cell reads at the HX711's limit", "check the load cell's wiring to the HX711"
        )
    if max_spread_newtons is not None:
        spread = float(np.percentile(raw, 95) - np.percentile(raw, 5)) / abs(counts_per_newton)
        if spread > max_spread_newtons:
            raise CalibrationError(
                f"the force moved by {spread:.1f} N while taring",
                "let go of the roller and keep it still, then try again",
            )
    return float(np.median(raw))


def collect_raw(link: Any, seconds: float, clock: Any) -> np.ndarray:
    """Raw counts the link delivers over ``seconds`` of ``clock`` time (older ones are dropped first)."""
    import threading

    link.read()  # discard what came before the user was ready
    parts: list[np.ndarray] = []
    end = clock() + seconds
    never = threading.Event()
    while clock() < end:
        clock.wait(never, min(0.1, max(0.0, end - clock())))
        parts.append(np.asarray(link.read().raw))
    parts.append(np.asarray(link.read().raw))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def calibrate_force(
    link: Any,
    known_mass_kg: float,
    *,
    ask: Callable[[str], Any] = input,
    say: Callable[[str], Any] = print,
    clock: Any = None,
    settle_s: float = 2.0,
    gravity: float = STANDARD_GRAVITY,
    minimum_counts: float = 1000.0,
) -> ForceCalibration:
    """Tare with no load, then weigh ``known_mass_kg``; returns the new calibration.

    ``ask`` prompts the user and waits for Enter; ``say`` reports. The scale is
    (loaded - zero) counts per newton of the mass's weight; its sign follows
    the load cell's mounting, so a squeeze always reads positive.
    """
    if not (math.isfinite(known_mass_kg) and known_mass_kg > 0):
        raise CalibrationError(
            f"the known mass must be above 0 kg, got {known_mass_kg}", "pass --known-mass KG, e.g. 2.5"
        )
    clock = clock if clock is not None else getattr(link, "clock", None)
    if clock is None:
        from kneeroll_device.clock import SystemClock

        clock = SystemClock()
    ask("Take every load off the roller and keep it still, then press Enter")
    unloaded = collect_raw(link, settle_s, clock)
    zero = zero_from(unloaded, counts_per_newton=1.0, max_spread_newtons=None, minimum=8)
    say(f"zero: {zero:.0f} counts from {len(unloaded)} readings")
    ask(f"Load the roller with the {known_mass_kg:g} kg mass and keep it still, then press Enter")
    loaded_raw = collect_raw(link, settle_s, clock)
    if len(loaded_raw) < 8:
        raise CalibrationError(
            f"only {len(loaded_raw)} force readings with the mass on",
            "check that the force sensor is streaming (kneeroll bridge listen PORT)",
        )
    if saturated(loaded_raw).any():
        raise CalibrationError(
            "the load cell reads at the HX711's limit with the mass on", "use a lighter mass or check the wiring"
        )
    loaded = float(np.median(loaded_raw))
    delta = loaded - zero
    if abs(delta) < minimum_counts:
        raise CalibrationError(
            f"the reading changed by only {delta:.0f} counts under {known_mass_kg:g} kg",
            "check that the mass rests on the load cell and that the load cell is wired to the HX711",
        )
    calibration = ForceCalibration(counts_per_newton=delta / (known_mass_kg * gravity), zero_offset=zero)
    say(f"scale: {calibration.counts_per_newton:.2f} counts per newton")
    return calibration
