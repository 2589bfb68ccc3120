"""Host side of the force link: one reader thread owns the serial port.

:class:`ForceLink` opens any pyserial URL, decodes frames, accounts every
sample by sequence number (lost samples are counted, never invented), maps
device time to the injected clock, and reconnects with backoff when the port
fails. The daemon calls :meth:`ForceLink.read` to collect what arrived.

The accounting core (:class:`StreamTracker`, :class:`DeviceTimeMapper`) is pure:
messages and arrival times in, samples and events out, so tests drive it
without a port or a thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

import numpy as np
import serial

from firmware_bridge import protocol
from kneeroll_device.clock import SystemClock
from kneeroll_device.errors import LinkError, ProtocolError
from kneeroll_device.samples import DeviceEvent, GapEvent

try:  # termios exists only on POSIX; pyserial's tcflush/tcdrain raise its error on unplug
    import termios

    _TERMIOS_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()

log = logging.getLogger(__name__)

#: Everything a failing or unplugged port raises (see HARDWARE-FACTS, pyserial).
PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError) + _TERMIOS_ERRORS

SOURCE = "force"
PORT_FIX = (
    "check the cable to the Pico, add this user to group dialout "
    "(sudo usermod -aG dialout $USER, then log in again) and enable the UART with "
    "raspi-config (Interface Options > Serial Port: no login shell, hardware on)"
)
FIRMWARE_FIX = "run kneeroll firmware install to put this kneeroll's firmware on the Pico"

LinkEvent = Union[DeviceEvent, GapEvent]
_RESET_CAUSES = {
    protocol.RESET_POWER_ON: "power-on",
    protocol.RESET_WATCHDOG: "watchdog",
    protocol.RESET_SOFT: "reboot command",
    protocol.RESET_OTHER: "unknown",
}


# --- what read() returns ------------------------------------------------------------


@dataclass(frozen=True)
class LinkBatch:
    """Samples received since the last read, in arrival order, and the link's events.

    ``seq`` is the sample number since the device booted (unwrapped to int64; it
    restarts at 0 after a device reset, which ``events`` reports), ``device_time_us``
    the device's clock for each sample, ``raw`` the signed 24-bit HX711 counts and
    ``host_t`` the same instants in seconds of the link's clock.
    """

    seq: np.ndarray
    device_time_us: np.ndarray
    raw: np.ndarray
    host_t: np.ndarray
    events: tuple[LinkEvent, ...] = ()

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def gaps(self) -> tuple[GapEvent, ...]:
        return tuple(e for e in self.events if isinstance(e, GapEvent))

    @property
    def device_events(self) -> tuple[DeviceEvent, ...]:
        return tuple(e for e in self.events if isinstance(e, DeviceEvent))

    @classmethod
    def empty(cls, events: Iterable[LinkEvent] = ()) -> "LinkBatch":
        return cls(
            seq=np.zeros(0, np.int64),
            device_time_us=np.zeros(0, np.int64),
            raw=np.zeros(0, np.int32),
            host_t=np.zeros(0, np.float64),
            events=tuple(events),
        )


@dataclass(frozen=True)
class DeviceInfo:
    """What the Pico said about itself in its last HELLO."""

    firmware_version: str
    board_id: str
    rate_hz: int
    gain: int
    batch: int
    reset_cause: str
    boot_id: int

    @classmethod
    def from_hello(cls, msg: protocol.Message) -> "DeviceInfo":
        f = msg.fields
        return cls(
            firmware_version=f"{f['fw_major']}.{f['fw_minor']}.{f['fw_patch']}",
            board_id=bytes(f["board_id"]).hex(),
            rate_hz=f["rate_hz"],
            gain=f["gain"],
            batch=f["batch"],
            reset_cause=_RESET_CAUSES.get(f["reset_cause"], "unknown"),
            boot_id=f["boot_id"],
        )

    def describe(self) -> str:
        return (
            f"Pico {self.board_id} firmware {self.firmware_version}, "
            f"{self.rate_hz} Hz, gain {self.gain}, booted by {self.reset_cause}"
        )


@dataclass
class _Chunk:
    seq: np.ndarray
    device_time_us: np.ndarray
    raw: np.ndarray
    host_t: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    def tail(self, keep: int) -> "_Chunk":
        return _Chunk(self.seq[-keep:], self.device_time_us[-keep:], self.raw[-keep:], self.host_t[-keep:])


# --- pure accounting core --------------------------------------------------------------


class DeviceTimeMapper:
    """Maps device microseconds to host seconds, following clock drift.

    Each frame arrives some latency after its last sample was taken, never
    before, so ``arrival - device_time`` is the true offset plus a non-negative
    delay. The estimate follows the lower envelope of those observations: it
    drops at once to a lower one and rises only slowly (time constant
    ``rise_time_constant_s``), which tracks a device clock that runs slow or
    fast without chasing latency spikes.
    """

    def __init__(self, rise_time_constant_s: float = 20.0):
        if rise_time_constant_s <= 0:
            raise ValueError("rise_time_constant_s must be positive")
        self.rise_time_constant_s = rise_time_constant_s
        self._offset: float | None = None
        self._last_arrival = 0.0

    @property
    def offset(self) -> float | None:
        return self._offset

    def reset(self) -> None:
        """Forget the offset: the device restarted and its clock began again."""
        self._offset = None

    def observe(self, device_us: int, arrival: float) -> None:
        observed = arrival - device_us * 1e-6
        if self._offset is None or observed < self._offset:
            self._offset = observed
        else:
            elapsed = max(0.0, arrival - self._last_arrival)
            self._offset += (observed - self._offset) * min(1.0, elapsed / self.rise_time_constant_s)
        self._last_arrival = arrival

    def to_host(self, device_us: np.ndarray) -> np.ndarray:
        if self._offset is None:
            raise RuntimeError("no observation yet")
        return device_us.astype(np.float64) * 1e-6 + self._offset


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


class StreamTracker:
    """Sequence accounting for one device: what arrived, what was lost, when it restarted.

    A sample counts as lost when the device numbered it and it never arrived:
    gaps in the sequence inside one boot, and, after the device restarts, the
    samples of the new boot from 0 up to the first that arrived. Samples the
    device sent before the first one this tracker ever saw are not counted
    (nobody was listening), nor are the last samples of a boot that ended
    before any later one of its frames arrived (nothing can tell of them).
    """

    def __init__(self, source: str = SOURCE, mapper: DeviceTimeMapper | None = None):
        self.source = source
        self.mapper = mapper or DeviceTimeMapper()
        self.boot_id: int | None = None
        self._expected: int | None = None  # unwrapped seq of the next sample
        self._last_device_us = -1
        self._last_host_t = float("-inf")
        self.received = 0
        self.lost = 0
        self.resets = 0

    def on_hello(self, msg: protocol.Message, now: float) -> list[LinkEvent]:
        return self._check_boot(msg["boot_id"], now, "a HELLO from a new boot")

    def on_samples(self, msg: protocol.Message, now: float, after_corruption: bool) -> tuple[_Chunk | None, list[LinkEvent]]:
        events = self._check_boot(msg["boot_id"], now, "samples from a new boot")
        raw = msg["raw"]
        count = len(raw)
        if self._expected is None:
            first = msg["first_seq"]  # first contact: nothing before this is ours to count
        else:
            delta = _signed32(msg["first_seq"] - self._expected)
            if delta < 0:
                # No sender repeats a frame; a stray old frame can only be noise
                # that passed the CRC, so it is dropped rather than delivered twice.
                overlap = -delta
                if overlap >= count:
                    return None, events
                raw = raw[overlap:]
                delta = 0
            first = self._expected + delta
            if delta > 0:
                self.lost += delta
                reason = "corrupt frames" if after_corruption else "missing frames"
                events.append(GapEvent(now, self.source, delta, reason))
        first_offset = len(msg["raw"]) - len(raw)
        chunk = self._chunk(msg, first, first_offset, raw, now)
        self._expected = first + len(raw)
        self.received += len(raw)
        return chunk, events

    def _check_boot(self, boot_id: int, now: float, how: str) -> list[LinkEvent]:
        if self.boot_id is None:
            self.boot_id = boot_id
            return []
        if boot_id == self.boot_id:
            return []
        # A new boot: its samples count from 0, its clock starts again.
        self.boot_id = boot_id
        self.resets += 1
        self._expected = 0
        self._last_device_us = -1
        self.mapper.reset()
        return [DeviceEvent(now, self.source, "reset", f"the Pico restarted ({how})")]

    def _chunk(self, msg: protocol.Message, first: int, first_offset: int, raw: list[int], now: float) -> _Chunk:
        n = len(raw)
        index = np.arange(first_offset, first_offset + n, dtype=np.int64)
        device_us = msg["t0_us"] + index * msg["period_us"]
        self._last_device_us = int(device_us[-1])
        self.mapper.observe(self._last_device_us, now)
        host_t = self.mapper.to_host(device_us)
        # Keep host time non-decreasing: an offset that dropped must not reorder samples.
        host_t = np.maximum(host_t, self._last_host_t)
        self._last_host_t = float(host_t[-1])
        return _Chunk(
            seq=np.arange(first, first + n, dtype=np.int64),
            device_time_us=device_us.astype(np.int64),
            raw=np.asarray(raw, dtype=np.int32),
            host_t=host_t,
        )


# --- the threaded link ------------------------------------------------------------------


class _PendingCommand:
    def __init__(self, msg_type: int):
        self.msg_type = msg_type
        self.done = threading.Event()
        self.reply: protocol.Message | None = None


class ForceLink:
    """The serial link to the force sensor's Pico.

    ``start()`` opens the port (raising :class:`LinkError` if it cannot) and
    starts one reader thread named ``thread_name``; from then on the thread
    reconnects by itself. Every timeout below is in seconds of ``clock``.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        clock: Any = SystemClock(),
        max_buffered_samples: int = 8192,
        max_events: int = 1024,
        handshake_timeout_s: float = 1.0,
        stale_after_s: float = 1.0,
        reopen_after_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        poll_s: float = 0.05,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
        source: str = SOURCE,
        thread_name: str = "force-link",
    ):
        self.url = url
        self.baudrate = baudrate
        self.clock = clock
        self.source = source
        self.thread_name = thread_name
        self.max_buffered_samples = max_buffered_samples
        self.handshake_timeout_s = handshake_timeout_s
        self.stale_after_s = stale_after_s
        self.reopen_after_s = reopen_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.poll_s = poll_s
        self._serial_factory = serial_factory

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._activity = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._port: Any = None
        self._decoder = protocol.FrameDecoder()
        self._tracker = StreamTracker(source)

        # shared with read(): guarded by _lock
        self._chunks: deque[_Chunk] = deque()
        self._buffered = 0
        self._events: deque[LinkEvent] = deque(maxlen=max_events)
        self._counts = {"reconnects": 0, "overflowed": 0, "events_dropped": 0, "stale": 0}
        self._pending: dict[int, _PendingCommand] = {}
        self._outbox: deque[bytes] = deque(maxlen=64)
        self._tx_seq = 0
        self._info: DeviceInfo | None = None
        self._status: dict[str, int] | None = None
        self._fault: ProtocolError | None = None
        self._crash: BaseException | None = None

        # reader-thread state
        self._up = False
        self._opened_once = False
        self._connected_at = 0.0
        self._last_frame_at: float | None = None
        self._next_hello_request = 0.0
        self._hello_this_connection = False
        self._rejected_before = 0
        self._after_corruption = False
        self._fault_reported = False
        self._down_reported = False

    # --- public API ------------------------------------------------------------

    def start(self) -> "ForceLink":
        """Open the port and start the reader thread; raises LinkError if the port cannot be opened."""
        if self._closed:
            raise LinkError(f"the force link on {self.url} is closed", "create a new ForceLink")
        if self._thread is not None:
            return self
        try:
            self._open_port()
        except PORT_ERRORS as exc:
            raise LinkError(f"cannot open the force sensor's port {self.url}: {exc}", PORT_FIX) from exc
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def read(self) -> LinkBatch:
        """Everything received since the last call (samples and events); never blocks."""
        with self._lock:
            chunks = list(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            events = tuple(self._events)
            self._events.clear()
            crash = self._crash
        if crash is not None and not chunks and not events:
            raise LinkError(f"the force link reader stopped: {crash!r}", "this is a bug; restart the daemon") from crash
        if not chunks:
            return LinkBatch.empty(events)
        return LinkBatch(
            seq=np.concatenate([c.seq for c in chunks]),
            device_time_us=np.concatenate([c.device_time_us for c in chunks]),
            raw=np.concatenate([c.raw for c in chunks]),
            host_t=np.concatenate([c.host_t for c in chunks]),
            events=events,
        )

    def counters(self) -> dict[str, int]:
        """received, lost, crc_errors, resyncs, reconnects, and finer detail."""
        with self._lock:
            decoder = self._decoder.counters()
            out = {
                "received": self._tracker.received,
                "lost": self._tracker.lost + self._counts["overflowed"],
                "crc_errors": decoder["crc_errors"],
                "resyncs": decoder["resyncs"],
                "reconnects": self._counts["reconnects"],
                "resets": self._tracker.resets,
                "overflowed": self._counts["overflowed"],
                "stale": self._counts["stale"],
                "events_dropped": self._counts["events_dropped"],
            }
            for name in ("frames", "bad_frames", "oversize", "version_errors", "unknown_types", "garbage_bytes"):
                out[name] = decoder[name]
        return out

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def device_info(self) -> DeviceInfo | None:
        return self._info

    @property
    def frame_interval_s(self) -> float:
        """How long the Pico takes to fill one SAMPLES frame (0 before its first HELLO)."""
        info = self._info
        return info.batch / info.rate_hz if info is not None and info.rate_hz > 0 else 0.0

    def _silence_allowed_s(self) -> float:
        # a slow rate fills a batch slowly (8 readings at 10 Hz take 0.8 s): two frames
        # may go by before a silence means the link is down
        return max(self.stale_after_s, 2.0 * self.frame_interval_s)

    @property
    def device_status(self) -> dict[str, int] | None:
        """The Pico's last STATUS: uptime_us, hx711_timeouts, saturations, ..."""
        return self._status

    @property
    def fault(self) -> ProtocolError | None:
        """Set while the device speaks another protocol version; cleared when it stops."""
        return self._fault

    def ping(self, timeout_s: float = 1.0) -> float | None:
        """Round trip in clock seconds, or None when no PONG came back in time."""
        sent = self.clock()
        reply = self._command(protocol.PING, {"nonce": int(sent * 1000) & 0xFFFFFFFF}, timeout_s)
        if reply is None or reply.type != protocol.PONG:
            return None
        return self.clock() - sent

    def set_rate(self, rate_hz: int, timeout_s: float = 1.0) -> bool:
        """Ask the Pico for another sample rate; True when it acknowledged."""
        reply = self._command(protocol.SET_RATE, {"rate_hz": int(rate_hz)}, timeout_s)
        return reply is not None and reply.type == protocol.ACK

    def reboot(self, timeout_s: float = 1.0) -> bool:
        """Ask the Pico to restart; True when it acknowledged (a reset event follows)."""
        reply = self._command(protocol.REBOOT, {}, timeout_s)
        return reply is not None and reply.type == protocol.ACK

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (in clock time) until ``predicate()`` holds; re-checked whenever the reader does work."""
        deadline = self.clock() + timeout_s
        while True:
            self._activity.clear()
            if predicate():
                return True
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            self.clock.wait(self._activity, min(remaining, self.poll_s))

    def close(self) -> None:
        """Stop the reader and close the port; safe to call twice."""
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        self._close_port()
        self._fail_pending()

    def __enter__(self) -> "ForceLink":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- commands -----------------------------------------------------------------

    def _command(self, msg_type: int, fields: dict[str, Any], timeout_s: float) -> protocol.Message | None:
        if self._thread is None:
            raise LinkError(f"the force link on {self.url} is not started", "call start() first")
        pending = _PendingCommand(msg_type)
        with self._lock:
            seq = self._next_tx_seq()
            self._pending[seq] = pending
            self._outbox.append(protocol.encode_frame(msg_type, seq, fields))
        try:
            self.clock.wait(pending.done, timeout_s)
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        return pending.reply

    def _next_tx_seq(self) -> int:
        seq = self._tx_seq
        self._tx_seq = (self._tx_seq + 1) % protocol.SEQ_MODULUS
        return seq

    def _fail_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for command in pending:
            command.done.set()

    # --- reader thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        try:
            while not self._stop.is_set():
                self.clock.checkin()
                if self._port is None:
                    if self._reopen():
                        backoff = self.backoff_initial_s
                    else:
                        self.clock.wait(self._stop, backoff)
                        backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                try:
                    self._service_port()
                except PORT_ERRORS as exc:
                    self._lose_port(f"port error: {exc}")
                self._activity.set()
        except Exception as exc:  # a bug: stop loudly, read() raises it
            log.exception("force link reader stopped")
            with self._lock:
                self._crash = exc
            self._emit(DeviceEvent(self.clock(), self.source, "fault", f"reader stopped: {exc!r}"))
        finally:
            self.clock.checkout()
            self._activity.set()

    def _open_port(self) -> None:
        real_timeout = self._real_seconds(self.poll_s)
        port = self._serial_factory(self.url, baudrate=self.baudrate, timeout=real_timeout, write_timeout=1.0)
        self._port = port
        self._decoder.reset()
        now = self.clock()
        self._connected_at = now
        self._last_frame_at = None
        self._hello_this_connection = False
        self._next_hello_request = now  # ask for HELLO straight away
        self._fault_reported = False
        if self._opened_once:
            with self._lock:
                self._counts["reconnects"] += 1
            log.info("force link: reopened %s", self.url)
        self._opened_once = True

    def _reopen(self) -> bool:
        try:
            self._open_port()
        except PORT_ERRORS as exc:
            log.debug("force link: cannot reopen %s: %s", self.url, exc)
            return False
        return True

    def _real_seconds(self, clock_seconds: float) -> float:
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        if speed == float("inf"):
            return 0.002
        return min(0.05, max(0.002, clock_seconds / speed))

    def _service_port(self) -> None:
        port = self._port
        self._flush_outbox(port)
        waiting = port.in_waiting  # an unplugged port raises OSError here
        data = port.read(waiting or 1)
        now = self.clock()
        if data:
            self._ingest(data, now)
        self._check_timers(now)

    def _flush_outbox(self, port: Any) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                frame = self._outbox.popleft()
            port.write(frame)

    def _ingest(self, data: bytes, now: float) -> None:
        messages = self._decoder.feed(data)
        decoder = self._decoder
        rejected = decoder.crc_errors + decoder.bad_frames + decoder.oversize + decoder.version_errors
        if rejected != self._rejected_before:
            self._rejected_before = rejected
            self._after_corruption = True
        if decoder.last_foreign_version is not None and not messages:
            self._report_foreign_version(decoder.last_foreign_version, now)
        for msg in messages:
            self._on_message(msg, now)

    def _on_message(self, msg: protocol.Message, now: float) -> None:
        self._last_frame_at = now
        self._decoder.last_foreign_version = None
        if msg.type == protocol.HELLO:
            self._on_hello(msg, now)  # first, so that "up" can name the device
        if not self._up:
            self._mark_up(now)
        if msg.type == protocol.SAMPLES:
            with self._lock:
                chunk, events = self._tracker.on_samples(msg, now, self._after_corruption)
            self._after_corruption = False
            for event in events:
                self._emit(event)
            if chunk is not None:
                self._store(chunk, now)
        elif msg.type == protocol.STATUS:
            self._on_status(msg, now)
        elif msg.type in (protocol.PONG, protocol.ACK, protocol.NAK):
            self._on_reply(msg)
        # Host-to-device types only show up on a loopback port: ignore them.

    def _on_hello(self, msg: protocol.Message, now: float) -> None:
        with self._lock:
            events = self._tracker.on_hello(msg, now)
            self._info = DeviceInfo.from_hello(msg)
        self._hello_this_connection = True
        for event in events:
            self._emit(event)
        log.info("force link: %s", self._info.describe())

    def _on_status(self, msg: protocol.Message, now: float) -> None:
        previous = self._status
        self._status = dict(msg.fields)
        if previous is None:
            return
        new_timeouts = msg["hx711_timeouts"] - previous["hx711_timeouts"]
        if 0 < new_timeouts and msg["uptime_us"] > previous["uptime_us"]:
            self._emit(
                DeviceEvent(now, self.source, "fault", f"the HX711 did not answer {new_timeouts} times: check its wiring")
            )

    def _on_reply(self, msg: protocol.Message) -> None:
        with self._lock:
            pending = self._pending.get(msg["cmd_seq"])
        if pending is None:
            return  # a late reply to a command that already timed out
        pending.reply = msg
        pending.done.set()

    def _mark_up(self, now: float) -> None:
        self._up = True
        self._down_reported = False
        if self._fault is not None:
            self._fault = None
            self._fault_reported = False
            self._emit(DeviceEvent(now, self.source, "recovered", "the Pico speaks this protocol again"))
        detail = f"receiving on {self.url}"
        if self._info is not None:
            detail += f" from {self._info.describe()}"
        self._emit(DeviceEvent(now, self.source, "up", detail))
        log.info("force link: up on %s", self.url)

    def _mark_down(self, now: float, reason: str) -> None:
        was_up = self._up
        self._up = False
        if was_up or not self._down_reported:
            self._down_reported = True
            self._emit(DeviceEvent(now, self.source, "down", reason))
            log.warning("force link: down (%s)", reason)

    def _report_foreign_version(self, version: int, now: float) -> None:
        if self._fault_reported:
            return
        self._fault_reported = True
        self._fault = ProtocolError(
            f"the Pico on {self.url} speaks force-link protocol version {version}, "
            f"this kneeroll speaks version {protocol.PROTOCOL_VERSION}",
            FIRMWARE_FIX,
        )
        log.error("%s", self._fault)
        self._emit(DeviceEvent(now, self.source, "fault", str(self._fault)))
        if self._up:
            self._mark_down(now, "protocol version mismatch")

    def _check_timers(self, now: float) -> None:
        if not self._hello_this_connection and now >= self._next_hello_request:
            self._queue(protocol.HELLO_REQUEST, {})
            self._next_hello_request = now + self.handshake_timeout_s
        heard = self._last_frame_at if self._last_frame_at is not None else self._connected_at
        silent = now - heard
        if self._up and silent > self._silence_allowed_s():
            with self._lock:
                self._counts["stale"] += 1
            self._mark_down(now, f"no data for {silent:.1f} s")
            self._hello_this_connection = False  # ask who is there when it comes back
        if silent > self.reopen_after_s:
            self._lose_port(f"no data for {silent:.1f} s; reopening the port")

    def _queue(self, msg_type: int, fields: dict[str, Any]) -> None:
        with self._lock:
            self._outbox.append(protocol.encode_frame(msg_type, self._next_tx_seq(), fields))

    def _lose_port(self, reason: str) -> None:
        self._close_port()
        self._mark_down(self.clock(), reason)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        try:
            port.close()
        except PORT_ERRORS:
            pass  # an unplugged port may fail to close; it is gone either way

    def _store(self, chunk: _Chunk, now: float) -> None:
        overflow = 0
        with self._lock:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            while self._buffered > self.max_buffered_samples:
                oldest = self._chunks[0]
                excess = self._buffered - self.max_buffered_samples
                if excess >= len(oldest):
                    self._chunks.popleft()
                    dropped = len(oldest)
                else:
                    self._chunks[0] = oldest.tail(len(oldest) - excess)
                    dropped = excess
                self._buffered -= dropped
                overflow += dropped
            self._counts["overflowed"] += overflow
        if overflow:
            self._emit(GapEvent(now, self.source, overflow, "host buffer full: read() was not called in time"))

    def _emit(self, event: LinkEvent) -> None:
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self._counts["events_dropped"] += 1
            self._events.append(event)
