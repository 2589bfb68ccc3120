"""Making a long spool left by a daemon that died into a recording: time and peak memory.

    .venv/bin/python benchmarks/bench_recovery.py             # a 3-hour spool (the longest recording)
    .venv/bin/python benchmarks/bench_recovery.py --hours 1

The spool is what a session of that length leaves when its writer is killed: 100 Hz IMU
with gyro and 80 Hz force, one gzip member a file every 5 s, as spool.py writes them.
Recovery runs in a fresh process each time, so its peak resident memory (ru_maxrss) is its
own; tracemalloc's peak (a second run: tracing slows it down) is what Python allocated on top
of the interpreter and NumPy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kneeroll_device.samples import ForceBlock, ImuBlock
from kneeroll_device.spool import SpoolFiles

CHUNK_S = 5.0
T_FROM = 1000.0

MEASURE = """
import json, resource, sys, time, tracemalloc
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from kneeroll_device.spool_recovery import recover_spools
trace = sys.argv[3] == "trace"
if trace:
    tracemalloc.start()
start = time.perf_counter()
recovered = recover_spools(Path(sys.argv[1]))
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1] if trace else None
print(json.dumps({"seconds": seconds, "tracemalloc_peak_mb": None if peak is None else peak / 2**20,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "recovered": [str(r.path) for r in recovered]}))
"""


def build_spool(recordings: Path, hours: float) -> Path:
    """A spool of ``hours`` of samples, written member by member without the flushes (only speed differs)."""
    meta = {"session_id": None, "writer": "bench/boot/1", "opened_at": "2026-03-01T07:30:00+00:00",
            "t_from": T_FROM, "meta": {"routine": "runners-knee"}}
    files = SpoolFiles.create(recordings, meta, T_FROM)
    rng = np.random.default_rng(1)
    with open(files.folder / "imu.csv.gz", "ab") as imu, open(files.folder / "force.csv.gz", "ab") as force:
        for start in np.arange(0.0, hours * 3600.0, CHUNK_S):
            t = np.round(T_FROM + start + np.arange(0, CHUNK_S, 0.01), 4)
            accel = rng.normal(0, 0.3, (len(t), 3)) + [0, 0, 1]
            imu_block = ImuBlock(t, accel, rng.normal(0, 20, (len(t), 3)))
            tf = np.round(T_FROM + start + np.arange(0, CHUNK_S, 0.0125), 4)
            chunk = files.encode([imu_block], [ForceBlock(tf, 50 + rng.normal(0, 5, len(tf)))], [])
            imu.write(chunk.imu)
            force.write(chunk.force)
            files.last["imu"], files.last["force"], files.with_gyro = chunk.imu_last, chunk.force_last, True
    files.close()
    return files.folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        built = time.perf_counter()
        spool = build_spool(template, args.hours)
        size = sum(f.stat().st_size for f in spool.iterdir()) / 2**20
        print(f"{args.hours:g} h spool: {size:.1f} MB on disk (built in {time.perf_counter() - built:.0f} s)")
        for mode in ("plain", "trace"):
            recordings = Path(tmp) / mode
            shutil.copytree(template, recordings)
            out = subprocess.run([sys.executable, "-c", MEASURE, str(recordings), str(ROOT), mode],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout)
            if mode == "plain":
                print(f"recovery: {result['seconds']:.2f} s, peak RSS of the process {result['max_rss_mb']:.0f} MB "
                      f"({len(result['recovered'])} recovered)")
            else:
                print(f"with tracemalloc: {result['seconds']:.2f} s, "
                      f"Python's peak allocation {result['tracemalloc_peak_mb']:.1f} MB")


if __name__ == "__main__":
    main()
