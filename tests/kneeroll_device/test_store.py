"""The session log: schema and migrations, the writer thread, faults, and who counts as writing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from kneeroll_device.errors import InputError, StoreError

from kneeroll_device import store
from kneeroll_device.cli import main
from kneeroll_device.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, SessionLog, _Op


def step_summary(position: int, *, kind: str = "roll", completed: bool = True, strokes: int = 10, reps: int = 0,
                 mean_kpa: float | None = 20.0, peak_kpa: float | None = 25.0, started: float = 0.0, ended: float = 20.0):
    return {
        "index": position, "step_index": position, "id": f"step-{position}", "name": f"Step {position}", "kind": kind,
        "leg": "right", "completed": completed, "skipped": False, "started": started, "ended": ended,
        "active_s": 18.0 if kind == "roll" else 0.0, "strokes": strokes, "reps": reps, "points": 0 if kind == "roll" else 2,
        "repositions": 0, "mean_kpa": mean_kpa, "peak_kpa": peak_kpa, "mean_force_n": 90.0, "peak_force_n": 120.0,
        "time_over_limit_s": 0.0, "warnings": 0, "pressure_limit_kpa": 60.0,
        "targets": {"pressure_limit_kpa": 60.0, "roll_seconds_min": 15, "roll_seconds_max": 20},
    }


def write_session(log: SessionLog, *, steps: int = 2, outcome: str | None = "completed", source: str = "run") -> int:
    """A small session through the daemon's calls; finished unless outcome is None."""
    sid = log.start_session(leg="right", routine="runners-knee", source=source, steps_total=steps)
    summaries = []
    for position in range(1, steps + 1):
        t0 = 20.0 * (position - 1)
        for k in range(5):
            log.log_event(sid, t0 + 2 + 3 * k, "stroke", step=position, duration_s=1.5, force_n=95.0, value=18.0)
        for second in range(int(t0), int(t0) + 20):
            log.log_pressure(sid, second, 20.0, 24.0, 90.0, 110.0)
        summary = step_summary(position, strokes=5, started=100.0 + t0, ended=100.0 + t0 + 19.0)
        log.save_step(sid, summary, 100.0)
        summaries.append(summary)
    if outcome is not None:
        log.finish_session(sid, {"outcome": outcome, "steps": summaries}, 20.0 * steps)
    return sid


def reader(path):
    return store.connect(path / DB_NAME, readonly=True)


def test_a_new_log_has_the_latest_schema_in_wal_mode(tmp_path):
    with SessionLog(tmp_path) as log:
        assert log.flush()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "steps", "events", "pressure", "calibrations"} <= tables
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def make_v1_log(path):
    """A log as version 1 of the schema wrote it: a finished session and one left in progress by a crash."""
    db = sqlite3.connect(path / DB_NAME)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO sessions (id, started_at, ended_at, leg, routine, source, outcome, steps_done, steps_total, "
               "duration_s, strokes, reps, mean_kpa, peak_kpa) VALUES "
               "(1, '2026-01-05T07:00:00+00:00', '2026-01-05T07:05:30+00:00', 'right', 'runners-knee', 'run', "
               "'completed', 8, 8, 330.0, 60, 45, 20.5, 27.0)")
    db.execute("INSERT INTO sessions (id, started_at, leg, routine, source, steps_total) VALUES "
               "(2, '2026-01-05T19:00:00+00:00', 'right', 'runners-knee', 'run', 8)")
    db.executemany("INSERT INTO events (session_id, t, kind, step, duration_s, force_n, value) VALUES (?,?,?,?,?,?,?)",
                   [(2, 3.0 + i, "stroke", 1, 1.2, 90.0, 18.0) for i in range(7)] + [(2, 40.0, "rep", 2, 2.0, 140.0, 40.0)])
    db.executemany("INSERT INTO pressure VALUES (?,?,?,?,?,?)", [(2, t, 21.0, 25.0, 95.0, 115.0) for t in range(41)])
    db.commit()
    db.close()


