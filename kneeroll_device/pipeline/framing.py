"""Framing: raw samples of both sensors onto one 10 Hz grid of frames.

Every later stage works on frames of FRAME_S seconds: frame k holds the mean
IMU sample and the mean and peak force over [k, k+1) * FRAME_S + FRAME_PHASE_S. A
frame is only formed once a sample past its end has arrived, and its sums are
computed from exactly the same samples whatever the sizes of the blocks that
brought them, which is what makes the whole pipeline block-size invariant.
Strokes (under 1.1 Hz) and reps (a second or more) are slow next to 10 Hz,
and per-frame work in plain Python stays cheap enough for a Pi Zero 2 W.

The two streams are merged by frame index. A frame waits for both sensors,
unless one of them is absent (declared down by the daemon, which watches the
clock, or started after that frame), in which case its values are NaN and the
stages carry on with what they have.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.1
# Frame edges sit 45 ms past each tenth of a second: half-way between the samples of
# a 100 Hz stream and 5 ms or more from those of an 80 Hz one, when they start on a
# whole second, so a little timestamp jitter never moves a sample to another frame.
FRAME_PHASE_S = 0.045


# a stream silent this long has not lost a few samples: it stopped (a paused session, two
# recordings joined). The frames in between are not formed one by one, so memory and time
# do not grow with the length of the silence; the pipeline starts afresh after it.
LONG_GAP_S = 10.0
LONG_GAP_FRAMES = round(LONG_GAP_S / FRAME_S)


def frame_index(t):
    """The frame a time belongs to (works on floats and arrays)."""
    return np.floor((np.asarray(t) - FRAME_PHASE_S) / FRAME_S).astype(np.int64)
NAN = float("nan")


def forward_mask(t: np.ndarray, last: float) -> np.ndarray:
    """Which samples move time forward past ``last`` and every sample before them.

    A sensor's clock mapping can step back a little (a reconnect, a re-anchored
    timestamp); such samples are dropped, the same way whatever the block sizes.
    """
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    before = np.maximum.accumulate(np.concatenate(([last], t[:-1])))
    return t > before


def frame_time(k: int) -> float:
    """Frame k's time stamp: its end, when everything in it is known."""
    return (k + 1) * FRAME_S + FRAME_PHASE_S


@dataclass(slots=True)
class Frame:
    k: int
    accel: tuple[float, float, float] | None  # mean, g
    gyro: tuple[float, float, float] | None  # mean, deg/s
    force: float  # mean, N (NaN without force data)
    force_peak: float
    saturated: bool
    # how far the mean acceleration may be off from the sensor's noise (g, RMS per axis):
    # the samples' spread about their mean over the square root of their number (0 with
    # one sample a frame: unknown, and no noise is assumed)
    accel_noise: float
    t: float  # frame_time(k)


def imu_summaries(means: np.ndarray, peaks: np.ndarray, spreads: np.ndarray) -> list[tuple]:
    """Per frame of IMU samples (columns: accelerometer x, y, z, gyro x, y, z): the mean
    acceleration, the mean rate (None where there was no gyro) and the acceleration's noise,
    Frame.accel_noise; the peaks are not needed. (Taken apart a column at a time: a row of
    an array is slow to.)"""
    accel = zip(*(means[:, i].tolist() for i in range(3)))
    gyro = list(zip(*(means[:, i].tolist() for i in range(3, 6))))
    no_gyro = np.isnan(means[:, 3])
    if no_gyro.any():
        gyro = [None if missing else rate for rate, missing in zip(gyro, no_gyro.tolist())]
    noise = np.sqrt((spreads[:, 0] + spreads[:, 1] + spreads[:, 2]) / 3.0)
    return list(zip(accel, gyro, noise.tolist()))


def force_summaries(means: np.ndarray, peaks: np.ndarray, spreads: np.ndarray) -> list[tuple]:
    """Per frame of force samples (columns: force, saturated): the mean and peak force, and
    whether any sample was saturated (the spreads are not needed)."""
    return list(zip(means[:, 0].tolist(), peaks[:, 0].tolist(), (peaks[:, 1] > 0).tolist()))


