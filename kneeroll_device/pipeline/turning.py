"""Turning points of a position-like signal: where a movement reverses.

A stroke takes the roller along the leg and back; a rep presses the squeeze up and
lets it down. Both are out-and-back cycles of a signal that follows the movement, so
both are counted the same way: the signal's turning points, found by a zig-zag with
hysteresis. A turn is confirmed once the signal has come back from its furthest
point by ``h``, or once it has stayed near that point for ``stall_s`` (the movement
ended there: the last stroke of a bout ends at rest).

``h`` is a share of the recent swing (the distance between turning points), never
below a floor set by the sensor's noise, so the count does not depend on the
signal's scale: a 3 cm stroke on a straight thigh and a 30 cm one on a tapered
thigh, a 20 N squeeze and a 200 N one. An offset or a slow drift does not matter
either, since only the distance back from the furthest point does. A follower may
also confirm a turn at a smaller share when the signal comes back at the pace the
recent movements went (QuickTurn): a reversal, not a wobble.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# How the recent swing is learnt. The squeeze's (and the reps'): a running mean over about
# three movements (each new one weighs 0.3), where a movement more than 2.5 times the recent
# ones (a grab of the handles, a hard rep) weighs as 2.5 times, so one wild movement does not
# deafen the counter for the next ones; the squeeze's scale (a few to a few dozen newtons)
# is near its noise floor, so growing from the floor is quick.
SWING_WEIGHT = 0.3
OUTLIER = 2.5
# The tilt's: the median of the last five movements (the lower median while there are
# fewer). A tilt swing can be a hundred times its noise floor (an arm's, a frame's on a
# tapered thigh), which the running mean, capped from the floor up, takes a dozen movements
# to reach while every wiggle counts; the median learns it from the first two, whatever it
# is, and one wild movement does not move it.
SWING_TURNS = 5
# either way a scale learnt more than ten seconds ago (a few slow strokes) fades: a big
# movement long ago must not hide the small ones that follow
SWING_FADE_S = 10.0


@dataclass(frozen=True)
class Turn:
    """A confirmed turning point: the movement that ended there, from the previous one."""

    t: float  # when the signal was furthest (the movement's end)
    start_t: float  # when the movement began (the previous turning point)
    value: float
    swing: float  # how far the signal moved from the previous turning point
    direction: int  # +1: the signal rose to this point; -1: it fell
    stalled: bool  # confirmed by stopping there rather than by coming back


@dataclass(frozen=True)
class QuickTurn:
    """A turn confirmed sooner when the signal comes back quickly: once it has come back
    ``share`` of the recent swing, if in its latest frame it moved at least ``speed`` times
    as fast as the recent movements did in their quickest frame (the median of the last
    five). A movement reversed comes back at the pace it went; a wobble or a hesitation
    within a movement comes back slowly, and waits for the whole hysteresis."""

    share: float
    speed: float


class _Hysteresis:
    """What both followers share: the hysteresis, a share of the recent swing (which fades)
    above a noise floor, the quick turn (if given), and the stall that ends a movement at
    rest. The swing is learnt as a running mean here; PathTurns learns it as a median."""

    def __init__(self, floor: float, share: float, stall_s: float = math.inf, quick: QuickTurn | None = None):
        self.floor = floor  # the smallest hysteresis: above the signal's noise
        self.share = share  # of the recent swing
        self.stall_s = stall_s
        self.quick = quick
        self.restart()

    def _forget(self) -> None:
        self.forget_swing()
        self._paces: deque[float] = deque(maxlen=SWING_TURNS)  # the recent movements' quickest frames
        self._pace = 0.0  # the quickest frame of the movement under way (how far it went in it)
        self._back = 0.0  # how far the signal had come back from the furthest point a frame ago
        self._near_since: float | None = None
        self._t: float | None = None
        self._rest_t = -math.inf  # the last time the signal was near its resting point
        self.still_t = -math.inf  # ... and within its noise of it (a slow movement has begun by then)

    def forget_swing(self) -> None:
        """Forget how far the signal swung (it says nothing of the movements to come)."""
        self._set_swing(0.0)

    @property
    def swing(self) -> float:
        """How far the signal swung lately."""
        return self._swing

    def _set_swing(self, swing: float) -> None:
        """The swing, and the hysteresis ``h`` that follows from it (kept, not worked out at
        every look: it is looked at several times a sample)."""
        self._swing = swing
        self.h = max(self.floor, self.share * swing)

    def _fade(self, t: float) -> None:
        if self._t is not None:
            self._set_swing(self._swing * math.exp(-(t - self._t) / SWING_FADE_S))
        self._t = t

    def _stalls(self, t: float, back: float) -> bool:
        """Whether the signal, ``back`` from its furthest point, has stayed near it for stall_s."""
        if back >= 0.5 * self.h:
            self._near_since = None
            return False
        if self._near_since is None:
            self._near_since = t
        return t - self._near_since >= self.stall_s

    def _went_on(self, step: float) -> None:
        """The movement under way went ``step`` further in this frame."""
        if step > self._pace:
            self._pace = step
        self._back = 0.0

    def _comes_back(self, back: float) -> bool:
        """Whether the signal, ``back`` from its furthest point, has come back past the
        hysteresis, or past the quick turn's share at its pace."""
        step, self._back = back - self._back, back
        if back > self.h:
            return True
        quick, paces = self.quick, self._paces
        if quick is None or len(paces) < 2 or back <= max(self.floor, quick.share * self._swing):
            return False  # (two movements' paces at least: one may have been a grab)
        return step >= quick.speed * lower_median(paces)

    def _movement_ended(self) -> None:
        if self._pace > 0.0:  # (a movement of one frame, stalled there, shows no pace)
            self._paces.append(self._pace)
        self._pace = self._back = 0.0

    def _learn(self, swing: float) -> None:
        cap = OUTLIER * max(self._swing, 2.0 * self.floor)
        self._set_swing(self._swing + SWING_WEIGHT * (min(swing, cap) - self._swing))
        self._near_since = None


