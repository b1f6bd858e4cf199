"""cocotb tests of the board system (``hw.soc.system.ArraySystem``) through its UART pins:
identify, GEMMs through WRITE / RUN / READ against the golden matmul, refused and
damaged frames, a repeated RUN (answered again, not run again) and the status counters. Environment: FP8HW_HW_PARAMS (JSON: rows, cols, max_m, divisor,
timeout_bits)."""

import json
import os

import cocotb
import numpy as np

from fp8hw.enums import Mode, SourceFormat
from golden.matmul import matmul
from hw.schedule import GemmSchedule
from hw.soc.protocol import (ACK, HISTORY, MAX_PAYLOAD, NAK, RECEIVE_BANKS, STATUS_COUNTERS,
                             Buffer, Command, Nak, buffer_image, encode_frame,
                             from_buffer_image, image_row_bytes, row_stride, unpack_identity)
from hw.soc.system import VERSION
from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

P = json.loads(os.environ["FP8HW_HW_PARAMS"])
R, C, DIV = P["rows"], P["cols"], P["divisor"]


class Host:
    def __init__(self, dut):
        self.dut = dut
        self.line = LineReceiver(dut.clk, dut.tx, DIV)
        self.seq = 0
        cocotb.start_soon(self.line.run())

    async def request(self, command, payload=b"", seq=None):
        """(code, payload) of the answer; the next seq unless ``seq`` is given."""
        if seq is None:
            seq, self.seq = self.seq, (self.seq + 1) & 0xFF
        await send_bytes(self.dut.clk, self.dut.rx, b"\x00" + encode_frame(seq, command, payload),
                         DIV)
        got_seq, code, data = await self.answer()
        assert got_seq == seq, (got_seq, seq)
        return code, data

    async def answer(self):
        return await self.line.next_frame(max_bytes=MAX_PAYLOAD + 32)

    async def ok(self, command, payload=b""):
        answer, data = await self.request(command, payload)
        assert answer == ACK and data[0] == command, (answer, data)
        return data[1:]

    async def status(self):
        data = await self.ok(Command.STATUS)
        return {n: int.from_bytes(data[2 * i:2 * i + 2], "little")
                for i, n in enumerate(STATUS_COUNTERS)}

    async def write(self, buffer, address, data: bytes):
        for start in range(0, len(data), MAX_PAYLOAD - 3):
            chunk = data[start:start + MAX_PAYLOAD - 3]
            await self.ok(Command.WRITE, bytes([buffer]) + (address + start).to_bytes(2, "little")
                          + chunk)

    async def read(self, buffer, address, count):
        out = b""
        for start in range(0, count, MAX_PAYLOAD - 1):
            n = min(MAX_PAYLOAD - 1, count - start)
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
    info = unpack_identity(await host.ok(Command.IDENTIFY))
    assert info == dict(version=VERSION, rows=R, cols=C, dataflow=1, pipeline=2, bias=11,
                        max_m=P["max_m"], size_a=P["max_m"] * row_stride(R),
                        size_b=R * row_stride(C), size_c=P["max_m"] * 4 * row_stride(C),
                        divisor=DIV, clock_khz=0, banks=RECEIVE_BANKS, history=HISTORY,
                        max_payload=MAX_PAYLOAD), info


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
    frame = bytearray(encode_frame(host.seq, Command.WRITE, bytes([0, 0, 0]) + b"\xff" * 8))
    frame[7] ^= 1
    await send_bytes(dut.clk, dut.rx, bytes(frame), DIV)    # dropped: no answer
    assert await host.request(0x33) == (NAK, bytes([0x33, Nak.COMMAND]))
    assert await host.request(Command.READ, bytes([3, 0, 0, 1, 0])) == \
        (NAK, bytes([Command.READ, Nak.ARGUMENT]))
    assert await host.request(Command.RUN, bytes([0, 0, 0, 0, 0, 0])) == \
        (NAK, bytes([Command.RUN, Nak.ARGUMENT]))
    assert await host.read(0, 0, 8) == bytes(range(8))
    status = await host.status()
    assert (status["crc_errors"], status["timeouts"], status["refused"]) == (1, 0, 3), status
    assert line_is_empty(host)


def line_is_empty(host):
    return bytes(host.line.data) == b""


@cocotb.test()
async def repeated_run_is_not_run_again(dut):
    """A RUN sent again with its seq (its answer lost, say) gets the same ACK and leaves C
    as it was: the result is A x B + C once, not twice."""
    host = await setup(dut)
    A = np.full((1, R), 0x38, np.uint8)
    B = np.full((R, C), 0x40, np.uint8)
    Cinit = np.full((1, C), 5, np.uint32)
    s = GemmSchedule(1, R, C, R, C, "ws")
    (tile,) = s.tiles
    b, active = s.ws_weights(tile, B)
    a, c = s.ws_operands(tile, A, Cinit)
    await host.write(Buffer.B, 0, buffer_image(b, "u1"))
    await host.write(Buffer.A, 0, buffer_image(a, "u1"))
    await host.write(Buffer.C, 0, buffer_image(c, "<u4"))
    run = bytes([Mode.FP8, 0, 0, int(active.sum())]) + (1).to_bytes(2, "little")
    seq = host.seq
    assert await host.request(Command.RUN, run) == (ACK, bytes([Command.RUN]))
    runs = (await host.status())["runs"]
    assert await host.request(Command.RUN, run, seq=seq) == (ACK, bytes([Command.RUN]))
    status = await host.status()
    assert (status["runs"], status["replayed"]) == (runs, 1), status
    out = await host.read(Buffer.C, 0, image_row_bytes(C, "<u4"))
    Cm = np.array(Cinit)
    s.store(tile, Cm, from_buffer_image(out, C, "<u4"))
    assert np.array_equal(Cm, matmul(A, B, Cinit, "fp8", "e4m3", "e4m3"))
