"""Quick tier: the host link's framing in Amaranth's simulator: the frame receiver and
the frame sender at their byte streams against the Python encoder and decoder
(``hw/soc/protocol.py``): good frames of every shape COBS has (0x00-heavy, runs of 253,
254 and 255 non-zero bytes, the largest), bad CRCs, broken COBS blocks, cut frames,
oversized frames, garbage between frames, a frame that finds both banks full."""

from collections import deque

import numpy as np
import pytest

from hw.soc.frames import FETCH_LATENCY, FrameReceiver, FrameSender
from hw.soc.protocol import (MAX_PAYLOAD, cobs_encode, encode_body, encode_frame,
                             split_frames, decode_frame)
from sim.pysim import get, idle, put, simulate

pytestmark = pytest.mark.quick

TIMEOUT = 40


def corrupted(frame: bytes, index: int, mask: int) -> bytes:
    frame = bytearray(frame)
    frame[index] ^= mask
    return bytes(frame)


def payloads(rng, largest: int):
    """Payloads that exercise every COBS case, and one of ``largest`` random bytes."""
    return [b"", b"\x00", b"\x00" * 7, bytes([1]) * 253, bytes([2]) * 254,
            bytes([3]) * 255, bytes([4]) * 254 + b"\x00" + bytes([5]) * 254,
            bytes(rng.integers(0, 3, 100).tolist()),          # mostly 0x00
            bytes(rng.integers(0, 256, largest).tolist())]


def test_receiver():
    """Each frame (bytes fed with random gaps shorter than the timeout) comes out as
    expected: (seq, code, payload) of the good ones read from their bank; the bad ones
    pulse the right event and come out as nothing."""
    rx = FrameReceiver(TIMEOUT)
    rng = np.random.default_rng(7)
    good = [(int(rng.integers(0, 256)), int(rng.integers(0, 256)), p)
            for p in payloads(rng, MAX_PAYLOAD)]
    frame = encode_frame(9, 2, bytes(range(40)))
    oversized = cobs_encode(encode_body(1, 2, bytes(MAX_PAYLOAD)) + b"\x01") + b"\x00"
    # (bytes, idle cycles after them, the frame expected or the event pulsed)
    sends = [(encode_frame(*good[0]), 0, good[0]),
             (b"\x00\x00", 0, None),                                   # empty: nothing
             (corrupted(frame, 9, 0x01), 0, "crc_error"),              # payload bit
             (corrupted(frame, -2, 0x80), 0, "crc_error"),             # CRC bit
             (corrupted(frame, 0, 0x04), 0, "crc_error"),              # COBS code byte
             (frame[:12], 2 * TIMEOUT, "timed_out"),                   # cut, then quiet
             (frame[:12] + b"\x00", 0, "crc_error"),                   # cut by a delimiter
             (encode_frame(1, 2, b"")[:-1][:4] + b"\x00", 0, "crc_error"),  # too short
             (oversized, 0, "crc_error"),
             (bytes([0x11, 0x5A, 0x00]), 0, "crc_error")]              # garbage
    sends += [(encode_frame(*g), 0, g) for g in good[1:]]
    got, events = [], []

    async def feed(ctx):
        for data, after, _ in sends:
            if ctx.get(rx.frame.valid):             # one bank at a time: no overrun here
                await ctx.tick().until(~rx.frame.valid)
            for byte in data:
                await idle(ctx, rng, 0.2)
                ctx.set(rx.bytes.payload, byte)
                ctx.set(rx.bytes.valid, 1)
                await ctx.tick()
                ctx.set(rx.bytes.valid, 0)
            if after:
                await ctx.tick().repeat(after)
            await ctx.tick().repeat(3)

    async def watch(ctx):
        while True:
            await ctx.tick()
            for name in ("crc_error", "timed_out", "overrun"):
                if ctx.get(getattr(rx, name)):
                    events.append(name)

    async def take(ctx):
        while len(got) < len(good):
            await ctx.tick().until(rx.frame.valid)
            head = ctx.get(rx.frame.payload)
            payload = bytearray()
            for i in range(head.length):
                ctx.set(rx.read_addr, i)
                await ctx.tick()
                payload.append(ctx.get(rx.read_data))
            await get(ctx, rx.frame)
            got.append((head.seq, head.code, bytes(payload)))

    simulate(rx, feed, take, background=[watch], max_cycles=30_000)
    assert got == good
    assert events == [e for _, _, e in sends if isinstance(e, str)]


