"""The session log: SQLite in the data directory, written by one thread.

Schema (``PRAGMA user_version`` keys the migrations; docs/session-log.md has
every column):

- ``sessions``: one row a session: wall-clock start and end (UTC, ISO 8601),
  leg, routine, source (run, demo), outcome (in_progress, completed,
  abandoned, interrupted), steps done, duration, strokes, reps, mean and peak
  pressure, the recording folder if one was kept, and a JSON ``meta``.
  Version 2 adds the writer's identity (host, boot, process) and a heartbeat,
  so a reader can tell a session being written from one whose writer died.
- ``steps``: one row a step of a session: targets, what was achieved (active
  seconds, strokes, reps, trigger points), mean and peak pressure and force,
  time over the pressure limit, warnings, completed or skipped.
- ``events``: strokes and reps (time, duration, force), repositions,
  pressure warnings, device faults and gaps, cues and calibrations, each with
  its time in seconds since the session started.
- ``pressure``: one row a second of a session: mean and peak kPa and N.
- ``calibrations`` (version 2): sensor calibrations, which happen outside
  sessions as well as in them.

Writes go through a queue to the writer thread, which commits in batches at
least every ``commit_every_s`` (WAL mode: readers such as the CLI work while
the daemon writes). Every transaction is atomic and the queue is first in,
first out, so whatever a crash leaves is a prefix of what was logged: at most
the last commit interval is lost. A write that fails (a full disk) is kept and
retried; the pending writes are bounded, the oldest per-second rows and events
going first (never a session or step row), and a ``gap`` event records how
many were lost once writing works again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
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
    # version 2: who writes a session and when it last committed; calibrations
    """
    ALTER TABLE sessions ADD COLUMN writer TEXT;
    ALTER TABLE sessions ADD COLUMN heartbeat_at REAL;
    CREATE TABLE calibrations (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        sensor TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions(id),
        detail TEXT NOT NULL DEFAULT '{}'
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

# The columns a session summary shows (meta, which can be large, only on request).
SESSION_COLUMNS = ("id", "started_at", "ended_at", "leg", "routine", "source", "outcome", "steps_done", "steps_total",
                   "duration_s", "strokes", "reps", "mean_kpa", "peak_kpa", "recording")
OUTCOMES = ("in_progress", "completed", "abandoned", "interrupted")
HEARTBEAT_S = 1.0  # an open session's heartbeat is refreshed at least this often
STALE_S = 10.0  # a writer on another machine (or boot) silent this long is gone
SILENT_MAX_S = 900.0  # even with its process alive, a session silent this long is not being written
CONTACT_KPA = 1.0  # per-second mean pressure below this is "not on the leg"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # NumPy scalars
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
    return value


# --- connections and migrations -------------------------------------------------------------


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the schema migrated (read-only connections never write)."""
    if readonly and not path.exists():
        # nothing to read there: most often the wrong --data-dir
        raise InputError(f"no session log at {path}", "run a session first, or pass the right --data-dir")
    try:
        if readonly:
            db = _open_readonly(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
    except PermissionError:
        raise StoreError(f"no permission to open the session log in {path.parent}",
                         "choose a writable --data-dir or fix the directory's owner") from None
    except (sqlite3.Error, OSError) as exc:
        # (the cause kept: busy() tells a log locked for a moment from one that cannot be opened)
        raise StoreError(f"cannot open the session log {path}: {exc}", "check --data-dir") from exc
    db.row_factory = sqlite3.Row
    try:
        if not readonly:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives a power cut too (the pod runs on a battery); about one fsync a second
            db.execute("PRAGMA synchronous=FULL")
            _migrate(db)
        elif schema_version(db) > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer kneeroll", "upgrade kneeroll")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{path} is not a kneeroll session log: {exc}", "move it aside and start a new one") from exc
    except StoreError:
        db.close()
        raise
    return db


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Read-only; also where the reader may not write at all (a read-only mount, another
    user's log): a WAL log's reader creates the -shm index beside it, and where it cannot,
    a log with no -wal file (no writer has it open, everything is in the file) is opened as
    immutable, which needs no index and takes no locks."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        if Path(f"{path}-wal").exists():
            raise
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=5.0, check_same_thread=False)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection) -> None:
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise StoreError(f"the session log has schema {version}, newer than this kneeroll ({SCHEMA_VERSION})",
                         "upgrade kneeroll")
    for number in range(version, SCHEMA_VERSION):
        # one transaction a version, the version number inside it: a crash mid-way leaves the old version whole
        db.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;")


# --- who is writing -----------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def writer_tag(pid: int | None = None) -> str:
    """This process as a session's writer: host, boot and process id."""
    return f"{socket.gethostname()}/{_boot_id()}/{os.getpid() if pid is None else pid}"


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process (the service's user): it exists
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")  # a killed child not yet reaped is gone
    except (OSError, IndexError):
        return True


def writer_alive(writer: str | None, heartbeat_at: float | None, now: float | None = None) -> bool:
    """Whether the process that wrote a session can still be writing it.

    On the same machine and boot the process table answers (at once, after a
    kill -9); otherwise, or when it cannot, the heartbeat: a writer refreshes
    it every second while a session is open.
    """
    if not writer or heartbeat_at is None:
        return False
    now = time.time() if now is None else now
    age = now - heartbeat_at
    host, _, rest = writer.partition("/")
    boot, _, pid = rest.rpartition("/")
    if host == socket.gethostname() and boot and boot == _boot_id() and pid.isdigit():
        return _pid_running(int(pid)) and age < SILENT_MAX_S
    return -STALE_S < age < STALE_S


def effective_outcome(row: dict, now: float | None = None) -> str:
    """The outcome a reader should show: an in-progress session whose writer is gone is interrupted."""
    outcome = row["outcome"]
    if outcome != "in_progress":
        return outcome
    return "in_progress" if writer_alive(row.get("writer"), row.get("heartbeat_at"), now) else "interrupted"


# What can be said of a session that never finished, from what reached the log.
_PARTIAL_SQL = """
SELECT
  (SELECT MAX(m) FROM (SELECT MAX(t) AS m FROM events WHERE session_id=:id AND t >= 0
                       UNION ALL SELECT MAX(t) FROM pressure WHERE session_id=:id)) AS duration_s,
  (SELECT COUNT(*) FROM events WHERE session_id=:id AND kind='stroke') AS strokes,
  (SELECT COUNT(*) FROM events WHERE session_id=:id AND kind='rep') AS reps,
  (SELECT COUNT(*) FROM steps WHERE session_id=:id AND completed) AS steps_done,
  COALESCE((SELECT AVG(mean_kpa) FROM steps WHERE session_id=:id),
           (SELECT AVG(mean_kpa) FROM pressure WHERE session_id=:id AND mean_kpa >= :contact)) AS mean_kpa,
  (SELECT MAX(p) FROM (SELECT MAX(peak_kpa) AS p FROM steps WHERE session_id=:id
                       UNION ALL SELECT MAX(peak_kpa) FROM pressure WHERE session_id=:id)) AS peak_kpa
"""


def partial_totals(db: sqlite3.Connection, session: dict) -> dict:
    """Duration, counts and pressure of an unfinished session, from its events, steps and pressure rows."""
    row = dict(db.execute(_PARTIAL_SQL, {"id": session["id"], "contact": CONTACT_KPA}).fetchone())
    for key in ("duration_s", "mean_kpa", "peak_kpa"):
        if row[key] is not None:
            row[key] = round(row[key], 2)
    heartbeat = session.get("heartbeat_at")
    if heartbeat is not None:
        row["ended_at"] = datetime.fromtimestamp(heartbeat, timezone.utc).isoformat(timespec="seconds")
    else:
        start = parse_utc(session["started_at"])
        row["ended_at"] = (start + timedelta(seconds=row["duration_s"] or 0)).isoformat(timespec="seconds")
    return row


def _salvage(db: sqlite3.Connection, session_id: int) -> bool:
    """Marks an unfinished session interrupted, with the totals of what was logged (in the caller's transaction)."""
    found = db.execute("SELECT * FROM sessions WHERE id=? AND outcome='in_progress'", (session_id,)).fetchone()
    if found is None:
        return False
    t = partial_totals(db, dict(found))
    db.execute("UPDATE sessions SET outcome='interrupted', ended_at=?, duration_s=?, strokes=?, reps=?, steps_done=?, "
               "mean_kpa=?, peak_kpa=? WHERE id=? AND outcome='in_progress'",
               (t["ended_at"], t["duration_s"], t["strokes"], t["reps"], t["steps_done"], t["mean_kpa"], t["peak_kpa"],
                session_id))
    return True


# --- writing ---------------------------------------------------------------------------------------

# another connection holds the log just now (its writer committing or checkpointing)
HELD = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_PROTOCOL")
# errors of the disk or of another process, which pass: the writes wait and are retried
TRANSIENT = ("SQLITE_FULL", "SQLITE_IOERR", *HELD, "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_NOMEM",
             "SQLITE_INTERRUPT")


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any failure (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


def busy(exc: Exception) -> bool:
    """Whether the log could not be read only because another connection holds it just now
    (HELD): an error of SQLite's, or a StoreError it caused."""
    cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    name = getattr(cause, "sqlite_errorname", None) or ""
    return name.startswith(HELD)


def transient(exc: sqlite3.Error) -> bool:
    """A failure to wait out (a full disk, a lock), not a write that can never succeed (a bug)."""
    name = getattr(exc, "sqlite_errorname", None)
    return name is None or name.startswith(TRANSIENT)


@dataclass
class _Op:
    sql: str = ""
    params: tuple = ()
    session_id: int | None = None
    droppable: bool = False  # events and per-second rows may go when the pending writes hit their bound
    t: float | None = None
    fn: Callable[[sqlite3.Connection], Any] | None = None

    def apply(self, db: sqlite3.Connection) -> None:
        if self.fn is not None:
            self.fn(db)
        else:
            db.execute(self.sql, self.params)


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


_STOP = object()


class SessionLog:
    """The daemon's writer: calls return at once; one thread writes, batched.

    ``on_fault(detail)`` is called once when the log stops being writable (a
    full disk), from the writer thread; ``on_recover()`` when it is writable
    again. Meanwhile the writes wait, at most ``max_pending`` of them, and are
    retried every ``retry_s``.
    """

    def __init__(self, data_dir: str | Path, *, commit_every_s: float = 0.5, on_fault: Callable[[str], None] | None = None,
                 on_recover: Callable[[], None] | None = None, max_pending: int = 50_000, retry_s: float = 1.0,
                 heartbeat_s: float = HEARTBEAT_S, batch_max: int = 2000):
        if commit_every_s > 1.0 or commit_every_s <= 0:
            raise ValueError("commit_every_s must be in (0, 1]: at most the last second may be lost")
        self.path = Path(data_dir) / DB_NAME
        self._db = connect(self.path)
        self.commit_every_s = commit_every_s
        self.on_fault = on_fault
        self.on_recover = on_recover
        self.max_pending = max(10, int(max_pending))
        self.retry_s = retry_s
        self.heartbeat_s = heartbeat_s
        self.batch_max = batch_max
        self.writer = writer_tag()
        self.salvaged = self._salvage_orphans()
        self._next_id = (self._db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0]) + 1
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._open: set[int] = set()
        self._lost: dict[int, list] = {}  # session id -> [rows lost, first t]
        self.dropped = 0
        self.lost_at_exit = 0  # writes still pending when the log closed unwritable
        self.faulted = False
        self.faults = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # --- what the daemon logs -------------------------------------------------------

    def start_session(self, *, leg: str, routine: str, source: str, steps_total: int, meta: dict | None = None) -> int:
        with self._lock:
            session_id = self._next_id
            self._next_id += 1
            self._open.add(session_id)
        self._put(_Op("INSERT INTO sessions (id, started_at, leg, routine, source, steps_total, meta, writer, heartbeat_at) "
                      "VALUES (?,?,?,?,?,?,?,?,?)",
                      (session_id, utc_now(), leg, routine, source, steps_total, json.dumps(meta or {}, default=str),
                       self.writer, time.time()), session_id))
        return session_id

    def log_event(self, session_id: int, t: float, kind: str, *, step: int | None = None, duration_s: float | None = None,
                  force_n: float | None = None, value: float | None = None, detail: dict | None = None) -> None:
        t = round(float(t), 3)
        self._put(_Op("INSERT INTO events (session_id, t, kind, step, duration_s, force_n, value, detail) VALUES (?,?,?,?,?,?,?,?)",
                      (session_id, t, kind, step, duration_s, force_n, value,
                       json.dumps(detail, default=str) if detail else None), session_id, True, t))

    def log_pressure(self, session_id: int, t: int, mean_kpa, peak_kpa, mean_force_n, peak_force_n) -> None:
        self._put(_Op("INSERT OR REPLACE INTO pressure VALUES (?,?,?,?,?,?)",
                      (session_id, int(t), mean_kpa, peak_kpa, mean_force_n, peak_force_n), session_id, True, float(t)))

    def log_calibration(self, sensor: str, detail: dict, session_id: int | None = None, t: float | None = None) -> None:
        """A calibration (in a session, give its id and time: it is also one of the session's events)."""
        self._put(_Op("INSERT INTO calibrations (at, sensor, session_id, detail) VALUES (?,?,?,?)",
                      (utc_now(), sensor, session_id, json.dumps(detail, default=str))))
        if session_id is not None:
            self.log_event(session_id, t or 0.0, "calibration", detail=dict(detail, sensor=sensor))

    def save_step(self, session_id: int, summary: dict, session_t0: float) -> None:
        def rel(t):
            return None if t is None else round(t - session_t0, 3)

        s = summary
        self._put(_Op(
            "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (session_id, s["index"], s["step_index"], s["id"], s["name"], s["kind"], s["leg"], rel(s["started"]),
             rel(s["ended"]), int(s["completed"]), int(s["skipped"]), s["active_s"], s["strokes"], s["reps"], s["points"],
             s["mean_kpa"], s["peak_kpa"], s["mean_force_n"], s["peak_force_n"], s["pressure_limit_kpa"],
             s["time_over_limit_s"], s["warnings"], json.dumps(s["targets"])),
            session_id,
        ))

    def finish_session(self, session_id: int, summary: dict, duration_s: float, recording: str | None = None) -> None:
        steps = summary["steps"]
        kpa = [s["mean_kpa"] for s in steps if _clean(s["mean_kpa"]) is not None]
        peaks = [s["peak_kpa"] for s in steps if _clean(s["peak_kpa"]) is not None]
        self._put(_Op(
            "UPDATE sessions SET ended_at=?, outcome=?, steps_done=?, duration_s=?, strokes=?, reps=?, mean_kpa=?, "
            "peak_kpa=?, recording=?, heartbeat_at=? WHERE id=?",
            (utc_now(), summary.get("outcome") or "abandoned", sum(1 for s in steps if s["completed"]), round(duration_s, 2),
             sum(s["strokes"] for s in steps), sum(s["reps"] for s in steps),
             round(sum(kpa) / len(kpa), 2) if kpa else None, max(peaks) if peaks else None, recording, time.time(),
             session_id),
            session_id,
        ))
        with self._lock:
            self._open.discard(session_id)

    def set_recording(self, session_id: int, recording: str | None) -> None:
        """Names the session's recording folder (when it is written after the session was finished)."""
        self._put(_Op("UPDATE sessions SET recording=? WHERE id=?", (recording, session_id), session_id))

    def sessions_today(self, routine: str | None = None, tz: tzinfo | None = None) -> int:
        """Sessions completed today (local time), not counting demos: what the engine's day count starts from."""
        reader = connect(self.path, readonly=True)
        try:
            return completed_on(reader, datetime.now(tz).astimezone(tz).date(), routine=routine, tz=tz)
        finally:
            reader.close()

    # --- the writer -------------------------------------------------------------------

    def _put(self, op: _Op) -> None:
        if self._closed:
            log.warning("session log closed: %s not written", op.sql.split(" ", 3)[:3])
            return
        op.params = tuple(_clean(p) for p in op.params)
        self._queue.put(op)

    @property
    def writes_lost(self) -> int:
        """Rows that never reached the log: dropped while it was unwritable, or pending at exit."""
        return self.dropped + self.lost_at_exit

    def flush(self, timeout: float = 5.0) -> bool:
        """Commits everything logged so far, now; True once it is committed, False if it cannot be (yet)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout) and marker.ok

    def _run(self) -> None:
        pending: list[_Op] = []
        waiters: list[_Flush] = []
        last_commit = last_attempt = last_heartbeat = time.monotonic()
        stopping = False
        while True:
            wait = self.commit_every_s if pending or self._open else 1.0
            if self.faulted:
                wait = min(wait, self.retry_s)
            try:
                items = [self._queue.get(timeout=wait)]
            except queue.Empty:
                items = []
            while len(items) < self.batch_max:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            force = False
            for item in items:
                if item is _STOP:
                    stopping = force = True
                elif isinstance(item, _Flush):
                    waiters.append(item)
                    force = True
                else:
                    pending.append(item)
            if len(pending) > self.max_pending:
                pending = self._shed(pending)
            now = time.monotonic()
            with self._lock:
                open_ids = sorted(self._open)
            heartbeat = bool(open_ids) and now - last_heartbeat >= self.heartbeat_s
            if self.faulted:
                due = force or now - last_attempt >= self.retry_s
            else:
                due = force or heartbeat or bool(pending) and (now - last_commit >= self.commit_every_s
                                                               or len(pending) >= self.batch_max)
            if due and (pending or open_ids or self.faulted or self._lost):
                last_attempt = now
                if self._commit(pending, open_ids):
                    pending = []
                    last_commit = last_heartbeat = now
            if waiters:
                ok = not pending and not self.faulted
                for w in waiters:
                    w.ok = ok
                    w.done.set()
                waiters = []
            if stopping:
                if pending:
                    self.lost_at_exit = len(pending)
                    log.error("session log not writable at exit: %d writes lost", len(pending))
                return

    def _shed(self, pending: list[_Op]) -> list[_Op]:
        """Bounds the pending writes: drops the oldest events and pressure rows, never session or step rows."""
        goal = int(self.max_pending * 0.9)
        excess = len(pending) - goal
        kept: list[_Op] = []
        for op in pending:
            if excess > 0 and op.droppable:
                excess -= 1
                self.dropped += 1
                lost = self._lost.setdefault(op.session_id, [0, op.t])
                lost[0] += 1
                continue
            kept.append(op)
        return kept

    def _lost_notes(self) -> list[_Op]:
        return [_Op("INSERT INTO events (session_id, t, kind, detail) VALUES (?,?,?,?)",
                    (sid, t if t is not None else 0.0, "gap",
                     json.dumps({"source": "store", "rows_lost": n, "reason": "session log not writable"})), sid)
                for sid, (n, t) in self._lost.items() if sid is not None]

    def _commit(self, ops: list[_Op], open_ids: list[int]) -> bool:
        """Writes ops (and the heartbeat of the open sessions) in one transaction; False if the log is not writable."""
        notes = self._lost_notes()
        db = self._db
        try:
            try:
                with _transaction(db):
                    for op in ops:
                        op.apply(db)
                    for op in notes:
                        op.apply(db)
                    if open_ids:
                        db.execute(f"UPDATE sessions SET heartbeat_at=? WHERE id IN ({','.join('?' * len(open_ids))})",
                                   (time.time(), *open_ids))
            except sqlite3.OperationalError as exc:
                if transient(exc):
                    raise
                log.error("session log: a write failed (%s); writing the batch one by one", exc)
                self._commit_each(ops + notes)
            except sqlite3.DatabaseError as exc:
                # one bad write (a bug, not the disk) must not block the others: write them one by one
                log.error("session log: a write failed (%s); writing the batch one by one", exc)
                self._commit_each(ops + notes)
        except sqlite3.OperationalError as exc:
            self._fault(str(exc))
            return False
        self._lost.clear()
        if self.faulted:
            self.faulted = False
            log.warning("session log writable again")
            if self.on_recover:
                self._call(self.on_recover)
        return True

    def _commit_each(self, ops: list[_Op]) -> None:
        db = self._db
        with _transaction(db):
            for op in ops:
                db.execute("SAVEPOINT one")
                try:
                    op.apply(db)
                except sqlite3.Error as exc:
                    if isinstance(exc, sqlite3.OperationalError) and transient(exc):
                        raise
                    db.execute("ROLLBACK TO one")
                    log.error("session log: dropped a write that cannot be made (%s): %s", exc, op.sql[:60])
                db.execute("RELEASE one")

    def _fault(self, detail: str) -> None:
        if self.faulted:
            return
        self.faulted = True
        self.faults += 1
        log.error("cannot write the session log: %s; will retry", detail)
        if self.on_fault:
            self._call(self.on_fault, detail)

    @staticmethod
    def _call(callback, *args) -> None:
        try:
            callback(*args)
        except Exception:  # a callback's bug must not stop the writer
            log.exception("session log callback failed")

    def _salvage_orphans(self) -> list[int]:
        """Marks the sessions whose writer is gone (a crash, a kill, a power cut) interrupted, with their partial totals."""
        rows = [dict(r) for r in self._db.execute("SELECT * FROM sessions WHERE outcome='in_progress'")]
        gone = [r["id"] for r in rows if effective_outcome(r) == "interrupted"]
        if not gone:
            return []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for session_id in gone:
                _salvage(self._db, session_id)
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # readers show them interrupted anyway; the next start tries again
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.error("could not mark interrupted sessions: %s", exc)
            return []
        log.warning("sessions %s were interrupted (their writer is gone)", ", ".join(map(str, gone)))
        return gone

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is pending and stops the writer; a session still open is marked interrupted. Safe twice."""
        with self._lock:
            if self._closed:
                return
            open_ids = sorted(self._open)
            self._open.clear()
        for session_id in open_ids:
            self._put(_Op(fn=lambda db, sid=session_id: _salvage(db, sid), session_id=session_id))
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            log.error("the session log writer did not stop within %.0f s", timeout)
            return
        self._db.close()

    def __enter__(self) -> "SessionLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_calibration(data_dir: str | Path, sensor: str, detail: dict) -> None:
    """Logs a calibration made outside a session (the ``kneeroll calibrate`` commands)."""
    db = connect(Path(data_dir) / DB_NAME)
    try:
        db.execute("INSERT INTO calibrations (at, sensor, detail) VALUES (?,?,?)",
                   (utc_now(), sensor, json.dumps(detail, default=str)))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot log the calibration: {exc}", "check the data directory's free space") from None
    finally:
        db.close()


# --- reading -----------------------------------------------------------------------------


SERVICE_DATA_DIR = Path("/var/lib/kneeroll")  # the service's StateDirectory= (systemd/kneeroll.service)


def reading_data_dir(config) -> Path:
    """Where the readers (history, show, plot, report, export, web) look for the log.

    The configured place; but on the Pi, where the service keeps its log in its own
    directory, a user who left the data dir at its default and has no log of their own
    reads the service's (install.sh puts them in its group, which may read it).
    """
    from .config import default_data_dir

    data_dir = Path(config.storage.data_dir)
    if data_dir != default_data_dir() or (data_dir / DB_NAME).exists():
        return data_dir
    if os.access(SERVICE_DATA_DIR / DB_NAME, os.R_OK):
        return SERVICE_DATA_DIR
    return data_dir


def open_log(data_dir: str | Path) -> sqlite3.Connection:
    return connect(Path(data_dir) / DB_NAME, readonly=True)


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def local_midnight_utc(day: date, tz: tzinfo | None = None) -> str:
    """The UTC ISO time at which a local day begins (what started_at compares with)."""
    start = datetime(day.year, day.month, day.day)
    start = start.replace(tzinfo=tz) if tz else start.astimezone()
    return start.astimezone(timezone.utc).isoformat(timespec="seconds")


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def session_rows(db: sqlite3.Connection, days: int | None = None, *, since: str | None = None, now: float | None = None,
                 tz: tzinfo | None = None, meta: bool = False) -> list[dict]:
    """Sessions oldest first, as readers should show them (see :func:`present`).

    ``days``: only the last N local days, today included; ``since``: only those
    started at or after this UTC ISO time.
    """
    if days is not None:
        today = datetime.now(tz).astimezone(tz).date()
        since = max(since or "", local_midnight_utc(today - timedelta(days=days - 1), tz))
    have = _columns(db, "sessions")
    wanted = [c for c in (*SESSION_COLUMNS, "writer", "heartbeat_at") if c in have] + (["meta"] if meta else [])
    sql = f"SELECT {', '.join(wanted)} FROM sessions"
    params: tuple = ()
    if since:
        sql += " WHERE started_at >= ?"
        params = (since,)
    rows = [dict(r) for r in db.execute(sql + " ORDER BY started_at, id", params)]
    return [present(db, r, now=now, tz=tz) for r in rows]


def present(db: sqlite3.Connection, row: dict, *, now: float | None = None, tz: tzinfo | None = None) -> dict:
    """A session row for readers: the effective outcome, partial totals of an unfinished one, local date and time."""
    outcome = effective_outcome(row, now)
    if row["outcome"] == "in_progress":
        partial = partial_totals(db, row)
        if outcome == "in_progress":
            partial["ended_at"] = None
        row.update(partial)
    row["outcome"] = outcome
    row.pop("writer", None)
    row.pop("heartbeat_at", None)
    local = parse_utc(row["started_at"]).astimezone(tz)
    row["date"] = local.date().isoformat()
    row["time"] = local.strftime("%H:%M")
    if "meta" in row:
        try:
            row["meta"] = json.loads(row["meta"] or "{}")
        except ValueError:
            pass
    return row


def session_row(db: sqlite3.Connection, session_id: int, *, now: float | None = None, tz: tzinfo | None = None,
                meta: bool = True) -> dict:
    have = _columns(db, "sessions")
    wanted = [c for c in (*SESSION_COLUMNS, "writer", "heartbeat_at") if c in have] + (["meta"] if meta else [])
    row = db.execute(f"SELECT {', '.join(wanted)} FROM sessions WHERE id=?", (session_id,)).fetchone()
    if row is None:
        raise InputError(f"there is no session {session_id}", "see `kneeroll history` for the ids")
    return present(db, dict(row), now=now, tz=tz)


def session_in_log(path: Path, session_id: int) -> bool:
    """Whether a session is in the log as its readers see it (a check after the writer closed)."""
    try:
        db = connect(path, readonly=True)
    except (InputError, StoreError, sqlite3.Error):
        return False
    try:
        return db.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        db.close()


def session_filter(include_demo: bool, routine: str | None, table: str = "") -> tuple[str, list]:
    """The SQL that leaves out demo sessions and other routines: (" AND ...", params)."""
    prefix = f"{table}." if table else ""
    sql, params = "", []
    if not include_demo:
        sql += f" AND {prefix}source != 'demo'"
    if routine:
        sql += f" AND {prefix}routine = ?"
        params.append(routine)
    return sql, params


def completed_on(db: sqlite3.Connection, day: date, *, routine: str | None = None, tz: tzinfo | None = None,
                 include_demo: bool = False) -> int:
    where, params = session_filter(include_demo, routine)
    sql = "SELECT COUNT(*) FROM sessions WHERE outcome='completed' AND started_at >= ? AND started_at < ?" + where
    params = [local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz), *params]
    return int(db.execute(sql, params).fetchone()[0])


