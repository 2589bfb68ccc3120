"""Recording folders and lone IMU CSVs: round trips and clear errors."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from kneeroll_device.diskspace import MB, SpaceReserve
from kneeroll_device.errors import RecordingError
from kneeroll_device.pipeline.framing import forward_mask
from kneeroll_device.recorder import Recorder
from kneeroll_device.recording import on_time_grid, read_recording, write_recording_folder
from kneeroll_device.samples import ForceBlock, ImuBlock
from kneeroll_device.spool import RecordingSpool


def test_a_recording_round_trips_plain_and_gzipped(tmp_path):
    t = np.arange(0, 2, 0.01)
    accel = np.column_stack([np.sin(t), np.cos(t), np.ones_like(t)])
    gyro = np.zeros((len(t), 3))
    ft = np.arange(0, 2, 1 / 80)
    for gz in (False, True):
        folder = write_recording_folder(tmp_path / f"r{gz}", t, accel, gyro, ft, ft * 10, {"truth": {"x": 1}}, gzip=gz)
        rec = read_recording(folder)
        np.testing.assert_allclose(rec.accel, accel, atol=1e-6)
        np.testing.assert_allclose(rec.force, ft * 10, atol=1e-3)
        assert rec.truth == {"x": 1}


def test_a_lone_imu_csv_without_gyro(tmp_path):
    path = tmp_path / "phone.csv"
    path.write_text("t,ax,ay,az\n0.0,0,0,1\n0.01,0,0.1,1\n")
    rec = read_recording(path)
    assert rec.gyro is None and rec.force_t is None and len(rec.imu_t) == 2


@pytest.mark.parametrize("body, words", [
    ("t,ax,ay\n0,0,0\n", ["no column az"]),
    ("t,ax,ay,az\n0,0,0,1\n0.01,0,zero,1\n", ["malformed line", "line 3, column ay: 'zero' is not a number"]),
    ("t,ax,ay,az\n0,0,0,1\n0.01,0,0,1\n0.02,0,1\n", ["line 4 has 3 values, the header names 4 columns"]),
    ("t,ax,ay,az\n0,0,0,1\n0,0,0,1\n", ["line 3", "time does not increase"]),
    ("t,ax,ay,az,gx\n0,0,0,1,0\n", ["some of the gyro columns"]),
    ("t,ax,ay,az\n", ["no samples"]),
    ("t,ax,ay,az\n  \n\n", ["no samples"]),
    ("t,ax,ay,az\n0,0,nan,1\n", ["not a finite number"]),
])
def test_malformed_csvs_say_what_is_wrong(tmp_path, body, words):
    path = tmp_path / "imu.csv"
    path.write_text(body)
    with pytest.raises(RecordingError) as caught:
        read_recording(path)
    for word in words:
        assert word in str(caught.value)
    assert " row " not in str(caught.value)  # the file's own line numbers, in the project's words


def test_a_folder_without_imu_data_or_with_broken_meta(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match="no imu.csv"):
        read_recording(tmp_path / "empty")
    folder = tmp_path / "meta"
    folder.mkdir()
    (folder / "imu.csv").write_text("t,ax,ay,az\n0,0,0,1\n")
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(RecordingError, match="meta.json"):
        read_recording(folder)


@pytest.mark.parametrize("damage", ["truncated", "bits flipped"])
def test_a_damaged_gzip_is_a_recording_error(tmp_path, damage):
    folder = tmp_path / "gz"
    folder.mkdir()
    body = ("t,ax,ay,az\n" + "".join(f"{i * 0.01:.2f},0.{i % 7},0.{i % 5},1\n" for i in range(5000))).encode()
    packed = bytearray(gzip.compress(body))
    if damage == "truncated":
        packed = packed[:-8]
    else:
        for at in (200, 400, 600):
            packed[at] ^= 0xFF
    (folder / "imu.csv.gz").write_bytes(bytes(packed))
    with pytest.raises(RecordingError, match="cannot be read"):
        read_recording(folder)


def test_samples_closer_than_the_written_resolution_still_make_a_readable_file(tmp_path):
    # a force link re-anchoring its clock can put a sample 30 microseconds after the last
    t = np.array([0.0, 0.0125, 0.02503, 0.025, 0.0375])
    imu_t = np.arange(0, 0.05, 0.01)
    folder = write_recording_folder(tmp_path / "r", imu_t, np.zeros((5, 3)), None, t, np.arange(5.0), {}, gzip=True)
    rec = read_recording(folder)
    assert np.all(np.diff(rec.force_t) > 0) and rec.meta["samples_left_out"] == 1


def test_the_daemon_records_exactly_the_sample_times_its_pipeline_used(tmp_path):
    recorder = Recorder()
    recorder.attach(RecordingSpool(tmp_path / "recordings", session_id=1, t_from=1000.0, meta={},
                                   reserve=SpaceReserve(tmp_path, 50 * MB, measure=lambda _: 10**12)))
    used = []
    # two blocks from a link whose clock mapping stepped back by a hair between them
    blocks = [np.array([1000.0, 1000.0125, 1000.02500004]), np.array([1000.02502, 1000.0250001, 1000.0375])]
    for raw in blocks:
        block = ForceBlock(on_time_grid(raw), np.ones(len(raw)))
        recorder.add_force(block)
        recorder.add_imu(ImuBlock(block.t, np.zeros((len(raw), 3)), None))
        last = used[-1] if used else -np.inf
        used.extend(block.t[forward_mask(block.t, last)])
    spool = recorder.detach()
    spool.finish({})
    spool.join(timeout=30)
    rec = read_recording(spool.path)
    np.testing.assert_allclose(rec.force_t, np.array(used) - 1000.0, atol=1e-9)
    assert "samples_left_out" not in rec.meta


def test_a_write_that_fails_half_way_leaves_no_file_cut_short(tmp_path, monkeypatch):
    t = np.arange(0, 2, 0.01)
    folder = tmp_path / "rec"
    real_fsync = os.fsync
    calls = []

    def fsync_then_fail(fd):
        calls.append(fd)
        if len(calls) == 2:  # the disk fills while force.csv.gz is written
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_then_fail)
    with pytest.raises(OSError):
        write_recording_folder(folder, t, np.zeros((len(t), 3)), None, t, t * 10, {}, gzip=True)
    assert sorted(p.name for p in folder.iterdir()) == ["imu.csv.gz"]  # whole, and nothing else
    assert len(read_recording(folder).imu_t) == len(t)


def test_a_bad_line_before_a_cut_off_gzip_says_the_file_cannot_be_read(tmp_path):
    # numpy stops at the bad line; reading the file again to say where finds it cut off
    data = gzip.compress(b"t,ax,ay,az\n0,0,x,1\n" + b"0.01,0,0,1\n" * 5000)
    path = tmp_path / "imu.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="cannot be read"):
        read_recording(path)
