"""A software Pico that speaks the force-link protocol, with fault injection.

:class:`PicoEmulator` plays the firmware's part over a pty (see
:meth:`PicoEmulator.on_pty`), an open file descriptor or any pyserial URL. It
emits the samples of ``signal`` at ``rate_hz`` of its clock in SAMPLES batches,
says HELLO at boot, sends STATUS every second, answers HELLO_REQUEST, PING,
SET_RATE and REBOOT, and records what it did in :attr:`PicoEmulator.history`
so tests assert on facts, not on sleeps.

Faults are given as a SPEC string (see :func:`parse_faults`)::

    bitflip=0.001,drop=0.0005,truncate=0.001,reset@30,stall@60+3,unplug@90+2

Choices the SPEC leaves open, made here on purpose:

* A stall stops the firmware: nothing is sent, input is ignored, and the
  samples that fall due meanwhile (with a half-filled batch) are dropped.
  Their sequence numbers are skipped, so the host counts them as lost.
* An unplug over a pty closes the pty and removes the stable path the host
  opened (a symlink, as udev's /dev/serial/by-id links are); the replug makes
  a new pty behind the same path and the device boots again, as a bus-powered
  Pico does. On a port the emulator did not create, an unplug is a silent
  device that boots again when it comes back.
* A reset boots again at once: a new boot id, sample numbers and device time
  from 0, HELLO first. Samples waiting in an unsent batch are lost with it.
"""

from __future__ import annotations

import errno
import math
import os
import pty
import re
import select
import shutil
import tempfile
import threading
import tty
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import serial

from firmware_bridge import protocol
from kneeroll_device.clock import SystemClock
from kneeroll_device.errors import InputError

Signal = Callable[[np.ndarray], np.ndarray]

DEFAULT_BOARD_ID = b"EMUPICO\x01"
DEFAULT_FIRMWARE_VERSION = (1, 0, 0)
STATUS_INTERVAL_S = 1.0

# --- signals --------------------------------------------------------------------------


def ramp(indices: np.ndarray) -> np.ndarray:
    """Sample i reads i modulo 2**23: a receiver can tell a corrupt sample from a lost one."""
    return np.asarray(indices, dtype=np.int64) % (1 << 23)


def squeeze_signal(
    rate_hz: float = 80.0,
    *,
    counts_per_newton: float = 420.0,
    zero_offset: int = 8_000,
    period_s: float = 6.0,
    peak_newtons: float = 150.0,
    noise_counts: float = 40.0,
    seed: int = 0,
) -> Signal:
    """A synthetic session: a light hold with a squeeze (a rep) every ``period_s`` seconds.

    Each squeeze rises over a second, holds, and falls; the counts include a
    small deterministic noise, so the same indices always give the same values.
    """

    phase_noise = (seed % 997) * 0.618

    def signal(indices: np.ndarray) -> np.ndarray:
        t = np.asarray(indices, dtype=np.float64) / rate_hz
        cycle = np.mod(t, period_s) / period_s
        # Smooth bump over the middle third of each cycle: 0 -> 1 -> 0.
        bump = np.clip(np.sin(np.pi * (cycle - 0.3) / 0.4), 0.0, None) * ((cycle > 0.3) & (cycle < 0.7))
        newtons = 20.0 + peak_newtons * bump
        jitter = np.sin(indices * 12.9898 + phase_noise) * 43758.5453
        noise = (jitter - np.floor(jitter) - 0.5) * 2.0 * noise_counts
        return np.round(zero_offset + newtons * counts_per_newton + noise).astype(np.int64)

    return signal