def test_a_version_1_log_is_readable_then_migrated_with_its_crashed_session_interrupted(tmp_path):
    make_v1_log(tmp_path)
    # a reader of the old file (it never migrates): the crashed session already shows as interrupted
    with reader(tmp_path) as db:
        rows = store.session_rows(db)
    assert [r["outcome"] for r in rows] == ["completed", "interrupted"]
    assert rows[1]["strokes"] == 7 and rows[1]["reps"] == 1 and rows[1]["duration_s"] == 40.0
    assert store.schema_version(sqlite3.connect(tmp_path / DB_NAME)) == 1

    with SessionLog(tmp_path) as log:
        assert log.salvaged == [2]
        sid = write_session(log)
        assert sid == 3
        assert log.flush()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.row_factory = sqlite3.Row
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    first, crashed, new = [dict(r) for r in db.execute("SELECT * FROM sessions ORDER BY id")]
    assert (first["outcome"], first["strokes"], first["mean_kpa"], first["writer"]) == ("completed", 60, 20.5, None)
    assert crashed["outcome"] == "interrupted"
    assert (crashed["strokes"], crashed["reps"], crashed["duration_s"], crashed["mean_kpa"]) == (7, 1, 40.0, 21.0)
    assert crashed["ended_at"] == "2026-01-05T19:00:40+00:00"
    assert new["outcome"] == "completed" and new["writer"] == store.writer_tag()
    assert db.execute("SELECT COUNT(*) FROM events WHERE session_id=2").fetchone()[0] == 8


def test_a_migration_is_one_transaction(tmp_path):
    """A crash half-way through a migration must leave the previous version whole (DDL included)."""
    make_v1_log(tmp_path)
    broken = MIGRATIONS[1] + "\nCREATE TABLE sessions (x);"  # fails after the first statements ran
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        db.executescript(f"BEGIN IMMEDIATE;\n{broken}\nPRAGMA user_version = 2;\nCOMMIT;")
    db.execute("ROLLBACK")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "writer" not in {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
    db.close()
    with SessionLog(tmp_path) as log:  # and the real migration then runs cleanly
        assert log.flush()


def test_a_log_from_a_newer_kneeroll_is_refused(tmp_path):
    with SessionLog(tmp_path):
        pass
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(store.StoreError, match="newer"):
        SessionLog(tmp_path)
    with pytest.raises(store.StoreError, match="newer"):
        store.open_log(tmp_path)


def test_what_the_daemon_logs_is_stored_as_documented(tmp_path):
    with SessionLog(tmp_path) as log:
        sid = write_session(log, steps=3)
        log.log_event(sid, 12.3456, "warning", step=2, value=63.0, detail={"kpa": 63.0, "limit_kpa": 60.0})
        log.log_event(sid, 13.0, "stroke", step=2, force_n=float("nan"))
        assert log.flush()
        with reader(tmp_path) as db:
            row = store.session_row(db, sid)
            assert (row["outcome"], row["steps_done"], row["strokes"], row["duration_s"]) == ("completed", 3, 15, 60.0)
            assert row["mean_kpa"] == 20.0 and row["peak_kpa"] == 25.0
            steps = store.step_rows(db, sid)
            assert [s["position"] for s in steps] == [1, 2, 3]
            assert steps[0]["started_s"] == 0.0 and steps[0]["ended_s"] == 19.0
            assert steps[0]["targets"]["roll_seconds_max"] == 20 and steps[0]["completed"] is True
            warning = store.event_rows(db, sid, ("warning",))[0]
            assert warning["t"] == 12.346 and warning["detail"] == {"kpa": 63.0, "limit_kpa": 60.0}
            late = [e for e in store.event_rows(db, sid, ("stroke",)) if e["t"] == 13.0]
            assert late[0]["force_n"] is None  # NaN is stored as NULL
            assert len(store.pressure_rows(db, sid)) == 60


def test_writes_are_committed_within_the_commit_interval_without_a_flush(tmp_path):
    with SessionLog(tmp_path, commit_every_s=0.1) as log:
        sid = log.start_session(leg="left", routine="runners-knee", source="run", steps_total=8)
        log.log_event(sid, 1.0, "stroke", step=1)
        deadline = time.monotonic() + 3.0
        with reader(tmp_path) as db:
            while time.monotonic() < deadline:
                if db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1:
                    break
                time.sleep(0.02)  # polling a reader: the writer commits on its own clock
            assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_the_commit_interval_is_at_most_a_second():
    with pytest.raises(ValueError):
        SessionLog("/nonexistent", commit_every_s=2.0)


def test_readers_work_while_the_writer_writes(tmp_path):
    log = SessionLog(tmp_path, commit_every_s=0.05)
    sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
    assert log.flush()
    stop = threading.Event()

    def daemon():
        t = 0.0
        while not stop.is_set():
            for _ in range(50):
                t += 0.02
                log.log_event(sid, t, "stroke", step=1, duration_s=1.0, force_n=90.0, value=18.0)
            log.log_pressure(sid, int(t), 20.0, 24.0, 90.0, 110.0)
            log.flush()

    writer = threading.Thread(target=daemon)
    writer.start()
    try:
        seen = []
        for _ in range(15):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["history", "--json", "--data-dir", str(tmp_path)]) == 0
            session = json.loads(out.getvalue())["sessions"][0]
            assert session["outcome"] == "in_progress"  # its writer is alive
            seen.append(session["strokes"])
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["show", "last", "--json", "--data-dir", str(tmp_path)]) == 0
                assert main(["export", "--out", str(tmp_path / "x.zip"), "--force", "--data-dir", str(tmp_path)]) == 0
        assert seen == sorted(seen) and seen[-1] > 0
    finally:
        stop.set()
        writer.join()
    log.finish_session(sid, {"outcome": "completed", "steps": []}, 10.0)
    log.close()
    with reader(tmp_path) as db:
        assert store.session_rows(db)[0]["outcome"] == "completed"


