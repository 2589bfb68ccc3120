"""Reps: a rise of the held squeeze and its fall, with the roller staying where it is."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kneeroll_device.pipeline.framing import FRAME_S
from kneeroll_device.pipeline.reps import RepCounter


def squeeze(reps: int, *, hold_n: float = 80.0, rise: float = 0.3, rep_s: float = 2.0, gap_s: float = 1.0,
            settle_s: float = 1.0, drift_n_per_s: float = 0.0) -> list[tuple[float, float]]:
    """(t, force) frames: taking hold, a steady squeeze, ``reps`` raised-cosine rises, letting go."""
    frames, t = [], 0.0
    peaks = []

    def add(seconds, level):
        nonlocal t
        for _ in range(int(round(seconds / FRAME_S))):
            frames.append((t, level(t) + drift_n_per_s * t))
            t += FRAME_S

    add(1.0, lambda _: 1.0)
    start = t
    add(0.5, lambda now: 1.0 + (hold_n - 1.0) * (now - start) / 0.5)
    add(settle_s, lambda _: hold_n)
    for _ in range(reps):
        begin = t
        peaks.append(begin + rep_s / 2)
        add(rep_s, lambda now, b=begin: hold_n * (1 + rise * (1 - math.cos(2 * math.pi * (now - b) / rep_s)) / 2))
        add(gap_s, lambda _: hold_n)
    add(2.0, lambda _: 1.0)
    return frames, peaks


def count(frames, travel: float = 0.02, strokes_at: tuple[float, ...] = (), moving=lambda t: (0.0, 0.0, 0.0)) -> list:
    counter, reps = RepCounter(), []
    for t, force in frames:
        ended = max((s for s in strokes_at if s <= t), default=-math.inf)
        rep = counter.update(t, force, travel, ended, moving(t))
        if rep is not None:
            reps.append(rep)
    return reps


@pytest.mark.parametrize("hold_n, rise", [(25.0, 0.5), (80.0, 0.3), (190.0, 0.15)])
def test_each_rep_is_told_once_soon_after_its_peak(hold_n, rise):
    frames, peaks = squeeze(8, hold_n=hold_n, rise=rise)
    reps = count(frames)
    assert len(reps) == 8
    assert all(0.0 <= r.reported_t - p <= 0.7 for r, p in zip(reps, peaks))
    assert all(r.rise_n == pytest.approx(hold_n * rise, rel=0.15) for r in reps)


def test_the_first_rep_right_after_taking_hold_counts():
    frames, _ = squeeze(5, settle_s=0.4)  # a short pause between taking hold and the first rise
    assert len(count(frames)) == 5


def test_quick_reps_that_start_before_the_squeeze_settles_count():
    frames, _ = squeeze(6, rep_s=1.2, gap_s=0.0)
    assert len(count(frames)) == 6


def test_a_drifting_holding_level_does_not_matter():
    frames, _ = squeeze(6, drift_n_per_s=-0.8)
    assert len(count(frames)) == 6


def test_a_twitch_or_the_hand_wavering_is_not_a_rep():
    frames, _ = squeeze(6, hold_n=80.0, rise=0.04)  # 3 N: less than a contraction presses
    assert count(frames) == []


def test_taking_hold_and_letting_go_alone_is_not_a_rep():
    frames, _ = squeeze(0)
    assert count(frames) == []


def test_rises_while_the_roller_travels_are_rolling_not_reps():
    frames, peaks = squeeze(6)
    assert count(frames, travel=0.5) == []
    stroke_ends = tuple(p + 0.3 for p in peaks[:3])
    assert len(count(frames, strokes_at=stroke_ends)) == 3


def test_a_one_frame_spike_is_not_a_rep():
    frames, _ = squeeze(0, settle_s=10.0)
    spiked = [(t, f + (60.0 if k == 30 else 0.0)) for k, (t, f) in enumerate(frames)]
    assert count(spiked) == []


def test_a_rise_while_the_pod_moves_a_strokes_length_is_rolling_not_a_rep():
    # slow rolling (12 a minute): the squeeze follows the girth up and back like a rep, and
    # the pod's acceleration stays at a rep's level (0.05 m/s^2), but it moves 10 cm each way
    frames, _ = squeeze(6, rep_s=5.0, gap_s=0.0)
    omega = 2 * math.pi / 5.0

    def to_and_fro(t: float) -> tuple[float, float, float]:
        return (0.05 * omega**2 * math.cos(omega * (t - 2.5)), 0.0, 0.0)  # 10 cm peak to peak

    assert count(frames, moving=to_and_fro) == []
    assert len(count(frames)) == 6


def test_a_rise_while_the_pod_glides_a_short_stroke_at_an_even_speed_is_rolling_not_a_rep():
    # rolling 6 cm at 19 a minute, at an even speed from one end to the other: the pod only
    # accelerates at the turns, and the squeeze rises on every way out. The way measured from
    # when the trough before it was confirmed (half a second in) reads under 3 cm; from the
    # trough itself, where the roller turned and rested, it reads the stroke
    frames, gliding = gliding_frames()
    assert count(frames, travel=0.05, moving=gliding) == []
    assert len(count(frames, travel=0.05)) > 5  # the same squeeze, the pod put: rep after rep


def gliding_frames(flat_s: float = 0.0):
    """Slow, short rolling at an even speed (6 cm a way, 1.6 s), the squeeze following the
    girth, and each way's squeeze flattening for ``flat_s`` halfway up, as a hand's does:
    (frames of (t, force), the pod's acceleration at t)."""
    fine_s, way_s, length_m = 0.01, 1.6, 0.06
    t_fine = np.arange(0.0, 30.0, fine_s)
    phase = np.clip(t_fine - 3.0, 0.0, None) % (2 * way_s) / way_s
    position = length_m * np.where(phase < 1.0, phase, 2.0 - phase) * (t_fine >= 3.0) * (t_fine < 27.0)
    box = round(0.25 / fine_s)  # a hand turns the roller over a quarter of a second
    smooth = np.convolve(position, np.ones(box) / box, mode="same")
    accel = np.gradient(np.gradient(smooth, fine_s), fine_s)
    per_frame = round(FRAME_S / fine_s)
    frame_accel = accel[: len(accel) // per_frame * per_frame].reshape(-1, per_frame).mean(axis=1)
    squeeze = 80.0 * (1.0 + 0.15 * (2.0 * smooth / length_m - 1.0))
    if flat_s:
        rising = (phase < 1.0) & (phase * way_s > way_s / 2) & (phase * way_s < way_s / 2 + flat_s)
        halfway = 80.0 * (1.0 + 0.15 * (2.0 * 0.5 - 1.0))
        squeeze = np.where(rising & (t_fine > 3.5) & (t_fine < 27.0), halfway, squeeze)
    frames = [(k * FRAME_S, float(squeeze[k * per_frame])) for k in range(len(frame_accel))]

    def gliding(t: float) -> tuple[float, float, float]:
        return (float(frame_accel[min(round(t / FRAME_S), len(frame_accel) - 1)]), 0.0, 0.0)

    return frames, gliding


def test_a_slow_rise_that_flattens_for_a_moment_is_rolling_measured_from_its_trough():
    # the moment the squeeze is flat halfway up looks like a squeeze held; from there the
    # pod goes 3 cm, from the trough the whole 6 cm way
    frames, gliding = gliding_frames(flat_s=0.3)
    assert count(frames, travel=0.05, moving=gliding) == []
    assert len(count(frames, travel=0.05)) > 5  # the same squeeze, the pod put: rep after rep


def test_a_rep_after_easing_off_and_taking_hold_again_counts():
    # the hand eases to 28 N and takes hold again (the pads pressed on move the pod 4 cm),
    # holds 95 N for a second, then a rep: the rep rose from the held squeeze, not from 28 N.
    # (The squeeze creeps up while held, so taking hold and the rep are one rise of it.)
    frames, t = [], 0.0

    def add(seconds, level):
        nonlocal t
        for _ in range(int(round(seconds / FRAME_S))):
            frames.append((t, level(t)))
            t += FRAME_S

    add(2.0, lambda _: 95.0)
    add(1.0, lambda now: 95.0 - 67.0 * (now - 2.0))  # easing off
    add(1.0, lambda now: 28.0 + 67.0 * (now - 3.0))  # taking hold again
    add(1.0, lambda now: 95.0 + 0.8 * (now - 4.0))  # held, creeping up as a hand does
    add(2.0, lambda now: 95.8 + 55.0 * (1 - math.cos(math.pi * (now - 5.0))) / 2)  # the rep
    add(3.0, lambda _: 95.8)
    omega = 2 * math.pi / 2.0

    def pressed_on(now: float) -> tuple[float, float, float]:
        # 4 cm out and back while taking hold again, still otherwise
        a = 0.02 * omega**2 * math.cos(omega * (now - 2.0)) if 2.0 <= now < 4.0 else 0.0
        return (a, 0.0, 0.0)

    (rep,) = count(frames, moving=pressed_on)
    assert rep.t == pytest.approx(6.0, abs=0.2)


def test_a_first_rep_long_after_taking_hold_counts_by_its_own_rise():
    # taking hold, then 4 s of a squeeze creeping up as a hand's does, then a rep: one rise of
    # the force from nothing, 5.5 s long, but the rep's own rise, from the held squeeze, is 1 s
    frames, peaks = squeeze(1, settle_s=4.0, drift_n_per_s=0.8)
    (rep,) = count(frames)
    assert rep.t == pytest.approx(peaks[0], abs=0.2) and rep.duration < 2.5


def frames_of(*pieces: tuple[float, object]) -> list[tuple[float, float]]:
    """(t, force) frames of consecutive pieces, each (seconds, level of the time in the piece)."""
    frames, t = [], 0.0
    for seconds, level in pieces:
        start = t
        for _ in range(int(round(seconds / FRAME_S))):
            frames.append((t, level(t - start)))
            t += FRAME_S
    return frames


def test_pressing_on_to_a_new_holding_level_is_not_a_rep():
    # held at 75 N, eased to 22 N (slid to the next spot, the pod still again), pressed back on
    # to 75 N and held there for 0.8 s, then a rep: the squeeze rose and stayed, so the
    # pressing on is a new holding level, and only the rep that rose from it counts
    frames = frames_of((2.0, lambda _: 75.0), (0.5, lambda s: 75.0 - 106.0 * s), (1.5, lambda _: 22.0),
                       (0.5, lambda s: 22.0 + 106.0 * s), (0.8, lambda _: 75.0),
                       (2.0, lambda s: 75.0 + 20.0 * (1 - math.cos(math.pi * s))), (2.0, lambda _: 75.0))
    (rep,) = count(frames)
    assert rep.t == pytest.approx(2.0 + 0.5 + 1.5 + 0.5 + 0.8 + 1.0, abs=0.2)


def test_a_rep_held_at_its_top_counts_once_the_leg_relaxes():
    # a rep whose squeeze stays at its top for 1.5 s: told once it eases off, not before
    top_s = 1.0 + 1.5 + 1.0 + 1.5
    frames = frames_of((1.0, lambda s: 60.0 * s), (1.5, lambda _: 60.0), (1.0, lambda s: 60.0 + 30.0 * s),
                       (1.5, lambda _: 90.0), (1.0, lambda s: 90.0 - 30.0 * s), (2.0, lambda _: 60.0))
    (rep,) = count(frames)
    assert rep.peak_force_n == pytest.approx(90.0) and top_s < rep.reported_t < top_s + 0.5


def test_a_rep_counts_when_the_pods_reach_over_it_is_no_more_than_the_sensors_noise_reads():
    # a slow rep (2.4 s up) on a noisy pod: its frames' accelerations, noise alone, read as
    # 6.5 cm of reach over the rise. With the noise known the pod stayed put; a pod that
    # really went that far (its frames' noise an eighth as large) was rolling
    frames = frames_of((2.0, lambda _: 60.0), (2.4, lambda s: 60.0 + 15.0 * (1 - math.cos(math.pi * s / 2.4))),
                       (2.4, lambda s: 90.0 - 15.0 * (1 - math.cos(math.pi * s / 2.4))), (2.0, lambda _: 60.0))
    # the pod's own acceleration as strokes.StrokeCounter.moving has it: the frames' noise
    # (0.08 m/s^2 a frame), its changes summed with the 1 s memory
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.08, (len(frames) + 1, 3))
    keep, moving, drift = math.exp(-FRAME_S / 1.0), np.zeros(3), {}
    for (t, _), now, before in zip(frames, noise[1:], noise[:-1]):
        moving = keep * moving + now - before
        drift[round(t, 3)] = tuple(moving)

    def reps_with(noise_g: float) -> int:
        counter, found = RepCounter(), 0
        for t, force in frames:
            found += counter.update(t, force, 0.03, -math.inf, drift[round(t, 3)], noise_g) is not None
        return found

    assert reps_with(0.08 / 9.80665) == 1
    assert reps_with(0.01 / 9.80665) == 0


def test_a_peak_held_longer_than_a_contraction_rises_is_a_holding_level_not_a_rep():
    # pressed from 60 to 90 N, then the force data stops for a minute (the link dropped) and
    # comes back lower: no rep told a minute later
    frames = frames_of((1.0, lambda s: 60.0 * s), (1.5, lambda _: 60.0), (1.0, lambda s: 60.0 + 30.0 * s),
                       (1.5, lambda _: 90.0), (60.0, lambda _: math.nan), (2.0, lambda _: 60.0))
    assert count(frames) == []