class Binner:
    """Means, peaks and the variance of the means of one stream's samples per frame, exact
    across block boundaries, summarised per frame by ``summaries`` (imu_summaries,
    force_summaries)."""

    def __init__(self, width: int, summaries: Callable[[np.ndarray, np.ndarray, np.ndarray], list[tuple]]):
        self.width = width
        self.summaries = summaries
        self._t = np.zeros(0)
        self._x = np.zeros((0, width))
        self.latest_t: float | None = None
        self.next_k: int | None = None  # the next frame index this stream will complete

    def add(self, t: np.ndarray, x: np.ndarray) -> list[tuple]:
        """Returns complete frames as (k, summary); gaps inside the stream come out as (k, None)."""
        if len(t) == 0:
            return []
        t = np.asarray(t, dtype=float)
        x = np.asarray(x, dtype=float).reshape(len(t), self.width)
        keep = forward_mask(t, -np.inf if self.latest_t is None else self.latest_t)
        if not keep.all():
            t, x = t[keep], x[keep]
        if len(t) == 0:
            return []
        self.latest_t = float(t[-1])
        all_t = np.concatenate([self._t, t])
        all_x = np.concatenate([self._x, x])
        ks = frame_index(all_t)
        # the frames before the newest are complete: a run at the start, as time only goes forward
        done = int(np.searchsorted(ks, ks[-1]))
        out: list[tuple] = []
        if done:
            dk = ks[:done]
            starts = np.flatnonzero(np.concatenate(([True], dk[1:] != dk[:-1])))
            out = self._in_order(dk[starts].tolist(), self.summaries(*_summaries(all_x[:done], starts)))
        self._t, self._x = all_t[done:], all_x[done:]
        return out

    def _in_order(self, ks: list[int], summaries: list[tuple]) -> list[tuple]:
        """The frames with their indices, and a (k, None) for each frame of a short gap."""
        if self.next_k is None:
            self.next_k = ks[0]
        if ks[0] == self.next_k and ks[-1] - ks[0] == len(ks) - 1:  # no gap: the usual case
            self.next_k = ks[-1] + 1
            return list(zip(ks, summaries))
        out: list[tuple] = []
        for k, summary in zip(ks, summaries):
            if k - self.next_k > LONG_GAP_FRAMES:
                self.next_k = k  # a long silence: no frames for it at all
            while self.next_k < k:  # frames with no sample at all: a short gap
                out.append((self.next_k, None))
                self.next_k += 1
            out.append((k, summary))
            self.next_k = k + 1
        return out

    def flush(self) -> list[tuple]:
        """End of data: the last, partial frame as it stands."""
        if len(self._t) == 0:
            return []
        k = int(frame_index(self._t[-1]))
        summary = self.summaries(*_summaries(self._x, np.zeros(1, dtype=np.int64)))[0]
        self._t, self._x = self._t[:0], self._x[:0]
        self.next_k = k + 1
        return [(k, summary)]