class FullDisk:
    """A connection whose writes fail as on a full disk while ``full`` is set."""

    def __init__(self, db):
        self.db = db
        self.full = False
        self.attempts = 0

    def execute(self, sql, params=()):
        if self.full and sql.startswith(("INSERT", "UPDATE", "COMMIT")):
            self.attempts += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_a_full_disk_keeps_writes_bounded_faults_once_and_resumes(tmp_path):
    faults, recoveries = [], []
    log = SessionLog(tmp_path, on_fault=faults.append, on_recover=lambda: recoveries.append(1), max_pending=100,
                     retry_s=0.01)
    disk = FullDisk(log._db)
    log._db = disk
    sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=2)
    assert log.flush()
    disk.full = True
    for i in range(300):
        log.log_event(sid, i * 0.1, "stroke", step=1)
        log.log_pressure(sid, i, 20.0, 24.0, 90.0, 110.0)
    log.save_step(sid, step_summary(1, strokes=300), 0.0)
    assert not log.flush(timeout=2.0)
    assert not log.flush(timeout=2.0)  # retried, still full
    assert faults == ["database or disk is full"]  # once, however many retries
    assert log.faulted and disk.attempts >= 2
    assert log.dropped >= 500  # the bound held: oldest events and pressure rows went first

    disk.full = False
    for i in range(300, 310):
        log.log_event(sid, i * 0.1, "stroke", step=2)
    log.finish_session(sid, {"outcome": "completed", "steps": [step_summary(1, strokes=300)]}, 31.0)
    assert log.flush()
    assert not log.faulted and recoveries == [1]
    log.close()
    with reader(tmp_path) as db:
        session = store.session_row(db, sid)
        assert session["outcome"] == "completed"  # session and step rows are never dropped
        assert len(store.step_rows(db, sid)) == 1
        strokes = store.event_rows(db, sid, ("stroke",))
        assert [e["t"] for e in strokes[-10:]] == [round(i * 0.1, 3) for i in range(300, 310)]  # logging resumed
        kept = len(strokes) - 10 + len(store.pressure_rows(db, sid))
        assert 0 < kept <= 100
        gap = store.event_rows(db, sid, ("gap",))[0]
        assert gap["detail"]["source"] == "store" and gap["detail"]["rows_lost"] == log.dropped
        assert kept + log.dropped == 600


