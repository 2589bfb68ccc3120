"""The register-level emulators and the fake bus: power-on state, sample grid, FIFOs, faults."""

import errno

import numpy as np
import pytest
from smbus2 import i2c_msg

from kneeroll_device.clock import ManualClock
from kneeroll_device.sensors import registers as regs
from kneeroll_device.sim.imu_emulator import (
    FakeSMBus,
    Lsm6dsoxEmulator,
    Mpu6050Emulator,
    Transaction,
    bus_busy_seconds,
    decode_time_code,
    still_motion,
    time_code_motion,
    transaction_bits,
)

MPU = 0x68
LSM = 0x6A


def ramp_motion(times):
    """accel X = world time in g/100, gyro Y = -world time deg/s: easy to check by hand."""
    times = np.asarray(times, dtype=float)
    accel = np.column_stack([times / 100, np.zeros_like(times), np.ones_like(times)])
    gyro = np.column_stack([np.zeros_like(times), -times, np.zeros_like(times)])
    return accel, gyro


def mpu_bus(clock, motion=ramp_motion, **kwargs):
    bus = FakeSMBus(1, clock=clock)
    device = bus.attach(MPU, Mpu6050Emulator(motion, clock=clock, **kwargs))
    return bus, device


def start_mpu_fifo(bus, divider=9):
    """Wake at 1 kHz / (1 + divider), +/-4 g, +/-500 deg/s, FIFO on for accel and gyro."""
    bus.write_byte_data(MPU, 0x6B, 0x01)
    bus.write_i2c_block_data(MPU, 0x19, [divider, 0x03, 0x08, 0x08])
    bus.write_byte_data(MPU, 0x6A, 0x40)
    bus.write_byte_data(MPU, 0x23, 0x78)


def fifo_count(bus):
    high, low = bus.read_i2c_block_data(MPU, 0x72, 2)
    return (high << 8) | low


def read_fifo(bus, address, register, length):
    select, data = i2c_msg.write(address, [register]), i2c_msg.read(address, length)
    bus.i2c_rdwr(select, data)
    return bytes(data)


# --- power-on and registers ---------------------------------------------------------------


def test_mpu6050_power_on_values_and_who_am_i():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    assert bus.read_byte_data(MPU, 0x6B) == 0x40
    assert bus.read_byte_data(MPU, 0x75) == 0x68
    assert bus.read_i2c_block_data(MPU, 0x19, 4) == [0, 0, 0, 0]


@pytest.mark.parametrize("who", [0x70, 0x72, 0x98])
def test_mpu6050_clone_who_am_i(who):
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(MPU, Mpu6050Emulator(ramp_motion, clock=clock, who_am_i=who))
    assert bus.read_byte_data(MPU, 0x75) == who


@pytest.mark.parametrize("who", [0x6C, 0x6A, 0x69])
def test_lsm6_power_on_values(who):
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(LSM, Lsm6dsoxEmulator(ramp_motion, clock=clock, who_am_i=who))
    assert bus.read_byte_data(LSM, 0x0F) == who
    assert bus.read_byte_data(LSM, 0x12) == 0x04
    assert bus.read_i2c_block_data(LSM, 0x10, 2) == [0, 0]


def test_asleep_mpu_produces_nothing():
    clock = ManualClock()
    bus, device = mpu_bus(clock)
    bus.write_byte_data(MPU, 0x6A, 0x40)
    bus.write_byte_data(MPU, 0x23, 0x78)
    clock.advance(1.0)
    assert fifo_count(bus) == 0
    assert device.ticks_produced == 0


def test_device_reset_restores_power_on_values():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    start_mpu_fifo(bus)
    bus.write_byte_data(MPU, 0x6B, 0x80)
    assert bus.read_byte_data(MPU, 0x6B) == 0x40
    assert bus.read_i2c_block_data(MPU, 0x19, 4) == [0, 0, 0, 0]


# --- sample grid, values, byte order -------------------------------------------------------


def test_mpu_ticks_on_the_world_grid_with_motion_values_big_endian():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    start_mpu_fifo(bus)  # at t = 0: tick 0 is "now", so the first sample due is tick 1 at 0.01
    clock.advance(0.0999)
    assert fifo_count(bus) == 9 * 12
    data = read_fifo(bus, MPU, 0x74, 2 * 12)
    accel, gyro = regs.decode_mpu6050_fifo(data)
    # tick 1 at t = 0.01: accel X = 0.0001 g -> round(0.8192) = 1 count at 8192/g; gyro Y = -0.01 deg/s -> -0.655 -> -1
    assert accel[0].tolist() == [1, 0, 8192]
    assert gyro[0].tolist() == [0, -1, 0]
    # tick 2 at t = 0.02: 0.0002 g -> 1.6384 -> 2; -0.02 deg/s * 65.5 = -1.31 -> -1
    assert accel[1].tolist() == [2, 0, 8192]
    assert gyro[1].tolist() == [0, -1, 0]
    assert fifo_count(bus) == 7 * 12


