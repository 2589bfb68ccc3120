"""Register maps and scaling, checked against values worked out by hand from the datasheets.

Every expected number below was computed on paper from the datasheet tables quoted in
HARDWARE-FACTS (LSB/g, LSB/(deg/s), mg/LSB, mdps/LSB, field positions), not by the code.
"""

import numpy as np
import pytest

from kneeroll_device.sensors import registers as regs

# --- register maps -----------------------------------------------------------------------


def test_mpu6050_addresses_and_power_on_values():
    m = regs.MPU6050
    assert m.address("WHO_AM_I") == 0x75
    assert m.address("PWR_MGMT_1") == 0x6B
    assert m.address("FIFO_COUNTH") == 0x72 and m.address("FIFO_COUNTL") == 0x73
    assert m.address("FIFO_R_W") == 0x74
    assert m.address("INT_STATUS") == 0x3A
    assert m.address("ACCEL_XOUT_H") == 0x3B and m.address("GYRO_XOUT_H") == 0x43
    power_on = m.power_on_values()
    assert power_on[0x6B] == 0x40  # asleep
    assert power_on[0x75] == 0x68
    assert all(v == 0 for a, v in power_on.items() if a not in (0x6B, 0x75))


def test_mpu6050_fields_compose_to_hand_computed_bytes():
    m = regs.MPU6050
    # the low-pass filter lives in bits 2:0, not 4:3
    assert m.compose("CONFIG", DLPF_CFG=3) == 0x03
    assert m.compose("GYRO_CONFIG", FS_SEL=1) == 0x08  # +/-500 deg/s
    assert m.compose("ACCEL_CONFIG", AFS_SEL=3) == 0x18  # +/-16 g
    assert m.compose("PWR_MGMT_1", DEVICE_RESET=1) == 0x80
    assert m.compose("PWR_MGMT_1", CLKSEL=1) == 0x01
    assert m.compose("USER_CTRL", FIFO_ENABLE=1) == 0x40
    assert m.compose("USER_CTRL", FIFO_RESET=1) == 0x04
    assert m.compose("FIFO_EN", XG_FIFO_EN=1, YG_FIFO_EN=1, ZG_FIFO_EN=1, ACCEL_FIFO_EN=1) == 0x78
    assert m.fields["FIFO_OFLOW_INT"].extract(0x11) == 1
    assert m.fields["FIFO_OFLOW_INT"].extract(0x01) == 0


def test_field_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError):
        regs.MPU6050.fields["FS_SEL"].insert(0, 4)
    with pytest.raises(ValueError):
        regs.MPU6050.compose("CONFIG", FS_SEL=1)  # a field of another register


def test_lsm6_addresses():
    for m in (regs.LSM6DSOX, regs.LSM6DS3TRC):
        assert m.address("WHO_AM_I") == 0x0F
        assert m.address("CTRL1_XL") == 0x10 and m.address("CTRL2_G") == 0x11 and m.address("CTRL3_C") == 0x12
        assert m.address("OUTX_L_G") == 0x22 and m.address("OUTX_L_A") == 0x28
        assert m.address("FIFO_STATUS1") == 0x3A
        assert m.power_on_values()[0x12] == 0x04  # IF_INC set at power-on
    assert regs.LSM6DSOX.address("FIFO_CTRL3") == 0x09 and regs.LSM6DSOX.address("FIFO_CTRL4") == 0x0A
    assert regs.LSM6DSOX.address("FIFO_DATA_OUT_TAG") == 0x78
    assert regs.LSM6DS3TRC.address("FIFO_CTRL5") == 0x0A and regs.LSM6DS3TRC.address("FIFO_DATA_OUT_L") == 0x3E
    assert regs.LSM6DSOX.power_on_values()[0x0F] == 0x6C
    assert regs.LSM6DS3TRC.power_on_values()[0x0F] == 0x6A


@pytest.mark.parametrize(
    "range_g, expected",
    # ODR 104 Hz = 0100 in bits 7:4, then FS_XL in 3:2 with the odd order 00=2 g, 01=16 g, 10=4 g, 11=8 g
    [(2, 0x40), (4, 0x48), (8, 0x4C), (16, 0x44)],
)
def test_lsm6_ctrl1_xl(range_g, expected):
    code = regs.accel_range_code("lsm6dsox", range_g)
    assert regs.LSM6DSOX.compose("CTRL1_XL", ODR_XL=4, FS_XL=code) == expected


@pytest.mark.parametrize(
    "range_dps, expected",
    # ODR 104 Hz in 7:4, FS_G in 3:1: 0=250, 1=125, 2=500, 4=1000, 6=2000
    [(125, 0x42), (250, 0x40), (500, 0x44), (1000, 0x48), (2000, 0x4C)],
)
def test_lsm6_ctrl2_g(range_dps, expected):
    code = regs.gyro_range_code("lsm6dsox", range_dps)
    assert regs.LSM6DSOX.compose("CTRL2_G", ODR_G=4, FS_G=code) == expected


