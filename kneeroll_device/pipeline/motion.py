"""Orientation, stillness and the pod's side: what the IMU says about how the roller moves.

Nothing here assumes an axis: the pod can be clipped on at any angle and is
turned over for the hamstrings. Gravity in the pod's frame is a complementary
filter: the gyro turns it, the accelerometer pulls it back slowly, and not at all
when it disagrees by more than a pod at rest could (x-io's Fusion AHRS does the
same at sample rate; here it runs on the 0.1 s frames, so it stays block-size
invariant and costs a few dozen operations a frame). The gyro's bias is learnt
while the pod is still; the side is judged from the angle between today's gravity
and the gravity of the first still moment.

The tilt the strokes are counted on is the same direction turned by the gyro alone,
once its bias is known: how the frame turned, and nothing else. The accelerometer
also reads the stroke's own acceleration, which is in step with the position but of
the opposite sign, and a correction pulled in at rest would move the tilt with no
movement of the roller. What the tilt drifts by (the bias learnt to a quarter of a
degree a second) turns the whole frame slowly, which the distance between two
turning points a second or two apart does not see.
"""

from __future__ import annotations

import math
from collections import deque

from .framing import FRAME_S


def ema_alpha(tau_s: float) -> float:
    """Smoothing factor of a first-order low-pass with time constant tau_s at the frame rate."""
    return 1.0 - math.exp(-FRAME_S / tau_s)


def seen_after_turn(v, rate: tuple) -> tuple[float, float, float]:
    """A world-fixed vector as the pod sees it after turning at ``rate`` (deg/s) for a frame.

    Seen from a turning body the vector turns the other way; Rodrigues' formula is exact
    for a turn about one axis, so even a flip's 20 degrees a frame is followed.
    """
    return turned(v, frame_turn(rate))


def frame_turn(rate: tuple) -> tuple[float, float, float, float, float] | None:
    """The turn a world-fixed vector makes, seen from the pod turning at ``rate`` (deg/s) for
    a frame: its axis and the cosine and sine of its angle (None: no turn)."""
    to_turn = -math.pi / 180.0 * FRAME_S
    wx, wy, wz = rate[0] * to_turn, rate[1] * to_turn, rate[2] * to_turn
    angle = math.sqrt(wx * wx + wy * wy + wz * wz)
    if angle < 1e-12:
        return None
    return wx / angle, wy / angle, wz / angle, math.cos(angle), math.sin(angle)


def turned(v, turn: tuple[float, float, float, float, float] | None) -> tuple[float, float, float]:
    """``v`` turned by a frame_turn (Rodrigues' formula)."""
    if turn is None:
        return (v[0], v[1], v[2])
    kx, ky, kz, c, s = turn
    along = (kx * v[0] + ky * v[1] + kz * v[2]) * (1.0 - c)
    return (v[0] * c + (ky * v[2] - kz * v[1]) * s + kx * along,
            v[1] * c + (kz * v[0] - kx * v[2]) * s + ky * along,
            v[2] * c + (kx * v[1] - ky * v[0]) * s + kz * along)


