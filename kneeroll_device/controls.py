"""The one button: a press starts, pauses or resumes; a hold skips the step.

gpiozero reports the edges; the press and hold are told apart on the
daemon's clock (so the demo, running faster than life, behaves like the real
thing). A press is reported when the button is released; a hold as soon as it
has been down for ``hold_s``.
"""

from __future__ import annotations

import threading

from .errors import DeviceError


class ButtonControl:
    def __init__(self, pin: int, *, clock, pin_factory=None, hold_s: float = 1.0, bounce_s: float = 0.02):
        from gpiozero import Button

        self.clock = clock
        self.hold_s = hold_s
        self._lock = threading.Lock()
        self._down_at: float | None = None
        self._held = False
        self._events: list[tuple[float, str]] = []
        try:
            self.button = Button(pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
        except Exception as exc:  # gpiozero's own error families
            raise DeviceError(f"cannot set up the button on GPIO{pin}: {exc}",
                              "check pins.button in the config, and that the user is in group gpio") from None
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released

    def _pressed(self) -> None:
        with self._lock:
            self._down_at = self.clock()
            self._held = False

    def _released(self) -> None:
        with self._lock:
            if self._down_at is not None and not self._held:
                self._events.append((self.clock(), "press"))
            self._down_at = None

    def poll(self) -> list[tuple[float, str]]:
        """What happened since the last poll: (time, "press" | "hold")."""
        now = self.clock()
        with self._lock:
            if self._down_at is not None and not self._held and now - self._down_at >= self.hold_s:
                self._held = True
                self._events.append((now, "hold"))
            events, self._events = self._events, []
        return events

    def close(self) -> None:
        self.button.close()
