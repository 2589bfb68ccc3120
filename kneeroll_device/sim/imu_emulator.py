"""Register-level emulators of the IMUs on a fake SMBus, with a history and fault injection.

``FakeSMBus`` answers the smbus2 calls kneeroll uses and records every transaction with
its clock time in a bounded deque, so tests assert on what went over the bus rather than
on sleeps. Devices are attached at an address; an address with nothing attached does
not acknowledge (OSError errno 121), like a real bus.

The chip emulators hold a 256-byte register file with the datasheet's power-on values
and produce samples lazily: on each bus access they catch up with the clock. Tick ``k``
of the sensor happens at clock time ``world_t0 + k / (rate * (1 + clock_error_pct/100))``
and carries ``motion(tick_time - world_t0)``, quantised to the configured range. The
FIFOs have the real sizes and overflow rules:

- MPU-6050: 1024 bytes; on overflow the oldest bytes are dropped (packet alignment is
  lost) and INT_STATUS bit 4 is set until INT_STATUS is read.
- LSM6DSOX: 512 tagged 7-byte words; continuous mode drops the oldest word and sets
  FIFO_OVR_IA (until a word is read) and FIFO_OVR_LATCHED (until FIFO_STATUS2 is read).
- LSM6DS3TR-C (``Lsm6dsoxEmulator(who_am_i=0x6A)``, or 0x69 for an LSM6DS3): 2048
  untagged 16-bit words in the gyro-then-accel pattern; overflow drops the oldest word,
  sets OVER_RUN and shifts FIFO_PATTERN.

Simplifications, each harmless to the drivers: accel and gyro run at one ODR (the
accel's, when they differ the gyro is not batched); the DS3TR-C's FIFO ODR follows the
sensor ODR; temperature is a constant 25 deg C; registers the drivers never touch are
plain memory.

Faults: ``bus.fail_next(errno, count, address=, ops=, partial=)``,
``bus.fail_between(start, end, errno, ...)`` (clock times), ``bus.disappear(address,
start, end, power_cycle=True)`` (no ACK in the window; back at power-on values unless
power_cycle=False), ``device.force_fifo_overflow()``, and clone WHO_AM_I values through
the ``who_am_i`` argument.
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from ..clock import ManualClock
from ..sensors import registers as regs

Motion = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
SMBUS_BLOCK_MAX = 32  # smbus2's limit for read/write_i2c_block_data
KERNEL_MESSAGE_MAX = 8192  # the kernel's limit for one i2c_msg

# --- the bus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """One bus call as it happened: when, what, and the errno if it failed."""

    t: float
    op: str
    address: int
    register: int | None
    written: bytes = b""
    read: int = 0  # bytes read back
    messages: tuple[tuple[str, int], ...] = ()  # i2c_rdwr: ("w" or "r", length) per message
    error: int | None = None


START_STOP_BITS = 1  # a START, repeated START or STOP takes about one bit time
BYTE_BITS = 9  # 8 data bits and the ACK


def transaction_bits(tx: Transaction) -> int:
    """Bit times a transaction occupies on the wire (ignoring clock stretching and gaps between bytes).

    A register read is START, address+W, register, repeated START, address+R, data, STOP;
    a write is START, address+W, register, data, STOP; i2c_rdwr has a (repeated) START
    and an address byte per message, and one STOP.
    """
    if tx.op == "i2c_rdwr":
        return sum(START_STOP_BITS + BYTE_BITS * (1 + length) for _, length in tx.messages) + START_STOP_BITS
    if tx.op.startswith("read"):
        return 3 * START_STOP_BITS + BYTE_BITS * (3 + tx.read)
    return 2 * START_STOP_BITS + BYTE_BITS * (2 + len(tx.written))


def bus_busy_seconds(transactions: Iterable[Transaction], bus_hz: float = 400_000.0) -> float:
    return sum(transaction_bits(tx) for tx in transactions) / bus_hz


@dataclass
class _Fault:
    errno_code: int
    address: int | None = None
    ops: frozenset[str] | None = None
    remaining: int | None = None  # transactions left to fail; None: all within the window
    start: float = -math.inf
    end: float = math.inf
    partial: bool = False  # a read that moves part of its data before failing

    def matches(self, op: str, address: int, now: float) -> bool:
        return (
            (self.address is None or self.address == address)
            and (self.ops is None or op in self.ops)
            and self.start <= now < self.end
            and (self.remaining is None or self.remaining > 0)
        )


@dataclass
class _Absence:
    address: int
    start: float
    end: float
    power_cycle: bool
    done: bool = False


class EmulatedDevice(Protocol):
    clock: Any

    def read(self, register: int, length: int) -> bytes: ...
    def write(self, register: int, data: bytes) -> None: ...
    def power_cycle(self) -> None: ...


class FakeSMBus:
    """An I2C bus in memory with smbus2's methods, a transaction history and injected faults."""

    def __init__(self, bus: int = 1, *, clock: Any = None, history_maxlen: int = 100_000):
        self.bus = bus
        self.bus_number = bus
        self.clock = clock
        self.devices: dict[int, EmulatedDevice] = {}
        self.history: deque[Transaction] = deque(maxlen=history_maxlen)
        self.cpu_seconds = 0.0  # process time spent inside the emulation (benchmarks subtract it)
        self.closed = False
        self.close_count = 0
        self._faults: list[_Fault] = []
        self._absences: list[_Absence] = []

    # --- set-up and faults ---

    def attach(self, address: int, device: EmulatedDevice) -> EmulatedDevice:
        self.devices[address] = device
        if self.clock is None:
            self.clock = device.clock
        return device

    def detach(self, address: int) -> None:
        self.devices.pop(address, None)

    def fail_next(self, errno_code: int = errno.EREMOTEIO, count: int = 1, *, address: int | None = None,
                  ops: Iterable[str] | None = None, partial: bool = False) -> None:
        """The next ``count`` matching transactions fail with OSError(errno_code)."""
        self._faults.append(_Fault(errno_code, address, frozenset(ops) if ops else None, count, partial=partial))

    def fail_between(self, start: float, end: float, errno_code: int = errno.EIO, *, address: int | None = None,
                     ops: Iterable[str] | None = None) -> None:
        """Every matching transaction with clock time in [start, end) fails."""
        self._faults.append(_Fault(errno_code, address, frozenset(ops) if ops else None, None, start, end))

    def disappear(self, address: int, start: float, end: float, *, power_cycle: bool = True) -> None:
        """The device does not acknowledge in [start, end); it comes back at power-on values."""
        self._absences.append(_Absence(address, start, end, power_cycle))

    # --- smbus2's interface ---

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._run("read_byte_data", i2c_addr, register, lambda d: d.read(register, 1)[0], read=1)

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        data = bytes([value & 0xFF])
        self._run("write_byte_data", i2c_addr, register, lambda d: d.write(register, data), written=data)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force: bool | None = None) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        return self._run("read_i2c_block_data", i2c_addr, register, lambda d: list(d.read(register, length)),
                         read=length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int], force: bool | None = None) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        payload = bytes(v & 0xFF for v in data)
        self._run("write_i2c_block_data", i2c_addr, register, lambda d: d.write(register, payload), written=payload)

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined transfer: a write message selects the register, a read message fills its buffer."""
        if not i2c_msgs:
            return
        for msg in i2c_msgs:
            if msg.len > KERNEL_MESSAGE_MAX:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        address = i2c_msgs[0].addr
        messages = tuple(("r" if msg.flags & 0x0001 else "w", int(msg.len)) for msg in i2c_msgs)
        first = next((m for m in i2c_msgs if not m.flags & 0x0001), None)
        register = bytes(first)[0] if first is not None and first.len else None
        written = b"".join(bytes(m) for m in i2c_msgs if not m.flags & 0x0001)
        read = sum(m.len for m in i2c_msgs if m.flags & 0x0001)

        def transfer(device: EmulatedDevice, fraction: float = 1.0) -> None:
            pointer = 0
            for msg in i2c_msgs:
                if msg.flags & 0x0001:
                    size = int(msg.len * fraction)
                    data = device.read(pointer, size)
                    ctypes.memmove(msg.buf, data, size)
                else:
                    payload = bytes(msg)
                    if payload:
                        pointer = payload[0]
                        if len(payload) > 1:
                            device.write(pointer, payload[1:])

        self._run("i2c_rdwr", address, register, transfer, written=written, read=read, messages=messages)

    def close(self) -> None:
        self.closed = True
        self.close_count += 1

    def __enter__(self) -> "FakeSMBus":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- machinery ---

    def _now(self) -> float:
        return float(self.clock()) if self.clock is not None else 0.0

    def _run(self, op: str, address: int, register: int | None, action: Callable[..., Any], *,
             written: bytes = b"", read: int = 0, messages: tuple = ()) -> Any:
        started = time.process_time()
        now = self._now()
        error: int | None = None
        try:
            if self.closed:
                error = errno.EBADF
                raise OSError(errno.EBADF, "the bus is closed")
            device = self._present_device(address, now)
            fault = self._take_fault(op, address, now)
            if device is None:
                error = errno.EREMOTEIO
                raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
            if fault is not None:
                error = fault.errno_code
                if fault.partial and op == "i2c_rdwr":
                    action(device, 0.5)
                raise OSError(fault.errno_code, os.strerror(fault.errno_code))
            return action(device)
        finally:
            self.history.append(Transaction(now, op, address, register, written, read, messages, error))
            self.cpu_seconds += time.process_time() - started

    def _take_fault(self, op: str, address: int, now: float) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(op, address, now):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def _present_device(self, address: int, now: float) -> EmulatedDevice | None:
        device = self.devices.get(address)
        for absence in self._absences:
            if absence.address != address:
                continue
            if absence.start <= now < absence.end:
                return None
            if now >= absence.end and not absence.done:
                absence.done = True
                if absence.power_cycle and device is not None:
                    device.power_cycle()
        return device

    # --- queries for tests and benchmarks ---

    def transactions(self, op: str | None = None, address: int | None = None) -> list[Transaction]:
        return [tx for tx in self.history if (op is None or tx.op == op) and (address is None or tx.address == address)]


# --- chips -------------------------------------------------------------------------------


class _EmulatedImu:
    """What both chips share: a register file, a sensor clock, lazy sample production."""

    REGISTERS: regs.RegisterMap
    FAMILY: str
    FIFO_SAMPLES_MAX: int  # how many samples the FIFO can hold, for the catch-up shortcut

    def __init__(self, motion: Motion, *, clock: Any, world_t0: float = 0.0, clock_error_pct: float = 0.0,
                 who_am_i: int):
        self.motion = motion
        self.clock = clock
        self.world_t0 = float(world_t0)
        self.clock_error_pct = float(clock_error_pct)
        self.who_am_i = who_am_i
        self.writes: deque[tuple[float, int, int]] = deque(maxlen=10_000)  # (t, register, value)
        self.ticks_produced = 0
        self.samples_overflowed = 0  # samples (or parts of them) pushed out of a full FIFO
        self.samples_cleared = 0  # samples thrown away by a FIFO reset
        self.power_cycles = 0
        self.power_on()

    # --- life cycle ---

    def power_on(self) -> None:
        self.regs = bytearray(256)
        for address, value in self.REGISTERS.power_on_values().items():
            self.regs[address] = value
        self.regs[self.REGISTERS.address("WHO_AM_I")] = self.who_am_i
        self._rate: float | None = None
        self._last_tick = 0
        self._latest_accel = np.zeros(3, dtype=np.int16)
        self._latest_gyro = np.zeros(3, dtype=np.int16)
        self._clear_fifo()

    def power_cycle(self) -> None:
        self.power_cycles += 1
        self.power_on()

    # --- the sensor clock ---

    def nominal_rate_hz(self) -> float | None:
        """The configured output rate, None while asleep or powered down."""
        raise NotImplementedError

    def true_rate_hz(self) -> float | None:
        rate = self.nominal_rate_hz()
        return None if rate is None else rate * (1.0 + self.clock_error_pct / 100.0)

    def tick_time(self, k: int | np.ndarray) -> Any:
        """Clock time of tick ``k`` at the current rate."""
        rate = self.true_rate_hz()
        assert rate is not None
        return self.world_t0 + np.asarray(k, dtype=np.float64) / rate

    def _tick_index(self, now: float, rate: float) -> int:
        return math.floor((now - self.world_t0) * rate + 1e-9)

    def _sync(self) -> None:
        """Produce every tick up to now, pushing the newest into the FIFO."""
        now = float(self.clock())
        rate = self.true_rate_hz()
        if rate is None:
            self._rate = None
            return
        if rate != self._rate:
            # just started or the rate changed: the grid restarts, no sample is due yet
            self._rate = rate
            self._last_tick = self._tick_index(now, rate)
            return
        newest = self._tick_index(now, rate)
        count = newest - self._last_tick
        if count <= 0:
            return
        # only the newest samples can survive in the FIFO: compute those, count the rest
        computed = min(count, self.FIFO_SAMPLES_MAX + 2)
        ticks = np.arange(newest - computed + 1, newest + 1)
        accel, gyro = self.motion(ticks / rate)  # world time of tick k is k / rate
        raw_accel = regs.units_to_counts(np.asarray(accel, dtype=np.float64).reshape(-1, 3), self._accel_counts())
        raw_gyro = regs.units_to_counts(np.asarray(gyro, dtype=np.float64).reshape(-1, 3), self._gyro_counts())
        self._latest_accel, self._latest_gyro = raw_accel[-1], raw_gyro[-1]
        self._samples_ready()
        self._push(raw_accel, raw_gyro, skipped=count - computed)
        self._last_tick = newest
        self.ticks_produced += count

    def _accel_counts(self) -> float:
        raise NotImplementedError

    def _gyro_counts(self) -> float:
        raise NotImplementedError

    def _samples_ready(self) -> None:
        """Set the data-ready flags."""

    # --- bus access ---

    def read(self, register: int, length: int) -> bytes:
        self._sync()
        out = bytearray()
        for _ in range(length):
            out.append(self._read_register(register) & 0xFF)
            register = self._next_register(register)
        return bytes(out)

    def write(self, register: int, data: bytes) -> None:
        self._sync()
        now = float(self.clock())
        for value in data:
            self.writes.append((now, register, value))
            self._write_register(register, value)
            register = self._next_register(register)

    def _next_register(self, register: int) -> int:
        return (register + 1) & 0xFF

    def _read_register(self, register: int) -> int:
        return self.regs[register]

    def _write_register(self, register: int, value: int) -> None:
        self.regs[register] = value

    def register_writes(self, register: int) -> list[int]:
        return [value for _, reg, value in self.writes if reg == register]

    # --- FIFO, per chip ---

    def _clear_fifo(self) -> None:
        raise NotImplementedError

    def _push(self, raw_accel: np.ndarray, raw_gyro: np.ndarray, skipped: int) -> None:
        raise NotImplementedError

    def force_fifo_overflow(self) -> None:
        """Overflow the FIFO now: fill it past its size with copies of the newest sample."""
        self._sync()
        copies = self.FIFO_SAMPLES_MAX + 1
        self._push(np.tile(self._latest_accel, (copies, 1)), np.tile(self._latest_gyro, (copies, 1)), skipped=0)


class Mpu6050Emulator(_EmulatedImu):
    """An MPU-6050 (or a clone: pass its ``who_am_i``) at register level."""

    REGISTERS = regs.MPU6050
    FAMILY = "mpu6050"
    FIFO_BYTES = regs.MPU6050_FIFO_BYTES
    FIFO_SAMPLES_MAX = regs.MPU6050_FIFO_BYTES // 6  # the smallest packet (accel only) is 6 bytes

    def __init__(self, motion: Motion, *, clock: Any, world_t0: float = 0.0, clock_error_pct: float = 0.0,
                 who_am_i: int = 0x68):
        super().__init__(motion, clock=clock, world_t0=world_t0, clock_error_pct=clock_error_pct, who_am_i=who_am_i)

    def _field(self, name: str) -> int:
        field = self.REGISTERS.fields[name]
        return field.extract(self.regs[self.REGISTERS.address(field.register)])

    def nominal_rate_hz(self) -> float | None:
        if self._field("SLEEP") or self._field("DEVICE_RESET"):
            return None
        return regs.mpu6050_sample_rate_hz(self._field("DLPF_CFG"), self.regs[self.REGISTERS.address("SMPLRT_DIV")])

    def _accel_counts(self) -> float:
        ranges = {code: lsb for code, lsb in regs.MPU6050_ACCEL_RANGES.values()}
        return ranges[self._field("AFS_SEL")]

    def _gyro_counts(self) -> float:
        ranges = {code: lsb for code, lsb in regs.MPU6050_GYRO_RANGES.values()}
        return ranges[self._field("FS_SEL")]

    def _clear_fifo(self) -> None:
        self.fifo = bytearray()

    @property
    def fifo_count(self) -> int:
        return len(self.fifo)

    def _samples_ready(self) -> None:
        self.regs[self.REGISTERS.address("INT_STATUS")] |= self.REGISTERS.fields["DATA_RDY_INT"].mask

    def _packet(self, raw_accel: np.ndarray, raw_gyro: np.ndarray) -> bytes:
        """The bytes one set of samples adds to the FIFO, in register order (RM 4.7)."""
        columns: list[np.ndarray] = []
        if self._field("ACCEL_FIFO_EN"):
            columns.append(raw_accel)
        if self._field("TEMP_FIFO_EN"):
            columns.append(np.full((len(raw_accel), 1), self._temperature_raw(), dtype=np.int16))
        for axis, name in enumerate(("XG_FIFO_EN", "YG_FIFO_EN", "ZG_FIFO_EN")):
            if self._field(name):
                columns.append(raw_gyro[:, axis : axis + 1])
        if not columns:
            return b""
        return regs.encode_int16(np.hstack(columns), ">")

    def _temperature_raw(self) -> int:
        return round((25.0 - 36.53) * 340)

    def _push(self, raw_accel: np.ndarray, raw_gyro: np.ndarray, skipped: int) -> None:
        if not self._field("FIFO_ENABLE"):
            return
        data = self._packet(raw_accel, raw_gyro)
        if not data:
            return
        self.fifo += data
        excess = len(self.fifo) - self.FIFO_BYTES
        if excess > 0 or skipped:
            # oldest bytes dropped: the next byte is no longer the start of a packet
            del self.fifo[: max(0, excess)]
            self.samples_overflowed += skipped + max(0, excess)
            self.regs[self.REGISTERS.address("INT_STATUS")] |= self.REGISTERS.fields["FIFO_OFLOW_INT"].mask

    def _next_register(self, register: int) -> int:
        # a burst on FIFO_R_W keeps popping the FIFO
        return register if register == self.REGISTERS.address("FIFO_R_W") else (register + 1) & 0xFF

    def _read_register(self, register: int) -> int:
        r = self.REGISTERS
        if register == r.address("FIFO_R_W"):
            return self.fifo.pop(0) if self.fifo else 0x00
        if register == r.address("FIFO_COUNTH"):
            return len(self.fifo) >> 8
        if register == r.address("FIFO_COUNTL"):
            return len(self.fifo) & 0xFF
        if register == r.address("INT_STATUS"):
            value = self.regs[register]
            self.regs[register] = 0  # cleared by reading (RM 4.17)
            return value
        data_start = r.address("ACCEL_XOUT_H")
        if data_start <= register < data_start + 14:
            return self._output_registers()[register - data_start]
        return self.regs[register]

    def _output_registers(self) -> bytes:
        temperature = np.array([self._temperature_raw()], dtype=np.int16)
        return regs.encode_int16(np.concatenate([self._latest_accel, temperature, self._latest_gyro]), ">")

    def _write_register(self, register: int, value: int) -> None:
        r = self.REGISTERS
        if register == r.address("PWR_MGMT_1") and value & r.fields["DEVICE_RESET"].mask:
            self.power_on()  # every register back to its power-on value; the bit clears itself
            return
        if register == r.address("USER_CTRL"):
            if value & r.fields["FIFO_RESET"].mask:
                packet = len(self._packet(self._latest_accel[None], self._latest_gyro[None]))
                self.samples_cleared += len(self.fifo) // packet if packet else 0
                self._clear_fifo()
                value &= ~r.fields["FIFO_RESET"].mask
        read_only = {r.address(n) for n in ("WHO_AM_I", "INT_STATUS", "FIFO_COUNTH", "FIFO_COUNTL")}
        if register in read_only or r.address("ACCEL_XOUT_H") <= register < r.address("ACCEL_XOUT_H") + 14:
            return
        self.regs[register] = value


class Lsm6dsoxEmulator(_EmulatedImu):
    """An LSM6DSOX (who_am_i 0x6C), or with who_am_i 0x6A an LSM6DS3TR-C (0x69: LSM6DS3)."""

    FIFO_SAMPLES_MAX = regs.LSM6DS3TRC_FIFO_WORDS  # generous bound for the catch-up shortcut

    def __init__(self, motion: Motion, *, clock: Any, world_t0: float = 0.0, clock_error_pct: float = 0.0,
                 who_am_i: int = 0x6C):
        family = regs.LSM6_IDS.get(who_am_i, ("lsm6dsox", "", False))[0]
        self.FAMILY = family
        self.REGISTERS = regs.LSM6DSOX if family == "lsm6dsox" else regs.LSM6DS3TRC
        self.tagged = family == "lsm6dsox"
        super().__init__(motion, clock=clock, world_t0=world_t0, clock_error_pct=clock_error_pct, who_am_i=who_am_i)

    def _field(self, name: str) -> int:
        field = self.REGISTERS.fields[name]
        return field.extract(self.regs[self.REGISTERS.address(field.register)])

    def nominal_rate_hz(self) -> float | None:
        code = self._field("ODR_XL") or self._field("ODR_G")
        return regs.LSM6_ODR_HZ.get(code)

    def _accel_counts(self) -> float:
        ranges = {code: lsb for code, lsb in regs.LSM6_ACCEL_RANGES.values()}
        return ranges[self._field("FS_XL")]

    def _gyro_counts(self) -> float:
        ranges = {code: lsb for code, lsb in regs.LSM6_GYRO_RANGES.values()}
        return ranges.get(self._field("FS_G"), ranges[0])

    def _samples_ready(self) -> None:
        self.regs[self.REGISTERS.address("STATUS_REG")] |= 0b11  # GDA, XLDA

    # --- FIFO ---

    def _clear_fifo(self) -> None:
        self.fifo: deque[bytes] = deque()
        self._overrun = False  # FIFO_OVR_IA / OVER_RUN: words were lost and none read since
        self._overrun_latched = False
        self._tag_count = 0
        self._byte_in_word = 0

    @property
    def fifo_words(self) -> int:
        return len(self.fifo)

    def _fifo_mode(self) -> int:
        return self._field("FIFO_MODE")

    def _batching(self) -> tuple[bool, bool]:
        """Whether gyro and accel words enter the FIFO."""
        if self._fifo_mode() not in (regs.LSM6_FIFO_MODE_FIFO, regs.LSM6_FIFO_MODE_CONTINUOUS):
            return False, False
        same_rate = self._field("ODR_G") == self._field("ODR_XL")
        if self.tagged:
            return bool(self._field("BDR_GY")) and same_rate, bool(self._field("BDR_XL"))
        if not self._field("ODR_FIFO"):
            return False, False
        return bool(self._field("DEC_FIFO_GYRO")) and same_rate, bool(self._field("DEC_FIFO_XL"))

    def _capacity(self) -> int:
        return regs.LSM6DSOX_FIFO_WORDS if self.tagged else regs.LSM6DS3TRC_FIFO_WORDS

    def _push(self, raw_accel: np.ndarray, raw_gyro: np.ndarray, skipped: int) -> None:
        with_gyro, with_accel = self._batching()
        if not (with_gyro or with_accel):
            return
        if skipped:
            self._overrun = self._overrun_latched = True
            self.samples_overflowed += skipped
            self._tag_count = (self._tag_count + skipped) % 4
        for accel, gyro in zip(raw_accel, raw_gyro):
            for word in self._words(accel, gyro, with_gyro, with_accel):
                self._append_word(word)
            self._tag_count = (self._tag_count + 1) % 4

    def _words(self, accel: np.ndarray, gyro: np.ndarray, with_gyro: bool, with_accel: bool) -> list[bytes]:
        if self.tagged:
            words = []
            if with_gyro:
                words.append(bytes([regs.lsm6_tag_byte(regs.LSM6DSOX_TAG_GYRO, self._tag_count)]) + regs.encode_int16(gyro, "<"))
            if with_accel:
                words.append(bytes([regs.lsm6_tag_byte(regs.LSM6DSOX_TAG_ACCEL, self._tag_count)]) + regs.encode_int16(accel, "<"))
            return words
        # untagged: each 16-bit word carries its place in the gyro-then-accel pattern
        words = []
        place = 0
        for enabled, values in ((with_gyro, gyro), (with_accel, accel)):
            if enabled:
                for value in values:
                    words.append(bytes([place]) + regs.encode_int16(np.array([value]), "<"))
                    place += 1
        return words

    def _append_word(self, word: bytes) -> None:
        if len(self.fifo) >= self._capacity():
            if self._fifo_mode() == regs.LSM6_FIFO_MODE_FIFO:
                return  # FIFO mode stops when full
            self.fifo.popleft()
            self._byte_in_word = 0
            self._overrun = self._overrun_latched = True
            self.samples_overflowed += 1
        self.fifo.append(word)

    def _fifo_out_range(self) -> tuple[int, int]:
        r = self.REGISTERS
        if self.tagged:
            return r.address("FIFO_DATA_OUT_TAG"), r.address("FIFO_DATA_OUT_TAG") + regs.LSM6DSOX_WORD_BYTES - 1
        return r.address("FIFO_DATA_OUT_L"), r.address("FIFO_DATA_OUT_H")

    def _next_register(self, register: int) -> int:
        if not self._field("IF_INC"):
            return register
        first, last = self._fifo_out_range()
        if register == last:
            return first  # bursts roll over inside the FIFO output registers
        return (register + 1) & 0xFF

    def _read_fifo_byte(self, register: int) -> int:
        first, last = self._fifo_out_range()
        if not self.fifo:
            return 0x00
        word = self.fifo[0]
        payload = word if self.tagged else word[1:]  # untagged words keep their place in byte 0
        value = payload[register - first]
        if register == last:
            self.fifo.popleft()
            self._overrun = False
        return value

    def _read_register(self, register: int) -> int:
        r = self.REGISTERS
        first, last = self._fifo_out_range()
        if first <= register <= last:
            return self._read_fifo_byte(register)
        if register == r.address("FIFO_STATUS1"):
            return self._fifo_level() & 0xFF
        if register == r.address("FIFO_STATUS2"):
            return self._fifo_status2()
        if not self.tagged and register == r.address("FIFO_STATUS3"):
            return self._pattern_place() & 0xFF
        if not self.tagged and register == r.address("FIFO_STATUS4"):
            return self._pattern_place() >> 8
        if r.address("OUT_TEMP_L") <= register < r.address("OUT_TEMP_L") + 14:
            return self._output_registers()[register - r.address("OUT_TEMP_L")]
        return self.regs[register]

    def _pattern_place(self) -> int:
        return self.fifo[0][0] if self.fifo else 0

    def _fifo_level(self) -> int:
        """DIFF_FIFO: 10 bits on the DSOX, 11 on the DS3TR-C, whose 2048-word FIFO reads 2047 when full."""
        return min(len(self.fifo), 0x3FF if self.tagged else 0x7FF)

    def _fifo_status2(self) -> int:
        r = self.REGISTERS
        count_high = self._fifo_level() >> 8
        value = r.fields["DIFF_FIFO_HIGH"].insert(0, count_high)
        full = len(self.fifo) >= self._capacity()
        if self.tagged:
            value |= (self._overrun and full) * r.fields["FIFO_OVR_IA"].mask
            value |= self._overrun_latched * r.fields["FIFO_OVR_LATCHED"].mask
            value |= full * r.fields["FIFO_FULL_IA"].mask
            self._overrun_latched = False  # cleared by reading FIFO_STATUS2
        else:
            value |= self._overrun * r.fields["OVER_RUN"].mask
            value |= full * r.fields["FIFO_FULL_SMART"].mask
            value |= (not self.fifo) * r.fields["FIFO_EMPTY"].mask
        return value

    def _output_registers(self) -> bytes:
        self.regs[self.REGISTERS.address("STATUS_REG")] &= ~0b11 & 0xFF
        temperature = np.array([0], dtype=np.int16)  # 0 LSB = 25 deg C
        return regs.encode_int16(np.concatenate([temperature, self._latest_gyro, self._latest_accel]), "<")

    def _write_register(self, register: int, value: int) -> None:
        r = self.REGISTERS
        if register == r.address("CTRL3_C") and value & (r.fields["SW_RESET"].mask | r.fields["BOOT"].mask):
            self.power_on()  # control registers back to defaults; the bit clears itself
            return
        if register in (r.address("WHO_AM_I"), r.address("FIFO_STATUS1"), r.address("FIFO_STATUS2"),
                        r.address("STATUS_REG")):
            return
        mode_register = r.address(r.fields["FIFO_MODE"].register)
        self.regs[register] = value
        if register == mode_register and self._fifo_mode() == regs.LSM6_FIFO_MODE_BYPASS:
            words_per_sample = 2 if self.tagged else regs.LSM6DS3TRC_PATTERN_WORDS
            self.samples_cleared += len(self.fifo) // words_per_sample
            self._clear_fifo()  # bypass mode empties the FIFO


# --- ready-made scenes ----------------------------------------------------------------------


def still_motion(gravity_g: tuple[float, float, float] = (0.0, 0.0, 1.0),
                 gyro_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 gyro_noise_dps: float = 0.0, seed: int = 1) -> Motion:
    """A sensor lying still: gravity, a constant gyro bias, optional deterministic noise."""
    rng_seed = seed

    def motion(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(times)
        accel = np.tile(np.asarray(gravity_g, dtype=np.float64), (n, 1))
        gyro = np.tile(np.asarray(gyro_bias_dps, dtype=np.float64), (n, 1))
        if gyro_noise_dps:
            # noise depends on the time only, so the same instant always reads the same
            phase = np.asarray(times, dtype=np.float64)[:, None] * np.array([7.31, 11.7, 13.9]) + rng_seed
            gyro = gyro + gyro_noise_dps * np.sin(phase * 1000.0)
        return accel, gyro

    return motion


def time_code_motion(period_s: float = 2.0, peak_dps: float = 400.0) -> Motion:
    """Motion that carries its own time: gyro X is a sawtooth of world time (decode with decode_time_code).

    Used by tests and benchmarks to know each delivered sample's true time, whatever was lost.
    """

    def motion(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        times = np.asarray(times, dtype=np.float64)
        gyro = np.zeros((len(times), 3))
        gyro[:, 0] = (np.mod(times, period_s) / period_s * 2.0 - 1.0) * peak_dps
        accel = np.tile([0.0, 0.0, 1.0], (len(times), 1))
        return accel, gyro

    return motion


def decode_time_code(gyro_x_dps: np.ndarray, t_estimate: np.ndarray, period_s: float = 2.0,
                     peak_dps: float = 400.0) -> np.ndarray:
    """World time of each sample from time_code_motion's sawtooth, unwrapped near ``t_estimate``."""
    phase = (np.asarray(gyro_x_dps) / peak_dps + 1.0) / 2.0 * period_s
    return phase + period_s * np.round((np.asarray(t_estimate) - phase) / period_s)


def emulated_bus(chip: str = "mpu6050", *, motion: Motion | None = None, clock: Any = None, address: int | None = None,
                 clock_error_pct: float = 0.0, bus: int = 1) -> FakeSMBus:
    """A FakeSMBus with one emulated IMU at its usual address (for --emulate and the demo)."""
    clock = clock if clock is not None else ManualClock()
    motion = motion or still_motion(gyro_bias_dps=(0.8, -0.5, 0.3), gyro_noise_dps=0.05)
    if chip == "mpu6050":
        device: _EmulatedImu = Mpu6050Emulator(motion, clock=clock, clock_error_pct=clock_error_pct)
        default_address = 0x68
    else:
        who = 0x6C if chip == "lsm6dsox" else 0x6A
        device = Lsm6dsoxEmulator(motion, clock=clock, clock_error_pct=clock_error_pct, who_am_i=who)
        default_address = 0x6A
    fake = FakeSMBus(bus, clock=clock)
    fake.attach(address or default_address, device)
    return fake
