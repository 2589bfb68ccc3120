"""IMU acquisition over the emulated bus: detection, streaming, timestamps, faults, calibration.

No test sleeps: the clock is a ManualClock that the test (and the driver's backoff)
advances. The emulators' time-code motion lets each delivered sample say when it was
really taken, so timestamps and lost counts are checked against the truth.
"""

import errno
import json
import logging
import math
import os

import numpy as np
import pytest

from kneeroll_device.clock import ManualClock
from kneeroll_device.errors import CalibrationError, ImuError
from kneeroll_device.samples import ImuBlock
from kneeroll_device.sensors import bus as bus_module
from kneeroll_device.sensors.bus import open_bus, read_burst
from kneeroll_device.sensors.calibration import ImuCalibration, calibrate_gyro
from kneeroll_device.sensors.imu import open_imu
from kneeroll_device.sensors.timeline import SampleTimeline
from kneeroll_device.sim.imu_emulator import (
    FakeSMBus,
    Lsm6dsoxEmulator,
    Mpu6050Emulator,
    decode_time_code,
    still_motion,
    time_code_motion,
)

CHIPS = {"mpu6050": (0x68, 0x68), "lsm6dsox": (0x6C, 0x6A), "lsm6ds3trc": (0x6A, 0x6A)}


def make_bus(chip="mpu6050", *, motion=None, error_pct=0.0, who=None, address=None, world_t0=0.0, clock=None):
    clock = clock or ManualClock()
    default_who, default_address = CHIPS[chip]
    motion = motion or time_code_motion()
    emulator = Mpu6050Emulator if chip == "mpu6050" else Lsm6dsoxEmulator
    device = emulator(motion, clock=clock, world_t0=world_t0, clock_error_pct=error_pct, who_am_i=who or default_who)
    bus = FakeSMBus(1, clock=clock)
    bus.attach(address or default_address, device)
    return clock, bus, device


def poll(imu, clock, seconds, every=0.04, jitter=0.02, seed=0):
    rng = np.random.default_rng(seed)
    blocks = []
    end = clock() + seconds
    while clock() < end:
        clock.advance(every + rng.uniform(0.0, jitter))
        blocks.append(imu.read())
    return blocks


def joined(blocks):
    t = np.concatenate([b.t for b in blocks])
    accel = np.concatenate([b.accel for b in blocks])
    gyro = np.concatenate([b.gyro for b in blocks])
    gaps = [g for b in blocks for g in b.gaps]
    return t, accel, gyro, gaps


def true_tick(t, gyro, rate):
    """Index of the sensor tick each sample came from, decoded from the time-code motion."""
    world = decode_time_code(gyro[:, 0], t)
    return np.rint(world * rate).astype(int), world


def assert_gravity(accel, imu, gravity=(0.0, 0.0, 1.0)):
    """Every sample reads the true gravity to within one count (1 g is no whole count on the LSM6)."""
    np.testing.assert_allclose(accel, np.tile(gravity, (len(accel), 1)), rtol=0, atol=1 / imu._driver.accel_counts_per_g)


def assert_one_gap_with_true_count(blocks, rate):
    """Samples are consecutive sensor ticks except at one jump, whose size the single GapEvent reports."""
    t, _, gyro, gaps = joined(blocks)
    ticks, _ = true_tick(t, gyro, rate)
    steps = np.diff(ticks)
    jumps = np.flatnonzero(steps != 1)
    assert len(gaps) == 1 and len(jumps) == 1, (gaps, steps[jumps])
    assert gaps[0].source == "imu"
    assert gaps[0].samples_lost == steps[jumps[0]] - 1
    return gaps[0]


# --- detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chip, address, name, rate",
    [
        ("mpu6050", 0x68, "MPU-6050", 100.0),
        ("mpu6050", 0x69, "MPU-6050", 100.0),
        ("lsm6dsox", 0x6A, "LSM6DSOX", 104.0),
        ("lsm6dsox", 0x6B, "LSM6DSOX", 104.0),
        ("lsm6ds3trc", 0x6A, "LSM6DS3TR-C", 104.0),
    ],
)
def test_detects_each_chip_by_who_am_i(chip, address, name, rate):
    clock, bus, _ = make_bus(chip, address=address)
    with open_imu(bus, clock=clock) as imu:
        assert (imu.chip, imu.chip_name, imu.address, imu.rate_hz) == (chip, name, address, rate)
        assert imu.requested_rate_hz == 100
        assert (imu.accel_range_g, imu.gyro_range_dps) == (4, 500)
        clock.advance(0.5)
        assert len(imu.read()) > 40


