"""The host link's protocol (version 5): one definition for the hardware, the host driver
and the testbenches.

A frame, in either direction, is on the line as::

    COBS(body) 0x00        body = seq | code | payload (0..MAX_PAYLOAD bytes) | CRC-32

COBS (consistent overhead byte stuffing) leaves no 0x00 inside a frame, so 0x00 only
ever ends one: payload bytes can never be taken for a frame's start or end, and a
receiver needs no length field. The CRC is CRC-32/IEEE (``zlib.crc32``: reflected,
polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF), little-endian, over seq, code
and payload; a receiver may check it as the residue of the whole body instead
(``CRC_RESIDUE``). A frame with a bad CRC, fewer than 6 body bytes, more than
``MAX_BODY``, or a broken COBS block is dropped (counted), and so is a frame cut short
(no byte for the receiver's timeout, or the next 0x00 first). An empty frame (two 0x00
in a row) is nothing: the driver starts every request with a 0x00, so that whatever
came before it (garbage, a frame cut short) ends there and does not take the request
with it.

A request's ``code`` is its ``Command``. The board answers each request it executes,
repeats or refuses with ``seq`` echoed and ``code`` ``ACK`` (payload: the command
answered, then its data) or ``NAK`` (payload: the command, a ``Nak`` reason, for
``Nak.SEQUENCE`` then the board's expected seq).

Sequence numbers: the board keeps ``expected`` (8 bits, wrapping). A request whose seq is
``expected`` is executed and ``expected`` steps on. One of the ``HISTORY`` seqs behind
``expected`` is a repeat: a ``PURE`` command (it changes nothing) is executed again; any
other command (it changes state: WRITE, GEMM and whatever comes later) is not, and its
first answer is sent again from the board's answer history (so the first answer of a
state-changing command carries no data beyond the command or the reason). Any other seq
gets ``NAK SEQUENCE`` with ``expected`` and changes nothing. ``SYNC`` is answered
whatever its seq and changes nothing: its ACK carries ``expected`` and echoes the
request's payload (the driver's nonce), so that a driver learns where to start and knows
the answer is its own.

Order: the board executes requests one at a time, in order, and every request sees the
buffers as if the ones before it had ended. A GEMM is answered as soon as the engine has
accepted its settings and then runs on, so that the next requests (the next block's
operands, the previous block's results) cross the link while it computes: a WRITE or READ
that touches a half of a buffer the running GEMM uses (``GemmEngine.half_words``) waits
for the GEMM to end; any other runs beside it (the engine pauses for it, for about a
pipeline's length); a GEMM waits for the previous one. STATUS may come while a GEMM runs:
its busy cycles are those so far.
"""

from __future__ import annotations

import enum
import zlib

VERSION = 6                        # reported first by IDENTIFY
DELIMITER = 0x00
ACK = 0x06
NAK = 0x15
MAX_PAYLOAD = 1024                 # payload bytes of a frame, either direction
SEQ_BYTES, CODE_BYTES, CRC_BYTES = 1, 1, 4
HEADER_BYTES = SEQ_BYTES + CODE_BYTES
MAX_BODY = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES
CRC_POLY = 0xEDB88320              # reflected CRC-32/IEEE
CRC_INIT = 0xFFFFFFFF
# The CRC register after a whole body (its CRC included) with a good CRC.
CRC_RESIDUE = 0xDEBB20E3
HISTORY = 16                       # repeats recognized: seqs expected-16 .. expected-1
RECEIVE_BANKS = 2                  # whole frames the board holds: one worked on, one next


class Command(enum.IntEnum):
    IDENTIFY = 0x01
    WRITE = 0x02
    READ = 0x03
    GEMM = 0x04
    STATUS = 0x05
    SYNC = 0x07


# Commands that change nothing: executed again when repeated. Every other command code
# (a future one included) is answered from the history when repeated, never run twice.
PURE = frozenset({Command.IDENTIFY, Command.READ, Command.STATUS, Command.SYNC})


class ReadView(enum.IntEnum):
    """How READ sees a buffer: its bytes, or only the low 2 bytes of each 4-byte value
    (the ``dlfloat16`` codes of fp8 results in the ACC buffer, half the bytes to send):
    view byte ``a`` is buffer byte ``(a // 2) * 4 + a % 2``."""
    BYTES = 0
    LOW16 = 1


class Nak(enum.IntEnum):
    COMMAND = 2      # unknown command
    ARGUMENT = 3     # a length or an argument out of range
    SEQUENCE = 5     # a seq neither expected nor a repeat; data: the expected seq


