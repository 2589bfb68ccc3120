"""kill -9 of a running daemon at many moments: the log stays whole and says what happened.

Each round runs the demo (the production daemon on emulated hardware, 40x
faster than life) in a subprocess on one data directory, kills it with SIGKILL
at a different moment, and checks: the database passes integrity_check; every
earlier session is exactly as it was; the killed session reads as interrupted
at once; its last commit is within about a second of the kill, and what is
there is a prefix of what was logged (every step row's strokes and reps have
their events). Then, in process, as a restarted daemon would, the killed
session's raw samples become its recording and a short session is written,
which marks the killed one interrupted for good. Last, a killed session's
recording, made whole at the next start of the demo, holds every sample the
killed process had written.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kneeroll_device import store
from kneeroll_device.cli import main
from kneeroll_device.recording import read_recording
from kneeroll_device.spool import IMU_FILE, SPOOL_PREFIX
from kneeroll_device.spool_recovery import recover_spools, whole_members_end
from kneeroll_device.store import DB_NAME, SessionLog

SPEED = 40
# seconds after the killed session's first row is visible (None: during start-up, before any session)
KILL_AFTER = [None, 0.0, 0.45, 1.3, 2.6, 4.1, 5.7]
LOSS_S = 1.0  # at most this much (wall clock) of logging may be lost
SLACK_S = 0.5  # scheduling on a busy test machine

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def write_session(log: SessionLog) -> int:
    """A short finished session of one step, as a restarted daemon would log it."""
    sid = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=1)
    for k in range(5):
        log.log_event(sid, 2.0 + 3 * k, "stroke", step=1, duration_s=1.5, force_n=95.0, value=18.0)
    for second in range(20):
        log.log_pressure(sid, second, 20.0, 24.0, 90.0, 110.0)
    step = {"index": 1, "step_index": 1, "id": "mid-thigh-roll", "name": "Mid-thigh roll", "kind": "roll",
            "leg": "right", "completed": True, "skipped": False, "started": 0.0, "ended": 19.0, "active_s": 18.0,
            "strokes": 5, "reps": 0, "points": 0, "mean_kpa": 20.0, "peak_kpa": 24.0, "mean_force_n": 90.0,
            "peak_force_n": 110.0, "time_over_limit_s": 0.0, "warnings": 0, "pressure_limit_kpa": 60.0,
            "targets": {"pressure_limit_kpa": 60.0, "roll_seconds_min": 15, "roll_seconds_max": 20}}
    log.save_step(sid, step, 0.0)
    log.finish_session(sid, {"outcome": "completed", "steps": [step]}, 20.0)
    return sid


def snapshot(path: Path) -> dict:
    """Every row of every session, by session id."""
    db = sqlite3.connect(path / DB_NAME)
    try:
        out = {}
        for (sid,) in db.execute("SELECT id FROM sessions ORDER BY id").fetchall():
            out[sid] = {
                table: db.execute(f"SELECT * FROM {table} WHERE {key}=? ORDER BY 1, 2, 3", (sid,)).fetchall()
                for table, key in (("sessions", "id"), ("steps", "session_id"), ("events", "session_id"),
                                   ("pressure", "session_id"))
            }
        return out
    finally:
        db.close()


def session_ids(path: Path) -> set[int]:
    if not (path / DB_NAME).exists():
        return set()
    try:
        db = store.connect(path / DB_NAME, readonly=True)
    except store.StoreError:
        return set()
    try:
        return {r[0] for r in db.execute("SELECT id FROM sessions")}
    except sqlite3.Error:  # tables not there yet
        return set()
    finally:
        db.close()


def history(path: Path) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["history", "--json", "--data-dir", str(path)]) == 0
    return json.loads(out.getvalue())["sessions"]


def start_demo(path: Path, seed: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, "-m", "kneeroll_device.cli", "demo", "--speed", str(SPEED), "--json",
                             "--data-dir", str(path), "--seed", str(seed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def wait_for_new_session(path: Path, known: set[int], proc: subprocess.Popen, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = session_ids(path) - known
        if new:
            return max(new)
        assert proc.poll() is None, "the demo ended before its session appeared"
        time.sleep(0.01)  # polling another process's database: nothing to wait on in this one
    raise AssertionError("no session appeared in the log")


def test_kill_minus_nine_at_many_moments_loses_at_most_the_last_second(tmp_path):
    known: dict[int, dict] = {}
    killed_sessions = []
    recordings_recovered = 0
    for round_, delay in enumerate(KILL_AFTER, start=1):
        proc = start_demo(tmp_path, seed=round_)
        try:
            if delay is None:
                time.sleep(0.3)  # somewhere in start-up: imports, opening the log, migrating
                killed = None
            else:
                killed = wait_for_new_session(tmp_path, set(known), proc)
                time.sleep(delay)
            assert proc.poll() is None, "the demo finished before the kill"
            kill_time = time.time()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()

        if (tmp_path / DB_NAME).exists():
            db = sqlite3.connect(tmp_path / DB_NAME)
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            db.close()
        now = snapshot(tmp_path) if (tmp_path / DB_NAME).exists() else {}
        for sid, rows in known.items():
            assert now[sid] == rows, f"round {round_}: session {sid}, written before the kill, changed"

        if killed is not None:
            killed_sessions.append(killed)
            shown = {s["id"]: s for s in history(tmp_path)}
            assert shown[killed]["outcome"] == "interrupted"  # at once: its writer is gone
            db = sqlite3.connect(tmp_path / DB_NAME)
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM sessions WHERE id=?", (killed,)).fetchone()
            assert kill_time - row["heartbeat_at"] <= LOSS_S + SLACK_S, \
                f"round {round_}: last commit {kill_time - row['heartbeat_at']:.2f} s before the kill"
            if delay >= 1.0:  # by then the demo is well into the routine
                assert db.execute("SELECT COUNT(*) FROM events WHERE session_id=? AND kind='stroke'",
                                  (killed,)).fetchone()[0] > 0
                assert db.execute("SELECT COUNT(*) FROM pressure WHERE session_id=?", (killed,)).fetchone()[0] > 0
            for step in db.execute("SELECT * FROM steps WHERE session_id=?", (killed,)).fetchall():
                for kind, count in (("stroke", step["strokes"]), ("rep", step["reps"])):
                    logged = db.execute("SELECT COUNT(*) FROM events WHERE session_id=? AND step=? AND kind=?",
                                        (killed, step["position"], kind)).fetchone()[0]
                    assert logged >= count, f"round {round_}: step {step['position']} row without its {kind}s"
            db.close()

        # the daemon restarts: the killed session's raw samples become its recording, a short
        # session is logged, and the killed one is interrupted for good
        with SessionLog(tmp_path) as log:
            assert log.salvaged == ([killed] if killed is not None else [])
            recovered = recover_spools(tmp_path / "recordings", log.path, log.set_recording)
            short = write_session(log)
            assert log.flush()
        assert all(r.session_id == killed and len(read_recording(r.path).imu_t) for r in recovered)
        recordings_recovered += len(recovered)
        assert not list((tmp_path / "recordings").glob(".*")), "a spool was left behind"
        after = {s["id"]: s for s in history(tmp_path)}
        assert after[short]["outcome"] == "completed"
        if killed is not None:
            assert after[killed]["outcome"] == "interrupted" and after[killed]["ended_at"] is not None
            db = sqlite3.connect(tmp_path / DB_NAME)
            strokes = db.execute("SELECT COUNT(*) FROM events WHERE session_id=? AND kind='stroke'", (killed,)).fetchone()[0]
            db.close()
            assert after[killed]["strokes"] == strokes
        known = snapshot(tmp_path)

    assert len(killed_sessions) >= 5
    # a spool is written to every 5 s at most (sooner at the demo's speed): the late kills have one
    assert recordings_recovered >= 1
    outcomes = {s["id"]: s["outcome"] for s in history(tmp_path)}
    assert all(outcomes[k] == "interrupted" for k in killed_sessions)
    assert sum(1 for o in outcomes.values() if o == "completed") == len(KILL_AFTER)


# --- the raw samples of a killed session --------------------------------------------------------


def wait_for_a_whole_write(recordings: Path, proc: subprocess.Popen, timeout: float = 30.0) -> Path:
    """The killed session's spool, once its IMU file holds at least one whole gzip member."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for spool in recordings.glob(f"{SPOOL_PREFIX}*"):
            with contextlib.suppress(OSError):
                if whole_members_end(spool / IMU_FILE) > 0:
                    return spool
        assert proc.poll() is None, "the demo ended before its recording was written to"
        time.sleep(0.01)  # another process's files: nothing to wait on in this one
    raise AssertionError("the demo's recording was never written to while it ran")