@pytest.mark.parametrize("who, name", [(0x70, "MPU-6500"), (0x72, "0x72"), (0x98, "0x98")])
def test_clones_are_named_in_a_warning_and_used(who, name, caplog):
    clock, bus, _ = make_bus("mpu6050", who=who)
    with caplog.at_level(logging.WARNING):
        imu = open_imu(bus, clock=clock)
    assert f"0x{who:02X}" in caplog.text and name in caplog.text
    assert imu.chip == "mpu6050" and imu.who_am_i == who
    clock.advance(0.3)
    assert len(imu.read()) == 30


def test_unknown_who_am_i_is_refused_unless_the_chip_is_configured(caplog):
    clock, bus, _ = make_bus("mpu6050", who=0x11)
    with pytest.raises(ImuError) as info:
        open_imu(bus, clock=clock)
    assert "WHO_AM_I 0x11" in info.value.message
    assert 'chip = "mpu6050"' in info.value.fix
    with caplog.at_level(logging.WARNING):
        imu = open_imu(bus, clock=clock, chip="mpu6050")
    assert "0x11" in caplog.text and imu.chip == "mpu6050"


def test_absent_imu_is_one_error_naming_bus_addresses_and_fix():
    bus = FakeSMBus(1, clock=ManualClock())
    with pytest.raises(ImuError) as info:
        open_imu(bus, clock=ManualClock())
    message = info.value.message
    assert "I2C bus 1 (/dev/i2c-1)" in message
    for address in ("0x68", "0x69", "0x6A", "0x6B"):
        assert f"{address}: no answer" in message
    assert "i2cdetect -y 1" in info.value.fix and "SDA" in info.value.fix


def test_configured_address_is_the_only_one_probed():
    clock, bus, _ = make_bus("mpu6050")
    with pytest.raises(ImuError) as info:
        open_imu(bus, 0x69, clock=clock)
    assert "0x69: no answer" in info.value.message and "0x68" not in info.value.message
    assert {tx.address for tx in bus.history} == {0x69}


def test_missing_dev_i2c_names_raspi_config():
    with pytest.raises(ImuError) as info:
        open_bus(250)
    assert "/dev/i2c-250" in info.value.message
    assert "sudo raspi-config nonint do_i2c 0" in info.value.fix
    with pytest.raises(ImuError):
        open_imu(250)


def test_permission_error_names_the_group(monkeypatch):
    class Forbidden:
        def __init__(self, number):
            raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(bus_module, "_smbus_class", lambda: Forbidden)
    with pytest.raises(ImuError) as info:
        open_bus(1)
    assert "/dev/i2c-1" in info.value.message
    assert "sudo adduser $USER i2c" in info.value.fix


