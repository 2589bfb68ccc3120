"""The stroke axis: the main rotation, the tilt across it, and telling a twist from rolling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.axis import AxisCovariance, Coherence, HighPass, StrokeAxis
from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.strokes import G, StrokeCounter

RNG_SEED = 20261124


def random_frame(seed: int) -> np.ndarray:
    """A seeded rotation: the pod sits on the frame at any angle."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def alignment(e, w) -> float:
    return abs(float(np.dot(unit(e), unit(w))))


# --- the running covariance ---------------------------------------------------------

def test_power_steps_find_the_main_axis_and_the_one_across_it():
    rng = np.random.default_rng(RNG_SEED)
    rot = random_frame(1)
    cov = AxisCovariance()
    for _ in range(400):
        x = rot @ (rng.normal(size=3) * [10.0, 4.0, 0.5])
        cov.add(tuple(x), 0.05)
    main = cov.power_step([1.0, 0.0, 0.0], 50)
    across = cov.power_step([0.0, 1.0, 0.0], 50, without=main)
    assert alignment(main, rot[:, 0]) > 0.99
    assert alignment(across, rot[:, 1]) > 0.98
    assert abs(np.dot(main, across)) < 1e-9


def test_rms_is_right_from_the_first_samples():
    # a running mean starts from nothing: without its weight the rms would read low
    cov = AxisCovariance()
    for k in range(10):
        cov.add((3.0 * (-1) ** k, 0.0, 0.0), 0.005)
    assert cov.rms([1.0, 0.0, 0.0]) == pytest.approx(3.0, rel=1e-6)
    assert AxisCovariance().rms([1.0, 0.0, 0.0]) == 0.0


def test_high_pass_lets_changes_through_and_forgets_a_constant():
    hp = HighPass(1.5)
    hp.apply((0.0, 0.0, 0.0))
    step = hp.apply((1.0, -2.0, 0.0))
    assert step[0] == pytest.approx(math.exp(-FRAME_S / 1.5))
    for _ in range(200):
        out = hp.apply((1.0, -2.0, 0.0))
    assert max(abs(v) for v in out) < 1e-5


# --- coherence ----------------------------------------------------------------------

def coherence_of(a, b) -> float:
    c = Coherence()
    for x, y in zip(a, b):
        c.update(float(x), float(y))
    return c.share


def test_one_rhythm_in_any_phase_is_coherent():
    t = np.arange(0.0, 60.0, FRAME_S)
    tilt = np.sin(2 * np.pi * t / 3.0)
    for phase in (0.0, 0.5, 1.2, 2.0):
        assert coherence_of(2.0 * np.sin(2 * np.pi * t / 3.0 + phase), tilt) > 0.7


def test_a_rhythm_of_its_own_is_not_coherent():
    t = np.arange(0.0, 60.0, FRAME_S)
    tilt = np.sin(2 * np.pi * t / 3.0)
    own = np.sin(2 * np.pi * t / 1.3)
    assert coherence_of(own, tilt) < 0.2


# --- rolling and twisting -------------------------------------------------------------

ARM_M = 0.09  # the pod on the handle, out from the thigh's axis
CURVE_RAD_PER_M = 1.0  # the thigh's curve along its length


def roll(seconds: float, stroke_s: float, length_m: float, twist_deg: float, twist_s: float | None,
         seed: int, curve_rad_per_m: float = CURVE_RAD_PER_M):
    """Frames of rolling: (rate deg/s, linear g, stroke ends) in a pod sitting at a seeded angle.

    The frame tilts about the axle as it rides the thigh's curve and travels along
    the thigh; a twist turns it about the thigh and swings the pod on its arm.
    ``twist_s`` None twists in step with the strokes, once each way a stroke.
    """
    rot = random_frame(seed)
    axle, thigh = rot[:, 1], rot[:, 0]
    t = np.arange(0.0, seconds, FRAME_S)
    phase = 2 * np.pi * t / stroke_s
    speed = length_m / 2 * np.sin(phase) * 2 * np.pi / stroke_s  # along the thigh
    tilt_rate = curve_rad_per_m * speed
    twist_period = stroke_s if twist_s is None else twist_s
    twist_rate = np.radians(twist_deg) * np.cos(2 * np.pi * t / twist_period) * 2 * np.pi / twist_period
    rate = np.degrees(np.outer(tilt_rate, axle) + np.outer(twist_rate, thigh))
    velocity = np.outer(speed, thigh) + np.outer(ARM_M * twist_rate, axle)
    linear = np.gradient(velocity, FRAME_S, axis=0) / G
    ends = t[1:][np.diff(np.floor(t / stroke_s)) > 0]
    return t, rate, linear, ends, axle


