"""The routine engine: events and time in, actions out. Pure: no pins, no files, no clock.

The engine walks a person through the steps of a routine:

- A session starts with a button press, or (auto_start) when rolling begins.
- A step starts when the user starts it: the first stroke of a roll step; the
  first stroke, rep or steady hold of a release step.
- A roll step counts only the time during which strokes happen. It is done
  when that time reaches the step's minimum.
- A release step counts reps per trigger point; sliding the roller to a new
  spot (a reposition) moves to the next point once the point has its minimum.
  It is done when every point has its reps.
- After a step is done, the user may go on a little; the next step starts at
  the next activity after a rest. A user who rests and goes on before the
  target is met has moved on too: the step is logged as not completed.
- The button: a press starts, pauses or resumes; a hold skips the step.
- A long idle pauses the session (idle reminder), a longer one ends it as
  abandoned. The session is finished after the last step.
- Above the step's pressure limit for longer than warn_after_s, a warning,
  repeated at most every warn_repeat_s; the time over the limit is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..pipeline.framing import FRAME_S
from ..samples import EventBatch, MotionStateEvent, RepEvent, RepositionEvent, StrokeEvent
from .spec import Routine, Step


@dataclass(frozen=True)
class Action:
    """Something the edges must do or record: a cue, a log entry."""

    t: float
    kind: str  # session_start, step_start, halfway, step_done, step_skipped, step_ended,
    #            pressure_warning, pause, resume, idle_reminder, session_done, sensor_fault, fault_cleared
    step: int | None = None  # 1-based position in the session's plan
    detail: dict = field(default_factory=dict)


@dataclass
class StepProgress:
    """What the user did in one step: kept by the engine, logged by the store."""

    position: int  # 1-based place in the session's plan (both legs: up to 16)
    step: Step
    leg: str
    started: float | None = None
    ended: float | None = None
    done_at: float | None = None
    skipped: bool = False
    active_s: float = 0.0
    strokes: int = 0
    reps: int = 0
    reps_at_point: int = 0
    points_done: int = 0
    repositions: int = 0
    time_over_s: float = 0.0
    warnings: int = 0
    kpa_sum: float = 0.0
    kpa_n: int = 0
    peak_kpa: float = 0.0
    force_sum: float = 0.0
    force_n: int = 0
    peak_force_n: float = 0.0
    flipped_frames: int = 0
    halfway_cued: bool = False

    @property
    def completed(self) -> bool:
        return self.done_at is not None

    @property
    def mean_kpa(self) -> float:
        return self.kpa_sum / self.kpa_n if self.kpa_n else math.nan

    @property
    def mean_force_n(self) -> float:
        return self.force_sum / self.force_n if self.force_n else math.nan

    def summary(self) -> dict:
        s = self.step
        return {
            "index": self.position, "step_index": s.index, "id": s.id, "name": s.name, "kind": s.kind, "leg": self.leg,
            "completed": self.completed, "skipped": self.skipped,
            "started": self.started, "ended": self.ended,
            "active_s": round(self.active_s, 2), "strokes": self.strokes, "reps": self.reps,
            "points": self.points_done, "repositions": self.repositions,
            "mean_kpa": _round(self.mean_kpa), "peak_kpa": _round(self.peak_kpa if self.kpa_n else math.nan),
            "mean_force_n": _round(self.mean_force_n), "peak_force_n": _round(self.peak_force_n if self.force_n else math.nan),
            "time_over_limit_s": round(self.time_over_s, 2), "warnings": self.warnings,
            "pressure_limit_kpa": s.pressure_limit_kpa, "targets": s.targets(),
        }


def _round(x: float) -> float | None:
    return None if x != x else round(x, 2)


@dataclass(frozen=True)
class EngineSettings:
    auto_start: bool = True
    idle_pause_s: float = 20.0
    idle_abandon_s: float = 300.0
    warn_after_s: float = 0.5
    warn_repeat_s: float = 4.0
    rest_to_advance_s: float = 1.5  # a rest this long after a done step lets the next begin
    give_up_rest_s: float = 4.0  # a rest this long mid-step, then other activity: moved on
    done_quiet_s: float = 10.0  # nothing this long after a step is done: it is over
    hold_to_start_s: float = 1.0  # a steady squeeze this long starts a release step
    restart_after_s: float = 120.0  # after a session ends, rolling starts another only this much later

    @classmethod
    def from_config(cls, config) -> "EngineSettings":
        return cls(
            auto_start=config.session.auto_start,
            idle_pause_s=config.session.idle_pause_s,
            idle_abandon_s=config.session.idle_abandon_s,
            warn_after_s=config.pressure.warn_after_s,
            warn_repeat_s=config.pressure.warn_repeat_s,
        )


LEGS = {"left": ("left",), "right": ("right",), "both": ("left", "right")}


class Engine:
    """One engine per daemon run; it holds at most one session at a time."""

    def __init__(self, routine: Routine, leg: str = "right", settings: EngineSettings | None = None,
                 sessions_done_today: int = 0):
        self.routine = routine
        self.legs = LEGS[leg]
        self.settings = settings or EngineSettings()
        self.sessions_done_today = sessions_done_today
        self.state = "idle"  # idle, awaiting, active, done_waiting, paused, finished
        self.outcome: str | None = None
        self.plan: list[StepProgress] = []
        self.current = 0  # index into plan
        self.motion = "rest"
        self.flipped = False
        self._rest_since: float | None = 0.0
        self._last_activity = 0.0
        self._hold_since: float | None = None
        self._over_since: float | None = None
        self._last_warning = -math.inf
        self._idle_reminded = False
        self._paused_from: str | None = None
        self._session_start: float | None = None
        self._last_rest: tuple[float, float] | None = None  # (start, end) of the latest rest
        self._finished_at: float | None = None

    # --- public --------------------------------------------------------------------

    @property
    def in_session(self) -> bool:
        return self.state not in ("idle", "finished")

    @property
    def step(self) -> StepProgress | None:
        return self.plan[self.current] if self.plan and self.current < len(self.plan) else None

    def start(self, t: float, how: str = "button") -> list[Action]:
        if self.in_session:
            return []
        self.plan = [StepProgress(i + 1, step, leg) for i, (leg, step) in
                     enumerate((leg, step) for leg in self.legs for step in self.routine.steps)]
        self.current = 0
        self.state = "awaiting"
        self.outcome = None
        self._session_start = t
        self._last_activity = t
        target = self.routine.sessions_per_day
        detail = {"how": how, "sessions_today": self.sessions_done_today, "target_today": target,
                  "today_done": self.sessions_done_today >= target}
        return [Action(t, "session_start", None, detail)]

    def button(self, t: float, kind: str) -> list[Action]:
        """kind: "press" (start, pause, resume) or "hold" (skip the step)."""
        if kind == "press":
            if not self.in_session:
                return self.start(t, "button")
            if self.state == "paused":
                return self._resume(t)
            return self._pause(t, "button")
        if kind == "hold" and self.in_session and self.step is not None:
            return self._skip(t)
        return []

    def handle(self, batch: EventBatch) -> list[Action]:
        """The pipeline's events and frames, in time order, then the passage of time."""
        actions: list[Action] = []
        events = _in_time_order(batch)
        i = 0
        for t, kpa, force in zip(batch.frame_t.tolist(), batch.frame_kpa.tolist(), batch.frame_force.tolist()):
            while i < len(events) and _event_time(events[i]) <= t + 1e-9:
                actions += self._on_event(events[i])
                i += 1
            actions += self.tick(t)  # every frame, so the rules of time do not depend on block sizes
            actions += self._on_frame(t, kpa, force)
        for event in events[i:]:
            actions += self._on_event(event)
        return actions

    def _on_event(self, event) -> list[Action]:
        if isinstance(event, MotionStateEvent):
            return self._on_state(event)
        if isinstance(event, StrokeEvent):
            return self._on_stroke(event)
        if isinstance(event, RepEvent):
            return self._on_rep(event)
        if isinstance(event, RepositionEvent):
            return self._on_reposition(event)
        return []

    def tick(self, t: float) -> list[Action]:
        """Time passes: holds that start a step, idle pauses and abandonment."""
        actions: list[Action] = []
        if self.state in ("awaiting", "done_waiting") and self._hold_since is not None:
            if t - self._hold_since >= self.settings.hold_to_start_s and self._next_step_kind() == "release":
                actions += self._begin_activity(t, "hold")
        if self.state == "done_waiting" and self._done_and_resting(t):
            # the user stopped after the step-done cue: the step's log closes here
            actions += self._end_step(t)
            if self.current + 1 >= len(self.plan):
                actions += self._advance(t)
        if self.in_session and self.state != "paused":
            idle = t - self._last_activity
            if idle >= self.settings.idle_pause_s and not self._idle_reminded:
                self._idle_reminded = True
                actions += self._pause(t, "idle")
                actions.append(Action(t, "idle_reminder", self._position()))
        if self.state == "paused" and t - self._last_activity >= self.settings.idle_abandon_s:
            actions += self._finish(t, "abandoned")
        return actions

    def device_fault(self, t: float, source: str, kind: str, detail: str = "") -> list[Action]:
        """A sensor went away (kind "down") or came back ("up"): cue it, keep guiding."""
        name = "sensor_fault" if kind == "down" else "fault_cleared"
        return [Action(t, name, self._position(), {"source": source, "detail": detail})]

    def stop(self, t: float) -> list[Action]:
        """The daemon is stopping: an unfinished session is logged as interrupted."""
        if self.in_session:
            return self._finish(t, "interrupted")
        return []

    # --- events --------------------------------------------------------------------

    def _on_state(self, event: MotionStateEvent) -> list[Action]:
        self.motion, self.flipped = event.state, event.flipped
        t = event.t
        if event.state == "rest":
            if self._rest_since is None:
                self._rest_since = t
        elif self._rest_since is not None:
            self._last_rest = (self._rest_since, t)
            self._rest_since = None
        self._hold_since = t if event.state == "holding" else None
        if event.state in ("rolling", "holding"):
            self._mark_active(t)
        return []

    def _on_stroke(self, event: StrokeEvent) -> list[Action]:
        actions = self._begin_activity(event.t, "stroke")
        progress = self.step
        if progress is None or self.state not in ("active", "done_waiting"):
            return actions
        progress.strokes += 1
        progress.active_s += min(event.duration, 8.0)
        return actions + self._check_progress(event.t)

    def _on_rep(self, event: RepEvent) -> list[Action]:
        actions = self._begin_activity(_event_time(event), "rep")
        progress = self.step
        if progress is None or self.state not in ("active", "done_waiting"):
            return actions
        progress.reps += 1
        progress.reps_at_point += 1
        return actions + self._check_progress(_event_time(event))

    def _on_reposition(self, event: RepositionEvent) -> list[Action]:
        progress = self.step
        if progress is None or self.state != "active" or progress.step.kind != "release":
            return []
        target = progress.step.reps_per_point
        if progress.reps_at_point >= target.min and progress.points_done < progress.step.points:
            progress.points_done += 1
            progress.reps_at_point = 0
            progress.repositions += 1
        return []

    def _on_frame(self, t: float, kpa: float, force: float) -> list[Action]:
        """One frame of pressure: the step's summary, time over the limit, warnings."""
        progress = self.step
        if progress is None or progress.ended is not None or self.state not in ("active", "done_waiting") or kpa != kpa:
            self._over_since = None
            return []
        progress.kpa_sum += kpa
        progress.kpa_n += 1
        progress.peak_kpa = max(progress.peak_kpa, kpa)
        progress.force_sum += force
        progress.force_n += 1
        progress.peak_force_n = max(progress.peak_force_n, force)
        limit = progress.step.pressure_limit_kpa
        if kpa <= limit:
            self._over_since = None
            return []
        progress.time_over_s += FRAME_S
        if self._over_since is None:
            self._over_since = t
        over_for = t - self._over_since + FRAME_S
        eps = 1e-6  # frame times are sums of tenths: compare them with a little slack
        if over_for + eps < self.settings.warn_after_s or t - self._last_warning + eps < self.settings.warn_repeat_s:
            return []
        self._last_warning = t
        progress.warnings += 1
        return [Action(t, "pressure_warning", progress.position, {"kpa": round(kpa, 1), "limit_kpa": limit})]

    # --- steps ---------------------------------------------------------------------

    def _next_step_kind(self) -> str | None:
        target = self.current + 1 if self.state == "done_waiting" else self.current
        return self.plan[target].step.kind if target < len(self.plan) else None

    def _begin_activity(self, t: float, what: str) -> list[Action]:
        """Activity: maybe starts the session, resumes it, or starts the next step."""
        actions: list[Action] = []
        self._mark_active(t)
        if not self.in_session:
            cooled_down = self._finished_at is None or t - self._finished_at >= self.settings.restart_after_s
            if not (self.settings.auto_start and what == "stroke" and cooled_down):
                return []
            actions += self.start(t, "rolling")
        if self.state == "paused":
            actions += self._resume(t)
        if self.state == "done_waiting" and self._rested_since_done(t):
            actions += self._end_step(t)
            actions += self._advance(t)
        elif self.state == "active" and self._moved_on(t, what):
            actions += self._end_step(t)
            actions += self._advance(t)
        if self.state == "awaiting" and self.step is not None and self._starts_step(what):
            actions += self._start_step(t)
        return actions

    def _starts_step(self, what: str) -> bool:
        kind = self.step.step.kind
        return what == "stroke" if kind == "roll" else what in ("stroke", "rep", "hold")

    def _done_and_resting(self, t: float) -> bool:
        progress = self.step
        if progress.ended is not None:
            return False
        resting = self._rest_since is not None and t - self._rest_since >= self.settings.rest_to_advance_s
        # a done step also closes when nothing has happened for a while, even if the
        # roller is still held on the leg (slides between points and slow reps are not that)
        quiet = t - self._last_activity >= self.settings.done_quiet_s and self.motion != "rolling"
        return resting or quiet

    def _rested_since_done(self, t: float) -> bool:
        if self.step is not None and self.step.ended is not None:
            return True
        return self._rest_started_before(t) >= self.settings.rest_to_advance_s

    def _moved_on(self, t: float, what: str) -> bool:
        """A long rest, then something the next step does and this one does not."""
        progress = self.step
        if self._rest_started_before(t) < self.settings.give_up_rest_s or self.current + 1 >= len(self.plan):
            return False
        next_step = self.plan[self.current + 1].step
        if next_step.orientation != progress.step.orientation:
            # turning the roller over is the surest sign of the next step
            return self.flipped == (next_step.orientation == "flipped")
        next_kind = next_step.kind
        this_kind = progress.step.kind
        if this_kind == next_kind:
            return False
        return (next_kind == "roll" and what == "stroke" and this_kind == "release" and progress.reps > 0) or (
            next_kind == "release" and what == "rep" and this_kind == "roll" and progress.strokes > 0)

    def _rest_started_before(self, t: float) -> float:
        rest = self._last_rest
        return rest[1] - rest[0] if rest and rest[1] <= t + 1e-9 else 0.0

    def _mark_active(self, t: float) -> None:
        if self._rest_since is not None and t > self._rest_since:
            self._last_rest = (self._rest_since, t)  # activity ends a rest the state has not left yet
            self._rest_since = None
        self._last_activity = max(self._last_activity, t)
        self._idle_reminded = False

    def _start_step(self, t: float) -> list[Action]:
        progress = self.step
        progress.started = t
        self.state = "active"
        self._last_rest = None
        detail = {"id": progress.step.id, "name": progress.step.name, "leg": progress.leg,
                  "colour": progress.step.colour, "kind": progress.step.kind}
        return [Action(t, "step_start", progress.position, detail)]

    def _check_progress(self, t: float) -> list[Action]:
        progress = self.step
        step = progress.step
        actions: list[Action] = []
        if step.kind == "roll":
            fraction = progress.active_s / step.roll_seconds.min
        else:
            fraction = self._release_fraction(progress)
        if not progress.halfway_cued and fraction >= 0.5 and progress.done_at is None:
            progress.halfway_cued = True
            actions.append(Action(t, "halfway", progress.position))
        if progress.done_at is None and fraction >= 1.0:
            progress.done_at = t
            if step.kind == "release":
                progress.points_done = step.points
            self.state = "done_waiting"
            self._last_rest = None
            actions.append(Action(t, "step_done", progress.position, {"id": step.id}))
        return actions

    @staticmethod
    def _release_fraction(progress: StepProgress) -> float:
        """How much of a release step is done: the minimum of reps on every point.

        A slide to the next point can go unnoticed (a gentle move), so reps count
        towards the step as a whole: the step is done once the reps of all its points
        are there and the present point has its minimum.
        """
        step = progress.step
        need = step.reps_per_point.min
        total_needed = need * step.points
        if progress.reps >= total_needed and progress.reps_at_point >= need:
            return 1.0
        return min(progress.reps, total_needed - 1) / total_needed

    def _end_step(self, t: float) -> list[Action]:
        progress = self.step
        if progress is None or progress.ended is not None:
            return []
        progress.ended = t
        return [Action(t, "step_ended", progress.position, progress.summary())]

    def _advance(self, t: float) -> list[Action]:
        self.current += 1
        self._over_since = None
        if self.current >= len(self.plan):
            return self._finish(t, "completed")
        self.state = "awaiting"
        return []

    def _skip(self, t: float) -> list[Action]:
        progress = self.step
        actions: list[Action] = []
        if self.state == "done_waiting":
            actions += self._end_step(t)
            actions += self._advance(t)
            progress = self.step
            if progress is None:
                return actions
        progress.skipped = True
        if progress.started is None:
            progress.started = t
        actions.append(Action(t, "step_skipped", progress.position, {"id": progress.step.id}))
        actions += self._end_step(t)
        self.state = "active"  # so that _advance moves on from it
        actions += self._advance(t)
        return actions

    def _pause(self, t: float, why: str) -> list[Action]:
        if self.state == "paused" or not self.in_session:
            return []
        self._paused_from = self.state
        self.state = "paused"
        return [Action(t, "pause", self._position(), {"why": why})]

    def _resume(self, t: float) -> list[Action]:
        if self.state != "paused":
            return []
        self.state = self._paused_from or "awaiting"
        self._last_activity = max(self._last_activity, t)
        self._idle_reminded = False
        return [Action(t, "resume", self._position())]

    def _finish(self, t: float, outcome: str) -> list[Action]:
        if not self.in_session:
            return []
        actions: list[Action] = []
        progress = self.step
        if progress is not None and progress.started is not None and progress.ended is None:
            actions += self._end_step(t)
        self.state = "finished"
        self._finished_at = t
        self.outcome = outcome
        if outcome == "completed":
            self.sessions_done_today += 1
        actions.append(Action(t, "session_done", None, self.session_summary(t)))
        return actions

    def _position(self) -> int | None:
        return self.step.position if self.step else None

    def session_summary(self, t: float | None = None) -> dict:
        steps = [p.summary() for p in self.plan]
        return {
            "outcome": self.outcome,
            "started": self._session_start,
            "ended": t,
            "completed": self.outcome == "completed",
            "steps": steps,
            "sessions_today": self.sessions_done_today,
        }


def _event_time(event) -> float:
    # a rep is known at reported_t, not at its peak: it happens, for the engine, then
    if isinstance(event, RepEvent) and event.reported_t == event.reported_t:
        return event.reported_t
    return event.t


def _in_time_order(batch: EventBatch) -> list:
    return sorted([*batch.states, *batch.strokes, *batch.repositions, *batch.reps], key=_event_time)