def test_permission_error_while_probing_is_one_error():
    class ForbiddenBus(FakeSMBus):
        def read_byte_data(self, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(ImuError) as info:
        open_imu(ForbiddenBus(1, clock=ManualClock()), clock=ManualClock())
    assert "adduser" in info.value.fix


# --- configuration ------------------------------------------------------------------------


def test_mpu6050_is_configured_per_the_register_map():
    clock, bus, device = make_bus("mpu6050")
    open_imu(bus, clock=clock)
    assert device.register_writes(0x6B)[:2] == [0x80, 0x01]  # reset, then wake on the X gyro PLL
    assert device.register_writes(0x19) == [9]  # 1 kHz / 10
    assert device.register_writes(0x1A) == [0x03]  # DLPF 44 Hz in bits 2:0
    assert device.register_writes(0x1B) == [0x08]  # +/-500 deg/s
    assert device.register_writes(0x1C) == [0x08]  # +/-4 g
    assert device.register_writes(0x23)[-1] == 0x78
    assert device.register_writes(0x6A)[-2:] == [0x04, 0x40]  # FIFO reset, then FIFO on


@pytest.mark.parametrize("chip, fifo_writes", [("lsm6dsox", {0x09: 0x44, 0x0A: 0x06}),
                                                ("lsm6ds3trc", {0x08: 0x09, 0x0A: 0x26})])
def test_lsm6_is_configured_per_the_register_map(chip, fifo_writes):
    clock, bus, device = make_bus(chip)
    open_imu(bus, clock=clock)
    assert device.register_writes(0x12) == [0x01, 0x44]  # SW_RESET, then BDU + IF_INC
    assert device.register_writes(0x10) == [0x48]
    assert device.register_writes(0x11) == [0x44]
    for register, value in fifo_writes.items():
        assert device.register_writes(register)[-1] == value
    if chip == "lsm6dsox":
        assert device.register_writes(0x18) == [0xE2]  # I3C off


@pytest.mark.parametrize("chip", list(CHIPS))
@pytest.mark.parametrize("accel_range, gyro_range", [(2, 250), (4, 500), (8, 1000), (16, 2000)])
def test_every_range_reads_true_values(chip, accel_range, gyro_range):
    truth_gyro = (100.0, -50.0, 25.0)
    clock, bus, _ = make_bus(chip, motion=still_motion(gravity_g=(0.0, -0.5, 1.0), gyro_bias_dps=truth_gyro))
    imu = open_imu(bus, clock=clock, accel_range_g=accel_range, gyro_range_dps=gyro_range)
    t, accel, gyro, _ = joined(poll(imu, clock, 0.5))
    accel_lsb = 1 / imu._driver.accel_counts_per_g
    gyro_lsb = 1 / imu._driver.gyro_counts_per_dps
    np.testing.assert_allclose(accel, np.tile([0.0, -0.5, 1.0], (len(t), 1)), atol=accel_lsb)
    np.testing.assert_allclose(gyro, np.tile(truth_gyro, (len(t), 1)), atol=gyro_lsb)


@pytest.mark.parametrize("chip, rate, actual", [("mpu6050", 50, 50.0), ("mpu6050", 400, 400.0),
                                                ("lsm6dsox", 50, 52.0), ("lsm6dsox", 400, 416.0),
                                                ("lsm6ds3trc", 400, 416.0)])
def test_rates(chip, rate, actual):
    clock, bus, _ = make_bus(chip)
    imu = open_imu(bus, rate_hz=rate, clock=clock)
    assert imu.rate_hz == actual
    t, _, gyro, gaps = joined(poll(imu, clock, 2.0))
    assert gaps == [] and np.all(np.diff(true_tick(t, gyro, actual)[0]) == 1)
    assert imu.estimated_rate_hz == pytest.approx(actual, rel=5e-3)  # 2 s of data: the slow filter is still settling


def test_rate_out_of_range_is_refused():
    clock, bus, _ = make_bus("mpu6050")
    with pytest.raises(ImuError):
        open_imu(bus, rate_hz=1000, clock=clock)


# --- streaming ----------------------------------------------------------------------------


@pytest.mark.parametrize("chip", list(CHIPS))
def test_blocks_hold_every_sample_once_in_order(chip):
    clock, bus, _ = make_bus(chip)
    imu = open_imu(bus, clock=clock)
    blocks = poll(imu, clock, 5.0)
    assert all(isinstance(b, ImuBlock) and b.gaps == () for b in blocks)
    t, accel, gyro, _ = joined(blocks)
    assert t.shape == (len(t),) and accel.shape == (len(t), 3) and gyro.shape == (len(t), 3)
    ticks, _ = true_tick(t, gyro, imu.rate_hz)
    assert np.all(np.diff(ticks) == 1)
    assert np.all(np.diff(t) > 0)
    assert_gravity(accel, imu)


def test_fifo_bursts_longer_than_32_bytes_go_through_i2c_rdwr():
    clock, bus, _ = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    poll(imu, clock, 2.0, every=0.2, jitter=0.0)
    bursts = bus.transactions("i2c_rdwr")
    assert bursts and all(tx.messages[0] == ("w", 1) and tx.register == 0x74 for tx in bursts)
    assert max(tx.read for tx in bursts) == 20 * 12  # 0.2 s at 100 Hz, whole packets
    assert all(tx.read % 12 == 0 for tx in bursts)
    assert all(tx.read <= 32 for tx in bus.transactions("read_i2c_block_data"))


def test_read_burst_respects_the_kernel_message_limit():
    clock, bus, _ = make_bus("mpu6050")
    data = read_burst(bus, 0x68, 0x74, 20000, chunk=8184)
    assert len(data) == 20000
    assert [tx.messages[1] for tx in bus.transactions("i2c_rdwr")] == [("r", 8184), ("r", 8184), ("r", 3632)]


def test_read_burst_never_sends_a_message_over_8192():
    clock, bus, _ = make_bus("mpu6050")
    read_burst(bus, 0x68, 0x74, 9000, chunk=100_000)
    assert max(tx.read for tx in bus.transactions("i2c_rdwr")) == 8192


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize("chip", list(CHIPS))
@pytest.mark.parametrize("error_pct", [3.0, -3.0])
def test_timestamp_error_below_5_ms_after_10_s_with_a_3_percent_clock_error(chip, error_pct):
    clock, bus, device = make_bus(chip, error_pct=error_pct, world_t0=0.0037)
    imu = open_imu(bus, clock=clock)
    t, _, gyro, gaps = joined(poll(imu, clock, 20.0, seed=3))
    assert gaps == []
    _, world = true_tick(t, gyro, device.true_rate_hz())
    true_t = world + 0.0037
    late = t > 10.0
    assert np.abs(t[late] - true_t[late]).max() < 0.005
    assert imu.estimated_rate_hz == pytest.approx(device.true_rate_hz(), rel=1e-3)


def test_timestamps_shrug_off_host_stalls():
    clock, bus, device = make_bus("mpu6050", error_pct=3.0)
    imu = open_imu(bus, clock=clock)
    rng = np.random.default_rng(7)
    blocks = []
    while clock() < 20.0:
        # every 20th poll the host is 300 ms late (the FIFO holds 850 ms, so nothing is lost)
        clock.advance(0.3 if rng.random() < 0.05 else 0.03 + rng.uniform(0, 0.02))
        blocks.append(imu.read())
    t, _, gyro, gaps = joined(blocks)
    assert gaps == []
    _, world = true_tick(t, gyro, device.true_rate_hz())
    assert np.abs(t[t > 10] - world[t > 10]).max() < 0.005


def test_timeline_alone():
    timeline = SampleTimeline(100.0)
    true_period = 1 / 103.0
    rng = np.random.default_rng(1)
    t = 0.0
    errors = []
    for _ in range(600):
        t += 0.03 + rng.uniform(0, 0.02)
        newest = math.floor(t / true_period)
        timeline.observe(newest, t + 0.0002)
        errors.append(timeline.time_of(newest) - newest * true_period)
    assert abs(errors[-1]) < 0.001
    assert timeline.rate_hz == pytest.approx(103.0, rel=1e-3)
    timeline.restart(10_000)
    assert timeline.rate_hz == pytest.approx(103.0, rel=1e-3)  # the rate survives a restart


# --- FIFO overflow ------------------------------------------------------------------------


@pytest.mark.parametrize("chip, stall", [("mpu6050", 2.0537), ("lsm6dsox", 4.0537), ("lsm6ds3trc", 6.0537)])
def test_overflow_resets_realigns_and_reports_the_lost_samples(chip, stall):
    clock, bus, device = make_bus(chip, error_pct=1.5)
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 10.0)
    clock.advance(stall)  # the host stalls long enough to overflow the FIFO
    after = poll(imu, clock, 10.0, seed=1)
    gap = assert_one_gap_with_true_count(before + after, device.true_rate_hz())
    assert "overflow" in gap.reason
    t1, accel1, gyro1, _ = joined(after)
    assert_gravity(accel1, imu)
    _, world_after = true_tick(t1, gyro1, device.true_rate_hz())
    settled = t1 > t1[0] + 3.0
    assert np.abs(t1[settled] - world_after[settled]).max() < 0.005
    assert imu.stats.fifo_resets == 1


