"""Quick tier: the host link's framing in Amaranth's simulator: the frame receiver and
the frame sender at their byte streams (good frames, a bad CRC, a cut frame, a length
over the limit, garbage between frames), and ``sim.tops.FrameEcho`` end to end through
its UART."""

from collections import deque

import numpy as np
import pytest

from hw.soc.frames import FrameReceiver, FrameSender
from hw.soc.protocol import ACK, MAX_PAYLOAD, NAK, SOF, Nak, decode_frame, encode_frame
from sim.pysim import get, idle, put, receive_line, send_line, simulate
from sim.tops import FrameEcho

pytestmark = pytest.mark.quick

TIMEOUT = 40


def corrupted(frame: bytes, index: int, mask: int) -> bytes:
    frame = bytearray(frame)
    frame[index] ^= mask
    return bytes(frame)


def test_receiver():
    """Each frame (bytes fed with random gaps shorter than the timeout) comes out as
    expected: (ok, command, reason, payload) of the good ones read from the buffer."""
    rx = FrameReceiver(TIMEOUT)
    rng = np.random.default_rng(7)
    (c0, p0), (c1, p1), (c2, p2), (c3, p3) = [
        (int(rng.integers(0, 256)), bytes(rng.integers(0, 256, n).tolist()))
        for n in (0, 1, 5, 40)]
    # (bytes, idle cycles after them, expected (ok, command, reason, payload))
    sends = [
        (encode_frame(c0, p0), 0, (1, c0, 0, p0)),
        (encode_frame(c1, p1), 0, (1, c1, 0, p1)),
        (corrupted(encode_frame(0x02, bytes(range(20))), 9, 0x01), 0, (0, 0x02, Nak.CRC, None)),
        (corrupted(encode_frame(0x02, b"abc"), -1, 0x80), 0, (0, 0x02, Nak.CRC, None)),
        (encode_frame(0x03, bytes(20))[:12], 2 * TIMEOUT, (0, 0x03, Nak.TIMEOUT, None)),
        (bytes([SOF, 0x04]) + (MAX_PAYLOAD + 1).to_bytes(2, "little"), 0,
         (0, 0x04, Nak.ARGUMENT, None)),
        (bytes([0x00, 0x11, 0x5A]) + encode_frame(c2, p2), 0, (1, c2, 0, p2)),  # garbage first
        (encode_frame(c3, p3), 0, (1, c3, 0, p3)),
    ]
    got = []

    async def feed(ctx):
        for data, after, _ in sends:
            for byte in data:
                await idle(ctx, rng, 0.2)
                await put(ctx, rx.bytes, byte)
            if after:
                await ctx.tick().repeat(after)

    async def take(ctx):
        for _ in sends:
            await ctx.tick().until(rx.received.valid)
            frame = ctx.get(rx.received.payload)
            payload = bytearray()
            for i in range(frame.length if frame.ok else 0):
                ctx.set(rx.read_addr, i)
                await ctx.tick()
                payload.append(ctx.get(rx.read_data))
            await get(ctx, rx.received)
            got.append((frame.ok, frame.command, frame.reason, bytes(payload) if frame.ok
                        else None))

    simulate(rx, feed, take)
    want = [expected for _, _, expected in sends]
    for n, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"frame {n}: (ok, command, reason, payload) {g}, expected {w}"
    assert len(got) == len(want)


def test_sender():
    """Each request becomes one frame on the byte stream (taken with random stalls) with
    its payload fetched through a source that answers two cycles after the address."""
    tx = FrameSender()
    rng = np.random.default_rng(8)
    requests = [(int(rng.integers(0, 256)), bytes(rng.integers(0, 256, n).tolist()))
                for n in (0, 1, 3, 30)]
    current = {"payload": b""}
    out = bytearray()

    async def request(ctx):
        for command, payload in requests:
            await ctx.tick().until(tx.send.ready)
            current["payload"] = payload
            await put(ctx, tx.send, {"command": command, "length": len(payload)})

    async def fetch_source(ctx):
        addresses = deque([None] * 3, maxlen=3)   # this cycle's and the two before
        while True:
            addresses.append(ctx.get(tx.fetch_addr))
            payload, address = current["payload"], addresses[0]
            valid = address is not None and address < len(payload)
            ctx.set(tx.fetch_data, payload[address] if valid else 0x00)
            await ctx.tick()

    async def take(ctx):
        size = sum(6 + len(p) for _, p in requests)
        while len(out) < size:
            await idle(ctx, rng, 0.3)
            byte, _ = await get(ctx, tx.bytes)
            out.append(byte)

    simulate(tx, request, take, background=[fetch_source])
    rest = bytes(out)
    for command, payload in requests:
        got_command, got_payload, rest = decode_frame(rest)
        assert (got_command, got_payload) == (command, payload)
    assert rest == b""


@pytest.mark.parametrize("case", ["good", "bad_crc", "cut"])
def test_frame_echo_through_the_uart(case):
    divisor, timeout = 4, 4 * 30
    echo = FrameEcho(divisor, timeout)
    frame = encode_frame(0x05, b"quick")
    sent, want = {
        "good": (frame, (ACK, b"\x05quick")),
        "bad_crc": (corrupted(frame, 6, 0x10), (NAK, bytes([Nak.CRC]))),
        "cut": (frame[:7], (NAK, bytes([Nak.TIMEOUT]))),
    }[case]
    answer = {}

    async def host_sends(ctx):
        await send_line(ctx, echo.rx, sent, divisor)

    async def host_receives(ctx):
        data = await receive_line(ctx, echo.tx, divisor, 6 + len(want[1]))
        command, payload, rest = decode_frame(data)
        answer.update(frame=(command, payload), rest=rest)

    simulate(echo, host_sends, host_receives)
    assert answer["frame"] == want
    assert answer["rest"] == b""
