"""The routine engine, driven by events and time alone."""

from __future__ import annotations

import numpy as np
import pytest

from kneeroll_device.recording import read_recording
from kneeroll_device.replay import replay_recording
from kneeroll_device.routine.engine import Engine, EngineSettings
from kneeroll_device.samples import EventBatch, MotionStateEvent, RepEvent, RepositionEvent, StrokeEvent
from kneeroll_device.sim.world import write_recording

from simhelpers import simulated


def frames(t0: float, t1: float, kpa: float = 20.0, force: float = 90.0) -> EventBatch:
    t = np.round(np.arange(t0, t1, 0.1) + 0.1, 6)
    return EventBatch(frame_t=t, frame_kpa=np.full(len(t), kpa), frame_force=np.full(len(t), force), t_end=float(t[-1]))


def strokes(engine: Engine, t0: float, n: int, period: float = 2.0) -> list:
    actions = []
    for i in range(n):
        t = t0 + (i + 1) * period
        actions += engine.handle(EventBatch(strokes=[StrokeEvent(t, period, 12.0, 90.0)]))
    return actions


def kinds(actions) -> list[str]:
    return [a.kind for a in actions]


def test_a_roll_step_is_done_after_its_minimum_of_active_rolling(routine):
    engine = Engine(routine)
    assert kinds(engine.button(1.0, "press")) == ["session_start"]
    actions = strokes(engine, 2.0, 8)  # 16 s of strokes: the minimum is 15 s
    assert kinds(actions)[:1] == ["step_start"]
    assert "halfway" in kinds(actions) and kinds(actions)[-1] == "step_done"
    done = [a for a in actions if a.kind == "step_done"][0]
    assert done.t == pytest.approx(2.0 + 8 * 2.0)
    assert engine.step.strokes == 8 and engine.step.active_s == pytest.approx(16.0)


def test_the_next_step_starts_when_the_user_starts_it_after_a_rest(routine):
    engine = Engine(routine)
    engine.button(0.5, "press")
    strokes(engine, 1.0, 8)
    engine.handle(EventBatch(states=[MotionStateEvent(18.5, "rest", False)]))
    ended = engine.tick(21.0)
    assert kinds(ended) == ["step_ended"] and ended[0].detail["completed"]
    actions = engine.handle(EventBatch(reps=[RepEvent(24.0, 1.5, 140.0, 40.0, reported_t=24.3)]))
    assert kinds(actions) == ["step_start"] and engine.step.step.id == "mid-thigh-release"
    assert engine.step.reps == 1


def test_a_release_step_needs_its_reps_on_every_point(routine):
    engine = Engine(routine)
    engine.button(0.0, "press")
    strokes(engine, 0.0, 8)
    engine.handle(EventBatch(states=[MotionStateEvent(17.0, "rest", False)]))
    engine.tick(19.0)
    t = 20.0
    for _ in range(5):
        engine.handle(EventBatch(reps=[RepEvent(t, 1.5, 140, 40, reported_t=t)]))
        t += 3
    assert engine.step.done_at is None  # one point of two
    engine.handle(EventBatch(repositions=[RepositionEvent(t, 5.0)]))
    actions = []
    for _ in range(5):
        t += 3
        actions += engine.handle(EventBatch(reps=[RepEvent(t, 1.5, 140, 40, reported_t=t)]))
    assert kinds(actions)[-1] == "step_done" and engine.step.points_done == 2


def test_pressure_over_the_limit_warns_after_half_a_second_and_not_too_often(routine):
    engine = Engine(routine)
    engine.button(0.0, "press")
    strokes(engine, 0.0, 1)  # step 1 under way, limit 60 kPa
    warnings = [a for a in engine.handle(frames(2.0, 12.0, kpa=75.0)) if a.kind == "pressure_warning"]
    assert [round(w.t, 1) for w in warnings] == [2.5, 6.5, 10.5]  # after 0.5 s, then every 4 s
    assert engine.step.time_over_s == pytest.approx(10.0)
    assert engine.handle(frames(12.0, 13.0, kpa=30.0)) == []


def test_a_hold_skips_the_step_and_a_press_pauses_and_resumes(routine):
    engine = Engine(routine)
    engine.button(0.0, "press")
    actions = engine.button(1.0, "hold")
    assert kinds(actions) == ["step_skipped", "step_ended"]
    assert engine.plan[0].skipped and engine.step.position == 2
    assert kinds(engine.button(2.0, "press")) == ["pause"]
    assert kinds(engine.button(3.0, "press")) == ["resume"]


def test_a_long_idle_pauses_then_abandons(routine):
    settings = EngineSettings(idle_pause_s=20.0, idle_abandon_s=60.0)
    engine = Engine(routine, settings=settings)
    engine.button(0.0, "press")
    strokes(engine, 0.0, 3)
    assert kinds(engine.tick(27.0)) == ["pause", "idle_reminder"]
    finished = engine.tick(67.0)
    assert kinds(finished)[-1] == "session_done" and engine.outcome == "abandoned"


def test_both_legs_make_a_plan_of_sixteen_steps(routine):
    engine = Engine(routine, leg="both")
    engine.button(0.0, "press")
    assert len(engine.plan) == 16 and engine.plan[8].leg == "right" and engine.plan[0].leg == "left"


def test_the_start_cue_knows_when_todays_sessions_are_done(routine):
    engine = Engine(routine, sessions_done_today=2)
    assert engine.button(0.0, "press")[0].detail["today_done"] is True


@pytest.mark.parametrize("scenario, outcome", [("normal", "completed"), ("skip", "completed"), ("idle", "abandoned")])
def test_a_simulated_session_replays_to_its_outcome(tmp_path, routine, scenario, outcome):
    session = simulated(2, scenario)
    write_recording(session, tmp_path / "rec")
    result = replay_recording(read_recording(tmp_path / "rec"), routine)
    assert result.engine.outcome == outcome
    truth = {s["index"]: s for s in session.truth()["steps"]}
    for progress in result.engine.plan:
        if progress.position not in truth:
            continue
        assert progress.skipped == truth[progress.position]["skipped"]
        assert abs(progress.strokes - truth[progress.position]["strokes"]) <= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_legs_in_a_row_replay_step_by_step(tmp_path, routine, seed):
    """Sixteen steps: each one ends when the person rests before the next, however short
    the rest between the legs' steps is (the rest begins where the last stroke ended)."""
    from kneeroll_device.sim.world import simulate_session

    session = simulate_session(routine, seed=seed, scenario="normal", legs=2)
    write_recording(session, tmp_path / "rec")
    result = replay_recording(read_recording(tmp_path / "rec"), routine, leg="both")
    assert result.engine.outcome == "completed"
    truth = {s["index"]: s for s in session.truth()["steps"]}
    for progress in result.engine.plan:
        step = truth[progress.position]
        assert abs(progress.strokes - step["strokes"]) <= 1, progress.position
        assert abs(progress.reps - step["reps"]) <= 1, progress.position
