"""The force link's wire format: COBS frames, CRC-32, messages as data.

This one file runs on the Pico (MicroPython) and on the host (CPython), so it
keeps to the language both share: no dataclasses, no typing at run time, no
f-strings, struct and bytearray only. PROTOCOL.md beside it is the byte-by-byte
description; the two must agree, and test_vectors.json pins them together.

Frame on the wire::

    COBS( version u8 | type u8 | seq u16 | payload | crc32 u32 ) 0x00

All integers are little-endian. The CRC is CRC-32/ISO-HDLC (the zlib one:
check value 0xCBF43926 over b"123456789") over every byte before it.
"""

import struct

try:  # C speed where the port has it; CPython always does
    from binascii import crc32 as _native_crc32
except ImportError:  # pragma: no cover - some MicroPython builds leave it out
    _native_crc32 = None

from binascii import hexlify, unhexlify

try:  # the host's exception family; the Pico has no kneeroll_device package
    from kneeroll_device.errors import FrameError, ProtocolError
except (ImportError, SyntaxError):  # pragma: no cover - exercised under MicroPython

    class FrameError(ValueError):
        pass

    class ProtocolError(ValueError):
        pass


class CrcMismatch(FrameError):
    """A frame whose bytes arrived but do not match their CRC."""


class ForeignVersion(ProtocolError):
    """An intact frame from a peer that speaks another protocol version."""

    def __init__(self, version):
        super().__init__("peer speaks protocol version %d, this side speaks %d" % (version, PROTOCOL_VERSION))
        self.version = version


class UnknownType(ProtocolError):
    """An intact frame of this version whose type this side does not know."""


PROTOCOL_VERSION = 1

# --- message types ---------------------------------------------------------
# Device to host
HELLO = 0x01
SAMPLES = 0x02
STATUS = 0x03
PONG = 0x12
ACK = 0x20
NAK = 0x21
# Host to device
HELLO_REQUEST = 0x10
PING = 0x11
SET_RATE = 0x13
REBOOT = 0x14

# A device answers only commands: replying to a device-to-host frame (heard
# through a loopback or crossed wires) could make two ends answer each other forever.
COMMAND_TYPES = (HELLO_REQUEST, PING, SET_RATE, REBOOT)

TYPE_NAMES = {
    HELLO: "HELLO",
    SAMPLES: "SAMPLES",
    STATUS: "STATUS",
    HELLO_REQUEST: "HELLO_REQUEST",
    PING: "PING",
    PONG: "PONG",
    SET_RATE: "SET_RATE",
    REBOOT: "REBOOT",
    ACK: "ACK",
    NAK: "NAK",
}
TYPES_BY_NAME = {}
for _code in TYPE_NAMES:
    TYPES_BY_NAME[TYPE_NAMES[_code]] = _code

# NAK reasons
NAK_UNKNOWN_TYPE = 1
NAK_BAD_PAYLOAD = 2
NAK_UNSUPPORTED = 3
NAK_BUSY = 4

# HELLO reset causes (what the device knows about why it booted)
RESET_POWER_ON = 1
RESET_WATCHDOG = 2
RESET_SOFT = 3  # a REBOOT command or machine.reset()
RESET_OTHER = 0

# --- sizes and limits -------------------------------------------------------
HEADER = "<BBH"  # version, type, seq
HEADER_SIZE = 4
CRC_SIZE = 4
MAX_BATCH = 32  # samples in one SAMPLES frame
SAMPLE_BYTES = 3  # one signed 24-bit reading
RAW_MIN = -0x800000  # the HX711's negative rail
RAW_MAX = 0x7FFFFF  # and its positive rail
SEQ_MODULUS = 0x10000  # frame sequence numbers wrap here
SAMPLE_SEQ_MODULUS = 0x100000000  # sample sequence numbers wrap here
# The largest body is a full SAMPLES frame: header, fixed part, readings, CRC.
MAX_BODY = HEADER_SIZE + 21 + MAX_BATCH * SAMPLE_BYTES + CRC_SIZE
# COBS adds one byte per 254 and the decoder allows generous slack on top.
MAX_ENCODED = 256

