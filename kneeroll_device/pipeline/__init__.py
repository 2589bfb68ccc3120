"""The signal pipeline: sample blocks in, events out. Pure: no I/O, no clock, no threads.

    pipeline = Pipeline(ContactModel())
    batch = pipeline.feed_force(force_block)   # in any order, any sizes
    batch = pipeline.feed_imu(imu_block)
    batch = pipeline.finish()                   # end of data

Both streams are cut into 0.1 s frames (framing.py); each frame passes through
the stages in a fixed order: motion (gravity, bias, stillness, side), the load
cell's zero, strokes, reps, pressure, and the motion state. docs/counting.md
explains the physics behind the counts. The events are the
same whatever the block sizes, so a replay at full speed is the live run.
"""

from __future__ import annotations

import math

import numpy as np

from ..samples import EventBatch, ForceBlock, GapEvent, ImuBlock, MotionStateEvent, PressureSecond, RepositionEvent
from .framing import FRAME_S, LONG_GAP_FRAMES, Frame, Framer
from .motion import MotionTracker
from .pressure import AutoZero, ContactModel
from .reps import RepCounter
from .strokes import GRIP_N, StrokeCounter

__all__ = ["Pipeline", "ContactModel", "FRAME_S"]

ROLLING_HOLD_S = 2.5  # after a stroke, still rolling for this long
STATE_DWELL_FRAMES = 3  # a new state must last this many frames (hysteresis)


class StateTracker:
    """rest, holding, rolling or transition, with hysteresis; and the pod's side."""

    def __init__(self):
        self.state = "rest"
        self.flipped = False
        self._candidate = "rest"
        self._count = 0

    def update(self, t: float, rolling: bool, still: bool, force: float, flipped: bool) -> MotionStateEvent | None:
        if rolling:
            wanted = "rolling"
        elif still:
            wanted = "holding" if force == force and force >= GRIP_N else "rest"
        else:
            wanted = "transition"
        if wanted == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = wanted, 1
        changed = False
        if wanted != self.state and (wanted == "rolling" or self._count >= STATE_DWELL_FRAMES):
            self.state = wanted
            changed = True
        if flipped != self.flipped:
            self.flipped = flipped
            changed = True
        return MotionStateEvent(t, self.state, self.flipped) if changed else None