def cosine(a, b) -> float:
    """The cosine of the angle between two vectors (0 if either is nothing)."""
    norms = math.sqrt((a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) * (b[0] * b[0] + b[1] * b[1] + b[2] * b[2]))
    return (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (norms or 1.0)


def pulled(v, toward, share: float) -> tuple[float, float, float]:
    """``v`` moved ``share`` of the way toward ``toward`` (a first-order low-pass step)."""
    return (v[0] + share * (toward[0] - v[0]), v[1] + share * (toward[1] - v[1]), v[2] + share * (toward[2] - v[2]))


class MotionTracker:
    """Gravity, gyro bias, stillness and flip from IMU frames."""

    # how fast the accelerometer pulls gravity back: quickly at rest, or while the gyro's bias
    # is unknown (its rate cannot be trusted); slowly while the pod moves, so the stroke's own
    # acceleration (a tenth of g at 1 Hz) stays mostly out of it
    GRAVITY_TAU_S = 1.5
    GYRO_GRAVITY_TAU_S = 5.0
    # still: over the last 2 s gravity's direction stayed within about 1.7 degrees of its mean
    # (0.03 g: a spread of some 3.5 degrees), and ended where it began, within half a degree
    # (0.009 g); both measured as distances between vectors, so they do not depend on how the
    # pod is mounted (a spread judged axis by axis did). A hand resting on the handles
    # wobbles the pod by a degree or so, but it comes back, so the gyro's mean over those 2 s
    # is its bias to a quarter of a degree a second, whatever it read frame by frame; a slow
    # turn one way does not come back, and is not taken for stillness
    STILL_RADIUS_G = 0.03
    STILL_RETURN_G = 0.009
    STILL_FRAMES = round(2.0 / FRAME_S)
    # an accelerometer reading more than 10 degrees from the gravity the gyro carried is
    # mostly the pod's own acceleration (a flip, a grab): gravity follows the gyro alone
    # then, for at most 5 s, after which the accelerometer is trusted again (the gyro may
    # have drifted). The same rule as x-io's Fusion AHRS (acceleration rejection, recovery).
    REJECT_DEG = 10.0
    RECOVERY_S = 5.0
    FLIP_ON_DEG = 110.0
    FLIP_OFF_DEG = 70.0
    # the accelerometer's noise is the sensor's own (its datasheet gives a density, and the
    # rate and filter set how much of it a frame's mean keeps): learnt while the pod is
    # still, where nothing else moves the samples within a frame, over about 10 s of rest
    NOISE_TAU_S = 10.0

    def __init__(self):
        self.gravity: tuple[float, float, float] | None = None
        # gravity's direction turned by the gyro alone once its bias is known (until then, and
        # without a gyro, it follows the accelerometer as gravity does): tilt()
        self._tilt: tuple[float, float, float] | None = None
        self.reference: tuple[float, float, float] | None = None  # gravity at the first still moment
        self.bias = [0.0, 0.0, 0.0]
        self.bias_known = False
        self.still_frames = 0  # how many frames in a row the pod has been still
        self.still = False
        self.flipped = False
        self._recent_accel: deque[tuple] = deque(maxlen=self.STILL_FRAMES)
        # the readings summed since the start, and their squares: the sum and the spread of
        # any run of the recent ones is a difference of two of these, without a loop a frame
        # (after a week of frames, about 6e6 g, the difference is still good to 1e-9 g)
        self._sums: deque[tuple[float, float, float, float]] = deque([(0.0, 0.0, 0.0, 0.0)],
                                                                      maxlen=self.STILL_FRAMES + 1)
        self._recent_gyro: deque[tuple] = deque(maxlen=self.STILL_FRAMES)
        self._a_g = ema_alpha(self.GRAVITY_TAU_S)
        self._a_g_gyro = ema_alpha(self.GYRO_GRAVITY_TAU_S)
        self._cos_reject = math.cos(math.radians(self.REJECT_DEG))
        self._cos_flip_on = math.cos(math.radians(self.FLIP_ON_DEG))
        self._cos_flip_off = math.cos(math.radians(self.FLIP_OFF_DEG))
        self._rejected_frames = 0
        self._a_noise = ema_alpha(self.NOISE_TAU_S)
        self._noise_sq: float | None = None

    @property
    def accel_noise(self) -> float:
        """How far a frame's mean acceleration may be off from the sensor's noise (g RMS per
        axis), as learnt at rest; 0 until the pod has been still (none is assumed)."""
        return math.sqrt(self._noise_sq) if self._noise_sq is not None else 0.0

    def update(self, accel: tuple, gyro: tuple | None, loaded: bool = False, accel_noise: float = 0.0) -> None:
        """One frame. ``loaded``: the roller is squeezed onto the leg (from the force);
        ``accel_noise``: how far the frame's mean acceleration may be off from the samples'
        spread (g, framing.Frame.accel_noise)."""
        if self.gravity is None:
            self.gravity = self._tilt = (accel[0], accel[1], accel[2])
        elif gyro is not None and self.bias_known:  # (an unknown bias would turn it steadily)
            turn = frame_turn(self.rate(gyro))
            self.gravity = turned(self.gravity, turn)
            if self._trust(accel):
                # at rest the accelerometer reads gravity alone: follow it quickly then
                self.gravity = pulled(self.gravity, accel, self._a_g if self.still else self._a_g_gyro)
            self._tilt = turned(self._tilt, turn)
        else:  # the accelerometer is all there is to go by
            self.gravity = pulled(self.gravity, accel, self._a_g)
            self._tilt = pulled(self._tilt, accel, self._a_g)
        self._update_stillness(accel)
        if gyro is not None:
            self._recent_gyro.append(gyro)
        if self.still:
            # slow, short strokes can look still; a roller squeezed onto the leg may be
            # rolling, so the gyro's bias is only learnt while it rests unloaded
            if gyro is not None and (not loaded or not self.bias_known):
                self._learn_bias()
            if self.reference is None:
                self.reference = self.gravity
            self._learn_noise(accel_noise)
        self._update_flip()

    def _learn_noise(self, accel_noise: float) -> None:
        if accel_noise <= 0.0:
            return  # a frame of one sample: its noise is unknown, not nothing
        if self._noise_sq is None:
            self._noise_sq = accel_noise * accel_noise
        else:
            self._noise_sq += self._a_noise * (accel_noise * accel_noise - self._noise_sq)

    def _trust(self, accel: tuple) -> bool:
        """Whether the accelerometer may correct gravity in this frame."""
        if cosine(accel, self.gravity) >= self._cos_reject:
            self._rejected_frames = 0
            return True
        self._rejected_frames += 1
        return self._rejected_frames * FRAME_S > self.RECOVERY_S

    def _update_stillness(self, accel: tuple) -> None:
        ax, ay, az = accel
        x, y, z, sq = self._sums[-1]
        self._sums.append((x + ax, y + ay, z + az, sq + ax * ax + ay * ay + az * az))
        self._recent_accel.append(accel)
        self.still_frames = self.still_frames + 1 if self._calm() else 0
        self.still = self.still_frames > 0

    def _calm(self) -> bool:
        sums = self._sums
        if len(sums) < sums.maxlen:
            return False
        n, quarter = self.STILL_FRAMES, self.STILL_FRAMES // 4
        (x0, y0, z0, sq0), (x1, y1, z1, _) = sums[0], sums[quarter]
        (x2, y2, z2, _), (x3, y3, z3, sq3) = sums[n - quarter], sums[n]
        # ended where it began (the cheaper test, and the one a moving pod fails first): the
        # newest quarter's readings against the oldest quarter's
        dx, dy, dz = (x3 - x2) - (x1 - x0), (y3 - y2) - (y1 - y0), (z3 - z2) - (z1 - z0)
        if dx * dx + dy * dy + dz * dz >= (self.STILL_RETURN_G * quarter) ** 2:
            return False
        # and stayed near its mean throughout: at once if all the readings' distances from
        # it, squared and added up, stay inside the radius (as at rest; with half of it to
        # spare for the sums' rounding), else reading by reading
        tx, ty, tz = x3 - x0, y3 - y0, z3 - z0
        radius_sq = self.STILL_RADIUS_G ** 2
        if (sq3 - sq0) - (tx * tx + ty * ty + tz * tz) / n < 0.5 * radius_sq:
            return True
        mx, my, mz = tx / n, ty / n, tz / n
        for x, y, z in self._recent_accel:
            x, y, z = x - mx, y - my, z - mz
            if x * x + y * y + z * z >= radius_sq:
                return False
        return True

    def _learn_bias(self) -> None:
        # the still window's mean rate: the wobble of a resting hand averages out. Gravity
        # staying put proves the pod did not turn about a level axis; a turn about the
        # vertical does not move gravity, so along the vertical the bias learnt before
        # stays. The vertical is the tilt's direction: a bias left off along it does not turn
        # the tilt, where one left off along the true vertical turns it once the tilt has
        # drifted from gravity (a turn about the true vertical in the window leaks in then:
        # measured, the tilt's vertical counts better, docs/counting.md)
        recent = self._recent_gyro
        mean = [sum(axis) / len(recent) for axis in zip(*recent)]
        if not self.bias_known:
            self.bias, self.bias_known = mean, True
            return
        g = self._tilt
        norm = math.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]) or 1.0
        up = (g[0] / norm, g[1] / norm, g[2] / norm)
        change = [mean[i] - self.bias[i] for i in range(3)]
        along = change[0] * up[0] + change[1] * up[1] + change[2] * up[2]
        self.bias = [self.bias[i] + change[i] - along * up[i] for i in range(3)]

    def _update_flip(self) -> None:
        ref, g = self.reference, self.gravity
        if ref is None or g is None:
            return
        cos_angle = cosine(ref, g)  # (compared as cosines: the angle grows as its cosine falls)
        if not self.flipped and cos_angle < self._cos_flip_on:
            self.flipped = True
        elif self.flipped and cos_angle > self._cos_flip_off:
            self.flipped = False

    def rate(self, gyro: tuple) -> tuple[float, float, float]:
        """Angular rate with the learnt bias removed."""
        b = self.bias
        return (gyro[0] - b[0], gyro[1] - b[1], gyro[2] - b[2])

    def tilt(self) -> tuple[float, float, float]:
        """Gravity's direction in the pod's frame as the gyro alone turned it, once its bias is
        known (a unit vector): how the frame turned, whatever the pod's own acceleration."""
        g = self._tilt
        norm = math.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]) or 1.0
        return (g[0] / norm, g[1] / norm, g[2] / norm)