# STATUS answers with these counters, 16 bits each, in this order: requests executed,
# frames dropped for a bad CRC or shape, frames cut short (timeout), requests refused,
# UART bytes with a bad stop bit, frames dropped for want of a free receive bank, GEMMs
# run, repeats answered from the history, NAK SEQUENCE answers; then ``cycles``
# (``CYCLES_BYTES`` bytes): the clock cycles the GEMM engine has been busy, wrapping; then
# the FP8-SEB engine's output tracker (``TRACKER_FIELDS``, one byte each, 0 on the MPE
# engine): ``max_exp`` (signed), ``seen`` and ``next_bias`` (signed).
STATUS_COUNTERS = ("frames", "crc_errors", "timeouts", "refused", "uart_errors", "overruns",
                   "runs", "replayed", "sequence")
CYCLES_BYTES = 4
TRACKER_FIELDS = ("max_exp", "seen", "next_bias")
STATUS_BYTES = 2 * len(STATUS_COUNTERS) + CYCLES_BYTES + len(TRACKER_FIELDS)


def unpack_status(data: bytes) -> dict[str, int]:
    if len(data) < STATUS_BYTES:
        raise ValueError(f"STATUS answer of {len(data)} bytes is too short")
    out = {n: int.from_bytes(data[2 * i:2 * i + 2], "little")
           for i, n in enumerate(STATUS_COUNTERS)}
    at = 2 * len(STATUS_COUNTERS)
    out["cycles"] = int.from_bytes(data[at:at + CYCLES_BYTES], "little")
    at += CYCLES_BYTES
    for n, name in enumerate(TRACKER_FIELDS):
        out[name] = int.from_bytes(data[at + n:at + n + 1], "little",
                                   signed=name != "seen")
    return out


# WRITE: buffer (1 byte), byte address (4), data. READ: buffer, byte address (4), count
# (2), view (1, a ``ReadView``). GEMM: the engine's settings (``pack_gemm``).
WRITE_HEADER = 5
READ_ARGUMENTS = 8

# IDENTIFY's answer data, in this order (name, bytes, little-endian).
# Buffers in words (``hw.schedule.EngineLayout`` gives a GEMM's words); max_m, max_k and
# max_n: the largest of each dimension a GEMM on chip can have (the other two small).
# ``engine``: 0 the MPE engine (HFP8 modes; ``bias`` its e4m3 bias), 1 the FP8-SEB
# engine (``ways``-way trees, a GEMM's K counted in chunks of ``ways`` codes on chip,
# ``room`` its bias rule's headroom; ``bias`` 0).
ENGINES = ("mpe", "seb")
IDENTITY_FIELDS = (("version", 1), ("rows", 1), ("cols", 1), ("dataflow", 1),
                   ("pipeline", 1), ("bias", 1), ("a_words", 4), ("b_words", 4),
                   ("acc_words", 4), ("max_m", 2), ("max_k", 2), ("max_n", 2),
                   ("chunking", 1), ("divisor", 2), ("clock_khz", 4), ("banks", 1),
                   ("history", 1), ("max_payload", 2), ("engine", 1), ("ways", 2),
                   ("room", 1))


def pack_identity(**values) -> bytes:
    return b"".join(int(values[name]).to_bytes(n, "little") for name, n in IDENTITY_FIELDS)


def unpack_identity(data: bytes) -> dict[str, int]:
    if len(data) < sum(n for _, n in IDENTITY_FIELDS):
        raise ValueError(f"IDENTIFY answer of {len(data)} bytes is too short")
    out, at = {}, 0
    for name, n in IDENTITY_FIELDS:
        out[name] = int.from_bytes(data[at:at + n], "little")
        at += n
    return out


def pack_gemm(**settings) -> bytes:
    """GEMM's payload: the engine's ``hw.soc.gemm.GEMM_SETTINGS`` (fields by name, codes
    as integers, signed fields such as the biases in two's complement, fields not given
    0), little-endian, ``GEMM_BYTES`` bytes."""
    from amaranth.hdl import Shape
    from hw.soc.gemm import GEMM_SETTINGS
    fields = {name: field for name, field in GEMM_SETTINGS}
    value = 0
    for name, v in settings.items():
        if name not in fields:
            raise ValueError(f"GEMM has no setting {name!r}")
        width = fields[name].width
        lo = -(1 << width - 1) if Shape.cast(fields[name].shape).signed else 0
        if not lo <= int(v) < lo + (1 << width):
            raise ValueError(f"GEMM setting {name}={v} does not fit {width} bits")
        value |= (int(v) & ((1 << width) - 1)) << fields[name].offset
    return value.to_bytes(GEMM_BYTES, "little")