def test_a_second_fault_after_recovery_is_reported_again(tmp_path):
    faults = []
    log = SessionLog(tmp_path, on_fault=faults.append, retry_s=0.01)
    disk = FullDisk(log._db)
    log._db = disk
    sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=2)
    for _ in range(2):
        disk.full = True
        log.log_event(sid, 1.0, "stroke")
        assert not log.flush(timeout=1.0)
        disk.full = False
        assert log.flush()
    assert len(faults) == 2 and log.faults == 2
    log.close()


def test_a_write_that_can_never_succeed_does_not_block_the_others(tmp_path):
    faults = []
    with SessionLog(tmp_path, on_fault=faults.append) as log:
        sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=2)
        log._put(_Op("INSERT INTO sessions (id) VALUES (?)", (999,)))  # NOT NULL constraints: a bug's write
        log._put(_Op("INSERT INTO no_such_table VALUES (1)"))
        log.log_event(sid, 1.0, "stroke")
        assert log.flush()
        assert faults == []
    with reader(tmp_path) as db:
        assert len(store.event_rows(db, sid)) == 1


def test_close_marks_a_session_left_open_interrupted_and_is_safe_twice(tmp_path):
    log = SessionLog(tmp_path)
    sid = write_session(log, outcome=None)
    log.close()
    log.close()
    log.log_event(sid, 99.0, "stroke")  # after close: ignored, not an error
    with reader(tmp_path) as db:
        row = store.session_row(db, sid)
    assert row["outcome"] == "interrupted" and row["strokes"] == 10 and row["steps_done"] == 2


def test_a_session_of_a_live_writer_is_left_alone_by_a_second_log(tmp_path):
    first = SessionLog(tmp_path)
    sid = first.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
    assert first.flush()
    second = SessionLog(tmp_path)  # same process: its writer is alive
    assert second.salvaged == []
    second.close()
    with reader(tmp_path) as db:
        assert store.session_row(db, sid)["outcome"] == "in_progress"
    first.close()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_writer_alive_uses_the_process_table_here_and_the_heartbeat_elsewhere():
    now = time.time()
    assert store.writer_alive(store.writer_tag(), now - 100.0, now)  # our own process, however quiet
    assert not store.writer_alive(store.writer_tag(dead_pid()), now, now)  # gone: at once, heartbeat or not
    assert not store.writer_alive(store.writer_tag(), now - store.SILENT_MAX_S - 1, now)
    elsewhere = "another-host/0000/123"
    assert store.writer_alive(elsewhere, now - 2.0, now)
    assert not store.writer_alive(elsewhere, now - store.STALE_S - 1, now)
    assert not store.writer_alive(None, now, now) and not store.writer_alive(elsewhere, None, now)
    row = {"outcome": "in_progress", "writer": elsewhere, "heartbeat_at": now - 60}
    assert store.effective_outcome(row, now) == "interrupted"
    assert store.effective_outcome(dict(row, outcome="abandoned"), now) == "abandoned"


