"""Strokes: out-and-back cycles of the roller along the leg, told from the tilt or the squeeze."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.strokes import (REACH_M, STROKE_SPACING_S, TRAVEL_MEMORY_S, G, HalfStroke, StrokeCounter,
                                              noise_reach, reach)

PERIOD_S = 2.0
LENGTH_M = 0.15
TAPER_RAD_PER_M = 0.4


def cycle_at(s: float, periods: list[float], sizes: list[float]) -> tuple[float, float, float]:
    """Position, speed and acceleration s seconds into strokes of the given periods and sizes."""
    for period, size in zip(periods, sizes):
        if s < period:
            omega = 2 * math.pi / period
            half = LENGTH_M * size / 2
            return half * (1 - math.cos(omega * s)), half * omega * math.sin(omega * s), half * omega**2 * math.cos(omega * s)
        s -= period
    return 0.0, 0.0, 0.0


def rolling(strokes: int, *, squeeze_n: float = 80.0, travel: bool = True, twist_deg: float = 0.0,
            twist_period_s: float = 1.1, force: bool = True, mount=np.eye(3), periods: list[float] | None = None,
            sizes: list[float] | None = None, taper: float = TAPER_RAD_PER_M, girth: float = 0.8):
    """Frames of rest, then ``strokes`` strokes (of ``periods``, PERIOD_S each by default; ``sizes``
    a share of LENGTH_M each) on a thigh that tilts the frame ``taper`` rad per metre and
    whose girth swings the squeeze by ``girth`` of itself a metre, then rest: (t, tilt,
    accel g, rate deg/s, force N)."""
    frames = []
    periods = periods or [PERIOD_S] * strokes
    sizes = sizes or [1.0] * len(periods)
    rolling_s = sum(periods)
    for k in range(int((rolling_s + 6.0) / FRAME_S)):
        t = k * FRAME_S
        s = min(max(t - 2.0, 0.0), rolling_s)
        on = 2.0 <= t < 2.0 + rolling_s
        x, v, a = cycle_at(s, periods, sizes)
        a = a if on and travel else 0.0
        pitch, pitch_rate = taper * x, taper * v
        wt = 2 * math.pi / twist_period_s
        roll = math.radians(twist_deg) * math.sin(wt * t) if on else 0.0
        roll_rate = math.radians(twist_deg) * wt * math.cos(wt * t) if on else 0.0
        # the frame pitches about the handles (y) with the thigh's taper and twists about the
        # thigh (x); body to world: R = Ry(pitch) Rx(roll)
        rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
        ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
        body = ry @ rx
        down = body.T @ np.array([0.0, 0.0, 1.0])  # what the accelerometer reads of gravity
        accel = down + body.T @ np.array([a / G, 0.0, 0.0])
        rate = np.degrees(rx.T @ np.array([0.0, pitch_rate, 0.0]) + np.array([roll_rate, 0.0, 0.0]))
        squeeze = (squeeze_n * (1 + girth * x) if (2.0 <= t < 2.0 + rolling_s + 0.3) else 1.0) if force else math.nan
        tilt = mount @ down
        frames.append((t, tuple(tilt / np.linalg.norm(tilt)), tuple(mount @ accel), tuple(mount @ rate), squeeze))
    return frames


def count(frames) -> tuple[StrokeCounter, list[float]]:
    counter, told = StrokeCounter(), []
    for t, tilt, accel, rate, force in frames:
        event = counter.update(t, tilt, accel, rate, force)
        if event is not None:
            told.append(event.t)
    return counter, told


def test_each_stroke_is_told_once_at_its_end():
    _, told = count(rolling(10))
    assert len(told) == 10
    ends = [2.0 + PERIOD_S * (i + 1) for i in range(10)]
    assert all(0.0 <= t - end <= 0.9 for t, end in zip(told, ends))


def test_the_count_does_not_depend_on_how_the_pod_is_mounted():
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert len(count(rolling(8, mount=q))[1]) == 8


def test_a_roller_moved_without_squeezing_it_is_not_rolling():
    assert count(rolling(6, squeeze_n=2.0))[1] == []


def test_tilting_out_and_back_without_travelling_is_not_rolling():
    # the thigh lifting and tilting the frame with each rep: the same tilt, no travel along the leg
    assert count(rolling(6, travel=False))[1] == []


def test_without_a_force_sensor_the_tilt_alone_counts():
    assert len(count(rolling(8, force=False))[1]) == 8


@pytest.mark.parametrize("twist_period_s", [1.1, 3.7])
def test_a_twist_at_its_own_rhythm_moves_the_count_to_the_squeeze(twist_period_s):
    counter, told = count(rolling(16, twist_deg=20.0, twist_period_s=twist_period_s))
    assert counter.counting_on == "squeeze"
    # once the rhythms have been compared (12 s), every stroke is told once, at its end
    ends = [2.0 + PERIOD_S * (i + 1) for i in range(16) if 2.0 + PERIOD_S * (i + 1) >= 14.0]
    assert [sum(0.0 <= t - end <= 0.9 for t in told) for end in ends] == [1] * len(ends)
    assert all(any(0.0 <= t - end <= 0.9 for end in ends) for t in told if t >= 14.0)


@pytest.mark.parametrize("periods", [[2.0, 2.8, 1.6], [3.0, 4.5, 3.2, 5.0]])
def test_a_twist_moves_the_count_to_the_squeeze_before_any_rhythm_shows(periods):
    # a few strokes at an uneven pace: too few, and too uneven, for the rhythms to be
    # compared; but the frame turned far more than rolling turns it for how far the pod went
    counter, told = count(rolling(0, periods=periods, twist_deg=20.0, twist_period_s=1.1))
    assert counter.counting_on == "squeeze" and len(told) == len(periods)


def test_on_a_thigh_of_even_girth_a_twist_stays_on_the_tilt():
    # the squeeze does not follow the roller here: moving the count to it would lose every
    # stroke; the tilt's count, twist and all, is the better one (a known limit)
    counter, told = count(rolling(8, twist_deg=20.0, twist_period_s=1.1, girth=0.0))
    assert counter.counting_on == "tilt" and len(told) >= 8


def test_slow_strokes_on_a_strongly_curved_thigh_are_rolling_not_twisting():
    # slow rolling (12 a minute) on the most curved thigh modelled: the frame turns 1.6 rad
    # per metre travelled, and the reach reads slow strokes short
    counter, told = count(rolling(4, periods=[5.0] * 4, taper=1.6))
    assert len(told) == 4 and counter.counting_on == "tilt"


@pytest.mark.parametrize("taper", [0.4, 1.6])
def test_the_slowest_rolling_is_measured_from_where_each_way_left_rest(taper):
    # 10 strokes a minute: each way sits near its turning point for most of a second before
    # the tilt passes half the hysteresis, and the pod is moving by then; measured only from
    # there, its reach fell short of a stroke's and every other stroke was lost
    counter, told = count(rolling(4, periods=[6.0] * 4, taper=taper))
    assert len(told) == 4 and counter.counting_on == "tilt"


def test_a_quick_wobble_within_a_steady_rhythm_is_not_a_stroke():
    # out and back in 0.9 s, half as far, between strokes of 2 s: an arm bouncing at the
    # bottom of a squat, a hand adjusting its grip
    periods = [2.0] * 5 + [0.9] + [2.0] * 3
    sizes = [1.0] * 5 + [0.5] + [1.0] * 3
    _, told = count(rolling(0, periods=periods, sizes=sizes))
    assert len(told) == 8


def test_a_cadence_that_really_doubles_is_followed_after_a_few_of_its_strokes():
    periods = [2.4] * 5 + [1.0] * 8
    _, told = count(rolling(0, periods=periods))
    assert 13 - 3 <= len(told) <= 13


@pytest.mark.parametrize("twist_period_s", [1.1, 3.7])
def test_a_twisted_bout_is_counted_as_the_squeeze_saw_it_from_its_start(twist_period_s):
    # the strokes the tilt got wrong before the rhythms could be compared are put right when
    # the count moves: told late if it missed them, not told twice if it told too many
    _, told = count(rolling(16, twist_deg=20.0, twist_period_s=twist_period_s))
    assert len(told) == 16


def test_the_strokes_told_late_are_each_their_own():
    # a slow twist hides strokes from the tilt; when the count moves to the squeeze, the ones
    # it saw are told one after the other, each with its own length of time
    periods = [2.0 + 0.3 * k for k in range(12)]
    counter, events = StrokeCounter(), []
    for t, tilt, accel, rate, force in rolling(0, periods=periods, twist_deg=20.0, twist_period_s=5.0):
        event = counter.update(t, tilt, accel, rate, force)
        if event is not None:
            events.append(event)
    # (told closer together than any two strokes can end)
    late = [b for a, b in zip(events, events[1:]) if b.t - a.t < STROKE_SPACING_S]
    assert late, "the count moved without telling the strokes it had missed"
    burst = [a for a, b in zip(events, events[1:]) if b.t - a.t < STROKE_SPACING_S] + late
    assert len({round(e.duration, 2) for e in burst}) == len({id(e) for e in burst})


def test_when_the_force_goes_quiet_the_tilt_carries_the_count_on():
    frames = rolling(20, twist_deg=20.0, twist_period_s=3.7)
    quiet = [(t, tilt, accel, rate, math.nan if 22.0 <= t < 32.0 else force) for t, tilt, accel, rate, force in frames]
    counter, told = count(quiet)
    # five strokes of 2 s while the force is quiet: after a pause at the far end's length
    # (4 s) the tilt carries the count on (counting the twist too, meanwhile)
    assert len([t for t in told if 26.0 <= t < 32.0]) >= 2
    # and once the force is back, its count starts afresh there: the strokes are told again
    assert len([t for t in told if t >= 34.0]) >= 4


def test_a_rep_ends_the_bout_of_rolling():
    counter = StrokeCounter()
    frames = rolling(16, twist_deg=20.0, twist_period_s=1.1)
    for t, tilt, accel, rate, force in frames:
        counter.update(t, tilt, accel, rate, force)
    assert counter.counting_on == "squeeze"
    t = frames[-1][0] + FRAME_S
    counter.update(t, frames[-1][1], frames[-1][2], frames[-1][3], 80.0, last_rep_t=t - 0.3)
    assert counter.counting_on == "tilt" and counter.told == 0


def taking_hold() -> list:
    """Frames of a roller put on the leg: it travels 6 cm in a second as the squeeze rises from
    1 to 80 N; a second later the pads settle 3 cm back over 3 s, and it is held there."""

    def ease(s: float, duration: float) -> tuple[float, float, float]:
        # from 0 to 1 over the duration, at rest at both ends: position, speed, acceleration
        u = min(max(s / duration, 0.0), 1.0)
        w = 2 * math.pi * u
        inside = 0.0 < s < duration
        return u - math.sin(w) / (2 * math.pi), (1 - math.cos(w)) / duration, 2 * math.pi * math.sin(w) / duration**2 * inside

    frames = []
    for k in range(int(14.0 / FRAME_S)):
        t = k * FRAME_S
        on, back = ease(t - 2.0, 1.0), ease(t - 4.0, 3.0)
        x, v, a = (0.06 * p - 0.03 * q for p, q in zip(on, back))
        pitch = 4 * TAPER_RAD_PER_M * x
        down = (-math.sin(pitch), 0.0, math.cos(pitch))
        accel = (down[0] + math.cos(pitch) * a / G, 0.0, down[2] + math.sin(pitch) * a / G)
        rate = (0.0, math.degrees(4 * TAPER_RAD_PER_M * v), 0.0)
        force = 1.0 if t < 2.0 else min(80.0, 1.0 + 79.0 * (t - 2.0) / 0.8)
        frames.append((t, down, accel, rate, force))
    return frames


def brought_to_the_leg(strokes: int, carry_s: float = 5.5, tilt_deg: float = 20.0) -> list:
    """Frames of a roller without a force sensor, lying tilted 20 degrees, brought to the leg
    over 5.5 s (turning steadily back to level), then rolled at once: ``strokes`` strokes."""
    rolled = rolling(strokes, force=False)
    frames = []
    for k in range(int(round((1.0 + carry_s) / FRAME_S))):
        t = k * FRAME_S
        pitch = math.radians(tilt_deg) * (1.0 - max(t - 1.0, 0.0) / carry_s)
        down = (-math.sin(pitch), 0.0, math.cos(pitch))
        rate = (0.0, -tilt_deg / carry_s if t >= 1.0 else 0.0, 0.0)
        frames.append((t, down, down, rate, math.nan))
    start = frames[-1][0] + FRAME_S
    return frames + [(start + t - 2.0, tilt, accel, rate, force) for t, tilt, accel, rate, force in rolled if t >= 2.0]


@pytest.mark.parametrize("strokes", [6, 7, 8])
def test_a_first_way_that_went_a_strokes_length_is_no_jolt_however_short_it_seemed(strokes):
    # the carry's wide turn widens the tilt's hysteresis for a few strokes: the first stroke
    # ends in a pause (a stall) and the next way out is seen to leave it only near its far
    # end, so it seems to take a tenth of a second. It went 13 cm: a way, not a jolt
    assert len(count(brought_to_the_leg(strokes))[1]) == strokes


def test_taking_hold_and_settling_is_not_a_stroke():
    # the pod travels as the hands put the roller on the leg; the pads settle back slowly,
    # without travelling: that is a grip taken (for a rep), not a stroke
    assert count(taking_hold())[1] == []


def test_a_squeeze_that_misses_every_other_turn_does_not_take_the_count():
    # the squeeze rises for 1.2 s and falls for 2.8 s, a bump in the fall too small to be
    # seen, every two strokes of the tilt: the same total rhythm, but one way taking more than
    # twice as long as the other is turns missed, not a stroke of its own
    frames = rolling(16)

    def squeeze(t: float) -> float:
        phase = (t - 2.0 + 0.2) % 4.0
        if phase < 1.2:
            return 80.0 + 10.0 * phase / 1.2
        fall = (phase - 1.2) / 2.8
        return 90.0 - 10.0 * fall + 1.0 * math.sin(math.pi * fall) ** 8

    lumpy = [(t, tilt, accel, rate, squeeze(t) if 2.0 <= t < 34.0 else force)
             for t, tilt, accel, rate, force in frames]
    counter, told = count(lumpy)
    assert counter.counting_on == "tilt" and len(told) == 16


@pytest.mark.parametrize("twist_period_s", [1.1, 3.7])
def test_taking_hold_before_rolling_off_is_not_a_way_out_of_the_squeeze(twist_period_s):
    # the hands take hold (in half a second) 0.8 s before the roller starts along the leg,
    # where the thigh is thickest, and let go (in half a second) after the last stroke: the
    # squeeze's rise to the grip is not a movement of the roller, or every stroke after it is
    # paired out of step and the fall as the hands let go makes one stroke too many
    frames = rolling(16, twist_deg=20.0, twist_period_s=twist_period_s)
    end = 2.0 + 16 * PERIOD_S

    def squeeze(t: float, force: float) -> float:
        if t < 2.0:
            return 1.0 + 89.0 * min(max(t - 1.2, 0.0) / 0.5, 1.0)
        if t < end:
            return 170.0 - force  # thickest where the strokes start
        return 90.0 - 89.0 * min(max(t - end - 0.3, 0.0) / 0.5, 1.0)

    counter, told = count([(t, tilt, accel, rate, squeeze(t, force)) for t, tilt, accel, rate, force in frames])
    assert counter.counting_on == "squeeze" and len(told) == 16


def test_when_the_tilt_misses_turns_for_a_while_the_squeeze_takes_the_count():
    # the frame hardly tilts for 5 s (a straight stretch of the thigh): the tilt sees one long
    # way where the squeeze saw five, so its rhythm is lost while the squeeze keeps its own
    frames = rolling(16)
    still = frames[int(12.0 / FRAME_S)][1]
    flat = [(t, still if 12.0 <= t < 17.0 else tilt, accel, rate, force) for t, tilt, accel, rate, force in frames]
    counter, told = count(flat)
    assert counter.counting_on == "squeeze" and len(told) == 16


def test_reach_is_how_far_the_pod_moved_from_rest_to_rest():
    # 10 cm out and back again in 2 s, at rest at both ends, sampled on the frames: it got
    # 10 cm away; a steady error of the acceleration (a tilt misjudged by a degree:
    # 0.17 m/s^2) does not change that
    omega = 2 * math.pi / 2.0
    accelerations = [0.05 * omega**2 * math.cos(omega * (k + 0.5) * FRAME_S) for k in range(20)]
    assert reach([(a, 0.0, 0.0) for a in accelerations]) == pytest.approx(0.10, rel=0.05)
    assert reach([(a + 0.17, 0.0, 0.0) for a in accelerations]) == pytest.approx(0.10, rel=0.05)
    assert reach([(0.0, 0.0, 0.0)] * 20) == 0.0


def test_slow_strokes_that_hardly_accelerate_the_pod_are_counted_by_how_far_it_went():
    # 10 cm at 12 a minute: 0.06 m/s^2 RMS, a rep lift's acceleration, but 10 cm of travel
    periods, sizes = [5.0] * 6, [0.1 / LENGTH_M] * 6
    counter, told = count(rolling(0, periods=periods, sizes=sizes))
    assert len(told) == 6


def test_a_way_travelled_if_the_pod_went_a_strokes_length_or_accelerated_and_went_half_of_it():
    def way(travel: float, reach_m: float) -> HalfStroke:
        return HalfStroke(start_t=0.0, end_t=1.5, direction=1, travel=travel, force_mean=80.0, reach=reach_m)

    assert way(travel=0.03, reach_m=0.035).travelled  # slow: hardly accelerates, but goes its length
    assert way(travel=0.3, reach_m=0.02).travelled  # quick, its reach read short
    # the acceleration lingering after the grip while the pod stays put: not a way along the leg
    assert not way(travel=0.11, reach_m=0.004).travelled


def test_the_reach_noise_alone_reads_is_what_noise_through_the_counter_reads():
    # white noise in the frames' mean accelerations (0.012 m/s^2: an MPU-6050 at 100 Hz), its
    # changes summed with the 1 s memory as StrokeCounter.moving is, then reach(): the noise
    # reach is over all but about one way in a thousand, and not far over most
    noise = 0.004 * G / math.sqrt(10)
    rng = np.random.default_rng(11)
    keep = math.exp(-FRAME_S / TRAVEL_MEMORY_S)
    for frames in (10, 30, 60):
        reaches = []
        for _ in range(400):
            accel = rng.normal(0.0, noise, (frames + 51, 3))
            moving, way = np.zeros(3), []
            for now, before in zip(accel[1:], accel[:-1]):
                moving = keep * moving + now - before
                way.append(tuple(moving))
            reaches.append(reach(way[-frames:]))
        beyond = noise_reach(frames, noise)
        assert np.mean(np.array(reaches) > beyond) <= 0.005 and beyond < 5 * np.median(reaches)
    # millimetres over 1 s, centimetres over 6 s
    assert noise_reach(10, noise) < 0.005 < REACH_M < noise_reach(60, noise) < 0.06
    assert noise_reach(30, 0.0) == 0.0  # no noise known: none assumed
    # a way longer than any rolling (an hour of drift) is worked out no further than the longest
    assert noise_reach(36000, noise) == noise_reach(70, noise)


def test_a_way_is_not_travel_if_the_sensors_noise_alone_reads_as_far():
    def way(reach_m: float, noise: float) -> HalfStroke:
        return HalfStroke(start_t=0.0, end_t=4.0, direction=1, travel=0.03, force_mean=80.0, reach=reach_m,
                          frames=40, noise=noise)

    assert way(0.035, 0.004 * G / math.sqrt(10)).travelled  # an MPU-6050 at 100 Hz: 2.9 cm of noise
    assert not way(0.035, 0.008 * G / math.sqrt(5)).travelled  # a noisier pod at 50 Hz: 8 cm


def test_a_long_rest_keeps_memory_bounded():
    # an hour on the table: what the counter keeps of the frames since the last turn must not grow
    counter = StrokeCounter()
    for k in range(round(3600 / FRAME_S)):
        counter.update(k * FRAME_S, (0.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0), 1.0)
    longest_kept_s = 2 * 6.0  # (trimmed now and then to the longest way that is still rolling)
    assert all(len(track.since.frames) <= longest_kept_s / FRAME_S + 1 for track in (counter._tilt, counter._squeeze))
