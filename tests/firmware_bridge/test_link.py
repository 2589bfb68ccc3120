"""The host side of the force link: accounting, time mapping, reconnects, and a real pty with faults."""

from __future__ import annotations

import errno
import threading
import termios

import numpy as np
import pytest
import serial

from firmware_bridge import protocol as p
from firmware_bridge.emulator import PicoEmulator, ramp
from firmware_bridge.link import DeviceTimeMapper, ForceLink, LinkBatch, StreamTracker
from kneeroll_device.clock import ScaledClock
from kneeroll_device.errors import LinkError, ProtocolError
from kneeroll_device.samples import DeviceEvent, GapEvent


def samples(first: int, n: int = 8, boot: int = 1, period: int = 12_500) -> p.Message:
    raw = [(first + k) % (1 << 23) for k in range(n)]
    return p.Message(
        p.SAMPLES, {"boot_id": boot, "first_seq": first % 2**32, "t0_us": first * period, "period_us": period, "raw": raw}
    )


def hello(boot: int = 1, cause: int = p.RESET_POWER_ON, rate_hz: int = 80) -> p.Message:
    return p.Message(
        p.HELLO,
        {"fw_major": 1, "fw_minor": 0, "fw_patch": 0, "board_id": b"PICO0001", "rate_hz": rate_hz, "gain": 128,
         "batch": 8, "reset_cause": cause, "boot_id": boot, "next_seq": 0, "device_time_us": 0},
    )


# --- StreamTracker: pure accounting ---------------------------------------------------------------


def test_first_contact_counts_nothing_before_it_and_consecutive_frames_lose_nothing():
    tracker = StreamTracker()
    chunk, events = tracker.on_samples(samples(800), 10.0, after_corruption=False)
    assert list(chunk.seq) == list(range(800, 808)) and events == []
    chunk, events = tracker.on_samples(samples(808), 10.1, after_corruption=False)
    assert list(chunk.seq) == list(range(808, 816))
    assert (tracker.received, tracker.lost) == (16, 0)


def test_a_gap_is_counted_lost_and_reported_with_its_cause():
    tracker = StreamTracker()
    tracker.on_samples(samples(0), 1.0, False)
    chunk, events = tracker.on_samples(samples(24), 1.3, after_corruption=True)
    assert tracker.lost == 16
    assert events == [GapEvent(1.3, "force", 16, "corrupt frames")]
    _, events = tracker.on_samples(samples(40), 1.5, after_corruption=False)
    assert events[0].reason == "missing frames" and tracker.lost == 24


def test_sequence_numbers_unwrap_past_two_to_the_32():
    tracker = StreamTracker()
    tracker.on_samples(samples(2**32 - 8), 1.0, False)
    chunk, events = tracker.on_samples(samples(2**32), 1.1, False)  # the wire says first_seq = 0
    assert events == [] and list(chunk.seq) == list(range(2**32, 2**32 + 8))


def test_a_new_boot_in_samples_is_a_reset_and_its_missing_start_is_lost():
    tracker = StreamTracker()
    tracker.on_samples(samples(0, boot=1), 1.0, False)
    tracker.on_samples(samples(8, boot=1), 1.1, False)
    chunk, events = tracker.on_samples(samples(16, boot=2), 1.2, False)
    kinds = [(type(e).__name__, getattr(e, "kind", None)) for e in events]
    assert kinds == [("DeviceEvent", "reset"), ("GapEvent", None)]
    assert tracker.lost == 16 and tracker.resets == 1
    assert list(chunk.seq) == list(range(16, 24))


def test_hello_of_a_new_boot_resets_once_and_samples_count_from_zero():
    tracker = StreamTracker()
    assert tracker.on_hello(hello(boot=1), 0.0) == []
    tracker.on_samples(samples(0, boot=1), 0.1, False)
    events = tracker.on_hello(hello(boot=2), 0.2)
    assert [e.kind for e in events] == ["reset"]
    _, events = tracker.on_samples(samples(0, boot=2), 0.3, False)
    assert events == [] and tracker.lost == 0
    assert tracker.on_hello(hello(boot=2), 0.4) == []  # a HELLO reply of the same boot changes nothing


