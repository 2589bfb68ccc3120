"""Event batches: joined at once as they would be extended one by one."""

from __future__ import annotations

import numpy as np

from kneeroll_device.samples import EventBatch, GapEvent, RepEvent, StrokeEvent


def batch(t0: float, frames: int, t_end: float | None) -> EventBatch:
    ts = t0 + 0.1 * np.arange(frames)
    return EventBatch(strokes=[StrokeEvent(t=t0, duration=1.0, length_cm=10.0, mean_force_n=50.0)],
                      reps=[RepEvent(t=t0, duration=1.0, peak_force_n=90.0, rise_n=20.0, reported_t=t0 + 0.3)],
                      gaps=[GapEvent(t=t0, source="sensors", samples_lost=0, reason="a test")],
                      t_end=t_end, frame_t=ts, frame_force=ts * 2.0, frame_kpa=ts * 3.0)


def test_joined_batches_are_the_batches_extended_one_after_the_other():
    batches = [batch(0.0, 5, 0.4), batch(0.5, 0, None), batch(0.5, 3, 0.7), batch(0.8, 0, None)]
    extended = EventBatch()
    for b in batches:
        extended.extend(b)
    joined = EventBatch.joined(batches)
    assert joined.strokes == extended.strokes and joined.reps == extended.reps and joined.gaps == extended.gaps
    assert joined.t_end == extended.t_end == 0.7
    for name in ("frame_t", "frame_force", "frame_kpa"):
        assert np.array_equal(getattr(joined, name), getattr(extended, name))


def test_no_batches_join_into_an_empty_one():
    joined = EventBatch.joined([])
    assert joined.t_end is None and len(joined.frame_t) == 0 and joined.strokes == []
