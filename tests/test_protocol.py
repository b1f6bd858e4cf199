"""The host link's frame format (hw/soc/protocol.py): COBS, CRC-32, frames, IDENTIFY's
layout."""

import random
import zlib

import pytest

from hw.soc.protocol import (CRC_INIT, CRC_RESIDUE, MAX_BODY, MAX_PAYLOAD, PURE, Command,
                             FrameError, cobs_decode, cobs_encode, crc32, crc32_byte,
                             decode_frame, encode_body, encode_frame, next_frame,
                             pack_identity, split_frames, unpack_identity, IDENTITY_FIELDS)

pytestmark = pytest.mark.quick


def cobs_reference(data: bytes) -> bytes:
    """COBS written out as Cheshire and Baker describe it, byte by byte (independent of
    ``cobs_encode``, which splits at the zeros)."""
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte:
            block.append(byte)
            if len(block) == 254:
                out += bytes([255]) + block
                block = bytearray()
        else:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


CASES = [b"", b"\x00", b"\x00\x00", b"\x11\x00", b"\x00\x11", bytes(300), bytes([1]) * 253,
         bytes([1]) * 254, bytes([1]) * 255, bytes([1]) * 508, bytes([2]) * 254 + b"\x00",
         b"\x00" + bytes([3]) * 254, bytes(range(256)) * 3]


@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{len(d)}b")
def test_cobs_round_trip(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert encoded == cobs_reference(data)
    assert cobs_decode(encoded) == data
    assert len(encoded) <= len(data) + 1 + len(data) // 254


def test_cobs_random_and_bad():
    rng = random.Random(3)
    for _ in range(300):
        data = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)])
                     for _ in range(rng.randrange(0, 1200)))
        assert cobs_decode(cobs_encode(data)) == data
    assert cobs_decode(b"\xff" + bytes([1]) * 254) == bytes([1]) * 254   # no empty block
    with pytest.raises(FrameError, match="cut short"):
        cobs_decode(b"\x05\x01\x02")
    with pytest.raises(FrameError, match="0x00 inside"):
        cobs_decode(b"\x02\x01\x00")


def test_crc32_is_zlib_and_the_bytewise_crc():
    """``crc32`` is zlib's; the byte-at-a-time register the hardware computes gives the
    same, and over a body with its CRC it leaves ``CRC_RESIDUE``."""
    assert crc32(b"123456789") == 0xCBF43926             # CRC-32/IEEE's check value
    rng = random.Random(5)
    for n in (0, 1, 2, 7, 100, 1030):
        data = bytes(rng.randrange(256) for _ in range(n))
        crc = CRC_INIT
        for byte in data:
            crc = crc32_byte(crc, byte)
        assert crc ^ 0xFFFFFFFF == zlib.crc32(data) == crc32(data)
        for byte in zlib.crc32(data).to_bytes(4, "little"):
            crc = crc32_byte(crc, byte)
        assert crc == CRC_RESIDUE


def test_frames_round_trip_and_resync():
    frame = encode_frame(7, Command.WRITE, bytes(range(10)) + b"\x00")
    assert frame.count(0) == 1 and frame[-1] == 0
    assert decode_frame(frame[:-1]) == (7, Command.WRITE, bytes(range(10)) + b"\x00")
    largest = encode_frame(255, 0xAB, bytes(MAX_PAYLOAD))
    assert decode_frame(largest[:-1]) == (255, 0xAB, bytes(MAX_PAYLOAD))
    # Garbage and a damaged frame before a good one: the good one is found.
    bad = bytearray(encode_frame(1, 2, b"abc"))
    bad[3] ^= 0x10
    got, rest = next_frame(b"\x13\x37\x00" + bytes(bad) + frame + b"\x05\x06")
    assert got == (7, Command.WRITE, bytes(range(10)) + b"\x00") and rest == b"\x05\x06"
    assert next_frame(frame[:-1]) == (None, frame[:-1])
    assert split_frames(b"\x00\x00" + frame + b"\x01") == ([frame[:-1]], b"\x01")