def unpack_gemm(payload: bytes) -> dict[str, int]:
    """``pack_gemm``'s inverse: every GEMM_SETTINGS field by name, signed ones signed."""
    from amaranth.hdl import Shape
    from hw.soc.gemm import GEMM_SETTINGS
    value = int.from_bytes(payload[:GEMM_BYTES], "little")
    out = {}
    for name, field in GEMM_SETTINGS:
        v = (value >> field.offset) & ((1 << field.width) - 1)
        if Shape.cast(field.shape).signed and v >> (field.width - 1):
            v -= 1 << field.width
        out[name] = v
    return out


# The board's answers go out through a ring of this many bytes (``hw.soc.frames``); a
# READ beside a running GEMM waits until an answer of its size fits there without
# waiting for the line, since the engine is paused while its bytes are fetched. The
# driver asks for at most ``READ_BESIDE`` bytes a READ there.
SEND_RING = 2048
READ_BESIDE = SEND_RING // 4
ANSWER_OVERHEAD = 12               # ring bytes of an answer beyond its data (at most)

GEMM_BYTES = 20                    # GEMM_SETTINGS' 154 bits


def crc32_byte(crc: int, byte: int) -> int:
    """One byte into the CRC-32 register (reflected, no final XOR), as the hardware
    does it a byte a cycle."""
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ CRC_POLY if crc & 1 else crc >> 1
    return crc


def crc32(data: bytes) -> int:
    """CRC-32/IEEE of ``data`` (``zlib.crc32``, with its final XOR)."""
    return zlib.crc32(bytes(data))


def cobs_encode(data: bytes) -> bytes:
    """COBS: each 0x00 of ``data`` becomes the length of the block before it; a run of
    254 non-zero bytes is a block of its own (code 0xFF, no 0x00 implied). No 0x00 in
    the result; the delimiter is not added."""
    out = bytearray()
    for chunk in bytes(data).split(b"\x00"):
        while len(chunk) >= 254:
            out += b"\xff" + chunk[:254]
            chunk = chunk[254:]
        out += bytes([len(chunk) + 1]) + chunk
    return bytes(out)


class FrameError(ValueError):
    """A received frame that is malformed; the message says how."""


def cobs_decode(data: bytes) -> bytes:
    """``cobs_encode`` undone (also accepting a final 0xFF block without the empty block
    after it); FrameError for a 0x00 inside or a block longer than the data."""
    out = bytearray()
    at = 0
    while at < len(data):
        code = data[at]
        if code == 0:
            raise FrameError("a 0x00 inside a COBS frame")
        block = data[at + 1:at + code]
        if len(block) != code - 1 or 0 in block:
            raise FrameError("a COBS block cut short")
        out += block
        at += code
        if code != 0xFF and at < len(data):
            out.append(0)
    return bytes(out)


def encode_body(seq: int, code: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    body = bytes([seq & 0xFF, code]) + bytes(payload)
    return body + crc32(body).to_bytes(CRC_BYTES, "little")


def encode_frame(seq: int, code: int, payload: bytes = b"") -> bytes:
    """The frame on the line: COBS of the body, then the delimiter."""
    return cobs_encode(encode_body(seq, code, payload)) + bytes([DELIMITER])


def decode_body(body: bytes) -> tuple[int, int, bytes]:
    """(seq, code, payload) of a decoded body; FrameError if its shape or CRC is bad."""
    if len(body) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(f"a body of {len(body)} bytes is too short")
    if len(body) > MAX_BODY:
        raise FrameError(f"a body of {len(body)} bytes is over {MAX_BODY}")
    crc = int.from_bytes(body[-CRC_BYTES:], "little")
    if crc32(body[:-CRC_BYTES]) != crc:
        raise FrameError(f"CRC 0x{crc:08x} does not match 0x{crc32(body[:-CRC_BYTES]):08x}")
    return body[0], body[1], bytes(body[HEADER_BYTES:-CRC_BYTES])


def decode_frame(frame: bytes) -> tuple[int, int, bytes]:
    """(seq, code, payload) of one frame's bytes (without its delimiter)."""
    return decode_body(cobs_decode(frame))


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """The non-empty frames (delimiters dropped) ended in ``data``, and the bytes after
    the last delimiter (a frame not ended yet)."""
    *frames, rest = bytes(data).split(bytes([DELIMITER]))
    return [f for f in frames if f], rest


def next_frame(data: bytes):
    """The first good frame ended in ``data``: ((seq, code, payload), the bytes after
    it), skipping bad ones; (None, the bytes not ended yet) if there is none."""
    data = bytes(data)
    while True:
        end = data.find(bytes([DELIMITER]))
        if end < 0:
            return None, data
        frame, data = data[:end], data[end + 1:]
        if frame:
            try:
                return decode_frame(frame), data
            except FrameError:
                continue
