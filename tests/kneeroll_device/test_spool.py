"""Recordings written as the session runs: whole gzip members, the reserve kept for the log,
and what a writer that died leaves behind made into a whole recording at the next start."""

from __future__ import annotations

import errno
import gzip
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from kneeroll_device.daemon import prune_recordings
from kneeroll_device.diskspace import MB, SpaceReserve
from kneeroll_device.recording import read_recording
from kneeroll_device.replay import replay_recording
from kneeroll_device.samples import ForceBlock, ImuBlock
from kneeroll_device.spool import (FORCE_FILE, IMU_FILE, MAX_WAITING, SPOOL_PREFIX, RecordingSpool, SpoolFiles,
                                   lock_folder)
from kneeroll_device import spool_recovery
from kneeroll_device.spool_recovery import recover_spools, whole_members_end
from kneeroll_device.store import DB_NAME, SessionLog, writer_tag

from simhelpers import sampled

T_FROM = 100.0
RESERVE = 50 * MB


def imu_block(t0: float, seconds: float = 1.0) -> ImuBlock:
    t = np.round(t0 + np.arange(0, seconds, 0.01), 4)
    return ImuBlock(t, np.column_stack([np.sin(t), np.cos(t), np.ones_like(t)]), np.column_stack([t, -t, 2 * t]))


def force_block(t0: float, seconds: float = 1.0) -> ForceBlock:
    t = np.round(t0 + np.arange(0, seconds, 0.0125), 4)
    return ForceBlock(t, 50 + 10 * np.sin(t))


def spool_files(recordings: Path, session_id: int | None = 1, writer: str | None = None) -> SpoolFiles:
    meta = {"session_id": session_id, "writer": writer or writer_tag(), "opened_at": "2026-03-01T07:30:00+00:00",
            "t_from": T_FROM, "meta": {"session_id": session_id, "routine": "runners-knee"}}
    return SpoolFiles.create(recordings, meta, T_FROM)


def write_seconds(files: SpoolFiles, seconds: range) -> None:
    """One chunk a second, as a writer that flushes every second would leave them."""
    for s in seconds:
        files.append(files.encode([imu_block(T_FROM + s)], [force_block(T_FROM + s)], []))


def plenty(_path) -> int:
    return 10**12


def finished(spool: RecordingSpool) -> tuple[Path | None, dict]:
    done = []
    spool.finish({"outcome": "completed"}, on_done=lambda path, meta: done.append((path, meta)))
    spool.join(timeout=60)
    assert not spool.is_alive() and len(done) == 1
    return done[0]


# --- the files ---------------------------------------------------------------------------------


def test_a_spool_is_a_readable_recording_after_every_write(tmp_path):
    files = spool_files(tmp_path / "recordings")
    for second in range(3):
        write_seconds(files, range(second, second + 1))
        rec = read_recording(files.folder)  # at any moment: what a crash would leave
        assert rec.imu_t[-1] == pytest.approx(second + 0.99) and rec.force_t[-1] == pytest.approx(second + 0.9875)
    data = (files.folder / IMU_FILE).read_bytes()
    assert data.count(b"\x1f\x8b\x08") >= 3  # one gzip member a write
    assert gzip.decompress(data).decode().count("t,ax,ay,az,gx,gy,gz") == 1  # the header once, in the first
    files.close()


def test_samples_no_reader_would_take_are_left_out_and_counted(tmp_path):
    files = spool_files(tmp_path / "recordings")
    block = imu_block(T_FROM)
    accel = block.accel.copy()
    accel[5] = np.nan
    t = block.t.copy()
    t[10] = t[9]  # the same printed time twice
    files.append(files.encode([ImuBlock(t, accel, block.gyro), imu_block(T_FROM + 0.5)], [], []))  # and back in time
    rec = read_recording(files.folder)
    assert np.all(np.diff(rec.imu_t) > 0) and np.all(np.isfinite(rec.accel))
    assert files.left_out == 2 + 50
    files.close()


def test_each_write_flushes_the_data_of_the_files_it_grew_and_controls_only_with_a_press(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(("fdatasync", os.readlink(f"/proc/self/fd/{fd}"))))
    files = spool_files(tmp_path / "recordings")
    synced.clear()
    write_seconds(files, range(2))
    assert [(how, Path(path).name) for how, path in synced] == [("fdatasync", IMU_FILE), ("fdatasync", FORCE_FILE)] * 2
    synced.clear()
    files.append(files.encode([imu_block(T_FROM + 2)], [], [(T_FROM + 2.5, "press")]))
    assert [(how, Path(path).name) for how, path in synced] == [("fdatasync", IMU_FILE), ("fdatasync", "controls.csv")]
    files.close()


