"""Register maps of the supported IMUs, as data, and the pure functions that scale them.

Nothing here touches a bus: the drivers (mpu6050.py, lsm6dsox.py) and the
emulators (sim/imu_emulator.py) read the same tables, so a wrong address or
scale shows up in the tests of both. Datasheet sections are named in comments:

- MPU-6050: InvenSense "MPU-6000/MPU-6050 Register Map and Descriptions" RM-MPU-6000A-00 rev 4.2
  (section numbers "RM 4.x") and the product specification PS-MPU-6000A-00 rev 3.4 ("PS 7.x").
- LSM6DSOX: ST datasheet DS12814 rev 3 ("DSOX 9.x" register descriptions, "DSOX 8" the map).
- LSM6DS3TR-C: ST datasheet DS12491 rev 3 ("DS3TRC 9.x"), application note AN5130 ("AN5130 8").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- generic descriptions ----------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    """One 8-bit register: its name, address and value after power-on."""

    name: str
    address: int
    reset: int = 0x00
    doc: str = ""


@dataclass(frozen=True)
class Field:
    """A bit field inside a register: ``width`` bits starting at bit ``shift``."""

    register: str
    shift: int
    width: int
    doc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    def extract(self, register_value: int) -> int:
        return (register_value & self.mask) >> self.shift

    def insert(self, register_value: int, field_value: int) -> int:
        if not 0 <= field_value < (1 << self.width):
            raise ValueError(f"{field_value} does not fit in a {self.width}-bit field")
        return (register_value & ~self.mask & 0xFF) | (field_value << self.shift)


@dataclass(frozen=True)
class RegisterMap:
    """A chip's registers and fields, looked up by name."""

    chip: str
    registers: tuple[Register, ...]
    fields: dict[str, Field]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {r.name: r for r in self.registers})

    def address(self, name: str) -> int:
        return self._by_name[name].address  # type: ignore[attr-defined]

    def register(self, name: str) -> Register:
        return self._by_name[name]  # type: ignore[attr-defined]

    def compose(self, register: str, **field_values: int) -> int:
        """The byte to write to ``register`` with the given fields set and the others zero."""
        value = 0
        for name, field_value in field_values.items():
            field = self.fields[name]
            if field.register != register:
                raise ValueError(f"field {name} belongs to {field.register}, not {register}")
            value = field.insert(value, field_value)
        return value

    def power_on_values(self) -> dict[int, int]:
        return {r.address: r.reset for r in self.registers}


# --- MPU-6050 --------------------------------------------------------------------------

