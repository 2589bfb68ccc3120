"""The emulated hardware behind ``--emulate`` (doctor, calibrate imu): built from the
simulator's register-level emulators, like the demo's. The commands get it through
their wiring in cli.py; the doctor and the sensor drivers themselves import no simulator.
Everything is in memory: for trying a command and for tests, never for a verdict on a Pi.
"""

from __future__ import annotations

from typing import Any

from .doctor import Hardware
from .sim.imu_emulator import emulated_bus


def imu_bus(imu_cfg: Any):
    """An emulated I2C bus with the configured chip on it (the MPU-6050 for "auto")."""
    chip = "mpu6050" if imu_cfg.chip == "auto" else imu_cfg.chip
    return emulated_bus(chip, bus=imu_cfg.bus)


def _hello() -> bytes:
    from firmware_bridge import protocol
    from firmware_bridge.installer import package_version

    major, minor, patch = (int(part) for part in package_version().split("."))
    return protocol.encode_frame(protocol.HELLO, 0, {
        "fw_major": major, "fw_minor": minor, "fw_patch": patch, "board_id": bytes(8), "rate_hz": 80, "gain": 128,
        "batch": 8, "reset_cause": protocol.RESET_POWER_ON, "boot_id": 1, "next_seq": 0, "device_time_us": 0})


def hardware(imu_config: Any = None) -> Hardware:
    """Everything in memory: for trying the command and for tests, never for a verdict on a Pi."""
    import serial
    from gpiozero.pins.mock import MockFactory

    from .clock import ManualClock

    clock = ManualClock()
    chip = getattr(imu_config, "chip", "auto")
    chip = "mpu6050" if chip in ("auto", None) else chip
    address = getattr(imu_config, "address", "auto")

    def bus_factory(number: int) -> Any:
        return emulated_bus(chip, clock=clock, address=None if address == "auto" else int(address), bus=number)

    def serial_factory(port: str, **kwargs: Any) -> Any:
        link = serial.serial_for_url("loop://", **kwargs)
        link.write(_hello())  # the HELLO a Pico with this kneeroll's firmware sends
        return link

    return Hardware(bus_factory=bus_factory, serial_factory=serial_factory, pin_factory=MockFactory(), clock=clock)