def test_a_recording_that_cannot_start_says_how_to_fix_it(tmp_path, caplog):
    (tmp_path / "recordings").write_text("not a folder")
    spool = RecordingSpool(tmp_path / "recordings", session_id=6, t_from=T_FROM, meta={},
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=plenty))
    spool.add_imu(imu_block(T_FROM))
    path, meta = finished(spool)
    assert path is None and "could not start" in meta["cut_short"]["reason"]
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "cannot start the recording of session 6" in message and "may write there" in message
    assert "keep_recordings = false" in message


@pytest.fixture
def eastern_time(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")  # five hours behind UTC all year
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_an_orphan_is_named_in_local_time_like_every_recording(tmp_path, eastern_time):
    files = spool_files(tmp_path / "recordings", session_id=None)  # opened at 07:30 UTC
    write_seconds(files, range(1))
    files.close()
    (recovered,) = recover_spools(tmp_path / "recordings")
    assert recovered.path.name == "orphan-20260301T023000"


# --- the reserve kept for the log -----------------------------------------------------------------


class FillingDisk:
    """Free space that is plenty for the first ``room`` checks, then under the reserve."""

    def __init__(self, room: int):
        self.room, self.calls = room, 0

    def __call__(self, _path) -> int:
        self.calls += 1
        return 10**12 if self.calls <= self.room else RESERVE - 1


def test_recordings_stop_whole_at_the_reserve_with_one_warning(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cuts = []
    spool = RecordingSpool(tmp_path / "recordings", session_id=7, t_from=T_FROM, meta={"session_id": 7},
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=FillingDisk(room=3)),
                           flush_every_s=float("inf"), flush_span_s=1.5, on_cut_short=cuts.append)
    for second in range(20):  # a chunk handed over every second block: 0-1 s, 2-3 s, ...
        spool.add_imu(imu_block(T_FROM + second))
    path, meta = finished(spool)
    rec = read_recording(path)
    assert path.name == "session-00007"
    assert rec.imu_t[-1] == pytest.approx(5.99)  # three chunks of two seconds
    assert rec.cut_short == meta["cut_short"] == {"at_s": 6.0, "reason": "free space fell under the 50 MB kept for "
                                                  "the session log"}
    assert cuts == [rec.cut_short]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "recordings stop" in warnings[0].getMessage()


def test_a_reserve_already_reached_keeps_no_recording_and_no_spool(tmp_path):
    spool = RecordingSpool(tmp_path / "recordings", session_id=1, t_from=T_FROM, meta={},
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=FillingDisk(room=0)), flush_span_s=1.5)
    for second in range(5):
        spool.add_imu(imu_block(T_FROM + second))
    path, meta = finished(spool)
    assert path is None and meta["cut_short"]["reason"].startswith("free space")
    assert list((tmp_path / "recordings").iterdir()) == []


def test_the_warning_comes_again_only_after_space_came_back(tmp_path, caplog):
    free = iter([RESERVE - 1] * 3 + [10**12] + [RESERVE - 1] * 2)
    reserve = SpaceReserve(tmp_path, RESERVE, measure=lambda _: next(free))
    assert [reserve.allows(1000) for _ in range(6)] == [False, False, False, True, False, False]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "lower [storage] recordings_max_mb, or lower [storage] recordings_reserve_mb" in warnings[0]


def test_a_recording_past_its_longest_is_cut_there(tmp_path):
    spool = RecordingSpool(tmp_path / "recordings", session_id=2, t_from=T_FROM, meta={}, max_s=3.0,
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=plenty), flush_span_s=1.5)
    for second in range(6):
        spool.add_imu(imu_block(T_FROM + second))
    path, meta = finished(spool)
    rec = read_recording(path)
    assert rec.imu_t[-1] <= 3.0 and "limit of" in rec.cut_short["reason"]