MPU6050 = RegisterMap(
    chip="mpu6050",
    registers=(
        Register("SMPLRT_DIV", 0x19, doc="RM 4.2: sample rate = gyro output rate / (1 + SMPLRT_DIV)"),
        Register("CONFIG", 0x1A, doc="RM 4.3: EXT_SYNC_SET 5:3, DLPF_CFG 2:0"),
        Register("GYRO_CONFIG", 0x1B, doc="RM 4.4: FS_SEL 4:3"),
        Register("ACCEL_CONFIG", 0x1C, doc="RM 4.5: AFS_SEL 4:3"),
        Register("FIFO_EN", 0x23, doc="RM 4.7: which outputs enter the FIFO"),
        Register("INT_PIN_CFG", 0x37, doc="RM 4.15"),
        Register("INT_ENABLE", 0x38, doc="RM 4.16"),
        Register("INT_STATUS", 0x3A, doc="RM 4.17: bit4 FIFO_OFLOW_INT, bit0 DATA_RDY_INT; cleared on read"),
        Register("ACCEL_XOUT_H", 0x3B, doc="RM 4.18: accel X,Y,Z 0x3B-0x40, big-endian"),
        Register("TEMP_OUT_H", 0x41, doc="RM 4.19: deg C = raw / 340 + 36.53"),
        Register("GYRO_XOUT_H", 0x43, doc="RM 4.20: gyro X,Y,Z 0x43-0x48, big-endian"),
        Register("SIGNAL_PATH_RESET", 0x68, doc="RM 4.26"),
        Register("USER_CTRL", 0x6A, doc="RM 4.27: bit6 FIFO_EN, bit2 FIFO_RESET"),
        Register("PWR_MGMT_1", 0x6B, reset=0x40, doc="RM 4.28: powers up asleep"),
        Register("PWR_MGMT_2", 0x6C, doc="RM 4.29"),
        Register("FIFO_COUNTH", 0x72, doc="RM 4.30: read high byte first"),
        Register("FIFO_COUNTL", 0x73),
        Register("FIFO_R_W", 0x74, doc="RM 4.31: a burst read pops successive bytes"),
        Register("WHO_AM_I", 0x75, reset=0x68, doc="RM 4.32"),
    ),
    fields={
        "EXT_SYNC_SET": Field("CONFIG", 3, 3),
        # The low-pass filter is bits 2:0 (RM 4.3). A widely copied driver writes it at 4:3.
        "DLPF_CFG": Field("CONFIG", 0, 3),
        "FS_SEL": Field("GYRO_CONFIG", 3, 2),
        "AFS_SEL": Field("ACCEL_CONFIG", 3, 2),
        "TEMP_FIFO_EN": Field("FIFO_EN", 7, 1),
        "XG_FIFO_EN": Field("FIFO_EN", 6, 1),
        "YG_FIFO_EN": Field("FIFO_EN", 5, 1),
        "ZG_FIFO_EN": Field("FIFO_EN", 4, 1),
        "ACCEL_FIFO_EN": Field("FIFO_EN", 3, 1),
        "FIFO_OFLOW_INT": Field("INT_STATUS", 4, 1),
        "DATA_RDY_INT": Field("INT_STATUS", 0, 1),
        "FIFO_ENABLE": Field("USER_CTRL", 6, 1),
        "FIFO_RESET": Field("USER_CTRL", 2, 1),
        "DEVICE_RESET": Field("PWR_MGMT_1", 7, 1),
        "SLEEP": Field("PWR_MGMT_1", 6, 1),
        "CYCLE": Field("PWR_MGMT_1", 5, 1),
        "TEMP_DIS": Field("PWR_MGMT_1", 3, 1),
        "CLKSEL": Field("PWR_MGMT_1", 0, 3),
    },
)

MPU6050_FIFO_BYTES = 1024  # PS 7.17
MPU6050_PACKET_BYTES = 12  # accel X,Y,Z then gyro X,Y,Z: bytes enter in register order (RM 4.7)
MPU6050_CLKSEL_PLL_XGYRO = 1  # RM 4.28: more stable than the internal 8 MHz oscillator

# full-scale range -> (field code, LSB per unit): PS 6.1 and 6.2, RM 4.4 and 4.5
MPU6050_ACCEL_RANGES: dict[int, tuple[int, float]] = {2: (0, 16384.0), 4: (1, 8192.0), 8: (2, 4096.0), 16: (3, 2048.0)}
MPU6050_GYRO_RANGES: dict[int, tuple[int, float]] = {250: (0, 131.0), 500: (1, 65.5), 1000: (2, 32.8), 2000: (3, 16.4)}

# DLPF_CFG -> accel bandwidth in Hz (RM 4.3). 0 and 7 leave the gyro output rate at 8 kHz.
MPU6050_DLPF_BANDWIDTH_HZ: dict[int, float] = {0: 260.0, 1: 184.0, 2: 94.0, 3: 44.0, 4: 21.0, 5: 10.0, 6: 5.0}

# WHO_AM_I values of the MPU-6050 and the chips sold as one. Genuine first; the others
# behave alike for what kneeroll uses (ranges, rate divider, FIFO, INT_STATUS) and are
# accepted with a warning that names them.
MPU6050_GENUINE_IDS = {0x68: "MPU-6050"}
MPU6050_COMPATIBLE_IDS = {
    0x70: "MPU-6500",
    0x71: "MPU-9250",
    0x72: "MPU-6050 clone (WHO_AM_I 0x72)",
    0x73: "MPU-9255",
    0x98: "MPU-6050 clone (WHO_AM_I 0x98)",
}


def mpu6050_gyro_output_rate_hz(dlpf_cfg: int) -> float:
    """RM 4.2: 8 kHz when the low-pass filter is off (0 or 7), else 1 kHz."""
    return 8000.0 if dlpf_cfg in (0, 7) else 1000.0