def test_mpu_data_registers_hold_the_newest_sample_big_endian():
    clock = ManualClock()
    bus, _ = mpu_bus(clock, motion=still_motion(gravity_g=(0.0, 0.0, 1.0), gyro_bias_dps=(2.0, 0.0, 0.0)))
    start_mpu_fifo(bus)
    clock.advance(0.05)
    block = bus.read_i2c_block_data(MPU, 0x3B, 14)
    # Z accel = 8192 = 0x2000 at +/-4 g; gyro X = 2 deg/s * 65.5 = 131 = 0x0083
    assert block[4:6] == [0x20, 0x00]
    assert block[8:10] == [0x00, 0x83]


def test_sensor_clock_error_makes_the_grid_faster():
    clock = ManualClock()
    bus, device = mpu_bus(clock, clock_error_pct=3.0)
    start_mpu_fifo(bus)
    clock.advance(10.0)
    bus.read_byte_data(MPU, 0x3A)
    assert device.ticks_produced == 1030  # floor(10 s * 103 Hz)


def test_world_t0_aligns_the_grid():
    clock = ManualClock(start=100.0)
    bus, device = mpu_bus(clock, motion=time_code_motion(), world_t0=99.9953)
    start_mpu_fifo(bus)
    clock.advance(0.5)
    accel, gyro = regs.decode_mpu6050_fifo(read_fifo(bus, MPU, 0x74, 12 * (fifo_count(bus) // 12)))
    world = decode_time_code(gyro[:, 0] / 65.5, np.full(len(gyro), 0.0047 + 0.25))
    # the first tick after t = 100 on a grid through 99.9953: 100.0053, world time 0.01
    assert world[0] == pytest.approx(0.01, abs=1e-4)
    assert np.diff(world) == pytest.approx(np.full(len(world) - 1, 0.01), abs=1e-4)


def test_range_configuration_is_honoured_and_values_clip():
    clock = ManualClock()
    bus, _ = mpu_bus(clock, motion=still_motion(gravity_g=(0.0, 5.0, 1.0)))
    start_mpu_fifo(bus)
    bus.write_byte_data(MPU, 0x1C, 0x18)  # +/-16 g
    clock.advance(0.011)
    accel, _ = regs.decode_mpu6050_fifo(read_fifo(bus, MPU, 0x74, 12))
    assert accel[0].tolist() == [0, 5 * 2048, 2048]
    bus.write_byte_data(MPU, 0x1C, 0x08)  # +/-4 g: 5 g clips
    clock.advance(0.01)
    accel, _ = regs.decode_mpu6050_fifo(read_fifo(bus, MPU, 0x74, 12))
    assert accel[0].tolist() == [0, 32767, 8192]


def test_lsm6dsox_words_little_endian_and_burst_rollover():
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(LSM, Lsm6dsoxEmulator(still_motion(gyro_bias_dps=(17.92, 0, 0)), clock=clock))
    bus.write_byte_data(LSM, 0x12, 0x44)
    bus.write_i2c_block_data(LSM, 0x10, [0x48, 0x44])  # 104 Hz, +/-4 g, +/-500 deg/s
    bus.write_byte_data(LSM, 0x09, 0x44)
    bus.write_byte_data(LSM, 0x0A, 0x06)
    clock.advance(0.03)  # ticks at 1/104 s: 3 of them by 0.03 s
    status1, status2 = bus.read_i2c_block_data(LSM, 0x3A, 2)
    assert (status1, status2 & 0x03) == (6, 0)
    data = read_fifo(bus, LSM, 0x78, 14)  # two words in one burst: 0x7E rolls back to 0x78
    sensors, counts, xyz = regs.decode_lsm6dsox_words(data)
    assert sensors.tolist() == [1, 2] and counts[0] == counts[1]
    # 17.92 deg/s / 17.5 mdps = 1024 counts; 1 g / 0.122 mg = 8196.7 -> 8197
    assert xyz.tolist() == [[1024, 0, 0], [0, 0, 8197]]
    assert bus.read_i2c_block_data(LSM, 0x3A, 1) == [4]


def test_lsm6ds3trc_pattern_and_status():
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(LSM, Lsm6dsoxEmulator(still_motion(gyro_bias_dps=(17.92, 0, 0)), clock=clock, who_am_i=0x6A))
    bus.write_i2c_block_data(LSM, 0x10, [0x48, 0x44])
    bus.write_byte_data(LSM, 0x08, 0x09)
    bus.write_byte_data(LSM, 0x0A, 0x26)
    clock.advance(0.02)
    s1, s2, s3, s4 = bus.read_i2c_block_data(LSM, 0x3A, 4)
    assert (s1, s2 & 0x07, s3, s4) == (12, 0, 0, 0)
    assert read_fifo(bus, LSM, 0x3E, 12) == bytes.fromhex("0004 0000 0000 0000 0000 0520")
    assert bus.read_i2c_block_data(LSM, 0x3A, 4)[0] == 6
    read_fifo(bus, LSM, 0x3E, 2)  # one word: now in the middle of a pattern
    assert bus.read_i2c_block_data(LSM, 0x3C, 1) == [1]


# --- FIFO overflow ------------------------------------------------------------------------


def test_mpu_overflow_drops_oldest_bytes_and_sets_int_status_bit4():
    clock = ManualClock()
    bus, device = mpu_bus(clock, motion=time_code_motion())
    start_mpu_fifo(bus)
    clock.advance(0.855)  # 85 samples fill 1020 bytes; the 86th overflows
    assert fifo_count(bus) == 1020
    assert bus.read_byte_data(MPU, 0x3A) & 0x10 == 0
    clock.advance(0.01)
    assert fifo_count(bus) == 1024
    assert bus.read_byte_data(MPU, 0x3A) & 0x10
    assert bus.read_byte_data(MPU, 0x3A) & 0x10 == 0  # cleared by the read
    # the oldest 8 bytes were dropped: the FIFO now starts 4 bytes into a packet
    data = read_fifo(bus, MPU, 0x74, 1024)
    _, gyro = regs.decode_mpu6050_fifo(data[4:])
    world = decode_time_code(gyro[:, 0] / 65.5, np.full(len(gyro), 0.5))
    assert world[0] == pytest.approx(0.02, abs=1e-4)
    assert device.samples_overflowed > 0


def test_mpu_fifo_reset_empties_it():
    clock = ManualClock()
    bus, device = mpu_bus(clock)
    start_mpu_fifo(bus)
    clock.advance(0.1)
    bus.write_byte_data(MPU, 0x6A, 0x44)
    assert fifo_count(bus) == 0
    assert device.samples_cleared == 10
    assert bus.read_byte_data(MPU, 0x6A) == 0x40  # FIFO_RESET clears itself


def test_forced_overflow():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    start_mpu_fifo(bus)
    clock.advance(0.05)
    bus.devices[MPU].force_fifo_overflow()
    assert fifo_count(bus) == 1024
    assert bus.read_byte_data(MPU, 0x3A) & 0x10


def test_lsm6dsox_overflow_flags():
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(LSM, Lsm6dsoxEmulator(ramp_motion, clock=clock))
    bus.write_i2c_block_data(LSM, 0x10, [0x48, 0x44])
    bus.write_byte_data(LSM, 0x09, 0x44)
    bus.write_byte_data(LSM, 0x0A, 0x06)
    clock.advance(3.0)  # 312 samples = 624 words > 512
    status1, status2 = bus.read_i2c_block_data(LSM, 0x3A, 2)
    assert status1 | ((status2 & 0x03) << 8) == 512
    assert status2 & 0x40 and status2 & 0x08 and status2 & 0x20
    assert bus.read_i2c_block_data(LSM, 0x3A, 2)[1] & 0x08 == 0  # the latched bit clears on read
    bus.write_byte_data(LSM, 0x0A, 0x00)  # bypass empties it
    assert bus.read_i2c_block_data(LSM, 0x3A, 2) == [0, 0]


def test_lsm6ds3trc_overflow_shifts_the_pattern():
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock)
    bus.attach(LSM, Lsm6dsoxEmulator(ramp_motion, clock=clock, who_am_i=0x6A))
    bus.write_i2c_block_data(LSM, 0x10, [0x48, 0x44])
    bus.write_byte_data(LSM, 0x08, 0x09)
    bus.write_byte_data(LSM, 0x0A, 0x26)
    clock.advance(4.0)  # 416 samples * 6 words > 2048
    s1, s2, s3, _ = bus.read_i2c_block_data(LSM, 0x3A, 4)
    assert s1 | ((s2 & 0x07) << 8) == 2047  # 11 bits: a full 2048-word FIFO reads 2047
    assert s2 & 0x40
    assert s3 != 0  # 2048 is not a multiple of 6: the oldest word is mid-pattern


# --- the bus ------------------------------------------------------------------------------


def test_block_reads_are_limited_to_32_bytes_like_smbus2():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(MPU, 0x74, 33)
    with pytest.raises(ValueError):
        bus.write_i2c_block_data(MPU, 0x19, [0] * 33)


def test_i2c_rdwr_fills_real_smbus2_messages_and_refuses_over_8192():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    start_mpu_fifo(bus)
    clock.advance(0.5)
    data = read_fifo(bus, MPU, 0x74, 600)
    assert len(data) == 600 and any(data)
    with pytest.raises(OSError) as info:
        read_fifo(bus, MPU, 0x74, 8193)
    assert info.value.errno == errno.EINVAL


def test_absent_address_does_not_acknowledge():
    bus = FakeSMBus(1, clock=ManualClock())
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x68, 0x75)
    assert info.value.errno == 121


def test_history_records_time_operation_and_errors_and_is_bounded():
    clock = ManualClock()
    bus = FakeSMBus(1, clock=clock, history_maxlen=3)
    bus.attach(MPU, Mpu6050Emulator(ramp_motion, clock=clock))
    bus.read_byte_data(MPU, 0x75)
    clock.advance(1.5)
    bus.write_byte_data(MPU, 0x6B, 0x01)
    with pytest.raises(OSError):
        bus.read_byte_data(0x69, 0x75)
    bus.read_byte_data(MPU, 0x75)
    assert len(bus.history) == 3
    first = bus.history[0]
    assert first == Transaction(1.5, "write_byte_data", MPU, 0x6B, b"\x01", 0, (), None)
    assert bus.history[1].error == 121
    assert FakeSMBus().history.maxlen == 100_000


def test_fail_next_and_fail_between():
    clock = ManualClock()
    bus, _ = mpu_bus(clock)
    bus.fail_next(errno.EIO, count=2, ops=["read_byte_data"])
    bus.write_byte_data(MPU, 0x6B, 0x01)  # other operations are not affected
    for _ in range(2):
        with pytest.raises(OSError) as info:
            bus.read_byte_data(MPU, 0x75)
        assert info.value.errno == errno.EIO
    assert bus.read_byte_data(MPU, 0x75) == 0x68
    bus.fail_between(1.0, 2.0, errno.EREMOTEIO, address=MPU)
    clock.advance(1.5)
    with pytest.raises(OSError):
        bus.read_byte_data(MPU, 0x75)
    clock.advance(0.5)
    assert bus.read_byte_data(MPU, 0x75) == 0x68


def test_partial_failure_pops_part_of_the_fifo():
    clock = ManualClock()
    bus, device = mpu_bus(clock)
    start_mpu_fifo(bus)
    clock.advance(0.1)
    bus.fail_next(errno.EIO, ops=["i2c_rdwr"], partial=True)
    with pytest.raises(OSError):
        read_fifo(bus, MPU, 0x74, 120)
    assert len(device.fifo) == 60


def test_disappear_and_come_back_power_cycled():
    clock = ManualClock()
    bus, device = mpu_bus(clock)
    start_mpu_fifo(bus)
    bus.disappear(MPU, 1.0, 2.0)
    clock.advance(1.2)
    with pytest.raises(OSError) as info:
        bus.read_byte_data(MPU, 0x75)
    assert info.value.errno == 121
    clock.advance(1.0)
    assert bus.read_byte_data(MPU, 0x6B) == 0x40  # back asleep at power-on values
    assert device.power_cycles == 1


def test_closed_bus_refuses():
    bus = FakeSMBus(1, clock=ManualClock())
    bus.close()
    bus.close()
    with pytest.raises(OSError):
        bus.read_byte_data(0x68, 0x75)


def test_transaction_bits_on_the_wire():
    # register read of 1 byte: S, addr+W, reg, Sr, addr+R, data, P = 3 + 4 * 9
    assert transaction_bits(Transaction(0, "read_byte_data", MPU, 0x75, read=1)) == 39
    assert transaction_bits(Transaction(0, "write_byte_data", MPU, 0x6B, written=b"\x01")) == 29
    assert transaction_bits(Transaction(0, "read_i2c_block_data", MPU, 0x72, read=2)) == 48
    # i2c_rdwr: (S + addr + reg) + (Sr + addr + 120 data) + P
    rdwr = Transaction(0, "i2c_rdwr", MPU, 0x74, written=b"\x74", read=120, messages=(("w", 1), ("r", 120)))
    assert transaction_bits(rdwr) == (1 + 9 + 9) + (1 + 9 + 120 * 9) + 1
    assert bus_busy_seconds([rdwr], 400_000) == pytest.approx(1110 / 400_000)
