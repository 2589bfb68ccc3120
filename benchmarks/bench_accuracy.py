"""Counting accuracy of the pipeline over many seeded simulated sessions and the hard cases.

    .venv/bin/python benchmarks/bench_accuracy.py            # 3 seeds of every case (54 sessions)
    .venv/bin/python benchmarks/bench_accuracy.py --quick    # 1 seed of every case
    .venv/bin/python benchmarks/bench_accuracy.py --cases fast-cadence,low-curvature --seeds 10
    .venv/bin/python benchmarks/bench_accuracy.py --json     # one JSON document on stdout
    .venv/bin/python benchmarks/bench_accuracy.py --first-seed 101 --worlds own,outside,real --outside-seed 424242

``--worlds`` adds the two worlds outside the project (benchmarks/worlds.py): a fresh suite
of the independent simulator in ../shared/outside-sim/ on ``--outside-seed`` (choose one
never used while tuning), and the real recordings in ../shared/real/, each beside a
reference counter, and prints the three side by side. The own simulator's seeds used while
tuning are 1-15; report it on a range above that (``--first-seed 101``) as held out.

Every session of every case (kneeroll_device/sim/hard_cases.py) is sampled as the pod
would record it (100 Hz IMU with gyro, 80 Hz force, rounded as the recording CSVs are,
or written to CSV and read back with --csv) and fed with replay.feed_recording into a
fresh Pipeline. The events are scored against the script's ground truth:

- Per step: a stroke belongs to a step if its time t is in [start, end + 1 s], a rep
  if its reported_t is. Roll steps are scored on strokes, release steps on reps; the
  share of steps with the exact count and within +/-1, and the mean signed error.
- Phantoms: strokes and reps outside every step window, per minute of that time
  (rests, carrying the roller between sites).
- Wrong-kind counts: reps in a roll step, strokes in a release step without rolling.
- Delay: to each true stroke end (stroke t minus the end) and true rep peak (reported_t
  minus the peak), in time order, the first event from 0.3 s before it, until 3 s after it
  or the next true time (as the outside simulator's scorer matches them).
- Block-size invariance: a few sessions fed in 0.01 s and in 10 s blocks must give the
  same events.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from kneeroll_device.pipeline import Pipeline
from kneeroll_device.recording import Recording, read_recording
from kneeroll_device.replay import feed_recording
from kneeroll_device.sim.hard_cases import CASES, simulate_case
from kneeroll_device.sim.transforms import FORCE_HZ, IMU_HZ, recorded
from kneeroll_device.sim.world import write_recording
from worlds import outside_world, print_worlds, real_world

STEP_GRACE_S = 1.0  # an event up to this long after a step's end still belongs to it
MATCH_EARLY_S = 0.3  # an event may come this much before the true time (twisting leads the travel)
MATCH_LATE_S = 3.0  # and at most this much after it to be matched

TARGETS = {
    "within1": 0.98, "exact": 0.90, "phantom_per_min": 0.5,
    "stroke_delay_median": 0.5, "stroke_delay_p95": 1.0, "rep_delay_median": 0.7,
}


# --- one session ------------------------------------------------------------------------


def recording_of(session, via_csv: bool) -> Recording:
    """The session as the pod records it: in memory with the CSV's rounding, or through CSV files."""
    if via_csv:
        with tempfile.TemporaryDirectory() as tmp:
            return read_recording(write_recording(session, Path(tmp) / "rec", IMU_HZ, FORCE_HZ))
    rec = recorded(session, IMU_HZ, FORCE_HZ)
    # the same rounding as recording.write_recording_folder's formats
    return Recording(Path(f"sim-{session.scenario}-{session.seed}"), np.round(rec.imu_t, 4), np.round(rec.accel, 6),
                     np.round(rec.gyro, 4), np.round(rec.force_t, 4), np.round(rec.force, 3), {"truth": session.truth()})


def run_pipeline(rec: Recording, block_s: float):
    pipeline = Pipeline()
    strokes, reps = [], []
    for _, batch in feed_recording(rec, pipeline, block_s):
        strokes += batch.strokes
        reps += batch.reps
    return strokes, reps


def rep_time(rep) -> float:
    return rep.reported_t if not math.isnan(rep.reported_t) else rep.t


def match_delays(truth_times: list[float], event_times: list[float]) -> list[float]:
    """For each true time, in order, the first event not yet taken from MATCH_EARLY_S before
    it until MATCH_LATE_S after it or MATCH_EARLY_S before the next true time, whichever
    comes first: a true event with no event in its window was missed, and an event late
    for one true time is not taken for an early one of the next (which would shift every
    match after it by one and read the delays as negative)."""
    truths, events = sorted(truth_times), sorted(event_times)
    delays, j = [], 0
    for i, truth in enumerate(truths):
        until = truth + MATCH_LATE_S
        if i + 1 < len(truths):
            until = min(until, truths[i + 1] - MATCH_EARLY_S)
        while j < len(events) and events[j] < truth - MATCH_EARLY_S:
            j += 1
        if j < len(events) and events[j] < until:
            delays.append(events[j] - truth)
            j += 1
    return delays


