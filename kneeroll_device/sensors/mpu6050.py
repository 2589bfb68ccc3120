"""MPU-6050 (and the MPU-6500 family and clones that behave alike) on smbus2, FIFO streaming.

Each FIFO packet is 12 bytes: accel X,Y,Z then gyro X,Y,Z, big-endian (RM 4.7: bytes
enter in register order). The driver only ever pops whole packets, and treats a FIFO
count above the last whole packet, or INT_STATUS.FIFO_OFLOW, as an overflow: the chip
then drops its oldest bytes and packet alignment is lost, so the FIFO must be reset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import registers as regs
from .bus import I2cBus, read_burst
from .chip import ChipIdentity, FifoStatus, RegisterDriver

R = regs.MPU6050
PACKET = regs.MPU6050_PACKET_BYTES
# the largest burst that is a whole number of packets and fits one kernel i2c message
BURST_CHUNK = (8192 // PACKET) * PACKET

RESET_WAIT_S = 0.1  # RM 4.28: wait 100 ms after DEVICE_RESET
GYRO_START_S = 0.05  # PS 6.1: gyro start-up 30 ms; samples before it are not trustworthy


class Mpu6050Driver(RegisterDriver):
    """Register-level MPU-6050 driver. The streaming, timing and faults live in imu.Imu."""

    REGISTERS = R

    def __init__(self, bus: I2cBus, address: int, identity: ChipIdentity, rate_hz: float,
                 accel_range_g: int, gyro_range_dps: int, clock: Any):
        super().__init__(bus, address, identity, clock, accel_range_g, gyro_range_dps)
        self.dlpf_cfg, self.smplrt_div, self.rate_hz = regs.mpu6050_rate_settings(rate_hz)
        self.accel_counts_per_g = regs.accel_counts_per_g("mpu6050", accel_range_g)
        self.gyro_counts_per_dps = regs.gyro_counts_per_dps("mpu6050", gyro_range_dps)
        # register 0x19..0x1C as they must read back once configured
        self._odd_counts = 0  # polls in a row whose FIFO count was not whole packets
        self._settings = [
            self.smplrt_div,
            R.compose("CONFIG", DLPF_CFG=self.dlpf_cfg),
            R.compose("GYRO_CONFIG", FS_SEL=regs.gyro_range_code("mpu6050", gyro_range_dps)),
            R.compose("ACCEL_CONFIG", AFS_SEL=regs.accel_range_code("mpu6050", accel_range_g)),
        ]

    def configure(self) -> None:
        """Reset the chip, wake it on the gyro PLL, set rate and ranges, check, start the FIFO."""
        self._write("PWR_MGMT_1", R.compose("PWR_MGMT_1", DEVICE_RESET=1))
        self.clock.sleep(RESET_WAIT_S)
        for _ in range(5):
            if not R.fields["DEVICE_RESET"].extract(self._read("PWR_MGMT_1")):
                break
            self.clock.sleep(RESET_WAIT_S)
        self._write("PWR_MGMT_1", R.compose("PWR_MGMT_1", CLKSEL=regs.MPU6050_CLKSEL_PLL_XGYRO))
        # SMPLRT_DIV, CONFIG, GYRO_CONFIG, ACCEL_CONFIG are consecutive: one block write
        self.bus.write_i2c_block_data(self.address, R.address("SMPLRT_DIV"), list(self._settings))
        self._write("INT_ENABLE", 0x00)  # polled, no interrupt pin
        if not self.is_configured():
            got = self.bus.read_i2c_block_data(self.address, R.address("SMPLRT_DIV"), 4)
            raise self._settings_not_kept(self._settings, "SMPLRT_DIV", got, ": it does not behave like an MPU-6050")
        self.clock.sleep(GYRO_START_S)
        self.reset_fifo()

    def is_configured(self) -> bool:
        awake = not R.fields["SLEEP"].extract(self._read("PWR_MGMT_1"))
        return awake and self.bus.read_i2c_block_data(self.address, R.address("SMPLRT_DIV"), 4) == self._settings

    def reset_fifo(self) -> None:
        self._write("FIFO_EN", 0x00)
        self._write("USER_CTRL", R.compose("USER_CTRL", FIFO_RESET=1))
        self._write("USER_CTRL", R.compose("USER_CTRL", FIFO_ENABLE=1))
        self._write("FIFO_EN", R.compose("FIFO_EN", XG_FIFO_EN=1, YG_FIFO_EN=1, ZG_FIFO_EN=1, ACCEL_FIFO_EN=1))
        self._read("INT_STATUS")  # clears an overflow flag from before the reset
        self._odd_counts = 0

    def fifo_status(self) -> FifoStatus:
        # INT_STATUS is read every time because clones have other FIFO sizes (512 bytes on
        # the MPU-6500): the flag, not the count, is the portable overflow signal
        overflowed = bool(R.fields["FIFO_OFLOW_INT"].extract(self._read("INT_STATUS")))
        high, low = self.bus.read_i2c_block_data(self.address, R.address("FIFO_COUNTH"), 2)
        count = (high << 8) | low
        last_whole = (regs.MPU6050_FIFO_BYTES // PACKET) * PACKET
        overflowed = overflowed or (self.identity.genuine and count > last_whole)
        # a count between packets is normal for the microseconds a packet takes to enter, so
        # nothing is read then; seen twice in a row, bytes went missing and alignment is lost
        self._odd_counts = self._odd_counts + 1 if count % PACKET else 0
        whole = 0 if self._odd_counts else count // PACKET
        return FifoStatus(samples=whole, overflow=overflowed, misaligned=self._odd_counts >= 2)

    def read_fifo(self, samples: int) -> tuple[np.ndarray, np.ndarray]:
        data = read_burst(self.bus, self.address, R.address("FIFO_R_W"), samples * PACKET, BURST_CHUNK)
        return regs.decode_mpu6050_fifo(data)

    def power_down(self) -> None:
        self._write("PWR_MGMT_1", R.compose("PWR_MGMT_1", SLEEP=1))
