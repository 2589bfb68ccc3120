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
from .errors import InputError
from .samples import EventBatch, ForceBlock, ImuBlock

def feed_recording(rec: Recording, pipeline: Pipeline, block_seconds: float = 10.0, stops: list[float] = ()):
    """Yields (t, EventBatch) for each block, and (stop, None) at each time in ``stops``.

    Blocks hold the samples before each edge, force first; edges step by
    ``block_seconds`` and jump over stretches with no data at all.
    """
    if not (block_seconds > 0 and math.isfinite(block_seconds)):
        raise InputError(f"block seconds must be a positive number, got {block_seconds}")
    if rec.force_t is None:
        pipeline.set_force_absent(True)
    streams = _Streams(rec, pipeline)
    pending_stops = sorted(stops)
    t0 = streams.next_time()
    k = 1
    while streams.next_time() < math.inf:
        edge = t0 + k * block_seconds
        while pending_stops and pending_stops[0] <= edge:
            stop = pending_stops.pop(0)
            yield stop, streams.feed_before(stop)
            yield stop, None
        yield edge, streams.feed_before(edge)
        # skip the edges of a long silence in one go
        k = max(k + 1, math.ceil((streams.next_time() - t0) / block_seconds) if streams.next_time() < math.inf else k + 1)
    for stop in pending_stops:
        yield stop, None
    yield streams.last_t, pipeline.finish()


class _Streams:
    """The recording's two streams, fed to the pipeline in time order."""

    def __init__(self, rec: Recording, pipeline: Pipeline):
        self.rec, self.pipeline = rec, pipeline
        self.imu_i = self.force_i = 0
        self.last_t = max(float(rec.imu_t[-1]), float(rec.force_t[-1]) if rec.force_t is not None else -math.inf)

    def next_time(self) -> float:
        rec = self.rec
        times = [rec.imu_t[self.imu_i]] if self.imu_i < len(rec.imu_t) else []
        if rec.force_t is not None and self.force_i < len(rec.force_t):
            times.append(rec.force_t[self.force_i])
        return float(min(times)) if times else math.inf

    def feed_before(self, edge: float) -> EventBatch:
        rec, batch = self.rec, EventBatch()
        if rec.force_t is not None:
            j = int(np.searchsorted(rec.force_t, edge, side="left"))
            if j > self.force_i:
                batch.extend(self.pipeline.feed_force(ForceBlock(rec.force_t[self.force_i:j], rec.force[self.force_i:j])))
                self.force_i = j
        j = int(np.searchsorted(rec.imu_t, edge, side="left"))
        if j > self.imu_i:
            gyro = rec.gyro[self.imu_i:j] if rec.gyro is not None else None
            batch.extend(self.pipeline.feed_imu(ImuBlock(rec.imu_t[self.imu_i:j], rec.accel[self.imu_i:j], gyro)))
            self.imu_i = j
        return batch


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
                                         "time_over_limit_s", "leg", "name", "targets")}
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
    batches: list[EventBatch] = []
    pending = list(controls)
    for t, batch in feed_recording(rec, pipeline, block_seconds, stops):
        if batch is None:
            while pending and pending[0][0] <= t:
                actions += engine.button(*pending.pop(0))
            continue
        batches.append(batch)
        actions += engine.handle(batch)
    everything = EventBatch.joined(batches)
    end = everything.t_end or 0.0
    actions += engine.tick(end)
    actions += engine.stop(end) if engine.in_session else []
    return ReplayResult(actions, engine, everything, rec.truth)


# --- analyze: no routine, just what happened ------------------------------------------


# the analysis feeds a minute at a time: the counts do not depend on it, and a few large
# blocks cost less than many small ones in the framing's array work
ANALYZE_BLOCK_S = 60.0


def analyze_recording(rec: Recording, contact: ContactModel | None = None, block_seconds: float = ANALYZE_BLOCK_S) -> dict:
    pipeline = Pipeline(contact or ContactModel())
    everything = EventBatch.joined([batch for _, batch in feed_recording(rec, pipeline, block_seconds)])
    t_start = float(rec.imu_t[0]) if len(rec.imu_t) else 0.0
    t_end = everything.t_end if everything.t_end is not None else t_start
    has_force = rec.force_t is not None and len(rec.force_t) > 0
    kpa = everything.frame_kpa[np.isfinite(everything.frame_kpa)] if has_force else np.zeros(0)
    return {
        "duration_s": round(rec.duration, 3),
        "has_force": has_force,
        "strokes": len(everything.strokes),
        "reps": len(everything.reps),
        "segments": segments(everything, t_start, t_end),
        "pressure": {"mean_kpa": round(float(kpa.mean()), 2), "peak_kpa": round(float(kpa.max()), 2)} if len(kpa) else None,
        "events": event_times(everything),
        "gaps": [{"t": round(g.t, 3), "reason": g.reason} for g in everything.gaps],
    }


def event_times(events: EventBatch) -> list[dict]:
    """Every stroke and rep with the time the pipeline reported it, in time order, so a
    delay can be measured against any truth (a rep also keeps the time of its force peak)."""
    out = [{"kind": "stroke", "t": round(s.t, 3)} for s in events.strokes]
    out += [{"kind": "rep", "t": round(_reported(r), 3), "peak_t": round(r.t, 3)} for r in events.reps]
    return sorted(out, key=lambda e: e["t"])


def _reported(rep) -> float:
    return rep.t if math.isnan(rep.reported_t) else rep.reported_t


# counts closer than this in time belong to one bout (a pause at the far end of a stroke,
# the gap between two reps); a longer quiet is a rest
BOUT_GAP_S = 4.0


def segments(events: EventBatch, t_start: float, t_end: float) -> list[dict]:
    """Roll, hold and rest segments: when the strokes and the reps happened, each with its counts.

    A stroke covers the time from the start of its way out to when it was reported, a rep
    from the start of its rise to when it was reported; those of one kind closer than
    BOUT_GAP_S make one segment, and the time between segments is rest. The segments
    follow one another without overlapping, and every count is in exactly one of them: a
    count of the other kind that lies within a segment (a rep told in the middle of
    rolling) is counted in that segment, beside its own kind's.
    """
    spans = [(s.t - s.duration, s.t, "roll", "strokes") for s in events.strokes]
    spans += [(_reported(r) - r.duration, _reported(r), "hold", "reps") for r in events.reps]
    bouts: list[dict] = []
    for start, end, kind, counted in sorted(spans):
        last = bouts[-1] if bouts else None
        if last is not None and (end <= last["end"] or last["kind"] == kind and start - last["end"] <= BOUT_GAP_S):
            last["end"] = max(last["end"], end)
            last[counted] += 1
            continue
        bout = {"kind": kind, "start": max(start, last["end"] if last else t_start), "end": end,
                "strokes": 0, "reps": 0}
        bout[counted] += 1
        bouts.append(bout)
    out: list[dict] = []
    cursor = t_start
    for bout in bouts:
        if bout["start"] > cursor:
            out.append({"kind": "rest", "start": cursor, "end": bout["start"], "strokes": 0, "reps": 0})
        out.append(bout)
        cursor = bout["end"]
    if t_end > cursor:
        out.append({"kind": "rest", "start": cursor, "end": t_end, "strokes": 0, "reps": 0})
    for seg in out:
        seg["start"], seg["end"] = round(seg["start"], 2), round(seg["end"], 2)
    return out
