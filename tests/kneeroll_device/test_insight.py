"""history, show, export, plot and report over a small log with known contents."""

from __future__ import annotations

import builtins
import contextlib
import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
import time
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kneeroll_device import insight, store
from kneeroll_device.cli import main
from kneeroll_device.store import DB_NAME, SessionLog

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-log.md"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str):
    code, out, err = run(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def summary(position: int, name: str, kind: str, *, strokes=0, reps=0, points=0, active_s=0.0, completed=True,
            skipped=False, mean_kpa=20.0, peak_kpa=26.0, limit=60.0, warnings=0, started=0.0, ended=20.0):
    targets = {"pressure_limit_kpa": limit}
    targets |= {"roll_seconds_min": 15, "roll_seconds_max": 20} if kind == "roll" else \
        {"reps_per_point_min": 5, "reps_per_point_max": 10, "points": 2}
    return {"index": position, "step_index": position, "id": name.lower().replace(" ", "-"), "name": name, "kind": kind,
            "leg": "right", "completed": completed, "skipped": skipped, "started": started, "ended": ended,
            "active_s": active_s, "strokes": strokes, "reps": reps, "points": points, "repositions": 0,
            "mean_kpa": mean_kpa, "peak_kpa": peak_kpa, "mean_force_n": 90.0, "peak_force_n": 130.0,
            "time_over_limit_s": 1.5 if warnings else 0.0, "warnings": warnings, "pressure_limit_kpa": limit,
            "targets": targets}


def log_session(log: SessionLog, *, outcome="completed", source="run", finish=True, kpa=20.0, warn=False) -> int:
    """Two steps: a roll of 6 strokes and a release of 7 reps, with per-second pressure."""
    sid = log.start_session(leg="right", routine="runners-knee", source=source, steps_total=2)
    for k in range(6):
        log.log_event(sid, 3.0 + 2.5 * k, "stroke", step=1, duration_s=2.0, force_n=95.0, value=18.0)
    for k in range(7):
        log.log_event(sid, 25.0 + 3.0 * k, "rep", step=2, duration_s=2.0, force_n=150.0, value=45.0)
    if warn:
        log.log_event(sid, 30.0, "warning", step=2, value=64.0, detail={"kpa": 64.0, "limit_kpa": 60.0})
    log.log_event(sid, 26.0, "gap", detail={"source": "imu", "samples_lost": 12, "reason": "FIFO overflow"})
    for t in range(50):
        log.log_pressure(sid, t, kpa if 2 <= t <= 47 else 0.1, kpa * 1.2, kpa * 4.5, kpa * 5.5)
    steps = [summary(1, "Mid-thigh roll", "roll", strokes=6, active_s=17.0, mean_kpa=kpa, started=2.0, ended=20.0),
             summary(2, "Mid-thigh trigger points", "release", reps=7, points=2, mean_kpa=kpa + 2,
                     warnings=int(warn), started=22.0, ended=48.0)]
    for s in steps:
        log.save_step(sid, s, 0.0)
    if finish:
        log.finish_session(sid, {"outcome": outcome, "steps": steps}, 49.0)
    return sid


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def data_dir(tmp_path):
    """Sessions over four days: today 1 (and a demo, and an abandoned one), yesterday 2, 2 days ago 2, 3 days ago 1."""
    today = datetime.now(timezone.utc).replace(hour=7, minute=0, second=0, microsecond=0)
    plan = [(3, "completed", "run"), (2, "completed", "run"), (2, "completed", "run"), (1, "completed", "run"),
            (1, "completed", "run"), (0, "completed", "demo"), (0, "abandoned", "run"), (0, "completed", "run")]
    with SessionLog(tmp_path) as log:
        ids = [log_session(log, outcome=outcome, source=source, warn=(i == 7), kpa=18.0 + i)
               for i, (_, outcome, source) in enumerate(plan)]
        assert log.flush()
    db = sqlite3.connect(tmp_path / DB_NAME)
    with db:
        for i, (sid, (back, _, _)) in enumerate(zip(ids, plan)):
            start = today - timedelta(days=back) + timedelta(minutes=30 * i)
            db.execute("UPDATE sessions SET started_at=? WHERE id=?", (start.isoformat(timespec="seconds"), sid))
    db.close()
    return tmp_path


def test_programme_progress_counts_today_and_the_streak():
    d = date(2026, 3, 10)
    counts = {d: 1, d - timedelta(1): 2, d - timedelta(2): 3, d - timedelta(3): 1, d - timedelta(4): 2}
    p = insight.programme_progress(counts, d, 2, 7)
    assert (p["sessions_today"], p["streak_days"], p["programme_done"]) == (1, 2, False)  # today still under way
    counts[d] = 2
    assert insight.programme_progress(counts, d, 2, 7)["streak_days"] == 3
    assert insight.programme_progress({}, d, 2, 7)["streak_days"] == 0
    week = {d - timedelta(i): 2 for i in range(8)}
    assert insight.programme_progress(week, d, 2, 7)["programme_done"]


def test_history_lists_sessions_and_the_progress(data_dir):
    doc = run_json("history", "--data-dir", str(data_dir))
    sessions = doc["sessions"]
    assert len(sessions) == 8
    assert set(sessions[0]) == {"id", "started_at", "ended_at", "leg", "routine", "source", "outcome", "steps_done",
                                "steps_total", "duration_s", "strokes", "reps", "mean_kpa", "peak_kpa", "recording",
                                "date", "time"}
    first = sessions[0]
    assert (first["strokes"], first["reps"], first["steps_done"], first["duration_s"]) == (6, 7, 2, 49.0)
    assert first["mean_kpa"] == 19.0 and first["peak_kpa"] == 26.0
    progress = doc["progress"]
    assert {k: progress[k] for k in ("sessions_today", "sessions_per_day", "streak_days", "programme_days")} == \
        {"sessions_today": 1, "sessions_per_day": 2, "streak_days": 2, "programme_days": 7}
    assert run_json("history", "--include-demo", "--data-dir", str(data_dir))["progress"]["sessions_today"] == 2

    today_only = run_json("history", "--days", "1", "--data-dir", str(data_dir))["sessions"]
    assert [s["source"] for s in today_only] == ["demo", "run", "run"]

    code, out, _ = run("history", "--data-dir", str(data_dir))
    assert code == 0
    assert "abandoned" in out and "today: 1 of 2 sessions done; streak: 2 days" in out
    assert run("history", "--days", "0", "--data-dir", str(data_dir))[0] == 2


def test_an_in_progress_session_whose_writer_died_reads_as_interrupted(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with SessionLog(tmp_path) as log:
        live = log_session(log, finish=False)
        dead = log_session(log, finish=False)
        assert log.flush()
        db = sqlite3.connect(tmp_path / DB_NAME)
        with db:
            db.execute("UPDATE sessions SET writer=? WHERE id=?", (store.writer_tag(child.pid), dead))
        db.close()
        shown = {s["id"]: s for s in run_json("history", "--data-dir", str(tmp_path))["sessions"]}
        assert shown[live]["outcome"] == "in_progress" and shown[live]["ended_at"] is None
        assert shown[dead]["outcome"] == "interrupted"
        assert (shown[dead]["strokes"], shown[dead]["reps"], shown[dead]["steps_done"]) == (6, 7, 2)
        assert shown[dead]["duration_s"] == 49.0 and shown[dead]["ended_at"] is not None
        assert run_json("show", str(dead), "--data-dir", str(tmp_path))["session"]["outcome"] == "interrupted"
        log.finish_session(live, {"outcome": "completed", "steps": []}, 49.0)


def test_show_puts_each_target_against_what_was_achieved(data_dir):
    doc = run_json("show", "last", "--data-dir", str(data_dir))
    assert set(doc) == {"session", "steps", "event_counts", "warnings", "faults", "other_events"}
    assert doc["session"]["id"] == 8 and doc["session"]["meta"] == {}
    roll, release = doc["steps"]
    assert (roll["state"], roll["target"], roll["achieved"]) == ("done", "15-20 s rolling", "17 s, 6 strokes")
    assert release["target"] == "5-10 reps x 2 points" and release["achieved"] == "7 reps at 2 points"
    assert release["warning_events"] == [{"t": 30.0, "step": 2, "kpa": 64.0, "limit_kpa": 60.0}]
    assert release["targets"]["reps_per_point_min"] == 5 and release["pressure_limit_kpa"] == 60.0
    assert doc["event_counts"] == {"gap": 1, "rep": 7, "stroke": 6, "warning": 1}
    assert doc["faults"][0]["kind"] == "gap" and doc["faults"][0]["detail"]["samples_lost"] == 12

    code, out, _ = run("show", "last", "--data-dir", str(data_dir))
    assert code == 0
    assert "Mid-thigh trigger points" in out and "64 kPa (limit 60)" in out and "samples_lost 12" in out
    assert run_json("show", "1", "--data-dir", str(data_dir))["session"]["id"] == 1
    assert run("show", "LAST", "--data-dir", str(data_dir))[0] == 0


def test_show_last_on_an_empty_log_is_bad_input_not_a_failure(tmp_path):
    with SessionLog(tmp_path) as log:
        assert log.flush()
    code, _, err = run("show", "last", "--data-dir", str(tmp_path))
    assert code == 2 and "no sessions yet" in err and "kneeroll demo" in err


@pytest.mark.parametrize("argv, message, fix", [
    (["show", "99"], "there is no session 99", "kneeroll history"),
    (["show", "first"], "not a number", "or last"),
    (["export", "--since", "yesterday", "--out", "x"], "not a date", "YYYY-MM-DD"),
])
def test_bad_input_is_exit_2_with_the_fix(data_dir, argv, message, fix):
    code, _, err = run(*argv, "--data-dir", str(data_dir))
    assert code == 2 and message in err and fix in err


def test_no_log_is_bad_input_naming_the_data_dir(tmp_path):
    code, _, err = run("history", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "no session log" in err and "--data-dir" in err


def documented_columns(title: str) -> list[str]:
    """The column names of one table of docs/session-log.md, from its first column."""
    text = DOC.read_text()
    section = text.split(f"### {title}", 1)[1].split("\n### ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([a-z_]+)`", line.split("|")[1])
    return names


@pytest.mark.parametrize("table", ["sessions", "steps", "events", "pressure", "calibrations"])
def test_the_export_has_the_documented_columns(data_dir, tmp_path, table):
    out = tmp_path / "export"
    store.record_calibration(data_dir, "imu", {"gyro_bias_dps": [0.1, 0.0, -0.1]})
    assert run("export", "--pressure", "--out", str(out), "--data-dir", str(data_dir))[0] == 0
    with open(out / f"{table}.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == documented_columns(f"{table}.csv")
    doc = json.loads(Path(run("export", "--pressure", "--format", "json", "--out", str(tmp_path / "e.json"),
                              "--data-dir", str(data_dir))[0] == 0 and tmp_path / "e.json").read_text())
    assert list(doc[table][0]) == header


def test_export_csv_folder_zip_and_json_agree(data_dir, tmp_path):
    folder = run_json("export", "--out", str(tmp_path / "f"), "--data-dir", str(data_dir))
    assert folder["rows"] == {"sessions": 8, "steps": 16, "events": 8 * 14 + 1, "calibrations": 0}
    assert folder["layout"] == "folder" and len(folder["files"]) == 4
    zipped = run_json("export", "--out", str(tmp_path / "all.zip"), "--data-dir", str(data_dir))
    assert zipped["rows"] == folder["rows"] and zipped["layout"] == "zip"
    with zipfile.ZipFile(tmp_path / "all.zip") as zf:
        assert sorted(zf.namelist()) == ["calibrations.csv", "events.csv", "sessions.csv", "steps.csv"]
        events = list(csv.DictReader(io.TextIOWrapper(zf.open("events.csv"), encoding="utf-8")))
    as_json = run_json("export", "--format", "json", "--out", str(tmp_path / "all.json"), "--data-dir", str(data_dir))
    doc = json.loads((tmp_path / "all.json").read_text())
    assert as_json["rows"] == folder["rows"] and doc["format"] == "kneeroll-export"
    assert len(doc["events"]) == len(events)
    warning = next(e for e in doc["events"] if e["kind"] == "warning")
    assert warning["detail"] == {"kpa": 64.0, "limit_kpa": 60.0} and warning["value_unit"] == "kPa"
    csv_warning = next(e for e in events if e["kind"] == "warning")
    assert json.loads(csv_warning["detail"]) == warning["detail"] and float(csv_warning["value"]) == 64.0
    stroke = next(e for e in events if e["kind"] == "stroke")
    assert (stroke["value_unit"], float(stroke["force_n"]), stroke["step"]) == ("cm", 95.0, "1")
    steps = {(s["session_id"], s["position"]): s for s in doc["steps"]}
    assert steps[(1, 2)]["state"] == "done" and steps[(1, 2)]["target_points"] == 2
    assert steps[(1, 1)]["target_roll_s_max"] == 20 and steps[(1, 1)]["target_points"] is None


def test_export_since_keeps_the_later_sessions(data_dir, tmp_path):
    since = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    doc = run_json("export", "--since", since, "--out", str(tmp_path / "recent"), "--data-dir", str(data_dir))
    assert doc["rows"]["sessions"] == 5 and doc["rows"]["steps"] == 10
    with open(tmp_path / "recent" / "events.csv") as fh:
        assert {r["session_id"] for r in csv.DictReader(fh)} == {"4", "5", "6", "7", "8"}


def test_a_csv_export_onto_a_file_is_refused(data_dir, tmp_path):
    (tmp_path / "taken").write_text("x")
    code, _, err = run("export", "--out", str(tmp_path / "taken"), "--data-dir", str(data_dir))
    assert code == 2 and "is a file" in err


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_draws_a_session(data_dir, tmp_path):
    out = tmp_path / "session.png"
    doc = run_json("plot", "last", "--out", str(out), "--data-dir", str(data_dir))
    assert doc == {"out": str(out), "session_id": 8, "steps": 2, "strokes": 6, "reps": 7, "pressure_seconds": 50}
    assert is_png(out)


def test_report_draws_adherence_and_trends(data_dir, tmp_path):
    out = tmp_path / "report.png"
    doc = run_json("report", "--days", "7", "--out", str(out), "--data-dir", str(data_dir))
    assert is_png(out)
    assert doc["days"] == 7 and doc["sessions_per_day"] == 2 and doc["days_meeting_target"] == 2
    assert [d["sessions"] for d in doc["adherence"]] == [0, 0, 0, 1, 2, 2, 1]
    assert [t["name"] for t in doc["trends"]] == ["Mid-thigh roll", "Mid-thigh trigger points"]
    release = doc["trends"][1]
    assert sum(p["sessions"] for p in release["points"]) == 7  # the demo not counted; the abandoned one is
    assert all(p["reps"] == 7 for p in release["points"])
    year = tmp_path / "year.png"
    assert run("report", "--days", "365", "--out", str(year), "--data-dir", str(data_dir))[0] == 0 and is_png(year)


def test_weekly_points_of_the_current_week_stay_on_the_chart():
    from kneeroll_device.plots import _weekly

    first, today = date(2026, 1, 1), date(2026, 4, 2)  # the last week holds one day only
    points = [{"date": "2026-04-02", "sessions": 2, "mean_kpa": 20.0, "reps": 7, "strokes": 0, "active_s": 10.0},
              {"date": "2026-01-02", "sessions": 1, "mean_kpa": 10.0, "reps": 5, "strokes": 0, "active_s": 5.0}]
    weekly = _weekly(points, first, today)
    assert [p["date"] for p in weekly] == ["2026-01-04", "2026-04-02"]  # mid-week, and today at most


def test_a_report_of_demo_sessions_only_hints_at_include_demo(tmp_path):
    with SessionLog(tmp_path) as log:
        log_session(log, outcome="completed", source="demo")
        assert log.flush()
    code, _, err = run("report", "--out", str(tmp_path / "r.png"), "--data-dir", str(tmp_path))
    assert code == 0 and "--include-demo" in err and "1 demo session:" in err


def test_history_says_when_today_is_over_the_target(tmp_path):
    with SessionLog(tmp_path) as log:
        for _ in range(3):
            log_session(log, outcome="completed", source="run")
        assert log.flush()
    code, out, _ = run("history", "--data-dir", str(tmp_path))
    assert code == 0 and "today: 3 sessions done, over the target of 2;" in out


def test_plots_want_an_image_name(data_dir, tmp_path):
    code, _, err = run("plot", "last", "--out", str(tmp_path / "plot.txt"), "--data-dir", str(data_dir))
    assert code == 2 and ".png" in err
    code, _, err = run("report", "--out", str(tmp_path / "no" / "such" / "r.png"), "--data-dir", str(data_dir))
    assert code == 2 and "does not exist" in err


def test_without_matplotlib_plots_say_how_to_install_it(data_dir, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for argv in (["plot", "last"], ["report"]):
        code, _, err = run(*argv, "--out", str(tmp_path / "x.png"), "--data-dir", str(data_dir))
        assert code == 1 and "pip install 'kneeroll[plot]'" in err
    assert not (tmp_path / "x.png").exists()
    # and the other commands do not need it
    assert run("history", "--data-dir", str(data_dir))[0] == 0


def test_a_csv_export_named_like_one_csv_file_is_refused(data_dir, tmp_path):
    code, _, err = run("export", "--out", str(tmp_path / "something.csv"), "--data-dir", str(data_dir))
    assert code == 2 and "several tables" in err and not (tmp_path / "something.csv").exists()


@pytest.mark.parametrize("fmt, name", [("json", "e.json"), ("csv", "folder"), ("csv", "all.zip")])
def test_an_export_replaces_what_is_there_only_when_forced(data_dir, tmp_path, fmt, name):
    out = tmp_path / "new" / "parents" / name  # parents are created
    assert run("export", "--format", fmt, "--pressure", "--out", str(out), "--data-dir", str(data_dir))[0] == 0
    code, _, err = run("export", "--format", fmt, "--out", str(out), "--data-dir", str(data_dir))
    assert code == 2 and "already exists" in err and "--force" in err
    assert run("export", "--format", fmt, "--out", str(out), "--force", "--data-dir", str(data_dir))[0] == 0
    if name == "folder":  # replaced as a whole: the first export's pressure table is gone
        assert sorted(p.name for p in out.iterdir()) == ["calibrations.csv", "events.csv", "sessions.csv", "steps.csv"]
    assert sorted(p.name for p in out.parent.iterdir()) == [name]  # nothing left beside it


def test_an_export_to_standard_output(data_dir):
    code, out, err = run("export", "--format", "json", "--out", "-", "--data-dir", str(data_dir))
    assert code == 0 and json.loads(out)["format"] == "kneeroll-export" and "wrote -" in err
    buffer = io.BytesIO()
    with contextlib.redirect_stdout(io.TextIOWrapper(buffer, encoding="utf-8")) as wrapper:
        assert main(["export", "--out", "-", "--data-dir", str(data_dir)]) == 0
        wrapper.flush()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zf:
        assert "steps.csv" in zf.namelist()


def test_a_full_disk_leaves_the_old_export_and_nothing_half_written(data_dir, tmp_path, monkeypatch):
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "e.json"
    out.write_text("the export from before")
    real_open = builtins.open

    def full_disk(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith(".partial"):
            handle.write = lambda _: (_ for _ in ()).throw(OSError(28, "No space left on device"))
        return handle

    monkeypatch.setattr(builtins, "open", full_disk)
    code, _, err = run("export", "--format", "json", "--out", str(out), "--force", "--data-dir", str(data_dir))
    assert code == 1 and "No space left" in err and "Traceback" not in err
    assert out.read_text() == "the export from before"
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.json"]


def test_a_step_id_with_a_comma_keeps_its_columns(tmp_path):
    with SessionLog(tmp_path) as log:
        sid = log.start_session(leg="right", routine="mine", source="run", steps_total=1)
        step = summary(1, "Roll, gently", "roll", strokes=3, active_s=10.0)
        step["id"] = "a,roll"
        log.save_step(sid, step, 0.0)
        log.finish_session(sid, {"outcome": "completed", "steps": [step]}, 20.0)
    assert run("export", "--out", str(tmp_path / "x"), "--data-dir", str(tmp_path))[0] == 0
    with open(tmp_path / "x" / "steps.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["step_id"] == "a,roll" and rows[0]["name"] == "Roll, gently" and rows[0]["strokes"] == "3"


def test_a_plot_on_a_full_disk_is_a_clean_error_and_leaves_no_file(data_dir, tmp_path, monkeypatch):
    import os

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    out = tmp_path / "plots" / "last.png"
    out.parent.mkdir()
    code, _, err = run("plot", "last", "--out", str(out), "--data-dir", str(data_dir))
    assert code == 1 and "No space left" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []
