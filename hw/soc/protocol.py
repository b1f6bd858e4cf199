"""The host link's framed protocol: one definition for the hardware and the host driver.

A frame, in either direction, is::

    SOF (0xA5) | command (1 byte) | length (2 bytes, little-endian) | payload | CRC (2 bytes, LE)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection,
no final XOR) over command, length and payload. The board answers every frame it
receives with ``ACK`` (payload: the command answered, then at most ``MAX_PAYLOAD - 1``
bytes of data) or ``NAK`` (payload: one ``Nak`` reason). A frame with a bad CRC, a
length over ``MAX_PAYLOAD``, an unknown command or one cut short (no byte for the
receiver's timeout) changes nothing.
"""

from __future__ import annotations

import binascii
import enum

SOF = 0xA5
ACK = 0x06
NAK = 0x15
MAX_PAYLOAD = 1024
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


class Command(enum.IntEnum):
    IDENTIFY = 0x01
    WRITE = 0x02
    READ = 0x03
    RUN = 0x04
    STATUS = 0x05


class Buffer(enum.IntEnum):
    """The board's buffers, by the number WRITE and READ give them."""
    A = 0       # rows of A
    B = 1       # the weight tile
    C = 2       # the sums, in and out


# STATUS answers with these counters, 16 bits each, in this order.
STATUS_COUNTERS = ("frames", "crc_errors", "timeouts", "refused", "uart_errors", "overruns",
                   "runs")


def row_stride(items: int) -> int:
    """Bytes from one row of a board buffer to the next for rows of ``items`` bytes: the
    next power of 2 (each buffer row is one memory word of byte lanes)."""
    return 1 << max(items - 1, 0).bit_length()


def image_row_bytes(cols: int, dtype: str) -> int:
    """Bytes a buffer row of ``cols`` items of ``dtype`` takes, padding included."""
    import numpy as np
    return row_stride(cols * np.dtype(dtype).itemsize)


def buffer_image(rows, dtype: str) -> bytes:
    """The bytes of a 2-D array as a board buffer holds it: each row padded with zeros to
    ``row_stride`` bytes, items little-endian (``dtype`` ``"u1"`` or ``"<u4"``)."""
    import numpy as np
    rows = np.asarray(rows)
    stride = image_row_bytes(rows.shape[1], dtype) // np.dtype(dtype).itemsize
    out = np.zeros((rows.shape[0], stride), dtype)
    out[:, :rows.shape[1]] = rows
    return out.tobytes()


def from_buffer_image(data: bytes, cols: int, dtype: str):
    """The rows of ``cols`` items in ``data`` read from a board buffer (``buffer_image``
    undone: the padding dropped)."""
    import numpy as np
    stride = image_row_bytes(cols, dtype) // np.dtype(dtype).itemsize
    return np.frombuffer(data, dtype).reshape(-1, stride)[:, :cols]


class Nak(enum.IntEnum):
    CRC = 1          # the CRC did not match
    COMMAND = 2      # unknown command
    ARGUMENT = 3     # a length or an argument out of range
    TIMEOUT = 4      # the frame stopped before its end


def crc16_byte(crc: int, byte: int) -> int:
    """One byte into CRC-16/CCITT-FALSE, MSB first (the hardware does the same per byte)."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``, continuing from ``crc`` (the standard library's
    ``crc_hqx`` is this CRC, and much faster than ``crc16_byte`` in a loop)."""
    return binascii.crc_hqx(bytes(data), crc)


def encode_frame(command: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SOF]) + body + crc16(body).to_bytes(2, "little")


class FrameError(ValueError):
    """A received frame that is malformed; the message says how."""


def decode_frame(data: bytes) -> tuple[int, bytes, bytes]:
    """The first whole frame in ``data``: (command, payload, the bytes after it).
    Raises FrameError for a bad frame, or IndexError if ``data`` holds no whole frame."""
    start = data.find(bytes([SOF]))
    if start < 0:
        raise IndexError("no start of frame")
    data = data[start:]
    if len(data) < 6:
        raise IndexError("frame incomplete")
    length = int.from_bytes(data[2:4], "little")
    if length > MAX_PAYLOAD:
        raise FrameError(f"length {length} is over {MAX_PAYLOAD}")
    end = 4 + length + 2
    if len(data) < end:
        raise IndexError("frame incomplete")
    body, crc = data[1:4 + length], int.from_bytes(data[4 + length:end], "little")
    if crc16(body) != crc:
        raise FrameError(f"CRC 0x{crc:04x} does not match 0x{crc16(body):04x}")
    return data[1], bytes(data[4:4 + length]), bytes(data[end:])
