"""cocotb tests of the host link's framing (``sim.tops.FrameEcho``): good frames are
answered with their contents, bad ones with the right NAK, and the link resynchronizes
after garbage. Environment: FP8HW_HW_PARAMS (JSON: divisor, timeout)."""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hw.soc.protocol import ACK, MAX_PAYLOAD, NAK, SOF, Nak, decode_frame, encode_frame
from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
DIVISOR, TIMEOUT = PARAMS["divisor"], PARAMS["timeout"]


class Host:
    def __init__(self, dut):
        self.dut = dut
        self.receiver = LineReceiver(dut.clk, dut.tx, DIVISOR)
        cocotb.start_soon(self.receiver.run())

    async def send(self, data: bytes):
        await send_bytes(self.dut.clk, self.dut.rx, data, DIVISOR)

    async def answer(self):
        """The next answer frame: (command, payload)."""
        return await self.receiver.next_frame()

    async def idle(self, cycles):
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)


async def setup(dut):
    dut.rx.value = 1
    await start_clock(dut)
    return Host(dut)


@cocotb.test()
async def good_frames_are_answered(dut):
    host = await setup(dut)
    rng = np.random.default_rng(2)
    for length in (0, 1, 2, 37, 300, MAX_PAYLOAD - 1):   # the answer adds a byte
        payload = bytes(rng.integers(0, 256, length).tolist())
        command = int(rng.integers(0, 256))
        await host.send(encode_frame(command, payload))
        assert await host.answer() == (ACK, bytes([command]) + payload), length


@cocotb.test()
async def bad_frames_get_nak_and_change_nothing(dut):
    host = await setup(dut)
    frame = bytearray(encode_frame(0x02, bytes(range(40))))
    frame[10] ^= 0x01                                     # corrupted payload
    await host.send(bytes(frame))
    assert await host.answer() == (NAK, bytes([Nak.CRC]))
    frame = bytearray(encode_frame(0x02, b"abc"))
    frame[-1] ^= 0x80                                     # corrupted CRC
    await host.send(bytes(frame))
    assert await host.answer() == (NAK, bytes([Nak.CRC]))
    await host.send(encode_frame(0x03, bytes(20))[:12])   # truncated
    assert await host.answer() == (NAK, bytes([Nak.TIMEOUT]))
    await host.send(bytes([SOF, 0x02]) + (MAX_PAYLOAD + 1).to_bytes(2, "little"))
    assert await host.answer() == (NAK, bytes([Nak.ARGUMENT]))
    await host.idle(2 * TIMEOUT)
    await host.send(encode_frame(0x05, b"after"))
    assert await host.answer() == (ACK, b"\x05after")


@cocotb.test()
async def resync_after_garbage(dut):
    host = await setup(dut)
    rng = np.random.default_rng(9)
    garbage = bytes(rng.integers(0, 256, 200).tolist())
    await host.send(garbage)
    await host.idle(3 * TIMEOUT)
    # Whatever the garbage started (every SOF in it may begin a frame), it ends in NAKs.
    answers = 0
    while True:
        try:
            command, payload, rest = decode_frame(bytes(host.receiver.data))
        except IndexError:
            break
        assert command == NAK, (command, payload)
        host.receiver.data[:] = rest
        answers += 1
    host.receiver.data.clear()
    await host.send(encode_frame(0x01, b"hello"))
    assert await host.answer() == (ACK, b"\x01hello")