# --- message layouts (data, not code) ----------------------------------------
# Each layout is a tuple of (field name, struct code). "8s" is 8 raw bytes.
LAYOUTS = {
    HELLO: (
        ("fw_major", "B"),
        ("fw_minor", "B"),
        ("fw_patch", "B"),
        ("board_id", "8s"),
        ("rate_hz", "H"),
        ("gain", "B"),
        ("batch", "B"),
        ("reset_cause", "B"),
        ("boot_id", "I"),
        ("next_seq", "I"),
        ("device_time_us", "Q"),
    ),
    # SAMPLES: this fixed part, then `count` readings of 3 bytes each.
    # boot_id rides in every batch so a receiver can never mistake a restarted
    # device's samples for a continuation of the old stream.
    SAMPLES: (
        ("boot_id", "I"),
        ("first_seq", "I"),
        ("t0_us", "Q"),
        ("period_us", "I"),
        ("count", "B"),
    ),
    STATUS: (
        ("uptime_us", "Q"),
        ("hx711_timeouts", "I"),
        ("saturations", "I"),
        ("pio_overflows", "I"),
        ("tx_dropped", "I"),
        ("rx_bad_frames", "I"),
    ),
    HELLO_REQUEST: (),
    PING: (("nonce", "I"),),
    PONG: (("cmd_seq", "H"), ("nonce", "I"), ("device_time_us", "Q")),
    SET_RATE: (("rate_hz", "H"),),
    REBOOT: (),
    ACK: (("cmd_seq", "H"), ("cmd_type", "B")),
    NAK: (("cmd_seq", "H"), ("cmd_type", "B"), ("reason", "B")),
}

_UNSIGNED_LIMITS = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF, "Q": 0xFFFFFFFFFFFFFFFF}


def _layout_format(layout):
    codes = "<"
    for _name, code in layout:
        codes += code
    return codes


_FORMATS = {}
_SIZES = {}
for _code in LAYOUTS:
    _FORMATS[_code] = _layout_format(LAYOUTS[_code])
    _SIZES[_code] = struct.calcsize(_FORMATS[_code])


# --- CRC-32 -----------------------------------------------------------------


def _make_crc_table():
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            if value & 1:
                value = (value >> 1) ^ 0xEDB88320
            else:
                value >>= 1
        table.append(value)
    return table


_CRC_TABLE = None


def crc32_table_driven(data, value=0):
    """CRC-32/ISO-HDLC without binascii: the fallback for lean MicroPython builds."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _make_crc_table()
    table = _CRC_TABLE
    crc = value ^ 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32(data):
    if _native_crc32 is not None:
        return _native_crc32(data) & 0xFFFFFFFF
    return crc32_table_driven(data)


# --- COBS -------------------------------------------------------------------


def cobs_encode(data):
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte."""
    out = bytearray(len(data) + len(data) // 254 + 2)
    code_at = 0
    write = 1
    code = 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at = write
            write += 1
            code = 1
            continue
        out[write] = byte
        write += 1
        code += 1
        if code == 0xFF:  # a full block of 254 non-zero bytes
            out[code_at] = code
            code_at = write
            write += 1
            code = 1
    out[code_at] = code
    return bytes(out[:write])


def cobs_decode(encoded):
    """Undo :func:`cobs_encode`; a malformed block raises FrameError."""
    out = bytearray()
    index = 0
    size = len(encoded)
    while index < size:
        code = encoded[index]
        if code == 0:
            raise FrameError("COBS block code 0 inside a frame")
        end = index + code
        if end > size:
            raise FrameError("COBS block runs past the end of the frame")
        out.extend(encoded[index + 1 : end])
        index = end
        if code < 0xFF and index < size:
            out.append(0)
    return bytes(out)


# --- 24-bit readings -----------------------------------------------------------


def pack_readings(raw):
    out = bytearray(len(raw) * SAMPLE_BYTES)
    at = 0
    for value in raw:
        value = int(value)
        if value < RAW_MIN or value > RAW_MAX:
            raise FrameError("reading %d is outside the signed 24-bit range" % value)
        value &= 0xFFFFFF
        out[at] = value & 0xFF
        out[at + 1] = (value >> 8) & 0xFF
        out[at + 2] = value >> 16
        at += SAMPLE_BYTES
    return out


def unpack_readings(data, offset, count):
    raw = []
    at = offset
    for _ in range(count):
        value = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16)
        if value & 0x800000:
            value -= 0x1000000
        raw.append(value)
        at += SAMPLE_BYTES
    return raw


# --- messages -------------------------------------------------------------------


