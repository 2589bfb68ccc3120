"""The daemon: threads, queues, signals and systemd around the pure core.

    imu-reader ----\\
                    >-- queue --> main loop: pipeline -> engine -> actions --> cues (thread "cues")
    force-reader --/      ^                                              \\--> store (thread "store-writer")
                  button -+

Sensor readers only read and enqueue; the main loop owns the pipeline and the
engine, so neither needs a lock. A sensor that stops delivering is declared
absent after ``STALE_S`` of the clock, so the pipeline carries on with the
other one; the user hears a sensor-fault cue, and the step goes on. The
watchdog is fed only while IMU samples are fresh (a stalled IMU needs the
restart systemd will give), or while the force link is declared degraded.

A session's raw samples go to its recording spool (spool.py), whose own thread
writes them to disk as the session runs, and stops before the space kept for
the log (diskspace.py) is touched; a spool left by a daemon that died becomes a
recording when the next one starts (spool_recovery.py), on a thread of its own once
systemd was told READY. At stop, the writers and that thread share one deadline, so
the session log always closes before systemd's stop timeout.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .clock import SystemClock
from .controls import ButtonControl
from .cues import CuePlayer, CueRecord
from .diskspace import MB, SpaceReserve
from .live import LivePublisher, live_socket_path, snapshot
from .pipeline import ContactModel, Pipeline
from .recorder import Recorder
from .recording import on_time_grid
from .routine.engine import Action, Engine, EngineSettings
from .routine.spec import Routine
from .samples import EventBatch, ForceBlock, ImuBlock
from .spool import NOT_RECORDINGS, RecordingSpool
from .spool_recovery import recover_spools
from .store import SessionLog

log = logging.getLogger(__name__)

STALE_S = 1.0  # a sensor silent this long (clock seconds) is declared absent
# real seconds that the recording writers and the recovery share at stop: systemd kills the
# daemon 10 s after asking it to stop (TimeoutStopSec), and the session log must close before
WRITERS_GRACE_S = 5.0
RECOVERY_STOP_S = 1.0  # the recovery, told to stop, is done within a block of a spool or a try at the log
POLL_S = 0.05  # how often the readers poll their device (clock seconds)
QUEUE_BLOCKS = 400
ACTION_CUES = {
    "session_start": "session_start", "step_start": "step_start", "halfway": "halfway", "step_done": "step_done",
    "session_done": "session_done", "pressure_warning": "pressure_warning", "sensor_fault": "sensor_fault",
    "idle_reminder": "idle_reminder",
}


class SensorReader(threading.Thread):
    """Polls one device's read() on the clock and queues what it returns; survives its faults."""

    def __init__(self, name: str, device, out: queue.Queue, clock, stop: threading.Event, poll_s: float = POLL_S):
        super().__init__(name=f"{name}-reader", daemon=True)
        self.source = name
        self.device = device
        self.out = out
        self.clock = clock
        self.stop_event = stop
        self.poll_s = poll_s
        self.dropped = 0

    def run(self) -> None:
        try:
            self._poll()
        finally:
            self.clock.checkout()

    def _poll(self) -> None:
        backoff = self.poll_s
        while not self.stop_event.is_set():
            self.clock.checkin()
            try:
                block = self.device.read()
                backoff = self.poll_s
            except Exception as exc:  # a reader must never die: report and retry
                log.warning("%s read failed: %s", self.source, exc)
                self._put(("fault", self.source, self.clock(), str(exc)))
                backoff = min(backoff * 2, 2.0)
                self.clock.wait(self.stop_event, backoff)
                continue
            if len(block) or getattr(block, "gaps", ()) or getattr(block, "events", ()):
                self._put((self.source, block))
            self.clock.wait(self.stop_event, self.poll_s)

    def _put(self, item) -> None:
        while True:
            try:
                self.out.put_nowait(item)
                return
            except queue.Full:
                # the main loop is far behind: keep the newest data, count what is lost
                # (the other reader may refill the queue meanwhile: try again)
                try:
                    self.out.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass


@dataclass
class SessionState:
    id: int | None
    t0: float
    recording_from: float