class TurningPoints(_Hysteresis):
    def restart(self) -> None:
        """Forget where the signal was and how far it swung (it was thrown far off: the pod turned over)."""
        self._forget()
        self.direction = 0  # 0: at rest, waiting for a movement
        self.extreme: float | None = None
        self.extreme_t = 0.0
        self.previous: float | None = None  # the value at the previous turning point
        self.previous_t = -math.inf

    def update(self, t: float, y: float) -> tuple[Turn | None, bool]:
        """One sample. Returns the turn confirmed now (if any), and whether the furthest
        point moved on with this sample (the movement under way goes on)."""
        self._fade(t)
        if self.extreme is None:
            self.extreme, self.extreme_t, self.previous, self.previous_t = y, t, y, t
            self._rest_t = t
            return None, True
        if self.direction == 0:
            off = abs(y - self.extreme)
            if off <= self.h:
                if off <= 0.5 * self.h:
                    self._rest_t = t
                if off <= self.floor:
                    self.still_t = t
                return None, False
            # a movement begins from where the signal rested: it left it when it was last near it
            self.previous, self.previous_t = self.extreme, self._rest_t
            self.direction = 1 if y > self.extreme else -1
            self._went_on(off)
            self.extreme, self.extreme_t, self._near_since = y, t, None
            return None, True
        if self.direction * (y - self.extreme) > 0:
            self._went_on(self.direction * (y - self.extreme))
            self.extreme, self.extreme_t, self._near_since = y, t, None
            return None, True
        back = self.direction * (self.extreme - y)
        if self._comes_back(back):
            return self._turn(t, y, stalled=False), False
        if self._stalls(t, back):
            return self._turn(t, y, stalled=True), False
        return None, False

    @property
    def movement_start_t(self) -> float:
        """When the movement under way began (the last turning point, or where it left rest)."""
        return self.previous_t

    def end_here(self, t: float) -> Turn | None:
        """The movement under way ends at its furthest point so far (the roller was let go)."""
        if self.direction == 0:
            return None
        return self._turn(t, self.extreme, stalled=True)

    def _turn(self, t: float, y: float, stalled: bool) -> Turn:
        self._movement_ended()
        swing = abs(self.extreme - self.previous)
        turn = Turn(self.extreme_t, self.previous_t, self.extreme, swing, self.direction, stalled)
        self._learn(swing)
        self.previous, self.previous_t = self.extreme, self.extreme_t
        self.still_t = self.extreme_t  # it was at its new resting point then, at the latest
        if stalled:
            self.direction = 0  # at rest at the turning point, until the next movement
            self._rest_t = t
        else:
            self.direction = -self.direction
            self.extreme, self.extreme_t = y, t
        return turn


