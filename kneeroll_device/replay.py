"""Replay and analysis of recordings: the live code path, at full speed.

``replay`` runs the pipeline and the routine engine over a recording, with the
button presses the recording kept, and reports per step what the daemon would
have. ``analyze`` runs the pipeline alone and cuts the recording into roll,
hold and rest segments with their counts: it needs no routine and works on any
IMU recording.

Data are fed in blocks of ``block_seconds``, force before IMU within each
block, so both streams reach every frame together; the pipeline's events are
the same for any block size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .pipeline import ContactModel, Pipeline
from .recording import Recording
from .routine.engine import Action, Engine, EngineSettings
from .routine.spec import Routine
from .samples import EventBatch, ForceBlock, ImuBlock

COUNT_KEYS = ("strokes", "reps", "active_s")


def feed_recording(rec: Recording, pipeline: Pipeline, block_seconds: float = 10.0, stops: list[float] = ()):
    """Yields (t, EventBatch) for each block, and (stop, None) at each time in ``stops``."""
    if block_seconds <= 0:
        raise ValueError("block_seconds must be positive")
    if rec.force_t is None:
        pipeline.set_force_absent(True)
    if rec.gyro is None and len(rec.imu_t) == 0:
        pipeline.set_imu_absent(True)
    t0 = float(rec.imu_t[0]) if len(rec.imu_t) else 0.0
    if rec.force_t is not None and len(rec.force_t):
        t0 = min(t0, float(rec.force_t[0]))
    t_last = float(rec.imu_t[-1]) if len(rec.imu_t) else t0
    if rec.force_t is not None and len(rec.force_t):
        t_last = max(t_last, float(rec.force_t[-1]))
    edges = sorted(set(np.arange(t0, t_last + block_seconds, block_seconds).tolist()) | set(stops))
    imu_i = force_i = 0
    for edge in edges:
        batch = EventBatch()
        if rec.force_t is not None:
            j = int(np.searchsorted(rec.force_t, edge, side="left"))
            if j > force_i:
                batch.extend(pipeline.feed_force(ForceBlock(rec.force_t[force_i:j], rec.force[force_i:j])))
                force_i = j
        j = int(np.searchsorted(rec.imu_t, edge, side="left"))
        if j > imu_i:
            gyro = rec.gyro[imu_i:j] if rec.gyro is not None else None
            batch.extend(pipeline.feed_imu(ImuBlock(rec.imu_t[imu_i:j], rec.accel[imu_i:j], gyro)))
            imu_i = j
        yield edge, batch
        if edge in stops:
            yield edge, None
    yield t_last, pipeline.finish()


@dataclass
class ReplayResult:
    actions: list[Action]
    engine: Engine
    events: EventBatch
    truth: dict | None = None
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        steps = []
        truth_steps = (self.truth or {}).get("steps", [])
        for progress in self.engine.plan:
            steps.append(step_json(progress.summary(), _truth_for(truth_steps, progress.position)))
        return {"completed": self.engine.outcome == "completed", "outcome": self.engine.outcome, "steps": steps}


def step_json(summary: dict, truth: dict | None) -> dict:
    """A step as the demo and replay report it (keys are a contract)."""
    out = {key: summary[key] for key in ("index", "id", "kind", "completed", "skipped", "active_s", "strokes", "reps",
                                         "mean_kpa", "peak_kpa", "mean_force_n", "peak_force_n", "warnings",
                                         "time_over_limit_s", "leg", "name")}
    if truth is not None:
        out["truth"] = {k: truth.get(k) for k in ("strokes", "reps", "active_s", "skipped")}
    return out


def _truth_for(truth_steps: list[dict], position: int) -> dict | None:
    for step in truth_steps:
        if step.get("index") == position:
            return step
    return None


def replay_recording(rec: Recording, routine: Routine, *, leg: str = "right", settings: EngineSettings | None = None,
                     contact: ContactModel | None = None, block_seconds: float = 10.0) -> ReplayResult:
    pipeline = Pipeline(contact or ContactModel())
    engine = Engine(routine, leg=leg, settings=settings or EngineSettings())
    controls = [(float(t), str(kind)) for t, kind in (rec.meta.get("controls") or (rec.truth or {}).get("controls") or [])]
    stops = [t for t, _ in controls]
    actions: list[Action] = []
    everything = EventBatch()
    pending = list(controls)
    for t, batch in feed_recording(rec, pipeline, block_seconds, stops):
        if batch is None:
            while pending and pending[0][0] <= t:
                actions += engine.button(*pending.pop(0))
            continue
        everything.extend(batch)
        actions += engine.handle(batch)
    end = everything.t_end or 0.0
    actions += engine.tick(end)
    actions += engine.stop(end) if engine.in_session else []
    return ReplayResult(actions, engine, everything, rec.truth)


# --- analyze: no routine, just what happened ------------------------------------------


def analyze_recording(rec: Recording, contact: ContactModel | None = None, block_seconds: float = 10.0) -> dict:
    pipeline = Pipeline(contact or ContactModel())
    everything = EventBatch()
    for _, batch in feed_recording(rec, pipeline, block_seconds):
        everything.extend(batch)
    t_start = float(rec.imu_t[0]) if len(rec.imu_t) else 0.0
    t_end = everything.t_end if everything.t_end is not None else t_start
    has_force = rec.force_t is not None and len(rec.force_t) > 0
    kpa = everything.frame_kpa[np.isfinite(everything.frame_kpa)] if has_force else np.zeros(0)
    return {
        "duration_s": round(rec.duration, 3),
        "strokes": len(everything.strokes),
        "reps": len(everything.reps),
        "segments": segments(everything, t_start, t_end),
        "pressure": {"mean_kpa": round(float(kpa.mean()), 2), "peak_kpa": round(float(kpa.max()), 2)} if len(kpa) else None,
        "stroke_times": [round(s.t, 2) for s in everything.strokes],
        "rep_times": [round(r.t, 2) for r in everything.reps],
    }


SEGMENT_KIND = {"rolling": "roll", "holding": "hold", "rest": "rest", "transition": "rest"}


def segments(events: EventBatch, t_start: float, t_end: float) -> list[dict]:
    """Roll, hold and rest segments from the motion states, each with its counts."""
    cuts: list[tuple[float, str]] = [(t_start, "rest")]
    for state in events.states:
        kind = SEGMENT_KIND[state.state]
        if kind != cuts[-1][1]:
            cuts.append((state.t, kind))
    out = []
    for i, (start, kind) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else t_end
        if end - start <= 0:
            continue
        strokes = sum(start < s.t <= end for s in events.strokes)
        reps = sum(start < (r.reported_t if not math.isnan(r.reported_t) else r.t) <= end for r in events.reps)
        if out and out[-1]["kind"] == kind:
            out[-1].update(end=round(end, 2), strokes=out[-1]["strokes"] + strokes, reps=out[-1]["reps"] + reps)
            continue
        out.append({"kind": kind, "start": round(start, 2), "end": round(end, 2), "strokes": strokes, "reps": reps})
    return out
