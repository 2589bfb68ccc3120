"""Reps: one leg-straightening against the held roller.

As the quadriceps contract, the muscle presses into the roller and the squeeze
force rises, then falls as the leg relaxes; the pod barely moves. The holding
level is tracked from the force itself: it follows a drop at once and a
plateau quickly, but not a rise that is still under way. A rep is a rise above
that level that comes back down: it is reported as soon as the force has
fallen a quarter of the way back from its peak, so the user hears it right after
the effort. A rep that starts before the force is back at the level (quick
reps) is measured from the trough between the two.

What is not a rep: a rise while the roller is rolling or sliding to the next
trigger point, and a rise that stays up (the user simply squeezing harder,
or taking hold of the handles), which becomes the new holding level. Just
after a bout of strokes the pod's small tilts may be more rolling or a rep's
lift (after gentle strokes they are alike): a rise then counts only if it
presses a third into the roller, which rolling's sway of the squeeze never does.
"""

from __future__ import annotations

from collections import deque

from ..samples import RepEvent
from .motion import ema_alpha

# a rep presses at least this share of the squeeze into the roller; rolling sways it by
# a tenth or so (the stroke counter tells a rep's tilt from rolling by it too)
REP_PUSH_SHARE = 0.3


class RepCounter:
    ON_N = 5.0  # rise above the level that starts a rep ...
    ON_RATIO = 0.06  # ... or this share of the level, if larger
    MIN_RISE_N = 8.0
    MIN_RISE_RATIO = 0.10  # of the holding level: rolling sways the force by less
    SWAYING_RISE_RATIO = REP_PUSH_SHARE  # while a bout of strokes may go on
    REPORT_DROP = 0.25  # reported once the force fell this share of the rise from its peak
    EASED_OFF = 0.5  # ... but the next rep begins only after this much: a sag is not a new push
    STEADY_N = 2.0  # spread of the force over STEADY_FRAMES that counts as a plateau
    STEADY_FRAMES = 3
    SETTLE_FRAMES = 4  # a plateau this long sets the level
    MAX_TOP_S = 4.0  # a rise that stays up this long is a new level, not a rep
    GRIP_N = 12.0

    def __init__(self):
        self.level: float | None = None
        self._down = ema_alpha(0.25)
        self._plateau = ema_alpha(0.3)
        self._creep = ema_alpha(6.0)
        self.active = False  # a rise is under way or falling back
        self._reported = False
        self._swayed = False  # the rise came while a bout of strokes may have gone on
        self._start_t = 0.0
        self._base = 0.0
        self._peak = 0.0
        self._peak_t = 0.0
        self._trough = 0.0
        self._top_since = 0.0
        self._plateau_level: float | None = None
        self._previous: float | None = None
        self._recent: deque[float] = deque(maxlen=self.STEADY_FRAMES)
        self._steady = 0
        self._settled = False
        self._high = self._low = 0.0  # the swing seen while not yet settled
        self.count = 0

    @property
    def rise_started_t(self) -> float:
        return self._start_t

    @property
    def pressing(self) -> bool:
        """A rise big enough to be a rep is under way, or falling back (the thigh lifts, then sinks)."""
        return self.active and self._big_enough(self._peak - self._base)

    def _big_enough(self, rise: float) -> bool:
        ratio = self.SWAYING_RISE_RATIO if self._swayed else self.MIN_RISE_RATIO
        return rise >= max(self.MIN_RISE_N, ratio * self._base)

    def reset(self, force: float) -> None:
        """The roller moved to a new spot: start again from the present force."""
        self.active = False
        self._reported = False
        self._settled = False
        self._high = self._low = force
        self.level = force

    def update(self, t: float, force: float, rolling: bool, swaying: bool = False) -> RepEvent | None:
        """One frame's force; `rolling` for sure, or perhaps (`swaying`: a bout may go on)."""
        if force != force:  # NaN: no force data
            return None
        previous, self._previous = self._previous, force
        recent = self._recent
        recent.append(force)
        # steady over the last few frames, not just since the last one: a slow rep
        # rises a newton or two a frame, and must not be taken for a plateau
        steady = len(recent) == recent.maxlen and max(recent) - min(recent) < self.STEADY_N
        self._steady = self._steady + 1 if steady else 0
        rising = previous is not None and force > previous
        if self.level is None or force < self.GRIP_N or rolling:
            self.reset(force)
            return None
        if not self.active:
            self._follow_level(force, steady)
            # a rep rises from a held squeeze: not from taking hold of the handles, so the
            # level is where the squeeze settled, not where a lagging average had got to
            if not self._settled and self._steady >= self.SETTLE_FRAMES:
                self._settled = True
                self.level = force
            elif not self._settled:
                self._settle_on_a_trough(force, rising)
            if self._settled and rising and force - self.level > max(self.ON_N, self.ON_RATIO * self.level):
                self._begin(t, force, self.level, swaying)
            return None
        return self._during(t, force, rising, swaying)

    def _settle_on_a_trough(self, force: float, rising: bool) -> None:
        # quick reps never leave the squeeze steady for long: a fall as big as a rep
        # that bottoms out and turns up again shows the held level too (taking hold of
        # the handles only ever rises)
        if force > self._high:
            self._high = self._low = force
        self._low = min(self._low, force)
        fell = self._high - self._low
        if rising and force > self._low and fell >= max(self.MIN_RISE_N, self.MIN_RISE_RATIO * self._low):
            self._settled = True
            self.level = self._low

    def _follow_level(self, force: float, steady: bool) -> None:
        if force < self.level:
            rate = self._down
        else:
            rate = self._plateau if steady else self._creep
        self.level += rate * (force - self.level)

    def _begin(self, t: float, force: float, base: float, swaying: bool) -> None:
        self.active = True
        self._swayed = swaying
        self._reported = False
        self._start_t = t
        self._base = base
        self._peak, self._peak_t = force, t
        self._top_since = t
        self._plateau_level: float | None = None

    def _during(self, t: float, force: float, rising: bool, swaying: bool) -> RepEvent | None:
        self._swayed = self._swayed or swaying
        if not self._reported:
            if self._steady >= self.SETTLE_FRAMES and rising is False:
                self._plateau_level = force
            if self._plateau_level is not None and rising and force - self._plateau_level > max(self.ON_N, self.ON_RATIO * force):
                # the rise had levelled off (taking hold of the handles) and now rises
                # again: that second rise is the rep, measured from the plateau
                self._begin(t, force, self._plateau_level, swaying)
                return None
            if force > self._peak:
                self._peak, self._peak_t = force, t
            if self._steady < self.SETTLE_FRAMES:
                self._top_since = t
            rise = self._peak - self._base
            if force < self._peak - max(self.ON_N * 0.6, self.REPORT_DROP * rise):
                self._reported = True
                self._trough = force
                if self._big_enough(rise):
                    self.count += 1
                    return RepEvent(t=self._peak_t, duration=t - self._start_t, peak_force_n=self._peak,
                                    rise_n=rise, reported_t=t)
            elif t - self._top_since > self.MAX_TOP_S:
                self.active = False  # it stayed up: squeezing harder, a new level
                self.level = force
            return None
        # falling back after a rep
        self._trough = min(self._trough, force)
        eased = self._peak - self._trough >= self.EASED_OFF * (self._peak - self._base)
        if eased and rising and force - self._trough > max(self.ON_N, self.ON_RATIO * self._trough):
            self._begin(t, force, self._trough, swaying)  # the next rep began before the force settled
        elif self._steady >= self.SETTLE_FRAMES:
            self.active = False
            self.level = force
        return None