def test_a_killed_writer_is_seen_at_once(tmp_path):
    code = ("import sys, os; from kneeroll_device.store import SessionLog\n"
            "log = SessionLog(sys.argv[1]); sid = log.start_session(leg='left', routine='runners-knee', source='run', "
            "steps_total=8)\nlog.log_event(sid, 1.0, 'stroke'); log.flush(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=dict(os.environ))
    with reader(tmp_path) as db:
        row = store.session_rows(db)[0]
    assert row["outcome"] == "interrupted" and row["strokes"] == 1 and row["ended_at"] is not None


def test_heartbeats_are_written_while_a_session_is_open(tmp_path):
    with SessionLog(tmp_path, heartbeat_s=0.0) as log:
        sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
        db = sqlite3.connect(tmp_path / DB_NAME)
        before = db.execute("SELECT heartbeat_at FROM sessions WHERE id=?", (sid,)).fetchone()[0]
        log.log_event(sid, 1.0, "stroke")
        assert log.flush()
        after = db.execute("SELECT heartbeat_at FROM sessions WHERE id=?", (sid,)).fetchone()[0]
        assert after >= before and abs(after - time.time()) < 5


def test_calibrations_are_logged_in_and_out_of_sessions(tmp_path):
    store.record_calibration(tmp_path, "imu", {"gyro_bias_dps": [0.1, -0.2, 0.05]})
    with SessionLog(tmp_path) as log:
        sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        log.log_calibration("force", {"zero_offset": 8123}, session_id=sid, t=0.5)
        assert log.flush()
    with reader(tmp_path) as db:
        rows = [dict(r) for r in db.execute("SELECT sensor, session_id, detail FROM calibrations ORDER BY id")]
        assert [(r["sensor"], r["session_id"]) for r in rows] == [("imu", None), ("force", sid)]
        event = store.event_rows(db, sid, ("calibration",))[0]
        assert event["detail"] == {"zero_offset": 8123, "sensor": "force"} and event["t"] == 0.5


def test_sessions_today_counts_completed_sessions_not_demos(tmp_path):
    with SessionLog(tmp_path) as log:
        write_session(log)
        write_session(log, source="demo")
        write_session(log, outcome="abandoned")
        assert log.flush()
        assert log.sessions_today() == 1
        assert log.sessions_today(routine="other") == 0


def test_no_log_is_a_clear_error(tmp_path):
    # most often the wrong --data-dir: bad input (exit 2), with the fix in the message
    with pytest.raises(InputError, match="no session log.*--data-dir"):
        store.open_log(tmp_path / "missing")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="reads as root without its capabilities (setpriv): needs root")
def test_a_log_copied_without_its_wal_files_is_read_where_the_reader_cannot_write(tmp_path):
    """The reader can write nothing beside the log (a read-only mount, another user's
    folder): a WAL reader's -shm index cannot be made, and the log must still be read."""
    folder = tmp_path / "log"
    with SessionLog(folder) as log:
        sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        log.finish_session(sid, {"outcome": "completed", "steps": []}, 10.0)
        assert log.flush()
    assert not (folder / (DB_NAME + "-wal")).exists()  # a clean close leaves none
    # another user's folder, readable by all: root without its capabilities cannot write in it
    os.chown(folder, 65534, 65534)
    os.chmod(folder, 0o555)
    done = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m",
                           "kneeroll_device.cli", "history", "--json", "--data-dir", str(folder)],
                          capture_output=True, text=True, timeout=60)
    os.chmod(folder, 0o755)
    assert done.returncode == 0, done.stderr
    assert [s["id"] for s in json.loads(done.stdout)["sessions"]] == [sid]


def test_readers_find_the_services_log_when_the_user_has_none(tmp_path, monkeypatch):
    service = tmp_path / "var-lib-kneeroll"
    with SessionLog(service) as log:
        log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
    monkeypatch.setattr(store, "SERVICE_DATA_DIR", service)
    for variable in ("KNEEROLL_DATA_DIR", "STATE_DIRECTORY", "KNEEROLL_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home-share"))
    from kneeroll_device.config import load_config

    config = load_config(None)
    assert store.reading_data_dir(config) == service
    # the user's own log, or a data dir they chose, comes first
    assert store.reading_data_dir(config.replace(storage={"data_dir": str(tmp_path / "mine")})) == tmp_path / "mine"
    with SessionLog(tmp_path / "home-share" / "kneeroll") as own:
        assert own.flush()
    assert store.reading_data_dir(config) == tmp_path / "home-share" / "kneeroll"


def test_a_log_another_connection_holds_is_busy_and_a_damaged_one_is_not(tmp_path):
    path = tmp_path / store.DB_NAME
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        reader.execute("SELECT * FROM t").fetchall()
    reader.close()
    holder.close()
    assert store.busy(locked.value)
    assert not store.busy(StoreError("cannot open the session log", "check --data-dir"))  # no SQLite cause
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError) as unreadable:
        store.connect(damaged, readonly=True)
    assert not store.busy(unreadable.value)
