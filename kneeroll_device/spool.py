"""A session's raw samples, on their way to disk while the session runs.

The daemon hands every block to a :class:`RecordingSpool`. Every few seconds
(``FLUSH_EVERY_S`` of real time, or sooner once ``FLUSH_SPAN_S`` of samples
wait, as in a demo faster than life) its writer thread appends them to a spool
folder, ``recordings/.partial-XXXX/``, as one more gzip member a file, and
flushes them to the disk. Each member is whole by itself, so what a crash, a
``kill -9`` or a power cut leaves is whole members followed by at most one cut
short, which recovery (spool_recovery.py) drops. At the session's end the spool
becomes the recording: meta.json last, then the folder renamed to
``session-NNNNN``; nothing is copied or compressed again.

The writer holds a lock on the spool folder for as long as it writes; the
kernel lets go of it when the process dies, however it dies, which is how
recovery tells a spool left behind from one being written.

Memory holds a few seconds of samples; the flash sees one write every few
seconds; the space kept for the session log (diskspace.py) is checked before
each write, and once it would be touched the recording stops, whole.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import math
import os
import queue
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import write_atomically
from .diskspace import SpaceReserve
from .errors import KneerollError
from .recording import force_csv, imu_csv, increasing_on_the_grid, meta_json
from .samples import ForceBlock, ImuBlock
from .store import utc_now, writer_tag

log = logging.getLogger(__name__)

SPOOL_PREFIX = ".partial-"  # a spool being written, or left by a writer that died
NEW_PREFIX = ".new-"  # a spool folder not yet locked and named
SPOOL_PREFIXES = (SPOOL_PREFIX, NEW_PREFIX)  # folders in recordings/ that are not recordings (yet)
BROKEN_PREFIX = "broken-"  # a spool recovery could not make whole: kept as it was for the user to look at
NOT_RECORDINGS = SPOOL_PREFIXES + (BROKEN_PREFIX,)  # folders in recordings/ that pruning leaves alone
SPOOL_META = "spool.json"
CONTROLS_FILE = "controls.csv"
IMU_FILE = "imu.csv.gz"
FORCE_FILE = "force.csv.gz"
FLUSH_EVERY_S = 5.0  # real seconds between writes: few enough for the flash, little lost to a crash
FLUSH_SPAN_S = 30.0  # samples' seconds that may wait in memory (a demo runs faster than life)
MAX_WAITING = 12  # chunks handed over but not yet written: past this the disk is not keeping up
MAX_S = 3 * 3600.0  # the longest recording kept of one session
GZIP_LEVEL = 6


# --- the folder and its lock ------------------------------------------------------------------


def lock_folder(folder: Path) -> int | None:
    """An open descriptor of the folder holding its exclusive lock, or None if another process has it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def sync_folder(folder: Path) -> None:
    """Makes a rename or a new file in the folder survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def free_place(parent: Path, name: str) -> Path:
    """parent/name, or name-2, name-3... if it is taken (a log started afresh reuses session ids)."""
    place, n = parent / name, 1
    while place.exists():
        n += 1
        place = parent / f"{name}-{n}"
    return place


def recording_name(session_id: int) -> str:
    return f"session-{session_id:05d}"


def _new_folder(parent: Path) -> Path:
    """A folder of a name no one else has (made with the process's umask, as recordings are:
    the owner's group may read them)."""
    while True:
        folder = parent / f"{NEW_PREFIX}{secrets.token_hex(6)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def _append(path: Path, body: bytes) -> None:
    """Appends body and flushes it to the disk; on failure the file is as it was before."""
    size = path.stat().st_size if path.exists() else 0
    try:
        with open(path, "ab") as handle:
            handle.write(body)
            handle.flush()
            # the data and the new size, not the times: one flash write fewer every few seconds
            os.fdatasync(handle.fileno())
    except OSError:
        # a member cut short would make the whole file unreadable: cut it off again
        try:
            if size:
                os.truncate(path, size)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # recovery trims it to its whole members
        raise


def _remove_own_files(recording: Path) -> None:
    """The spool's bookkeeping, no longer needed in a recording in place (its controls are in meta.json)."""
    for own in (SPOOL_META, CONTROLS_FILE):
        try:
            (recording / own).unlink(missing_ok=True)
        except OSError as exc:  # left over, harmless: every reader ignores them
            log.warning("could not remove %s from %s: %s", own, recording, exc.strerror or exc)


# --- the files ---------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Samples made ready for the files: gzip members (or empty), and what they move forward."""

    imu: bytes = b""
    force: bytes = b""
    controls: bytes = b""
    imu_last: float = -math.inf
    force_last: float = -math.inf
    with_gyro: bool | None = None
    control_list: list = field(default_factory=list)
    left_out: int = 0
    first_t: float | None = None  # the first sample's time in it (recording seconds)
    past_limit: bool = False  # samples past the longest recording were left out

    @property
    def size(self) -> int:
        return len(self.imu) + len(self.force) + len(self.controls)


class SpoolFiles:
    """A spool folder: samples appended as whole gzip members, controls as lines, and the lock.

    Not thread-safe: one writer thread owns it. ``close`` lets go of the lock without
    finishing, as the end of the process would; the spool is then recovery's.
    """

    def __init__(self, folder: Path, lock_fd: int | None, t_from: float):
        self.folder, self.t_from = folder, t_from
        self._lock_fd = lock_fd
        self.with_gyro: bool | None = None  # fixed by the first IMU samples written
        self.last = {"imu": -math.inf, "force": -math.inf}  # the last times written (recording seconds)
        self.controls: list[list] = []
        self.left_out = 0

    @classmethod
    def create(cls, parent: Path, spool_meta: dict, t_from: float) -> "SpoolFiles":
        """A new spool folder under parent, locked, with its spool.json, under its .partial- name."""
        parent.mkdir(parents=True, exist_ok=True)
        building = _new_folder(parent)
        try:
            lock_fd = lock_folder(building)
            write_atomically(building / SPOOL_META, meta_json(spool_meta))
            folder = building.with_name(SPOOL_PREFIX + building.name[len(NEW_PREFIX):])
            # renamed only now, locked and described: recovery never meets a spool without either
            os.rename(building, folder)
            sync_folder(parent)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        return cls(folder, lock_fd, t_from)

    @property
    def written_until(self) -> float | None:
        last = max(self.last.values())
        return None if last == -math.inf else last

    def encode(self, imu: list[ImuBlock], force: list[ForceBlock], controls: list[tuple[float, str]],
               until: float = MAX_S) -> Chunk:
        """The samples as the next members: times from the recording's start, only those every
        reader accepts (finite, increasing on the written grid), none past ``until``."""
        chunk = Chunk(imu_last=self.last["imu"], force_last=self.last["force"], with_gyro=self.with_gyro)
        self._encode_imu(chunk, imu, until)
        self._encode_force(chunk, force, until)
        chunk.control_list = [[round(t - self.t_from, 4), kind] for t, kind in controls
                              if 0 <= t - self.t_from <= until]
        chunk.controls = "".join(f"{t:.4f},{kind}\n" for t, kind in chunk.control_list).encode()
        return chunk

    def _encode_imu(self, chunk: Chunk, blocks: list[ImuBlock], until: float) -> None:
        blocks = [b for b in blocks if len(b)]
        if not blocks:
            return
        if chunk.with_gyro is None:
            chunk.with_gyro = blocks[0].gyro is not None
        # a block without the columns the file began with cannot be written into it
        alike = [b for b in blocks if (b.gyro is not None) == chunk.with_gyro]
        chunk.left_out += sum(len(b) for b in blocks) - sum(len(b) for b in alike)
        if not alike:
            return
        t = np.concatenate([b.t for b in alike]) - self.t_from
        accel = np.concatenate([b.accel for b in alike])
        gyro = np.concatenate([b.gyro for b in alike]) if chunk.with_gyro else None
        values = accel if gyro is None else np.hstack([accel, gyro])
        keep = self._keep(chunk, t, values, chunk.imu_last, until)
        if keep.any():
            header = self.last["imu"] == -math.inf
            chunk.imu = gzip.compress(imu_csv(t[keep], accel[keep], None if gyro is None else gyro[keep], header),
                                      compresslevel=GZIP_LEVEL)
            chunk.imu_last = float(t[keep][-1])

    def _encode_force(self, chunk: Chunk, blocks: list[ForceBlock], until: float) -> None:
        blocks = [b for b in blocks if len(b)]
        if not blocks:
            return
        t = np.concatenate([b.t for b in blocks]) - self.t_from
        force = np.concatenate([b.force for b in blocks])
        keep = self._keep(chunk, t, force[:, None], chunk.force_last, until)
        if keep.any():
            header = self.last["force"] == -math.inf
            chunk.force = gzip.compress(force_csv(t[keep], force[keep], header), compresslevel=GZIP_LEVEL)
            chunk.force_last = float(t[keep][-1])

    @staticmethod
    def _keep(chunk: Chunk, t: np.ndarray, values: np.ndarray, after: float, until: float) -> np.ndarray:
        """The samples to write: finite, within the limit, and moving the written time forward."""
        if np.isfinite(t).any():
            first = float(np.nanmin(t))
            chunk.first_t = first if chunk.first_t is None else min(chunk.first_t, first)
        finite = np.isfinite(t) & np.all(np.isfinite(values), axis=1)
        within = finite & (t <= until)
        chunk.past_limit |= bool(np.any(finite & (t > until)))
        keep = np.zeros(len(t), dtype=bool)
        keep[within] = increasing_on_the_grid(t[within], after)
        chunk.left_out += int(np.count_nonzero(within & ~keep)) + int(np.count_nonzero(~finite))
        return keep

    def append(self, chunk: Chunk) -> None:
        """Writes the chunk's members; each file either gains its member or stays as it was."""
        if chunk.imu:
            _append(self.folder / IMU_FILE, chunk.imu)
            self.last["imu"], self.with_gyro = chunk.imu_last, chunk.with_gyro
        if chunk.force:
            _append(self.folder / FORCE_FILE, chunk.force)
            self.last["force"] = chunk.force_last
        if chunk.controls:
            # only the writes that carry a press touch it (a handful a session); it cannot share
            # the sample files' flushes (there is one a file), and a press lost to a power cut
            # would change what a replay does
            _append(self.folder / CONTROLS_FILE, chunk.controls)
            self.controls += chunk.control_list
        self.left_out += chunk.left_out

    def finish(self, meta: dict, name: str) -> Path | None:
        """The spool as a recording folder named ``name`` (or a free variant); None, and the spool
        gone, if no IMU sample was ever written (no reader would take it)."""
        if not (self.folder / IMU_FILE).exists():
            self.discard()
            return None
        meta = dict(meta, controls=self.controls)
        if self.left_out:
            meta["samples_left_out"] = self.left_out
        write_atomically(self.folder / "meta.json", meta_json(meta))
        return self.settle(name)

    def settle(self, name: str) -> Path:
        """Renames the folder into place, then drops the spool's own files; then lets go of the lock.

        The spool's files go only once the rename is done: until then, a failed rename or a
        power cut leaves a spool recovery can still link to its session (spool.json says which)."""
        place = free_place(self.folder.parent, name)
        os.rename(self.folder, place)
        sync_folder(place.parent)
        self.folder = place
        _remove_own_files(place)
        self.close()
        return place

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.close()

    def close(self) -> None:
        """Lets go of the lock (safe twice)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# --- the daemon's side ---------------------------------------------------------------------------


@dataclass
class _Samples:
    imu: list[ImuBlock]
    force: list[ForceBlock]
    controls: list[tuple[float, str]]


@dataclass
class _Stop:
    reason: str
    at_s: float | None


@dataclass
class _Finish:
    meta: dict
    on_done: Callable[[Path | None, dict], None] | None


class RecordingSpool:
    """Takes a session's blocks on the daemon's loop and writes them on a thread of its own.

    ``on_cut_short(cut)`` is called (from that thread) once if the recording stops before
    the session does, with ``{"at_s", "reason"}`` (``at_s`` in seconds of the recording);
    ``finish(meta, on_done)`` ends it, and ``on_done(path or None, meta)`` follows once
    the recording is in place (None: no samples were kept).
    """

    def __init__(self, recordings_dir: Path, *, session_id: int | None, t_from: float, meta: dict,
                 reserve: SpaceReserve, max_s: float = MAX_S, flush_every_s: float = FLUSH_EVERY_S,
                 flush_span_s: float = FLUSH_SPAN_S, on_cut_short: Callable[[dict], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.session_id, self.t_from, self.meta, self.reserve, self.max_s = session_id, t_from, meta, reserve, max_s
        self.flush_every_s, self.flush_span_s = flush_every_s, flush_span_s
        self.on_cut_short = on_cut_short
        self.monotonic = monotonic
        self.cut_short: dict | None = None
        self.path: Path | None = None  # the recording, once finished
        self._imu: list[ImuBlock] = []
        self._force: list[ForceBlock] = []
        self._controls: list[tuple[float, str]] = []
        self._handed_at = monotonic()
        self._given_up = False
        self._abandoned = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        spool_meta = {"format": "kneeroll-spool", "version": 1, "session_id": session_id, "writer": writer_tag(),
                      "opened_at": utc_now(), "t_from": t_from, "meta": meta}
        self._thread = threading.Thread(target=self._run, args=(Path(recordings_dir), spool_meta),
                                        name="recording-spool", daemon=True)
        self._thread.start()

    # --- on the daemon's loop ------------------------------------------------------------

    def add_imu(self, block: ImuBlock) -> None:
        if len(block) and self._taking():
            self._imu.append(block)
            self._hand_over_when_due()

    def add_force(self, block: ForceBlock) -> None:
        if len(block) and self._taking():
            self._force.append(block)
            self._hand_over_when_due()

    def add_control(self, t: float, kind: str) -> None:
        if self._taking():
            self._controls.append((t, kind))

    def finish(self, meta: dict, on_done: Callable[[Path | None, dict], None] | None = None) -> None:
        """The session ended: what waits is written, then the recording is put in place."""
        self._hand_over()
        self._queue.put(_Finish(meta, on_done))

    def abandon(self) -> None:
        """The daemon is stopping and cannot wait: the writer leaves the spool as it is, whole
        members only, lets go of its lock and ends; the next start recovers it."""
        self._abandoned.set()
        self._queue.put(None)  # wakes a writer waiting for work

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _taking(self) -> bool:
        # once the recording stopped (set by the writer thread), nothing more is kept for it
        return not self._given_up and self.cut_short is None

    def _hand_over_when_due(self) -> None:
        span = self._pending_span()
        if span >= self.flush_span_s or self.monotonic() - self._handed_at >= self.flush_every_s:
            self._hand_over()

    def _pending_span(self) -> float:
        firsts = [blocks[0].t[0] for blocks in (self._imu, self._force) if blocks]
        lasts = [blocks[-1].t[-1] for blocks in (self._imu, self._force) if blocks]
        return float(max(lasts) - min(firsts)) if firsts else 0.0

    def _hand_over(self) -> None:
        self._handed_at = self.monotonic()
        samples = _Samples(self._imu, self._force, self._controls)
        self._imu, self._force, self._controls = [], [], []
        if not self._taking() or not (samples.imu or samples.force or samples.controls):
            return
        if self._queue.qsize() >= MAX_WAITING:
            # memory stays bounded: the recording ends here rather than with a hole in it
            self._given_up = True
            first = min(b.t[0] for b in samples.imu + samples.force) if samples.imu or samples.force else None
            self._queue.put(_Stop(f"the disk did not keep up ({MAX_WAITING} writes waited)",
                                  None if first is None else round(first - self.t_from, 4)))
            return
        self._queue.put(samples)

    # --- on the writer thread --------------------------------------------------------------

    def _run(self, recordings_dir: Path, spool_meta: dict) -> None:
        files = None
        try:
            files = SpoolFiles.create(recordings_dir, spool_meta, self.t_from)
        except OSError as exc:
            log.error("cannot start the recording of session %s in %s: %s; the session goes on without one. "
                      "Check that the daemon's user may write there, that the disk is not full or read-only, or turn recordings off with [storage] "
                      "keep_recordings = false", self.session_id, recordings_dir, exc.strerror or exc)
            self._cut(None, f"the recording could not start: {exc.strerror or exc}", None)
        while True:
            item = self._queue.get()
            if self._abandoned.is_set():
                if files is not None:
                    files.close()
                log.warning("recording of session %s: left in %s for the next start", self.session_id,
                            files.folder if files is not None else recordings_dir)
                return
            if isinstance(item, _Samples):
                if files is not None and self.cut_short is None:
                    try:
                        self._write(files, item)
                    except Exception as exc:  # a bug here must not take the session's end with it
                        log.exception("recording of session %s failed", self.session_id)
                        self._cut(files, f"the recording failed: {exc}", None)
            elif isinstance(item, _Stop):
                self._cut(files, item.reason, item.at_s)
            elif isinstance(item, _Finish):
                self._finish(files, item)
                return

    def _write(self, files: SpoolFiles, samples: _Samples) -> None:
        chunk = files.encode(samples.imu, samples.force, samples.controls, until=self.max_s)
        if chunk.size and not self.reserve.allows(chunk.size):
            self._cut(files, self.reserve.reason(), chunk.first_t)
            return
        try:
            files.append(chunk)
        except OSError as exc:
            log.error("recording of session %s: a write failed: %s", self.session_id, exc.strerror or exc)
            self._cut(files, f"the disk refused a write: {exc.strerror or exc}", chunk.first_t)
            return
        if chunk.past_limit:
            self._cut(files, f"the recording reached its limit of {self.max_s / 3600:g} h", self.max_s)

    def _cut(self, files: SpoolFiles | None, reason: str, at_s: float | None) -> None:
        if self.cut_short is not None:
            return
        kept = files.written_until if files is not None else None
        at = at_s if at_s is not None else kept
        self.cut_short = {"at_s": None if at is None else round(max(at, kept or 0.0), 4), "reason": reason}
        if self.on_cut_short is not None:
            try:
                self.on_cut_short(dict(self.cut_short))
            except Exception:  # the daemon's bookkeeping must not stop the recording's end
                log.exception("recording: the cut-short callback failed")

    def _finish(self, files: SpoolFiles | None, finish: _Finish) -> None:
        meta = dict(self.meta, **finish.meta)
        if self.cut_short is not None:
            meta["cut_short"] = self.cut_short
        path = None
        if files is not None:
            try:
                path = files.finish(meta, recording_name(self.session_id) if self.session_id is not None
                                    else f"recording-{time.strftime('%Y%m%dT%H%M%S')}")
            except (OSError, KneerollError) as exc:
                # the spool stays, whole members only: the next start of the daemon recovers it
                files.close()
                log.error("could not finish the recording of session %s (%s); it is recovered at the next "
                          "start of the daemon", self.session_id, getattr(exc, "strerror", None) or exc)
        self.path = path
        if finish.on_done is not None:
            try:
                finish.on_done(path, meta)
            except Exception:
                log.exception("recording: the finishing callback failed")


def read_spool_meta(folder: Path) -> dict:
    """spool.json, or {} when it cannot be read (the samples are still worth keeping)."""
    try:
        meta = json.loads((folder / SPOOL_META).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