# --- fault SPEC --------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and when (times in clock seconds since start())."""

    bitflip: float = 0.0  # per byte: chance that one of its bits flips
    drop: float = 0.0  # per byte: chance that it never reaches the wire
    truncate: float = 0.0  # per frame: chance that it is cut short (its delimiter still follows)
    resets: tuple[float, ...] = ()
    stalls: tuple[tuple[float, float], ...] = ()  # (at, seconds)
    unplugs: tuple[tuple[float, float], ...] = ()  # (at, seconds)

    @property
    def corrupts(self) -> bool:
        return self.bitflip > 0 or self.drop > 0 or self.truncate > 0

    def schedule(self) -> list[tuple[float, str, float]]:
        """Timed faults as (at, kind, seconds), in time order."""
        items = [(t, "reset", 0.0) for t in self.resets]
        items += [(t, "stall", d) for t, d in self.stalls]
        items += [(t, "unplug", d) for t, d in self.unplugs]
        return sorted(items)


FAULT_SPEC_HELP = (
    "comma-separated items: bitflip=P, drop=P, truncate=P (probabilities 0..1: per byte, "
    "per byte, per frame), reset@T, stall@T+D, unplug@T+D (T and D in seconds since start)"
)
_RATE_ITEM = re.compile(r"^(bitflip|drop|truncate)=(.+)$")
_TIMED_ITEM = re.compile(r"^(reset|stall|unplug)@([^+]+)(?:\+(.+))?$")


def parse_faults(spec: str | None) -> FaultPlan:
    """Parse a fault SPEC; an error names the bad item. Empty or None means no faults.

    Grammar::

        SPEC  := ITEM ("," ITEM)*
        ITEM  := RATE | TIMED
        RATE  := ("bitflip" | "drop" | "truncate") "=" P      P a probability, 0 <= P <= 1
        TIMED := "reset@" T | ("stall" | "unplug") "@" T "+" D  T >= 0, D > 0, in clock seconds
    """
    if spec is None or not spec.strip():
        return FaultPlan()
    rates: dict[str, float] = {}
    resets: list[float] = []
    spans: dict[str, list[tuple[float, float]]] = {"stall": [], "unplug": []}
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            raise InputError(f"empty item in fault spec {spec!r}", FAULT_SPEC_HELP)
        rate = _RATE_ITEM.match(item)
        timed = _TIMED_ITEM.match(item)
        if rate:
            name = rate.group(1)
            if name in rates:
                raise InputError(f"fault {name!r} is given twice in {spec!r}", FAULT_SPEC_HELP)
            rates[name] = _number(item, rate.group(2), low=0.0, high=1.0)
        elif timed:
            kind, at_text, span_text = timed.groups()
            at = _number(item, at_text, low=0.0)
            if kind == "reset":
                if span_text is not None:
                    raise InputError(f"fault item {item!r}: a reset takes no duration", FAULT_SPEC_HELP)
                resets.append(at)
                continue
            if span_text is None:
                raise InputError(f"fault item {item!r} needs a duration: {kind}@T+D", FAULT_SPEC_HELP)
            span = _number(item, span_text, low=0.0)
            if span <= 0:
                raise InputError(f"fault item {item!r}: the duration must be above 0", FAULT_SPEC_HELP)
            spans[kind].append((at, span))
        else:
            raise InputError(f"unknown fault item {item!r}", FAULT_SPEC_HELP)
    return FaultPlan(
        bitflip=rates.get("bitflip", 0.0),
        drop=rates.get("drop", 0.0),
        truncate=rates.get("truncate", 0.0),
        resets=tuple(sorted(resets)),
        stalls=tuple(sorted(spans["stall"])),
        unplugs=tuple(sorted(spans["unplug"])),
    )


def _number(item: str, text: str, *, low: float, high: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"fault item {item!r}: {text!r} is not a number", FAULT_SPEC_HELP) from None
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise InputError(f"fault item {item!r}: {text} must be {bounds}", FAULT_SPEC_HELP)
    return value


# --- history -----------------------------------------------------------------------------


@dataclass
class BootRecord:
    """One boot of the emulated Pico and every sample it put on the wire."""

    boot_id: int
    started_at: float
    cause: str
    sent_seq: list[np.ndarray] = field(default_factory=list)
    sent_raw: list[np.ndarray] = field(default_factory=list)
    skipped: int = 0  # samples dropped by stalls (never sent)

    def sent(self) -> tuple[np.ndarray, np.ndarray]:
        """(seq, raw) of every sample sent in this boot, in order."""
        if not self.sent_seq:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(self.sent_seq), np.concatenate(self.sent_raw)