def test_an_old_frame_is_never_delivered_twice():
    tracker = StreamTracker()
    tracker.on_samples(samples(0), 1.0, False)
    tracker.on_samples(samples(8), 1.1, False)
    chunk, _ = tracker.on_samples(samples(4), 1.2, False)  # 4..11: all delivered already
    assert chunk is None
    chunk, _ = tracker.on_samples(samples(12), 1.3, False)  # 12..19: only 16..19 are new
    assert list(chunk.seq) == [16, 17, 18, 19] and tracker.lost == 0
    assert list(chunk.device_time_us) == [16 * 12_500 + k * 12_500 for k in range(4)]


def test_host_times_never_go_backwards():
    tracker = StreamTracker()
    chunk1, _ = tracker.on_samples(samples(0), 5.0, False)  # arrives late: offset high
    chunk2, _ = tracker.on_samples(samples(8), 5.0, False)  # offset drops at once
    times = np.concatenate([chunk1.host_t, chunk2.host_t])
    assert np.all(np.diff(times) >= 0)
    assert chunk2.host_t[-1] <= 5.0  # a sample is never placed after it arrived


# --- DeviceTimeMapper ----------------------------------------------------------------------------


@pytest.mark.parametrize("ppm", [-500.0, 0.0, 500.0])
def test_time_mapping_follows_drift_within_a_few_milliseconds(ppm):
    rng = np.random.default_rng(1)
    mapper = DeviceTimeMapper()
    true_offset = 100.0  # the host clock read 100 s when the device booted
    errors = []
    for k in range(600):  # one minute of frames, ten a second
        device_s = k * 0.1
        host_true = true_offset + device_s * (1 + ppm * 1e-6)
        arrival = host_true + 0.002 + rng.exponential(0.004)  # latency: never negative
        mapper.observe(round(device_s * 1e6), arrival)
        if k > 100:
            errors.append(mapper.to_host(np.array([round(device_s * 1e6)]))[0] - host_true)
    assert max(abs(e) for e in errors) < 0.02
    mapper.reset()
    assert mapper.offset is None


# --- ForceLink with scripted ports -------------------------------------------------------------------


class ScriptedPort:
    """A pyserial stand-in: hands out bytes and exceptions in order, records writes."""

    def __init__(self, items, timeout):
        self.items = list(items)
        self.timeout = timeout
        self.written = bytearray()
        self.closed = False
        self.more = threading.Event()

    @property
    def in_waiting(self):
        if self.items and isinstance(self.items[0], bytes):
            return len(self.items[0])
        return 0

    def read(self, n):
        if not self.items:
            self.more.wait(self.timeout)
            return b""
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def write(self, data):
        self.written += data
        return len(data)

    def close(self):
        self.closed = True


class ScriptedFactory:
    def __init__(self, *scripts):
        self.scripts = list(scripts)
        self.opened = []
        self.attempts = 0

    def __call__(self, url, **kwargs):
        self.attempts += 1
        if not self.scripts:
            raise serial.SerialException(f"could not open port {url}: [Errno 2] No such file or directory")
        script = self.scripts.pop(0)
        if isinstance(script, BaseException):
            raise script
        port = ScriptedPort(script, kwargs.get("timeout", 0.01))
        self.opened.append(port)
        return port


def frames(*messages: p.Message) -> bytes:
    return b"".join(p.encode_frame(m.type, i, m.fields) for i, m in enumerate(messages))


def make_link(factory, **kwargs) -> ForceLink:
    kwargs.setdefault("clock", ScaledClock(20))
    kwargs.setdefault("backoff_initial_s", 0.05)
    return ForceLink("/dev/ttyTEST", serial_factory=factory, **kwargs)


def collect(link: ForceLink, until, timeout_s: float = 40.0) -> LinkBatch:
    """Read until ``until(seq, events)`` holds; returns everything read."""
    seqs, raws, events = [], [], []

    def done():
        batch = link.read()
        seqs.append(batch.seq)
        raws.append(batch.raw)
        events.extend(batch.events)
        return until(np.concatenate(seqs), events)

    assert link.wait_until(done, timeout_s), (link.counters(), events)
    seq = np.concatenate(seqs)
    return LinkBatch(seq, np.zeros(len(seq), np.int64), np.concatenate(raws), np.zeros(len(seq)), tuple(events))