def mpu6050_sample_rate_hz(dlpf_cfg: int, smplrt_div: int) -> float:
    return mpu6050_gyro_output_rate_hz(dlpf_cfg) / (1 + smplrt_div)


def mpu6050_rate_settings(rate_hz: float) -> tuple[int, int, float]:
    """(DLPF_CFG, SMPLRT_DIV, actual rate) for the rate closest to ``rate_hz``.

    A 1 kHz base with the widest filter below the Nyquist frequency is preferred (less
    aliasing); the 8 kHz base (filter off, 260 Hz) is used only when it hits the
    requested rate more closely, e.g. 400 Hz = 8000 / 20.
    """
    candidates: list[tuple[float, int, int, int]] = []
    for base, preferred in ((1000.0, 0), (8000.0, 1)):
        divider = max(0, min(255, round(base / rate_hz) - 1))
        actual = base / (1 + divider)
        if base == 8000.0:
            dlpf = 0
        else:
            # the widest bandwidth that stays below half the sample rate
            dlpf = next((c for c in range(1, 7) if MPU6050_DLPF_BANDWIDTH_HZ[c] <= actual / 2), 6)
        candidates.append((abs(actual - rate_hz), preferred, dlpf, divider))
    _, _, dlpf, divider = min(candidates)
    return dlpf, divider, mpu6050_sample_rate_hz(dlpf, divider)


def mpu6050_temperature_c(raw: int | np.ndarray) -> float | np.ndarray:
    """RM 4.19."""
    return raw / 340.0 + 36.53


# --- LSM6DSOX and LSM6DS3TR-C (one family: same control registers, different FIFOs) -----

_LSM6_COMMON = (
    Register("FUNC_CFG_ACCESS", 0x01, doc="DSOX 9.1"),
    Register("INT1_CTRL", 0x0D, doc="DSOX 9.14"),
    Register("INT2_CTRL", 0x0E, doc="DSOX 9.15"),
    Register("CTRL1_XL", 0x10, doc="DSOX 9.16: ODR_XL 7:4, FS_XL 3:2 (00=2g 01=16g 10=4g 11=8g)"),
    Register("CTRL2_G", 0x11, doc="DSOX 9.17: ODR_G 7:4, FS_G 3:1 (0=250 1=125 2=500 4=1000 6=2000)"),
    Register("CTRL3_C", 0x12, reset=0x04, doc="DSOX 9.18: BOOT 7, BDU 6, IF_INC 2, SW_RESET 0"),
    Register("CTRL4_C", 0x13),
    Register("CTRL5_C", 0x14),
    Register("CTRL6_C", 0x15),
    Register("CTRL7_G", 0x16),
    Register("CTRL8_XL", 0x17),
    Register("STATUS_REG", 0x1E, doc="DSOX 9.26: bit1 GDA, bit0 XLDA"),
    Register("OUT_TEMP_L", 0x20, doc="DSOX 9.27: 256 LSB/deg C, 0 = 25 deg C"),
    Register("OUTX_L_G", 0x22, doc="DSOX 9.29: gyro X,Y,Z 0x22-0x27, little-endian"),
    Register("OUTX_L_A", 0x28, doc="DSOX 9.35: accel X,Y,Z 0x28-0x2D, little-endian"),
)

# the control bits both chips place alike (in the registers of _LSM6_COMMON)
_LSM6_COMMON_FIELDS = {
    "ODR_XL": Field("CTRL1_XL", 4, 4),
    "FS_XL": Field("CTRL1_XL", 2, 2),
    "ODR_G": Field("CTRL2_G", 4, 4),
    "FS_G": Field("CTRL2_G", 1, 3),
    "BOOT": Field("CTRL3_C", 7, 1),
    "BDU": Field("CTRL3_C", 6, 1),
    "IF_INC": Field("CTRL3_C", 2, 1),
    "SW_RESET": Field("CTRL3_C", 0, 1),
}

