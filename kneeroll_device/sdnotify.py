"""The systemd notification protocol (sd_notify), with no dependency.

systemd passes the service a datagram socket in ``NOTIFY_SOCKET``; the service
sends it newline-separated ``KEY=value`` assignments: ``READY=1`` once it is
useful, ``STATUS=...`` for ``systemctl status``, ``WATCHDOG=1`` to prove it is
alive and ``STOPPING=1`` on the way out. Outside systemd the variable is unset
and every call here quietly does nothing, so the daemon never has to ask.

:class:`Notifier` speaks the protocol. :class:`Watchdog` decides *when* to send
``WATCHDOG=1``: only while sensor samples keep arriving (or the daemon has
declared, on purpose, that it runs degraded). A daemon whose sensor threads
have silently stalled therefore stops feeding the watchdog, and systemd
restarts it; a daemon that merely loops without data does not fool it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

#: How long after the last samples a source still counts as alive, in seconds.
DEFAULT_FRESHNESS_S = 2.0


def socket_address(notify_socket: str | None) -> str | bytes | None:
    """The address to send to for a NOTIFY_SOCKET value, or None if unusable.

    A leading '@' names a Linux abstract socket, whose real address starts
    with a NUL byte. Other schemes systemd may grow (vsock:...) are not
    supported and give None.
    """
    if not notify_socket:
        return None
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    if notify_socket.startswith("/"):
        return notify_socket
    return None


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings systemd asks for, or None if it asks for none.

    systemd sets WATCHDOG_USEC to WatchdogSec= in microseconds. Pinging at half
    of it leaves room for one late ping. WATCHDOG_PID, when set, names the
    process the request is for: a child that inherited the environment must
    not take it as its own.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    target_pid = env.get("WATCHDOG_PID")
    if target_pid:
        try:
            if int(target_pid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2_000_000


def _one_line(text: str) -> str:
    # A newline would end the assignment and start a bogus one.
    return " ".join(str(text).splitlines())


class Notifier:
    """Sends sd_notify messages to the socket named by NOTIFY_SOCKET.

    ``environ`` and ``pid`` are injectable for tests; by default the process
    environment and id are read once, at construction. Sending never raises:
    a lost notification must not take the daemon down, so a failure is logged
    (once) and reported by the return value.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None):
        env = dict(os.environ if environ is None else environ)
        self._notify_socket = env.get("NOTIFY_SOCKET") or None
        self._address = socket_address(self._notify_socket)
        self._watchdog_interval = watchdog_interval(env, pid)
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._failure_logged = False
        if self._notify_socket and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a Unix socket path; systemd notifications are off",
                        self._notify_socket)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a usable notification socket."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of WatchdogSec=), or None."""
        return self._watchdog_interval

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram; True if it was delivered."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            self._socket().sendto(payload, self._address)
        except OSError as error:
            self._log_failure(error)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd that start-up is over (sensors are open)."""
        if status is None:
            return self.send("READY=1")
        return self.send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Prove to systemd's watchdog that the service is alive."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd that an orderly shutdown has begun."""
        if status is None:
            return self.send("STOPPING=1")
        return self.send("STOPPING=1", f"STATUS={_one_line(status)}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up (or shutdown) time, e.g. while a slow sensor settles."""
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def close(self) -> None:
        """Close the socket; safe to call twice. A later send opens a new one."""
        with self._sock_lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        # Several threads may notify (the main loop pings, workers set the
        # status): one socket for all, created once.
        with self._sock_lock:
            if self._sock is None:
                # Python sockets are close-on-exec already (PEP 446): a child
                # process cannot notify in the daemon's name through this one.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            return self._sock

    def _log_failure(self, error: OSError) -> None:
        # Once is enough: a broken socket would otherwise flood the journal
        # at the watchdog rate.
        if not self._failure_logged:
            log.warning("systemd notification to %s failed: %s", self._notify_socket, error)
            self._failure_logged = True


class Watchdog:
    """Feeds systemd's watchdog only while the daemon is demonstrably working.

    Sensor threads report progress with :meth:`samples_arrived` (per source,
    on the watchdog's clock); the main loop calls :meth:`tick`. A ping is sent
    when one is due and every source has delivered within ``freshness_s``, or
    has been declared degraded: a sensor the daemon knows is missing and has
    chosen to run without is a warning, not a hang. :meth:`declare_degraded`
    without a source covers the whole daemon.

    Each source gets ``freshness_s`` of grace from construction to deliver its
    first samples. Pings go out every ``interval`` seconds (by default the
    notifier's, half of WatchdogSec=); with no interval the watchdog is off
    and :meth:`tick` never sends. All methods are thread-safe.
    """

    def __init__(
        self,
        notifier: Notifier,
        clock: Callable[[], float],
        *,
        sources: Iterable[str] = ("sensors",),
        freshness_s: float = DEFAULT_FRESHNESS_S,
        interval: float | None = None,
    ):
        names = tuple(sources)
        if not names:
            raise ValueError("a watchdog needs at least one sample source")
        if freshness_s <= 0:
            raise ValueError(f"freshness_s must be positive, got {freshness_s}")
        self._notifier = notifier
        self._clock = clock
        self._freshness_s = float(freshness_s)
        self._interval = notifier.watchdog_interval() if interval is None else float(interval)
        self._lock = threading.Lock()
        started = clock()
        # The start time stands in for a first delivery: the start-up grace.
        self._last_samples = {name: started for name in names}
        self._degraded_sources: dict[str, str] = {}
        self._daemon_degraded: str | None = None
        self._next_ping = started
        self._withholding = False

    @property
    def enabled(self) -> bool:
        return self._interval is not None and self._interval > 0

    @property
    def interval(self) -> float | None:
        return self._interval

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._last_samples)

    def samples_arrived(self, t: float | None = None, source: str | None = None) -> None:
        """Record that ``source`` delivered fresh samples at ``t`` (default: now)."""
        name = self._source_name(source)
        when = self._clock() if t is None else float(t)
        with self._lock:
            # A late report of an older block never moves freshness backwards.
            if when > self._last_samples[name]:
                self._last_samples[name] = when

    def declare_degraded(self, reason: str, source: str | None = None) -> None:
        """Keep pinging without ``source`` (or, with None, without any samples)."""
        name = None if source is None else self._source_name(source)
        with self._lock:
            if name is None:
                self._daemon_degraded = reason
            else:
                self._degraded_sources[name] = reason

    def clear_degraded(self, source: str | None = None) -> None:
        """Require samples again from ``source`` (None: lift the daemon-wide declaration)."""
        name = None if source is None else self._source_name(source)
        with self._lock:
            if name is None:
                self._daemon_degraded = None
            else:
                self._degraded_sources.pop(name, None)

    @property
    def degraded(self) -> dict[str, str]:
        """Declared degradations: source name (or "daemon") to reason."""
        with self._lock:
            found = dict(self._degraded_sources)
            if self._daemon_degraded is not None:
                found["daemon"] = self._daemon_degraded
        return found

    def stale_sources(self, now: float | None = None) -> list[str]:
        """Sources that are neither fresh nor declared degraded."""
        t = self._clock() if now is None else now
        with self._lock:
            return self._stale_sources_locked(t)

    def healthy(self, now: float | None = None) -> bool:
        return not self.stale_sources(now)

    def seconds_until_due(self, now: float | None = None) -> float | None:
        """How long the main loop may wait before the next :meth:`tick`; None if off."""
        if not self.enabled:
            return None
        t = self._clock() if now is None else now
        with self._lock:
            return max(0.0, self._next_ping - t)

    def tick(self) -> bool:
        """Send WATCHDOG=1 if one is due and the daemon is healthy; True if sent."""
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            if now < self._next_ping:
                return False
            stale = self._stale_sources_locked(now)
            if stale:
                explanation = self._begin_withholding(stale, now)
            else:
                explanation = None
                self._end_withholding()
                self._next_ping = now + self._interval
        # Socket I/O happens outside the lock: sensor threads never wait on it.
        if stale:
            if explanation:
                log.warning("%s", explanation)
                self._notifier.status(explanation)
            return False
        self._notifier.watchdog()
        return True

    def _stale_sources_locked(self, now: float) -> list[str]:
        if self._daemon_degraded is not None:
            return []
        return [
            name
            for name, last in self._last_samples.items()
            if name not in self._degraded_sources and now - last > self._freshness_s
        ]

    def _begin_withholding(self, stale: list[str], now: float) -> str | None:
        # Explain once per episode, so `systemctl status` and the journal say
        # why the restart that follows happened.
        if self._withholding:
            return None
        self._withholding = True
        ages = ", ".join(f"{name} silent {now - self._last_samples[name]:.1f} s" for name in stale)
        return f"watchdog withheld: no fresh samples ({ages})"

    def _end_withholding(self) -> None:
        if self._withholding:
            self._withholding = False
            log.info("samples are fresh again; watchdog pings resume")

    def _source_name(self, source: str | None) -> str:
        if source is None:
            if len(self._last_samples) != 1:
                raise ValueError(f"name the source: one of {', '.join(self._last_samples)}")
            return next(iter(self._last_samples))
        if source not in self._last_samples:
            raise ValueError(f"unknown sample source {source!r}; known: {', '.join(self._last_samples)}")
        return source