def test_a_port_that_cannot_be_opened_is_a_link_error_naming_it_and_the_fix():
    factory = ScriptedFactory(serial.SerialException("could not open port /dev/ttyTEST: [Errno 13] Permission denied"))
    link = make_link(factory)
    with pytest.raises(LinkError) as info:
        link.start()
    assert "/dev/ttyTEST" in str(info.value) and "dialout" in info.value.fix and "raspi-config" in info.value.fix
    link.close()


@pytest.mark.parametrize(
    "failure",
    [
        serial.SerialException("device reports readiness to read but returned no data"),
        OSError(errno.EIO, "Input/output error"),
        termios.error(5, "Input/output error"),
    ],
    ids=["SerialException", "OSError", "termios.error"],
)
def test_reconnects_after_each_kind_of_port_failure_and_counts_the_gap(failure):
    factory = ScriptedFactory(
        [frames(hello(), samples(0), samples(8)), failure],
        serial.SerialException("could not open port: [Errno 2] No such file or directory"),  # still unplugged
        [frames(samples(32), samples(40))],
    )
    with make_link(factory) as link:
        got = collect(link, lambda seq, ev: len(seq) >= 32)
        assert list(got.seq) == list(range(16)) + list(range(32, 48))
        counters = link.counters()
        assert counters["reconnects"] == 1 and counters["lost"] == 16 and counters["received"] == 32
        kinds = [e.kind for e in got.device_events]
        assert kinds[:3] == ["up", "down", "up"]
        assert got.gaps[0].samples_lost == 16
        assert factory.attempts == 3 and factory.opened[0].closed
        # on every (re)connect the link asked who is there
        assert p.FrameDecoder().feed(bytes(factory.opened[1].written))[0].type == p.HELLO_REQUEST


@pytest.mark.parametrize("rate_hz, interval_s, silence_s", [(80, 0.1, 1.0), (10, 0.8, 1.6)])
def test_the_silence_that_means_down_allows_two_frames_of_the_pico_s_batch(rate_hz, interval_s, silence_s):
    factory = ScriptedFactory([frames(hello(rate_hz=rate_hz))])
    link = make_link(factory)
    assert link.frame_interval_s == 0.0  # nothing known before the HELLO
    with link:
        assert link.wait_until(lambda: link.device_info is not None, 20.0)
        assert link.frame_interval_s == pytest.approx(interval_s)
        assert link._silence_allowed_s() == pytest.approx(silence_s)


def test_only_one_named_reader_thread_and_close_is_safe_twice():
    factory = ScriptedFactory([frames(hello())])
    link = make_link(factory).start()
    link.start()  # a second start is a no-op
    readers = [t for t in threading.enumerate() if t.name == "force-link"]
    assert len(readers) == 1
    link.close()
    link.close()
    assert not readers[0].is_alive()
    assert factory.opened[0].closed
    with pytest.raises(LinkError):
        link.start()


def test_a_foreign_protocol_version_is_a_fault_not_a_crash_and_clears_when_fixed():
    foreign = bytearray(p.cobs_decode(frames(samples(0))[:-1]))
    foreign[0] = 2
    foreign[-4:] = p.crc32(bytes(foreign[:-4])).to_bytes(4, "little")
    foreign_frame = p.cobs_encode(bytes(foreign)) + b"\x00"
    factory = ScriptedFactory([foreign_frame * 3, frames(hello(), samples(0))])
    with make_link(factory) as link:
        got = collect(link, lambda seq, ev: any(e.kind == "recovered" for e in ev if isinstance(e, DeviceEvent)))
        faults = [e for e in got.device_events if e.kind == "fault"]
        assert len(faults) == 1 and "version 2" in faults[0].detail
        kinds = [e.kind for e in got.device_events]
        assert kinds.index("fault") < kinds.index("recovered") < kinds.index("up")
        assert link.counters()["version_errors"] == 3
        assert link.fault is None


