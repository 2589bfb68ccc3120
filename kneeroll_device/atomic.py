"""Files written whole or not at all: what readers find is never cut short."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, body: bytes) -> None:
    """A whole file or none: written beside its place, flushed to the disk, then renamed
    over it, so a crash or a full disk never leaves a file cut short where readers look."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
