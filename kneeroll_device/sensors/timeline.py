"""Clock times for FIFO samples, which carry none.

The samples are evenly spaced on the sensor's own clock, which can be a few percent off,
and the host reads them late by a variable amount. :class:`SampleTimeline` estimates the
true rate from (sample count, clock) pairs with a slow filter and anchors the line under
the lower envelope of the observations (a sample cannot be older than the read that
found it).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class SampleTimeline:
    """Clock times of FIFO samples, rebuilt from their index.

    Sample ``k`` of a run was taken at ``offset + period * (k - base)``. Each poll gives one
    observation: the newest sample index that existed when the FIFO count was read, and the
    clock just after. The period is the nominal one corrected by a weighted least-squares
    slope over the observations, forgotten over ``averaging_s`` seconds (the "slow filter":
    it averages away the poll-phase jitter and follows temperature drift) and pulled
    towards the previous estimate at the start of a run. The offset puts the line under
    the lowest observation of a recent window: a sample cannot be newer than the read
    that found it, and over many polls at varied phases the lowest one is read almost
    the instant the sample was taken. Host stalls only raise observations, so they do
    not move the line.
    """

    def __init__(self, nominal_rate_hz: float, *, averaging_s: float = 20.0, envelope_points: int = 64,
                 tolerance: float = 0.08):
        self.nominal_rate_hz = float(nominal_rate_hz)
        self.nominal_period = 1.0 / self.nominal_rate_hz
        self._decay_per_sample = math.exp(-1.0 / (averaging_s * self.nominal_rate_hz))
        self._max_delta = tolerance * self.nominal_period
        self._envelope_points = envelope_points
        self._delta = 0.0
        self.restart(0, prior_seconds=1.0)

    def restart(self, base_index: int, *, prior_seconds: float = 5.0) -> None:
        """A new run (after a FIFO reset): keep the rate estimate as a prior, forget the rest."""
        self.base = base_index
        self._prior_delta = self._delta
        self._prior_weight = self._spread_of(prior_seconds)
        self._w = self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._ref_x: float | None = None
        self._ref_t = 0.0
        self._last_x: float | None = None
        self._envelope: deque[tuple[float, float]] = deque(maxlen=self._envelope_points)
        self._offset: float | None = None

    def _spread_of(self, seconds: float) -> float:
        """The weighted index spread that `seconds` of polling at 10 Hz would give."""
        polls = 10.0 * seconds
        span = seconds * self.nominal_rate_hz
        return polls * span * span / 12.0

    @property
    def period(self) -> float:
        return self.nominal_period + self._delta

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.period

    @property
    def anchored(self) -> bool:
        return self._offset is not None

    def observe(self, newest_index: int, t_clock: float) -> None:
        """Sample ``newest_index`` existed when the clock read ``t_clock``."""
        x = float(newest_index - self.base)
        if not self._is_late(x, t_clock):
            self._update_rate(x, t_clock)
        self._envelope.append((x, t_clock))
        period = self.period
        self._offset = min(t - period * xi for xi, t in self._envelope)

    def _is_late(self, x: float, t_clock: float) -> bool:
        """An observation far above the line (a host stall between the count and the clock read)."""
        if self._offset is None:
            return False
        residual = t_clock - (self._offset + self.period * x)
        return residual > max(4 * self.period, 0.02)

    def _update_rate(self, x: float, t_clock: float) -> None:
        if self._ref_x is None:
            self._ref_x, self._ref_t = x, t_clock
        if self._last_x is not None and x > self._last_x:
            decay = self._decay_per_sample ** (x - self._last_x)
            self._w *= decay
            self._sx *= decay
            self._sy *= decay
            self._sxx *= decay
            self._sxy *= decay
        self._last_x = x if self._last_x is None else max(self._last_x, x)
        xr = x - self._ref_x
        y = t_clock - self._ref_t - self.nominal_period * xr  # small: the deviation from nominal
        self._w += 1.0
        self._sx += xr
        self._sy += y
        self._sxx += xr * xr
        self._sxy += xr * y
        covariance = self._sxy - self._sx * self._sy / self._w
        spread = self._sxx - self._sx * self._sx / self._w
        delta = (covariance + self._prior_weight * self._prior_delta) / (spread + self._prior_weight)
        self._delta = min(self._max_delta, max(-self._max_delta, delta))
        if abs(xr) > 1e5:
            self._rebase(xr)

    def _rebase(self, shift: float) -> None:
        """Move the reference point forward so the running sums keep their precision for days."""
        self._sxx = self._sxx - 2.0 * shift * self._sx + shift * shift * self._w
        self._sxy = self._sxy - shift * self._sy
        self._sx = self._sx - shift * self._w
        self._ref_x += shift
        self._ref_t += self.nominal_period * shift

    def time_of(self, index: int) -> float:
        if self._offset is None:
            raise RuntimeError("no observation yet")
        return self._offset + self.period * (index - self.base)

    def times(self, first_index: int, count: int) -> np.ndarray:
        return self.time_of(first_index) + self.period * np.arange(count, dtype=np.float64)
