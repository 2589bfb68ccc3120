"""Cues: what the user hears and sees, through gpiozero. The only module that drives pins.

Each cue is a pattern of notes (data below). A note is a sound for ``on_s``
then silence for ``off_s``, with the LED lit in a colour. Patterns differ by
rhythm, not only by pitch, so an active buzzer (one fixed tone) still tells
them apart; a passive piezo (TonalBuzzer) also gets the pitches. Quiet mode
keeps the LED and drops the sound.

One named thread plays cues from a bounded queue, in order; a pressure warning
jumps the queue. Every cue played is kept in ``history`` with its clock time,
so tests assert on what happened instead of sleeping.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from dataclasses import dataclass
from typing import Callable

from .clock import SystemClock
from .errors import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Note:
    on_s: float
    off_s: float
    pitch: float  # 0 = the low end of the buzzer's range, 1 = the high end
    colour: tuple[float, float, float] | None  # None: the step's colour


WHITE, GREEN, RED, ORANGE, BLUE = (1.0, 1.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (1.0, 0.35, 0.0), (0.0, 0.2, 1.0)


def _repeat(times: int, note: Note) -> tuple[Note, ...]:
    return tuple([note] * times)


PATTERNS: dict[str, tuple[Note, ...]] = {
    # three quick rising beeps: "here we go"
    "session_start": (Note(0.1, 0.08, 0.2, WHITE), Note(0.1, 0.08, 0.5, WHITE), Note(0.1, 0.3, 0.8, WHITE)),
    # the same, then one long low tone: "today's sessions are already done"
    "session_start_extra": (Note(0.1, 0.08, 0.2, WHITE), Note(0.1, 0.08, 0.5, WHITE), Note(0.1, 0.15, 0.8, WHITE),
                            Note(0.7, 0.2, 0.1, GREEN)),
    # two short beeps in the step's colour
    "step_start": (Note(0.12, 0.1, 0.5, None), Note(0.12, 0.2, 0.5, None)),
    # one short blip
    "halfway": (Note(0.08, 0.2, 0.6, None),),
    # one long tone, green
    "step_done": (Note(0.6, 0.2, 0.7, GREEN),),
    # long, short, long, rising: the end
    "session_done": (Note(0.4, 0.1, 0.3, GREEN), Note(0.15, 0.1, 0.6, GREEN), Note(0.8, 0.2, 1.0, GREEN)),
    # four rapid high beeps, red: ease off
    "pressure_warning": _repeat(4, Note(0.06, 0.06, 1.0, RED)),
    # two slow low tones, orange: a sensor is missing
    "sensor_fault": _repeat(2, Note(0.5, 0.3, 0.0, ORANGE)),
    # one very short chirp with a slow blue glow: still there?
    "idle_reminder": (Note(0.04, 0.8, 0.4, BLUE),),
}
CUE_NAMES = tuple(name for name in PATTERNS if name != "session_start_extra")
MEANINGS = {
    "session_start": "a session begins",
    "session_start_extra": "a session begins, and today's sessions are already done",
    "step_start": "a step begins (the LED takes the step's colour)",
    "halfway": "the step is half done",
    "step_done": "the step's target is reached: move on when ready",
    "session_done": "the session is complete",
    "pressure_warning": "pressing too hard for this step: ease off",
    "sensor_fault": "a sensor stopped answering",
    "idle_reminder": "nothing has happened for a while: still there?",
}
COLOUR_NAMES = {WHITE: "white", GREEN: "green", RED: "red", ORANGE: "orange", BLUE: "blue", None: "the step's colour"}


def tone_hz(pitch: float, low_hz: float, high_hz: float) -> float:
    """A note's pitch (0-1) as the passive buzzer's frequency: even steps on a log scale."""
    return low_hz * (high_hz / low_hz) ** min(1.0, max(0.0, pitch))


def describe(name: str, cues_config) -> dict:
    """What a cue means, and what the LED and the buzzer do, for someone without the pod."""
    notes = PATTERNS[name]
    tones = [{"on_s": n.on_s, "off_s": n.off_s, "hz": round(tone_hz(n.pitch, cues_config.tone_low_hz, cues_config.tone_high_hz)),
              "led": COLOUR_NAMES[n.colour]} for n in notes]
    sound = "silent (quiet mode)" if cues_config.quiet else ", ".join(f"{t['on_s']:g} s at {t['hz']} Hz" for t in tones)
    colours = list(dict.fromkeys(t["led"] for t in tones))
    text = f"{len(notes)} note{'s' if len(notes) != 1 else ''}: {sound}; LED {' then '.join(colours)}"
    return {"name": name, "means": MEANINGS[name], "notes": tones, "text": text}
URGENT = {"pressure_warning"}


@dataclass(frozen=True)
class CueRecord:
    t: float
    pattern: str
    step: int | None


def _make_led(pins, factory):
    from gpiozero import PWMLED, RGBLED

    if pins.led == "rgb":
        return RGBLED(pins.led_red, pins.led_green, pins.led_blue, active_high=pins.led_active_high, pwm=True,
                      pin_factory=factory)
    return PWMLED(pins.led_red, active_high=pins.led_active_high, pin_factory=factory)


def _make_buzzer(pins, cues, factory):
    from gpiozero import Buzzer, TonalBuzzer
    from gpiozero.tones import Tone

    if pins.buzzer_kind == "active":
        return Buzzer(pins.buzzer, active_high=pins.buzzer_active_high, pin_factory=factory)
    # TonalBuzzer's range is mid_tone +/- octaves: centre it on the configured range
    mid = math.sqrt(cues.tone_low_hz * cues.tone_high_hz)
    octaves = max(1, int(round(math.log2(cues.tone_high_hz / cues.tone_low_hz) / 2)))
    return TonalBuzzer(pins.buzzer, initial_value=None, mid_tone=Tone.from_frequency(mid), octaves=octaves,
                       pin_factory=factory)


class CuePlayer:
    """Plays cue patterns on an LED and a buzzer from its own thread."""

    def __init__(self, pins, cues_config, *, clock=None, pin_factory=None, on_cue: Callable[[CueRecord], None] | None = None,
                 autostart: bool = True):
        self.clock = clock or SystemClock()
        self.quiet = cues_config.quiet
        self.on_cue = on_cue
        self.history: list[CueRecord] = []
        self.colour = WHITE
        self._queue: queue.Queue = queue.Queue(maxsize=32)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        try:
            self.led = _make_led(pins, pin_factory)
            self.buzzer = None if self.quiet else _make_buzzer(pins, cues_config, pin_factory)
        except Exception as exc:  # gpiozero raises its own families for pins and factories
            raise DeviceError(f"cannot set up the LED and buzzer pins: {exc}",
                              "check [pins] in the config, and that the user is in group gpio") from None
        self._thread = threading.Thread(target=self._run, name="cues", daemon=True)
        if autostart:
            self.start()

    def start(self) -> None:
        """Start playing (cues queued before this wait, in their order)."""
        if not self._thread.is_alive():
            self._thread.start()

    def set_step_colour(self, rgb: tuple[float, float, float]) -> None:
        self.colour = rgb

    def play(self, pattern: str, step: int | None = None, t: float | None = None) -> None:
        """Queue a cue; a warning goes ahead of anything waiting. Never blocks the caller."""
        if pattern not in PATTERNS:
            raise ValueError(f"unknown cue {pattern!r}")
        record = CueRecord(self.clock() if t is None else t, pattern, step)
        self._idle.clear()
        waiting = self._take_waiting() if pattern in URGENT else []
        for item in [record, *waiting]:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                log.warning("cue queue full: dropped %s", item.pattern)

    def _take_waiting(self) -> list[CueRecord]:
        waiting = []
        while True:
            try:
                waiting.append(self._queue.get_nowait())
            except queue.Empty:
                return waiting

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until every queued cue has been played (for the demo's end and for tests)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                record = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._queue.empty():
                    self._idle.set()
                continue
            self.history.append(record)
            try:
                if self.on_cue:
                    self.on_cue(record)
                self._play_notes(PATTERNS[record.pattern])
            except Exception:  # a pin or a callback failing must not silence every later cue
                log.exception("cue %s failed", record.pattern)
            if self._queue.empty():
                self._idle.set()

    def _play_notes(self, notes: tuple[Note, ...]) -> None:
        for note in notes:
            if self._stop.is_set():
                break
            self._light(note.colour or self.colour)
            self._sound(note.pitch)
            self.clock.sleep(note.on_s)
            self._sound(None)
            self._light(None)
            self.clock.sleep(note.off_s)

    def _light(self, colour) -> None:
        if hasattr(self.led, "color"):
            self.led.color = colour or (0, 0, 0)
        else:
            self.led.value = max(colour) if colour else 0

    def _sound(self, pitch: float | None) -> None:
        buzzer = self.buzzer
        if buzzer is None:
            return
        if pitch is None:
            buzzer.off() if hasattr(buzzer, "off") else buzzer.stop()
            return
        if hasattr(buzzer, "play"):  # TonalBuzzer: a pitch within its range
            buzzer.play(tone_hz(pitch, buzzer.min_tone.frequency, buzzer.max_tone.frequency))
        else:
            buzzer.on()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for device in (self.buzzer, self.led):
            if device is not None:
                device.close()

    def __enter__(self) -> "CuePlayer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mock_pin_factory():
    """gpiozero's MockFactory with PWM pins, mocking a Pi Zero 2 W: for the demo and tests."""
    import os

    os.environ.setdefault("GPIOZERO_MOCK_REVISION", "902120")
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    return MockFactory(revision="902120", pin_class=MockPWMPin)
