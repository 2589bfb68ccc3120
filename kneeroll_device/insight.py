"""Insight into the session log: history, one session in detail, export, plots and a report.

Every command reads the log read-only, so it works while the daemon writes. A
session still marked in progress whose writer is gone (killed, crashed, the
power cut) shows as interrupted, with what reached the log.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import sqlite3
import sys
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from .cliutil import PROG, add_common_options, fmt, json_out, load_for, whole_in
from .errors import InputError, KneerollError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
DEFAULT_REPORT_DAYS = 28

# --- the export's columns (docs/session-log.md describes each) --------------------------------

SESSION_EXPORT = ("session_id", "date", "time", "started_at", "ended_at", "leg", "routine", "source", "outcome",
                  "steps_done", "steps_total", "duration_s", "strokes", "reps", "mean_kpa", "peak_kpa", "recording")
STEP_EXPORT_SQL = {
    "session_id": "session_id", "position": "position", "step_index": "step_index", "step_id": "step_id",
    "name": "name", "kind": "kind", "leg": "leg",
    "state": "CASE WHEN completed THEN 'done' WHEN skipped THEN 'skipped' ELSE 'not_done' END",
    "started_s": "started_s", "ended_s": "ended_s", "active_s": "active_s", "strokes": "strokes", "reps": "reps",
    "points": "points", "mean_kpa": "mean_kpa", "peak_kpa": "peak_kpa", "mean_force_n": "mean_force_n",
    "peak_force_n": "peak_force_n", "pressure_limit_kpa": "pressure_limit_kpa", "time_over_limit_s": "time_over_limit_s",
    "warnings": "warnings",
    "target_roll_s_min": "json_extract(targets, '$.roll_seconds_min')",
    "target_roll_s_max": "json_extract(targets, '$.roll_seconds_max')",
    "target_reps_per_point_min": "json_extract(targets, '$.reps_per_point_min')",
    "target_reps_per_point_max": "json_extract(targets, '$.reps_per_point_max')",
    "target_points": "json_extract(targets, '$.points')",
}
STEP_EXPORT = tuple(STEP_EXPORT_SQL)
EVENT_UNITS = {"stroke": "cm", "rep": "N", "warning": "kPa"}
PRESSURE_EXPORT = ("session_id", "t", "mean_kpa", "peak_kpa", "mean_force_n", "peak_force_n")


# --- shared helpers ---------------------------------------------------------------------------


def programme_of(config):
    """(routine id, sessions a day, programme days) of the configured routine; the defaults if it cannot be read."""
    from .routine.spec import load_routine

    try:
        routine = load_routine(config.routine.file)
    except KneerollError:
        return None, 2, 7
    return routine.id, routine.sessions_per_day, routine.programme_days


def programme_progress(counts: dict[date, int], today: date, per_day: int, programme_days: int) -> dict:
    """Sessions today and the streak: consecutive days, up to today, with ``per_day`` completed sessions.

    A day still under way does not break the streak: until today is complete
    the streak counts back from yesterday.
    """
    sessions_today = counts.get(today, 0)
    day = today if sessions_today >= per_day else today - timedelta(days=1)
    streak = 0
    while counts.get(day, 0) >= per_day:
        streak += 1
        day -= timedelta(days=1)
    return {"today": today.isoformat(), "sessions_today": sessions_today, "sessions_per_day": per_day,
            "streak_days": streak, "programme_days": programme_days, "programme_done": streak >= programme_days}


def duration_text(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _plot_out(path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"cannot tell the image format of {path}", "give --out a name ending in .png, .svg or .pdf")
    if not path.parent.exists():
        raise InputError(f"the folder {path.parent} does not exist", "create it, or choose another --out")
    return path


def _open(config):
    from .store import open_log, reading_data_dir

    return open_log(reading_data_dir(config))


# --- history ------------------------------------------------------------------------------------


def history_document(db: sqlite3.Connection, *, days: int | None, routine: str | None, per_day: int, programme_days: int,
                     include_demo: bool = False, now: datetime | None = None, tz: tzinfo | None = None) -> dict:
    from .store import completed_days, session_rows

    now = now or datetime.now(timezone.utc)
    rows = session_rows(db, now=now.timestamp(), tz=tz) if days is None else _rows_for_days(db, days, now, tz)
    counts = completed_days(db, routine=routine, tz=tz, include_demo=include_demo)
    progress = programme_progress(counts, now.astimezone(tz).date(), per_day, programme_days)
    progress["routine"] = routine
    progress["counts_demo"] = include_demo
    return {"sessions": rows, "progress": progress}


def _rows_for_days(db, days: int, now: datetime, tz) -> list[dict]:
    from .store import local_midnight_utc, session_rows

    first = now.astimezone(tz).date() - timedelta(days=days - 1)
    return session_rows(db, since=local_midnight_utc(first, tz), now=now.timestamp(), tz=tz)


def cmd_history(args) -> int:
    config = load_for(args)
    routine, per_day, programme_days = programme_of(config)
    with _open(config) as db:
        document = history_document(db, days=args.days, routine=routine, per_day=per_day,
                                    programme_days=programme_days, include_demo=args.include_demo)
    if args.json:
        json_out(document)
        return 0
    rows = document["sessions"]
    if not rows:
        print("no sessions yet" if args.days is None else f"no sessions in the last {args.days} days")
    else:
        print(f"{'id':>5}  {'date':<10} {'time':<5}  {'leg':<5}  {'source':<6}  {'outcome':<11} {'steps':>5} "
              f"{'length':>6} {'strokes':>7} {'reps':>5}  {'kPa mean/peak':>13}")
        for r in rows:
            kpa = f"{fmt(r['mean_kpa'])}/{fmt(r['peak_kpa'])}"
            print(f"{r['id']:>5}  {r['date']:<10} {r['time']:<5}  {r['leg']:<5}  {r['source']:<6}  "
                  f"{r['outcome'].replace('_', ' '):<11} {r['steps_done']:>2}/{r['steps_total']:<2} "
                  f"{duration_text(r['duration_s']):>6} {r['strokes']:>7} {r['reps']:>5}  {kpa:>13}")
    p = document["progress"]
    print(f"today: {_today_text(p)}; streak: {p['streak_days']} "
          f"day{'s' if p['streak_days'] != 1 else ''} with {p['sessions_per_day']} (programme: {p['programme_days']} days"
          f"{', reached' if p['programme_done'] else ''})" + ("" if args.include_demo else "; demo sessions not counted"))
    return 0


def _today_text(progress: dict) -> str:
    done, target = progress["sessions_today"], progress["sessions_per_day"]
    if done > target:
        return f"{done} sessions done, over the target of {target}"
    return f"{done} of {target} sessions done"


# --- show -------------------------------------------------------------------------------------------


def target_text(s: dict) -> str:
    t = s["targets"]
    parts = []
    if "roll_seconds_min" in t and (s["kind"] == "roll" or t.get("roll_seconds_min")):
        parts.append(f"{t['roll_seconds_min']:g}-{t['roll_seconds_max']:g} s rolling")
    if "reps_per_point_min" in t:
        points = t.get("points", 1)
        parts.append(f"{t['reps_per_point_min']:g}-{t['reps_per_point_max']:g} reps" + (f" x {points} points" if points > 1 else ""))
    return ", ".join(parts) or "-"


def _achieved_text(s: dict) -> str:
    if s["kind"] == "roll":
        return f"{s['active_s']:.0f} s, {s['strokes']} strokes"
    text = f"{s['reps']} reps at {s['points']} point{'s' if s['points'] != 1 else ''}"
    return text + (f", {s['active_s']:.0f} s rolling" if s["active_s"] >= 1 else "")


def step_state(s: dict) -> str:
    return "done" if s["completed"] else ("skipped" if s["skipped"] else "not_done")


FAULT_KINDS = ("fault", "recovered", "gap", "device")


def show_document(db: sqlite3.Connection, session_id: int, *, now: float | None = None, tz: tzinfo | None = None) -> dict:
    from .store import event_rows, session_row, step_rows

    session = session_row(db, session_id, now=now, tz=tz)
    steps = step_rows(db, session_id)
    counts = {kind: n for kind, n in db.execute(
        "SELECT kind, COUNT(*) FROM events WHERE session_id=? GROUP BY kind ORDER BY kind", (session_id,))}
    notable = event_rows(db, session_id, ("warning", "step_skipped", "pause", "resume", "calibration", *FAULT_KINDS))
    warnings = [e for e in notable if e["kind"] == "warning"]
    for s in steps:
        s["state"] = step_state(s)
        s["target"] = target_text(s)
        s["achieved"] = _achieved_text(s)
        s["warning_events"] = [_warning_json(e) for e in warnings if e["step"] == s["position"]]
    return {
        "session": session,
        "steps": steps,
        "event_counts": counts,
        "warnings": [_warning_json(e) for e in warnings],
        "faults": [_event_json(e) for e in notable if e["kind"] in FAULT_KINDS],
        "other_events": [_event_json(e) for e in notable if e["kind"] not in FAULT_KINDS and e["kind"] != "warning"],
    }


def _warning_json(e: dict) -> dict:
    detail = e["detail"] if isinstance(e["detail"], dict) else {}
    return {"t": e["t"], "step": e["step"], "kpa": e["value"], "limit_kpa": detail.get("limit_kpa")}


def _event_json(e: dict) -> dict:
    return {"t": e["t"], "kind": e["kind"], "step": e["step"], "detail": e["detail"]}


def cmd_show(args) -> int:
    from .store import resolve_session

    config = load_for(args)
    with _open(config) as db:
        document = show_document(db, resolve_session(db, args.session))
    if args.json:
        json_out(document)
        return 0
    s = document["session"]
    print(f"session {s['id']}: {s['date']} {s['time']}, {s['leg']} leg, {s['source']}, {s['outcome'].replace('_', ' ')}, "
          f"{duration_text(s['duration_s'])}, {s['steps_done']}/{s['steps_total']} steps, {s['strokes']} strokes, {s['reps']} reps")
    if document["steps"]:
        print(f" {'#':>2}  {'step':<28} {'target':<26} {'achieved':<32} {'result':<8} {'kPa mean/peak':>13} "
              f"{'limit':>5} {'over':>6} {'warn':>4}")
    for st in document["steps"]:
        kpa = f"{fmt(st['mean_kpa'])}/{fmt(st['peak_kpa'])}"
        print(f" {st['position']:>2}  {st['name'][:28]:<28} {st['target'][:26]:<26} {st['achieved'][:32]:<32} "
              f"{st['state'].replace('_', ' '):<8} {kpa:>13} {st['pressure_limit_kpa']:>5.0f} "
              f"{st['time_over_limit_s']:>5.1f}s {st['warnings']:>4}")
    missing = s["steps_total"] - len(document["steps"])
    if missing > 0:
        print(f" ({missing} step{'s' if missing != 1 else ''} not reached)")
    for w in document["warnings"]:
        limit = f" (limit {w['limit_kpa']:g})" if w["limit_kpa"] is not None else ""
        print(f"  ! {duration_text(w['t'])} step {w['step']}: {fmt(w['kpa'])} kPa{limit}")
    for f in document["faults"]:
        detail = f["detail"] if isinstance(f["detail"], dict) else {}
        text = ", ".join(f"{k} {v}" for k, v in detail.items() if v not in (None, ""))
        print(f"  {f['kind']} at {duration_text(max(f['t'], 0))}: {text}")
    return 0


# --- export -----------------------------------------------------------------------------------------


def parse_since(text: str | None, tz: tzinfo | None = None) -> str | None:
    """--since as the UTC ISO time it means: a local date (from its midnight) or an ISO date and time."""
    from .store import local_midnight_utc

    if text is None:
        return None
    try:
        if len(text) == 10:
            return local_midnight_utc(date.fromisoformat(text), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since {text!r} is not a date", "give a date as YYYY-MM-DD, or an ISO date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz) if tz else moment.astimezone()
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class _Table:
    """One exported table: its columns as (name, SQL expression, free text to quote), and the rest of its query."""

    name: str
    columns: tuple[tuple[str, str, bool], ...]
    query: str  # FROM ... WHERE ... ORDER BY, with a {since} placeholder for the date filter
    since: str  # the filter when --since is given ("" if none applies)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.columns)

    def sql(self, since: str | None, shape: str) -> tuple[str, tuple]:
        """The query giving each row as one CSV line, one JSON object, or plain values."""
        if shape == "csv":  # SQLite writes the line: the rows never become Python objects
            # text is always quoted (a step id may hold a comma), numbers never
            parts = [f"""CASE WHEN typeof({expr}) = 'text' THEN '"' || replace({expr}, '"', '""') || '"' """
                     f"ELSE ifnull({expr}, '') END" for _, expr, _ in self.columns]
            select = " || ',' || ".join(parts)
        elif shape == "json":
            select = "json_object(" + ", ".join(
                f"'{name}', " + (f"json({expr})" if name == "detail" else expr) for name, expr, _ in self.columns) + ")"
        else:
            select = ", ".join(expr for _, expr, _ in self.columns)
        where = self.since if since else ""
        return f"SELECT {select} {self.query.format(since=where)}", (since,) if since and self.since else ()


_IN_SINCE = "WHERE session_id IN (SELECT id FROM sessions WHERE started_at >= ?)"
EXPORT_TABLES = {
    "steps": _Table("steps", tuple((name, expr, name == "name")
                                   for name, expr in STEP_EXPORT_SQL.items()),
                    "FROM steps {since} ORDER BY session_id, position", _IN_SINCE),
    "events": _Table("events", (
        ("session_id", "session_id", False), ("t", "t", False), ("kind", "kind", False), ("step", "step", False),
        ("duration_s", "duration_s", False), ("force_n", "force_n", False), ("value", "value", False),
        ("value_unit", "CASE kind " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in EVENT_UNITS.items()) + " END", False),
        ("detail", "detail", True)),
        "FROM events {since} ORDER BY session_id, t, id", _IN_SINCE),
    "pressure": _Table("pressure", tuple((c, c, False) for c in PRESSURE_EXPORT),
                       "FROM pressure {since} ORDER BY session_id, t", _IN_SINCE),
    "calibrations": _Table("calibrations", (
        ("at", "at", False), ("sensor", "sensor", True), ("session_id", "session_id", False), ("detail", "detail", True)),
        "FROM calibrations {since} ORDER BY at, id", "WHERE at >= ?"),
}


def export_plan(db: sqlite3.Connection, pressure: bool) -> list[str]:
    from .store import has_table

    names = ["sessions", "steps", "events"] + (["pressure"] if pressure else [])
    return names + (["calibrations"] if has_table(db, "calibrations") else [])


def _session_export(db, since, now, tz) -> list[dict]:
    from .store import session_rows

    return [{c: (r["id"] if c == "session_id" else r.get(c)) for c in SESSION_EXPORT}
            for r in session_rows(db, since=since, now=now, tz=tz)]


def write_export(db: sqlite3.Connection, out: Path, fmt: str, since: str | None, *, pressure: bool = False,
                 force: bool = False, now: float | None = None, tz: tzinfo | None = None) -> dict:
    """Writes the export; returns what was written (the --json document).

    csv: a folder of one file a table, or a zip of them if ``out`` ends in .zip;
    json: one file, an object with a list of row objects a table. ``-`` is standard
    output (csv as a zip). The columns are the same in both (docs/session-log.md).
    What was there is only replaced with ``force``, and then as a whole; parents are
    created; a failure (a full disk) leaves what was there, and nothing half-written.
    """
    out = Path(out)
    layout = _layout(out, fmt)
    plan = export_plan(db, pressure)
    counts: dict[str, int] = {}
    if layout == "stdout":
        if fmt == "json":
            _write_json(sys.stdout, db, plan, since, now, tz, counts)
        else:
            _write_zip(sys.stdout.buffer, db, plan, since, now, tz, counts)
        return {"out": "-", "format": fmt, "layout": layout, "since": since, "files": [], "rows": counts}
    if out.exists() and not force:
        raise InputError(f"{out} already exists", "choose another --out, or add --force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _replacing(out) as fresh:
            if layout == "file":
                with open(fresh, "w", encoding="utf-8") as fh:
                    _write_json(fh, db, plan, since, now, tz, counts)
            elif layout == "zip":
                with open(fresh, "wb") as fh:
                    _write_zip(fh, db, plan, since, now, tz, counts)
            else:
                fresh.mkdir()
                for name in plan:
                    with open(fresh / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
                        counts[name] = _write_csv(fh, db, name, since, now, tz)
    except OSError as exc:
        raise KneerollError(f"cannot write {out}: {exc.strerror or exc}",
                            "free some space or choose another --out; nothing was left half-written") from None
    files = [str(out)] if layout == "file" else [f"{out}:{n}.csv" if layout == "zip" else str(out / f"{n}.csv") for n in plan]
    return {"out": str(out), "format": fmt, "layout": layout, "since": since, "files": files, "rows": counts}


def _layout(out: Path, fmt: str) -> str:
    """stdout, file (json), zip or folder (csv): the same rules for both formats."""
    if str(out) == "-":
        return "stdout"
    if fmt == "json":
        if out.is_dir():
            raise InputError(f"{out} is a folder, and a json export is a file", "give --out a file name, such as export.json")
        return "file"
    if out.suffix.lower() == ".zip":
        return "zip"
    if out.suffix.lower() == ".csv":
        raise InputError(f"a csv export is several tables, not one file ({out})",
                         "give --out a folder, or a name ending in .zip")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, and a csv export is a folder", "give --out a folder, or a name ending in .zip")
    return "folder"


@contextlib.contextmanager
def _replacing(out: Path):
    """A fresh path beside ``out`` to write into; on success it takes ``out``'s place whole."""
    fresh = out.with_name(f".{out.name}.partial")
    old = out.with_name(f".{out.name}.old")
    for leftover in (fresh, old):
        _remove(leftover)
    try:
        yield fresh
        if out.exists():
            os.replace(out, old)
        os.replace(fresh, out)
    finally:
        _remove(fresh)
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_json(fh, db, plan: list[str], since, now, tz, counts: dict) -> None:
    head = {"format": "kneeroll-export", "version": 1,
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "since": since}
    fh.write(json.dumps(head)[:-1])
    for name in plan:
        fh.write(f', "{name}": [')
        if name == "sessions":
            rows = _session_export(db, since, now, tz)
            fh.write(json.dumps(rows)[1:-1])
            counts[name] = len(rows)
        else:
            counts[name] = _write_lines(fh, db, EXPORT_TABLES[name], since, "json", ",")
        fh.write("]")
    fh.write("}\n")