LSM6DSOX = RegisterMap(
    chip="lsm6dsox",
    registers=_LSM6_COMMON
    + (
        Register("FIFO_CTRL1", 0x07, doc="DSOX 9.2: watermark 7:0"),
        Register("FIFO_CTRL2", 0x08, doc="DSOX 9.3"),
        Register("FIFO_CTRL3", 0x09, doc="DSOX 9.4: BDR_GY 7:4, BDR_XL 3:0"),
        Register("FIFO_CTRL4", 0x0A, doc="DSOX 9.5: FIFO_MODE 2:0"),
        Register("WHO_AM_I", 0x0F, reset=0x6C, doc="DSOX 9.13"),
        Register("CTRL9_XL", 0x18, reset=0xE0, doc="DSOX 9.24: bit1 I3C_disable"),
        Register("CTRL10_C", 0x19),
        Register("FIFO_STATUS1", 0x3A, doc="DSOX 9.44: DIFF_FIFO 7:0 (words)"),
        Register("FIFO_STATUS2", 0x3B, doc="DSOX 9.45: WTM 7, OVR 6, FULL 5, OVR_LATCHED 3, DIFF_FIFO 9:8 in 1:0"),
        Register("FIFO_DATA_OUT_TAG", 0x78, doc="DSOX 9.81: TAG_SENSOR 7:3, TAG_CNT 2:1, TAG_PARITY 0"),
        Register("FIFO_DATA_OUT_X_L", 0x79, doc="DSOX 9.82-9.87: 6 data bytes 0x79-0x7E"),
    ),
    fields={
        **_LSM6_COMMON_FIELDS,
        "I3C_DISABLE": Field("CTRL9_XL", 1, 1),
        "BDR_GY": Field("FIFO_CTRL3", 4, 4),
        "BDR_XL": Field("FIFO_CTRL3", 0, 4),
        "FIFO_MODE": Field("FIFO_CTRL4", 0, 3),
        "FIFO_WTM_IA": Field("FIFO_STATUS2", 7, 1),
        "FIFO_OVR_IA": Field("FIFO_STATUS2", 6, 1),
        "FIFO_FULL_IA": Field("FIFO_STATUS2", 5, 1),
        "FIFO_OVR_LATCHED": Field("FIFO_STATUS2", 3, 1),
        "DIFF_FIFO_HIGH": Field("FIFO_STATUS2", 0, 2),
        "TAG_SENSOR": Field("FIFO_DATA_OUT_TAG", 3, 5),
        "TAG_CNT": Field("FIFO_DATA_OUT_TAG", 1, 2),
        "TAG_PARITY": Field("FIFO_DATA_OUT_TAG", 0, 1),
    },
)

LSM6DSOX_FIFO_WORDS = 512  # DSOX 9.44: 9-bit level; a word is a tag byte and 6 data bytes
LSM6DSOX_WORD_BYTES = 7
LSM6DSOX_TAG_GYRO = 0x01  # DSOX table 115: TAG_SENSOR values
LSM6DSOX_TAG_ACCEL = 0x02
LSM6DSOX_TAG_MAX_VALID = 0x19  # 0x01..0x19 are defined; anything else means a misread tag

