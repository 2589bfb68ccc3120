"""Strokes: one back-and-forth cycle of the roller along the leg.

The roller's frame tilts as it travels over the curve of the thigh, so the
gyro's rate along the main axis of motion is a velocity-like signal: positive
one way, negative on the way back, near zero at each reversal. Without a gyro
the same signal comes from the integrated linear acceleration. The signal is
projected on its principal axis (tracked continuously, because the pod can sit
at any angle and be turned over), cut into half-strokes by hysteresis, and two
consecutive half-strokes in opposite directions make one stroke.

A velocity-like signal is what makes this robust: a hesitation or a pause mid-
way only dips the speed to zero and resumes in the same direction, which
merges into the same half-stroke, while an acceleration signal would show an
extra cycle. A lone half-stroke (carrying the roller somewhere) never pairs
and is not a stroke. Half-strokes made while the grip is released, or while a
rep presses the leg into the roller, are not rolling.

With a gyro there are two candidate axes (axis.py): the main one and the one
that moves the pod furthest per radian. Half-strokes are followed on both all
the time and the strokes told from one, so when the count moves to the other
it finds that axis's halves in step instead of starting them afresh.
"""

from __future__ import annotations

import math

from ..samples import StrokeEvent
from .axis import StrokeAxis
from .framing import FRAME_S
from .motion import ema_alpha
from .reps import REP_PUSH_SHARE

G = 9.80665


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


class HalfStroke:
    __slots__ = ("sign", "start", "end", "peak", "force_sum", "force_n", "force_min", "force_max", "lin_sq", "frames",
                 "blocked", "turn", "slow_since")

    def __init__(self, sign: int, start: float):
        self.sign = sign
        self.start = start
        self.end = start
        self.peak = 0.0
        self.force_sum = 0.0
        self.force_n = 0
        self.force_min = math.inf
        self.force_max = -math.inf
        self.lin_sq = 0.0
        self.frames = 0
        self.blocked = False  # made during a rep or without grip: not rolling
        self.turn = [0.0, 0.0, 0.0]  # the rate summed meanwhile (gyro only): deg about each axis
        self.slow_since: float | None = None  # since when it has crept along at a fraction of its peak

    @property
    def turned_deg(self) -> float:
        """How far the pod turned over the half-stroke, net: a twist back and forth cancels,
        a flip does not."""
        x, y, z = self.turn
        return math.sqrt(x * x + y * y + z * z)


class Track:
    """The half-strokes seen on one axis, and the amplitude they have had lately."""

    __slots__ = ("current", "pending", "env", "strokes", "last", "last_told")

    def __init__(self):
        self.current: HalfStroke | None = None
        self.pending: HalfStroke | None = None  # the first half of a stroke, or a lone one
        self.env = 0.0
        self.strokes = 0  # since the axes were last forgotten
        self.last: tuple[HalfStroke, HalfStroke] | None = None  # the halves of the newest stroke
        self.last_told = False  # ... told, or made good for, while this axis was counted on

    def restart(self, env: float) -> None:
        """Another axis: a half-stroke under way is cut off, and the one waiting pairs with
        the next half whichever way that turns."""
        self.current = None
        if self.pending is not None:
            self.pending.sign = 0
        self.env = env