def score_session(job: tuple[str, int, bool, float]) -> dict:
    case, seed, via_csv, block_s = job
    session = simulate_case(case, seed)
    rec = recording_of(session, via_csv)
    strokes, reps = run_pipeline(rec, block_s)
    stroke_t = [s.t for s in strokes]
    rep_t = [rep_time(r) for r in reps]
    steps, windows = [], []
    stroke_delays, rep_delays = [], []
    for truth in session.script.steps:
        if truth.skipped:
            continue
        lo, hi = truth.start, truth.end + STEP_GRACE_S
        windows.append((lo, hi))
        got_s = [t for t in stroke_t if lo <= t <= hi]
        got_r = [t for t in rep_t if lo <= t <= hi]
        stroke_delays += match_delays(truth.stroke_ends, got_s)
        rep_delays += match_delays(truth.rep_peaks, got_r)
        steps.append({
            "case": case, "seed": seed, "index": truth.index, "id": truth.id, "kind": truth.kind,
            "start": round(truth.start, 2), "end": round(truth.end, 2),
            "true_strokes": truth.strokes, "strokes": len(got_s),
            "true_reps": truth.reps, "reps": len(got_r),
        })
    outside = [t for t in stroke_t + rep_t if not any(lo <= t <= hi for lo, hi in windows)]
    rest_s = session.duration - sum(hi - lo for lo, hi in windows)
    return {
        "case": case, "seed": seed, "duration_s": session.duration, "rest_s": rest_s, "steps": steps,
        "phantoms": len(outside), "phantom_times": [round(t, 2) for t in outside],
        "phantom_strokes": sum(1 for t in stroke_t if not any(lo <= t <= hi for lo, hi in windows)),
        "stroke_delays": stroke_delays, "rep_delays": rep_delays,
    }


def check_invariance(job: tuple[str, int]) -> dict:
    case, seed = job
    rec = recording_of(simulate_case(case, seed), via_csv=False)
    out = {}
    for block_s in (0.01, 10.0):
        strokes, reps = run_pipeline(rec, block_s)
        out[block_s] = [repr(e) for e in strokes + reps]
    same = out[0.01] == out[10.0]
    return {"case": case, "seed": seed, "identical": same, "events": len(out[10.0]),
            "differences": 0 if same else sum(a != b for a, b in zip(out[0.01], out[10.0])) + abs(len(out[0.01]) - len(out[10.0]))}


# --- scoring ----------------------------------------------------------------------------


def count_score(rows: list[dict], true_key: str, got_key: str) -> dict:
    if not rows:
        return {"steps": 0}
    err = np.array([r[got_key] - r[true_key] for r in rows])
    return {
        "steps": len(rows),
        "exact": float(np.mean(err == 0)),
        "within1": float(np.mean(np.abs(err) <= 1)),
        "mean_error": float(err.mean()),
        "over": int(np.sum(err > 0)), "under": int(np.sum(err < 0)),
        "true_total": int(sum(r[true_key] for r in rows)), "counted_total": int(sum(r[got_key] for r in rows)),
    }


def delay_score(delays: list[float]) -> dict:
    if not delays:
        return {"n": 0, "median": None, "p95": None}
    d = np.array(delays)
    return {"n": len(d), "median": float(np.median(d)), "p95": float(np.percentile(d, 95))}


def summarise(sessions: list[dict]) -> dict:
    steps = [s for sess in sessions for s in sess["steps"]]
    roll = [s for s in steps if s["kind"] == "roll"]
    release = [s for s in steps if s["kind"] == "release"]
    gentle = [s for s in release if s["true_strokes"] > 0]  # the patellar step's gentle rolling
    rest_min = sum(sess["rest_s"] for sess in sessions) / 60.0
    phantoms = sum(sess["phantoms"] for sess in sessions)
    return {
        "sessions": len(sessions), "steps": len(steps),
        "strokes": count_score(roll, "true_strokes", "strokes"),
        "reps": count_score(release, "true_reps", "reps"),
        "gentle_roll_strokes": count_score(gentle, "true_strokes", "strokes"),
        "both": _both(roll, release),
        "wrong_kind": {
            "reps_in_roll_steps": int(sum(s["reps"] for s in roll)),
            "strokes_in_release_steps_without_rolling": int(sum(s["strokes"] for s in release if s["true_strokes"] == 0)),
        },
        "phantoms": phantoms, "rest_minutes": rest_min, "phantom_per_min": phantoms / rest_min if rest_min else 0.0,
        "phantom_strokes": sum(sess["phantom_strokes"] for sess in sessions),
        "stroke_delay": delay_score([d for sess in sessions for d in sess["stroke_delays"]]),
        "rep_delay": delay_score([d for sess in sessions for d in sess["rep_delays"]]),
    }


