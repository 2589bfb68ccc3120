"""Free space, and the part of it kept for the session log.

The log is worth more than raw samples: a recording may only use the space
above the reserve, so when the disk fills the recordings stop first and the
log has room to go on. The reserve is checked once per chunk a recording
writes (every few seconds), never per sample.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
MB = 1024 * 1024


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on path's filesystem (what df calls available)."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


class SpaceReserve:
    """Says whether a recording may write ``nbytes`` more and still leave the reserve free.

    It warns once when free space falls under the reserve, and again only after
    space came back and ran low anew, however many chunks are refused meanwhile.
    ``measure`` gives the free bytes of a path (``free_bytes``; a test passes its own).
    """

    def __init__(self, path: Path, reserve_bytes: int, measure: Callable[[Path], int] | None = None):
        self.path = Path(path)
        self.reserve_bytes = int(reserve_bytes)
        self.measure = measure or free_bytes
        self.low = False
        self._lock = threading.Lock()  # a finishing recording and the next one may ask at once

    def allows(self, nbytes: int) -> bool:
        try:
            free = self.measure(self.path)
        except OSError as exc:
            # unknown: the write itself will succeed whole or fail whole
            log.debug("free space of %s unknown: %s", self.path, exc)
            return True
        allowed = free - nbytes >= self.reserve_bytes
        with self._lock:
            if not allowed and not self.low:
                log.warning("%s has %s MB free, under the %g MB kept for the session log: recordings stop "
                            "until there is room again, the session log goes on (free space there, lower "
                            "[storage] recordings_max_mb, or lower [storage] recordings_reserve_mb if the log "
                            "needs less)", self.path, megabytes_down(free), self.reserve_bytes / MB)
            elif allowed and self.low:
                log.info("%s has room for recordings again (%s MB free)", self.path, megabytes_down(free))
            self.low = not allowed
        return allowed

    def reason(self) -> str:
        """Why a recording stopped here, in the words meta.json and the log keep."""
        return f"free space fell under the {self.reserve_bytes / MB:g} MB kept for the session log"


def megabytes_down(nbytes: int) -> str:
    """Megabytes to 0.1, rounded down: 1 byte under 50 MB reads 49.9, never as the 50 it is under."""
    return f"{math.floor(nbytes / MB * 10) / 10:.1f}"
