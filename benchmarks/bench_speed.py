"""Speed and memory of `kneeroll analyze`'s work over a one-hour recording, and the live cost.

    .venv/bin/python benchmarks/bench_speed.py                # one hour, 3 repeats
    .venv/bin/python benchmarks/bench_speed.py --hours 0.25 --repeats 5 --json

A one-hour recording (100 Hz IMU with gyro, 80 Hz force) is built from simulated sessions
of the hard cases played back to back, and written as CSV to a temporary folder. Then:

- load: read_recording of the folder (CSV parsing), median of the repeats.
- process: analyze_recording of the loaded recording (the pipeline in 10 s blocks and the
  segments), median of the repeats. Target: load and process together under 1 s for the
  hour (>= 3600x real time).
- memory: the peak of Python allocations (tracemalloc) while processing, and while loading
  and processing, in a separate run (tracing slows the code down); and the peak resident
  size (getrusage) of a fresh interpreter that only loads and analyzes the recording, which
  includes the interpreter and NumPy themselves. Target < 200 MB.
- live: the daemon's pattern, 0.1 s blocks of force then IMU into a fresh Pipeline, CPU time
  (time.process_time) per second of data; target < 2 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from kneeroll_device.pipeline import Pipeline
from kneeroll_device.recording import read_recording, write_recording_folder
from kneeroll_device.replay import analyze_recording
from kneeroll_device.samples import ForceBlock, ImuBlock
from kneeroll_device.sim.hard_cases import CASES, simulate_case

IMU_HZ = 100.0
FORCE_HZ = 80.0
TARGETS = {"load_and_process_s_per_hour": 1.0, "peak_mb": 200.0, "live_ms_per_s": 2.0}


def build_hour(out: Path, hours: float) -> tuple[Path, float, int]:
    """Sessions of every case back to back until the length is reached; written as CSV."""
    want = hours * 3600.0
    imu_t, accel, gyro, force_t, force = [], [], [], [], []
    offset, n, names = 0.0, 0, list(CASES)
    while offset < want:
        session = simulate_case(names[n % len(names)], seed=100 + n)
        t = np.arange(0.0, session.duration, 1.0 / IMU_HZ)
        t = t[t + offset < want]
        a, g = session.imu_at(t)
        ft = np.arange(0.0, session.duration, 1.0 / FORCE_HZ)
        ft = ft[ft + offset < want]
        imu_t.append(t + offset)
        accel.append(a)
        gyro.append(g)
        force_t.append(ft + offset)
        force.append(session.force_at(ft))
        offset += session.duration + 1.0 / IMU_HZ
        n += 1
    meta = {"source": "simulated", "imu_rate_hz": IMU_HZ, "force_rate_hz": FORCE_HZ, "sessions": n}
    path = write_recording_folder(out / "hour", np.concatenate(imu_t), np.concatenate(accel), np.concatenate(gyro),
                                  np.concatenate(force_t), np.concatenate(force), meta)
    return path, min(offset, want), n


def timed(fn, *args):
    gc.collect()
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def traced_peak_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def live_cost(rec, block_s: float = 0.1) -> tuple[float, int]:
    """CPU seconds for the whole recording fed as the daemon does, and the number of events."""
    pipeline = Pipeline()
    t_end = float(rec.imu_t[-1])
    edges = np.arange(block_s, t_end + block_s, block_s)
    imu_idx = np.searchsorted(rec.imu_t, edges, side="left")
    force_idx = np.searchsorted(rec.force_t, edges, side="left")
    imu_blocks = [ImuBlock(rec.imu_t[a:b], rec.accel[a:b], rec.gyro[a:b])
                  for a, b in zip(np.r_[0, imu_idx[:-1]], imu_idx)]
    force_blocks = [ForceBlock(rec.force_t[a:b], rec.force[a:b]) for a, b in zip(np.r_[0, force_idx[:-1]], force_idx)]
    events = 0
    gc.collect()
    start = time.process_time()
    for fb, ib in zip(force_blocks, imu_blocks):
        batch = pipeline.feed_force(fb)
        events += len(batch.strokes) + len(batch.reps)
        batch = pipeline.feed_imu(ib)
        events += len(batch.strokes) + len(batch.reps)
    events += len(pipeline.finish().strokes)
    return time.process_time() - start, events


RSS_PROBE = """
import resource, sys


