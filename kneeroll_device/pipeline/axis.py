"""The axis strokes are counted on: the way the pod turns as the roller rolls.

The roller's frame tilts about its axle as it rides over the curve of the
thigh, and the axle is fixed in the pod's frame, so the main axis of the gyro's
rate (tracked by power iteration on its running covariance) is usually that
axle. Except when the user twists the roller round the thigh at a rhythm of
their own: then the twist can turn the pod more than the tilt does, the main
axis is the thigh's or a mixture of the two, and counting on it counts the
twists.

Two facts tell the two apart without assuming how the pod sits:

- Rolling turns the pod on the radius of the thigh's curve, most of a metre;
  twisting swings it on the handle, a few centimetres out. The least-squares
  map from the rate to the pod's velocity (integrated acceleration) has, as its
  top right singular vector, the rotation that moves the pod furthest per
  radian turned: the rolling, however small its share of the rate, and even
  when the twist's and the tilt's rates are alike and the main axis is a blend.
- Twisting in step with the strokes (once each way a stroke) counts the strokes
  as well as the tilt does; only a twist that keeps its own rhythm must be left
  out. The share of the main rotation that moves with the tilt across it, or
  with the angle it turns, says which.
"""

from __future__ import annotations

import math

from .framing import FRAME_S
from .motion import ema_alpha

class AxisCovariance:
    """A running covariance of 3-vectors, and its main axis by power iteration."""

    __slots__ = ("c", "weight")

    def __init__(self):
        self.c = [0.0] * 6  # xx, yy, zz, xy, xz, yz
        self.weight = 0.0  # of the running mean so far: it starts from nothing

    def add(self, x: tuple, alpha: float) -> None:
        c, (x0, x1, x2) = self.c, x
        self.weight += alpha * (1.0 - self.weight)
        c[0] += alpha * (x0 * x0 - c[0])
        c[1] += alpha * (x1 * x1 - c[1])
        c[2] += alpha * (x2 * x2 - c[2])
        c[3] += alpha * (x0 * x1 - c[3])
        c[4] += alpha * (x0 * x2 - c[4])
        c[5] += alpha * (x1 * x2 - c[5])

    def along(self, e: list[float]) -> float:
        """The running mean square along the unit vector e."""
        c = self.c
        return (c[0] * e[0] * e[0] + c[1] * e[1] * e[1] + c[2] * e[2] * e[2]
                + 2.0 * (c[3] * e[0] * e[1] + c[4] * e[0] * e[2] + c[5] * e[1] * e[2]))

    def rms(self, e: list[float]) -> float:
        """The rms along the unit vector e, corrected for the running mean's start from zero."""
        return math.sqrt(max(self.along(e), 0.0) / self.weight) if self.weight else 0.0

    def power_step(self, e: list[float], steps: int, without: list[float] | None = None) -> list[float]:
        """Move e towards the main axis (of the plane across ``without``, if given)."""
        c = self.c
        for _ in range(steps):
            if without is not None:
                e = _remove(e, without)
            nx = c[0] * e[0] + c[3] * e[1] + c[4] * e[2]
            ny = c[3] * e[0] + c[1] * e[1] + c[5] * e[2]
            nz = c[4] * e[0] + c[5] * e[1] + c[2] * e[2]
            if without is not None:
                nx, ny, nz = _remove([nx, ny, nz], without)
            norm = math.sqrt(nx * nx + ny * ny + nz * nz)
            if norm <= 1e-9:
                break
            e = [nx / norm, ny / norm, nz / norm]
        return e


def _sym_solve(c: list[float], b: list[float]) -> list[float]:
    """x with S x = b, S symmetric 3x3 given as xx, yy, zz, xy, xz, yz (Cramer's rule)."""
    a00, a11, a22, a01, a02, a12 = c
    i00 = a11 * a22 - a12 * a12
    i01 = a02 * a12 - a01 * a22
    i02 = a01 * a12 - a02 * a11
    i11 = a00 * a22 - a02 * a02
    i12 = a01 * a02 - a00 * a12
    i22 = a00 * a11 - a01 * a01
    det = a00 * i00 + a01 * i01 + a02 * i02
    return [(i00 * b[0] + i01 * b[1] + i02 * b[2]) / det,
            (i01 * b[0] + i11 * b[1] + i12 * b[2]) / det,
            (i02 * b[0] + i12 * b[1] + i22 * b[2]) / det]


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _remove(e: list[float], w: list[float]) -> list[float]:
    """e without its part along the unit vector w."""
    d = _dot(e, w)
    return [e[0] - d * w[0], e[1] - d * w[1], e[2] - d * w[2]]