class PathTurns(_Hysteresis):
    """Turning points of a movement in three dimensions, with no axis to learn.

    The distance from the last turning point grows on the way out and shrinks on the way
    back, whichever way the pod is mounted and whatever the signal's offset: the turning
    points of that distance, by the same hysteresis as TurningPoints, are where the
    movement reversed.
    """

    def forget_swing(self) -> None:
        self._swings: deque[tuple[float, float]] = deque(maxlen=SWING_TURNS)  # (when, how far)
        self._set_swing(0.0)

    def _fade(self, t: float) -> None:
        self._t = t
        swings = self._swings
        if swings and swings[0][0] < t - SWING_FADE_S:
            while swings and swings[0][0] < t - SWING_FADE_S:
                swings.popleft()
            self._median_swing()

    def _learn(self, swing: float) -> None:
        self._swings.append((self._t, swing))
        self._median_swing()
        self._near_since = None

    def _median_swing(self) -> None:
        self._set_swing(lower_median([swing for _, swing in self._swings]) if self._swings else 0.0)

    def restart(self) -> None:
        self._forget()
        self.anchor: tuple[float, float, float] | None = None  # the last turning point
        self.anchor_t = -math.inf
        self.extreme: tuple[float, float, float] | None = None  # the furthest point from it so far
        self.extreme_t = 0.0
        self.reach = 0.0  # how far that is
        self.moving = False  # False: at rest at the anchor, waiting for a movement
        self.heading: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the last movement, anchor to extreme
        self._direction = -1

    @property
    def direction(self) -> int:
        return 1 if self.moving else 0

    def update(self, t: float, x: tuple[float, float, float]) -> tuple[Turn | None, bool]:
        self._fade(t)
        if self.anchor is None:
            self.anchor, self.anchor_t, self.extreme, self.extreme_t = x, t, x, t
            self._rest_t = t
            return None, True
        d = _distance(x, self.anchor)
        if not self.moving:
            if d <= self.h:
                if d <= 0.5 * self.h:
                    self._rest_t = t
                if d <= self.floor:
                    self.still_t = t
                return None, False
            # a movement begins from where it rested: it left it when it was last near it
            self.moving, self.anchor_t = True, self._rest_t
            self._went_on(d)
            self.extreme, self.extreme_t, self.reach, self._near_since = x, t, d, None
            return None, True
        if d > self.reach:
            self._went_on(d - self.reach)
            self.extreme, self.extreme_t, self.reach, self._near_since = x, t, d, None
            return None, True
        back = _distance(x, self.extreme)
        if self._comes_back(back) and self.reach - d > 0.5 * self.h:
            return self._turn(t, x, stalled=False), False
        if self._stalls(t, back):
            return self._turn(t, x, stalled=True), False
        return None, False

    @property
    def movement_start_t(self) -> float:
        """When the movement under way began (the last turning point, or where it left rest)."""
        return self.anchor_t

    def end_here(self, t: float) -> Turn | None:
        """The movement under way ends at its furthest point so far (the roller was let go)."""
        if not self.moving:
            return None
        return self._turn(t, self.extreme, stalled=True)

    def _turn(self, t: float, x: tuple[float, float, float], stalled: bool) -> Turn:
        self._movement_ended()
        a, e = self.anchor, self.extreme
        heading = (e[0] - a[0], e[1] - a[1], e[2] - a[2])
        same_way = heading[0] * self.heading[0] + heading[1] * self.heading[1] + heading[2] * self.heading[2] > 0
        # +1 and -1 alternate as the movement goes out and back; the same again when it
        # went on the same way after stopping
        self._direction = self._direction if same_way else -self._direction
        turn = Turn(self.extreme_t, self.anchor_t, 0.0, self.reach, self._direction, stalled)
        self._learn(self.reach)
        self.heading = heading
        self.anchor, self.anchor_t = e, self.extreme_t
        self.still_t = self.extreme_t  # it was at its new resting point then, at the latest
        if stalled:
            self.moving = False
            self._rest_t = t
        else:
            self.extreme, self.extreme_t, self.reach = x, t, _distance(x, e)
        return turn


def lower_median(values) -> float:
    """The lower of the two middle values (the middle one of an odd number): with an even
    number, one wild value cannot set it. ``values`` must not be empty."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def _distance(a, b) -> float:
    return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2)
