"""Clocks: every timeout, rate and timestamp in kneeroll reads one of these.

Production uses :class:`SystemClock` (time.monotonic: a Pi has no real-time
clock and its wall clock jumps when network time arrives). The demo runs the
real daemon faster than life through :class:`ScaledClock`; tests step a
:class:`ManualClock` by hand. A clock is called to read it, and offers
``sleep`` and ``wait`` so that threads pace themselves in the clock's time.

Threads that must keep up with the clock (the sensor readers, the force link,
the Pico emulator, the daemon's main loop) ``checkin`` each time round their
loop and ``checkout`` when they end. Only :class:`ScaledClock` acts on it; for
the others it costs nothing.
"""

from __future__ import annotations

import math
import threading
import time

MIN_POLL_REAL_S = 0.001  # a held-back wait looks at the clock no more often than this


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

    def checkin(self, until: float | None = None) -> None:
        """The calling thread is up to date now, and has nothing to do before ``until``."""

    def checkout(self) -> None:
        """The calling thread no longer needs to keep up."""


class ScaledClock(SystemClock):
    """A monotonic clock that runs up to ``speed`` times faster than real time.

    It reads ``start`` when created, so it doubles as "seconds since the
    simulated world began" (a negative start leaves time to set up first).

    It slows down rather than outrun the threads it drives. On a busy machine a
    thread can miss its turn for tens of milliseconds: at 20x that is a second of
    simulated time, long enough for the emulated IMU's FIFO to overflow or the
    force link to be declared lost, faults that the pod being simulated never had.
    So the clock never reads more than ``slack`` seconds past the thread that is
    furthest behind: the last ``checkin`` of each thread that checked in, or the
    deadline of the ``wait`` it is in. On a machine with time to spare it is
    exactly ``speed`` times real time; when a thread starves, the world waits.
    """

    def __init__(self, speed: float = 1.0, start: float = 0.0, slack: float = 0.3):
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        if slack <= 0:
            raise ValueError(f"clock slack must be positive, got {slack}")
        self.speed = float(speed)
        self.slack = float(slack)
        self._lock = threading.Lock()
        self._now = float(start)
        self._real_then = time.monotonic()
        self._due: dict[int, tuple[threading.Thread, float]] = {}  # thread id: (thread, up to date until)

    def __call__(self) -> float:
        with self._lock:
            real = time.monotonic()
            ahead = self._now + (real - self._real_then) * self.speed
            self._real_then = real
            # time beyond the limit is not made up later: the world has slowed down
            self._now = max(self._now, min(ahead, self._limit()))
            return self._now

    def _limit(self) -> float:
        limit = math.inf
        for ident, (thread, due) in list(self._due.items()):
            if thread.is_alive():
                limit = min(limit, due + self.slack)
            else:
                del self._due[ident]
        return limit

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.wait(threading.Event(), seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        deadline = self() + max(0.0, seconds)
        self._wait_starts(deadline)
        try:
            # while the world waits for a thread, a timeout must still last its clock
            # seconds (polling no faster than every millisecond meanwhile)
            while (remaining := deadline - self()) > 0:
                if event.wait(max(remaining / self.speed, MIN_POLL_REAL_S)):
                    return True
            return event.is_set()
        finally:
            self._wait_ends()

    def checkin(self, until: float | None = None) -> None:
        now = self()
        with self._lock:
            self._due[threading.get_ident()] = (threading.current_thread(), now if until is None else max(now, until))

    def checkout(self) -> None:
        with self._lock:
            self._due.pop(threading.get_ident(), None)

    def _wait_starts(self, deadline: float) -> None:
        # a thread that checked in is up to date until its wait ends: an idle thread holds no one back
        if threading.get_ident() in self._due:
            self.checkin(until=deadline)

    def _wait_ends(self) -> None:
        # awake again (on time or early), it has work to do from now on
        if threading.get_ident() in self._due:
            self.checkin()


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

    def checkin(self, until: float | None = None) -> None:
        """Nothing to pace: this clock only moves when told to."""

    def checkout(self) -> None:
        """Nothing to pace."""