def test_forced_overflow_never_delivers_the_broken_fifo():
    clock, bus, device = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    first = poll(imu, clock, 1.0)
    clock.advance(0.0437)
    device.force_fifo_overflow()
    after = poll(imu, clock, 1.0, seed=2)
    assert_one_gap_with_true_count(first + after, 100.0)
    assert_gravity(joined(after)[1], imu)


def test_lsm6dsox_lost_word_is_caught_by_the_tag_counter():
    clock, bus, device = make_bus("lsm6dsox")
    imu = open_imu(bus, clock=clock)
    poll(imu, clock, 1.0)
    clock.advance(0.1)
    bus.read_byte_data(0x6A, 0x0F)  # let the emulator catch up
    del device.fifo[2]
    del device.fifo[2]  # one whole sample period vanishes
    block = imu.read()
    assert len(block) == 0 and imu.stats.fifo_resets == 1
    after = poll(imu, clock, 1.0)
    t, _, gyro, gaps = joined([block] + after)
    assert len(gaps) == 1 and "TAG_CNT" in gaps[0].reason
    assert np.all(np.diff(true_tick(t, gyro, 104.0)[0]) == 1)


def test_mpu_bytes_missing_from_the_fifo_are_caught_by_the_count():
    clock, bus, device = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 1.0)
    clock.advance(0.05)
    bus.read_byte_data(0x68, 0x75)  # let the emulator catch up
    del device.fifo[0]  # a byte lost without an overflow: every packet after it is shifted
    after = poll(imu, clock, 1.0)
    gap = assert_one_gap_with_true_count(before + after, 100.0)
    assert "misaligned" in gap.reason
    assert_gravity(joined(after)[1], imu)


