"""LSM6DSOX and LSM6DS3TR-C on smbus2, FIFO streaming.

The two share their control registers (CTRL1_XL, CTRL2_G, CTRL3_C) but not their FIFO:

- LSM6DSOX: tagged 7-byte words (a tag byte, then X,Y,Z little-endian). A gyro word and an
  accel word with the same TAG_CNT make one sample; TAG_CNT steps by one per sample
  period, which also reveals a lost word.
- LSM6DS3TR-C (and LSM6DS3): untagged 16-bit words in a fixed pattern, gyro X,Y,Z then
  accel X,Y,Z; FIFO_STATUS3/4 give the pattern position of the next word, so a
  misaligned FIFO is seen before it is read.

Both roll the register address over inside the FIFO output registers during a burst
(0x7E back to 0x78; 0x3F back to 0x3E) when IF_INC is set, so many words come in one read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import registers as regs
from .bus import I2cBus, read_burst
from .chip import ChipIdentity, FifoMisaligned, FifoStatus, RegisterDriver

SW_RESET_WAIT_S = 0.01  # DSOX 9.18: the reset takes about 50 us; poll after 10 ms
TURN_ON_S = 0.08  # DSOX table 3: gyro turn-on 70 ms; earlier samples are not trustworthy


class _Lsm6Base(RegisterDriver):
    """Setup shared by the family; subclasses provide the FIFO."""

    REGISTERS: regs.RegisterMap
    family: str

    def __init__(self, bus: I2cBus, address: int, identity: ChipIdentity, rate_hz: float,
                 accel_range_g: int, gyro_range_dps: int, clock: Any):
        super().__init__(bus, address, identity, clock, accel_range_g, gyro_range_dps)
        self.odr_code, self.rate_hz = regs.lsm6_odr_settings(rate_hz)
        self.accel_counts_per_g = regs.accel_counts_per_g(self.family, accel_range_g)
        self.gyro_counts_per_dps = regs.gyro_counts_per_dps(self.family, gyro_range_dps)
        r = self.REGISTERS
        # CTRL1_XL, CTRL2_G, CTRL3_C as they must read back once configured
        self._settings = [
            r.compose("CTRL1_XL", ODR_XL=self.odr_code, FS_XL=regs.accel_range_code(self.family, accel_range_g)),
            r.compose("CTRL2_G", ODR_G=self.odr_code, FS_G=regs.gyro_range_code(self.family, gyro_range_dps)),
            # block data update: no sample mixes two periods; IF_INC: bursts walk the registers
            r.compose("CTRL3_C", BDU=1, IF_INC=1),
        ]

    def configure(self) -> None:
        r = self.REGISTERS
        self._write("CTRL3_C", r.compose("CTRL3_C", SW_RESET=1))
        for _ in range(10):
            self.clock.sleep(SW_RESET_WAIT_S)
            if not r.fields["SW_RESET"].extract(self._read("CTRL3_C")):
                break
        self._write("CTRL3_C", self._settings[2])
        self._extra_setup()
        self.bus.write_i2c_block_data(self.address, r.address("CTRL1_XL"), self._settings[:2])
        if not self.is_configured():
            got = self.bus.read_i2c_block_data(self.address, r.address("CTRL1_XL"), 3)
            raise self._settings_not_kept(self._settings, "CTRL1_XL", got)
        self.clock.sleep(TURN_ON_S)
        self.reset_fifo()

    def _extra_setup(self) -> None:
        """Chip-specific writes between the reset and the ODR settings."""

    def is_configured(self) -> bool:
        return self.bus.read_i2c_block_data(self.address, self.REGISTERS.address("CTRL1_XL"), 3) == self._settings

    def power_down(self) -> None:
        # ODR 0 is power-down for both sensors (DSOX 9.16, 9.17)
        self.bus.write_i2c_block_data(self.address, self.REGISTERS.address("CTRL1_XL"), [0x00, 0x00])


class Lsm6dsoxDriver(_Lsm6Base):
    REGISTERS = regs.LSM6DSOX
    family = "lsm6dsox"
    WORD = regs.LSM6DSOX_WORD_BYTES
    BURST_CHUNK = (8192 // regs.LSM6DSOX_WORD_BYTES) * regs.LSM6DSOX_WORD_BYTES

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._words_waiting = 0
        self._pending: bytes = b""  # a word whose partner was not in the FIFO yet
        self._last_tag_count: int | None = None

    def _extra_setup(self) -> None:
        # DSOX 9.24: with I2C only, disable the I3C interface so bus glitches cannot switch it on
        r = self.REGISTERS
        self._write("CTRL9_XL", r.fields["I3C_DISABLE"].insert(r.register("CTRL9_XL").reset, 1))

    def reset_fifo(self) -> None:
        r = self.REGISTERS
        self._write("FIFO_CTRL4", r.compose("FIFO_CTRL4", FIFO_MODE=regs.LSM6_FIFO_MODE_BYPASS))  # empties it
        self._write("FIFO_CTRL3", r.compose("FIFO_CTRL3", BDR_GY=self.odr_code, BDR_XL=self.odr_code))
        self._write("FIFO_CTRL4", r.compose("FIFO_CTRL4", FIFO_MODE=regs.LSM6_FIFO_MODE_CONTINUOUS))
        self._pending = b""
        self._last_tag_count = None
        self._words_waiting = 0

    def fifo_status(self) -> FifoStatus:
        r = self.REGISTERS
        status1, status2 = self.bus.read_i2c_block_data(self.address, r.address("FIFO_STATUS1"), 2)
        words = status1 | (r.fields["DIFF_FIFO_HIGH"].extract(status2) << 8)
        overflow = bool(r.fields["FIFO_OVR_IA"].extract(status2) or r.fields["FIFO_OVR_LATCHED"].extract(status2))
        self._words_waiting = words
        pending_words = len(self._pending) // self.WORD
        return FifoStatus(samples=(words + pending_words) // 2, overflow=overflow)

    def read_fifo(self, samples: int) -> tuple[np.ndarray, np.ndarray]:
        words = self._words_waiting
        self._words_waiting = 0
        data = self._pending + read_burst(
            self.bus, self.address, self.REGISTERS.address("FIFO_DATA_OUT_TAG"), words * self.WORD, self.BURST_CHUNK
        )
        usable = (len(data) // (2 * self.WORD)) * 2 * self.WORD
        self._pending = data[usable:]
        return self._pair(data[:usable])

    def _pair(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Gyro and accel words with the same TAG_CNT -> one sample; anything else is misalignment."""
        if not data:
            return np.zeros((0, 3), np.int32), np.zeros((0, 3), np.int32)
        sensors, counts, xyz = regs.decode_lsm6dsox_words(data)
        sensors, counts, xyz = sensors.reshape(-1, 2), counts.reshape(-1, 2), xyz.reshape(-1, 2, 3)
        if np.any(counts[:, 0] != counts[:, 1]):
            raise FifoMisaligned("a gyro and an accel word of different periods were paired")
        gyro_first = sensors[:, 0] == regs.LSM6DSOX_TAG_GYRO
        pair_ok = np.where(gyro_first, sensors[:, 1] == regs.LSM6DSOX_TAG_ACCEL,
                           (sensors[:, 0] == regs.LSM6DSOX_TAG_ACCEL) & (sensors[:, 1] == regs.LSM6DSOX_TAG_GYRO))
        if not np.all(pair_ok):
            raise FifoMisaligned(f"unexpected FIFO tags {sorted(set(sensors.ravel().tolist()))}")
        self._check_tag_sequence(counts[:, 0])
        gyro = np.where(gyro_first[:, None], xyz[:, 0], xyz[:, 1])
        accel = np.where(gyro_first[:, None], xyz[:, 1], xyz[:, 0])
        return accel, gyro

    def _check_tag_sequence(self, counts: np.ndarray) -> None:
        previous = counts[:-1] if self._last_tag_count is None else np.concatenate(([self._last_tag_count], counts[:-1]))
        following = counts if self._last_tag_count is not None else counts[1:]
        if np.any((following - previous) % 4 != 1):
            raise FifoMisaligned("TAG_CNT skipped: a sample period is missing")
        self._last_tag_count = int(counts[-1])