def test_receiver_without_a_free_bank():
    """Three frames while nobody takes any: two fill the banks, the third is dropped
    (``overrun``); once the banks are taken, the next frame is received."""
    rx = FrameReceiver(TIMEOUT)
    frames = [(n, 4, bytes([n]) * 3) for n in range(4)]
    overruns, got = [], []

    async def feed(ctx):
        for f in frames[:3]:
            for byte in encode_frame(*f):
                await put(ctx, rx.bytes, byte)
            if ctx.get(rx.overrun):
                overruns.append(f[0])
        await ctx.tick().repeat(5)
        for _ in range(2):
            head, _ = await get(ctx, rx.frame)
            got.append(head.seq)
        for byte in encode_frame(*frames[3]):
            await put(ctx, rx.bytes, byte)
        head, _ = await get(ctx, rx.frame)
        got.append(head.seq)

    async def watch(ctx):
        while True:
            await ctx.tick()
            if ctx.get(rx.overrun):
                overruns.append("pulse")

    simulate(rx, feed, background=[watch])
    assert got == [0, 1, 3]
    assert overruns == ["pulse"]


def test_sender():
    """Each request becomes exactly ``encode_frame``'s bytes (taken with random stalls),
    its payload fetched through a source that answers ``FETCH_LATENCY`` cycles after the
    address; the payload bytes are seen once each, in order, with their index."""
    tx = FrameSender()
    rng = np.random.default_rng(8)
    requests = [(int(rng.integers(0, 256)), int(rng.integers(0, 256)), p)
                for p in payloads(rng, 300)]
    current = {"payload": b""}
    out, seen = bytearray(), []

    async def request(ctx):
        for seq, code, payload in requests:
            await ctx.tick().until(tx.send.ready)
            current["payload"] = payload
            await put(ctx, tx.send, {"seq": seq, "code": code, "length": len(payload)})

    async def fetch_source(ctx):
        addresses = deque([None] * (FETCH_LATENCY + 1), maxlen=FETCH_LATENCY + 1)
        while True:
            addresses.append(ctx.get(tx.fetch_addr))
            # Only an address held for FETCH_LATENCY cycles gets its byte: a sender that takes
            # a byte too early, or moves on too soon, gets 0x5A.
            payload, address = current["payload"], addresses[0]
            valid = len(set(addresses)) == 1 and address is not None and address < len(payload)
            ctx.set(tx.fetch_data, payload[address] if valid else 0x5A)
            if ctx.get(tx.seen):
                seen.append((ctx.get(tx.fetch_addr), ctx.get(tx.seen_byte)))
            await ctx.tick()

    want = b"".join(encode_frame(*r) for r in requests)

    async def take(ctx):
        while len(out) < len(want):
            await idle(ctx, rng, 0.3)
            byte, _ = await get(ctx, tx.bytes)
            out.append(byte)

    simulate(tx, request, take, background=[fetch_source], max_cycles=400_000)
    assert bytes(out) == want
    frames, rest = split_frames(bytes(out))
    assert [decode_frame(f) for f in frames] == requests and rest == b""
    assert seen == [(i, b) for _, _, p in requests for i, b in enumerate(p)]