class HighPass:
    """A first-order high-pass of 3-vectors at the frame rate."""

    __slots__ = ("leak", "prev", "y")

    def __init__(self, tau_s: float):
        self.leak = math.exp(-FRAME_S / tau_s)
        self.prev: tuple | None = None
        self.y = (0.0, 0.0, 0.0)

    def apply(self, x: tuple) -> tuple:
        p, y, k = self.prev, self.y, self.leak
        if p is not None:
            self.y = y = (k * (y[0] + x[0] - p[0]), k * (y[1] + x[1] - p[1]), k * (y[2] + x[2] - p[2]))
        self.prev = x
        return y


class Coherence:
    """How much of one rate moves in step with another: with it, or with the angle it turns.

    The share of the first rate's variance that the second rate and its angle
    explain together, by least squares (the two are about a quarter-cycle apart,
    so between them they catch any phase): near 1 when both follow one rhythm,
    near 0 when each keeps its own.
    """

    __slots__ = ("angle", "moments")
    ALPHA = ema_alpha(10.0)
    LEAK = math.exp(-FRAME_S / 2.0)

    def __init__(self):
        self.angle = 0.0
        self.moments = AxisCovariance()  # of (a, b, b's angle)

    def update(self, a: float, b: float) -> None:
        self.angle = (self.angle + b * FRAME_S) * self.LEAK
        self.moments.add((a, b, self.angle), self.ALPHA)

    @property
    def share(self) -> float:
        aa, bb, cc, ab, ac, bc = self.moments.c
        det = bb * cc - bc * bc
        if aa <= 0.0 or det <= 1e-12 * bb * cc:
            return 0.0
        # the explained part of a's variance: [ab ac] inv([[bb bc] [bc cc]]) [ab ac]'
        explained = (cc * ab * ab - 2.0 * bc * ab * ac + bb * ac * ac) / det
        return min(max(explained / aa, 0.0), 1.0)


