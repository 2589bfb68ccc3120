"""The software Pico: fault SPEC, timing, commands and faults, driven step by step on a ManualClock."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from firmware_bridge import protocol as p
from firmware_bridge.emulator import FaultPlan, PicoEmulator, parse_faults, ramp, squeeze_signal
from kneeroll_device.clock import ManualClock
from kneeroll_device.errors import InputError

# --- the SPEC ----------------------------------------------------------------------------


def test_parse_full_spec():
    plan = parse_faults("bitflip=0.001, drop=0.0005,truncate=0.001,reset@30,stall@60+3,unplug@90+2,reset@10")
    assert plan == FaultPlan(
        bitflip=0.001, drop=0.0005, truncate=0.001, resets=(10.0, 30.0), stalls=((60.0, 3.0),), unplugs=((90.0, 2.0),)
    )
    assert [kind for _, kind, _ in plan.schedule()] == ["reset", "reset", "stall", "unplug"]


@pytest.mark.parametrize("spec", [None, "", "  "])
def test_empty_spec_means_no_faults(spec):
    assert parse_faults(spec) == FaultPlan()
    assert not parse_faults(spec).corrupts


@pytest.mark.parametrize(
    "spec, named",
    [
        ("bitflip=2", "'bitflip=2'"),
        ("bitflip=x", "'x' is not a number"),
        ("drop=0.1,drop=0.2", "'drop' is given twice"),
        ("stall@5", "'stall@5' needs a duration"),
        ("unplug@5+0", "'unplug@5+0'"),
        ("reset@5+1", "a reset takes no duration"),
        ("reset@-1", "'reset@-1'"),
        ("explode@3", "unknown fault item 'explode@3'"),
        ("bitflip=0.1,,drop=0.1", "empty item"),
        ("stall@nan+1", "'stall@nan+1'"),
    ],
)
def test_bad_spec_names_the_bad_part(spec, named):
    with pytest.raises(InputError) as info:
        parse_faults(spec)
    assert named in str(info.value)
    assert "bitflip=P" in info.value.fix


# --- a harness: the emulator on a pty, the test on the other end -----------------------------


class Harness:
    def __init__(self, **kwargs):
        self.clock = ManualClock()
        kwargs.setdefault("signal", ramp)
        self.emu = PicoEmulator.on_pty(clock=self.clock, **kwargs)
        self.fd = self._open()
        self.decoder = p.FrameDecoder()
        self.emu.boot_now()

    def _open(self) -> int:
        fd = os.open(self.emu.port_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        return fd

    def step(self, seconds: float, every: float = 0.01) -> list[p.Message]:
        """Advance the clock in small steps, serving each, and return the messages that came out."""
        end = self.clock() + seconds
        while self.clock() < end - 1e-12:
            self.clock.advance(min(every, end - self.clock()))
            self.emu.service(self.clock())
        return self.drain()

    def replies(self, count: int, heard: int = 0, steps: int = 100) -> list[p.Message]:
        """Serve until ``count`` replies came back and ``heard`` commands arrived (a pty hands bytes over
        a moment after they were written)."""
        out: list[p.Message] = []
        for _ in range(steps):
            self.clock.advance(0.001)
            self.emu.service(self.clock(), input_timeout_real=0.02)
            out += self.drain()
            replies = [m for m in out if m.type not in (p.SAMPLES, p.STATUS)]
            if len(replies) >= count and len(self.emu.history.commands) >= heard:
                break
        return out

    def drain(self, quiet_s: float = 0.02) -> list[p.Message]:
        """Everything written so far: read until the pty has been quiet for ``quiet_s``."""
        import select

        out = []
        while True:
            try:
                if not select.select([self.fd], [], [], quiet_s)[0]:
                    return out
                data = os.read(self.fd, 65536)
            except OSError:  # unplugged
                return out
            if not data:
                return out
            out += self.decoder.feed(data)

    def send(self, msg_type: int, seq: int, fields: dict | None = None) -> None:
        os.write(self.fd, p.encode_frame(msg_type, seq, fields or {}))

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.emu.close()


@pytest.fixture
def harness_factory():
    made = []

    def make(**kwargs):
        harness = Harness(**kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def read_frames(fd: int, enough, timeout_s: float = 5.0) -> list[p.Message]:
    """Read a pty until ``enough(messages)``: a pty hands bytes over a moment after they were written."""
    import select
    import time

    decoder, out = p.FrameDecoder(), []
    deadline = time.monotonic() + timeout_s
    while not enough(out) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            out += decoder.feed(os.read(fd, 4096))
    return out


def of_type(messages, msg_type):
    return [m for m in messages if m.type == msg_type]


def samples_in(messages):
    seq, raw = [], []
    for m in of_type(messages, p.SAMPLES):
        seq += [m["first_seq"] + k for k in range(len(m["raw"]))]
        raw += m["raw"]
    return np.array(seq), np.array(raw)


def test_boot_says_hello_then_streams_due_samples_in_batches(harness_factory):
    h = harness_factory(rate_hz=80, batch=8)
    messages = h.drain()
    hello = of_type(messages, p.HELLO)[0]
    assert hello["next_seq"] == 0 and hello["rate_hz"] == 80 and hello["batch"] == 8
    assert hello["reset_cause"] == p.RESET_POWER_ON
    messages = h.step(1.0 - 1e-6)  # samples 0..79 are due by t0 + 79/80
    batches = of_type(messages, p.SAMPLES)
    assert [len(b["raw"]) for b in batches] == [8] * 10
    seq, raw = samples_in(messages)
    assert list(seq) == list(range(80)) and list(raw) == list(range(80))
    assert batches[1]["t0_us"] == 8 * 12500 and batches[1]["period_us"] == 12500
    assert all(b["boot_id"] == hello["boot_id"] for b in batches)
    status = of_type(h.step(0.01), p.STATUS)  # the first service at or after 1 s of uptime
    assert len(status) == 1 and 1_000_000 <= status[0]["uptime_us"] <= 1_010_000


def test_commands_are_answered_with_their_sequence(harness_factory):
    h = harness_factory()
    h.drain()
    h.send(p.PING, 40, {"nonce": 1234})
    h.send(p.HELLO_REQUEST, 41)
    h.send(p.SET_RATE, 42, {"rate_hz": 10})
    h.send(p.SET_RATE, 43, {"rate_hz": 0})
    h.send(p.STATUS, 44, {"uptime_us": 0, "hx711_timeouts": 0, "saturations": 0, "pio_overflows": 0,
                          "tx_dropped": 0, "rx_bad_frames": 0})
    messages = h.replies(4, heard=5)
    pong = of_type(messages, p.PONG)[0]
    assert (pong["cmd_seq"], pong["nonce"]) == (40, 1234)
    assert of_type(messages, p.HELLO)
    acks, naks = of_type(messages, p.ACK), of_type(messages, p.NAK)
    assert [(a["cmd_seq"], a["cmd_type"]) for a in acks] == [(42, p.SET_RATE)]
    assert [(n["cmd_seq"], n["reason"]) for n in naks] == [(43, p.NAK_UNSUPPORTED)]  # STATUS 44: not a command
    assert h.emu.rate_hz == 10
    assert [c[1] for c in h.emu.history.commands] == ["PING", "HELLO_REQUEST", "SET_RATE", "SET_RATE", "STATUS"]


def test_set_rate_keeps_numbering_and_device_time_continuous(harness_factory):
    h = harness_factory(rate_hz=80, batch=4)
    h.step(0.5)
    h.send(p.SET_RATE, 1, {"rate_hz": 10})
    messages = h.replies(1) + h.step(2.0)
    batches = of_type(messages, p.SAMPLES)
    seq, _ = samples_in(messages)
    assert list(seq) == list(range(seq[0], seq[0] + len(seq)))  # nothing skipped
    slow = [b for b in batches if b["period_us"] == 100_000]
    assert slow and all(b["t0_us"] > 500_000 for b in slow)


def test_reboot_acks_then_boots_again(harness_factory):
    h = harness_factory()
    first_boot = h.emu.boot_id
    h.step(0.3)
    h.send(p.REBOOT, 9)
    messages = h.replies(2) + h.step(0.3)
    assert [a["cmd_seq"] for a in of_type(messages, p.ACK)] == [9]
    hello = of_type(messages, p.HELLO)[-1]
    assert hello["reset_cause"] == p.RESET_SOFT and hello["boot_id"] != first_boot
    after = [b for b in of_type(messages, p.SAMPLES) if b["boot_id"] == hello["boot_id"]]
    assert after[0]["first_seq"] == 0 and after[0]["t0_us"] == 0


def test_reset_fault_restarts_numbering_and_device_time(harness_factory):
    h = harness_factory(faults="reset@1")
    messages = h.step(2.0)
    hellos = of_type(messages, p.HELLO)
    assert [h["reset_cause"] for h in hellos] == [p.RESET_POWER_ON, p.RESET_WATCHDOG]
    second = [b for b in of_type(messages, p.SAMPLES) if b["boot_id"] == hellos[1]["boot_id"]]
    assert second[0]["first_seq"] == 0 and second[0]["t0_us"] == 0
    assert len(h.emu.history.boots) == 2


def test_stall_sends_nothing_and_drops_the_samples_due_meanwhile(harness_factory):
    h = harness_factory(faults="stall@1+2", rate_hz=80, batch=8)
    before = h.step(1.0)
    during = h.step(1.9)
    after = h.step(1.1)
    assert during == []
    seq_before, _ = samples_in(before)
    seq_after, _ = samples_in(after)
    # Sample 80 (due at t=1.0 exactly) fell in the stall; the first after it is the one due at t=3.0.
    assert seq_before[-1] == 79
    assert seq_after[0] == 240
    assert h.emu.history.boots[0].skipped == 240 - 80


def test_unplug_removes_the_port_and_replug_boots_behind_the_same_path(harness_factory):
    h = harness_factory(faults="unplug@0.5+1")
    old_target = os.readlink(h.emu.port_name)
    h.step(0.6)
    assert not os.path.lexists(h.emu.port_name)
    assert h.drain() == []
    h.step(1.0)
    assert os.path.exists(h.emu.port_name)
    h.fd = h._open()  # the host reopens the same path
    h.decoder = p.FrameDecoder()
    h.send(p.HELLO_REQUEST, 1)
    messages = h.replies(1)
    hello = of_type(messages, p.HELLO)[0]
    assert hello["reset_cause"] == p.RESET_POWER_ON
    assert [kind for _, kind in h.emu.history.timeline] == ["boot", "unplug", "replug", "boot"]
    assert os.readlink(h.emu.port_name).startswith("/dev/pts/") and old_target.startswith("/dev/pts/")


def _stream_with_faults(seed: int) -> bytes:
    h = Harness(faults="bitflip=0.01,drop=0.005,truncate=0.02", seed=seed)
    try:
        for _ in range(60):
            h.clock.advance(0.05)
            h.emu.service(h.clock())
        import select

        chunks = []
        while select.select([h.fd], [], [], 0.05)[0]:
            chunks.append(os.read(h.fd, 65536))
        return b"".join(chunks), dict(h.emu.history.faults)
    finally:
        h.close()


def test_byte_faults_are_seeded_and_counted():
    stream_a, faults_a = _stream_with_faults(5)
    stream_b, faults_b = _stream_with_faults(5)
    stream_c, _ = _stream_with_faults(6)
    assert stream_a == stream_b and faults_a == faults_b
    assert stream_a != stream_c
    assert faults_a.get("bitflip", 0) > 0 and faults_a.get("drop", 0) > 0 and faults_a.get("truncate", 0) > 0


def test_signal_values_are_clipped_to_the_rails_and_counted():
    clock = ManualClock()
    emu = PicoEmulator.on_pty(signal=lambda i: np.where(i % 2 == 0, 2**30, -(2**30)), clock=clock, batch=4)
    try:
        fd = os.open(emu.port_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        emu.boot_now()
        clock.advance(0.05)
        emu.service(clock())
        messages = read_frames(fd, lambda out: of_type(out, p.SAMPLES))
        raw = of_type(messages, p.SAMPLES)[0]["raw"]
        assert raw == [p.RAW_MAX, p.RAW_MIN, p.RAW_MAX, p.RAW_MIN]
        os.close(fd)
    finally:
        emu.close()


def test_ramp_and_squeeze_signals():
    idx = np.array([0, 1, 2**23 + 5])
    assert list(ramp(idx)) == [0, 1, 5]
    sim = squeeze_signal(80.0, counts_per_newton=100.0, zero_offset=0, noise_counts=0.0)
    t = np.arange(0, 6 * 80)
    counts = sim(t)
    assert np.allclose(counts[:10], 20 * 100)  # the light hold
    assert counts.max() == pytest.approx((20 + 150) * 100, rel=0.01)  # the squeeze
    assert np.array_equal(sim(t), counts)  # deterministic


def test_emulator_rejects_bad_settings_and_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(InputError):
        PicoEmulator.on_pty(batch=0)
    with pytest.raises(InputError):
        PicoEmulator.on_pty(rate_hz=0)
    assert list(tmp_path.iterdir()) == []


def test_close_twice_and_the_pty_path_is_gone():
    emu = PicoEmulator.on_pty(clock=ManualClock())
    path = emu.port_name
    assert os.path.exists(path)
    emu.close()
    emu.close()
    assert not os.path.lexists(path)


# --- `kneeroll bridge emulate` and `bridge listen` -----------------------------------------------

import argparse  # noqa: E402
import json  # noqa: E402
import signal as signals  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from firmware_bridge.cli import register  # noqa: E402

RUN_BRIDGE_CLI = (
    "import argparse, sys\n"
    "from firmware_bridge.cli import register\n"
    "parser = argparse.ArgumentParser(prog='kneeroll')\n"
    "register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def _bridge_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kneeroll")
    register(parser.add_subparsers())
    return parser.parse_args(list(argv))


def test_emulate_prints_the_pty_first_and_listen_hears_it(capsys):
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_BRIDGE_CLI, "bridge", "emulate", "--signal", "ramp", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        assert path and os.path.exists(path)
        args = _bridge_args("bridge", "listen", path, "--seconds", "0.6", "--json")
        assert args.func(args) == 0
        doc = json.loads(capsys.readouterr().out)
        assert set(doc) == {"counters", "samples"}
        assert {"received", "lost", "crc_errors", "resyncs", "reconnects"} <= set(doc["counters"])
        seq = [s for s, _, _ in doc["samples"]]
        assert len(seq) >= 16 and doc["counters"]["lost"] == 0
        assert all(raw == s % 2**23 for s, _, raw in doc["samples"])
        assert seq == sorted(seq)

        args = _bridge_args("bridge", "listen", path, "--seconds", "0.3")
        assert args.func(args) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in lines] == ["received", "lost", "crc_errors", "resyncs", "reconnects"]
    finally:
        proc.send_signal(signals.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert not os.path.lexists(path)


def test_emulate_with_a_bad_spec_exits_2_naming_the_part(capsys):
    args = _bridge_args("bridge", "emulate", "--faults", "bitflip=0.1,wobble@3")
    assert args.func(args) == 2
    assert "wobble@3" in capsys.readouterr().err


def test_listen_to_a_missing_port_exits_1_with_the_fix(capsys, tmp_path):
    args = _bridge_args("bridge", "listen", str(tmp_path / "ttyGONE"), "--seconds", "0.1")
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "ttyGONE" in err and "dialout" in err


def test_serves_an_open_file_descriptor_and_a_loopback_url_without_answering_itself():
    import pty as ptys

    master, slave = ptys.openpty()
    clock = ManualClock()
    emu = PicoEmulator(master, clock=clock, batch=2)
    try:
        import tty

        tty.setraw(slave)
        os.set_blocking(slave, False)
        emu.boot_now()
        clock.advance(0.02)
        emu.service(clock())
        kinds = [m.name for m in read_frames(slave, lambda out: of_type(out, p.SAMPLES))]
        assert kinds[0] == "HELLO" and "SAMPLES" in kinds
    finally:
        emu.close()
        os.close(master)  # a descriptor given to the emulator stays the caller's
        os.close(slave)

    loop = PicoEmulator("loop://", clock=clock, batch=2)
    try:
        loop.boot_now()
        for _ in range(5):
            clock.advance(0.05)
            loop.service(clock())
        assert loop.history.frames.get("NAK", 0) == 0 and loop.history.commands  # heard itself, said nothing
    finally:
        loop.close()