def test_a_session_cut_short_by_the_reserve_replays(tmp_path, routine, session1):
    imu_t, accel, gyro, force_t, force = sampled(session1)
    spool = RecordingSpool(tmp_path / "recordings", session_id=3, t_from=0.0, meta={},
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=FillingDisk(room=4)),
                           flush_every_s=float("inf"), flush_span_s=30.0)
    for start in np.arange(0.0, session1.duration, 1.0):
        i, f = (imu_t >= start) & (imu_t < start + 1), (force_t >= start) & (force_t < start + 1)
        spool.add_force(ForceBlock(force_t[f], force[f]))
        spool.add_imu(ImuBlock(imu_t[i], accel[i], gyro[i]))
    path, _ = finished(spool)
    rec = read_recording(path)
    assert 60 < rec.duration < session1.duration / 2 and rec.cut_short is not None
    result = replay_recording(rec, routine)
    assert result.engine.outcome != "completed"  # what it holds, not more


# --- what a writer that died leaves behind ----------------------------------------------------------


def test_a_spool_left_behind_becomes_its_sessions_recording_cut_short(tmp_path):
    with SessionLog(tmp_path) as log:
        session_id = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
        files = spool_files(tmp_path / "recordings", session_id)
        write_seconds(files, range(4))
        files.close()  # the writer is gone: its lock with it
        linked = []
        recovered = recover_spools(tmp_path / "recordings", log.path, lambda sid, path: linked.append((sid, path)))
    assert [r.session_id for r in recovered] == [session_id]
    path = recovered[0].path
    assert path == tmp_path / "recordings" / f"session-{session_id:05d}" and linked == [(session_id, str(path))]
    rec = read_recording(path)
    assert rec.imu_t[-1] == pytest.approx(3.99) and rec.cut_short["at_s"] == pytest.approx(3.99)
    assert "crash" in rec.cut_short["reason"] and rec.meta["routine"] == "runners-knee"
    assert sorted(p.name for p in path.iterdir()) == ["force.csv.gz", "imu.csv.gz", "meta.json"]


def test_a_finish_stopped_before_its_rename_keeps_its_meta_and_its_session(tmp_path, monkeypatch):
    rename = os.rename

    def no_rename_into_place(src, dst, *args, **kwargs):  # the disk failed, or the power went, just there
        if Path(dst).name.startswith("session-"):
            raise OSError(errno.EIO, "Input/output error")
        return rename(src, dst, *args, **kwargs)

    with SessionLog(tmp_path) as log:
        session_id = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
        spool = RecordingSpool(tmp_path / "recordings", session_id=session_id, t_from=T_FROM,
                               meta={"session_id": session_id, "session_t0": 30.0, "routine": "runners-knee"},
                               reserve=SpaceReserve(tmp_path, RESERVE, measure=plenty), flush_span_s=1.5)
        for second in range(4):
            spool.add_imu(imu_block(T_FROM + second))
        spool.add_control(T_FROM + 2.5, "press")
        monkeypatch.setattr(os, "rename", no_rename_into_place)
        path, _ = finished(spool)
        monkeypatch.setattr(os, "rename", rename)
        assert path is None
        linked = []
        (recovered,) = recover_spools(tmp_path / "recordings", log.path, lambda sid, path: linked.append((sid, path)))
    assert recovered.session_id == session_id and linked == [(session_id, str(recovered.path))]
    assert recovered.path.name == f"session-{session_id:05d}" and recovered.cut_short is None
    rec = read_recording(recovered.path)
    assert rec.meta["controls"] == [[2.5, "press"]] and rec.meta["session_t0"] == 30.0
    assert rec.meta["routine"] == "runners-knee" and rec.meta["outcome"] == "completed"
    assert rec.cut_short is None and rec.meta["recovered"]["spool"].startswith(SPOOL_PREFIX)
    assert rec.imu_t[-1] == pytest.approx(3.99)
    assert sorted(p.name for p in recovered.path.iterdir()) == ["imu.csv.gz", "meta.json"]


