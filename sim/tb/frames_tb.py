"""cocotb tests of the host link (``sim.tops.LinkEcho``: ``HostLink`` and an executor that
echoes): good frames of every COBS shape are answered with their contents; damaged, cut
and oversized frames get nothing and change nothing; repeats are answered from the
history; the link resynchronizes after garbage. Environment: FP8HW_HW_PARAMS (JSON:
divisor, timeout)."""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hw.soc.protocol import (ACK, MAX_PAYLOAD, NAK, Command, Nak, cobs_encode, encode_body,
                             encode_frame)
from sim.lanes import start_clock
from sim.tops import REFUSED
from sim.uart_model import LineReceiver, send_bytes

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
DIVISOR, TIMEOUT = PARAMS["divisor"], PARAMS["timeout"]


class Host:
    def __init__(self, dut):
        self.dut = dut
        self.receiver = LineReceiver(dut.clk, dut.tx, DIVISOR)
        self.seq = 0
        cocotb.start_soon(self.receiver.run())

    async def send(self, data: bytes):
        await send_bytes(self.dut.clk, self.dut.rx, data, DIVISOR)

    async def answer(self, max_bytes=MAX_PAYLOAD + 16):
        """The next answer frame: (seq, code, payload)."""
        return await self.receiver.next_frame(max_bytes)

    async def exchange(self, code, payload=b"", seq=None):
        seq = self.seq if seq is None else seq
        await self.send(b"\x00" + encode_frame(seq, code, payload))
        return await self.answer(len(payload) + 32)

    async def idle(self, cycles):
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)

    def executed(self):
        return int(self.dut.executed.value)


async def setup(dut):
    dut.rx.value = 1
    await start_clock(dut)
    return Host(dut)


def corrupted(frame: bytes, index: int, mask: int) -> bytes:
    frame = bytearray(frame)
    frame[index] ^= mask
    return bytes(frame)


@cocotb.test()
async def good_frames_are_answered(dut):
    host = await setup(dut)
    rng = np.random.default_rng(2)
    payloads = [b"", b"\x00", bytes(9), bytes([7]) * 253, bytes([8]) * 254, bytes([9]) * 255,
                bytes(rng.integers(0, 2, 100).tolist()),
                bytes(rng.integers(0, 256, MAX_PAYLOAD - 1).tolist())]  # the echo adds one
    for seq, payload in enumerate(payloads):
        command = Command.READ if seq % 2 else Command.WRITE
        got = await host.exchange(command, payload, seq)
        assert got == (seq, ACK, bytes([command]) + payload), (seq, len(payload))
    assert host.executed() == len(payloads)


@cocotb.test()
async def bad_frames_get_nothing_and_change_nothing(dut):
    host = await setup(dut)
    frame = encode_frame(0, Command.WRITE, bytes(range(1, 41)))
    bad = [corrupted(frame, 10, 0x01),                    # a payload bit
           corrupted(frame, 1, 0x01),                     # the seq
           corrupted(frame, 2, 0x01),                     # the code
           corrupted(frame, len(frame) - 2, 0x80),        # the CRC
           corrupted(frame, 0, 0x02),                     # the COBS code byte
           frame[:12] + b"\x00",                          # cut by a delimiter
           cobs_encode(encode_body(0, 2, bytes(MAX_PAYLOAD)) + b"\x01") + b"\x00"]  # too long
    for data in bad:
        await host.send(b"\x00" + data)
    await host.send(frame[:12])                           # cut, then quiet: the timeout
    await host.idle(2 * TIMEOUT)
    assert host.receiver.data == b"" and host.executed() == 0
    assert await host.exchange(Command.WRITE, b"after", 0) == \
        (0, ACK, bytes([Command.WRITE]) + b"after")


@cocotb.test()
async def repeats_and_sequence(dut):
    """A state-changing repeat is answered from the history, not executed; a pure one is
    executed again; NAKs are repeated; out-of-sequence seqs get NAK SEQUENCE; SYNC tells
    the expected seq; seqs wrap around."""
    host = await setup(dut)
    W, R = Command.WRITE, Command.READ
    assert await host.exchange(Command.SYNC, b"1234", 77) == \
        (77, ACK, bytes([Command.SYNC, 0]) + b"1234")
    for seq in range(300):                                # wraps the 8-bit seq
        assert await host.exchange(W, bytes([seq & 0xFF]), seq & 0xFF) == \
            (seq & 0xFF, ACK, bytes([W, seq & 0xFF]))
    expected = 300 & 0xFF
    executed = host.executed()
    assert await host.exchange(W, b"again", expected - 1) == (expected - 1, ACK, bytes([W]))
    assert await host.exchange(W, b"again", expected - 16) == (expected - 16, ACK, bytes([W]))
    assert host.executed() == executed
    assert await host.exchange(W, b"x", expected - 17) == \
        (expected - 17, NAK, bytes([W, Nak.SEQUENCE, expected]))
    assert await host.exchange(R, b"x", expected - 3) == \
        (expected - 3, ACK, bytes([R]) + b"x")         # pure: executed, whatever seq -3 was
    assert await host.exchange(R, b"x", expected - 17) == \
        (expected - 17, NAK, bytes([R, Nak.SEQUENCE, expected]))
    assert await host.exchange(W, b"x", expected + 1) == \
        (expected + 1, NAK, bytes([W, Nak.SEQUENCE, expected]))
    assert await host.exchange(R, b"pure", expected) == (expected, ACK, bytes([R]) + b"pure")
    assert await host.exchange(R, b"more", expected) == (expected, ACK, bytes([R]) + b"more")
    assert host.executed() == executed + 3
    nak = (expected + 1, NAK, bytes([REFUSED, Nak.ARGUMENT]))
    assert await host.exchange(REFUSED, b"", expected + 1) == nak
    assert await host.exchange(REFUSED, b"", expected + 1) == nak
    assert host.executed() == executed + 4
    assert await host.exchange(Command.SYNC, b"", 5) == (5, ACK, bytes([Command.SYNC,
                                                                         expected + 2]))


@cocotb.test()
async def resync_after_garbage(dut):
    host = await setup(dut)
    rng = np.random.default_rng(9)
    await host.send(bytes(rng.integers(0, 256, 200).tolist()))
    await host.idle(3 * TIMEOUT)
    # Whatever the garbage held, a frame of its own is too unlikely: no answers.
    assert host.receiver.data == b""
    assert await host.exchange(Command.IDENTIFY, b"hello", 0) == \
        (0, ACK, bytes([Command.IDENTIFY]) + b"hello")
