"""Reps: one leg-straightening against the held roller (docs/counting.md).

As the quadriceps contract, the muscle presses into the roller and the squeeze rises,
then falls as the leg relaxes; the roller stays where it is. A rep is a rise of the
squeeze and its fall, found as turning points of the force (turning.py), so a slow
drift of the holding level, a rep that starts before the last one has eased off, or
a squeeze of 20 N or of 200 N are all the same to it. It is reported once the force
has come down a quarter of the recent swing from its peak, right after the effort.

What is not a rep: a rise from no squeeze (taking hold of the handles); a rise too
small to be a contraction; and a rise while the roller travels along the leg or a
stroke ends, because rolling swings the squeeze too (the thigh is thicker in some
places than others).
"""

from __future__ import annotations

import math
from collections import deque

from ..samples import RepEvent
from .framing import FRAME_S
from .strokes import GRIP_N, REACH_M, TRAVEL_MS2, G, noise_reach, reach
from .turning import Turn, TurningPoints

FORCE_FLOOR_N = 2.0  # the smallest swing followed: a load cell's noise over a frame is 0.3-1 N
TURN_SHARE = 0.25  # a peak is confirmed once the force has come down a quarter of the recent swing
# a contraction presses at least this much into the roller (a twitch: 1-3 N; the lightest
# squeeze people hold, 20-30 N, rises by 15-20 % with a gentle rep) ...
REP_MIN_N = 4.0
REP_MIN_SHARE = 0.10  # ... and at least a tenth of the held squeeze (the hand's own wavering)
REP_RISE_MAX_S = 5.0  # a rise that takes longer is squeezing harder, not a contraction (1-4 s)
DESPIKE_FRAMES = 3  # a median over 0.3 s: a one-frame jump is a knock or a glitch, not the hand
# the squeeze and the pod's acceleration are kept this long: the longest rise, from its trough
# to when its peak is confirmed (the force has come down a quarter of the swing), with 2 s to spare
RECENT_FRAMES = round((REP_RISE_MAX_S + 2.0) / FRAME_S)
STALL_S = 0.5  # a squeeze held steady this long has stopped rising (or falling): taking hold, then a rep