def _summaries(x: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame (rows from each start to the next): the mean, the peak, and the variance of
    the mean (the samples' variance about it over their number: 0 for a lone sample)."""
    counts = np.diff(np.append(starts, len(x)))[:, None]
    means = np.add.reduceat(x, starts, axis=0) / counts
    deviations = x - np.repeat(means, counts[:, 0], axis=0)
    spreads = np.add.reduceat(deviations * deviations, starts, axis=0) / (counts * np.maximum(counts - 1, 1))
    return means, np.maximum.reduceat(x, starts, axis=0), spreads


class Framer:
    """Merges the IMU and force streams into frames, in frame order."""

    def __init__(self):
        self.imu = Binner(6, imu_summaries)
        self.force = Binner(2, force_summaries)
        self._imu_frames: deque = deque()
        self._force_frames: deque = deque()
        self.next_k: int | None = None
        self.force_absent = False  # declared by the daemon when the link is down
        self.imu_absent = False
        self.has_gyro = True

    def add_imu(self, t, accel, gyro=None) -> None:
        if gyro is None:
            self.has_gyro = False
            gyro = np.full((len(t), 3), np.nan)
        self._imu_frames.extend(self.imu.add(t, np.hstack([accel, gyro]) if len(t) else np.zeros((0, 6))))

    def add_force(self, t, force, saturated=None) -> None:
        sat = np.zeros(len(t)) if saturated is None else np.asarray(saturated, dtype=float)
        self._force_frames.extend(self.force.add(t, np.column_stack([force, sat]) if len(t) else np.zeros((0, 2))))

    def close(self) -> None:
        """End of data: release the partial frames and stop waiting for either stream."""
        self._imu_frames.extend(self.imu.flush())
        self._force_frames.extend(self.force.flush())
        self.imu_absent = self.force_absent = True

    def frames(self) -> list[Frame]:
        out: list[Frame] = []
        while True:
            n = self._in_step()
            if n:
                out.extend(self._pair(n))
                continue
            frame = self._next_frame()
            if frame is None:
                return out
            out.append(frame)

    def _in_step(self) -> int:
        """How many frames from the next one on both streams hold, one for one (the usual
        case, which needs none of _next_frame's checks)."""
        imu_q, force_q, k = self._imu_frames, self._force_frames, self.next_k
        if k is None or not imu_q or not force_q or imu_q[0][0] != k or force_q[0][0] != k:
            return 0
        n = min(len(imu_q), len(force_q))
        # (each stream's frame indices only increase: its first and its n-th tell)
        return n if imu_q[n - 1][0] == force_q[n - 1][0] == k + n - 1 else 0

    def _pair(self, n: int) -> list[Frame]:
        imu_q, force_q, has_gyro = self._imu_frames, self._force_frames, self.has_gyro
        frames = [_make_frame(k, imu_q.popleft(), force_q.popleft(), has_gyro) for k in range(self.next_k, self.next_k + n)]
        self.next_k += n
        return frames

    def _next_frame(self) -> Frame | None:
        imu_q, force_q = self._imu_frames, self._force_frames
        if self.next_k is None:
            heads = [q[0][0] for q in (imu_q, force_q) if q]
            if not heads:
                return None
            self.next_k = min(heads)
        k = self.next_k
        # drop anything older than k (a stream that started late, or resumed)
        while imu_q and imu_q[0][0] < k:
            imu_q.popleft()
        while force_q and force_q[0][0] < k:
            force_q.popleft()
        imu = imu_q[0] if imu_q and imu_q[0][0] == k else None
        force = force_q[0] if force_q and force_q[0][0] == k else None
        if imu is None and force is None:
            if not imu_q and not force_q:
                return None
            self.next_k = min(q[0][0] for q in (imu_q, force_q) if q)  # both streams skipped ahead
            return self._next_frame()
        if imu is None and not self._stream_gone(self.imu, imu_q, self.imu_absent, k):
            return None
        if force is None and not self._stream_gone(self.force, force_q, self.force_absent, k):
            return None
        if imu is not None:
            imu_q.popleft()
        if force is not None:
            force_q.popleft()
        self.next_k = k + 1
        return _make_frame(k, imu, force, self.has_gyro)

    @staticmethod
    def _stream_gone(own: Binner, queue: deque, declared: bool, k: int) -> bool:
        """Whether frame k will never come from this stream, so it must not be waited for.

        Only the data decides (or the daemon, which declares a stream absent when
        its device is down): never the arrival order, so any block sizes give the
        same frames.
        """
        if declared:
            return True
        started_later = own.next_k is not None and own.next_k > k and (not queue or queue[0][0] > k)
        return started_later


def _make_frame(k: int, imu: tuple | None, force: tuple | None, has_gyro: bool) -> Frame:
    """A frame from the streams' (k, summary) for it, either of them None without one."""
    accel, gyro, noise = imu[1] if imu is not None and imu[1] is not None else (None, None, 0.0)
    f, fp, sat = force[1] if force is not None and force[1] is not None else (NAN, NAN, False)
    return Frame(k, accel, gyro if has_gyro else None, f, fp, sat, noise, frame_time(k))