@dataclass
class EmulatorHistory:
    """What the emulator did: boots, frames, faults and commands, with clock times."""

    boots: list[BootRecord] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    commands: list[tuple[float, str, int]] = field(default_factory=list)

    def count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n


# --- endpoints: where the bytes go ------------------------------------------------------------


class _FdEndpoint:
    """A file descriptor (a pty master): non-blocking writes, a full buffer drops bytes as a UART would."""

    can_unplug = False

    def __init__(self, fd: int, *, owned: bool = False):
        self._fd: int | None = fd
        self._owned = owned
        os.set_blocking(fd, False)

    def read(self, timeout_real: float) -> bytes:
        fd = self._fd
        if fd is None:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, timeout_real))
            if not ready:
                return b""
            return os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # no reader on the other side yet
                return b""
            raise

    def write(self, data: bytes) -> int:
        fd = self._fd
        if fd is None:
            return 0
        view = memoryview(data)
        written = 0
        while written < len(data):
            try:
                written += os.write(fd, view[written:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    break
                raise
        return written

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._owned:
            os.close(fd)


class _PtyEndpoint(_FdEndpoint):
    """A pty pair behind a stable symlink; unplug really closes it, replug makes a new one."""

    can_unplug = True

    def __init__(self, link_path: str | None = None):
        self._own_dir = None
        if link_path is None:
            self._own_dir = tempfile.mkdtemp(prefix="kneeroll-pico-")
            link_path = os.path.join(self._own_dir, "ttyPICO")
        self.name = link_path
        self._slave: int | None = None
        self._fd = None
        self.plug()

    @property
    def device_path(self) -> str | None:
        return os.ttyname(self._slave) if self._slave is not None else None

    def plug(self) -> None:
        master, slave = pty.openpty()
        # Raw at once: a cooked pty would echo our frames back and mangle bytes
        # before the host has opened it and set its own mode.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fd, self._slave, self._owned = master, slave, True
        staging = self.name + ".new"
        if os.path.lexists(staging):
            os.unlink(staging)
        os.symlink(os.ttyname(slave), staging)
        os.replace(staging, self.name)  # atomic: the host never sees a half-made link

    def unplug(self) -> None:
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass
        for fd in (self._fd, self._slave):
            if fd is not None:
                os.close(fd)
        self._fd = self._slave = None

    def close(self) -> None:
        if self._fd is not None:
            self.unplug()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None


class _SerialEndpoint:
    """Any pyserial URL (a real port, socket://...)."""

    can_unplug = False

    def __init__(self, url: str, baudrate: int):
        self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=1.0)

    def read(self, timeout_real: float) -> bytes:
        self._port.timeout = max(0.0, timeout_real)
        return self._port.read(max(1, self._port.in_waiting))

    def write(self, data: bytes) -> int:
        try:
            return self._port.write(data) or 0
        except serial.SerialTimeoutException:
            return 0

    def close(self) -> None:
        self._port.close()


# --- the emulator --------------------------------------------------------------------------------


class PicoEmulator:
    """The Pico's firmware in software; see the module docstring for the fault semantics."""

    def __init__(
        self,
        port: str | int,
        *,
        signal: Signal = ramp,
        rate_hz: float = 80.0,
        clock: Any = SystemClock(),
        faults: FaultPlan | str | None = None,
        seed: int = 0,
        batch: int = 8,
        board_id: bytes = DEFAULT_BOARD_ID,
        firmware_version: tuple[int, int, int] = DEFAULT_FIRMWARE_VERSION,
        gain: int = 128,
        status_interval_s: float = STATUS_INTERVAL_S,
        baudrate: int = 115200,
        thread_name: str = "pico-emulator",
        sample_grid_origin: float | None = None,
        _endpoint: Any = None,
    ):
        if not 1 <= batch <= protocol.MAX_BATCH:
            raise InputError(f"batch must be 1 to {protocol.MAX_BATCH}, got {batch}")
        if not 0 < rate_hz <= 1000:
            raise InputError(f"rate must be above 0 and at most 1000 Hz, got {rate_hz}")
        if len(board_id) != 8:
            raise InputError("board_id must be 8 bytes")
        if _endpoint is not None:
            self._endpoint = _endpoint
        elif isinstance(port, int):
            self._endpoint = _FdEndpoint(port)
        else:
            self._endpoint = _SerialEndpoint(port, baudrate)
        self.port_name: str | None = getattr(self._endpoint, "name", port if isinstance(port, str) else None)
        self.signal = signal
        self.default_rate_hz = float(rate_hz)
        self.clock = clock
        self.faults = parse_faults(faults) if isinstance(faults, str) or faults is None else faults
        self.batch = batch
        self.board_id = bytes(board_id)
        self.firmware_version = firmware_version
        self.gain = gain
        self.status_interval_s = status_interval_s
        self.thread_name = thread_name
        # with an origin, samples fall due on the grid origin + i / rate of the clock
        # (the demo lines them up with the simulated world's own sampling)
        self.sample_grid_origin = sample_grid_origin
        self.history = EmulatorHistory()

        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decoder = protocol.FrameDecoder()
        self._started_at: float | None = None
        self._schedule: list[tuple[float, str, float]] = []
        self._stalled_until: float | None = None
        self._unplugged_until: float | None = None
        self._sampling = True
        self._pause_requested = threading.Event()
        self.paused = threading.Event()
        self._tx_seq = 0
        # per boot
        self._boot_t = 0.0
        self._boot_id = 0
        self._boot_cause = protocol.RESET_POWER_ON
        self._rate = self.default_rate_hz
        self._anchor_t = 0.0
        self._anchor_index = 0
        self._next_index = 0
        self._pending: list[int] = []
        self._next_status = 0.0
        self._saturations = 0
        self._tx_dropped = 0

    @classmethod
    def on_pty(cls, *, link_path: str | None = None, **kwargs: Any) -> "PicoEmulator":
        """Serve on a new pty; ``.port_name`` is a stable path to give the host."""
        endpoint = _PtyEndpoint(link_path)
        try:
            return cls(endpoint.name, _endpoint=endpoint, **kwargs)
        except BaseException:
            endpoint.close()  # bad settings: leave no pty or folder behind
            raise

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "PicoEmulator":
        """Boot now (clock time t0) and serve from a named thread."""
        self.boot_now()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def boot_now(self) -> None:
        """Boot without a thread (for tests that drive :meth:`service` by hand)."""
        with self._lock:
            now = self.clock()
            self._started_at = now
            self._schedule = [(now + at, kind, span) for at, kind, span in self.faults.schedule()]
            self._boot(now, protocol.RESET_POWER_ON)

    def close(self) -> None:
        """Stop serving and close the port; safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._lock:
            self._endpoint.close()

    stop = close

    def __enter__(self) -> "PicoEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pause(self, timeout_s: float = 5.0) -> bool:
        """Send the half-filled batch and stop sampling; commands are still answered."""
        self._pause_requested.set()
        if self._thread is None:
            self.service(self.clock())
        return self.paused.wait(timeout_s)

    @property
    def pty_path(self) -> str | None:
        """The pty's own /dev/pts path right now (it changes at each replug); None off a pty."""
        return getattr(self._endpoint, "device_path", None)

    @property
    def boot_id(self) -> int:
        return self._boot_id

    @property
    def rate_hz(self) -> float:
        return self._rate

    def elapsed(self) -> float:
        """Clock seconds since start()."""
        return 0.0 if self._started_at is None else self.clock() - self._started_at

    # --- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = self.clock()
                wakeup = self._next_wakeup(now)
                self.clock.checkin(until=wakeup)  # nothing falls due before the wakeup
                self.service(now, self._real_timeout(wakeup - now))
        finally:
            self.clock.checkout()

    def _real_timeout(self, clock_seconds: float) -> float:
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        if speed == float("inf"):
            return 0.0
        return min(0.02, max(0.0005, clock_seconds / speed))

    def _next_wakeup(self, now: float) -> float:
        candidates = [self._next_status]
        if self._schedule:
            candidates.append(self._schedule[0][0])
        if self._stalled_until is not None:
            candidates.append(self._stalled_until)
        if self._unplugged_until is not None:
            candidates.append(self._unplugged_until)
        if self._sampling:
            # wake when the batch being filled is complete
            last_of_batch = self._next_index + (self.batch - len(self._pending)) - 1
            candidates.append(self._due_time(last_of_batch))
        return max(now, min(candidates))

    def service(self, now: float, input_timeout_real: float = 0.0) -> None:
        """One step: apply due faults, read commands, send due samples and STATUS."""
        with self._lock:
            self._apply_schedule(now)
            unplugged = self._unplugged_until is not None
        if unplugged:
            self._stop.wait(input_timeout_real)  # no power: nothing to do until the replug
            return
        data = self._endpoint.read(input_timeout_real)
        now = max(now, self.clock())
        with self._lock:
            if self._stalled_until is not None:
                return  # a stalled firmware reads nothing: the bytes are gone
            if data:
                for msg in self._decoder.feed(data):
                    self._on_command(msg, now)
            self._emit_due_samples(now)
            if self._pause_requested.is_set() and self._sampling:
                self._flush_pending()
                self._sampling = False
                self.paused.set()
            if now >= self._next_status:
                self._send_status(now)

    # --- faults ------------------------------------------------------------------------

    def _apply_schedule(self, now: float) -> None:
        if self._stalled_until is not None and now >= self._stalled_until:
            self._end_stall(now)
        if self._unplugged_until is not None and now >= self._unplugged_until:
            self._end_unplug(now)
        while self._schedule and self._schedule[0][0] <= now:
            at, kind, span = self._schedule.pop(0)
            if self._unplugged_until is not None:
                continue  # nothing happens to a device without power
            if kind == "reset":
                self.history.timeline.append((at, "reset"))
                self._boot(at, protocol.RESET_WATCHDOG)
            elif kind == "stall":
                self._begin_stall(at, span)
            elif kind == "unplug":
                self._begin_unplug(at, span)
            if self._stalled_until is not None and now >= self._stalled_until:
                self._end_stall(now)
            if self._unplugged_until is not None and now >= self._unplugged_until:
                self._end_unplug(now)

    def _begin_stall(self, at: float, span: float) -> None:
        self._emit_due_samples(at)
        self._stalled_until = max(self._stalled_until or 0.0, at + span)
        self.history.timeline.append((at, "stall"))

    def _end_stall(self, now: float) -> None:
        # Everything that fell due before the stall ended, and the half batch, is skipped.
        due = self._due_before(self._stalled_until)
        skipped = len(self._pending) + max(0, due - self._next_index)
        self._pending = []
        self._next_index = max(self._next_index, due)
        self.history.boots[-1].skipped += skipped
        self._stalled_until = None
        self.history.timeline.append((now, "resume"))

    def _begin_unplug(self, at: float, span: float) -> None:
        self._emit_due_samples(at)
        self._unplugged_until = at + span
        self._stalled_until = None
        self.history.timeline.append((at, "unplug"))
        if getattr(self._endpoint, "can_unplug", False):
            self._endpoint.unplug()

    def _end_unplug(self, now: float) -> None:
        if getattr(self._endpoint, "can_unplug", False):
            self._endpoint.plug()
        self._unplugged_until = None
        self.history.timeline.append((now, "replug"))
        self._decoder.reset()
        self._boot(now, protocol.RESET_POWER_ON)

    def _corrupt(self, frame: bytes) -> bytes:
        plan = self.faults
        data = np.frombuffer(frame, dtype=np.uint8).copy()
        if plan.truncate and self._rng.random() < plan.truncate and len(data) > 2:
            cut = int(self._rng.integers(1, len(data) - 1))
            data = np.concatenate([data[:cut], np.zeros(1, np.uint8)])
            self.history.count(self.history.faults, "truncate")
        if plan.bitflip:
            flips = np.flatnonzero(self._rng.random(len(data)) < plan.bitflip)
            if len(flips):
                bits = self._rng.integers(0, 8, len(flips)).astype(np.uint8)
                data[flips] ^= np.left_shift(np.uint8(1), bits)
                self.history.count(self.history.faults, "bitflip", len(flips))
        if plan.drop:
            keep = self._rng.random(len(data)) >= plan.drop
            dropped = int(len(data) - keep.sum())
            if dropped:
                data = data[keep]
                self.history.count(self.history.faults, "drop", dropped)
        return data.tobytes()

    # --- boot and samples ---------------------------------------------------------------

    def _boot(self, now: float, cause: int) -> None:
        boot_id = int(self._rng.integers(1, 1 << 32))
        while boot_id == self._boot_id:
            boot_id = int(self._rng.integers(1, 1 << 32))
        self._boot_id = boot_id
        self._boot_cause = cause
        self._boot_t = now
        self._rate = self.default_rate_hz
        self._anchor_t = self._first_due(now)
        self._anchor_index = 0
        self._next_index = 0
        self._pending = []
        self._stalled_until = None
        self._decoder.reset()
        names = {protocol.RESET_POWER_ON: "power-on", protocol.RESET_WATCHDOG: "watchdog", protocol.RESET_SOFT: "reboot"}
        self.history.boots.append(BootRecord(boot_id, now, names.get(cause, "other")))
        self.history.timeline.append((now, "boot"))
        self._endpoint.write(b"\x00")  # a lone delimiter ends whatever the host had half-read
        self._send_hello(now, cause)
        self._next_status = now + self.status_interval_s

    def _first_due(self, now: float) -> float:
        origin = self.sample_grid_origin
        if origin is None:
            return now
        return origin + math.ceil((now - origin) * self._rate - 1e-9) / self._rate

    def _device_us(self, index: int | np.ndarray) -> Any:
        return np.round((self._anchor_t - self._boot_t) * 1e6 + (np.asarray(index) - self._anchor_index) * 1e6 / self._rate)

    def due_time(self, index: int | np.ndarray) -> Any:
        """The clock time at which sample ``index`` of the present boot falls due."""
        return self._due_time(index)

    def _due_time(self, index: int) -> float:
        return self._anchor_t + (index - self._anchor_index) / self._rate

    def _due_count(self, now: float) -> int:
        """How many samples (from index 0) are due by clock time ``now``."""
        if now < self._anchor_t:
            return self._anchor_index
        return self._anchor_index + int(math.floor((now - self._anchor_t) * self._rate + 1e-9)) + 1

    def _due_before(self, t: float) -> int:
        """How many samples (from index 0) fall due strictly before clock time ``t``."""
        if t <= self._anchor_t:
            return self._anchor_index
        return self._anchor_index + int(math.ceil((t - self._anchor_t) * self._rate - 1e-9))

    def _emit_due_samples(self, now: float) -> None:
        if not self._sampling or self._stalled_until is not None:
            return
        due = self._due_count(now)
        while self._next_index < due:
            take = min(due - self._next_index, self.batch - len(self._pending))
            self._pending.extend(range(self._next_index, self._next_index + take))
            self._next_index += take
            if len(self._pending) == self.batch:
                self._flush_pending()

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        indices = np.asarray(self._pending, dtype=np.int64)
        self._pending = []
        values = np.asarray(self.signal(indices), dtype=np.int64)
        at_rail = (values >= protocol.RAW_MAX) | (values <= protocol.RAW_MIN)
        self._saturations += int(at_rail.sum())
        values = np.clip(values, protocol.RAW_MIN, protocol.RAW_MAX)
        fields = {
            "boot_id": self._boot_id,
            "first_seq": int(indices[0]) % protocol.SAMPLE_SEQ_MODULUS,
            "t0_us": int(self._device_us(int(indices[0]))),
            "period_us": int(round(1e6 / self._rate)),
            "raw": [int(v) for v in values],
        }
        self._send(protocol.SAMPLES, fields)
        record = self.history.boots[-1]
        record.sent_seq.append(indices)
        record.sent_raw.append(values)

    # --- messages -----------------------------------------------------------------------

    def _send(self, msg_type: int, fields: dict[str, Any]) -> None:
        frame = protocol.encode_frame(msg_type, self._tx_seq, fields)
        self._tx_seq = (self._tx_seq + 1) % protocol.SEQ_MODULUS
        if self.faults.corrupts:
            frame = self._corrupt(frame)
        written = self._endpoint.write(frame)
        if written < len(frame):
            self._tx_dropped += 1
        self.history.count(self.history.frames, protocol.TYPE_NAMES[msg_type])

    def _send_hello(self, now: float, cause: int) -> None:
        major, minor, patch = self.firmware_version
        self._send(
            protocol.HELLO,
            {
                "fw_major": major,
                "fw_minor": minor,
                "fw_patch": patch,
                "board_id": self.board_id,
                "rate_hz": int(round(self._rate)),
                "gain": self.gain,
                "batch": self.batch,
                "reset_cause": cause,
                "boot_id": self._boot_id,
                "next_seq": (self._next_index - len(self._pending)) % protocol.SAMPLE_SEQ_MODULUS,
                "device_time_us": self._uptime_us(now),
            },
        )

    def _uptime_us(self, now: float) -> int:
        return max(0, int(round((now - self._boot_t) * 1e6)))

    def _send_status(self, now: float) -> None:
        self._send(
            protocol.STATUS,
            {
                "uptime_us": self._uptime_us(now),
                "hx711_timeouts": 0,
                "saturations": self._saturations & 0xFFFFFFFF,
                "pio_overflows": 0,
                "tx_dropped": self._tx_dropped & 0xFFFFFFFF,
                "rx_bad_frames": (self._decoder.crc_errors + self._decoder.bad_frames) & 0xFFFFFFFF,
            },
        )
        self._next_status = now + self.status_interval_s

    def _on_command(self, msg: protocol.Message, now: float) -> None:
        self.history.commands.append((now, msg.name, msg.seq))
        if msg.type not in protocol.COMMAND_TYPES:
            return  # a device-to-host frame coming back (a loopback): never answer it
        if msg.type == protocol.HELLO_REQUEST:
            self._send_hello(now, self._boot_cause)
        elif msg.type == protocol.PING:
            self._send(protocol.PONG, {"cmd_seq": msg.seq, "nonce": msg["nonce"], "device_time_us": self._uptime_us(now)})
        elif msg.type == protocol.SET_RATE:
            self._set_rate(msg, now)
        elif msg.type == protocol.REBOOT:
            self._ack(msg)
            self._boot(now, protocol.RESET_SOFT)
        else:
            self._nak(msg, protocol.NAK_UNKNOWN_TYPE)

    def _set_rate(self, msg: protocol.Message, now: float) -> None:
        rate = msg["rate_hz"]
        if not 1 <= rate <= 1000:
            self._nak(msg, protocol.NAK_UNSUPPORTED)
            return
        self._emit_due_samples(now)
        self._flush_pending()  # a batch holds samples of one rate only
        # Sample numbers continue; the next one is due one new period from now.
        self._anchor_index = self._next_index
        self._anchor_t = now + 1.0 / rate
        self._rate = float(rate)
        self._ack(msg)

    def _ack(self, msg: protocol.Message) -> None:
        self._send(protocol.ACK, {"cmd_seq": msg.seq, "cmd_type": msg.type})

    def _nak(self, msg: protocol.Message, reason: int) -> None:
        self._send(protocol.NAK, {"cmd_seq": msg.seq, "cmd_type": msg.type, "reason": reason})