def test_a_chip_that_does_not_keep_its_settings_is_refused():
    clock, bus, device = make_bus("mpu6050", who=0x72)
    original = device._write_register
    device._write_register = lambda register, value: None if register == 0x1B else original(register, value)
    with pytest.raises(ImuError) as info:
        open_imu(bus, clock=clock)
    assert "does not keep its settings" in info.value.message and "0x72" in info.value.message


# --- I2C faults mid-stream ------------------------------------------------------------------


def test_a_nack_is_retried_with_backoff_in_clock_time():
    clock, bus, _ = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    poll(imu, clock, 1.0)
    bus.fail_next(errno.EREMOTEIO, ops=["read_byte_data"])
    clock.advance(0.05)
    started = clock()
    block = imu.read()
    assert len(block) == 5 and block.gaps == ()
    failed = [tx for tx in bus.history if tx.error == errno.EREMOTEIO and tx.address == 0x68]
    assert len(failed) == 1 and failed[0].t == started
    assert bus.history[-1].t == pytest.approx(started + imu.RETRY_BACKOFF_S)
    assert imu.stats.retries == 1 and imu.healthy


@pytest.mark.parametrize("chip", list(CHIPS))
def test_eio_in_the_middle_of_a_fifo_burst_resets_instead_of_misaligning(chip):
    clock, bus, device = make_bus(chip)
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 2.0)
    clock.advance(0.2)
    bus.fail_next(errno.EIO, ops=["i2c_rdwr"], partial=True)  # half the burst is popped, then the bus fails
    failed = imu.read()
    after = poll(imu, clock, 2.0)
    assert len(failed) == 0
    gap = assert_one_gap_with_true_count(before + [failed] + after, device.true_rate_hz())
    assert "FIFO read" in gap.reason
    assert_gravity(joined(after)[1], imu)


def test_a_bus_error_for_a_while_is_a_fault_then_a_gap_never_an_exception():
    clock, bus, device = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 2.0)
    bus.fail_between(clock() + 0.1, clock() + 1.1, errno.EIO)
    during = poll(imu, clock, 1.2)
    after = poll(imu, clock, 2.0)
    assert all(len(b) == 0 for b in during[3:-3])
    kinds = [e.kind for e in imu.drain_events()]
    assert kinds[0] == "up" and "fault" in kinds and "recovered" in kinds
    gap = assert_one_gap_with_true_count(before + during + after, 100.0)
    assert "I2C fault" in gap.reason
    assert imu.healthy


def nack_window(bus, clock, seconds, starts_in=0.1):
    """The IMU does not acknowledge for ``seconds`` (a loose wire); it keeps sampling into its FIFO."""
    start = clock() + starts_in
    bus.fail_between(start, start + seconds, errno.EREMOTEIO)
    return start, start + seconds


def first_answer_at_or_after(bus, t):
    return min(tx.t for tx in bus.history if tx.t >= t and tx.error is None)