class Pipeline:
    def __init__(self, contact: ContactModel | None = None):
        self.contact = contact or ContactModel()
        self.framer = Framer()
        self.zero = AutoZero()  # the load cell's zero outlasts a silence: it is the cell's, not the motion's
        self._start_afresh()
        self._last_k: int | None = None
        self._second: int | None = None
        self._sec_kpa: list[float] = []
        self._sec_force: list[float] = []
        self.frames_processed = 0
        self.t_end: float | None = None

    def _start_afresh(self) -> None:
        """The stages that follow the motion and the squeeze, as at the start."""
        self.motion = MotionTracker()
        self.reps = RepCounter()
        self.strokes = StrokeCounter()
        self.states = StateTracker()

    # --- input ---------------------------------------------------------------------

    def feed_imu(self, block: ImuBlock) -> EventBatch:
        self.framer.add_imu(block.t, block.accel, block.gyro)
        return self._run()

    def feed_force(self, block: ForceBlock) -> EventBatch:
        self.framer.add_force(block.t, block.force, block.saturated)
        return self._run()

    def set_force_absent(self, absent: bool) -> EventBatch:
        """The force link is down (True) or back (False): stop or start waiting for it."""
        self.framer.force_absent = absent
        return self._run()

    def set_imu_absent(self, absent: bool) -> EventBatch:
        self.framer.imu_absent = absent
        return self._run()

    def finish(self) -> EventBatch:
        """End of data: close the last frames and the last second of pressure."""
        self.framer.close()
        batch = self._run()
        if self._second is not None:
            batch.pressure.append(self._close_second())
        return batch

    # --- per frame -----------------------------------------------------------------

    def _run(self) -> EventBatch:
        batch = EventBatch()
        frames = self.framer.frames()
        if not frames:
            batch.t_end = self.t_end
            return batch
        ts, forces = [], []
        for frame in frames:
            self._after_a_long_gap(frame, batch)
            forces.append(self._frame(frame, batch))
            ts.append(frame.t)
        batch.frame_t = np.array(ts)
        batch.frame_force = np.array(forces)
        batch.frame_kpa = self.contact.kpa_of(batch.frame_force)
        self._add_pressure(batch.frame_t, batch.frame_force, batch.frame_kpa, batch)
        self.t_end = batch.t_end = ts[-1]
        return batch

    def _after_a_long_gap(self, frame: Frame, batch: EventBatch) -> None:
        last, self._last_k = self._last_k, frame.k
        if last is None or frame.k - last <= LONG_GAP_FRAMES:
            return
        silent_s = (frame.k - last - 1) * FRAME_S
        batch.gaps.append(GapEvent(t=frame.t - FRAME_S, source="sensors", samples_lost=0,
                                   reason=f"no samples for {silent_s:.0f} s: the counting starts afresh"))
        self._start_afresh()

    def _frame(self, frame: Frame, batch: EventBatch) -> float:
        t, motion, strokes = frame.t, self.motion, self.strokes
        if frame.accel is not None:
            loaded = frame.force == frame.force and frame.force - self.zero.offset >= GRIP_N
            motion.update(frame.accel, frame.gyro, loaded, frame.accel_noise)
        force = self.zero.apply(frame.force, motion.still_frames)
        noise = motion.accel_noise
        # a rep is judged on the strokes confirmed before this frame: a stroke confirmed on the
        # same frame (a way made of the rep's own tilt) does not take back the rep whose rise
        # and fall came first
        ended_before = strokes.last_end_t
        if frame.accel is not None and motion.gravity is not None:
            rate = motion.rate(frame.gyro) if frame.gyro is not None else None
            stroke = strokes.update(t, motion.tilt(), frame.accel, rate, force, self.reps.last_t, noise)
            if stroke is not None:
                batch.strokes.append(stroke)
            if strokes.take_moved() is not None:
                # a lone half-stroke: the roller slid to another spot (a new trigger point)
                batch.repositions.append(RepositionEvent(t=t, distance_cm=math.nan))
        rep = self.reps.update(t, force, strokes.travel, ended_before, strokes.moving, noise)
        if rep is not None:
            batch.reps.append(rep)
        # from where the last stroke's movement ended, not from when it was told (its end is
        # confirmed once the roller came back or rested there, up to a second later)
        rolling = t - strokes.last_end_t < ROLLING_HOLD_S
        state = self.states.update(t, rolling, motion.still, force, motion.flipped)
        if state is not None:
            batch.states.append(state)
        self.frames_processed += 1
        return force

    def _add_pressure(self, ts: np.ndarray, forces: np.ndarray, kpas: np.ndarray, batch: EventBatch) -> None:
        """The frames' squeeze and pressure into the seconds they end in."""
        seconds = np.floor(ts).tolist()  # the whole second in which each frame ends
        forces_n, kpas_n = forces.tolist(), kpas.tolist()
        start = 0
        for i in range(1, len(seconds) + 1):
            if i == len(seconds) or seconds[i] != seconds[start]:
                self._into_second(int(seconds[start]), forces_n[start:i], kpas_n[start:i], batch)
                start = i

    def _into_second(self, second: int, forces: list[float], kpas: list[float], batch: EventBatch) -> None:
        if self._second is not None and second != self._second:
            batch.pressure.append(self._close_second())
        self._second = second
        self._sec_force.extend(f for f in forces if f == f)
        self._sec_kpa.extend(k for f, k in zip(forces, kpas) if f == f)

    def _close_second(self) -> PressureSecond:
        f, p = self._sec_force, self._sec_kpa
        nan = math.nan
        summary = PressureSecond(
            t=float(self._second),
            mean_kpa=sum(p) / len(p) if p else nan, peak_kpa=max(p) if p else nan,
            mean_force_n=sum(f) / len(f) if f else nan, peak_force_n=max(f) if f else nan,
        )
        self._sec_force, self._sec_kpa = [], []
        return summary