LSM6DS3TRC = RegisterMap(
    chip="lsm6ds3trc",
    registers=_LSM6_COMMON
    + (
        Register("FIFO_CTRL1", 0x06, doc="DS3TRC 9.2: watermark 7:0"),
        Register("FIFO_CTRL2", 0x07, doc="DS3TRC 9.3"),
        Register("FIFO_CTRL3", 0x08, doc="DS3TRC 9.4: DEC_FIFO_GYRO 5:3, DEC_FIFO_XL 2:0"),
        Register("FIFO_CTRL4", 0x09, doc="DS3TRC 9.5"),
        Register("FIFO_CTRL5", 0x0A, doc="DS3TRC 9.6: ODR_FIFO 6:3, FIFO_MODE 2:0"),
        Register("WHO_AM_I", 0x0F, reset=0x6A, doc="DS3TRC 9.13"),
        Register("CTRL9_XL", 0x18, doc="DS3TRC 9.24"),
        Register("CTRL10_C", 0x19),
        Register("FIFO_STATUS1", 0x3A, doc="DS3TRC 9.44: DIFF_FIFO 7:0 (16-bit words)"),
        Register("FIFO_STATUS2", 0x3B, doc="DS3TRC 9.45: WaterM 7, OVER_RUN 6, FULL_SMART 5, EMPTY 4, DIFF 10:8 in 2:0"),
        Register("FIFO_STATUS3", 0x3C, doc="DS3TRC 9.46: FIFO_PATTERN 7:0 (next word's place in the pattern)"),
        Register("FIFO_STATUS4", 0x3D, doc="DS3TRC 9.47: FIFO_PATTERN 9:8"),
        Register("FIFO_DATA_OUT_L", 0x3E, doc="DS3TRC 9.48: one 16-bit word, little-endian"),
        Register("FIFO_DATA_OUT_H", 0x3F),
    ),
    fields={
        **_LSM6_COMMON_FIELDS,
        "DEC_FIFO_GYRO": Field("FIFO_CTRL3", 3, 3),
        "DEC_FIFO_XL": Field("FIFO_CTRL3", 0, 3),
        "ODR_FIFO": Field("FIFO_CTRL5", 3, 4),
        "FIFO_MODE": Field("FIFO_CTRL5", 0, 3),
        "WATERM": Field("FIFO_STATUS2", 7, 1),
        "OVER_RUN": Field("FIFO_STATUS2", 6, 1),
        "FIFO_FULL_SMART": Field("FIFO_STATUS2", 5, 1),
        "FIFO_EMPTY": Field("FIFO_STATUS2", 4, 1),
        "DIFF_FIFO_HIGH": Field("FIFO_STATUS2", 0, 3),
        "FIFO_PATTERN_HIGH": Field("FIFO_STATUS4", 0, 2),
    },
)

LSM6DS3TRC_FIFO_WORDS = 2048  # 4 kbyte of 16-bit words (AN5130 8.1)
LSM6DS3TRC_PATTERN_WORDS = 6  # gyro X,Y,Z then accel X,Y,Z when both run undecimated (AN5130 8.2)

LSM6_FIFO_MODE_BYPASS = 0b000  # DSOX 9.5 and DS3TRC 9.6: same codes on both
LSM6_FIFO_MODE_FIFO = 0b001
LSM6_FIFO_MODE_CONTINUOUS = 0b110
LSM6_NO_DECIMATION = 0b001  # DS3TRC 9.4

# full-scale range -> (field code, LSB per unit). DSOX table 2 gives mg/LSB and mdps/LSB.
LSM6_ACCEL_RANGES: dict[int, tuple[int, float]] = {
    2: (0b00, 1000.0 / 0.061),
    4: (0b10, 1000.0 / 0.122),
    8: (0b11, 1000.0 / 0.244),
    16: (0b01, 1000.0 / 0.488),
}
LSM6_GYRO_RANGES: dict[int, tuple[int, float]] = {
    125: (0b001, 1000.0 / 4.375),
    250: (0b000, 1000.0 / 8.75),
    500: (0b010, 1000.0 / 17.5),
    1000: (0b100, 1000.0 / 35.0),
    2000: (0b110, 1000.0 / 70.0),
}
# ODR field code -> output rate in Hz (DSOX table 52, DS3TRC table 52). FIFO batch rates share the codes.
LSM6_ODR_HZ: dict[int, float] = {
    1: 12.5, 2: 26.0, 3: 52.0, 4: 104.0, 5: 208.0, 6: 416.0,
    7: 833.0, 8: 1666.0, 9: 3333.0, 10: 6667.0,
}

# WHO_AM_I -> (family, name, genuine). The LSM6DS3 shares the LSM6DS3TR-C's FIFO scheme.
LSM6_IDS: dict[int, tuple[str, str, bool]] = {
    0x6C: ("lsm6dsox", "LSM6DSOX", True),
    0x6A: ("lsm6ds3trc", "LSM6DS3TR-C", True),
    0x69: ("lsm6ds3trc", "LSM6DS3", False),
}


def lsm6_odr_settings(rate_hz: float) -> tuple[int, float]:
    """(ODR code, actual rate): the slowest ODR at or above ``rate_hz`` (never under-sample)."""
    for code, actual in sorted(LSM6_ODR_HZ.items()):
        if actual >= rate_hz - 1e-9:
            return code, actual
    return max(LSM6_ODR_HZ), LSM6_ODR_HZ[max(LSM6_ODR_HZ)]


