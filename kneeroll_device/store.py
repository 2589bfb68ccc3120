"""The session log: SQLite in the data directory, written by one thread.

Schema (version 1; ``PRAGMA user_version`` keys the migrations):

- ``sessions``: one row a session: wall-clock start and end (UTC, ISO 8601),
  leg, routine, source (run, demo), outcome (in_progress, completed,
  abandoned, interrupted), steps done, duration, strokes, reps, mean and peak
  pressure, the recording folder if one was kept, and a JSON ``meta``.
- ``steps``: one row a step of a session: targets, what was achieved (active
  seconds, strokes, reps, trigger points), mean and peak pressure and force,
  time over the pressure limit, warnings, completed or skipped.
- ``events``: strokes and reps (time, duration, force), repositions,
  pressure warnings, device faults and gaps, cues and calibrations, each with
  its time in seconds since the session started.
- ``pressure``: one row a second of a session: mean and peak kPa and N.

Writes go through a queue to the writer thread, which commits at least every
``commit_every_s`` (WAL mode: readers such as the CLI work while the daemon
writes, and a crash leaves an intact database). A write that fails because
the disk is full is kept and retried; the daemon keeps guiding meanwhile.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .errors import InputError, StoreError

log = logging.getLogger(__name__)
DB_NAME = "kneeroll.db"

MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        leg TEXT NOT NULL,
        routine TEXT NOT NULL,
        source TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT 'in_progress',
        steps_done INTEGER NOT NULL DEFAULT 0,
        steps_total INTEGER NOT NULL DEFAULT 0,
        duration_s REAL,
        strokes INTEGER NOT NULL DEFAULT 0,
        reps INTEGER NOT NULL DEFAULT 0,
        mean_kpa REAL,
        peak_kpa REAL,
        recording TEXT,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX sessions_started ON sessions(started_at);
    CREATE TABLE steps (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        position INTEGER NOT NULL,
        step_index INTEGER NOT NULL,
        step_id TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        leg TEXT NOT NULL,
        started_s REAL,
        ended_s REAL,
        completed INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        active_s REAL NOT NULL,
        strokes INTEGER NOT NULL,
        reps INTEGER NOT NULL,
        points INTEGER NOT NULL,
        mean_kpa REAL,
        peak_kpa REAL,
        mean_force_n REAL,
        peak_force_n REAL,
        pressure_limit_kpa REAL NOT NULL,
        time_over_limit_s REAL NOT NULL,
        warnings INTEGER NOT NULL,
        targets TEXT NOT NULL,
        PRIMARY KEY (session_id, position)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        t REAL NOT NULL,
        kind TEXT NOT NULL,
        step INTEGER,
        duration_s REAL,
        force_n REAL,
        value REAL,
        detail TEXT
    );
    CREATE INDEX events_session ON events(session_id, t);
    CREATE TABLE pressure (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        t INTEGER NOT NULL,
        mean_kpa REAL,
        peak_kpa REAL,
        mean_force_n REAL,
        peak_force_n REAL,
        PRIMARY KEY (session_id, t)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the schema migrated (read-only connections never write)."""
    try:
        if readonly:
            if not path.exists():
                raise StoreError(f"no session log at {path}", "run a session first, or pass --data-dir")
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    except PermissionError:
        raise StoreError(f"no permission to open the session log in {path.parent}",
                         "choose a writable --data-dir or fix the directory's owner") from None
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open the session log {path}: {exc}", "check --data-dir") from None
    db.row_factory = sqlite3.Row
    try:
        if not readonly:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            _migrate(db)
        elif db.execute("PRAGMA user_version").fetchone()[0] > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer kneeroll", "upgrade kneeroll")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a kneeroll session log: {exc}", "move it aside and start a new one") from None
    return db


def _migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"the session log has schema {version}, newer than this kneeroll ({SCHEMA_VERSION})",
                         "upgrade kneeroll")
    for number in range(version, SCHEMA_VERSION):
        with db:
            db.executescript(MIGRATIONS[number])
            db.execute(f"PRAGMA user_version = {number + 1}")


@dataclass
class _Op:
    sql: str
    params: tuple