def _both(roll: list[dict], release: list[dict]) -> dict:
    err = [s["strokes"] - s["true_strokes"] for s in roll] + [s["reps"] - s["true_reps"] for s in release]
    if not err:
        return {"steps": 0}
    e = np.array(err)
    return {"steps": len(e), "exact": float(np.mean(e == 0)), "within1": float(np.mean(np.abs(e) <= 1))}


def worst_steps(sessions: list[dict], n: int) -> list[dict]:
    rows = []
    for sess in sessions:
        for s in sess["steps"]:
            what = "strokes" if s["kind"] == "roll" else "reps"
            err = s[what] - s["true_" + what]
            if err:
                rows.append({"case": s["case"], "seed": s["seed"], "step": f"{s['index']} {s['id']}", "counts": what,
                             "true": s["true_" + what], "counted": s[what], "error": err,
                             "window": [s["start"], s["end"]]})
    rows.sort(key=lambda r: (-abs(r["error"]), r["case"], r["seed"]))
    return rows[:n]


# --- report -----------------------------------------------------------------------------


def pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def sec(x) -> str:
    return "   -  " if x is None else f"{x:5.2f}s"


def mark(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def print_report(result: dict, out=sys.stdout) -> None:
    o = result["overall"]
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"Counting accuracy: {o['sessions']} sessions, {o['steps']} steps, cases: {len(result['per_case'])}, "
      f"{result['elapsed_s']:.1f} s")
    p("")
    p(f"{'':34s} {'value':>8s}   {'target':>8s}")
    rows = [
        ("strokes (roll steps) within +/-1", pct(o["strokes"].get("within1")), ">= 98%", o["strokes"].get("within1", 0) >= TARGETS["within1"]),
        ("strokes (roll steps) exact", pct(o["strokes"].get("exact")), ">= 90%", o["strokes"].get("exact", 0) >= TARGETS["exact"]),
        ("reps (release steps) within +/-1", pct(o["reps"].get("within1")), ">= 98%", o["reps"].get("within1", 0) >= TARGETS["within1"]),
        ("reps (release steps) exact", pct(o["reps"].get("exact")), ">= 90%", o["reps"].get("exact", 0) >= TARGETS["exact"]),
        ("all steps within +/-1", pct(o["both"].get("within1")), ">= 98%", o["both"].get("within1", 0) >= TARGETS["within1"]),
        ("all steps exact", pct(o["both"].get("exact")), ">= 90%", o["both"].get("exact", 0) >= TARGETS["exact"]),
        ("phantom counts / min of rest", f"{o['phantom_per_min']:6.2f}", "< 0.5", o["phantom_per_min"] < TARGETS["phantom_per_min"]),
        ("stroke delay median", sec(o["stroke_delay"]["median"]), "<= 0.5s", (o["stroke_delay"]["median"] or 0) <= TARGETS["stroke_delay_median"]),
        ("stroke delay p95", sec(o["stroke_delay"]["p95"]), "<= 1.0s", (o["stroke_delay"]["p95"] or 0) <= TARGETS["stroke_delay_p95"]),
        ("rep delay median", sec(o["rep_delay"]["median"]), "<= 0.7s", (o["rep_delay"]["median"] or 0) <= TARGETS["rep_delay_median"]),
        ("rep delay p95", sec(o["rep_delay"]["p95"]), "", True),
    ]
    for name, value, target, ok in rows:
        p(f"  {name:32s} {value:>8s}   {target:>8s}  {mark(ok) if target else ''}")
    s, r = o["strokes"], o["reps"]
    p(f"  strokes: {s['counted_total']} counted of {s['true_total']} true; steps over {s['over']}, under {s['under']}")
    p(f"  reps:    {r['counted_total']} counted of {r['true_total']} true; steps over {r['over']}, under {r['under']}")
    g = o["gentle_roll_strokes"]
    if g.get("steps"):
        p(f"  gentle rolling in the patellar step (not a target): exact {pct(g['exact'])}, within +/-1 {pct(g['within1'])},"
          f" {g['counted_total']} of {g['true_total']} strokes")
    w = o["wrong_kind"]
    p(f"  wrong-kind counts: {w['reps_in_roll_steps']} reps in roll steps, "
      f"{w['strokes_in_release_steps_without_rolling']} strokes in release steps without rolling")
    p(f"  phantoms: {o['phantoms']} ({o['phantom_strokes']} strokes) in {o['rest_minutes']:.1f} min outside steps")
    p("")
    head = (f"{'case':15s} {'n':>3s} | {'stroke exact':>12s} {'+/-1':>6s} {'err':>5s} | {'rep exact':>9s} {'+/-1':>6s} {'err':>5s}"
            f" | {'phantom/min':>11s} | {'stroke delay':>12s} {'p95':>5s} | {'rep delay':>9s} {'p95':>5s}")
    p(head)
    p("-" * len(head))
    for case, c in result["per_case"].items():
        s, r = c["strokes"], c["reps"]
        p(f"{case:15s} {c['sessions']:3d} | {pct(s.get('exact')):>12s} {pct(s.get('within1')):>6s} {s.get('mean_error', 0):+5.2f} |"
          f" {pct(r.get('exact')):>9s} {pct(r.get('within1')):>6s} {r.get('mean_error', 0):+5.2f} |"
          f" {c['phantom_per_min']:11.2f} | {sec(c['stroke_delay']['median']):>12s} {sec(c['stroke_delay']['p95']):>5s} |"
          f" {sec(c['rep_delay']['median']):>9s} {sec(c['rep_delay']['p95']):>5s}")
    p("")
    p("Worst steps (error = counted - true; reproduce with simulate_case(case, seed)):")
    for w in result["worst"]:
        p(f"  {w['case']:15s} seed {w['seed']:<3d} step {w['step']:24s} {w['counts']:7s} true {w['true']:3d} "
          f"counted {w['counted']:3d} ({w['error']:+d})  t {w['window'][0]:.1f}-{w['window'][1]:.1f} s")
    inv = result["invariance"]
    p("")
    ok = all(i["identical"] for i in inv)
    p(f"Block-size invariance (0.01 s vs 10 s blocks): {'identical' if ok else 'DIFFERENT'} on "
      f"{len(inv)} sessions: " + ", ".join(f"{i['case']}/{i['seed']} ({i['events']} events"
                                           f"{'' if i['identical'] else ', ' + str(i['differences']) + ' differ'})" for i in inv))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3: 54 sessions)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one seed per case")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--csv", action="store_true", help="write each session as CSV and read it back")
    parser.add_argument("--block-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worst", type=int, default=15, help="how many of the worst steps to list")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--worlds", default="own", help="comma-separated: own, outside, real (default: own)")
    parser.add_argument("--outside-seed", type=int, help="the outside simulator's suite seed (one not tuned on)")
    parser.add_argument("--outside-count", type=int, default=120, help="recordings in the outside suite")
    args = parser.parse_args(argv)
    worlds = {w.strip() for w in args.worlds.split(",") if w.strip()}
    if worlds - {"own", "outside", "real"}:
        parser.error(f"unknown world {', '.join(sorted(worlds - {'own', 'outside', 'real'}))}: use own, outside, real")
    if "outside" in worlds and args.outside_seed is None:
        parser.error("--worlds outside needs --outside-seed: a seed you did not tune on")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] or list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}: use {', '.join(CASES)}")
    n_seeds = 1 if args.quick else args.seeds
    seeds = range(args.first_seed, args.first_seed + n_seeds)
    jobs = [(c, s, args.csv, args.block_seconds) for c in cases for s in seeds]
    inv_jobs = [(c, args.first_seed) for c in cases if c in ("baseline", "fast-cadence", "free-twist", "fidgety-rests", "sensor-limits")]
    inv_jobs = inv_jobs or [(cases[0], args.first_seed)]
    if args.quick:
        inv_jobs = inv_jobs[:2]

    started = time.perf_counter()
    if args.workers > 1:
        with Pool(args.workers) as pool:
            sessions = pool.map(score_session, jobs, chunksize=1)
            invariance = pool.map(check_invariance, inv_jobs, chunksize=1)
    else:
        sessions = [score_session(j) for j in jobs]
        invariance = [check_invariance(j) for j in inv_jobs]
    by_case = defaultdict(list)
    for sess in sessions:
        by_case[sess["case"]].append(sess)
    result = {
        "targets": TARGETS,
        "overall": summarise(sessions),
        "per_case": {case: summarise(by_case[case]) for case in cases},
        "worst": worst_steps(sessions, args.worst),
        "invariance": invariance,
        "elapsed_s": time.perf_counter() - started,
    }
    if "outside" in worlds:
        result["outside"] = outside_world(args.outside_seed, args.outside_count)
    if "real" in worlds:
        result["real"] = real_world()
    if args.json:
        result["sessions"] = [{k: v for k, v in s.items() if k not in ("stroke_delays", "rep_delays")} for s in sessions]
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print_report(result)
        if worlds != {"own"}:
            print()
            own = {"roll": result["overall"]["strokes"], "release": result["overall"]["reps"]}
            print_worlds(own, result.get("outside"), result.get("real"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