@pytest.mark.parametrize("chip", list(CHIPS))
@pytest.mark.parametrize("every", [0.01, 0.04])  # a fast caller; the daemon's pace (50 ms)
def test_reading_resumes_within_0_1_s_of_the_end_of_a_2_s_nack_window(chip, every):
    clock, bus, device = make_bus(chip)
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 1.0)
    start, back = nack_window(bus, clock, 2.0)
    blocks = poll(imu, clock, 5.0, every=every, jitter=every / 2)
    resumed = first_answer_at_or_after(bus, back)
    assert resumed - back <= 0.1
    # while the bus is down the IMU is tried at a bounded pace: never idle for more than
    # 0.1 s, never faster than its recovery interval whatever the caller's pace
    tries = [tx.t for tx in bus.history if start <= tx.t < back]
    assert np.diff(tries + [resumed]).max() <= 0.1
    assert len(tries) <= 2.0 / imu.RECOVERY_INTERVAL_S + imu.RETRIES + 1
    # every sample the chip took from the first answer on is delivered
    rate = device.true_rate_hz()
    t, _, gyro, _ = joined(before + blocks)
    ticks, _ = true_tick(t, gyro, rate)
    due = np.arange(math.ceil(resumed * rate), ticks[-1] + 1)
    assert np.isin(due, ticks).all()
    assert imu.healthy and imu.stats.recoveries == 1


@pytest.mark.parametrize("chip, seconds", [("mpu6050", 0.5), ("lsm6dsox", 2.0), ("lsm6ds3trc", 2.0)])
def test_a_nack_window_the_fifo_outlasts_costs_no_sample(chip, seconds):
    # the MPU-6050's FIFO holds 0.85 s at 100 Hz; the LSM6s' hold 2.4 s and 3.2 s at 104 Hz
    clock, bus, device = make_bus(chip)
    imu = open_imu(bus, clock=clock)
    before = poll(imu, clock, 1.0)
    nack_window(bus, clock, seconds)
    after = poll(imu, clock, seconds + 2.0)
    t, _, gyro, gaps = joined(before + after)
    assert gaps == []
    assert np.all(np.diff(true_tick(t, gyro, device.true_rate_hz())[0]) == 1)
    assert np.all(np.diff(t) > 0)
    kinds = [e.kind for e in imu.drain_events()]
    assert kinds == ["up", "fault", "recovered"]
    assert imu.stats.fifo_resets == 0 and imu.stats.samples_lost == 0


def test_device_that_disappears_and_comes_back_is_reconfigured():
    clock, bus, device = make_bus("mpu6050")
    imu = open_imu(bus, clock=clock)
    poll(imu, clock, 1.0)
    resets_before = device.register_writes(0x6B).count(0x80)
    bus.disappear(0x68, clock() + 0.1, clock() + 1.0)  # a brown-out: back at power-on values
    blocks = poll(imu, clock, 3.0)
    assert device.power_cycles == 1
    assert device.register_writes(0x6B).count(0x80) == resets_before + 1
    gap = assert_one_gap_with_true_count(blocks, 100.0)
    assert 85 <= gap.samples_lost <= 120
    assert_gravity(joined(blocks)[1], imu)
    assert imu.healthy and imu.stats.recoveries == 1


def test_a_dead_bus_handle_is_reopened_through_the_callable():
    clock, bus, device = make_bus("mpu6050")
    fresh = []

    def reopen():
        new_bus = FakeSMBus(1, clock=clock)
        new_bus.attach(0x68, device)
        fresh.append(new_bus)
        return new_bus

    imu = open_imu(bus, clock=clock, reopen=reopen)
    poll(imu, clock, 1.0)
    bus.fail_between(clock(), math.inf, errno.EIO)  # this handle never works again
    blocks = poll(imu, clock, 3.0)
    assert len(fresh) == 1 and bus.closed and imu.bus is fresh[0]
    assert imu.stats.reopens == 1 and imu.healthy
    # back well within the 0.85 s the FIFO holds: it kept every sample
    t, _, gyro, gaps = joined(blocks)
    assert gaps == [] and np.all(np.diff(true_tick(t, gyro, 100.0)[0]) == 1)
    assert len(t) > 250


# --- lifetime -----------------------------------------------------------------------------


def test_close_is_safe_twice_and_puts_the_chip_to_sleep():
    clock, bus, device = make_bus("mpu6050")
    with open_imu(bus, clock=clock) as imu:
        pass
    imu.close()
    assert device.register_writes(0x6B)[-1] == 0x40
    with pytest.raises(ImuError):
        imu.read()


def test_close_survives_a_dead_device():
    clock, bus, _ = make_bus("lsm6dsox")
    imu = open_imu(bus, clock=clock)
    bus.detach(0x6A)
    imu.close()  # the power-down write fails: close must not raise
    seen = len(bus.history)
    imu.close()  # and is safe twice: no second attempt on the bus
    assert len(bus.history) == seen


