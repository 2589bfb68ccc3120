"""The live view's feed: the daemon's state, sent to whoever listens, never waited on.

The daemon has no network access (its unit forbids it). It sends a small JSON
snapshot of the session as a datagram to a Unix socket that the web process has
bound (``/run/kneeroll/live.sock`` under systemd). A datagram socket in
non-blocking mode never blocks the sender: with no listener the send fails at once,
and with a listener that has fallen behind the datagram is dropped. The next
snapshot carries the whole state again, so nothing is lost that matters.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

SOCKET_NAME = "live.sock"
SOCKET_ENV = "KNEEROLL_LIVE_SOCKET"
MAX_DATAGRAM = 8192  # a snapshot is a few hundred bytes; the listener reads up to this
PUBLISH_EVERY_S = 0.2  # the live page updates at least twice a second: five snapshots a second, and at each action


def live_socket_path(config) -> Path:
    """Where the daemon sends and the web process listens: the config, then $KNEEROLL_LIVE_SOCKET
    (both systemd units set it to the site's runtime directory), then the data dir."""
    if config.web.live_socket:
        return Path(config.web.live_socket).expanduser()
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    return Path(config.storage.data_dir) / SOCKET_NAME


class LivePublisher:
    """Sends snapshots to the live socket; a failed send is dropped, never retried or waited on."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sent = 0
        self.dropped = 0
        self._last_t = -math.inf
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def due(self, now: float) -> bool:
        return now - self._last_t >= PUBLISH_EVERY_S

    def publish(self, snapshot: dict, now: float) -> None:
        self._last_t = now
        snapshot["sent_at"] = round(time.time(), 3)  # wall time: the live page measures its delay by it
        data = json.dumps(snapshot, separators=(",", ":"), allow_nan=False).encode()
        try:
            self._sock.sendto(data, self.path)
            self.sent += 1
        except OSError:
            # no listener (the web process is not running), or it is behind: the next one will do
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()


def _num(x, digits: int = 1):
    return None if x is None or x != x else round(float(x), digits)


def snapshot(engine, *, session_id: int | None, kpa: float, absent: dict[str, bool],
             warning: dict | None, sequence: int) -> dict:
    """The state the live page shows: the step, its progress toward the target, counts, pressure."""
    progress = engine.step if engine.in_session else None
    out = {
        "seq": sequence,
        "state": engine.state,
        "session_id": session_id,
        "sensors_missing": sorted(name for name, gone in absent.items() if gone),
        "warning": warning,
        "step": None,
    }
    if progress is not None:
        step = progress.step
        out["step"] = {
            "position": progress.position, "total": len(engine.plan), "name": step.name, "kind": step.kind,
            "instruction": step.instruction, "leg": progress.leg,
            "strokes": progress.strokes, "reps": progress.reps, "reps_at_point": progress.reps_at_point,
            "points_done": progress.points_done, "active_s": _num(progress.active_s),
            "done": progress.completed, "targets": step.targets(),
            "kpa": _num(kpa), "limit_kpa": step.pressure_limit_kpa,
        }
        out["strokes"] = sum(p.strokes for p in engine.plan)
        out["reps"] = sum(p.reps for p in engine.plan)
    return out