def completed_days(db: sqlite3.Connection, *, routine: str | None = None, tz: tzinfo | None = None,
                   include_demo: bool = False) -> dict[date, int]:
    """Completed sessions a local day, for the programme's progress."""
    where, params = session_filter(include_demo, routine)
    sql = "SELECT started_at FROM sessions WHERE outcome='completed'" + where
    counts: dict[date, int] = {}
    for (started,) in db.execute(sql, params):
        day = parse_utc(started).astimezone(tz).date()
        counts[day] = counts.get(day, 0) + 1
    return counts


def resolve_session(db: sqlite3.Connection, which: str) -> int:
    if which.strip().lower() == "last":
        row = db.execute("SELECT MAX(id) FROM sessions").fetchone()
        if row[0] is None:
            # like asking for a session id that is not there: what was asked for does not exist
            raise InputError("the session log has no sessions yet, so there is no last one",
                             "run a session first, or kneeroll demo")
        return int(row[0])
    try:
        session_id = int(which)
    except ValueError:
        raise InputError(f"session {which!r} is not a number", "give a session id from `kneeroll history`, or last") from None
    if db.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone() is None:
        raise InputError(f"there is no session {session_id}", "see `kneeroll history` for the ids")
    return session_id


def step_rows(db: sqlite3.Connection, session_id: int) -> list[dict]:
    rows = [dict(r) for r in db.execute("SELECT * FROM steps WHERE session_id=? ORDER BY position", (session_id,))]
    for r in rows:
        r["completed"], r["skipped"] = bool(r["completed"]), bool(r["skipped"])
        try:
            r["targets"] = json.loads(r["targets"])
        except ValueError:
            r["targets"] = {}
    return rows


def event_rows(db: sqlite3.Connection, session_id: int, kinds: tuple[str, ...] | None = None) -> list[dict]:
    sql = "SELECT id, t, kind, step, duration_s, force_n, value, detail FROM events WHERE session_id=?"
    params: list = [session_id]
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        params += list(kinds)
    rows = [dict(r) for r in db.execute(sql + " ORDER BY t, id", params)]
    for r in rows:
        if r["detail"]:
            try:
                r["detail"] = json.loads(r["detail"])
            except ValueError:
                pass
    return rows


def pressure_rows(db: sqlite3.Connection, session_id: int) -> list[dict]:
    return [dict(r) for r in db.execute(
        "SELECT t, mean_kpa, peak_kpa, mean_force_n, peak_force_n FROM pressure WHERE session_id=? ORDER BY t",
        (session_id,))]


def has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