def follow(t, rate, linear) -> tuple[StrokeCounter, list[float]]:
    counter, strokes = StrokeCounter(), []
    for k in range(len(t)):
        event = counter.update(float(t[k]), tuple(rate[k]), tuple(linear[k]), 60.0)
        if event is not None:
            strokes.append(event.t)
    return counter, strokes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_strokes_are_counted_through_a_twist_of_its_own_rhythm(seed):
    # the twist turns the pod three times as fast as the tilt, at another rhythm:
    # counted on the main axis, every twist would be a stroke
    t, rate, linear, ends, axle = roll(60.0, stroke_s=4.0, length_m=0.25, twist_deg=20.0, twist_s=1.3, seed=seed)
    counter, strokes = follow(t, rate, linear)
    assert counter.axes.twisting
    assert alignment(counter.axes.axis, axle) > 0.95
    late = [s for s in strokes if s > 20.0]  # once the axes have settled
    assert abs(len(late) - np.sum(ends > 20.0)) <= 1


@pytest.mark.parametrize("twist_deg", [1.0, 2.3, 5.0, 20.0])
def test_the_reaching_axis_is_the_axle_whatever_share_of_the_rate_the_twist_has(twist_deg):
    # a twist from under half the tilt's rate to over eight times it: the rotation
    # that moves the pod furthest per radian is the tilt, on the thigh's metre-long
    # curve, not the twist on the handle's 9 cm
    t, rate, linear, _, axle = roll(40.0, stroke_s=4.0, length_m=0.25, twist_deg=twist_deg, twist_s=1.3, seed=6)
    counter, _ = follow(t, rate, linear)
    axes = counter.axes
    assert alignment(axes.reach, axle) > 0.99
    assert axes.radius_m(axes.reach) == pytest.approx(1.0 / CURVE_RAD_PER_M, rel=0.15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_blend_of_twist_and_tilt_is_counted_on_the_tilt_without_switching_back_and_forth(seed):
    # twist and tilt turn the pod equally fast: the main axis settles only slowly,
    # sitting for a minute as a blend of the two whose radius is near the threshold;
    # counted on, the blend adds the twists, and switching at every wobble of the
    # ratio would drop or add half-strokes
    t, rate, linear, ends, axle = roll(90.0, stroke_s=4.0, length_m=0.25, twist_deg=2.31, twist_s=1.3, seed=seed)
    counter, strokes, changes = StrokeCounter(), [], []
    for k in range(len(t)):
        event = counter.update(float(t[k]), tuple(rate[k]), tuple(linear[k]), 60.0)
        changes += [t[k]] if counter.axes.changed else []
        strokes += [event.t] if event is not None else []
    assert len(changes) <= 2  # on to the tilt, and back once the main axis has come round to it
    assert abs(len([s for s in strokes if s > 20.0]) - np.sum(ends > 20.0)) <= 1


def test_twisting_in_step_with_the_strokes_keeps_the_main_axis():
    # twisting once each way a stroke counts the strokes as well: no reason to change
    t, rate, linear, ends, _ = roll(60.0, stroke_s=2.5, length_m=0.25, twist_deg=20.0, twist_s=None, seed=4)
    counter, strokes = follow(t, rate, linear)
    assert not counter.axes.twisting
    assert abs(len([s for s in strokes if s > 10.0]) - np.sum(ends > 10.0)) <= 1


def test_plain_rolling_is_counted_on_the_axle():
    t, rate, linear, ends, axle = roll(40.0, stroke_s=2.0, length_m=0.25, twist_deg=2.0, twist_s=1.7, seed=5)
    counter, strokes = follow(t, rate, linear)
    assert not counter.axes.twisting
    assert alignment(counter.axes.axis, axle) > 0.99
    assert alignment(counter.axes.reach, axle) > 0.99  # the rotation that moves the pod furthest
    assert abs(len(strokes) - len(ends)) <= 1


def test_rolling_a_straight_thigh_is_counted_though_it_barely_tilts_the_roller():
    # 20 cm strokes on a thigh curving 0.1 rad/m tilt the frame at 1.8 deg/s at most
    t, rate, linear, ends, _ = roll(40.0, stroke_s=2.0, length_m=0.2, twist_deg=0.0, twist_s=1.7, seed=7,
                                    curve_rad_per_m=0.1)
    assert np.max(np.abs(rate)) < 2.0
    _, strokes = follow(t, rate, linear)
    assert abs(len(strokes) - len(ends)) <= 1


def test_without_a_gyro_there_is_no_twist_to_tell():
    axes = StrokeAxis()
    for k in range(300):
        axes.update((10.0 * math.sin(k / 5.0), 0.0, 0.0))
    assert not axes.twisting
    assert alignment(axes.axis, [1.0, 0.0, 0.0]) > 0.99