class Lsm6ds3trcDriver(_Lsm6Base):
    REGISTERS = regs.LSM6DS3TRC
    family = "lsm6ds3trc"
    PATTERN_BYTES = 2 * regs.LSM6DS3TRC_PATTERN_WORDS
    BURST_CHUNK = (8192 // (2 * regs.LSM6DS3TRC_PATTERN_WORDS)) * 2 * regs.LSM6DS3TRC_PATTERN_WORDS

    def reset_fifo(self) -> None:
        r = self.REGISTERS
        self._write("FIFO_CTRL5", r.compose("FIFO_CTRL5", FIFO_MODE=regs.LSM6_FIFO_MODE_BYPASS))  # empties it
        self._write("FIFO_CTRL3", r.compose("FIFO_CTRL3", DEC_FIFO_GYRO=regs.LSM6_NO_DECIMATION,
                                            DEC_FIFO_XL=regs.LSM6_NO_DECIMATION))
        self._write("FIFO_CTRL5", r.compose("FIFO_CTRL5", ODR_FIFO=self.odr_code,
                                            FIFO_MODE=regs.LSM6_FIFO_MODE_CONTINUOUS))

    def fifo_status(self) -> FifoStatus:
        r = self.REGISTERS
        s1, s2, s3, s4 = self.bus.read_i2c_block_data(self.address, r.address("FIFO_STATUS1"), 4)
        words = s1 | (r.fields["DIFF_FIFO_HIGH"].extract(s2) << 8)
        pattern = s3 | (r.fields["FIFO_PATTERN_HIGH"].extract(s4) << 8)
        overflow = bool(r.fields["OVER_RUN"].extract(s2))
        return FifoStatus(
            samples=words // regs.LSM6DS3TRC_PATTERN_WORDS,
            overflow=overflow,
            misaligned=words > 0 and pattern != 0,
        )

    def read_fifo(self, samples: int) -> tuple[np.ndarray, np.ndarray]:
        data = read_burst(self.bus, self.address, self.REGISTERS.address("FIFO_DATA_OUT_L"),
                          samples * self.PATTERN_BYTES, self.BURST_CHUNK)
        return regs.decode_lsm6ds3trc_fifo(data)
