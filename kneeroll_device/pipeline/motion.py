"""Orientation, stillness and the pod's side: what the IMU says about how the roller moves.

Nothing here assumes an axis: the pod can be clipped on at any angle and is
turned over for the hamstrings. Gravity is tracked as a slow mean of the
accelerometer; the gyro's bias is learnt while the pod is still; the side is
judged from the angle between today's gravity and the gravity of the first
still moment.
"""

from __future__ import annotations

import math

from .framing import FRAME_S


def ema_alpha(tau_s: float) -> float:
    """Smoothing factor of a first-order low-pass with time constant tau_s at the frame rate."""
    return 1.0 - math.exp(-FRAME_S / tau_s)


class MotionTracker:
    """Gravity, gyro bias, stillness and flip from IMU frames."""

    GRAVITY_TAU_S = 1.5
    STILL_GYRO_DPS = 1.5  # frame-to-frame gyro change below this ...
    STILL_ACCEL_G = 0.012  # ... and accel change below this, for STILL_FRAMES frames
    STILL_FRAMES = 8
    BIAS_TAU_S = 2.0
    FLIP_ON_DEG = 110.0
    FLIP_OFF_DEG = 70.0

    def __init__(self):
        self.gravity: list[float] | None = None
        self.reference: list[float] | None = None  # gravity at the first still moment
        self.bias = [0.0, 0.0, 0.0]
        self.bias_known = False
        self.still_frames = 0
        self.flipped = False
        self._prev_accel: tuple | None = None
        self._prev_gyro: tuple | None = None
        self._a_g = ema_alpha(self.GRAVITY_TAU_S)
        self._a_b = ema_alpha(self.BIAS_TAU_S)

    @property
    def still(self) -> bool:
        return self.still_frames >= self.STILL_FRAMES

    def update(self, accel: tuple, gyro: tuple | None, loaded: bool = False) -> None:
        """One frame. ``loaded``: the roller is squeezed onto the leg (from the force)."""
        g = self.gravity
        if g is None:
            self.gravity = list(accel)
        else:
            if gyro is not None and self.bias_known:
                self._rotate_gravity(self.rate(gyro))
            a = self._a_g
            g[0] += a * (accel[0] - g[0])
            g[1] += a * (accel[1] - g[1])
            g[2] += a * (accel[2] - g[2])
        self._update_stillness(accel, gyro)
        if self.still:
            # slow, short strokes can look still; a roller squeezed onto the leg may be
            # rolling, so the gyro's bias is only learnt while it rests unloaded
            if gyro is not None and (not loaded or not self.bias_known):
                self._learn_bias(gyro)
            if self.reference is None:
                self.reference = list(self.gravity)
        self._update_flip()

    def _rotate_gravity(self, rate: tuple) -> None:
        # a world-fixed vector seen from a turning body moves by -omega x g; turning
        # it with the gyro keeps tilt out of the linear acceleration while rolling
        g = self.gravity
        wx, wy, wz = (math.radians(r) * FRAME_S for r in rate)
        gx, gy, gz = g
        g[0] = gx - (wy * gz - wz * gy)
        g[1] = gy - (wz * gx - wx * gz)
        g[2] = gz - (wx * gy - wy * gx)

    def _update_stillness(self, accel: tuple, gyro: tuple | None) -> None:
        pa, pg = self._prev_accel, self._prev_gyro
        calm = pa is not None and max(abs(accel[0] - pa[0]), abs(accel[1] - pa[1]), abs(accel[2] - pa[2])) < self.STILL_ACCEL_G
        if calm and gyro is not None and pg is not None:
            calm = max(abs(gyro[0] - pg[0]), abs(gyro[1] - pg[1]), abs(gyro[2] - pg[2])) < self.STILL_GYRO_DPS
            if calm and self.bias_known:
                # a steady turn is not stillness: with a known bias, the rate itself must be small
                calm = max(abs(gyro[0] - self.bias[0]), abs(gyro[1] - self.bias[1]), abs(gyro[2] - self.bias[2])) < 4.0
        self.still_frames = self.still_frames + 1 if calm else 0
        self._prev_accel, self._prev_gyro = accel, gyro

    def _learn_bias(self, gyro: tuple) -> None:
        if not self.bias_known:
            self.bias = list(gyro)
            self.bias_known = True
            return
        a = self._a_b
        b = self.bias
        b[0] += a * (gyro[0] - b[0])
        b[1] += a * (gyro[1] - b[1])
        b[2] += a * (gyro[2] - b[2])

    def _update_flip(self) -> None:
        ref, g = self.reference, self.gravity
        if ref is None or g is None:
            return
        dot = ref[0] * g[0] + ref[1] * g[1] + ref[2] * g[2]
        norm = math.sqrt((ref[0] ** 2 + ref[1] ** 2 + ref[2] ** 2) * (g[0] ** 2 + g[1] ** 2 + g[2] ** 2)) or 1.0
        angle = math.degrees(math.acos(max(-1.0, min(1.0, dot / norm))))
        if not self.flipped and angle > self.FLIP_ON_DEG:
            self.flipped = True
        elif self.flipped and angle < self.FLIP_OFF_DEG:
            self.flipped = False

    def rate(self, gyro: tuple) -> tuple[float, float, float]:
        """Angular rate with the learnt bias removed."""
        b = self.bias
        return (gyro[0] - b[0], gyro[1] - b[1], gyro[2] - b[2])

    def linear(self, accel: tuple) -> tuple[float, float, float]:
        """Acceleration with the gravity estimate removed (g)."""
        g = self.gravity
        return (accel[0] - g[0], accel[1] - g[1], accel[2] - g[2])
