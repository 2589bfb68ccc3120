"""The daemon: under systemd's eyes (a fake NOTIFY_SOCKET on a real datagram socket), its raw-sample buffer, and
the recordings on a disk near full."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from kneeroll_device import daemon as daemon_module
from kneeroll_device import demo, diskspace
from kneeroll_device.cli import main
from kneeroll_device.config import load_config
from kneeroll_device.daemon import (RECOVERY_STOP_S, STALE_S, WRITERS_GRACE_S, Daemon, prune_recordings,
                                    wait_for_writers)
from kneeroll_device.diskspace import MB, SpaceReserve
from kneeroll_device.recorder import Recorder
from kneeroll_device.recording import read_recording
from kneeroll_device.samples import ForceBlock, ImuBlock
from kneeroll_device.spool import SPOOL_PREFIX, RecordingSpool, SpoolFiles
from kneeroll_device.spool_recovery import recover_spools

SPEED = 5.0
FAULT_AT, FAULT_S = 8.0, 5.0  # demo seconds: the IMU leaves the bus at 8 s for 5 s


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield sock, str(path)
    sock.close()


def collect(sock: socket.socket, until: str, into: list[tuple[float, str]], seconds: float = 60.0) -> None:
    """Datagrams, each line with the real time it arrived, up to the first line that starts with ``until``.

    The demo's clock waits for threads that fall behind, so on a busy machine demo time
    runs slower than SPEED times real time: the test follows what the daemon says, not a timer.
    """
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            continue
        for line in data.splitlines():
            into.append((time.monotonic(), line))
            if line.startswith(until):
                return
    raise AssertionError(f"no {until!r} from the daemon within {seconds:.0f} s: {[line for _, line in into]}")


def test_ready_then_watchdog_only_while_imu_samples_flow_then_stopping(tmp_path, notify_socket):
    sock, path = notify_socket
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")  # a ping due every 1 s of demo time
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kneeroll_device.cli", "demo", "--scenario", "imu-fault", "--fault-at", str(FAULT_AT),
         "--speed", str(SPEED), "--data-dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[float, str]] = []
    try:
        collect(sock, "READY=1", seen)
        collect(sock, "STATUS=watchdog withheld", seen)
        withheld_at = len(seen) - 1
        collect(sock, "WATCHDOG=1", seen)  # the IMU is back
        daemon.send_signal(signal.SIGTERM)
        collect(sock, "STOPPING=1", seen)
        assert daemon.wait(timeout=30) == 0, daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    lines = [line for _, line in seen]
    before, withheld = lines[:withheld_at], lines[withheld_at]
    assert before.count("WATCHDOG=1") >= 3  # fed while samples flow
    assert "imu" in withheld
    # no ping from shortly after the IMU went quiet until it came back, seconds of demo time later
    last_fed = max(t for t, line in seen[:withheld_at] if line == "WATCHDOG=1")
    fed_again = min(t for t, line in seen[withheld_at:] if line == "WATCHDOG=1")
    assert (fed_again - last_fed) * SPEED > FAULT_S - 2.5
    assert lines.index("READY=1") < lines.index("WATCHDOG=1")  # fed only once the sensors are open


@pytest.mark.parametrize("interval_s, stale_s", [(None, STALE_S), (0.1, STALE_S), (0.8, 1.6)])
def test_a_sensor_that_sends_in_slow_batches_is_given_two_of_them_before_it_counts_as_gone(interval_s, stale_s):
    force = SimpleNamespace() if interval_s is None else SimpleNamespace(frame_interval_s=interval_s)
    daemon = SimpleNamespace(imu=SimpleNamespace(), force=force)
    assert Daemon._stale_after(daemon, "force") == pytest.approx(stale_s)
    assert Daemon._stale_after(daemon, "imu") == STALE_S


# --- the raw-sample buffer and the recordings folder ----------------------------------------


def imu_block(t0: float, seconds: float = 1.0) -> ImuBlock:
    t = t0 + np.arange(0, seconds, 0.01)
    return ImuBlock(t, np.tile([0.0, 0.0, 1.0], (len(t), 1)), np.zeros((len(t), 3)))


def test_between_sessions_only_a_short_lead_is_kept():
    recorder = Recorder(lead_s=30.0)
    for second in range(600):  # ten idle minutes
        recorder.add_imu(imu_block(float(second)))
    kept = sum(len(b) for b in recorder.imu)
    assert kept <= 32 * 100  # about the last 30 s, not 10 minutes


def test_a_session_keeps_everything_from_a_whole_second_before_it(tmp_path):
    recorder = Recorder(lead_s=30.0)
    for second in range(40):
        recorder.add_imu(imu_block(second + 0.37))
        recorder.add_force(ForceBlock(second + 0.37 + np.arange(0, 1, 1 / 80), np.full(80, 5.0)))
    start = recorder.start()
    assert start == float(int(start)) and start <= recorder.imu[0].t[0]
    recorder.attach(RecordingSpool(tmp_path / "recordings", session_id=1, t_from=start, meta={"session_id": 1},
                                   reserve=SpaceReserve(tmp_path, 50 * MB, measure=lambda _: 10**12)))
    for second in range(40, 100):
        recorder.add_imu(imu_block(second + 0.37))
    spool = recorder.detach()
    assert not recorder.in_session
    spool.finish({"outcome": "completed"})
    spool.join(timeout=30)
    assert spool.path == tmp_path / "recordings" / "session-00001"
    assert (spool.path / "imu.csv.gz").exists() and (spool.path / "force.csv.gz").exists()
    rec = read_recording(spool.path)
    assert 5.0 < rec.imu_t[0] + start <= 10.37  # the last 30 s before the session, not all 40
    assert rec.imu_t[-1] + start == pytest.approx(100.36)  # and everything up to its end
    assert rec.meta["outcome"] == "completed" and rec.cut_short is None


def test_old_recordings_are_pruned_by_age_and_size(tmp_path):
    folder = tmp_path / "recordings"
    for n, age_days in ((1, 40), (2, 10), (3, 0)):
        session = folder / f"session-{n:05d}"
        session.mkdir(parents=True)
        (session / "imu.csv.gz").write_bytes(b"x" * 400_000)
        stamp = time.time() - age_days * 86400
        os.utime(session, (stamp, stamp))
    removed = prune_recordings(folder, max_days=30, max_mb=1)
    assert [p.name for p in removed] == ["session-00001"]  # too old; the rest fits in 1 MB
    removed = prune_recordings(folder, max_days=30, max_mb=0.5)
    assert [p.name for p in removed] == ["session-00002"]  # too big now; the newest is always kept
    assert (folder / "session-00003").exists()


def test_pruning_leaves_the_spools_alone(tmp_path):
    folder = tmp_path / "recordings"
    for name, age_days in ((".partial-0a1b2c", 40), ("session-00001", 40), ("session-00002", 0)):
        (folder / name).mkdir(parents=True)
        (folder / name / "imu.csv.gz").write_bytes(b"x" * 400_000)
        stamp = time.time() - age_days * 86400
        os.utime(folder / name, (stamp, stamp))
    assert [p.name for p in prune_recordings(folder, max_days=30, max_mb=1)] == ["session-00001"]
    assert (folder / ".partial-0a1b2c").exists()  # being written, or waiting for recovery


def test_a_disk_near_full_stops_the_recording_with_one_warning_and_the_log_goes_on(tmp_path, monkeypatch, caplog,
                                                                                    capsys, routine, session1):
    checks = []

    def room_for_one_write(path) -> int:
        checks.append(path)
        return 10**12 if len(checks) == 1 else 50 * MB - 1  # then under the reserve, for good

    monkeypatch.setattr(diskspace, "free_bytes", room_for_one_write)
    monkeypatch.setattr(demo, "stop_on_signals", lambda daemon: None)  # pytest keeps its own Ctrl-C
    config = load_config().replace(storage={"data_dir": str(tmp_path)})
    caplog.set_level(logging.WARNING)
    result, _ = demo.run_demo(config, routine, session1, data_dir=tmp_path, speed=40.0)

    assert result.outcome == "completed"
    assert len(checks) == 2  # the write it allowed, the one it refused; none once the recording stopped
    warnings = [r for r in caplog.records if r.name == "kneeroll_device.diskspace"]
    assert len(warnings) == 1 and "49.9 MB free, under the 50 MB kept for the session log" in warnings[0].getMessage()
    rec = read_recording(result.recording)  # what was kept is whole
    assert rec.cut_short == result.recording_cut_short and "kept for the session log" in rec.cut_short["reason"]
    assert rec.duration < session1.duration / 2
    db = sqlite3.connect(tmp_path / "kneeroll.db")
    row = db.execute("SELECT outcome, steps_done, recording FROM sessions WHERE id=?", (result.session_id,)).fetchone()
    gaps = [json.loads(detail) for (detail,) in db.execute(
        "SELECT detail FROM events WHERE session_id=? AND kind='gap'", (result.session_id,))]
    db.close()
    assert row == ("completed", 8, result.recording)  # the log has the whole session
    assert [g for g in gaps if g["source"] == "recording"] == [{"source": "recording", "reason": rec.cut_short["reason"]}]
    assert main(["replay", result.recording]) == 0
    assert "the recording was cut short at" in capsys.readouterr().out


# --- recovery after READY, and a stop that keeps within systemd's time ----------------------------


class Notes:
    """A systemd bridge that notes what it is told, with the recovery's calls in the same list."""

    def __init__(self):
        self.said: list[tuple[str, str]] = []

    def ready(self, text: str) -> None:
        self.said.append(("ready", threading.current_thread().name))

    def status(self, text: str) -> None:
        pass

    stopping = tick = clear_degraded = lambda self, *args: None
    samples_arrived = declare_degraded = status


