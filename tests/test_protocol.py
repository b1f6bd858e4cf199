"""The host link's frame format (hw/soc/protocol.py)."""

import pytest

from hw.soc.protocol import (MAX_PAYLOAD, SOF, Command, FrameError, crc16, decode_frame,
                             encode_frame)

pytestmark = pytest.mark.quick


def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1          # CRC-16/CCITT-FALSE's check value
    assert crc16(b"") == 0xFFFF


def test_round_trip_and_resync():
    frame = encode_frame(Command.WRITE, bytes(range(10)))
    assert frame[0] == SOF and frame[2:4] == (10).to_bytes(2, "little")
    command, payload, rest = decode_frame(b"\x00\x13" + frame + b"xy")
    assert (command, payload, rest) == (Command.WRITE, bytes(range(10)), b"xy")


def test_bad_frames():
    frame = bytearray(encode_frame(Command.READ, b"\x01\x02"))
    frame[5] ^= 0x10
    with pytest.raises(FrameError, match="CRC"):
        decode_frame(bytes(frame))
    with pytest.raises(IndexError):
        decode_frame(encode_frame(Command.READ, b"\x01\x02")[:-1])
    with pytest.raises(FrameError, match="length"):
        decode_frame(bytes([SOF, 1]) + (MAX_PAYLOAD + 1).to_bytes(2, "little") + b"\0\0")
    with pytest.raises(ValueError):
        encode_frame(Command.WRITE, bytes(MAX_PAYLOAD + 1))


def test_crc16_is_the_bytewise_crc():
    """``crc16`` (the standard library's crc_hqx) equals the byte-at-a-time CRC that the
    hardware computes, on random data and from any starting value."""
    import random
    from hw.soc.protocol import crc16_byte
    rng = random.Random(5)
    for n in (1, 2, 7, 100, 1030):
        data = bytes(rng.randrange(256) for _ in range(n))
        start = rng.randrange(1 << 16)
        crc = start
        for byte in data:
            crc = crc16_byte(crc, byte)
        assert crc16(data, start) == crc