def peak_kb():
    # VmHWM belongs to this program's memory map; ru_maxrss can carry the parent's peak over a fork
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


from kneeroll_device.recording import read_recording
from kneeroll_device.replay import analyze_recording
base = peak_kb()
analyze_recording(read_recording(sys.argv[1]))
print(base, peak_kb())
"""


def fresh_process_rss_mb(path: Path) -> tuple[float, float]:
    """Peak resident size of a fresh interpreter that loads and analyzes the recording (and before it did)."""
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True, check=True)
    before, after = (float(x) / 1024.0 for x in out.stdout.split())  # kB
    return before, after


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))

    with tempfile.TemporaryDirectory() as tmp:
        build_s, (path, seconds, n_sessions) = timed(build_hour, Path(tmp), args.hours)
        size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        say(f"recording: {seconds / 3600:.2f} h from {n_sessions} simulated sessions, {size_mb:.0f} MB of CSV "
            f"(built in {build_s:.1f} s)")
        loads, processes, lives, result = [], [], [], None
        for _ in range(args.repeats):
            load_s, rec = timed(read_recording, path)
            process_s, result = timed(analyze_recording, rec)
            live_s, _ = live_cost(rec)
            loads.append(load_s)
            processes.append(process_s)
            lives.append(live_s)
        peak_process = traced_peak_mb(lambda: analyze_recording(rec))
        del rec
        peak_all = traced_peak_mb(lambda: analyze_recording(read_recording(path)))
        rss_imports_mb, maxrss_mb = fresh_process_rss_mb(path)

    hours = seconds / 3600.0
    load_s, process_s, live_s = (statistics.median(x) for x in (loads, processes, lives))
    report = {
        "hours": hours, "sessions": n_sessions, "csv_mb": size_mb, "repeats": args.repeats,
        "load_s": load_s, "load_s_all": loads,
        "process_s": process_s, "process_s_all": processes,
        "process_s_per_hour": process_s / hours, "load_and_process_s_per_hour": (load_s + process_s) / hours,
        "realtime_factor": seconds / (load_s + process_s),
        "peak_mb_processing": peak_process, "peak_mb_load_and_process": peak_all, "maxrss_mb": maxrss_mb, "rss_after_imports_mb": rss_imports_mb,
        "live_ms_per_s": 1000.0 * live_s / seconds, "live_ms_per_s_all": [1000.0 * x / seconds for x in lives],
        "events": {"strokes": result["strokes"], "reps": result["reps"]},
        "targets": TARGETS,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return 0

    def line(name, value, target, ok):
        print(f"  {name:44s} {value:>14s}   {target:>10s}  {'ok' if ok else 'MISS'}")

    print(f"median of {args.repeats} repeats ({', '.join(f'{x:.2f}' for x in processes)} s processing):")
    whole = (load_s + process_s) / hours
    line("CSV load (read_recording), per hour", f"{load_s / hours:.3f} s", "", True)
    line("processing (analyze_recording), per hour", f"{process_s / hours:.3f} s", "", True)
    line("load + processing, per hour", f"{whole:.3f} s", "< 1 s", whole < TARGETS["load_and_process_s_per_hour"])
    line("  real-time factor", f"{3600.0 / whole:,.0f}x", ">= 3600x", whole < TARGETS["load_and_process_s_per_hour"])
    line("peak Python memory, processing", f"{peak_process:.0f} MB", "< 200 MB", peak_process < TARGETS["peak_mb"])
    line("peak Python memory, load + processing", f"{peak_all:.0f} MB", "< 200 MB", peak_all < TARGETS["peak_mb"])
    line("peak resident size, fresh `analyze` process", f"{maxrss_mb:.0f} MB", "< 200 MB", maxrss_mb < TARGETS["peak_mb"])
    print(f"    (of which {rss_imports_mb:.0f} MB is the interpreter with NumPy and kneeroll imported)")
    line("live: CPU per second of data (0.1 s blocks)", f"{1000 * live_s / seconds:.3f} ms", "< 2 ms",
         1000 * live_s / seconds < TARGETS["live_ms_per_s"])
    print(f"  events over the recording: {result['strokes']} strokes, {result['reps']} reps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
