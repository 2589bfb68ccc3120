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


def test_a_rep_told_while_rolling_is_counted_once_and_segments_do_not_overlap():
    # a rep told in the middle of a bout of rolling: before, it opened a hold segment that
    # ended before it began, and the roll after it overlapped the one before, so the
    # strokes in the overlap were counted in both
    events = EventBatch(strokes=[stroke(t, 3.0) for t in (10.0, 14.0, 18.0, 22.0, 26.0)],
                        reps=[rep(17.0, 17.5)])
    out = segments(events, 0.0, 40.0)
    assert sum(s["strokes"] for s in out) == 5 and sum(s["reps"] for s in out) == 1
    assert all(s["start"] <= s["end"] for s in out)
    assert all(a["end"] <= b["start"] for a, b in zip(out, out[1:]))
    assert [s["kind"] for s in out] == ["rest", "roll", "rest"]
    assert out[1]["strokes"] == 5 and out[1]["reps"] == 1


def test_counts_of_both_kinds_in_turn_each_land_in_one_segment():
    events = EventBatch(strokes=[stroke(t) for t in (5.0, 6.5, 8.0, 20.0, 21.5)],
                        reps=[rep(p, p + 0.4) for p in (8.5, 11.0, 13.0)])
    out = segments(events, 0.0, 30.0)
    assert sum(s["strokes"] for s in out) == 5 and sum(s["reps"] for s in out) == 3
    assert all(a["end"] <= b["start"] for a, b in zip(out, out[1:]))
    assert out[0]["start"] == 0.0 and out[-1]["end"] == 30.0
