"""The two worlds outside the project's own simulator, each beside a reference counter.

- outside: a fresh suite of the independent simulator in ../shared/outside-sim/, written
  on a seed given here and scored by its own command line (``rollsim.py score``), once
  for ``kneeroll analyze`` and once for the simulator's naive baseline counter.
- real: the hand-counted sets in ../shared/real/ (an upper-arm IMU, no force): each
  out-and-back cycle is a stroke, scored on ``analyze``'s stroke count, beside the
  reference counter that the folder's README describes.

Neither world's files belong to the project: a world whose folder is absent is
skipped, and the report says so. The reference counter needs scipy (the ``bench``
extra): ``.venv/bin/pip install -e '.[bench]'``.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kneeroll_device.recording import read_recording
from kneeroll_device.replay import analyze_recording

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCORE_LINE = re.compile(r"^SCORE (.*)$", re.M)


# --- the outside simulator ----------------------------------------------------------------


def outside_world(seed: int, count: int, shared: Path = SHARED) -> dict:
    """A fresh suite on ``seed``, scored for kneeroll and for the simulator's naive baseline."""
    sim = shared / "outside-sim" / "rollsim.py"
    if not sim.is_file():
        return {"skipped": f"{sim} is absent"}
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        subprocess.run([python, str(sim), "suite", "--out", str(suite), "--count", str(count), "--seed", str(seed)],
                       check=True, capture_output=True, text=True)
        ours = _score(sim, suite, f"{python} -m kneeroll_device.cli analyze {{path}} --json")
        reference = _score(sim, suite, f"{python} {sim} baseline {{path}} --json")
    return {"seed": seed, "count": count, "kneeroll": ours, "reference": reference}


def _score(sim: Path, suite: Path, cmd: str) -> dict:
    done = subprocess.run([sys.executable, str(sim), "score", "--suite", str(suite), "--cmd", cmd],
                          capture_output=True, text=True)
    found = SCORE_LINE.search(done.stdout)
    if found is None:
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    return {key: float(value) for key, value in (pair.split("=") for pair in found.group(1).split())}


# --- the real recordings ------------------------------------------------------------------


def reference_count(t: np.ndarray, accel: np.ndarray) -> int:
    """The counter of ../shared/real/README.md: causal, accelerometer only.

    Gravity removed by a trailing 1 s mean, the rest projected on its principal axis
    (over the set), a 2nd-order Butterworth band-pass of 0.15-2 Hz run forward, and one
    count each time the signal rises above +h after being below -h, h = std / sqrt(2).
    """
    try:
        from scipy.signal import butter, lfilter
    except ImportError:
        raise SystemExit("the real recordings' reference counter needs scipy: "
                         ".venv/bin/pip install -e '.[bench]'") from None

    rate = (len(t) - 1) / (t[-1] - t[0])
    window = max(1, int(round(rate)))
    sums = np.cumsum(np.vstack([np.zeros(3), accel]), axis=0)
    starts = np.maximum(np.arange(len(accel)) + 1 - window, 0)
    trailing = (sums[1:] - sums[starts]) / (np.arange(len(accel)) + 1 - starts)[:, None]
    rest = accel - trailing
    _, vectors = np.linalg.eigh(np.cov(rest.T))
    signal = rest @ vectors[:, -1]
    b, a = butter(2, [0.15, min(2.0, 0.45 * rate)], btype="band", fs=rate)
    signal = lfilter(b, a, signal)
    h = signal.std() / math.sqrt(2.0)
    count, below = 0, False
    for x in signal:
        if x < -h:
            below = True
        elif x > h and below:
            count, below = count + 1, False
    return count


def real_world(shared: Path = SHARED) -> dict:
    """Within +/-1 and exact, per exercise and in all, for kneeroll and the reference counter."""
    folder = shared / "real"
    truth_file = folder / "truth.json"
    if not truth_file.is_file():
        return {"skipped": f"{truth_file} is absent"}
    truth = json.loads(truth_file.read_text())
    rows = []
    for name, entry in sorted(truth.items()):
        rec = read_recording(folder / name)
        rows.append({"set": name, "exercise": entry["exercise"], "true": entry["reps"],
                     "kneeroll": analyze_recording(rec)["strokes"], "reference": reference_count(rec.imu_t, rec.accel)})
    groups = {"all": rows}
    for row in rows:
        groups.setdefault(row["exercise"], []).append(row)
    return {"sets": len(rows), "by_group": {group: _shares(members) for group, members in groups.items()}}


def _shares(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for who in ("kneeroll", "reference"):
        errors = np.array([r[who] - r["true"] for r in rows])
        out[who] = {"within1": float(np.mean(np.abs(errors) <= 1)), "exact": float(np.mean(errors == 0))}
    return out


# --- the report ---------------------------------------------------------------------------


def print_worlds(own: dict | None, outside: dict | None, real: dict | None, out=sys.stdout) -> None:
    """The three worlds side by side: within +/-1 (exact) for kneeroll and its reference."""
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("Three worlds, within +/-1 (exact in brackets); the reference counter beside kneeroll")
    p(f"  {'world':52s} {'kneeroll':>16s} {'reference':>16s}")
    if own is not None:
        for label, key in (("own simulator, roll steps (strokes)", "roll"), ("own simulator, release steps (reps)", "release")):
            c = own.get(key, {})
            p(f"  {label:52s} {_pair(c.get('within1'), c.get('exact')):>16s} {'-':>16s}")
    if outside is not None:
        if "skipped" in outside:
            p(f"  outside simulator: skipped ({outside['skipped']})")
        else:
            ours, ref = outside["kneeroll"], outside["reference"]
            label = f"outside simulator, seed {outside['seed']}"
            for what, key in (("roll segments (strokes)", "strokes"), ("holds (reps)", "reps")):
                p(f"  {label + ', ' + what:52s} {_pair(ours.get(key + '_pm1'), ours.get(key + '_exact')):>16s} "
                  f"{_pair(ref.get(key + '_pm1'), ref.get(key + '_exact')):>16s}")
            p(f"  {'  phantoms per minute of rest':52s} {ours.get('phantom_per_min', math.nan):>16.2f} "
              f"{ref.get('phantom_per_min', math.nan):>16.2f}")
            p(f"  {'  delay median, stroke / rep (s)':52s} "
              f"{ours.get('stroke_lat_med_s', math.nan):>7.2f} / {ours.get('rep_lat_med_s', math.nan):<6.2f}")
    if real is not None:
        if "skipped" in real:
            p(f"  real recordings: skipped ({real['skipped']})")
        else:
            for group, shares in real["by_group"].items():
                label = f"real recordings, {group} ({shares['n']} sets)"
                p(f"  {label:52s} {_pair(shares['kneeroll']['within1'], shares['kneeroll']['exact']):>16s} "
                  f"{_pair(shares['reference']['within1'], shares['reference']['exact']):>16s}")


def _pair(within1, exact) -> str:
    if within1 is None or (isinstance(within1, float) and math.isnan(within1)):
        return "-"
    return f"{100 * within1:5.1f}% ({100 * exact:5.1f}%)"
