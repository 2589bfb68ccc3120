"""The codec: CRC, COBS, every message, and a decoder that never raises nor invents."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import protocol as p
from kneeroll_device.errors import FrameError, ProtocolError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def samples_msg(first_seq: int, raw: list[int], seq: int = 0, boot_id: int = 7) -> p.Message:
    fields = {"boot_id": boot_id, "first_seq": first_seq, "t0_us": first_seq * 12500, "period_us": 12500, "raw": raw}
    return p.Message(p.SAMPLES, fields, seq)


EXAMPLES = {
    p.HELLO: {
        "fw_major": 1, "fw_minor": 2, "fw_patch": 3, "board_id": b"ABCDEFGH", "rate_hz": 80, "gain": 128,
        "batch": 8, "reset_cause": 1, "boot_id": 99, "next_seq": 5, "device_time_us": 2**40,
    },
    p.SAMPLES: {"boot_id": 1, "first_seq": 2**32 - 1, "t0_us": 0, "period_us": 12500, "raw": [p.RAW_MIN, 0, p.RAW_MAX]},
    p.STATUS: {"uptime_us": 5, "hx711_timeouts": 1, "saturations": 2, "pio_overflows": 3, "tx_dropped": 4,
               "rx_bad_frames": 2**32 - 1},
    p.HELLO_REQUEST: {},
    p.PING: {"nonce": 0},
    p.PONG: {"cmd_seq": 65535, "nonce": 2**32 - 1, "device_time_us": 1},
    p.SET_RATE: {"rate_hz": 10},
    p.REBOOT: {},
    p.ACK: {"cmd_seq": 1, "cmd_type": p.SET_RATE},
    p.NAK: {"cmd_seq": 1, "cmd_type": p.SET_RATE, "reason": p.NAK_UNSUPPORTED},
}


# --- CRC and COBS -------------------------------------------------------------------


def test_crc_check_value_native_and_table_driven():
    assert p.crc32(b"123456789") == 0xCBF43926
    assert p.crc32_table_driven(b"123456789") == 0xCBF43926


@FAST
@given(st.binary(max_size=300))
def test_table_driven_crc_matches_zlib(data):
    assert p.crc32_table_driven(data) == zlib.crc32(data)


@pytest.mark.parametrize(
    "decoded, encoded",
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x11\x22\x00\x33\x44", b"\x03\x11\x22\x03\x33\x44"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_encodings(decoded, encoded):
    assert p.cobs_encode(decoded) == encoded
    assert p.cobs_decode(encoded) == decoded


@FAST
@given(st.binary(max_size=700))
def test_cobs_round_trip_and_no_zero_bytes(data):
    encoded = p.cobs_encode(data)
    assert 0 not in encoded
    assert p.cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x01", b"\x03\x01"])
def test_cobs_rejects_malformed_blocks(bad):
    with pytest.raises(FrameError):
        p.cobs_decode(bad)


# --- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", sorted(EXAMPLES))
def test_every_message_round_trips(msg_type):
    frame = p.encode_frame(msg_type, 513, EXAMPLES[msg_type])
    assert frame.endswith(b"\x00") and 0 not in frame[:-1]
    assert len(frame) <= p.MAX_ENCODED
    decoded = p.decode_frame(frame[:-1])
    assert decoded == p.Message(msg_type, EXAMPLES[msg_type], 513)
    assert decoded.name == p.TYPE_NAMES[msg_type]


def test_largest_frame_fits_the_documented_bound():
    frame = samples_msg(0, [p.RAW_MIN] * p.MAX_BATCH).encode()
    assert len(p.cobs_decode(frame[:-1])) == p.MAX_BODY == 125
    assert len(frame) - 1 <= p.MAX_ENCODED


@pytest.mark.parametrize(
    "msg_type, fields",
    [
        (p.PING, {"nonce": -1}),
        (p.PING, {"nonce": 2**32}),
        (p.PING, {}),
        (p.SET_RATE, {"rate_hz": 1.5}),
        (p.HELLO, dict(EXAMPLES[p.HELLO], board_id=b"short")),
        (p.SAMPLES, dict(EXAMPLES[p.SAMPLES], raw=[p.RAW_MAX + 1])),
        (p.SAMPLES, dict(EXAMPLES[p.SAMPLES], raw=[])),
        (p.SAMPLES, dict(EXAMPLES[p.SAMPLES], raw=[0] * (p.MAX_BATCH + 1))),
    ],
)
def test_encoding_refuses_values_that_do_not_fit(msg_type, fields):
    with pytest.raises(FrameError):
        p.encode_frame(msg_type, 0, fields)


def test_encoding_an_unknown_type_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        p.encode_frame(0x7E, 0, {})


def _frame_with(version: int, msg_type: int, payload: bytes) -> bytes:
    body = bytes([version, msg_type, 0, 0]) + payload
    body += zlib.crc32(body).to_bytes(4, "little")
    return p.cobs_encode(body) + b"\x00"


def test_decoder_counts_a_foreign_version_and_remembers_it():
    decoder = p.FrameDecoder()
    assert decoder.feed(_frame_with(2, p.PING, b"\x00" * 4)) == []
    assert decoder.version_errors == 1 and decoder.last_foreign_version == 2
    with pytest.raises(ProtocolError):
        p.decode_frame(_frame_with(2, p.PING, b"\x00" * 4)[:-1])


def test_decoder_counts_unknown_types_and_bad_lengths():
    decoder = p.FrameDecoder()
    decoder.feed(_frame_with(1, 0x7E, b""))
    decoder.feed(_frame_with(1, p.PING, b"\x00" * 3))
    decoder.feed(_frame_with(1, p.SAMPLES, b"\x00" * 20 + b"\x02" + b"\x00" * 3))
    assert (decoder.unknown_types, decoder.bad_frames, decoder.frames) == (1, 2, 0)


# --- the incremental decoder -----------------------------------------------------------------


@FAST
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_decoder_accepts_chunks_of_any_size(cuts):
    messages = [samples_msg(i * 8, list(range(i, i + 8)), seq=i) for i in range(6)]
    stream = b"".join(m.encode() for m in messages)
    decoder = p.FrameDecoder()
    out, at = [], 0
    for cut in cuts * 20:
        out += decoder.feed(stream[at : at + cut])
        at += cut
        if at >= len(stream):
            break
    out += decoder.feed(stream[at:])
    assert out == messages
    assert decoder.counters()["crc_errors"] == 0 and decoder.resyncs == 0


def test_decoder_buffer_is_bounded_and_an_overlong_frame_is_dropped_whole():
    decoder = p.FrameDecoder(max_frame=64)
    good = samples_msg(0, [1]).encode()
    assert decoder.feed(b"\x01" * 50) == []
    assert decoder.feed(b"\x01" * 50) == []
    assert decoder.pending() == 0  # nothing kept past the bound
    assert decoder.feed(b"\x01" * 1000 + b"\x00" + good) == [samples_msg(0, [1])]
    assert decoder.oversize == 1 and decoder.resyncs == 1 and decoder.garbage_bytes >= 1100


def test_decoder_resynchronises_after_garbage_and_counts_crc_errors():
    good = samples_msg(0, [5, 6]).encode()
    damaged = bytearray(good)
    damaged[6] ^= 0x10
    decoder = p.FrameDecoder()
    assert decoder.feed(b"\x37\x99" + bytes(damaged) + good) == [samples_msg(0, [5, 6])]
    assert decoder.crc_errors + decoder.bad_frames == 1
    assert decoder.resyncs == 1


@FAST
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_arbitrary_bytes_never_raise(data, chunk):
    decoder = p.FrameDecoder()
    for at in range(0, len(data), chunk):
        for msg in decoder.feed(data[at : at + chunk]):
            assert msg.type in p.TYPE_NAMES  # anything accepted is a well-formed message
    assert decoder.pending() <= decoder.max_frame


corruption = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def _corrupt(stream: bytes, edits: list[tuple]) -> bytes:
    data = bytearray(stream)
    for kind, where, what in edits:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= 1 << what
        elif kind == "delete":
            del data[at : at + what]
        elif kind == "insert":
            data[at:at] = what
        else:  # cut a frame short at `at`, keeping the stream's delimiter structure after it
            end = data.find(b"\x00", at)
            if end > at:
                del data[at:end]
    return bytes(data)


@FAST
@given(
    batches=st.lists(
        st.lists(st.integers(p.RAW_MIN, p.RAW_MAX), min_size=1, max_size=p.MAX_BATCH), min_size=1, max_size=12
    ),
    edits=st.lists(corruption, max_size=12),
    chunk=st.integers(1, 97),
)
def test_corrupted_streams_never_raise_and_never_deliver_an_unsent_sample(batches, edits, chunk):
    sent, first = [], 0
    for index, raw in enumerate(batches):
        sent.append(samples_msg(first, raw, seq=index))
        first += len(raw)
    stream = _corrupt(b"".join(m.encode() for m in sent), edits)
    decoder = p.FrameDecoder()
    received = []
    for at in range(0, len(stream), chunk):
        received += decoder.feed(stream[at : at + chunk])
    sent_samples = {(m["first_seq"] + k, v) for m in sent for k, v in enumerate(m["raw"])}
    for msg in received:
        assert msg in sent  # whole frames only, exactly as sent
        for k, value in enumerate(msg["raw"]):
            assert (msg["first_seq"] + k, value) in sent_samples
    if not edits:
        assert received == sent


def test_plain_fields_round_trip_bytes_as_hex():
    plain = p.fields_to_plain(p.HELLO, EXAMPLES[p.HELLO])
    assert plain["board_id"] == "4142434445464748"
    assert p.fields_from_plain(p.HELLO, plain) == EXAMPLES[p.HELLO]