def test_lsm6_fifo_control_bytes():
    # FIFO_CTRL3: BDR_GY 104 Hz in 7:4 and BDR_XL 104 Hz in 3:0 -> 0x44; continuous mode 110 -> 0x06
    assert regs.LSM6DSOX.compose("FIFO_CTRL3", BDR_GY=4, BDR_XL=4) == 0x44
    assert regs.LSM6DSOX.compose("FIFO_CTRL4", FIFO_MODE=6) == 0x06
    # DS3TR-C: no decimation (001) for both -> 0b001_001 = 0x09; ODR_FIFO 104 Hz (0100) in 6:3 + mode 110 -> 0x26
    assert regs.LSM6DS3TRC.compose("FIFO_CTRL3", DEC_FIFO_GYRO=1, DEC_FIFO_XL=1) == 0x09
    assert regs.LSM6DS3TRC.compose("FIFO_CTRL5", ODR_FIFO=4, FIFO_MODE=6) == 0x26
    assert regs.LSM6DSOX.compose("CTRL3_C", BDU=1, IF_INC=1) == 0x44


def test_lsm6dsox_tag_bytes():
    # gyro (00001) with TAG_CNT 1: 00001 01 p -> 0x0A, two ones so parity 0
    assert regs.lsm6_tag_byte(regs.LSM6DSOX_TAG_GYRO, 1) == 0x0A
    # accel (00010) with TAG_CNT 3: 00010 11 p -> 0x16 has three ones -> parity 1 -> 0x17
    assert regs.lsm6_tag_byte(regs.LSM6DSOX_TAG_ACCEL, 3) == 0x17


# --- rates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate, expected",
    [
        (100, (3, 9, 100.0)),  # 1 kHz / (1 + 9), filter 44 Hz < 50 Hz
        (50, (4, 19, 50.0)),  # 1 kHz / 20, filter 21 Hz
        (200, (2, 4, 200.0)),  # 1 kHz / 5, filter 94 Hz
        (400, (0, 19, 400.0)),  # 8 kHz / 20 with the filter off: 1 kHz cannot make 400 Hz
    ],
)
def test_mpu6050_rate_settings(rate, expected):
    assert regs.mpu6050_rate_settings(rate) == expected


def test_mpu6050_sample_rate_formula():
    assert regs.mpu6050_sample_rate_hz(0, 7) == 1000.0  # 8 kHz / 8
    assert regs.mpu6050_sample_rate_hz(7, 0) == 8000.0
    assert regs.mpu6050_sample_rate_hz(1, 0) == 1000.0


@pytest.mark.parametrize("rate, expected", [(50, (3, 52.0)), (100, (4, 104.0)), (200, (5, 208.0)), (400, (6, 416.0))])
def test_lsm6_odr_never_below_the_request(rate, expected):
    assert regs.lsm6_odr_settings(rate) == expected


def test_mpu6050_temperature():
    assert regs.mpu6050_temperature_c(0) == pytest.approx(36.53)
    assert regs.mpu6050_temperature_c(-340) == pytest.approx(35.53)


# --- decoding hand-made byte vectors ------------------------------------------------------

# one MPU-6050 FIFO packet, big-endian: accel X=0x2000 (8192) Y=0xE000 (-8192) Z=0x4000 (16384),
# gyro X=0x0083 (131) Y=0xFF7D (-131) Z=0x0148 (328)
MPU_PACKET = bytes.fromhex("2000 E000 4000 0083 FF7D 0148")


@pytest.mark.parametrize(
    "range_g, accel_g",
    [
        (2, [0.5, -0.5, 1.0]),  # 16384 LSB/g
        (4, [1.0, -1.0, 2.0]),  # 8192 LSB/g
        (8, [2.0, -2.0, 4.0]),  # 4096 LSB/g
        (16, [4.0, -4.0, 8.0]),  # 2048 LSB/g
    ],
)
def test_mpu6050_accel_every_range(range_g, accel_g):
    accel_raw, _ = regs.decode_mpu6050_fifo(MPU_PACKET)
    accel = regs.counts_to_units(accel_raw, regs.accel_counts_per_g("mpu6050", range_g))
    np.testing.assert_allclose(accel, [accel_g])


@pytest.mark.parametrize(
    "range_dps, gyro_dps",
    [
        (250, [1.0, -1.0, 328 / 131]),  # 131 LSB/(deg/s)
        (500, [2.0, -2.0, 328 / 65.5]),  # 65.5
        (1000, [131 / 32.8, -131 / 32.8, 10.0]),  # 32.8
        (2000, [131 / 16.4, -131 / 16.4, 20.0]),  # 16.4
    ],
)
def test_mpu6050_gyro_every_range(range_dps, gyro_dps):
    _, gyro_raw = regs.decode_mpu6050_fifo(MPU_PACKET)
    gyro = regs.counts_to_units(gyro_raw, regs.gyro_counts_per_dps("mpu6050", range_dps))
    np.testing.assert_allclose(gyro, [gyro_dps])


