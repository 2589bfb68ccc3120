"""Recordings left behind by a daemon that died, made whole when the daemon starts again.

A spool folder (spool.py) whose lock nobody holds was left by a process that is
gone: a crash, ``kill -9``, a power cut, or a finish that failed. Each of its gzip
files is cut back to its last whole member (a member cut short by the end of the
process is dropped, never repaired by guesswork), every line of the rest must pass
the recording reader's checks, read a block at a time so memory stays small however
long the session was, and the folder is renamed into a recording whose meta.json
says it was cut short and recovered (a spool whose finish wrote meta.json but did not
get to the rename keeps that meta.json, whole, with the recovery noted in it). It
becomes its session's recording when the log has that session from the same writer;
otherwise it is kept as an orphan recording, named after the (local) time it was
started. A spool with no whole sample at all (its first write was cut short) is
removed, saying so; one that fails the checks is never deleted: it is renamed
``broken-XXXX`` as it is, and the log says what is wrong and what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sqlite3
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from .atomic import write_atomically
from .errors import KneerollError, RecordingError, StoreError
from .recording import FORCE_COLUMNS, GYRO_COLUMNS, IMU_COLUMNS, iter_csv_blocks, meta_json
from .spool import (BROKEN_PREFIX, CONTROLS_FILE, FORCE_FILE, IMU_FILE, NEW_PREFIX, SPOOL_PREFIX, SpoolFiles,
                    free_place, lock_folder, read_spool_meta, recording_name, sync_folder)
from .store import busy, connect, effective_outcome, parse_utc, utc_now

log = logging.getLogger(__name__)

READ_BYTES = 1 << 16
# a log being written by the daemon's own writer can be busy for a moment (a checkpoint):
# the session's row is read again a few times, half a second apart
LOG_READ_ATTEMPTS = 4
LOG_READ_WAIT_S = 0.5
STALE_NEW_S = 3600.0  # a spool folder still unnamed this long was left by a start that died
CUT_BY_EXIT = ("the daemon stopped before it finished the recording (a crash, a kill or a power cut): "
               "the samples up to its last write are kept")


@dataclass
class Recovered:
    path: Path
    session_id: int | None  # the session it became the recording of, or None for an orphan
    cut_short: dict | None  # None: its finish had written everything, only the rename was missing


def whole_members_end(path: Path) -> int:
    """How many leading bytes of a gzip file are whole members, each ending in its checksum."""
    end = position = 0
    inflater = zlib.decompressobj(wbits=31)
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_BYTES):
            while chunk:
                try:
                    inflater.decompress(chunk)
                except zlib.error:
                    return end  # damaged from here on: keep what came before
                if not inflater.eof:
                    position += len(chunk)
                    break
                position += len(chunk) - len(inflater.unused_data)
                end = position
                chunk = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
    return end


def trim_to(path: Path, end: int) -> None:
    """Cuts the file back to its first ``end`` bytes, its whole members (nothing to cut if it is absent).

    With no whole member at all (killed during the file's first write: the IMU file's first
    member is written before the force file's) the file goes: an empty file has no header,
    which the reader refuses, while a recording without a force file is one it takes."""
    if not path.exists():
        return
    if end == 0:
        path.unlink()
    elif end < path.stat().st_size:
        os.truncate(path, end)


def read_controls(folder: Path) -> list[list]:
    """The button presses the spool kept; a line cut short by the crash is left out."""
    try:
        lines = (folder / CONTROLS_FILE).read_text(errors="replace").splitlines()
    except OSError:
        return []
    controls = []
    for line in lines:
        t, _, kind = line.partition(",")
        try:
            t = float(t)
        except ValueError:
            continue
        if kind in ("press", "hold"):
            controls.append([t, kind])
    return controls


def logged_session(log_path: Path | None, session_id, writer,
                   stopping: Callable[[], bool] | None = None) -> dict | None:
    """The session's row, if the log holds it as written by the spool's own writer.

    A log busy for a moment (locked by its writer: a checkpoint) is read again a few times;
    if it is still busy, StoreError: the spool waits for the next start rather than become
    an orphan recording for want of one read. A log that cannot be read for good (not a
    session log, a newer kneeroll's, another user's) does not name the session: an orphan."""
    if log_path is None or not isinstance(session_id, int) or not writer:
        return None
    for attempt in range(1, LOG_READ_ATTEMPTS + 1):
        try:
            row = _read_session(log_path, session_id)
            break
        except (KneerollError, sqlite3.Error) as exc:
            if not busy(exc):
                return None
            if attempt == LOG_READ_ATTEMPTS:
                raise StoreError(f"the session log {log_path} stayed busy: {exc}",
                                 "the recording is made at the next start") from None
        if stopping is not None and stopping():
            raise RecoveryStopped
        time.sleep(LOG_READ_WAIT_S)
    return row if row is not None and row.get("writer") == writer else None


def _read_session(log_path: Path, session_id: int) -> dict | None:
    db = connect(log_path, readonly=True)
    try:
        row = db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
    finally:
        db.close()
    return dict(row) if row is not None else None


def recover_spools(recordings_dir: Path, log_path: Path | None = None,
                   link: Callable[[int, str], None] | None = None,
                   stopping: Callable[[], bool] | None = None) -> list[Recovered]:
    """Every spool left by a writer that is gone, as a whole recording; ``link(session_id, path)``
    names it in the log. Spools being written (their lock is held) are left alone. Once
    ``stopping()`` says so, the spool at hand is left as it was, for the next start."""
    if not recordings_dir.is_dir():
        return []
    recovered = []
    for folder in sorted(recordings_dir.iterdir()):
        if stopping is not None and stopping():
            break
        if folder.name.startswith(NEW_PREFIX):
            _remove_if_stale(folder)
        elif folder.name.startswith(SPOOL_PREFIX) and folder.is_dir():
            try:
                done = _recover_one(folder, log_path, stopping)
            except RecoveryStopped:
                break
            except StoreError as exc:  # the log stayed busy: try again at the next start
                log.warning("could not name the recording left in %s in the session log: %s", folder, exc)
                continue
            except OSError as exc:  # the disk: try again at the next start
                log.error("could not recover the recording left in %s: %s", folder, exc.strerror or exc)
                continue
            if done is not None:
                recovered.append(done)
                if done.session_id is not None and link is not None:
                    link(done.session_id, str(done.path))
    return recovered


class RecoveryStopped(Exception):
    """The daemon is stopping: the spool at hand waits for the next start."""


def _recover_one(folder: Path, log_path: Path | None, stopping: Callable[[], bool] | None) -> Recovered | None:
    lock_fd = _lock_if_left(folder)
    if lock_fd is None:
        return None
    files = SpoolFiles(folder, lock_fd, 0.0)
    try:
        return _make_recording(files, log_path, stopping)
    finally:
        files.close()  # whatever happened: a spool left as it was is tried again at the next start


def _make_recording(files: SpoolFiles, log_path: Path | None, stopping: Callable[[], bool] | None) -> Recovered | None:
    folder = files.folder
    imu_end, force_end = (whole_members_end(folder / name) if (folder / name).exists() else 0
                          for name in (IMU_FILE, FORCE_FILE))
    if not imu_end and not force_end:
        log.warning("the recording left in %s held no whole samples (its first write was cut short): removed", folder)
        files.discard()
        return None
    if not imu_end:
        _set_aside(files, "its force samples have no whole IMU samples beside them, so no reader takes it")
        return None
    trim_to(folder / IMU_FILE, imu_end)
    trim_to(folder / FORCE_FILE, force_end)
    try:
        last_t = last_sample_time(folder, stopping)
    except RecordingError as exc:
        _set_aside(files, str(exc))
        return None
    spool = read_spool_meta(folder)
    finished = read_finished_meta(folder)
    session_id = spool.get("session_id", (finished or {}).get("session_id"))
    session = logged_session(log_path, session_id, spool.get("writer"), stopping)
    if stopping is not None and stopping():
        raise RecoveryStopped  # (the log may have kept it a moment): nothing is renamed yet
    note = {"at": utc_now(), "spool": folder.name, "opened_at": spool.get("opened_at")}
    if finished is not None:
        # the finish got as far as meta.json, so every sample is there: only the rename was missing
        meta = dict(finished, recovered=note)
    else:
        meta = _meta_of_a_spool_cut_short(folder, spool, session, last_t, note)
    write_atomically(folder / "meta.json", meta_json(meta))
    place = files.settle(recording_name(session["id"]) if session is not None else _orphan_name(spool))
    whose = f"session {session['id']}" if session is not None else "a session the log does not have"
    cut = meta.get("cut_short")
    if finished is not None:
        log.warning("recovered the recording of %s, whole (its finish was stopped before the rename): %s", whose, place)
    else:
        log.warning("recovered the recording of %s, cut short at %.1f s: %s", whose, cut["at_s"], place)
    return Recovered(place, session["id"] if session is not None else None, cut)


def last_sample_time(folder: Path, stopping: Callable[[], bool] | None = None) -> float:
    """The time of the spool's last sample, every line of its files checked as the recording
    reader checks them, a block at a time: memory stays bounded however long the session was."""
    last = -math.inf
    for name, required, optional in ((IMU_FILE, IMU_COLUMNS, GYRO_COLUMNS), (FORCE_FILE, FORCE_COLUMNS, ())):
        if not (folder / name).exists():
            continue
        for columns in iter_csv_blocks(folder / name, required, optional):
            if stopping is not None and stopping():
                raise RecoveryStopped
            last = max(last, float(columns["t"][-1]))
    return last


def _set_aside(files: SpoolFiles, problem: str) -> None:
    """A spool the reader refuses is kept as it is, renamed out of the way, never deleted."""
    folder = files.folder
    place = free_place(folder.parent, BROKEN_PREFIX + folder.name[len(SPOOL_PREFIX):])
    os.rename(folder, place)
    sync_folder(place.parent)
    files.folder = place
    log.error("the recording left in %s could not be made whole: %s. Its files are kept as they were in %s "
              "(no recording was made of them, and pruning leaves them alone): look at them (zcat %s) and "
              "delete the folder once it is not needed", folder.name, problem, place, place / IMU_FILE)


def read_finished_meta(folder: Path) -> dict | None:
    """meta.json as the spool's finish wrote it (whole or absent: it is written atomically), or None."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _meta_of_a_spool_cut_short(folder: Path, spool: dict, session: dict | None, last_t: float, note: dict) -> dict:
    """meta.json of a spool whose writer died before its finish: the samples end at ``last_t``."""
    cut = {"at_s": round(last_t, 4), "reason": CUT_BY_EXIT}
    meta = dict(spool.get("meta") or {}, controls=read_controls(folder), cut_short=cut, recovered=note)
    # the log's word when it has the session's end, else interrupted: the spool's writer is gone
    outcome = effective_outcome(session) if session is not None else "interrupted"
    meta["outcome"] = outcome if outcome in ("completed", "abandoned") else "interrupted"
    return meta


def _lock_if_left(folder: Path) -> int | None:
    """The folder's lock, if its writer is gone and the folder is still the one locked."""
    try:
        lock_fd = lock_folder(folder)
    except FileNotFoundError:  # finished or recovered meanwhile
        return None
    if lock_fd is None:
        return None  # being written
    try:
        same = os.stat(folder).st_ino == os.fstat(lock_fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # renamed by its writer between our open and our lock
        os.close(lock_fd)
        return None
    return lock_fd


def _orphan_name(spool: dict) -> str:
    """An orphan recording's name: when its session started (as the spool says), else now, in
    local time like every other name the daemon gives a recording (recording-<time>)."""
    try:
        opened = parse_utc(str(spool["opened_at"])).astimezone()
    except (KeyError, ValueError):
        opened = datetime.now().astimezone()
    return f"orphan-{opened.strftime('%Y%m%dT%H%M%S')}"


def _remove_if_stale(folder: Path) -> None:
    """A spool folder that never got its name: its start died. Removed once it is old and unlocked."""
    try:
        if time.time() - folder.stat().st_mtime < STALE_NEW_S:
            return
        lock_fd = lock_folder(folder)
    except OSError:
        return
    if lock_fd is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock_fd)