# --- calibration --------------------------------------------------------------------------

BIAS = (0.8, -0.5, 0.3)


def still_imu(motion=None, chip="mpu6050"):
    clock, bus, _ = make_bus(chip, motion=motion or still_motion(gyro_bias_dps=BIAS, gyro_noise_dps=0.05))
    return open_imu(bus, clock=clock)


def test_calibration_measures_the_bias_at_rest():
    imu = still_imu()
    calibration = calibrate_gyro(imu, seconds=3.0)
    np.testing.assert_allclose(calibration.gyro_bias_dps, BIAS, atol=0.02)
    np.testing.assert_allclose(calibration.accel_rest_g, (0, 0, 1), atol=1e-3)
    assert calibration.samples == 300 and calibration.chip == "mpu6050"


def test_calibration_refuses_motion():
    def handled(times):
        accel = np.tile([0.0, 0.0, 1.0], (len(times), 1))
        gyro = np.column_stack([30 * np.sin(2 * np.pi * times), np.zeros(len(times)), np.zeros(len(times))])
        return accel, gyro

    with pytest.raises(CalibrationError) as info:
        calibrate_gyro(still_imu(handled), seconds=2.0)
    assert "turned" in info.value.message and "calibrate imu" in info.value.fix


def test_calibration_refuses_a_shake():
    def shaken(times):
        accel = np.column_stack([0.6 * np.sin(20 * times), np.zeros(len(times)), np.ones(len(times))])
        return accel, np.zeros((len(times), 3))

    with pytest.raises(CalibrationError) as info:
        calibrate_gyro(still_imu(shaken), seconds=2.0)
    assert "shaken" in info.value.message


def test_calibration_round_trip_and_application(tmp_path):
    calibration = calibrate_gyro(still_imu(), seconds=2.0)
    path = calibration.save(tmp_path / "state")
    assert path.name == "imu_calibration.json" and json.loads(path.read_text())["version"] == 1
    loaded = ImuCalibration.load(tmp_path / "state")
    assert loaded == calibration
    for given in (loaded, tmp_path / "state"):
        clock, bus, _ = make_bus("mpu6050", motion=still_motion(gyro_bias_dps=BIAS))
        imu = open_imu(bus, clock=clock, calibration=given)
        _, _, gyro, _ = joined(poll(imu, clock, 1.0))
        np.testing.assert_allclose(gyro.mean(axis=0), 0.0, atol=0.02)


def test_calibration_missing_damaged_or_for_another_chip(tmp_path):
    assert ImuCalibration.load(tmp_path) is None
    (tmp_path / "imu_calibration.json").write_text("{not json")
    with pytest.raises(CalibrationError):
        ImuCalibration.load(tmp_path)
    (tmp_path / "imu_calibration.json").write_text(json.dumps({"gyro_bias_dps": [1, 2]}))
    with pytest.raises(CalibrationError):
        ImuCalibration.load(tmp_path)
    other = ImuCalibration(gyro_bias_dps=(5.0, 5.0, 5.0), chip="lsm6dsox")
    clock, bus, _ = make_bus("mpu6050", motion=still_motion())
    imu = open_imu(bus, clock=clock, calibration=other)
    assert imu.calibration is None


def test_calibrating_a_calibrated_imu_measures_the_raw_bias():
    imu = still_imu()
    imu.gyro_bias_dps = np.array([10.0, 10.0, 10.0])
    calibration = calibrate_gyro(imu, seconds=1.0)
    np.testing.assert_allclose(calibration.gyro_bias_dps, BIAS, atol=0.02)


# --- real hardware (a Pi with the IMU wired; KNEEROLL_HARDWARE=1) --------------------------


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("KNEEROLL_HARDWARE") != "1", reason="needs the IMU on /dev/i2c-1")
def test_real_imu_streams_at_its_rate():
    from kneeroll_device.clock import SystemClock

    clock = SystemClock()
    with open_imu(open_bus(1), clock=clock) as imu:
        imu.read()
        blocks = [imu.read() for _ in range(20) if clock.sleep(0.1) is None]
    t, accel, _, gaps = joined(blocks)
    assert gaps == []
    assert len(t) == pytest.approx(2.0 * imu.rate_hz, rel=0.1)
    assert np.linalg.norm(accel, axis=1).mean() == pytest.approx(1.0, abs=0.1)
