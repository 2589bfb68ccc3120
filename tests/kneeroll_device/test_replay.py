"""analyze's segments: when the strokes and the reps happened, each with its own counts."""

from __future__ import annotations

from kneeroll_device.replay import BOUT_GAP_S, segments
from kneeroll_device.samples import EventBatch, RepEvent, StrokeEvent


def stroke(t: float, duration: float = 1.5) -> StrokeEvent:
    return StrokeEvent(t=t, duration=duration, length_cm=10.0, mean_force_n=80.0)


def rep(peak: float, reported: float) -> RepEvent:
    return RepEvent(t=peak, duration=reported - peak + 1.0, peak_force_n=120.0, rise_n=30.0, reported_t=reported)


def test_a_bout_of_strokes_then_reps_makes_roll_rest_hold_rest():
    events = EventBatch(strokes=[stroke(t) for t in (12.0, 13.5, 15.0)],
                        reps=[rep(p, p + 0.4) for p in (30.0, 33.0, 36.0)])
    out = segments(events, 0.0, 50.0)
    assert [s["kind"] for s in out] == ["rest", "roll", "rest", "hold", "rest"]
    roll, hold = out[1], out[3]
    # a roll starts with the first stroke's way out, not when the first stroke was told
    assert roll["start"] == 10.5 and roll["end"] == 15.0 and roll["strokes"] == 3 and roll["reps"] == 0
    assert hold["start"] == 29.0 and hold["end"] == 36.4 and hold["reps"] == 3 and hold["strokes"] == 0
    assert sum(s["strokes"] for s in out) == 3 and sum(s["reps"] for s in out) == 3


def test_a_quiet_longer_than_a_bout_gap_splits_a_roll():
    events = EventBatch(strokes=[stroke(10.0), stroke(11.5), stroke(11.5 + 1.5 + BOUT_GAP_S + 1.0)])
    kinds = [s["kind"] for s in segments(events, 0.0, 30.0)]
    assert kinds == ["rest", "roll", "rest", "roll", "rest"]


def test_nothing_counted_is_one_rest():
    assert segments(EventBatch(), 0.0, 20.0) == [{"kind": "rest", "start": 0.0, "end": 20.0, "strokes": 0, "reps": 0}]