def test_fault_is_kept_while_the_device_speaks_another_version():
    foreign = bytearray(p.cobs_decode(frames(hello())[:-1]))
    foreign[0] = 9
    foreign[-4:] = p.crc32(bytes(foreign[:-4])).to_bytes(4, "little")
    factory = ScriptedFactory([p.cobs_encode(bytes(foreign)) + b"\x00"])
    with make_link(factory) as link:
        assert link.wait_until(lambda: link.fault is not None, 20.0)
        assert isinstance(link.fault, ProtocolError) and "firmware" in link.fault.fix
        assert not link.is_up


def test_the_sample_buffer_is_bounded_and_overflow_is_counted():
    factory = ScriptedFactory([frames(hello(), *[samples(8 * i) for i in range(5)])])
    with make_link(factory, max_buffered_samples=16) as link:
        assert link.wait_until(lambda: link.counters()["received"] == 40, 20.0)
        batch = link.read()
        assert list(batch.seq) == list(range(24, 40))  # the newest are kept
        counters = link.counters()
        assert counters["overflowed"] == 24 and counters["lost"] == 24
        assert sum(g.samples_lost for g in batch.gaps) == 24


def test_a_bug_in_the_reader_is_loud():
    factory = ScriptedFactory([ValueError("boom")])  # not a port error: a bug
    link = make_link(factory).start()
    try:
        assert link.wait_until(lambda: link._crash is not None, 20.0)
        first = link.read()
        assert any(e.kind == "fault" for e in first.device_events)
        with pytest.raises(LinkError):
            link.read()
    finally:
        link.close()


def test_loop_url_opens_and_ignores_its_own_commands():
    link = ForceLink("loop://", clock=ScaledClock(20))
    with link:
        assert link.wait_until(lambda: link.counters()["frames"] >= 1, 20.0)  # its own HELLO_REQUEST came back
        assert len(link.read()) == 0 and link.counters()["lost"] == 0


# --- over a real pty, with the emulator -----------------------------------------------------------------


@pytest.fixture
def pty_pico():
    made = []

    def make(clock, **kwargs):
        emu = PicoEmulator.on_pty(clock=clock, signal=ramp, **kwargs)
        link = ForceLink(emu.port_name, clock=clock, backoff_initial_s=0.05, backoff_max_s=0.5)
        made.append((emu, link))
        return emu, link

    yield make
    for emu, link in made:
        link.close()
        emu.close()


def test_commands_round_trip_through_the_emulator(pty_pico):
    clock = ScaledClock(5)
    emu, link = pty_pico(clock)
    link.start()
    emu.start()
    assert link.wait_until(lambda: link.device_info is not None, 20.0)
    assert link.device_info.rate_hz == 80 and link.device_info.board_id == b"EMUPICO\x01".hex()
    assert link.ping(5.0) is not None
    assert link.set_rate(40, 5.0) is True and emu.rate_hz == 40
    assert link.set_rate(5000, 5.0) is False
    first_boot = emu.boot_id
    assert link.reboot(5.0) is True
    collect(link, lambda seq, ev: any(getattr(e, "kind", "") == "reset" for e in ev))
    assert emu.boot_id != first_boot and link.counters()["resets"] == 1
    assert link.wait_until(lambda: link.device_info.reset_cause == "reboot command", 20.0)


def _split_boots(seq: np.ndarray) -> list[np.ndarray]:
    """Delivered sample numbers restart at 0 with each boot; within one they only rise."""
    return np.split(seq, np.flatnonzero(np.diff(seq) < 0) + 1)