def _write_zip(raw_out, db, plan: list[str], since, now, tz, counts: dict) -> None:
    with zipfile.ZipFile(raw_out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in plan:
            with zf.open(f"{name}.csv", "w") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
                counts[name] = _write_csv(fh, db, name, since, now, tz)


def _write_csv(fh, db, name: str, since, now, tz) -> int:
    if name == "sessions":
        rows = _session_export(db, since, now, tz)
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SESSION_EXPORT)
        writer.writerows([tuple(r.values()) for r in rows])
        return len(rows)
    table = EXPORT_TABLES[name]
    fh.write(",".join(table.names) + "\n")
    return _write_lines(fh, db, table, since, "csv", "\n", end="\n")


def _write_lines(fh, db, table: _Table, since, shape: str, sep: str, end: str = "") -> int:
    sql, params = table.sql(since, shape)
    cursor = db.execute(sql, params)
    n = 0
    while True:
        chunk = cursor.fetchmany(20000)
        if not chunk:
            return n
        fh.write((sep if n and not end else "") + sep.join([r[0] for r in chunk]) + end)
        n += len(chunk)


def cmd_export(args) -> int:
    to_stdout = str(args.out) == "-"
    if to_stdout and args.json:
        raise InputError("--json and --out - both want standard output", "give --out a path, or leave out --json")
    since = parse_since(args.since)
    config = load_for(args)
    with _open(config) as db:
        document = write_export(db, Path(args.out), args.format, since, pressure=args.pressure, force=args.force)
    if args.json:
        json_out(document)
        return 0
    rows = document["rows"]
    line = f"wrote {document['out']} ({document['layout']}): " + ", ".join(f"{n} {name}" for name, n in rows.items())
    print(line, file=sys.stderr if to_stdout else sys.stdout)  # the export itself owns stdout then
    return 0


