"""IMU acquisition cost and timestamp accuracy over the register-level emulators.

    .venv/bin/python benchmarks/bench_imu.py [--seconds 60] [--poll-ms 50]

For each chip at 100 Hz and 400 Hz the IMU is opened on a FakeSMBus whose sensor clock
runs 3 % fast, and read every ``--poll-ms`` (plus up to 50 % random jitter, like a busy
daemon) on a ManualClock for ``--seconds`` of simulated time. Reported per second of data:

- tx/s: I2C transactions (each smbus2 call or i2c_rdwr is one).
- bytes/s: payload bytes moved (register addresses and data, both directions).
- bus %: share of a 400 kHz bus, counting 9 bit times per byte (8 bits + ACK), one bit time
  per START, repeated START and STOP, and the address byte of every (re)START; clock
  stretching and the controller's gaps between bytes are not counted, so the real share
  is somewhat higher.
- CPU ms/s: process time spent in the driver (read() calls minus the emulator's own time).
- timestamp error after the first 10 s, against the truth carried by the emulated motion.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kneeroll_device.clock import ManualClock
from kneeroll_device.sensors.imu import open_imu
from kneeroll_device.sim.imu_emulator import (
    FakeSMBus,
    Lsm6dsoxEmulator,
    Mpu6050Emulator,
    decode_time_code,
    time_code_motion,
    transaction_bits,
)

CLOCK_ERROR_PCT = 3.0
BUS_HZ = 400_000.0
SETTLE_S = 10.0


def make_bus(chip: str, clock: ManualClock) -> tuple[FakeSMBus, object]:
    motion = time_code_motion()
    if chip == "mpu6050":
        device, address = Mpu6050Emulator(motion, clock=clock, clock_error_pct=CLOCK_ERROR_PCT), 0x68
    else:
        who = 0x6C if chip == "lsm6dsox" else 0x6A
        device, address = Lsm6dsoxEmulator(motion, clock=clock, clock_error_pct=CLOCK_ERROR_PCT, who_am_i=who), 0x6A
    bus = FakeSMBus(1, clock=clock, history_maxlen=2_000_000)
    bus.attach(address, device)
    return bus, device


def run(chip: str, rate_hz: int, seconds: float, poll_s: float, seed: int = 0) -> dict:
    clock = ManualClock()
    bus, device = make_bus(chip, clock)
    imu = open_imu(bus, rate_hz=rate_hz, clock=clock)
    bus.history.clear()
    rng = np.random.default_rng(seed)
    start = clock()
    emulator_cpu_before = bus.cpu_seconds
    times, gyro_x, gaps = [], [], 0
    cpu_before = time.process_time()
    while clock() - start < seconds:
        clock.advance(poll_s * (1.0 + 0.5 * rng.random()))
        block = imu.read()
        times.append(block.t)
        gyro_x.append(block.gyro[:, 0])
        gaps += len(block.gaps)
    cpu = time.process_time() - cpu_before - (bus.cpu_seconds - emulator_cpu_before)
    elapsed = clock() - start
    t = np.concatenate(times)
    truth = decode_time_code(np.concatenate(gyro_x), t)  # world_t0 = 0: clock time = world time
    late = t > start + SETTLE_S
    error_ms = np.abs(t[late] - truth[late]) * 1e3
    history = list(bus.history)
    payload = sum(len(tx.written) + tx.read for tx in history)
    bits = sum(transaction_bits(tx) for tx in history)
    return {
        "chip": imu.chip_name,
        "rate": imu.rate_hz,
        "samples/s": len(t) / elapsed,
        "tx/s": len(history) / elapsed,
        "bytes/s": payload / elapsed,
        "bus %": 100.0 * bits / BUS_HZ / elapsed,
        "CPU ms/s": 1e3 * cpu / elapsed,
        "err med ms": float(np.median(error_ms)),
        "err max ms": float(error_ms.max()),
        "gaps": gaps,
        "rate est": imu.estimated_rate_hz,
        "true rate": device.true_rate_hz(),
    }


def print_table(rows: list[dict]) -> None:
    columns = [
        ("chip", "{:<12}"), ("rate", "{:>6.0f}"), ("samples/s", "{:>9.1f}"), ("tx/s", "{:>6.1f}"),
        ("bytes/s", "{:>8.0f}"), ("bus %", "{:>6.2f}"), ("CPU ms/s", "{:>8.2f}"), ("err med ms", "{:>10.3f}"),
        ("err max ms", "{:>10.3f}"), ("gaps", "{:>4d}"), ("rate est", "{:>8.2f}"), ("true rate", "{:>9.2f}"),
    ]
    header = " ".join(f"{name:>{len(fmt.format(rows[0][name]))}}" for name, fmt in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(" ".join(fmt.format(row[name]) for name, fmt in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per run (default 60)")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="read() interval before jitter (default 50)")
    args = parser.parse_args()
    rows = [
        run(chip, rate, args.seconds, args.poll_ms / 1000.0)
        for chip in ("mpu6050", "lsm6dsox", "lsm6ds3trc")
        for rate in (100, 400)
    ]
    print(f"{args.seconds:g} s per run, read() every {args.poll_ms:g}-{1.5 * args.poll_ms:g} ms, "
          f"sensor clock {CLOCK_ERROR_PCT:+g} %, timestamp errors after the first {SETTLE_S:g} s")
    print_table(rows)


if __name__ == "__main__":
    main()