class Message:
    """One decoded or to-be-encoded message: type, frame sequence and named fields."""

    def __init__(self, msg_type, fields=None, seq=0):
        self.type = msg_type
        self.seq = seq
        self.fields = fields if fields is not None else {}

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "TYPE_0x%02X" % self.type)

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return self.type == other.type and self.seq == other.seq and self.fields == other.fields

    def __repr__(self):
        return "Message(%s, seq=%d, %r)" % (self.name, self.seq, self.fields)

    def encode(self):
        return encode_frame(self.type, self.seq, self.fields)


def _check_unsigned(name, code, value):
    limit = _UNSIGNED_LIMITS[code]
    if not isinstance(value, int) or value < 0 or value > limit:
        raise FrameError("field %s = %r does not fit in %s" % (name, value, code))


def _layout_values(msg_type, layout, fields):
    values = []
    for name, code in layout:
        if name not in fields:
            raise FrameError("%s needs field %s" % (TYPE_NAMES.get(msg_type, msg_type), name))
        value = fields[name]
        if code.endswith("s"):
            width = int(code[:-1])
            if not isinstance(value, (bytes, bytearray)) or len(value) != width:
                raise FrameError("field %s must be %d bytes" % (name, width))
            value = bytes(value)
        else:
            _check_unsigned(name, code, value)
        values.append(value)
    return values


def encode_payload(msg_type, fields):
    if msg_type not in LAYOUTS:
        raise ProtocolError("unknown message type %r" % (msg_type,))
    if msg_type == SAMPLES:
        return _encode_samples(fields)
    layout = LAYOUTS[msg_type]
    if not layout:
        return b""
    return struct.pack(_FORMATS[msg_type], *_layout_values(msg_type, layout, fields))


def _encode_samples(fields):
    raw = fields.get("raw")
    if raw is None or len(raw) < 1 or len(raw) > MAX_BATCH:
        raise FrameError("SAMPLES carries 1 to %d readings" % MAX_BATCH)
    head = {}
    for name in fields:
        head[name] = fields[name]
    head["count"] = len(raw)
    values = _layout_values(SAMPLES, LAYOUTS[SAMPLES], head)
    return struct.pack(_FORMATS[SAMPLES], *values) + pack_readings(raw)


def encode_body(msg_type, seq, fields):
    """Header, payload and CRC: the bytes that COBS then stuffs."""
    _check_unsigned("seq", "H", seq)
    body = bytearray(struct.pack(HEADER, PROTOCOL_VERSION, msg_type, seq))
    body.extend(encode_payload(msg_type, fields))
    body.extend(struct.pack("<I", crc32(body)))
    return bytes(body)


def encode_frame(msg_type, seq, fields=None):
    """A complete frame ready for the wire, trailing 0x00 delimiter included."""
    body = encode_body(msg_type, seq, fields if fields is not None else {})
    return cobs_encode(body) + b"\x00"


def decode_payload(msg_type, payload):
    if msg_type == SAMPLES:
        return _decode_samples(payload)
    layout = LAYOUTS[msg_type]
    if len(payload) != _SIZES[msg_type]:
        raise FrameError(
            "%s payload is %d bytes, expected %d" % (TYPE_NAMES[msg_type], len(payload), _SIZES[msg_type])
        )
    fields = {}
    if layout:
        values = struct.unpack(_FORMATS[msg_type], payload)
        for index in range(len(layout)):
            fields[layout[index][0]] = values[index]
    return fields


def _decode_samples(payload):
    fixed = _SIZES[SAMPLES]
    if len(payload) < fixed:
        raise FrameError("SAMPLES payload is too short")
    values = struct.unpack(_FORMATS[SAMPLES], payload[:fixed])
    count = values[4]
    if count < 1 or count > MAX_BATCH or len(payload) != fixed + count * SAMPLE_BYTES:
        raise FrameError("SAMPLES count %d does not match its %d byte payload" % (count, len(payload)))
    return {
        "boot_id": values[0],
        "first_seq": values[1],
        "t0_us": values[2],
        "period_us": values[3],
        "raw": unpack_readings(payload, fixed, count),
    }


def frame_version(body):
    return body[0]