# --- plots ------------------------------------------------------------------------------------------


def cmd_plot(args) -> int:
    from . import plots
    from .store import event_rows, pressure_rows, resolve_session

    out = _plot_out(args.out)
    plots.require_matplotlib()
    config = load_for(args)
    with _open(config) as db:
        session_id = resolve_session(db, args.session)
        document = show_document(db, session_id)
        events = event_rows(db, session_id, ("stroke", "rep", "warning", "fault", "gap"))
        pressure = pressure_rows(db, session_id)
    plots.plot_session(out, document["session"], document["steps"], events, pressure)
    result = {"out": str(out), "session_id": session_id, "steps": len(document["steps"]),
              "strokes": sum(1 for e in events if e["kind"] == "stroke"),
              "reps": sum(1 for e in events if e["kind"] == "rep"), "pressure_seconds": len(pressure)}
    if args.json:
        json_out(result)
    else:
        print(f"wrote {out}")
    return 0


def report_document(db: sqlite3.Connection, *, days: int, routine: str | None, per_day: int, programme_days: int,
                    include_demo: bool = False, now: datetime | None = None, tz: tzinfo | None = None) -> dict:
    """Adherence day by day and, per step, the daily means of pressure, reps, strokes and rolling time."""
    from .store import completed_days, local_midnight_utc, parse_utc, session_filter

    now = now or datetime.now(timezone.utc)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    counts = completed_days(db, routine=routine, tz=tz, include_demo=include_demo)
    adherence = [{"date": (first + timedelta(days=i)).isoformat(), "sessions": counts.get(first + timedelta(days=i), 0)}
                 for i in range(days)]
    sql = ("SELECT s.started_at, st.step_id, st.name, st.kind, st.position, st.mean_kpa, st.peak_kpa, st.pressure_limit_kpa, "
           "st.reps, st.strokes, st.active_s FROM steps st JOIN sessions s ON s.id = st.session_id "
           "WHERE s.started_at >= ? AND st.skipped = 0")
    where, params = session_filter(include_demo, routine, table="s")
    sql += where
    params = [local_midnight_utc(first, tz), *params]
    per_step: dict[str, dict] = {}
    for started, step_id, name, kind, position, mean_kpa, peak_kpa, limit, reps, strokes, active_s in db.execute(sql, params):
        day = parse_utc(started).astimezone(tz).date().isoformat()
        step = per_step.setdefault(step_id, {"step_id": step_id, "name": name, "kind": kind, "position": position,
                                             "pressure_limit_kpa": limit, "days": {}})
        step["position"] = min(step["position"], position)
        acc = step["days"].setdefault(day, {"n": 0, "kpa": [], "peak": [], "reps": 0, "strokes": 0, "active_s": 0.0})
        acc["n"] += 1
        if mean_kpa is not None:
            acc["kpa"].append(mean_kpa)
        if peak_kpa is not None:
            acc["peak"].append(peak_kpa)
        acc["reps"] += reps
        acc["strokes"] += strokes
        acc["active_s"] += active_s
    trends = []
    for step in sorted(per_step.values(), key=lambda s: s["position"]):
        points = []
        for day, acc in sorted(step["days"].items()):
            points.append({
                "date": day, "sessions": acc["n"],
                "mean_kpa": round(sum(acc["kpa"]) / len(acc["kpa"]), 2) if acc["kpa"] else None,
                "peak_kpa": round(max(acc["peak"]), 2) if acc["peak"] else None,
                "reps": round(acc["reps"] / acc["n"], 2), "strokes": round(acc["strokes"] / acc["n"], 2),
                "active_s": round(acc["active_s"] / acc["n"], 2),
            })
        trends.append({k: step[k] for k in ("step_id", "name", "kind", "pressure_limit_kpa")} | {"points": points})
    met = sum(1 for d in adherence if d["sessions"] >= per_day)
    return {"from": first.isoformat(), "to": today.isoformat(), "days": days, "sessions_per_day": per_day,
            "days_meeting_target": met, "sessions": sum(d["sessions"] for d in adherence),
            "progress": programme_progress(counts, today, per_day, programme_days), "counts_demo": include_demo,
            "adherence": adherence, "trends": trends}