def test_mpu6050_decodes_several_packets_and_refuses_partial_ones():
    accel, gyro = regs.decode_mpu6050_fifo(MPU_PACKET + bytes.fromhex("7FFF 8000 0000 0001 FFFF 0000"))
    assert accel.tolist() == [[8192, -8192, 16384], [32767, -32768, 0]]
    assert gyro.tolist() == [[131, -131, 328], [1, -1, 0]]
    with pytest.raises(ValueError):
        regs.decode_mpu6050_fifo(MPU_PACKET[:11])


# LSM6DSOX: a gyro word (tag 0x0A: gyro, TAG_CNT 1) then an accel word (tag 0x12: accel, TAG_CNT 1),
# little-endian: gyro X=0x0400 (1024) Y=0xFC00 (-1024) Z=0; accel X=0x1000 (4096) Y=0xF000 (-4096) Z=0x4000 (16384)
DSOX_WORDS = bytes.fromhex("0A 0004 00FC 0000  12 0010 00F0 0040")


def test_lsm6dsox_word_decoding():
    sensors, counts, xyz = regs.decode_lsm6dsox_words(DSOX_WORDS)
    assert sensors.tolist() == [1, 2]
    assert counts.tolist() == [1, 1]
    assert xyz.tolist() == [[1024, -1024, 0], [4096, -4096, 16384]]
    with pytest.raises(ValueError):
        regs.decode_lsm6dsox_words(DSOX_WORDS[:13])


@pytest.mark.parametrize(
    "range_g, mg_per_lsb",
    [(2, 0.061), (4, 0.122), (8, 0.244), (16, 0.488)],
)
def test_lsm6_accel_every_range(range_g, mg_per_lsb):
    _, _, xyz = regs.decode_lsm6dsox_words(DSOX_WORDS)
    accel = regs.counts_to_units(xyz[1], regs.accel_counts_per_g("lsm6dsox", range_g))
    # by hand: 4096 * 0.061 mg = 0.249856 g at +/-2 g, doubling with each range
    expected = {2: 0.249856, 4: 0.499712, 8: 0.999424, 16: 1.998848}[range_g]
    np.testing.assert_allclose(accel, [expected, -expected, 4 * expected])
    assert expected == pytest.approx(4096 * mg_per_lsb / 1000)


@pytest.mark.parametrize(
    "range_dps, expected",
    # 1024 counts * 4.375 / 8.75 / 17.5 / 35 / 70 mdps
    [(125, 4.48), (250, 8.96), (500, 17.92), (1000, 35.84), (2000, 71.68)],
)
def test_lsm6_gyro_every_range(range_dps, expected):
    _, _, xyz = regs.decode_lsm6dsox_words(DSOX_WORDS)
    gyro = regs.counts_to_units(xyz[0], regs.gyro_counts_per_dps("lsm6ds3trc", range_dps))
    np.testing.assert_allclose(gyro, [expected, -expected, 0.0])


def test_lsm6ds3trc_pattern_decoding_gyro_first():
    # Gx Gy Gz Ax Ay Az, 16-bit little-endian words
    pattern = bytes.fromhex("0004 00FC 0000 0010 00F0 0040")
    accel, gyro = regs.decode_lsm6ds3trc_fifo(pattern)
    assert gyro.tolist() == [[1024, -1024, 0]]
    assert accel.tolist() == [[4096, -4096, 16384]]
    with pytest.raises(ValueError):
        regs.decode_lsm6ds3trc_fifo(pattern[:10])


def test_unknown_ranges_are_refused():
    with pytest.raises(ValueError):
        regs.accel_counts_per_g("mpu6050", 3)
    with pytest.raises(ValueError):
        regs.gyro_counts_per_dps("mpu6050", 125)  # only the LSM6 has +/-125 deg/s


def test_quantisation_rounds_and_clips():
    lsb = regs.accel_counts_per_g("mpu6050", 4)  # 8192 per g
    counts = regs.units_to_counts(np.array([1.0, 1.00006, -1.0, 5.0, -5.0]), lsb)
    assert counts.tolist() == [8192, 8192, -8192, 32767, -32768]


def test_encode_is_the_inverse_of_decode():
    raw = np.array([1, -1, 32767, -32768, 256, -256], dtype=np.int16)
    assert regs.encode_int16(raw, ">") == bytes.fromhex("0001 FFFF 7FFF 8000 0100 FF00")
    assert regs.encode_int16(raw, "<") == bytes.fromhex("0100 FFFF FF7F 0080 0001 00FF")
