"""Session log size and read speed with two years of twice-daily sessions.

    .venv/bin/python benchmarks/bench_store.py [--days 730] [--runs 5] [--keep DIR]

Writes a log of ``--days`` days of the runner's-knee routine, twice a day with
the odd day missed, an abandoned session now and then and the odd skipped
step: 8 steps, a few hundred events (strokes, reps, repositions, cues, the odd
warning and gap) and a pressure row a second for each session, written straight
into the schema. Then times, as a user would run them (in process, without the
interpreter's start-up), the median over ``--runs`` runs of:

- history (all of it, and the last 7 days), with the programme's progress
- show last
- export: csv folder, csv zip and json of everything, and csv of the last 30 days

and reports the log's size on disk, per session and per table. Each command
should answer in under a second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kneeroll_device.cli import main
from kneeroll_device.routine.spec import load_routine
from kneeroll_device.store import DB_NAME, SCHEMA_VERSION, connect

CUES_PER_STEP = ("step_start", "halfway", "step_done")


def generate(data_dir: Path, days: int, seed: int = 7) -> int:
    """Writes the synthetic log; returns the number of sessions."""
    rng = random.Random(seed)
    routine = load_routine("runners-knee")
    db = connect(data_dir / DB_NAME)
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    sessions, steps, events, pressure = [], [], [], []
    session_id = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        if rng.random() < 0.01:
            continue  # a day off
        for hour in (7.5, 19.0):
            if rng.random() < 0.01:
                continue  # a session missed
            session_id += 1
            start = day + timedelta(hours=hour + rng.uniform(-0.7, 0.7))
            outcome = "abandoned" if rng.random() < 0.03 else "completed"
            t = rng.uniform(2.0, 5.0)
            s_steps = []
            events.append((session_id, 0.0, "cue", None, None, None, None, json.dumps({"pattern": "session_start"})))
            last = len(routine.steps) if outcome == "completed" else rng.randint(2, 6)
            for position, step in enumerate(routine.steps[:last], start=1):
                skipped = rng.random() < 0.02
                began = t
                level = rng.gauss(20.0, 2.5) if step.id != "patellar-tendon" else rng.gauss(12.0, 2.0)
                strokes = reps = points = 0
                active = 0.0
                warnings = 0
                events.append((session_id, round(t, 3), "cue", position, None, None, None,
                               json.dumps({"pattern": "step_start"})))
                if step.kind == "roll" or step.roll_seconds:
                    n = 0 if skipped else (rng.randint(12, 24) if step.kind == "roll" else rng.randint(3, 8))
                    for _ in range(n):
                        d = rng.uniform(1.1, 2.2)
                        t += d
                        active += d
                        strokes += 1
                        events.append((session_id, round(t, 3), "stroke", position, round(d, 3),
                                       round(level * 4.6 + rng.gauss(0, 6), 3), round(rng.uniform(12, 24), 1), None))
                if step.reps_per_point:
                    points = 0 if skipped else step.points
                    for _ in range(points):
                        for _ in range(rng.randint(6, 12)):
                            t += rng.uniform(2.5, 4.0)
                            reps += 1
                            events.append((session_id, round(t, 3), "rep", position, round(rng.uniform(1.5, 2.5), 3),
                                           round(level * 7 + rng.gauss(0, 10), 2), round(rng.uniform(30, 60), 2), None))
                        t += 1.5
                        events.append((session_id, round(t, 3), "cue", position, None, None, None,
                                       json.dumps({"pattern": "point_done"})))
                        events.append((session_id, round(t, 3), "reposition", position, None, None, None, None))
                if rng.random() < 0.05:
                    warnings = 1
                    events.append((session_id, round(t - 1, 3), "warning", position, None, None,
                                   step.pressure_limit_kpa + 3,
                                   json.dumps({"kpa": step.pressure_limit_kpa + 3, "limit_kpa": step.pressure_limit_kpa})))
                events.append((session_id, round((began + t) / 2, 3), "cue", position, None, None, None,
                               json.dumps({"pattern": "halfway"})))
                events.append((session_id, round(t, 3), "cue", position, None, None, None, json.dumps({"pattern": "step_done"})))
                for second in range(int(began), int(t) + 1):
                    mean = max(0.0, rng.gauss(level, 1.5))
                    pressure.append((session_id, second, round(mean, 3), round(mean * 1.15, 3), round(mean * 4.6, 3),
                                     round(mean * 5.3, 3)))
                s_steps.append((session_id, position, step.index, step.id, step.name, step.kind, "right", round(began, 3),
                                round(t, 3), int(not skipped), int(skipped), round(active, 2), strokes, reps, points,
                                round(level, 2), round(level * 1.25, 2), round(level * 4.6, 2), round(level * 6.2, 2),
                                step.pressure_limit_kpa, 0.0, warnings, json.dumps(step.targets())))
                t += rng.uniform(3.0, 6.0)
            if rng.random() < 0.05:
                events.append((session_id, round(t / 2, 3), "gap", None, None, None, None,
                               json.dumps({"source": "imu", "samples_lost": 40, "reason": "FIFO overflow"})))
            steps += s_steps
            done = sum(1 for s in s_steps if s[9])
            kpa = [s[15] for s in s_steps]
            sessions.append((session_id, start.astimezone(timezone.utc).isoformat(timespec="seconds"),
                             (start + timedelta(seconds=t)).astimezone(timezone.utc).isoformat(timespec="seconds"),
                             "right", routine.id, "run", outcome, done, len(routine.steps), round(t, 2),
                             sum(s[12] for s in s_steps), sum(s[13] for s in s_steps), round(sum(kpa) / len(kpa), 2),
                             max(s[16] for s in s_steps), None, "{}", None, None))
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO sessions VALUES ({','.join('?' * 18)})", sessions)
    db.executemany(f"INSERT INTO steps VALUES ({','.join('?' * 23)})", steps)
    db.executemany("INSERT INTO events (session_id, t, kind, step, duration_s, force_n, value, detail) "
                   "VALUES (?,?,?,?,?,?,?,?)", events)
    db.executemany("INSERT INTO pressure VALUES (?,?,?,?,?,?)", pressure)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return session_id


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """(median, max) seconds of running the command in process, output discarded."""
    times = []
    for _ in range(runs):
        sink = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            code = main(argv)
        times.append(time.perf_counter() - start)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} exited {code}")
    return statistics.median(times), max(times)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the log here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kneeroll-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        n = generate(folder, args.days)
        path = folder / DB_NAME
        size = path.stat().st_size
        with sqlite3.connect(path) as db:
            rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("sessions", "steps", "events", "pressure")}
            tables = {}
            try:
                for name, pages in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"):
                    tables[name] = pages
            except sqlite3.OperationalError:
                pass
        print(f"log: {n} sessions over {args.days} days, schema v{SCHEMA_VERSION}, written in {time.perf_counter() - start:.1f} s")
        print("rows: " + ", ".join(f"{k} {v}" for k, v in rows.items())
              + f" ({rows['events'] / n:.0f} events and {rows['pressure'] / n:.0f} pressure rows a session)")
        print(f"size: {size / 1e6:.1f} MB, {size / n / 1024:.1f} KiB a session")
        if tables:
            print("  by table/index: " + ", ".join(f"{k} {v / n / 1024:.1f}" for k, v in tables.items()) + " KiB a session")
        since = (datetime.now() - timedelta(days=30)).date().isoformat()
        out = folder / "out"
        cases = [
            ("history", ["history"]),
            ("history --days 7", ["history", "--days", "7"]),
            ("history --json", ["history", "--json"]),
            ("show last", ["show", "last"]),
            ("show last --json", ["show", "last", "--json"]),
            ("export csv (folder, all)", ["export", "--out", str(out / "csv")]),
            ("export csv (zip, all)", ["export", "--out", str(out / "all.zip")]),
            ("export json (all)", ["export", "--format", "json", "--out", str(out / "all.json")]),
            ("export csv (folder, all) --pressure", ["export", "--pressure", "--out", str(out / "csv-p")]),
            ("export json (all) --pressure", ["export", "--pressure", "--format", "json", "--out", str(out / "all-p.json")]),
            (f"export csv --since {since}", ["export", "--since", since, "--out", str(out / "month")]),
        ]
        out.mkdir(exist_ok=True)
        print(f"\n{'command':<34} {'median':>8} {'max':>8}   ({args.runs} runs, in process)")
        slow = []
        for label, argv in cases:
            median, worst = timed([*argv, "--data-dir", str(folder)], args.runs)
            print(f"{label:<34} {median * 1000:>6.0f} ms {worst * 1000:>5.0f} ms")
            if median >= 1.0:
                slow.append(label)
        sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        print("export sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
        print("all under 1 s" if not slow else f"OVER 1 s: {', '.join(slow)}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main_bench()