def cmd_report(args) -> int:
    from . import plots

    out = _plot_out(args.out)
    plots.require_matplotlib()
    config = load_for(args)
    routine, per_day, programme_days = programme_of(config)
    with _open(config) as db:
        document = report_document(db, days=args.days, routine=routine, per_day=per_day, programme_days=programme_days,
                                   include_demo=args.include_demo)
        demos = 0 if args.include_demo else db.execute("SELECT COUNT(*) FROM sessions WHERE source='demo'").fetchone()[0]
    if document["sessions"] == 0 and demos:
        sys.stderr.write(f"{PROG}: note: no sessions of your own in these days; the log holds {demos} demo "
                         f"session{'s' if demos != 1 else ''}: add --include-demo to draw them\n")
    plots.plot_report(out, document)
    document = {"out": str(out), **document}
    if args.json:
        json_out(document)
    else:
        print(f"wrote {out}: {document['days_meeting_target']} of {document['days']} days with {per_day} sessions")
    return 0


# --- the commands -------------------------------------------------------------------------------------


def register(commands) -> None:
    history = commands.add_parser("history", help="the logged sessions, and the programme's progress")
    history.add_argument("--days", type=whole_in(1, 36500), metavar="N", help="only the last N days (today included)")
    history.add_argument("--include-demo", action="store_true", help="count demo sessions towards the progress")
    add_common_options(history, data_dir=True, json_flag=True)
    history.set_defaults(func=cmd_history)

    show = commands.add_parser("show", help="one session, step by step: target against achieved")
    show.add_argument("session", metavar="SESSION", help="a session id, or last")
    add_common_options(show, data_dir=True, json_flag=True)
    show.set_defaults(func=cmd_show)

    export = commands.add_parser("export", help="sessions, steps and events (and per-second pressure) as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    export.add_argument("--since", metavar="DATE", help="only sessions from this date on (YYYY-MM-DD, local time)")
    export.add_argument("--out", required=True, type=Path, metavar="PATH",
                        help="csv: a folder, or a file ending in .zip; json: a file; - for standard output")
    export.add_argument("--force", action="store_true", help="replace what is at --out (as a whole)")
    export.add_argument("--pressure", action="store_true",
                        help="add the per-second pressure rows (about 330 a session: a larger, slower export)")
    add_common_options(export, data_dir=True, json_flag=True)
    export.set_defaults(func=cmd_export)

    plot = commands.add_parser("plot", help="one session's pressure, steps, strokes and reps as an image")
    plot.add_argument("session", metavar="SESSION", help="a session id, or last")
    plot.add_argument("--out", required=True, type=Path, metavar="FILE.png", help="the image to write")
    add_common_options(plot, data_dir=True, json_flag=True)
    plot.set_defaults(func=cmd_plot)

    report = commands.add_parser("report", help="adherence calendar and per-step trends as an image")
    report.add_argument("--days", type=whole_in(1, 36500), default=DEFAULT_REPORT_DAYS, metavar="N",
                        help=f"the last N days (default {DEFAULT_REPORT_DAYS})")
    report.add_argument("--out", required=True, type=Path, metavar="FILE.png", help="the image to write")
    report.add_argument("--include-demo", action="store_true", help="count demo sessions too")
    add_common_options(report, data_dir=True, json_flag=True)
    report.set_defaults(func=cmd_report)
