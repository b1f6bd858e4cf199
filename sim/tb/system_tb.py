"""cocotb tests of the board system (``hw.soc.system.ArraySystem``) through its UART pins:
identify, GEMMs through WRITE / RUN / READ against the golden matmul, refused frames and
the status counters. Environment: FP8HW_HW_PARAMS (JSON: rows, cols, max_m, divisor,
timeout_bits)."""

import json
import os

import cocotb
import numpy as np

from fp8hw.enums import Mode, SourceFormat
from golden.matmul import matmul
from hw.schedule import GemmSchedule
from hw.soc.protocol import (ACK, NAK, Buffer, Command, Nak, buffer_image, encode_frame,
                             from_buffer_image, image_row_bytes, row_stride)
from hw.soc.system import VERSION
from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

P = json.loads(os.environ["FP8HW_HW_PARAMS"])
R, C, DIV = P["rows"], P["cols"], P["divisor"]


class Host:
    def __init__(self, dut):
        self.dut = dut
        self.line = LineReceiver(dut.clk, dut.tx, DIV)
        cocotb.start_soon(self.line.run())

    async def request(self, command, payload=b""):
        await send_bytes(self.dut.clk, self.dut.rx, encode_frame(command, payload), DIV)
        return await self.answer()

    async def answer(self):
        return await self.line.next_frame(max_bytes=1196)

    async def ok(self, command, payload=b""):
        answer, data = await self.request(command, payload)
        assert answer == ACK and data[0] == command, (answer, data)
        return data[1:]

    async def write(self, buffer, address, data: bytes):
        for start in range(0, len(data), 512):
            chunk = data[start:start + 512]
            await self.ok(Command.WRITE, bytes([buffer]) + (address + start).to_bytes(2, "little")
                          + chunk)

    async def read(self, buffer, address, count):
        out = b""
        for start in range(0, count, 512):
            n = min(512, count - start)
            out += await self.ok(Command.READ, bytes([buffer])
                                 + (address + start).to_bytes(2, "little")
                                 + n.to_bytes(2, "little"))
        return out

    async def gemm(self, A, B, Cinit, mode, fmt_a, fmt_b):
        M, K = A.shape
        s = GemmSchedule(M, K, B.shape[1], R, C, "ws")
        Cm = np.array(Cinit, np.uint32)
        for tile in s.tiles:
            b, active = s.ws_weights(tile, B)
            a, c = s.ws_operands(tile, A, Cm)
            await self.write(Buffer.B, 0, buffer_image(b, "u1"))
            await self.write(Buffer.A, 0, buffer_image(a, "u1"))
            await self.write(Buffer.C, 0, buffer_image(c, "<u4"))
            run = bytes([Mode.from_label(mode), SourceFormat.from_label(fmt_a),
                         SourceFormat.from_label(fmt_b), int(active.sum())])
            await self.ok(Command.RUN, run + M.to_bytes(2, "little"))
            out = await self.read(Buffer.C, 0, M * image_row_bytes(C, "<u4"))
            s.store(tile, Cm, from_buffer_image(out, C, "<u4"))
        return Cm


async def setup(dut):
    dut.rx.value = 1
    await start_clock(dut)
    return Host(dut)


@cocotb.test()
async def identify(dut):
    host = await setup(dut)
    data = await host.ok(Command.IDENTIFY)
    assert data[:6] == bytes([VERSION, R, C, 1, 2, 11]), data
    sizes = [int.from_bytes(data[i:i + 2], "little") for i in range(6, 14, 2)]
    assert sizes == [P["max_m"], P["max_m"] * row_stride(R), R * row_stride(C),
                     P["max_m"] * 4 * row_stride(C)], sizes


@cocotb.test()
async def gemms_equal_golden(dut):
    host = await setup(dut)
    rng = np.random.default_rng(4)
    for mode, fa, fb in (("fp8", "e4m3", "e5m2"), ("int4", "e4m3", "e4m3"),
                         ("fp8", "e5m2", "e4m3")):
        M, K, N = int(rng.integers(1, P["max_m"] + 1)), int(rng.integers(1, 3 * R + 2)), \
            int(rng.integers(1, 2 * C + 2))
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        Cinit = rng.integers(0, 2**16, (M, N)).astype(np.uint32)
        got = await host.gemm(A, B, Cinit, mode, fa, fb)
        want = matmul(A, B, Cinit, mode, fa, fb)
        assert np.array_equal(got, want), (mode, fa, fb, M, K, N)


@cocotb.test()
async def refused_frames_change_nothing(dut):
    host = await setup(dut)
    await host.write(0, 0, bytes(range(8)))
    frame = bytearray(encode_frame(Command.WRITE, bytes([0, 0, 0]) + b"\xff" * 8))
    frame[7] ^= 1
    await send_bytes(dut.clk, dut.rx, bytes(frame), DIV)
    assert await host.answer() == (NAK, bytes([Nak.CRC]))
    assert await host.request(0x33) == (NAK, bytes([Nak.COMMAND]))
    assert await host.request(Command.READ, bytes([3, 0, 0, 1, 0])) == (NAK, bytes([Nak.ARGUMENT]))
    assert await host.request(Command.RUN, bytes([0, 0, 0, 0, 0, 0])) == \
        (NAK, bytes([Nak.ARGUMENT]))
    assert await host.read(0, 0, 8) == bytes(range(8))
    status = await host.ok(Command.STATUS)
    counts = [int.from_bytes(status[i:i + 2], "little") for i in range(0, len(status), 2)]
    frames, crc_errors, timeouts, refused = counts[:4]
    assert (crc_errors, timeouts, refused) == (1, 0, 3), counts