def test_recordings_left_behind_are_recovered_on_a_thread_once_systemd_was_told_ready(tmp_path, monkeypatch,
                                                                                      routine, session1):
    notes = Notes()
    recover = daemon_module.recover_spools

    def noted_recovery(*args, **kwargs):
        notes.said.append(("recover", threading.current_thread().name))
        return recover(*args, **kwargs)

    monkeypatch.setattr(daemon_module, "recover_spools", noted_recovery)
    monkeypatch.setattr(demo, "systemd_bridge", lambda clock: notes)
    monkeypatch.setattr(demo, "stop_on_signals", lambda daemon: None)
    config = load_config().replace(storage={"data_dir": str(tmp_path)})
    result, _ = demo.run_demo(config, routine, session1, data_dir=tmp_path, speed=40.0)
    assert result.outcome == "completed"
    assert notes.said == [("ready", "MainThread"), ("recover", "spool-recovery")]


class StuckWriter:
    """A writer thread that never finishes: each join waits out its timeout on a clock of the test's."""

    def __init__(self, clock: list[float], session_id: int | None = None):
        self.clock, self.session_id, self.waited, self.abandoned = clock, session_id, [], False

    def join(self, timeout: float) -> None:
        self.waited.append(timeout)
        self.clock[0] += timeout

    def is_alive(self) -> bool:
        return True

    def abandon(self) -> None:
        self.abandoned = True