class StrokeCounter:
    H_MIN = 1.5  # deg/s (or the same scale from acceleration): slower is not rolling; a 20 cm
                 # stroke on a straight thigh (0.1 rad/m) tilts the frame at 1.8 deg/s at most
    H_RATIO = 0.3  # of the recent amplitude
    END_RATIO = 0.25  # a half-stroke ends when the speed falls to this share of the threshold
    MIN_HALF_S = 0.2
    STALL_RATIO = 0.2  # a half-stroke creeping on below this share of its peak speed ...
    STALL_S = 0.5  # ... for this long has ended
    MAX_HALF_S = 4.5
    MAX_GAP_S = 2.0  # between the two halves of one stroke
    GRIP_N = 12.0  # below this squeeze the roller is being carried, not rolled
    ACCEL_SCALE = 100.0  # m/s of integrated acceleration to the gyro's deg/s scale
    ENV_FLOOR = 6.0  # the amplitude assumed before any half-stroke was seen
    OUTLIER_RATIO = 2.5  # a peak above this many amplitudes is not rolling
    GYRO_HP_TAU_S = 6.0
    REP_TILT_MAX = 6.0  # deg/s: a rep lifts the thigh a degree or two, slowly
    REP_SWING = REP_PUSH_SHARE  # of the squeeze: a pulse this big with a small tilt is a rep
    TURN_DEG = 110.0  # a half-stroke turning the pod further than this is a turn, not rolling
                      # (a stroke tilts the frame by 30 degrees at most, and twisting in step
                      # with it, 20-35 degrees each way, sweeps up to 70 more; a flip turns 180)
    ROLLING_GRACE_S = 0.8  # after a stroke, still rolling for this long
    BOUT_GAP_S = 3.0  # a half-stroke this soon after a stroke continues the bout ...
    BOUT_SHARE = 0.5  # ... if it moves at least this share of the recent amplitude
    MAX_MADE_GOOD = 1  # strokes told too many, held back when the count moves to another axis
    MADE_GOOD_S = 4.0  # ... if the next stroke ends this soon after the move (a slow one's time)
    MISSED_S = 1.5  # a stroke only the new axis saw this recently is told when the count moves

    def __init__(self):
        self._hp_mean = [0.0, 0.0, 0.0]
        self.axes = StrokeAxis()
        # the half-strokes on the main axis and on the reaching one, both followed all the
        # time: when the count moves from one to the other, the other's halves are in step
        self._on_main = Track()
        self._on_reach = Track()
        self._velocity = [0.0, 0.0, 0.0]
        self._v_mean = [0.0, 0.0, 0.0]
        # the gyro's bias is learnt when still, so its high-pass only follows slow drift;
        # integrated acceleration drifts faster
        self._a_hp_gyro = ema_alpha(self.GYRO_HP_TAU_S)
        self._a_hp_accel = ema_alpha(3.0)
        self._leak = math.exp(-FRAME_S / 1.5)
        self._env_decay = math.exp(-FRAME_S / 6.0)
        self.expired: HalfStroke | None = None  # a lone half-stroke: the roller moved somewhere
        self.count = 0
        self._counted_before = 0  # the count when the axes were last forgotten
        self._owed = 0  # strokes to hold back: told on the old axis beyond the new one's count
        self._owed_until = -math.inf
        self._missed: tuple[HalfStroke, HalfStroke] | None = None  # a stroke only the new axis saw
        self._gyro = False  # this frame had the gyro's rate: the reaching axis can be counted on
        self.last_stroke_t = -math.inf

    @property
    def _counted(self) -> Track:
        """The half-strokes on the axis the strokes are counted on."""
        return self._on_reach if self._gyro and self.axes.twisting else self._on_main

    # --- the velocity-like signal ------------------------------------------------------

    def _integrate(self, linear: tuple) -> tuple[float, float, float]:
        """The pod's velocity from the linear acceleration: leaky, and its mean removed (m/s)."""
        v, m, leak, a = self._velocity, self._v_mean, self._leak, self._a_hp_accel
        for i in range(3):
            v[i] = (v[i] + linear[i] * G * FRAME_S) * leak
            m[i] += a * (v[i] - m[i])
        return (v[0] - m[0], v[1] - m[1], v[2] - m[2])

    def _signals(self, t: float, rate: tuple | None, linear: tuple) -> tuple[float, float | None]:
        """The velocity-like signal on the main axis and on the reaching one (gyro only):
        the rate about each, or the velocity along the main axis."""
        velocity = self._integrate(linear)
        axes = self.axes
        if rate is not None:
            hx, clipped = self._high_pass(rate, self._a_hp_gyro)
            self._follow_axes(t, clipped, velocity, rate)
            return _dot(hx, axes.main), _dot(hx, axes.reach)
        v, s = self._velocity, self.ACCEL_SCALE
        hx, clipped = self._high_pass((v[0] * s, v[1] * s, v[2] * s), self._a_hp_accel)
        axes.update(clipped)
        return _dot(hx, axes.main), None

    def _high_pass(self, x: tuple, a: float) -> tuple[tuple, tuple]:
        """x less its slow mean; and the same clipped, for what the mean and the axes learn."""
        m = self._hp_mean
        hx, hy, hz = x[0] - m[0], x[1] - m[1], x[2] - m[2]
        # a flip or a grab turns the pod ten times faster than rolling does: clip what
        # it teaches the mean and the axis, or they would take many seconds to forget it;
        # while the user twists, the twist sets the scale, not the smaller tilt counted on
        axes = self.axes
        cap = self.OUTLIER_RATIO * max(self._counted.env, self.ENV_FLOOR, axes.main_amplitude())
        size = math.sqrt(hx * hx + hy * hy + hz * hz)
        scale = cap / size if size > cap else 1.0
        clipped = (hx * scale, hy * scale, hz * scale)
        m[0] += a * clipped[0]
        m[1] += a * clipped[1]
        m[2] += a * clipped[2]
        return (hx, hy, hz), clipped

    def _follow_axes(self, t: float, clipped: tuple, velocity: tuple, rate: tuple) -> None:
        axes = self.axes
        was_twisting = axes.twisting
        axes.update(clipped, velocity, rate)
        if axes.changed and axes.twisting != was_twisting:
            self._settle_the_count(t)
        elif axes.changed:
            # the reaching axis was taken up afresh: another signal, with its own sign and
            # amplitude; a half-stroke done on the old one still pairs with the next half
            # on the new one, whichever way that turns, so the count keeps its step
            self._on_reach.restart(math.sqrt(2.0) * axes.rates.rms(axes.reach))

    def _settle_the_count(self, t: float) -> None:
        # the count moves to the other axis, which has counted since the axes were learnt
        # afresh too: a stroke told beyond that (a twist taken for a stroke while the
        # axes settled) is made good by not telling the next; only one, because a wider
        # gap says the two disagree for reasons of their own
        told = self.count - self._counted_before
        new = self._counted
        self._owed = min(max(told - new.strokes, 0), self.MAX_MADE_GOOD)
        self._owed_until = t + self.MADE_GOOD_S
        if new.strokes > told and not new.last_told:
            self._missed, new.last_told = new.last, True

    # --- half-strokes and strokes ------------------------------------------------------

    def note_rep(self, started: float, t: float) -> None:
        """A rep presses into the roller: the small tilt that comes with it is not rolling.

        Only small half-strokes are taken for a rep's tilt, and not in the middle of
        a bout of strokes: rolling sways the squeeze too, and must win then.
        """
        if self.rolling_now(t):
            return
        for track in (self._on_main, self._on_reach):
            cur, pending = track.current, track.pending
            # a slide to the next spot comes before the squeeze returns: it is kept
            if cur is not None and cur.peak < self.REP_TILT_MAX and cur.start >= started - 0.3:
                cur.blocked = True
            if pending is not None and pending.start >= started - 0.3 and pending.peak < self.REP_TILT_MAX:
                track.pending = None

    def update(self, t: float, rate: tuple | None, linear: tuple, force: float) -> StrokeEvent | None:
        self._gyro = rate is not None
        on_main, on_reach = self._signals(t, rate, linear)
        if t > self._owed_until:
            self._owed = 0  # the bout has moved on: the next stroke is its own
        counted = self._counted  # only the counted track's own _forget_axis can change it below
        event = self._follow(self._on_main, t, on_main, rate, linear, force, counted=counted is self._on_main)
        if on_reach is not None:
            stroke = self._follow(self._on_reach, t, on_reach, rate, linear, force, counted=counted is self._on_reach)
            event = stroke if counted is self._on_reach else event
        missed = self._missed
        if missed is not None and t - missed[1].end >= self.MISSED_S:
            self._missed = None
        elif missed is not None and event is None:
            # told now, one event a frame: events come in the order they are known
            self._missed = None
            event = self._stroke(*missed, told_at=t)
        return event

    def _follow(self, track: Track, t: float, u: float, rate: tuple | None, linear: tuple, force: float,
                counted: bool) -> StrokeEvent | None:
        """One frame of one axis's signal: a half-stroke begins, goes on or ends."""
        track.env *= self._env_decay
        h = max(self.H_MIN, self.H_RATIO * track.env)
        cur = track.current
        if cur is None:
            if abs(u) > h:
                track.current = cur = HalfStroke(1 if u > 0 else -1, t - FRAME_S)
            else:
                return self._expire(track, t, counted)
        if cur.sign * u < self.END_RATIO * h or t - cur.start > self.MAX_HALF_S or self._stalled(cur, u, t):
            track.current = None
            cur.end = t
            return self._finish_half(track, cur, counted)
        cur.peak = max(cur.peak, abs(u))
        cur.frames += 1
        if rate is not None:
            turn = cur.turn
            turn[0] += rate[0] * FRAME_S
            turn[1] += rate[1] * FRAME_S
            turn[2] += rate[2] * FRAME_S
        cur.lin_sq += linear[0] ** 2 + linear[1] ** 2 + linear[2] ** 2
        if force == force:  # not NaN
            cur.force_sum += force
            cur.force_n += 1
            cur.force_min = min(cur.force_min, force)
            cur.force_max = max(cur.force_max, force)
        return None

    def _stalled(self, cur: HalfStroke, u: float, t: float) -> bool:
        """Creeping on at a fraction of its peak speed for a while: the movement is over.

        What lingers is a slow tilt (a leg pressing into the roller) or an offset the
        high-pass has not caught up with yet; if the roller moves on the same way, the
        next half-stroke merges with this one.
        """
        if cur.sign * u >= self.STALL_RATIO * cur.peak:
            cur.slow_since = None
            return False
        if cur.slow_since is None:
            cur.slow_since = t
        return t - cur.slow_since >= self.STALL_S

    def _expire(self, track: Track, t: float, counted: bool) -> None:
        if track.pending is not None and t - track.pending.end > self.MAX_GAP_S:
            if counted:
                self.expired = track.pending
            track.pending = None
        return None

    def _forget_axis(self) -> None:
        self._hp_mean = [0.0, 0.0, 0.0]
        self.axes.forget()
        for track in (self._on_main, self._on_reach):
            track.current = track.pending = track.last = None
            track.strokes = 0
            track.last_told = False
        self._counted_before = self.count
        self._owed = 0
        self._missed = None

    def _learn_amplitude(self, track: Track, peak: float) -> None:
        capped = min(peak, self.OUTLIER_RATIO * max(track.env, self.ENV_FLOOR))
        track.env += 0.5 * (capped - track.env)

    def _finish_half(self, track: Track, half: HalfStroke, counted: bool) -> StrokeEvent | None:
        if half.end - half.start < self.MIN_HALF_S:
            return None  # a flick, not a movement
        if half.turned_deg > self.TURN_DEG:
            return self._turned(track, half, counted)
        self._learn_amplitude(track, half.peak)
        if half.blocked and half.peak < self.REP_TILT_MAX:
            # a rep's tilt; a half that grew past any rep's is rolling that began as it ended
            track.pending = None
            return None
        if half.force_n and half.force_sum / half.force_n < self.GRIP_N:
            # carried with the grip released: a move, not rolling, and nothing to learn from
            track.pending = None
            if counted:
                self._forget_axis()
                self.expired = half
            return None
        pending = track.pending
        if pending is None or half.start - pending.end > self.MAX_GAP_S:
            track.pending = half
            return None
        if pending.sign == half.sign:
            # a hesitation: the same direction resumed; one half-stroke still
            pending.end = half.end
            pending.peak = max(pending.peak, half.peak)
            pending.turn = [a + b for a, b in zip(pending.turn, half.turn)]
            pending.frames += half.frames
            pending.lin_sq += half.lin_sq
            pending.force_sum += half.force_sum
            pending.force_n += half.force_n
            pending.force_min = min(pending.force_min, half.force_min)
            pending.force_max = max(pending.force_max, half.force_max)
            if pending.turned_deg > self.TURN_DEG:
                return self._turned(track, pending, counted)  # a slow turn, paused on the way, is a turn still
            return None
        track.pending = None
        if self._is_rep_motion(pending, half):
            return None
        track.strokes += 1
        track.last = (pending, half)
        track.last_told = counted
        if not counted:
            return None
        if self._owed:
            self._owed -= 1
            return None
        return self._stroke(pending, half)

    def _turned(self, track: Track, half: HalfStroke, counted: bool) -> None:
        # the roller was turned over or carried round the thigh: not rolling, and what
        # the mean and the axis learnt from it must not linger
        track.pending = None
        if counted:
            self._forget_axis()
            self.expired = half
        return None

    def _is_rep_motion(self, first: HalfStroke, second: HalfStroke) -> bool:
        """A small back-and-forth tilt while the squeeze pulses hard: a rep, even mid-bout.

        Rolling sways the squeeze by a tenth or so; a rep presses a third or more into
        the roller while the thigh only lifts a degree or two.
        """
        n = first.force_n + second.force_n
        if n == 0 or max(first.peak, second.peak) >= self.REP_TILT_MAX:
            return False
        mean = (first.force_sum + second.force_sum) / n
        swing = max(first.force_max, second.force_max) - min(first.force_min, second.force_min)
        return mean > 0 and swing > self.REP_SWING * mean

    def _stroke(self, first: HalfStroke, second: HalfStroke, told_at: float | None = None) -> StrokeEvent:
        self.count += 1
        self.last_stroke_t = max(self.last_stroke_t, second.end)
        duration = second.end - first.start
        frames = first.frames + second.frames
        force_n = first.force_n + second.force_n
        mean_force = (first.force_sum + second.force_sum) / force_n if force_n else math.nan
        return StrokeEvent(
            t=second.end if told_at is None else told_at, duration=duration,
            length_cm=self._length_cm(first.lin_sq + second.lin_sq, frames, duration),
            mean_force_n=mean_force,
        )

    @staticmethod
    def _length_cm(lin_sq: float, frames: int, duration: float) -> float:
        # for x = (L/2) sin(wt), the acceleration's amplitude is (L/2) w^2:
        # an estimate of the one-way travel from the rms linear acceleration
        if frames == 0 or duration <= 0:
            return math.nan
        amplitude = math.sqrt(2.0 * lin_sq / frames) * G
        omega = 2.0 * math.pi / duration
        return round(100.0 * 2.0 * amplitude / omega**2, 1)

    def rolling_now(self, t: float) -> bool:
        """Rolling at this moment: a stroke just ended, or a bout of strokes goes on.

        A lone half-stroke is not rolling yet: it may be a slide to the next spot or
        the thigh lifting with a rep.
        """
        return self.rolling_surely(t) or self.bout_goes_on(t)

    def rolling_surely(self, t: float) -> bool:
        """A stroke just ended, or the pod moves more than a rep's tilt ever does.

        Then a rep could not be told from the sway of the squeeze.
        """
        if t - self.last_stroke_t < self.ROLLING_GRACE_S:
            return True
        cur = self._counted.current
        return cur is not None and cur.peak >= self.REP_TILT_MAX

    def bout_goes_on(self, t: float) -> bool:
        """Soon after a stroke, the pod moves as much as the bout's strokes did.

        Between the strokes of a bout the roller slows and turns: moving as much as
        the bout's strokes did is still rolling, a smaller tilt is a rep's. After
        gentle strokes (the tendon) a rep's tilt moves as much, so this is a maybe.
        """
        track = self._counted
        like_the_bout = self.BOUT_SHARE * track.env
        cur, pending = track.current, track.pending
        moving = (cur is not None and cur.peak >= like_the_bout) or (
            pending is not None and t - pending.end < self.ROLLING_GRACE_S and pending.peak >= like_the_bout)
        return moving and t - self.last_stroke_t < self.BOUT_GAP_S

    def take_expired(self) -> HalfStroke | None:
        half, self.expired = self.expired, None
        return half