def test_a_member_cut_short_by_the_crash_is_dropped_and_the_rest_kept(tmp_path):
    files = spool_files(tmp_path / "recordings", session_id=None)
    write_seconds(files, range(3))
    whole = (files.folder / IMU_FILE).stat().st_size
    last = files.encode([imu_block(T_FROM + 3)], [force_block(T_FROM + 3)], [])
    with open(files.folder / IMU_FILE, "ab") as handle:  # the crash came in the middle of the next write
        handle.write(last.imu[: len(last.imu) // 2])
    with open(files.folder / FORCE_FILE, "ab") as handle:
        handle.write(last.force[:10])
    files.close()
    assert whole_members_end(files.folder / IMU_FILE) == whole
    (recovered,) = recover_spools(tmp_path / "recordings")
    opened = datetime(2026, 3, 1, 7, 30, tzinfo=timezone.utc).astimezone()
    assert recovered.session_id is None and recovered.path.name == f"orphan-{opened:%Y%m%dT%H%M%S}"
    rec = read_recording(recovered.path)
    assert rec.imu_t[-1] == pytest.approx(2.99) and rec.force_t[-1] == pytest.approx(2.9875)
    assert rec.meta["outcome"] == "interrupted"


def test_a_first_force_write_cut_short_leaves_a_recording_of_the_imu_alone(tmp_path):
    # killed after the first IMU member was on the disk and while the first force member was on its way
    files = spool_files(tmp_path / "recordings", session_id=None)
    first = files.encode([imu_block(T_FROM)], [force_block(T_FROM)], [])
    files.append(files.encode([imu_block(T_FROM)], [], []))
    (files.folder / FORCE_FILE).write_bytes(first.force[: len(first.force) // 2])
    files.close()
    (recovered,) = recover_spools(tmp_path / "recordings")
    rec = read_recording(recovered.path)
    assert rec.imu_t[-1] == pytest.approx(0.99) and rec.force_t is None
    assert not (recovered.path / FORCE_FILE).exists() and rec.meta["outcome"] == "interrupted"


def test_a_spool_being_written_is_left_alone(tmp_path):
    files = spool_files(tmp_path / "recordings")
    write_seconds(files, range(2))
    assert recover_spools(tmp_path / "recordings") == []
    assert files.folder.exists()
    files.close()


def test_a_spool_of_another_writers_session_is_kept_as_an_orphan(tmp_path):
    with SessionLog(tmp_path) as log:
        session_id = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
        files = spool_files(tmp_path / "recordings", session_id, writer="elsewhere/boot/1")  # a log started afresh
        write_seconds(files, range(2))
        files.close()
        (recovered,) = recover_spools(tmp_path / "recordings", log.path, lambda *_: pytest.fail("linked"))
    assert recovered.session_id is None and recovered.path.name.startswith("orphan-")
    assert len(read_recording(recovered.path).imu_t) == 200


def test_a_spool_with_no_whole_samples_is_removed(tmp_path):
    files = spool_files(tmp_path / "recordings")
    chunk = files.encode([imu_block(T_FROM)], [], [])
    (files.folder / IMU_FILE).write_bytes(chunk.imu[:-5])  # killed while the first write was on its way
    files.close()
    assert recover_spools(tmp_path / "recordings") == []
    assert list((tmp_path / "recordings").iterdir()) == []


def spool_of(recordings: Path, minutes: int) -> Path:
    """A spool of that many minutes, one member every 5 s (written without the flushes: only speed differs)."""
    files = spool_files(recordings, session_id=None)
    with open(files.folder / IMU_FILE, "ab") as imu, open(files.folder / FORCE_FILE, "ab") as force:
        for start in range(0, minutes * 60, 5):
            chunk = files.encode([imu_block(T_FROM + start, 5.0)], [force_block(T_FROM + start, 5.0)], [])
            imu.write(chunk.imu)
            force.write(chunk.force)
            files.last["imu"], files.last["force"], files.with_gyro = chunk.imu_last, chunk.force_last, True
    files.close()
    return files.folder


def recovery_peak_bytes(recordings: Path) -> int:
    tracemalloc.start()
    try:
        assert len(recover_spools(recordings)) == 1
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_recovery_checks_a_long_spool_in_memory_that_does_not_grow_with_it(tmp_path):
    spool_of(tmp_path / "short", minutes=4)
    spool_of(tmp_path / "long", minutes=16)
    short, long = recovery_peak_bytes(tmp_path / "short"), recovery_peak_bytes(tmp_path / "long")
    assert long < 1.5 * short  # loading it whole took four times as much
    (recording,) = (tmp_path / "long").iterdir()
    rec = read_recording(recording)
    assert len(rec.imu_t) == 16 * 60 * 100 and rec.cut_short["at_s"] == pytest.approx(16 * 60 - 0.01)


def broken_member(text: bytes) -> bytes:
    """A whole gzip member (its checksum right) whose lines no reader takes."""
    return gzip.compress(text)


@pytest.mark.parametrize("bad, why", [
    (b"4.0000,0.1,0.2,abc,0,0,0\n", "'abc' is not a number"),
    (b"4.0000,0.1,0.2,0.3,0,0\n", "has 6 values"),
    (b"3.5000,0.1,0.2,0.3,0,0,0\n", "time does not increase"),
    (b"4.0000,0.1,0.2,nan,0,0,0\n", "not a finite number"),
])
def test_a_spool_the_reader_refuses_is_set_aside_whole_never_deleted(tmp_path, caplog, bad, why):
    files = spool_files(tmp_path / "recordings", session_id=None)
    write_seconds(files, range(4))
    with open(files.folder / IMU_FILE, "ab") as handle:
        handle.write(broken_member(bad))
    before = {p.name: p.read_bytes() for p in files.folder.iterdir()}
    files.close()
    assert recover_spools(tmp_path / "recordings") == []
    (aside,) = (tmp_path / "recordings").iterdir()
    assert aside.name == "broken-" + files.folder.name[len(SPOOL_PREFIX):]
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == before  # every byte as it was
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert why in message and str(aside) in message and "delete the folder" in message
    assert recover_spools(tmp_path / "recordings") == []  # and left alone from then on
    assert aside.exists() and prune_recordings(tmp_path / "recordings", max_days=0, max_mb=0) == []


def test_a_recovery_the_disk_refused_lets_go_of_the_lock_and_is_tried_again(tmp_path, monkeypatch, caplog):
    files = spool_files(tmp_path / "recordings", session_id=None)
    write_seconds(files, range(2))
    files.close()
    rename = os.rename

    def disk_refuses(src, dst, *args, **kwargs):
        if Path(dst).name.startswith("orphan-"):
            raise OSError(errno.EROFS, "Read-only file system")
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", disk_refuses)
    assert recover_spools(tmp_path / "recordings") == []
    assert "Read-only file system" in caplog.text
    monkeypatch.setattr(os, "rename", rename)
    lock_fd = lock_folder(files.folder)  # nobody holds it any more: not even the recovery that failed
    assert lock_fd is not None
    os.close(lock_fd)
    (recovered,) = recover_spools(tmp_path / "recordings")  # the next start: made whole
    assert len(read_recording(recovered.path).imu_t) == 200


def busy_log(monkeypatch, times: int) -> list[int]:
    """The session log is busy (locked by its writer) for the first ``times`` reads."""
    reads = [0]
    read = spool_recovery._read_session

    def locked(*args):
        reads[0] += 1
        if reads[0] <= times:
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorname = "SQLITE_BUSY"  # (as SQLite names it)
            raise exc
        return read(*args)

    monkeypatch.setattr(spool_recovery, "_read_session", locked)
    monkeypatch.setattr(spool_recovery, "LOG_READ_WAIT_S", 0.0)
    return reads


def logged_spool_left(tmp_path: Path) -> tuple[int, SpoolFiles]:
    """A session in the log and the spool its writer left behind when it died."""
    with SessionLog(tmp_path) as log:
        session_id = log.start_session(leg="right", routine="runners-knee", source="run", steps_total=8)
        assert log.flush()
    files = spool_files(tmp_path / "recordings", session_id)
    write_seconds(files, range(2))
    files.close()
    return session_id, files


def test_a_log_busy_for_a_moment_is_read_again_and_the_spool_becomes_its_sessions_recording(tmp_path, monkeypatch):
    session_id, _ = logged_spool_left(tmp_path)
    reads = busy_log(monkeypatch, times=spool_recovery.LOG_READ_ATTEMPTS - 1)
    (recovered,) = recover_spools(tmp_path / "recordings", tmp_path / DB_NAME)
    assert recovered.session_id == session_id and reads[0] == spool_recovery.LOG_READ_ATTEMPTS


def test_a_log_that_stays_unreadable_leaves_the_spool_for_the_next_start_not_an_orphan(tmp_path, monkeypatch, caplog):
    session_id, files = logged_spool_left(tmp_path)
    busy_log(monkeypatch, times=spool_recovery.LOG_READ_ATTEMPTS)
    assert recover_spools(tmp_path / "recordings", tmp_path / DB_NAME) == []
    assert [p.name for p in (tmp_path / "recordings").iterdir()] == [files.folder.name]  # no orphan-...
    assert "database is locked" in caplog.text and "next start" in caplog.text
    monkeypatch.undo()
    (recovered,) = recover_spools(tmp_path / "recordings", tmp_path / DB_NAME)  # the next start
    assert recovered.session_id == session_id


def test_a_stop_asked_for_while_the_log_is_busy_leaves_the_spool_as_it_was(tmp_path, monkeypatch):
    session_id, files = logged_spool_left(tmp_path)
    reads = busy_log(monkeypatch, times=spool_recovery.LOG_READ_ATTEMPTS)
    assert recover_spools(tmp_path / "recordings", tmp_path / DB_NAME, stopping=lambda: reads[0] >= 1) == []
    assert reads[0] == 1  # not read again once the stop was asked for
    assert [p.name for p in (tmp_path / "recordings").iterdir()] == [files.folder.name]


def test_a_log_that_is_no_session_log_is_not_waited_for(tmp_path, monkeypatch):
    # (not busy: damaged for good) the spool becomes an orphan recording at once, as before
    session_id, files = logged_spool_left(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / (DB_NAME + suffix)).unlink(missing_ok=True)
    (recovered,) = recover_spools(tmp_path / "recordings", tmp_path / DB_NAME)
    assert recovered.session_id is None and recovered.path.name.startswith("orphan-")


def test_a_recovery_asked_to_stop_leaves_the_spool_for_the_next_start(tmp_path):
    spool_of(tmp_path / "recordings", minutes=8)  # more than one block to check
    asked = []

    def stopping() -> bool:
        asked.append(1)
        return len(asked) > 2  # the daemon stops while the IMU samples are being checked

    assert recover_spools(tmp_path / "recordings", stopping=stopping) == []
    (spool,) = (tmp_path / "recordings").iterdir()
    assert spool.name.startswith(SPOOL_PREFIX)
    (recovered,) = recover_spools(tmp_path / "recordings")
    assert len(read_recording(recovered.path).imu_t) == 8 * 60 * 100


WRITER = textwrap.dedent("""
    import sys
    sys.path[:0] = [sys.argv[2], sys.argv[3]]
    from pathlib import Path
    from test_spool import spool_files, write_seconds
    files = spool_files(Path(sys.argv[1]), session_id=None)
    for second in range(5):
        write_seconds(files, range(second, second + 1))
        print(second, flush=True)
    sys.stdin.read()  # held open, its lock held, until it is killed
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_with_sigkill_leaves_what_it_had_written(tmp_path):
    here = Path(__file__).resolve()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "recordings"), str(here.parent),
                               str(here.parents[1])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(here.parents[2])))
    try:
        lines = [writer.stdout.readline() for _ in range(5)]  # each line: one more second on the disk
        assert lines[-1].strip() == "4", lines
        (spool,) = [p for p in (tmp_path / "recordings").iterdir() if p.name.startswith(SPOOL_PREFIX)]
        assert recover_spools(tmp_path / "recordings") == []  # alive: its lock is held
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
        writer.wait()
    (recovered,) = recover_spools(tmp_path / "recordings")
    assert not spool.exists()
    rec = read_recording(recovered.path)
    expected = np.concatenate([imu_block(T_FROM + s).t for s in range(5)]) - T_FROM
    np.testing.assert_allclose(rec.imu_t, expected, atol=1e-9)
    np.testing.assert_allclose(rec.gyro[:, 0], expected + T_FROM, atol=1e-4)


def test_a_disk_that_does_not_keep_up_ends_the_recording_instead_of_filling_memory(tmp_path, monkeypatch):
    released = threading.Event()
    append = SpoolFiles.append

    def stuck_disk(files, chunk):
        released.wait(timeout=60)  # the first write hangs until the daemon's side has given up
        append(files, chunk)

    monkeypatch.setattr(SpoolFiles, "append", stuck_disk)
    spool = RecordingSpool(tmp_path / "recordings", session_id=4, t_from=T_FROM, meta={},
                           reserve=SpaceReserve(tmp_path, RESERVE, measure=plenty),
                           flush_every_s=float("inf"), flush_span_s=0.5)
    for second in range(MAX_WAITING + 10):  # a chunk a block
        spool.add_imu(imu_block(T_FROM + second))
    released.set()
    path, meta = finished(spool)
    rec = read_recording(path)
    assert "did not keep up" in rec.cut_short["reason"]
    assert np.all(np.diff(rec.imu_t) > 0) and rec.imu_t[-1] < rec.cut_short["at_s"] <= MAX_WAITING + 2