class SessionLog:
    """The daemon's writer: calls return at once; one thread writes, batched."""

    def __init__(self, data_dir: str | Path, *, commit_every_s: float = 0.5, on_fault: Callable[[str], None] | None = None):
        self.path = Path(data_dir) / DB_NAME
        self._db = connect(self.path)
        self.commit_every_s = commit_every_s
        self.on_fault = on_fault
        self._mark_crashed_sessions()
        self._next_id = (self._db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0]) + 1
        self._queue: queue.Queue[_Op | None] = queue.Queue()
        self._backlog: list[_Op] = []
        self._stop = threading.Event()
        self._flushed = threading.Condition()
        self._written = 0
        self._queued = 0
        self.faulted = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # --- what the daemon logs -------------------------------------------------------

    def start_session(self, *, leg: str, routine: str, source: str, steps_total: int, meta: dict | None = None) -> int:
        session_id = self._next_id
        self._next_id += 1
        self._put("INSERT INTO sessions (id, started_at, leg, routine, source, steps_total, meta) VALUES (?,?,?,?,?,?,?)",
                  (session_id, utc_now(), leg, routine, source, steps_total, json.dumps(meta or {})))
        return session_id

    def log_event(self, session_id: int, t: float, kind: str, *, step: int | None = None, duration_s: float | None = None,
                  force_n: float | None = None, value: float | None = None, detail: dict | None = None) -> None:
        self._put("INSERT INTO events (session_id, t, kind, step, duration_s, force_n, value, detail) VALUES (?,?,?,?,?,?,?,?)",
                  (session_id, round(t, 3), kind, step, duration_s, force_n, value, json.dumps(detail) if detail else None))

    def log_pressure(self, session_id: int, t: int, mean_kpa, peak_kpa, mean_force_n, peak_force_n) -> None:
        self._put("INSERT OR REPLACE INTO pressure VALUES (?,?,?,?,?,?)",
                  (session_id, t, mean_kpa, peak_kpa, mean_force_n, peak_force_n))

    def save_step(self, session_id: int, summary: dict, session_t0: float) -> None:
        def rel(t):
            return None if t is None else round(t - session_t0, 3)

        s = summary
        self._put(
            "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (session_id, s["index"], s["step_index"], s["id"], s["name"], s["kind"], s["leg"], rel(s["started"]),
             rel(s["ended"]), int(s["completed"]), int(s["skipped"]), s["active_s"], s["strokes"], s["reps"], s["points"],
             s["mean_kpa"], s["peak_kpa"], s["mean_force_n"], s["peak_force_n"], s["pressure_limit_kpa"],
             s["time_over_limit_s"], s["warnings"], json.dumps(s["targets"])),
        )

    def finish_session(self, session_id: int, summary: dict, duration_s: float, recording: str | None = None) -> None:
        steps = summary["steps"]
        kpa = [s["mean_kpa"] for s in steps if s["mean_kpa"] is not None]
        peaks = [s["peak_kpa"] for s in steps if s["peak_kpa"] is not None]
        self._put(
            "UPDATE sessions SET ended_at=?, outcome=?, steps_done=?, duration_s=?, strokes=?, reps=?, mean_kpa=?, "
            "peak_kpa=?, recording=? WHERE id=?",
            (utc_now(), summary["outcome"], sum(1 for s in steps if s["completed"]), round(duration_s, 2),
             sum(s["strokes"] for s in steps), sum(s["reps"] for s in steps),
             round(sum(kpa) / len(kpa), 2) if kpa else None, max(peaks) if peaks else None, recording, session_id),
        )

    # --- the writer -------------------------------------------------------------------

    def _put(self, sql: str, params: tuple) -> None:
        self._queued += 1
        self._queue.put(_Op(sql, tuple(_clean(p) for p in params)))

    def flush(self, timeout: float = 5.0) -> bool:
        """Until everything queued so far is committed (or the timeout)."""
        target = self._queued
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._written < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(remaining)
        return True

    def _run(self) -> None:
        last_commit = time.monotonic()
        pending: list[_Op] = []
        while True:
            timeout = max(0.0, self.commit_every_s - (time.monotonic() - last_commit))
            try:
                op = self._queue.get(timeout=timeout)
            except queue.Empty:
                op = _Op("", ())
            if op is None:
                self._commit(pending)
                return
            if op.sql:
                pending.append(op)
            if pending and (time.monotonic() - last_commit >= self.commit_every_s or len(pending) >= 500):
                pending = self._commit(pending)
                last_commit = time.monotonic()

    def _commit(self, ops: list[_Op]) -> list[_Op]:
        """Writes ops in one transaction; on a full disk keeps them for the next try."""
        if not ops:
            return ops
        try:
            with self._db:
                for op in ops:
                    self._db.execute(op.sql, op.params)
        except sqlite3.OperationalError as exc:
            if not self.faulted:
                self.faulted = True
                log.error("cannot write the session log: %s; will retry", exc)
                if self.on_fault:
                    self.on_fault(str(exc))
            return ops[-20000:]  # bounded: a disk that stays full loses the oldest first
        if self.faulted:
            self.faulted = False
            log.warning("session log writable again")
        with self._flushed:
            self._written += len(ops)
            self._flushed.notify_all()
        return []

    def _mark_crashed_sessions(self) -> None:
        with self._db:
            self._db.execute("UPDATE sessions SET outcome='interrupted' WHERE outcome='in_progress'")

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=10.0)
        self._db.close()

    def __enter__(self) -> "SessionLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- reading -----------------------------------------------------------------------------


def open_log(data_dir: str | Path) -> sqlite3.Connection:
    return connect(Path(data_dir) / DB_NAME, readonly=True)


def session_rows(db: sqlite3.Connection, days: int | None = None) -> list[dict]:
    sql = "SELECT * FROM sessions"
    params: tuple = ()
    if days is not None:
        since = datetime.now(timezone.utc).timestamp() - days * 86400
        sql += " WHERE started_at >= ?"
        params = (datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds"),)
    return [dict(r) for r in db.execute(sql + " ORDER BY started_at, id", params)]


def resolve_session(db: sqlite3.Connection, which: str) -> int:
    if which == "last":
        row = db.execute("SELECT MAX(id) FROM sessions").fetchone()
        if row[0] is None:
            raise StoreError("the session log has no sessions yet", "run a session first")
        return int(row[0])
    try:
        session_id = int(which)
    except ValueError:
        raise InputError(f"session {which!r} is not a number", "give a session id from `kneeroll history`, or last") from None
    if db.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone() is None:
        raise InputError(f"there is no session {session_id}", "see `kneeroll history` for the ids")
    return session_id


def step_rows(db: sqlite3.Connection, session_id: int) -> list[dict]:
    return [dict(r) for r in db.execute("SELECT * FROM steps WHERE session_id=? ORDER BY position", (session_id,))]