class StrokeAxis:
    """The gyro axis the strokes show on, and whether the user twists round the main one."""

    TAU_S = 20.0  # memory of the axes: the roller tilts about its own axle, which is fixed
                  # in the pod's frame (the flip turns it end over end, so the same axis
                  # serves the hamstrings); a short memory let the axis follow the rate
                  # vector round the ellipse that twisting in step with the strokes draws
    DECIDE_EVERY = 5  # frames: the axes settle over seconds, so half a second is soon enough
    REACH_STEPS = 3  # power steps towards the reaching axis at each decision
    TREMOR_DPS = 2.0  # a rotation slower than tremor is not trusted to measure a radius
    APART_COS = 0.7  # the main rotation is more than 45 degrees from the reaching one ...
    TWIST_RATIO = 2.0  # ... which turns the pod on a radius this many times longer ...
    IN_STEP_SHARE = 0.5  # ... the main rotation does not keep step with it ...
                         # ... and it turns faster than tremor
    STAY_COS = 0.9  # counting on the reaching axis goes on until the main one is within 25
                    # degrees of it (hysteresis: a ratio hovering near its threshold must
                    # not switch the axis back and forth every second)
    DWELL_DECISIONS = 2  # a change must hold this long (1 s): the estimates wander as they settle

    def __init__(self):
        self._a = ema_alpha(self.TAU_S)
        self.main = [1.0, 0.0, 0.0]
        self.tilt = [0.0, 1.0, 0.0]  # the main axis of the plane across the main one
        self.changed = False  # the axis counted on changed at the last update
        self._frames = 0
        self.forget()  # and not twisting

    def forget(self) -> None:
        """The roller was turned over or carried: what the axes learnt from it must not linger."""
        self.rates = AxisCovariance()
        # the velocity is the acceleration high-passed three times (the gravity
        # estimate, the leaky integral, its mean): the rate it is compared with must
        # be too, and start afresh, or a flip would ring through them for seconds
        self._rate_filters = (HighPass(1.5), HighPass(1.5), HighPass(3.0))
        self._filtered = AxisCovariance()  # of the rate so filtered
        self._swing = [0.0] * 9  # that rate (rows) against the velocity (columns)
        self._in_step = Coherence()
        self.reach = list(self.main)
        self._counted = self.reach  # the reaching axis when it was last taken up
        self.twisting = False
        self._votes = 0

    def main_amplitude(self) -> float:
        """The amplitude of the rate about the main axis while it is being twisted round
        (deg/s); 0 otherwise."""
        return math.sqrt(2.0) * self.rates.rms(self.main) if self.twisting else 0.0

    @property
    def axis(self) -> list[float]:
        """The axis to count strokes on."""
        return self.reach if self.twisting else self.main

    def update(self, rate: tuple, velocity: tuple | None = None, raw_rate: tuple | None = None) -> list[float]:
        """One frame: ``rate`` high-passed (deg/s); ``velocity`` (m/s) and the unfiltered
        ``raw_rate`` only from a gyro, to tell twisting from rolling."""
        self.changed = False
        rates = self.rates
        rates.add(rate, self._a)
        # power iteration from the last axis: it keeps its sign while it settles
        self.main = main = rates.power_step(self.main, 1)
        if velocity is None:
            return main
        self._add_swing(raw_rate, velocity)
        self._in_step.update(_dot(rate, main), _dot(rate, self.tilt))
        self._frames += 1
        if self._frames % self.DECIDE_EVERY == 0:
            self.tilt = rates.power_step(self.tilt, self.DECIDE_EVERY, without=main)
            self.reach = self._reach_step(self.reach, self.REACH_STEPS)
            self._decide()
        return self.axis

    def _add_swing(self, raw_rate: tuple, velocity: tuple) -> None:
        x = raw_rate
        for f in self._rate_filters:
            x = f.apply(x)
        self._filtered.add(x, self._a)
        w, a = self._swing, self._a
        v0, v1, v2 = velocity
        for i in range(3):
            xi = x[i]
            k = 3 * i
            w[k] += a * (xi * v0 - w[k])
            w[k + 1] += a * (xi * v1 - w[k + 1])
            w[k + 2] += a * (xi * v2 - w[k + 2])

    def _moved_by(self, e: list[float]) -> list[float]:
        """W' e: the velocity that moves with the rate about e."""
        w = self._swing
        return [e[0] * w[0] + e[1] * w[3] + e[2] * w[6],
                e[0] * w[1] + e[1] * w[4] + e[2] * w[7],
                e[0] * w[2] + e[1] * w[5] + e[2] * w[8]]

    def _turns_with(self, v: list[float]) -> list[float]:
        """W v: the rate that turns with the velocity v."""
        w = self._swing
        return [w[0] * v[0] + w[1] * v[1] + w[2] * v[2],
                w[3] * v[0] + w[4] * v[1] + w[5] * v[2],
                w[6] * v[0] + w[7] * v[1] + w[8] * v[2]]

    def radius_m(self, e: list[float]) -> float:
        """How far the pod travels per radian turned about e: the radius it turns on."""
        var = self._filtered.along(e)
        if var <= 0.0:
            return 0.0
        v = self._moved_by(e)
        return math.degrees(math.sqrt(_dot(v, v)) / var)

    def _reach_step(self, e: list[float], steps: int) -> list[float]:
        """Move e towards the rotation that turns the pod on the longest radius.

        The least-squares map from the rate to the velocity is B = W' inv(C): its
        top right singular vector is that rotation, whatever its share of the rate.
        C is the filtered rate's covariance with the tremor's variance added, so a
        rotation too slow to measure cannot claim a long radius by dividing by
        almost nothing. Power iteration on inv(C) W W' inv(C).
        """
        f = self._filtered
        if not f.weight:
            return e
        tremor = self.TREMOR_DPS ** 2
        c = [x / f.weight for x in f.c]
        c[0] += tremor
        c[1] += tremor
        c[2] += tremor
        for _ in range(steps):
            n = _sym_solve(c, self._turns_with(self._moved_by(_sym_solve(c, e))))
            norm = math.sqrt(_dot(n, n))
            if not norm > 1e-12:  # nothing learnt yet, or a NaN that must not stick
                break
            e = [n[0] / norm, n[1] / norm, n[2] / norm]
        return e

    def _decide(self) -> None:
        main, reach = self.main, self.reach
        apart = abs(_dot(main, reach))
        if self.twisting:
            # stay until the main axis comes round to the reaching one: a blend of the
            # two rotations reads a middling radius and must not win the count back
            apart_enough = apart < self.STAY_COS
        else:
            apart_enough = apart < self.APART_COS and self.radius_m(reach) > self.TWIST_RATIO * self.radius_m(main)
        wanted = (apart_enough and self._in_step.share < self.IN_STEP_SHARE
                  and self.rates.rms(reach) > self.TREMOR_DPS)
        self._votes = self._votes + 1 if wanted != self.twisting else 0
        if self._votes >= self.DWELL_DECISIONS:
            self.twisting, self._votes, self.changed = wanted, 0, True
            self._counted = reach
        elif self.twisting and abs(_dot(reach, self._counted)) < self.APART_COS:
            # the reaching axis wandered far from where the count took it up
            self.changed, self._counted = True, reach