@dataclass
class DaemonResult:
    outcome: str | None
    summary: dict | None
    session_id: int | None
    cues: list[dict] = field(default_factory=list)
    recording: str | None = None  # set once the recording is in place, never before
    recording_cut_short: dict | None = None  # why the recording ends before the session, if it does


class Daemon:
    def __init__(self, config, *, imu, force, routine: Routine, data_dir: Path, clock=None, pin_factory=None,
                 source: str = "run", notifier=None, on_action: Callable[[Action, "Daemon"], None] | None = None,
                 on_cue: Callable[[CueRecord], None] | None = None, sessions_today: int | None = None, leg: str | None = None,
                 meta: dict | None = None, log_store: SessionLog | None = None, one_session: bool = False):
        self.config = config
        self.clock = clock or SystemClock()
        self.imu, self.force = imu, force
        self.routine = routine
        self.data_dir = Path(data_dir)
        self.source = source
        self.notifier = notifier
        self.on_action = on_action
        self.meta = meta or {}
        self.one_session = one_session
        self.store = log_store or SessionLog(self.data_dir, on_fault=self._store_fault)
        if sessions_today is None:
            # the programme: the start cue tells whether today's sessions are already done
            sessions_today = self.store.sessions_today(routine.id) if source == "run" else 0
        self.pipeline = Pipeline(ContactModel.from_config(config.pressure))
        self.engine = Engine(routine, leg=leg or config.routine.leg, settings=EngineSettings.from_config(config),
                             sessions_done_today=sessions_today)
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_BLOCKS)
        # with nothing to do, look at the button and the clocks every 0.1 s of the clock
        self._idle_wait_s = min(0.1, 0.1 / self.clock.speed) if self.clock.speed > 0 else 0.1
        self.stop_event = threading.Event()
        self._on_cue = on_cue
        self.cues = None
        try:
            self.cues = CuePlayer(config.pins, config.cues, clock=self.clock, pin_factory=pin_factory,
                                  on_cue=self._cue_played)
            self.button = ButtonControl(config.pins.button, clock=self.clock, pin_factory=pin_factory)
        except Exception:
            # the pins could not be had: leave no thread behind
            if self.cues is not None:
                self.cues.close()
            if log_store is None:
                self.store.close()
            raise
        self.recordings_dir = self.data_dir / "recordings"
        self._recovery: threading.Thread | None = None
        # set when a stop is asked for (a signal): the recovery leaves the spool at hand for the
        # next start. A run that ends by itself (its one session done) lets it finish first
        self._recovery_stop = threading.Event()
        self.recorder = Recorder() if config.storage.keep_recordings else None
        self.reserve = SpaceReserve(self.data_dir, config.storage.recordings_reserve_mb * MB)
        self.live = LivePublisher(live_socket_path(config))
        self._live_kpa = float("nan")
        self._live_warning: dict | None = None
        self._live_seq = 0
        self._writers: list[RecordingSpool] = []
        self._dropped_reported: dict[str, int] = {}
        self.session: SessionState | None = None
        self.last_result: DaemonResult | None = None
        self._cue_log: list[dict] = []
        self._last_seen = {"imu": self.clock(), "force": self.clock()}
        self._absent = {"imu": False, "force": False}
        self._store_faulted = threading.Event()
        self._readers = [
            SensorReader("imu", imu, self.queue, self.clock, self.stop_event),
            SensorReader("force", force, self.queue, self.clock, self.stop_event),
        ]

    def _start_recovery(self) -> None:
        """A daemon that died (a crash, kill -9, a power cut) left its session's samples in a
        spool: they become a recording, marked cut short, linked to the session in the log.

        On a thread of its own, once systemd was told READY: a 3-hour spool takes seconds to
        check on a Pi, time the start may not have. The log is safe to name it from there: a
        SessionLog call only queues the write for the log's one writer thread (the recording
        writers name theirs the same way), and the stop waits for this thread before it closes
        the log."""
        self._recovery = threading.Thread(target=self._recover_recordings, name="spool-recovery", daemon=True)
        self._recovery.start()

    def _recover_recordings(self) -> None:
        try:
            recover_spools(self.recordings_dir, self.store.path, self.store.set_recording,
                           stopping=self._recovery_stop.is_set)
        except Exception:  # an old recording must never keep the roller from working
            log.exception("could not recover the recordings left in %s", self.recordings_dir)

    # --- running ---------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None = None) -> DaemonResult | None:
        for reader in self._readers:
            reader.start()
        self._notify("ready", "sensors open, waiting for a session")
        self._start_recovery()
        try:
            while not self.stop_event.is_set():
                self.clock.checkin()
                self._step_once()
                if until is not None and until(self):
                    break
                if self.one_session and self.engine.state == "finished":
                    break
        finally:
            self.clock.checkout()
            self._shutdown()
        return self.last_result

    def stop(self) -> None:
        """Ask the loop to end (from a signal handler or another thread)."""
        self._recovery_stop.set()
        self.stop_event.set()

    def _step_once(self) -> None:
        try:
            item = self.queue.get(timeout=self._idle_wait_s)
        except queue.Empty:
            item = None
        now = self.clock()
        if item is not None:
            self._handle_item(item, now)
        self._report_dropped(now)
        for t, kind in self.button.poll():
            if self.recorder is not None:
                self.recorder.add_control(t, kind)
            self._apply(self.engine.button(t, kind))
        self._check_staleness(now)
        if self.notifier is not None:
            self.notifier.tick()

    def _report_dropped(self, now: float) -> None:
        for reader in self._readers:
            lost = reader.dropped - self._dropped_reported.get(reader.source, 0)
            if lost:
                self._dropped_reported[reader.source] = reader.dropped
                log.warning("%s: %d blocks dropped, the main loop fell behind", reader.source, lost)
                self._log_event(now, "gap", detail={"source": reader.source, "blocks_lost": lost,
                                                    "reason": "the daemon fell behind"})

    def _handle_item(self, item, now: float) -> None:
        kind = item[0]
        if kind == "imu":
            block: ImuBlock = replace(item[1], t=on_time_grid(item[1].t))
            if self.recorder is not None:
                self.recorder.add_imu(block)
            if len(block):  # a block of gap reports alone is not a sign of life
                self._seen("imu", now)
            for gap in block.gaps:
                self._log_event(gap.t, "gap", detail={"source": "imu", "samples_lost": gap.samples_lost, "reason": gap.reason})
            self._process(self.pipeline.feed_imu(block))
        elif kind == "force":
            block: ForceBlock = replace(item[1], t=on_time_grid(item[1].t))
            if self.recorder is not None:
                self.recorder.add_force(block)
            if len(block):
                self._seen("force", now)
            for gap in block.gaps:
                self._log_event(gap.t, "gap", detail={"source": "force", "samples_lost": gap.samples_lost, "reason": gap.reason})
            for event in block.events:
                self._log_event(event.t, "device", detail={"source": event.source, "kind": event.kind, "detail": event.detail})
            if len(block):
                self._process(self.pipeline.feed_force(block))
        elif kind == "fault":
            _, source, t, detail = item
            self._log_event(t, "fault", detail={"source": source, "detail": detail})

    def _seen(self, source: str, now: float) -> None:
        self._last_seen[source] = now
        if self.notifier is not None and source == "imu":
            self.notifier.samples_arrived(now)
        if self._absent[source]:
            self._absent[source] = False
            self._process(self._set_absent(source, False))
            self._apply(self.engine.device_fault(now, source, "up"))
            if source == "force" and self.notifier is not None:
                self.notifier.clear_degraded()

    def _check_staleness(self, now: float) -> None:
        for source in ("imu", "force"):
            if not self._absent[source] and now - self._last_seen[source] > self._stale_after(source):
                self._absent[source] = True
                log.warning("%s: no samples for %.1f s", source, now - self._last_seen[source])
                self._process(self._set_absent(source, True))
                self._apply(self.engine.device_fault(now, source, "down", "no samples"))
                if source == "force" and self.notifier is not None:
                    self.notifier.declare_degraded("force sensor link down")
        if self._absent["imu"] and self._absent["force"]:
            self._apply(self.engine.tick(now))  # no frames at all: time still passes for the engine

    def _stale_after(self, source: str) -> float:
        # a device that delivers in batches (the Pico: 8 readings, 0.8 s at 10 Hz) may
        # stay silent for two of them before it counts as gone
        device = self.imu if source == "imu" else self.force
        return max(STALE_S, 2.0 * (getattr(device, "frame_interval_s", 0.0) or 0.0))

    def _set_absent(self, source: str, absent: bool) -> EventBatch:
        return self.pipeline.set_force_absent(absent) if source == "force" else self.pipeline.set_imu_absent(absent)

    # --- events and actions ----------------------------------------------------------

    def _process(self, batch: EventBatch) -> None:
        actions = self.engine.handle(batch)
        self._log_batch(batch)
        self._apply(actions)
        self._publish_live(batch, actions)

    def _publish_live(self, batch: EventBatch, actions: list[Action]) -> None:
        # wall time, not the clock's: a demo at 20x still sends five snapshots a second
        now = time.monotonic()
        kpa = batch.frame_kpa[np.isfinite(batch.frame_kpa)]
        if len(kpa):
            self._live_kpa = float(kpa[-1])
        for action in actions:
            if action.kind == "pressure_warning":
                self._live_warning = {"step": action.step, "kpa": action.detail.get("kpa"),
                                      "limit_kpa": action.detail.get("limit_kpa")}
            elif action.kind in ("step_start", "session_start"):
                self._live_warning = None
        if not actions and not self.live.due(now):
            return
        self._live_seq += 1
        session_id = self.session.id if self.session is not None else None
        self.live.publish(snapshot(self.engine, session_id=session_id, kpa=self._live_kpa, absent=self._absent,
                                   warning=self._live_warning, sequence=self._live_seq), now)

    def _log_batch(self, batch: EventBatch) -> None:
        if self.session is None or self.session.id is None:
            return
        step = self.engine.step.position if self.engine.step else None
        for s in batch.strokes:
            self._log_event(s.t, "stroke", step=step, duration_s=round(s.duration, 3), force_n=_num(s.mean_force_n),
                            value=_num(s.length_cm))
        for r in batch.reps:
            self._log_event(r.t, "rep", step=step, duration_s=round(r.duration, 3), force_n=round(r.peak_force_n, 2),
                            value=round(r.rise_n, 2))
        for m in batch.repositions:
            self._log_event(m.t, "reposition", step=step)
        for p in batch.pressure:
            if p.t >= self.session.t0 - 1:
                self.store.log_pressure(self.session.id, int(round(p.t - self.session.t0)), _num(p.mean_kpa),
                                        _num(p.peak_kpa), _num(p.mean_force_n), _num(p.peak_force_n))

    def _log_event(self, t: float, kind: str, **fields) -> None:
        if self.session is not None and self.session.id is not None:
            self.store.log_event(self.session.id, t - self.session.t0, kind, **fields)

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            self._apply_one(action)

    def _apply_one(self, action: Action) -> None:
        kind = action.kind
        if kind == "session_start":
            self._start_session(action)
        if kind == "step_start" and self.engine.step is not None:
            self.cues.set_step_colour(self.engine.step.step.rgb)
        cue = ACTION_CUES.get(kind)
        if kind == "session_start" and action.detail.get("today_done"):
            cue = "session_start_extra"
        if cue is not None:
            self.cues.play(cue, action.step, t=action.t)
        if kind == "pressure_warning":
            self._log_event(action.t, "warning", step=action.step, value=action.detail.get("kpa"), detail=action.detail)
        elif kind in ("sensor_fault", "fault_cleared"):
            self._log_event(action.t, "fault" if kind == "sensor_fault" else "recovered", step=action.step, detail=action.detail)
        elif kind in ("step_skipped", "pause", "resume"):
            self._log_event(action.t, kind, step=action.step, detail=action.detail or None)
        elif kind == "step_ended" and self.session is not None and self.session.id is not None:
            self.store.save_step(self.session.id, action.detail, self.session.t0)
        if kind == "step_start":
            self._notify("status", f"step {action.step}: {action.detail.get('name')}")
        if self.on_action is not None:
            self.on_action(action, self)
        if kind == "session_done":
            self._finish_session(action)

    def _start_session(self, action: Action) -> None:
        t0 = action.t
        session_id = self.store.start_session(leg=self.config.routine.leg, routine=self.routine.id, source=self.source,
                                              steps_total=len(self.engine.plan), meta=self.meta)
        recording_from = self.recorder.start() if self.recorder is not None else t0
        self.session = SessionState(session_id, t0, recording_from=recording_from)
        if self.recorder is not None:
            self.recorder.attach(self._open_spool(self.session))
        self._notify("status", f"session {session_id} started")

    def _open_spool(self, session: SessionState) -> RecordingSpool:
        """The session's raw samples go to disk as it runs: a crash keeps them up to the last few seconds."""
        meta = dict(self.meta, session_id=session.id, session_t0=round(session.t0 - session.recording_from, 4),
                    routine=self.routine.id, leg=self.config.routine.leg,
                    imu_rate_hz=getattr(self.imu, "rate_hz", None), force_rate_hz=self.config.force.sample_rate_hz)
        spool = RecordingSpool(self.recordings_dir, session_id=session.id, t_from=session.recording_from, meta=meta,
                               reserve=self.reserve,
                               on_cut_short=lambda cut: self._recording_cut_short(session, cut))
        self._writers = [w for w in self._writers if w.is_alive()] + [spool]
        return spool

    def _recording_cut_short(self, session: SessionState, cut: dict) -> None:
        """From the spool's thread: the recording stopped before the session; the log says where and why."""
        if session.id is None:
            return
        at = session.recording_from + (cut["at_s"] or 0.0)
        self.store.log_event(session.id, max(at - session.t0, 0.0), "gap",
                             detail={"source": "recording", "reason": cut["reason"]})

    def _finish_session(self, action: Action) -> None:
        session = self.session
        summary = action.detail
        result = DaemonResult(summary.get("outcome"), summary, session.id if session else None, list(self._cue_log))
        if session is not None and session.id is not None:
            # the outcome first: a crash while the recording is finished must not lose it
            self.store.finish_session(session.id, summary, action.t - session.t0, None)
        spool = self.recorder.detach() if self.recorder is not None else None
        if spool is not None:
            spool.finish({"outcome": summary.get("outcome")},
                         on_done=lambda path, meta: self._recording_kept(session, result, path, meta))
        self.last_result = result
        self._notify("status", f"session {session.id if session else '?'} {summary.get('outcome')}")
        self.session = None

    def _recording_kept(self, session: SessionState, result: DaemonResult, path: Path | None, meta: dict) -> None:
        """From the spool's thread, once the recording is in place (path None: no samples were kept)."""
        result.recording_cut_short = meta.get("cut_short")
        if path is None:
            return
        result.recording = str(path)
        if session is not None and session.id is not None:
            self.store.set_recording(session.id, str(path))
        prune_recordings(self.recordings_dir, self.config.storage.recordings_max_days,
                         self.config.storage.recordings_max_mb)

    def _cue_played(self, record: CueRecord) -> None:
        session = self.session  # read once: the main thread may end the session meanwhile
        t0 = session.t0 if session else (self.engine._session_start or 0.0)
        entry = {"t": round(record.t - t0, 2), "pattern": record.pattern, "step": record.step}
        self._cue_log.append(entry)
        if session is not None and session.id is not None:
            self.store.log_event(session.id, record.t - session.t0, "cue", step=record.step,
                                 detail={"pattern": record.pattern})
        if self._on_cue is not None:
            self._on_cue(record)

    def _store_fault(self, detail: str) -> None:
        if not self._store_faulted.is_set():
            self._store_faulted.set()
            self.cues.play("sensor_fault")

    def _notify(self, what: str, text: str) -> None:
        if self.notifier is None:
            return
        if what == "ready":
            self.notifier.ready(text)
        else:
            self.notifier.status(text)

    # --- stopping --------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.stop_event.set()
        self._notify("status", "stopping")
        if self.notifier is not None:
            self.notifier.stopping()
        for reader in self._readers:
            reader.join(timeout=2.0)
        # what the readers queued before they stopped is part of the session: a busy
        # machine leaves a backlog, and cutting it off would end the last step short
        self._drain_queue()
        now = self.clock()
        batch = self.pipeline.finish()
        self._process(batch)
        self._apply(self.engine.stop(now))
        self.cues.wait_idle(timeout=5.0)
        for part in (self.cues, self.button):
            part.close()
        wait_for_writers(self._writers, self._recovery, WRITERS_GRACE_S, stop_recovery=self._recovery_stop.set)
        self.store.close()
        self.live.close()

    def _drain_queue(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            self._handle_item(item, self.clock())

    @property
    def cue_log(self) -> list[dict]:
        return list(self._cue_log)


class SystemdBridge:
    """What the daemon tells systemd: readiness, status, and the watchdog fed by IMU samples.

    The watchdog is fed only while IMU samples are fresh: a stalled IMU is what a
    restart can cure. A force link that is down is a degraded state the daemon
    declares in its status and guides through.
    """

    def __init__(self, notifier, watchdog):
        self.notifier, self.watchdog = notifier, watchdog

    def ready(self, text: str) -> None:
        self.notifier.ready(text)

    def status(self, text: str) -> None:
        self.notifier.status(text)

    def stopping(self) -> None:
        self.notifier.stopping()

    def samples_arrived(self, t: float) -> None:
        self.watchdog.samples_arrived(t, source="imu")

    def declare_degraded(self, reason: str) -> None:
        self.notifier.status(f"degraded: {reason}")

    def clear_degraded(self) -> None:
        self.notifier.status("all sensors delivering")

    def tick(self) -> None:
        self.watchdog.tick()


def systemd_bridge(clock) -> SystemdBridge | None:
    """The bridge when systemd (or a test) gave us a NOTIFY_SOCKET, else None."""
    from .sdnotify import Notifier, Watchdog

    notifier = Notifier()
    if not notifier.enabled:
        return None
    return SystemdBridge(notifier, Watchdog(notifier, clock, sources=("imu",)))


def wait_for_writers(writers: list[RecordingSpool], recovery: threading.Thread | None, grace_s: float,
                     monotonic: Callable[[], float] = time.monotonic,
                     stop_recovery: Callable[[], None] | None = None) -> None:
    """Waits, ``grace_s`` in all, for the recordings to be finished and the recovery to be
    done; a writer not done by then is told to leave its spool as it is, and so is the
    recovery (``stop_recovery``): the next start recovers what they did not get to."""
    deadline = monotonic() + grace_s
    for writer in writers:
        writer.join(max(0.0, deadline - monotonic()))
        if writer.is_alive():
            writer.abandon()
            log.warning("the recording of session %s was not finished within %g s of the stop: its spool stays "
                        "and becomes a recording at the next start", writer.session_id, grace_s)
    if recovery is None:
        return
    recovery.join(max(0.0, deadline - monotonic()))
    if recovery.is_alive() and stop_recovery is not None:
        stop_recovery()  # it stops between two blocks of a spool: a moment
        recovery.join(RECOVERY_STOP_S)
    if recovery.is_alive():
        log.warning("the recovery of recordings left by an earlier run did not stop within %g s: what it did "
                    "not get to is recovered at the next start", grace_s)


def _num(x) -> float | None:
    return None if x is None or x != x else round(float(x), 3)


def prune_recordings(folder: Path, max_days: int, max_mb: int) -> list[Path]:
    """Deletes the oldest recordings past the age limit, then until under the size limit."""
    if not folder.exists():
        return []
    # a spool (a recording being written, or one left for recovery) is not a recording yet, and
    # one recovery set aside waits for the user
    entries = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(NOT_RECORDINGS)),
                     key=lambda p: p.stat().st_mtime)
    removed = []
    now = time.time()
    sizes = {p: _folder_size(p) for p in entries}
    total = sum(sizes.values())
    for path in entries[:-1]:  # never the newest
        too_old = now - path.stat().st_mtime > max_days * 86400
        too_big = total > max_mb * 1024 * 1024
        if too_old or too_big:
            shutil.rmtree(path, ignore_errors=True)
            total -= sizes[path]
            removed.append(path)
    return removed


def _folder_size(folder: Path) -> int:
    """Bytes in the folder's files; a file that goes meanwhile (a recording settling) counts nothing."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total