def decode_body(body):
    """Check the CRC, the version and the layout of one unstuffed frame.

    Raises FrameError for damage and ProtocolError for a frame that is intact
    but not ours (another protocol version, an unknown type).
    """
    if len(body) < HEADER_SIZE + CRC_SIZE:
        raise FrameError("frame of %d bytes is shorter than header and CRC" % len(body))
    split = len(body) - CRC_SIZE
    expected = struct.unpack("<I", body[split:])[0]
    if crc32(body[:split]) != expected:
        raise CrcMismatch("CRC mismatch")
    version, msg_type, seq = struct.unpack(HEADER, body[:HEADER_SIZE])
    if version != PROTOCOL_VERSION:
        raise ForeignVersion(version)
    if msg_type not in LAYOUTS:
        raise UnknownType("unknown message type 0x%02X" % msg_type)
    return Message(msg_type, decode_payload(msg_type, body[HEADER_SIZE:split]), seq)


def decode_frame(encoded):
    """Decode one frame given without its 0x00 delimiter."""
    return decode_body(cobs_decode(encoded))


# --- incremental decoder ---------------------------------------------------------

_COUNTER_NAMES = (
    "frames",
    "crc_errors",
    "bad_frames",
    "oversize",
    "version_errors",
    "unknown_types",
    "garbage_bytes",
    "resyncs",
)


class FrameDecoder:
    """Turns byte chunks of any size into messages; never raises on bad input.

    Bytes collect until a 0x00 delimiter. A frame longer than ``max_frame``
    is dropped whole (counted in ``oversize``) and the decoder skips to the
    next delimiter, so its buffer never grows past the bound. ``resyncs``
    counts each return to good frames after rejected input.
    """

    def __init__(self, max_frame=MAX_ENCODED):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._discarding = False
        self._after_garbage = False
        self.last_foreign_version = None
        for name in _COUNTER_NAMES:
            setattr(self, name, 0)

    def counters(self):
        out = {}
        for name in _COUNTER_NAMES:
            out[name] = getattr(self, name)
        return out

    def reset(self):
        """Forget a partial frame (after reopening a port); counters stay."""
        self._buf = bytearray()
        self._discarding = False

    def pending(self):
        return len(self._buf)

    def feed(self, data):
        """Consume ``data``; return the list of messages completed by it."""
        if isinstance(data, memoryview):
            data = bytes(data)
        messages = []
        start = 0
        size = len(data)
        while start < size:
            end = data.find(b"\x00", start)
            if end < 0:
                self._collect(data[start:])
                break
            self._collect(data[start:end])
            self._finish_frame(messages)
            start = end + 1
        return messages

    def _collect(self, part):
        if not part:
            return
        if self._discarding:
            self.garbage_bytes += len(part)
            return
        if len(self._buf) + len(part) > self.max_frame:
            # Too long to be a frame: a lost delimiter or line noise. Drop it
            # and everything up to the next delimiter.
            self.oversize += 1
            self.garbage_bytes += len(self._buf) + len(part)
            self._buf = bytearray()
            self._discarding = True
            self._after_garbage = True
            return
        self._buf.extend(part)

    def _finish_frame(self, messages):
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return  # back-to-back delimiters are legal padding
        encoded = bytes(self._buf)
        self._buf = bytearray()
        message = self._decode(encoded)
        if message is None:
            self.garbage_bytes += len(encoded) + 1
            self._after_garbage = True
            return
        self.frames += 1
        if self._after_garbage:
            self.resyncs += 1
            self._after_garbage = False
        messages.append(message)

    def _decode(self, encoded):
        try:
            body = cobs_decode(encoded)
        except FrameError:
            self.bad_frames += 1
            return None
        try:
            return decode_body(body)
        except CrcMismatch:
            self.crc_errors += 1
        except ForeignVersion as error:
            self.version_errors += 1
            self.last_foreign_version = error.version
        except UnknownType:
            self.unknown_types += 1
        except FrameError:
            self.bad_frames += 1
        except Exception:  # noqa: BLE001 - the decoder promises never to raise
            self.bad_frames += 1
        return None


# --- plain (JSON-friendly) fields, for test vectors and tools -------------------------


def fields_to_plain(msg_type, fields):
    """Bytes fields become lower-case hex strings; everything else is unchanged."""
    out = {}
    for name in fields:
        value = fields[name]
        if isinstance(value, (bytes, bytearray)):
            value = hexlify(value).decode()
        out[name] = value
    return out


def fields_from_plain(msg_type, plain):
    out = {}
    byte_fields = {}
    for name, code in LAYOUTS.get(msg_type, ()):
        if code.endswith("s"):
            byte_fields[name] = True
    for name in plain:
        value = plain[name]
        if name in byte_fields and isinstance(value, str):
            value = unhexlify(value)
        elif isinstance(value, list):
            value = list(value)
        out[name] = value
    return out
