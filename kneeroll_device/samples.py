"""The types that flow through kneeroll: sample blocks in, events out.

Sensor adapters produce blocks (NumPy arrays of samples with their times, in
seconds of the daemon's monotonic clock). The pipeline turns blocks into the
events defined here; the routine engine turns events into actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GapEvent:
    """Samples that a sensor lost: a FIFO overflow, a bus error, a dropped frame."""

    t: float
    source: str  # "imu" or "force"
    samples_lost: int
    reason: str


@dataclass(frozen=True)
class DeviceEvent:
    """A change in a device's health: link up or down, device lost or back, a reset."""

    t: float
    source: str  # "imu" or "force"
    kind: str  # "up", "down", "reset", "fault", "recovered"
    detail: str = ""


@dataclass(frozen=True)
class ImuBlock:
    """IMU samples: ``t`` (N,) seconds, ``accel`` (N, 3) in g, ``gyro`` (N, 3) in deg/s or None."""

    t: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray | None = None
    gaps: tuple[GapEvent, ...] = ()

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, with_gyro: bool = True) -> "ImuBlock":
        return cls(
            t=np.zeros(0),
            accel=np.zeros((0, 3)),
            gyro=np.zeros((0, 3)) if with_gyro else None,
        )


@dataclass(frozen=True)
class ForceBlock:
    """Force samples: ``t`` (N,) seconds, ``force`` (N,) newtons of squeeze on the roller."""

    t: np.ndarray
    force: np.ndarray
    saturated: np.ndarray | None = None  # (N,) bool: the HX711 hit its rail
    gaps: tuple[GapEvent, ...] = ()
    events: tuple[DeviceEvent, ...] = ()

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls) -> "ForceBlock":
        return cls(t=np.zeros(0), force=np.zeros(0))


# --- pipeline events ------------------------------------------------------


@dataclass(frozen=True)
class StrokeEvent:
    """One back-and-forth cycle of the roller, reported when it ends."""

    t: float  # when the cycle ended (seconds)
    duration: float  # seconds
    length_cm: float  # approximate travel of one way
    mean_force_n: float  # NaN without force data


@dataclass(frozen=True)
class RepEvent:
    """One leg-straightening against the held roller, reported after its force peak."""

    t: float  # time of the force peak
    duration: float  # seconds from the rise to the fall
    peak_force_n: float
    rise_n: float  # how far the force rose above the holding level
    reported_t: float = float("nan")  # when the pipeline knew it (a little after the peak)


@dataclass(frozen=True)
class RepositionEvent:
    """The roller slid to a new spot while holding: a move to the next trigger point."""

    t: float
    distance_cm: float


@dataclass(frozen=True)
class MotionStateEvent:
    """The motion state changed: rest, rolling, holding, transition; ``flipped`` tells the pod's side."""

    t: float
    state: str
    flipped: bool


@dataclass(frozen=True)
class PressureSecond:
    """One second of pressure, summarised: what the log keeps for plots."""

    t: float  # start of the second
    mean_kpa: float
    peak_kpa: float
    mean_force_n: float
    peak_force_n: float


PipelineEvent = StrokeEvent | RepEvent | RepositionEvent | MotionStateEvent | PressureSecond


EVENT_LISTS = ("strokes", "reps", "repositions", "states", "pressure", "gaps")  # EventBatch's lists of events
FRAME_ARRAYS = ("frame_t", "frame_force", "frame_kpa")  # ... and its arrays, one value a frame


@dataclass
class EventBatch:
    """What one pipeline call returns, in time order within each list."""

    strokes: list[StrokeEvent] = field(default_factory=list)
    reps: list[RepEvent] = field(default_factory=list)
    repositions: list[RepositionEvent] = field(default_factory=list)
    states: list[MotionStateEvent] = field(default_factory=list)
    pressure: list[PressureSecond] = field(default_factory=list)
    gaps: list[GapEvent] = field(default_factory=list)  # long silences, after which counting started afresh
    # the newest processed time, and the force (N) and pressure (kPa) of each processed frame
    t_end: float | None = None
    frame_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_force: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_kpa: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def extend(self, other: "EventBatch") -> None:
        for name in EVENT_LISTS:
            getattr(self, name).extend(getattr(other, name))
        for name in FRAME_ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        if other.t_end is not None:
            self.t_end = other.t_end

    @classmethod
    def joined(cls, batches: list["EventBatch"]) -> "EventBatch":
        """The batches one after the other, as extend() would leave them, with each frame
        array copied once (extending batch by batch copies an hour's frames hundreds of times)."""
        whole = cls()
        for name in EVENT_LISTS:
            getattr(whole, name).extend(event for batch in batches for event in getattr(batch, name))
        if batches:
            for name in FRAME_ARRAYS:
                setattr(whole, name, np.concatenate([getattr(batch, name) for batch in batches]))
        whole.t_end = next((batch.t_end for batch in reversed(batches) if batch.t_end is not None), None)
        return whole
