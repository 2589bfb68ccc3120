"""The web side of the live feed: the datagram socket the daemon sends its snapshots to.

The newest snapshot is kept with the time it came; each open live page waits on a
condition for the next. A snapshot older than STALE_S means the daemon is not sending:
not running, or without sensor data to process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

from ..live import MAX_DATAGRAM

STALE_S = 3.0


class LiveFeed:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.latest: dict | None = None
        self.received_at = 0.0
        self._sock: socket.socket | None = None
        self._changed: asyncio.Condition | None = None

    def open(self) -> None:
        """Binds the socket (a stale one left by a crash is replaced) and starts reading it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            if _listened(self.path):
                raise OSError(f"another site listens on {self.path}")  # not ours to take
            self.path.unlink()  # left by a crash
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.path))
        # the daemon runs as another user of the same group: it must be able to send
        os.chmod(self.path, 0o660)
        sock.setblocking(False)
        self._sock = sock
        self._changed = asyncio.Condition()
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    def close(self) -> None:
        if self._sock is None:
            return
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _read(self) -> None:
        newest = None
        while True:
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                break
            try:
                message = json.loads(data)
            except ValueError:
                continue  # not ours: ignored
            if isinstance(message, dict) and "state" in message:
                newest = message  # (another site's probe, {}, is not a snapshot)
        if newest is not None:
            self.latest, self.received_at = newest, time.monotonic()
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def current(self) -> dict:
        """The newest snapshot, or the state "silent" when none came lately."""
        if self.latest is None or time.monotonic() - self.received_at > STALE_S:
            return {"state": "silent", "step": None}
        return self.latest

    async def wait_next(self, timeout: float) -> None:
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass


def _listened(path: Path) -> bool:
    """Whether a process has the datagram socket bound (a send to it is taken)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.sendto(b"{}", str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