class RepCounter:
    def __init__(self):
        self.turns = TurningPoints(FORCE_FLOOR_N, TURN_SHARE, STALL_S)
        self._recent: deque[float] = deque(maxlen=DESPIKE_FRAMES)
        # since the last turning point was confirmed, each frame's (time; squeeze held steady?;
        # the squeeze, N; the pod's acceleration level, m/s^2 RMS)
        self._rise: list[tuple[float, bool, float, float]] = []
        # the last few seconds, from before the rise began: each frame's (time; the squeeze, N;
        # the pod's acceleration, m/s^2)
        self._recently: deque[tuple[float, float, tuple]] = deque(maxlen=RECENT_FRAMES)
        self._held: tuple[Turn, float, float] | None = None  # a peak the squeeze stayed at: (turn, base, began)
        self.count = 0
        self.last_t = -math.inf  # when the newest rep peaked

    def update(self, t: float, force: float, travel: float, last_stroke_end_t: float = -math.inf,
               moving: tuple[float, float, float] = (0.0, 0.0, 0.0), accel_noise: float = 0.0) -> RepEvent | None:
        """One frame: the squeeze (N, NaN without force data), the pod's acceleration level
        (m/s^2 RMS, strokes.StrokeCounter.travel), when the last stroke's movement ended,
        the pod's own acceleration now (m/s^2, strokes.StrokeCounter.moving) and how far a
        frame's mean acceleration may be off from the sensor's noise (g RMS per axis,
        motion.MotionTracker.accel_noise)."""
        if force != force:
            return None
        recent = self._recent
        recent.append(force)
        ordered = sorted(recent)
        level = ordered[len(ordered) // 2]
        steady = len(ordered) == recent.maxlen and ordered[-1] - ordered[0] < FORCE_FLOOR_N
        self._rise.append((t, steady, level, travel))
        self._recently.append((t, level, moving))
        resting = self.turns.direction == 0
        turn, _ = self.turns.update(t, level)
        if resting and self.turns.direction != 0 and self._held is not None:
            return self._settle_held(t, last_stroke_end_t)
        if turn is None:
            return None
        rise, self._rise = self._rise, []
        if turn.direction < 0:
            return None  # a trough: the next rise starts here
        found = self._base(turn, rise, last_stroke_end_t, self._recently, accel_noise * G)
        if found is None:
            return None
        base, began_t = found
        if turn.t - began_t > REP_RISE_MAX_S:
            return None
        if turn.stalled:
            # the squeeze rose and stayed there: a rep if it now eases off (the leg relaxes),
            # a new holding level if it rises again from there (the hands pressed on anew,
            # after a slide to another spot) or if the squeeze goes on rising
            self._held = (turn, base, began_t)
            return None
        return self._rep(t, turn, base, began_t)

    def _settle_held(self, t: float, last_stroke_end_t: float) -> RepEvent | None:
        """The squeeze moved again after resting at a peak: the peak was a rep if it fell,
        and if no stroke found since then ended during its rise (the roller travelled)."""
        (turn, base, began_t), self._held = self._held, None
        if self.turns.direction > 0 or last_stroke_end_t >= began_t or t - turn.t > REP_RISE_MAX_S:
            # (a squeeze that stayed at its peak longer than a contraction takes to rise is
            # a holding level, whatever came after it: a rest, or a gap in the force data)
            return None
        return self._rep(t, turn, base, began_t)

    def _rep(self, t: float, turn: Turn, base: float, began_t: float) -> RepEvent:
        self.count += 1
        self.last_t = turn.t
        return RepEvent(t=turn.t, duration=t - began_t, peak_force_n=turn.value, rise_n=turn.value - base,
                        reported_t=t)

    @staticmethod
    def _base(turn: Turn, rise: list[tuple[float, bool, float, float]], last_stroke_end_t: float,
              recently: deque[tuple[float, float, tuple]], noise: float) -> tuple[float, float] | None:
        """The squeeze the rep rose from and when its rise began (_rise_began), if the rise
        is one: the last squeeze held steady far enough below the peak (or the trough), with
        the roller staying put over the rise (its acceleration level down at a rep's at some
        point, while what rolling left of it dies away; the pod moved less than a stroke's
        length; and no stroke moving it). Taking hold of the handles and then a rep is one
        rise of the force with a pause in it; a rep from a held squeeze pauses at its
        trough. Never a squeeze below the grip: a rise from nothing is taking hold."""
        peak, trough = turn.value, turn.value - turn.swing

        def enough(level: float) -> bool:
            return level >= GRIP_N and peak - level >= max(REP_MIN_N, REP_MIN_SHARE * level)

        def stayed_put(since: float) -> bool:
            # (less than a stroke's length, or no further than the sensor's noise alone reads
            # over that long, as a way of the strokes' travelled only beyond it)
            moving = [m for t, _, m in recently if t >= since]
            return reach(moving) < max(REACH_M, noise_reach(len(moving), noise))

        calmest = math.inf  # the pod's lowest acceleration level from the base on
        for i in range(len(rise) - 1, -1, -1):
            t, steady, level, travel = rise[i]
            if t < last_stroke_end_t:
                return None
            if steady and enough(level) and calmest <= TRAVEL_MS2:
                began_t = _rise_began(turn, t, level, recently)
                return (level, began_t) if stayed_put(began_t) else None
            calmest = min(calmest, travel)
        still = calmest <= TRAVEL_MS2 and turn.start_t >= last_stroke_end_t and stayed_put(turn.start_t)
        return (trough, turn.start_t) if enough(trough) and still else None


def _rise_began(turn: Turn, base_t: float, base: float, recently: deque[tuple[float, float, tuple]]) -> float:
    """Where a rise began, which its duration and the pod's reach over it are measured
    from: its trough, not when the trough was confirmed (a roller rolled at an even speed
    accelerates only at the turns, and the squeeze turns where the roller turns, so what
    came before the confirmation is a good part of its way), and not a moment where the
    squeeze seemed steady (a slow rise of the squeeze flattens for a moment now and then).
    Unless the hands took hold on the way up, from nothing or again after easing off, and
    held the squeeze the rep rose from for STALL_S: the pod moves as the pads are pressed
    on, and that is not the rep's doing."""
    # (frame times: half a frame of margin keeps their rounding out of it)
    if turn.value - turn.swing < GRIP_N or _held_for(recently, base_t, base) >= STALL_S - FRAME_S / 2:
        return base_t
    return turn.start_t


def _held_for(recently: deque[tuple[float, float, tuple]], base_t: float, base: float) -> float:
    """How long the squeeze had stayed within its noise of ``base`` by base_t."""
    since = base_t
    for t, squeeze, _ in reversed(recently):
        if t > base_t:
            continue
        if abs(squeeze - base) > FORCE_FLOOR_N:
            break
        since = t
    return base_t - since
