"""Insight into the session log: history and one session in detail (and, later, export and plots).

Every command reads the log read-only, so it works while the daemon writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from .cli import _common, _fmt, _json_out, _load


def cmd_history(args) -> int:
    from .store import open_log, session_rows

    config = _load(args)
    with open_log(config.storage.data_dir) as db:
        rows = session_rows(db, args.days)
    if args.json:
        _json_out({"sessions": rows})
        return 0
    if not rows:
        print("no sessions yet")
        return 0
    print(f"{'id':>4} {'started (UTC)':<20} {'leg':<6} {'outcome':<12} {'steps':>6} {'min':>5} {'strokes':>8} {'reps':>5} {'kPa':>10}")
    for r in rows:
        kpa = f"{_fmt(r['mean_kpa'])}/{_fmt(r['peak_kpa'])}"
        minutes = _fmt((r["duration_s"] or 0) / 60, 1)
        print(f"{r['id']:>4} {r['started_at'][:19]:<20} {r['leg']:<6} {r['outcome']:<12} "
              f"{r['steps_done']:>3}/{r['steps_total']:<2} {minutes:>5} {r['strokes']:>8} {r['reps']:>5} {kpa:>10}")
    return 0


def cmd_show(args) -> int:
    from .store import open_log, resolve_session, step_rows

    config = _load(args)
    with open_log(config.storage.data_dir) as db:
        session_id = resolve_session(db, args.session)
        session = dict(db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone())
        steps = step_rows(db, session_id)
    if args.json:
        _json_out({"session": session, "steps": steps})
        return 0
    print(f"session {session_id}: {session['started_at']} {session['leg']} leg, {session['outcome']}")
    for s in steps:
        targets = json.loads(s["targets"])
        if s["kind"] == "roll":
            target = f"{targets.get('roll_seconds_min', 0):.0f}-{targets.get('roll_seconds_max', 0):.0f} s"
            got = f"{s['active_s']:.0f} s, {s['strokes']} strokes"
        else:
            target = f"{targets['reps_per_point_min']:.0f}+ reps x {targets['points']}"
            got = f"{s['reps']} reps, {s['points']} points"
        state = "done" if s["completed"] else ("skipped" if s["skipped"] else "not done")
        print(f"  {s['position']:>2} {s['name']:<30} target {target:<16} got {got:<24} {state:<8} "
              f"{_fmt(s['mean_kpa'])}/{_fmt(s['peak_kpa'])} kPa (limit {s['pressure_limit_kpa']:.0f}), "
              f"{s['warnings']} warnings, {s['time_over_limit_s']:.1f} s over")
    return 0



def register(commands) -> None:
    history = commands.add_parser("history", help="the logged sessions")
    history.add_argument("--days", type=int, metavar="N", help="only the last N days")
    _common(history, data_dir=True, json_flag=True)
    history.set_defaults(func=cmd_history)

    show = commands.add_parser("show", help="one session, step by step")
    show.add_argument("session", metavar="SESSION", help="a session id, or last")
    _common(show, data_dir=True, json_flag=True)
    show.set_defaults(func=cmd_show)
