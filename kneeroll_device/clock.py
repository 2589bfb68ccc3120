"""Clocks: every timeout, rate and timestamp in kneeroll reads one of these.

Production uses :class:`SystemClock` (time.monotonic: a Pi has no real-time
clock and its wall clock jumps when network time arrives). The demo runs the
real daemon faster than life through :class:`ScaledClock`; tests step a
:class:`ManualClock` by hand. A clock is called to read it, and offers
``sleep`` and ``wait`` so that threads pace themselves in the clock's time.
"""

from __future__ import annotations

import threading
import time


class SystemClock:
    """time.monotonic() and real sleeps."""

    speed = 1.0

    def __call__(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait for ``event`` up to ``seconds`` of this clock's time; True if it was set."""
        return event.wait(max(0.0, seconds))


class ScaledClock(SystemClock):
    """A monotonic clock that runs ``speed`` times faster than real time.

    It reads ``start`` when created, so it doubles as "seconds since the
    simulated world began" (a negative start leaves time to set up first).
    """

    def __init__(self, speed: float = 1.0, start: float = 0.0):
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.speed = float(speed)
        # the clock reads `start` now; its zero, in time.monotonic() terms, is `origin`
        self.origin = time.monotonic() - start / self.speed

    def __call__(self) -> float:
        return (time.monotonic() - self.origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that only moves when told to: ``sleep`` advances it at once."""

    speed = float("inf")

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a manual clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()