def whole_imu_lines(spool: Path) -> list[str]:
    """The IMU lines of the spool's whole gzip members: what a crash cannot take back."""
    data = (spool / IMU_FILE).read_bytes()
    return gzip.decompress(data[:whole_members_end(spool / IMU_FILE)]).decode().splitlines()


def test_a_session_killed_with_sigkill_keeps_its_raw_samples_as_its_recording(tmp_path):
    proc = start_demo(tmp_path, seed=1)
    try:
        killed = wait_for_new_session(tmp_path, set(), proc)
        wait_for_a_whole_write(tmp_path / "recordings", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    (spool,) = (tmp_path / "recordings").glob(f"{SPOOL_PREFIX}*")
    left = whole_imu_lines(spool)

    # the daemon starts again: the spool becomes the killed session's recording
    again = subprocess.run([sys.executable, "-m", "kneeroll_device.cli", "demo", "--speed", str(SPEED), "--json",
                            "--data-dir", str(tmp_path), "--seed", "2"], capture_output=True, text=True, timeout=240,
                           env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert again.returncode == 0, again.stderr
    shown = {s["id"]: s for s in history(tmp_path)}
    recording = tmp_path / "recordings" / f"session-{killed:05d}"
    # (what the recordings folder holds and what the daemon said, should the recovery not have linked it)
    assert shown[killed]["outcome"] == "interrupted" and shown[killed]["recording"] == str(recording), (
        sorted(p.name for p in (tmp_path / "recordings").iterdir()), again.stderr[-2000:])
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == [
        f"session-{killed:05d}", f"session-{json.loads(again.stdout)['session_id']:05d}"]

    rec = read_recording(recording)
    assert len(rec.imu_t) == len(left) - 1  # every whole write, the header aside
    assert f"{rec.imu_t[-1]:.4f}" == left[-1].split(",")[0]
    assert rec.meta["outcome"] == "interrupted" and rec.meta["session_id"] == killed
    assert "crash" in rec.cut_short["reason"] and rec.cut_short["at_s"] >= rec.imu_t[-1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["replay", str(recording), "--json"]) == 0
    assert json.loads(out.getvalue())["cut_short"] == rec.cut_short
