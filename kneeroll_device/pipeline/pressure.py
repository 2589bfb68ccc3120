"""Pressure: squeeze force to contact pressure, and the load cell's zero.

The clamp roller's padded drums flatten as they are squeezed, so the contact
area grows with force until the pad is fully in contact (thin-film sensors
under rollers read 33-52 kPa over 47-68 cm^2, Curran, Fiore & Crisco 2008):

    area_cm2 = min(max_area, min_area + area_per_newton * force)
    pressure_kPa = 10 * force_N / area_cm2        (1 N/cm^2 = 10 kPa)

The three numbers are in the [pressure] config section.

Load cells drift with temperature and creep under load, so whenever the roller
is still and (nearly) unloaded, the zero is pulled towards the present reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import ema_alpha


@dataclass(frozen=True)
class ContactModel:
    min_area_cm2: float = 20.0
    area_per_newton_cm2: float = 0.25
    max_area_cm2: float = 60.0

    @classmethod
    def from_config(cls, pressure_config) -> "ContactModel":
        return cls(pressure_config.min_area_cm2, pressure_config.area_per_newton_cm2, pressure_config.max_area_cm2)

    def area_cm2(self, force_n: np.ndarray) -> np.ndarray:
        """The pad's contact area (cm^2) at each squeeze (N)."""
        return np.minimum(self.max_area_cm2, self.min_area_cm2 + self.area_per_newton_cm2 * np.maximum(force_n, 0.0))

    def kpa_of(self, force_n: np.ndarray) -> np.ndarray:
        """The pressure (kPa) at each squeeze (N): NaN where the squeeze is unknown, 0 at none.
        (On a block of frames at once: a frame at a time costs more than the rest of the
        pressure's work.)"""
        force_n = np.asarray(force_n, dtype=float)
        return 10.0 * np.maximum(force_n, 0.0) / self.area_cm2(force_n)  # (the area is never 0)

    def as_dict(self) -> dict:
        return {"min_area_cm2": self.min_area_cm2, "area_per_newton_cm2": self.area_per_newton_cm2, "max_area_cm2": self.max_area_cm2}


class AutoZero:
    """Re-zeroes the force while the roller is still and unloaded."""

    UNLOADED_N = 8.0
    STILL_FRAMES = 15

    def __init__(self):
        self.offset = 0.0
        self._alpha = ema_alpha(2.0)

    def apply(self, force: float, still_frames: int) -> float:
        if force != force:
            return force
        corrected = force - self.offset
        if still_frames >= self.STILL_FRAMES and abs(corrected) < self.UNLOADED_N:
            self.offset += self._alpha * corrected
            corrected = force - self.offset
        return corrected