def test_a_frame_inside_a_payload_is_only_data():
    inner = encode_frame(3, Command.GEMM, bytes(13))
    outer = encode_frame(2, Command.WRITE, b"\x00\x00\x00" + b"\x00" + inner)
    frames, rest = split_frames(outer)
    assert len(frames) == 1 and rest == b""
    assert decode_frame(frames[0])[2] == b"\x00" * 4 + inner


def test_bad_frames():
    body = bytearray(encode_body(1, Command.READ, b"\x01\x02"))
    body[3] ^= 0x10
    with pytest.raises(FrameError, match="CRC"):
        decode_frame(cobs_encode(bytes(body)))
    with pytest.raises(FrameError, match="too short"):
        decode_frame(cobs_encode(b"\x01\x02\x03\x04\x05"))
    with pytest.raises(FrameError, match=f"over {MAX_BODY}"):
        decode_frame(cobs_encode(encode_body(1, 2, bytes(MAX_PAYLOAD)) + b"\x00"))
    with pytest.raises(ValueError, match="over"):
        encode_frame(0, Command.WRITE, bytes(MAX_PAYLOAD + 1))


def test_identity_and_commands():
    values = {name: i + 1 for i, (name, _) in enumerate(IDENTITY_FIELDS)}
    assert unpack_identity(pack_identity(**values)) == values
    with pytest.raises(ValueError, match="too short"):
        unpack_identity(b"\x03")
    assert Command.WRITE not in PURE and Command.GEMM not in PURE
    assert {Command.IDENTIFY, Command.READ, Command.STATUS, Command.SYNC} == PURE


def test_gemm_payload_and_status():
    from hw.soc.gemm import GEMM_SETTINGS
    from hw.soc.protocol import (GEMM_BYTES, STATUS_BYTES, STATUS_COUNTERS, TRACKER_FIELDS,
                                 pack_gemm, unpack_gemm, unpack_status)
    assert GEMM_BYTES == -(-GEMM_SETTINGS.size // 8)
    payload = pack_gemm(mode=2, out=1, m=0x1234, out_base=0xFFFF)
    value = int.from_bytes(payload, "little")
    fields = dict(GEMM_SETTINGS)
    assert (value >> fields["m"].offset) & 0xFFFF == 0x1234
    assert (value >> fields["out_base"].offset) & 0xFFFF == 0xFFFF
    assert value & 3 == 2 and (value >> fields["out"].offset) & 3 == 1
    settings = dict(mode=3, out=3, m=7, k=0xFFFF, n=300, chunk=5, b_base=9, bias_a=-32,
                    bias_b=31, out_bias=-1, track=1)
    assert unpack_gemm(pack_gemm(**settings)) == {**dict.fromkeys(fields, 0), **settings}
    with pytest.raises(ValueError, match="does not fit"):
        pack_gemm(m=1 << 16)
    with pytest.raises(ValueError, match="no setting"):
        pack_gemm(rows=2)
    # Signed settings (the shared biases) in two's complement, within their range.
    value = int.from_bytes(pack_gemm(bias_a=-32, bias_b=31, out_bias=-1), "little")
    assert (value >> fields["bias_a"].offset) & 0x3F == 0x20
    assert (value >> fields["bias_b"].offset) & 0x3F == 31
    assert (value >> fields["out_bias"].offset) & 0x3F == 0x3F
    with pytest.raises(ValueError, match="does not fit"):
        pack_gemm(bias_a=32)
    with pytest.raises(ValueError, match="does not fit"):
        pack_gemm(out_bias=-33)
    data = bytes(range(STATUS_BYTES - 3)) + bytes([0xF6, 1, 0xFE])
    status = unpack_status(data)
    assert list(status) == [*STATUS_COUNTERS, "cycles", *TRACKER_FIELDS]
    assert status["cycles"] == int.from_bytes(data[-7:-3], "little")
    assert (status["max_exp"], status["seen"], status["next_bias"]) == (-10, 1, -2)
    with pytest.raises(ValueError):
        unpack_status(data[:-1])