def test_over_a_pty_with_faults_nothing_is_invented_losses_are_exact_and_it_recovers(pty_pico):
    clock = ScaledClock(10)  # 20 s of device life in about 2 s
    spec = "bitflip=0.001,drop=0.0005,truncate=0.01,reset@4,stall@7+1.5,unplug@11+1,reset@15"
    emu, link = pty_pico(clock, faults=spec, seed=11)
    link.start()  # the port is open before the Pico boots: the host hears it from its first sample
    emu.start()
    seqs, raws, events = [], [], []
    done = threading.Event()
    while emu.elapsed() < 20.0:
        batch = link.read()
        seqs.append(batch.seq)
        raws.append(batch.raw)
        events += batch.events
        clock.wait(done, 0.25)
    assert emu.pause()  # the last half batch goes out, then silence
    # A PONG comes back after everything sent before it: a barrier, retried in case it is corrupted.
    assert any(link.ping(1.0) is not None for _ in range(10))
    batch = link.read()
    seqs.append(batch.seq)
    raws.append(batch.raw)
    events += batch.events
    seq, raw = np.concatenate(seqs), np.concatenate(raws)
    counters = link.counters()

    # 1. Nothing invented: every delivered sample is one the Pico sent, with its value.
    assert np.array_equal(raw, seq % (1 << 23))
    boots = emu.history.boots
    delivered = _split_boots(seq)
    assert len(delivered) == len(boots) == 4  # power-on, reset, replug, reset
    for record, got in zip(boots, delivered):
        sent_seq, _ = record.sent()
        assert np.isin(got, sent_seq).all()
        assert np.all(np.diff(got) > 0)

    # 2. The lost counter is exactly what was not delivered, between what the link could know of.
    expected_lost = 0
    for index, got in enumerate(delivered):
        low = got.min() if index == 0 else 0  # later boots count from their first sample
        expected_lost += int(got.max() - low + 1 - len(got))
    assert counters["lost"] == expected_lost
    assert sum(e.samples_lost for e in events if isinstance(e, GapEvent)) == expected_lost
    assert counters["received"] == len(seq)

    # 3. The faults really happened and the link recovered by itself.
    assert emu.history.faults.get("bitflip", 0) > 0 and emu.history.faults.get("truncate", 0) > 0
    assert counters["crc_errors"] + counters["bad_frames"] > 0 and counters["resyncs"] > 0
    assert counters["reconnects"] >= 1 and counters["resets"] == 3
    kinds = [e.kind for e in events if isinstance(e, DeviceEvent)]
    assert kinds.count("reset") == 3 and "down" in kinds
    assert kinds[-1] != "down" and link.is_up
    assert len(delivered[-1]) > 100  # the last boot streamed on after all of it


# --- property: decoder + accounting over arbitrarily damaged streams -----------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

damage = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 60)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=60)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, p.MAX_BATCH), min_size=1, max_size=15),
    skips=st.lists(st.integers(0, 20), min_size=15, max_size=15),
    edits=st.lists(damage, max_size=10),
    chunk=st.integers(1, 200),
)
def test_accounting_over_damaged_streams_delivers_only_sent_samples_and_counts_the_rest(sizes, skips, edits, chunk):
    stream, first = bytearray(), 0
    sent = {}
    for index, size in enumerate(sizes):
        first += skips[index]  # samples the device numbered but never sent
        msg = samples(first, n=size)
        stream += p.encode_frame(p.SAMPLES, index, msg.fields)
        sent.update({first + k: v for k, v in enumerate(msg["raw"])})
        first += size
    for kind, where, what in edits:
        if not stream:
            break
        at = where % len(stream)
        if kind == "flip":
            stream[at] ^= 1 << what
        elif kind == "delete":
            del stream[at : at + what]
        else:
            stream[at:at] = what
    decoder, tracker = p.FrameDecoder(), StreamTracker()
    delivered = []
    for at in range(0, len(stream), chunk):
        for msg in decoder.feed(bytes(stream[at : at + chunk])):
            if msg.type == p.SAMPLES:
                got, _ = tracker.on_samples(msg, float(at), after_corruption=False)
                if got is not None:
                    delivered += list(zip(got.seq.tolist(), got.raw.tolist()))
    for seq, raw in delivered:
        assert sent.get(seq) == raw  # never a sample that was not sent, never a wrong value
    seqs = [s for s, _ in delivered]
    assert seqs == sorted(set(seqs))  # never twice, never out of order
    if seqs:
        assert tracker.lost == seqs[-1] - seqs[0] + 1 - len(seqs)
    assert tracker.received == len(seqs)
