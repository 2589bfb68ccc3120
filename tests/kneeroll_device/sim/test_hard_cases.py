"""The hard cases: self-consistent truth, deterministic per seed, honest to their description."""

import functools

import numpy as np
import pytest

from kneeroll_device.routine.spec import load_routine
from kneeroll_device.sim.hard_cases import CASES, ZERO_G_OFFSET_G, ZERO_RATE_OFFSET_DPS, case_habits, simulate_case
from kneeroll_device.sim.person import FS, Habits
from kneeroll_device.sim.world import simulate_session


@functools.lru_cache(maxsize=64)
def session(case: str, seed: int = 1):
    return simulate_case(case, seed)


@pytest.mark.parametrize("case", list(CASES))
def test_truth_is_self_consistent(case):
    s = session(case)
    steps = s.script.steps
    assert [t.index for t in steps] == sorted(t.index for t in steps)
    for before, after in zip(steps, steps[1:]):
        assert before.end <= after.start  # steps do not overlap
    for truth in steps:
        assert 0.0 <= truth.start <= truth.end <= s.duration
        assert truth.strokes == len(truth.stroke_ends)
        assert truth.reps == len(truth.rep_peaks)
        assert all(truth.start < t <= truth.end + 1e-9 for t in truth.stroke_ends)
        assert all(truth.start < t < truth.end for t in truth.rep_peaks)
        assert truth.stroke_ends == sorted(truth.stroke_ends) and truth.rep_peaks == sorted(truth.rep_peaks)
        if truth.kind == "roll" and not truth.skipped:
            assert truth.strokes >= 3 and truth.reps == 0
        if truth.kind == "release" and not truth.skipped:
            assert truth.reps >= truth.points * 5  # the routine's 5-10 reps per point, at least
    assert np.all(np.isfinite(s.accel_g)) and np.all(np.isfinite(s.gyro_dps)) and np.all(np.isfinite(s.force_n))


@pytest.mark.parametrize("case", ["baseline", "free-twist", "partial-reps", "fidgety-rests", "force-drift", "any-angle"])
def test_deterministic_per_seed(case):
    a, b = simulate_case(case, 4), simulate_case(case, 4)
    assert a.truth() == b.truth()
    for name in ("accel_g", "gyro_dps", "force_n"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = simulate_case(case, 5)
    assert not np.array_equal(a.force_n[:1000], c.force_n[:1000])


def test_baseline_is_the_world_session():
    a = simulate_case("baseline", 3)
    b = simulate_session(load_routine("runners-knee"), seed=3)
    assert a.truth()["steps"] == b.truth()["steps"]
    assert np.array_equal(a.accel_g, b.accel_g) and np.array_equal(a.gyro_dps, b.gyro_dps)
    assert np.array_equal(a.force_n, b.force_n)


def test_default_sessions_are_unchanged():
    # the quirks' defaults are what every drawn person does: the demo's seed 1 stays the same session
    truth = simulate_session(load_routine("runners-knee"), seed=1).truth()
    counts = [step["strokes"] if step["kind"] == "roll" else step["reps"] for step in truth["steps"]]
    assert counts == [11, 16, 13, 6, 10, 19, 6, 18]
    assert truth["duration_s"] == pytest.approx(336.1, abs=0.05)
    assert truth["steps"][0]["stroke_ends"][:3] == pytest.approx([6.202, 7.808, 9.957], abs=1e-9)
    assert truth["steps"][1]["rep_peaks"][:2] == pytest.approx([31.46, 35.33], abs=0.01)
    assert Habits.__dataclass_fields__["fidget_rests"].default is False


def test_cadence_and_stroke_length_cases_do_what_they_say():
    for seed in (1, 2):
        slow, fast = case_habits("slow-cadence", seed), case_habits("fast-cadence", seed)
        assert 10 <= slow.cadence_spm <= 14 and 50 <= fast.cadence_spm <= 60
        for case, lo, hi in (("slow-cadence", 7, 20), ("fast-cadence", 35, 80)):
            for truth in session(case, seed).script.steps:
                if truth.kind == "roll":
                    per_min = 60 * (len(truth.stroke_ends) - 1) / (truth.stroke_ends[-1] - truth.stroke_ends[0])
                    assert lo <= per_min <= hi, (case, truth.id, per_min)
    short, long_ = session("short-strokes"), session("long-strokes")
    for s, lo, hi in ((short, 0.02, 0.09), (long_, 0.13, 0.52)):
        roll = next(t for t in s.script.steps if t.id == "mid-thigh-roll")
        i0, i1 = int(roll.start * FS), int(roll.end * FS)
        travel = np.ptp(s.script.s_m[i0:i1])
        assert lo <= travel <= hi


def test_partial_reps_count_and_twitches_do_not():
    s = session("partial-reps", 2)
    h = case_habits("partial-reps", 2)
    for truth in s.script.steps:
        if truth.kind != "release":
            continue
        # every true rep is a clear rise of the squeeze; twitches between them are small and not in the truth
        for peak in truth.rep_peaks:
            i = int(round(peak * FS))
            before = s.true_force_n[max(i - int(0.8 * h.rep_seconds * FS), 0): i].min()
            assert s.true_force_n[i] - before > 0.3 * h.rep_rise_n * 0.6 * 0.75
    force = s.true_force_n
    assert np.all(np.isfinite(force))


def test_rests_are_restless_but_unloaded():
    s = session("fidgety-rests")
    steps = s.script.steps
    for before, after in zip(steps, steps[1:]):
        i0, i1 = int((before.end + 1.0) * FS), int((after.start - 2.0) * FS)
        if i1 <= i0:
            continue
        assert s.true_force_n[i0:i1].max() < 20.0  # grabbing the handles, not pressing in
    quiet = session("baseline")
    assert np.std(s.gyro_dps, axis=0).sum() > 0 and quiet.duration > 0


def test_sensor_limits_stay_within_the_datasheet():
    s = session("sensor-limits")
    base = session("baseline")
    # readings at rest at the start: the offsets sit at the datasheet's corners, not beyond
    still = slice(0, int(0.8 * FS))
    gyro_offset = s.gyro_dps[still].mean(axis=0)
    assert np.all(np.abs(np.abs(gyro_offset) - ZERO_RATE_OFFSET_DPS) < 0.5)
    # the same person and pod with other offsets: the readings differ by a constant within the limits
    diff = s.accel_g - base.accel_g
    assert np.allclose(diff, diff[0], atol=1e-9) and np.all(np.abs(diff[0]) <= 2 * ZERO_G_OFFSET_G)


def test_low_curvature_tilts_less():
    flat, base = session("low-curvature"), session("baseline")
    roll = next(t for t in base.script.steps if t.id == "mid-thigh-roll")
    window = slice(int(roll.start * FS), int(roll.end * FS))
    assert np.std(flat.gyro_dps[window], axis=0).max() < 0.5 * np.std(base.gyro_dps[window], axis=0).max()