def test_link_sequence_rules():
    """``sim.tops.LinkEcho`` through its UART: a new request is executed; a repeat of a
    state-changing one gets its first answer again (without the echoed payload: it was
    not executed again), a repeat of a pure one is executed again, a NAK is repeated as
    a NAK, a seq out of sequence gets NAK SEQUENCE with the expected seq, SYNC answers
    with the expected seq and its nonce whatever its seq, a bad frame gets nothing."""
    from hw.soc.protocol import ACK, NAK, Command, Nak
    from sim.pysim import receive_line, send_line
    from sim.tops import REFUSED, LinkEcho
    divisor = 4
    echo = LinkEcho(divisor, divisor * 40)
    W, R = Command.WRITE, Command.READ
    exchanges = [   # (request: seq, code, payload), expected answer: code, payload
        ((0, W, b"ab"), (ACK, bytes([W]) + b"ab")),
        ((1, R, b"cd"), (ACK, bytes([R]) + b"cd")),
        ((0, W, b"ab"), (ACK, bytes([W]))),                  # replayed, not executed
        ((1, R, b"xy"), (ACK, bytes([R]) + b"xy")),          # pure: executed again
        ((2, REFUSED, b""), (NAK, bytes([REFUSED, Nak.ARGUMENT]))),
        ((2, REFUSED, b""), (NAK, bytes([REFUSED, Nak.ARGUMENT]))),   # replayed
        ((1, W, b"ab"), (NAK, bytes([W, Nak.SEQUENCE, 3]))),  # seq 1 was a READ
        ((9, W, b"ab"), (NAK, bytes([W, Nak.SEQUENCE, 3]))),  # ahead
        ((200, Command.SYNC, b"nonce"), (ACK, bytes([Command.SYNC, 3]) + b"nonce")),
        ((3, W, b""), (ACK, bytes([W]))),
    ]
    answers = []

    async def host_sends(ctx):
        for n, ((seq, code, payload), _) in enumerate(exchanges):
            if n == 3:          # a damaged frame first: dropped, no answer
                await send_line(ctx, echo.rx, corrupted(encode_frame(4, W, b"zz"), 3, 1),
                                divisor)
            await send_line(ctx, echo.rx, b"\x00" + encode_frame(seq, code, payload), divisor)
            await ctx.tick().until(echo.tx == 0)     # wait for the answer
            await ctx.tick().repeat(400)

    async def host_receives(ctx):
        while len(answers) < len(exchanges):
            frame = bytearray()
            while not frame or frame[-1] != 0:
                frame += await receive_line(ctx, echo.tx, divisor, 1)
            answers.append(frame)

    simulate(echo, host_sends, host_receives, max_cycles=100_000)
    assert len(answers) == len(exchanges)
    for n, (frame, ((seq, _, _), want)) in enumerate(zip(answers, exchanges)):
        assert decode_frame(bytes(frame[:-1])) == (seq, *want), n


def test_sender_keeps_the_line_busy():
    """Taken at a UART's pace (a byte every ``PACE`` cycles, never waiting), a frame's
    bytes follow each other without a gap once its first block is out, and frames follow
    each other without one: the ring fills up (it holds less than a large frame) and the
    sender waits for room, yet the bytes are exactly ``encode_frame``'s."""
    PACE = 10
    tx = FrameSender()
    rng = np.random.default_rng(11)
    requests = [(1, 6, bytes(rng.integers(1, 256, MAX_PAYLOAD).tolist())),   # full blocks
                (2, 6, bytes(rng.integers(0, 2, 300).tolist())),            # short blocks
                (3, 6, bytes(rng.integers(1, 256, 700).tolist()))]
    want = b"".join(encode_frame(*r) for r in requests)
    current = {"payload": b""}
    out, late = bytearray(), []

    async def request(ctx):
        for seq, code, payload in requests:
            await ctx.tick().until(tx.send.ready)
            current["payload"] = payload
            await put(ctx, tx.send, {"seq": seq, "code": code, "length": len(payload)})

    async def fetch_source(ctx):
        addresses = deque([None] * 3, maxlen=3)
        while True:
            addresses.append(ctx.get(tx.fetch_addr))
            payload, address = current["payload"], addresses[0]
            valid = len(set(addresses)) == 1 and address is not None and address < len(payload)
            ctx.set(tx.fetch_data, payload[address] if valid else 0x5A)
            await ctx.tick()

    async def take(ctx):
        await ctx.tick().until(tx.bytes.valid)          # the first block is scanned
        while len(out) < len(want):
            if not ctx.get(tx.bytes.valid):
                late.append(len(out))
                await ctx.tick().until(tx.bytes.valid)
            out.append(ctx.get(tx.bytes.payload))
            ctx.set(tx.bytes.ready, 1)
            await ctx.tick()
            ctx.set(tx.bytes.ready, 0)
            await ctx.tick().repeat(PACE - 1)

    simulate(tx, request, take, background=[fetch_source], max_cycles=40_000)
    assert bytes(out) == want
    assert late == []