def test_the_writers_share_one_deadline_at_stop_and_those_not_done_leave_their_spools(caplog):
    clock = [0.0]
    writers = [StuckWriter(clock, session_id) for session_id in (3, 4, 5)]
    recovery = StuckWriter(clock)
    wait_for_writers(writers, recovery, WRITERS_GRACE_S, monotonic=lambda: clock[0])
    assert clock[0] == WRITERS_GRACE_S <= 5.0  # not 30 s a writer: systemd kills at 10 s
    assert [w.waited for w in writers] == [[WRITERS_GRACE_S], [0.0], [0.0]] and recovery.waited == [0.0]
    assert all(w.abandoned for w in writers)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 4 and all("next start" in text for text in warned)
    assert [f"session {n} was not finished" in text for n, text in zip((3, 4, 5), warned)] == [True] * 3


def test_a_recovery_still_at_work_at_the_deadline_is_told_to_stop_and_not_before():
    clock, told = [0.0], []
    recovery = StuckWriter(clock)
    wait_for_writers([], recovery, WRITERS_GRACE_S, monotonic=lambda: clock[0],
                     stop_recovery=lambda: told.append(clock[0]))
    # the run ended by itself: the recovery had the whole grace to finish, then was told to stop
    assert told == [WRITERS_GRACE_S] and recovery.waited == [WRITERS_GRACE_S, RECOVERY_STOP_S]


def test_a_writer_abandoned_at_stop_leaves_a_spool_the_next_start_recovers(tmp_path, monkeypatch):
    stuck, released = threading.Event(), threading.Event()
    append = SpoolFiles.append

    def slow_disk(files, chunk):
        stuck.set()
        released.wait(timeout=60)
        append(files, chunk)

    monkeypatch.setattr(SpoolFiles, "append", slow_disk)
    spool = RecordingSpool(tmp_path / "recordings", session_id=9, t_from=0.0, meta={"session_id": 9},
                           reserve=SpaceReserve(tmp_path, 50 * MB, measure=lambda _: 10**12), flush_span_s=0.5)
    spool.add_imu(imu_block(0.0))
    spool.add_imu(imu_block(1.0))
    spool.finish({"outcome": "completed"})
    assert stuck.wait(timeout=60)
    spool.abandon()  # the stop's deadline passed while the disk was busy
    released.set()
    spool.join(timeout=60)
    assert not spool.is_alive() and spool.path is None
    (left,) = (tmp_path / "recordings").iterdir()
    assert left.name.startswith(SPOOL_PREFIX)
    (recovered,) = recover_spools(tmp_path / "recordings")
    assert read_recording(recovered.path).imu_t[-1] > 0