def lsm6_tag_byte(sensor: int, count: int) -> int:
    """A FIFO tag byte (DSOX 9.81). The drivers ignore TAG_PARITY; the emulator makes the bit count even."""
    without_parity = (sensor << 3) | ((count & 0b11) << 1)
    return without_parity | (bin(without_parity).count("1") & 1)


# --- scaling: pure functions -------------------------------------------------------------

CHIP_ACCEL_RANGES = {"mpu6050": MPU6050_ACCEL_RANGES, "lsm6dsox": LSM6_ACCEL_RANGES, "lsm6ds3trc": LSM6_ACCEL_RANGES}
CHIP_GYRO_RANGES = {"mpu6050": MPU6050_GYRO_RANGES, "lsm6dsox": LSM6_GYRO_RANGES, "lsm6ds3trc": LSM6_GYRO_RANGES}


def accel_counts_per_g(family: str, range_g: int) -> float:
    try:
        return CHIP_ACCEL_RANGES[family][range_g][1]
    except KeyError:
        raise ValueError(f"{family} has no +/-{range_g} g range") from None


def gyro_counts_per_dps(family: str, range_dps: int) -> float:
    try:
        return CHIP_GYRO_RANGES[family][range_dps][1]
    except KeyError:
        raise ValueError(f"{family} has no +/-{range_dps} deg/s range") from None


def accel_range_code(family: str, range_g: int) -> int:
    accel_counts_per_g(family, range_g)  # validates
    return CHIP_ACCEL_RANGES[family][range_g][0]


def gyro_range_code(family: str, range_dps: int) -> int:
    gyro_counts_per_dps(family, range_dps)
    return CHIP_GYRO_RANGES[family][range_dps][0]


def counts_to_units(raw: np.ndarray, counts_per_unit: float) -> np.ndarray:
    """Raw signed counts to g or deg/s."""
    return np.asarray(raw, dtype=np.float64) / counts_per_unit


def units_to_counts(values: np.ndarray, counts_per_unit: float) -> np.ndarray:
    """g or deg/s to the counts a chip would report: rounded and clipped to int16."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * counts_per_unit)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def decode_int16(data: bytes, byte_order: str) -> np.ndarray:
    """Signed 16-bit words: byte_order '>' (MPU-6050) or '<' (LSM6)."""
    return np.frombuffer(bytes(data), dtype=np.dtype(f"{byte_order}i2")).astype(np.int32)


def decode_mpu6050_fifo(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Whole 12-byte MPU-6050 packets -> raw (accel (N,3), gyro (N,3)) counts, big-endian."""
    if len(data) % MPU6050_PACKET_BYTES:
        raise ValueError(f"{len(data)} bytes is not a whole number of {MPU6050_PACKET_BYTES}-byte packets")
    words = decode_int16(data, ">").reshape(-1, 6)
    return words[:, 0:3], words[:, 3:6]


def decode_lsm6dsox_words(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """7-byte LSM6DSOX FIFO words -> (TAG_SENSOR (N,), TAG_CNT (N,), raw XYZ (N,3))."""
    if len(data) % LSM6DSOX_WORD_BYTES:
        raise ValueError(f"{len(data)} bytes is not a whole number of {LSM6DSOX_WORD_BYTES}-byte words")
    block = np.frombuffer(bytes(data), dtype=np.uint8).reshape(-1, LSM6DSOX_WORD_BYTES)
    tags = block[:, 0].astype(np.int32)
    xyz = block[:, 1:].copy().view("<i2").astype(np.int32)
    return tags >> 3, (tags >> 1) & 0b11, xyz


def decode_lsm6ds3trc_fifo(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Whole 6-word LSM6DS3TR-C patterns -> raw (accel (N,3), gyro (N,3)); gyro comes first."""
    pattern_bytes = 2 * LSM6DS3TRC_PATTERN_WORDS
    if len(data) % pattern_bytes:
        raise ValueError(f"{len(data)} bytes is not a whole number of {pattern_bytes}-byte patterns")
    words = decode_int16(data, "<").reshape(-1, 6)
    return words[:, 3:6], words[:, 0:3]


def encode_int16(raw: np.ndarray, byte_order: str) -> bytes:
    return np.asarray(raw, dtype=np.int16).astype(np.dtype(f"{byte_order}i2")).tobytes()
