"""cocotb tests of the board system (``hw.soc.system.ArraySystem``) through its UART pins:
identify, whole GEMMs through WRITE / GEMM / READ against the golden matmul (chunk, out,
the LOW16 view, a resident A), refused and damaged frames, a repeated GEMM (answered
again, not run again) and the status counters. Environment: FP8HW_HW_PARAMS (JSON: rows,
cols, divisor, timeout_bits, a_words, b_words, acc_words)."""

import json
import os

import cocotb
import numpy as np

from fp8hw.enums import Mode, OutFormat, SourceFormat
from golden.matmul import matmul
from hw.schedule import EngineLayout, engine_chunk, image_words, word_stride, words_image
from hw.soc.buffers import BufferId
from hw.soc.protocol import (ACK, HISTORY, MAX_PAYLOAD, NAK, RECEIVE_BANKS, VERSION,
                             WRITE_HEADER, Command, Nak, ReadView, encode_frame, pack_gemm,
                             unpack_identity, unpack_status)
from hw.soc.system import largest_dimensions
from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

P = json.loads(os.environ["FP8HW_HW_PARAMS"])
R, C, DIV = P["rows"], P["cols"], P["divisor"]
WORDS = (P["a_words"], P["b_words"], P["acc_words"])


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
        return unpack_status(await self.ok(Command.STATUS))

    async def write(self, buffer, address, data: bytes):
        step = MAX_PAYLOAD - WRITE_HEADER
        for start in range(0, len(data), step):
            await self.ok(Command.WRITE, bytes([buffer]) + (address + start).to_bytes(4, "little")
                          + data[start:start + step])

    async def read(self, buffer, address, count, view=ReadView.BYTES):
        out = b""
        for start in range(0, count, MAX_PAYLOAD - 1):
            n = min(MAX_PAYLOAD - 1, count - start)
            out += await self.ok(Command.READ, bytes([buffer])
                                 + (address + start).to_bytes(4, "little")
                                 + n.to_bytes(2, "little") + bytes([view]))
        return out

    async def gemm(self, A, B, Cinit, mode, fa, fb, chunk=0, out="none", a_base=0,
                   out_base=0, write_a=True):
        """Whole GEMM on chip: (sums [M, N] uint32, FP8 codes or None)."""
        M, K = A.shape
        N = B.shape[1]
        L = EngineLayout(M, K, N, R, engine_chunk(mode, chunk))
        if write_a:
            await self.write(BufferId.A, a_base * word_stride(R), words_image(L.a(A), "u1"))
        await self.write(BufferId.B, 0, words_image(L.b(B), "u1"))
        if Cinit is not None:
            await self.write(BufferId.ACC, 0, words_image(L.acc(Cinit), "<u4"))
        await self.ok(Command.GEMM, settings(mode, fa, fb, M, K, N, chunk, out,
                                             Cinit is not None, a_base, out_base))
        if mode == "fp8":
            half = word_stride(4 * R) // 2
            data = await self.read(BufferId.ACC, 0, L.acc_words * half, ReadView.LOW16)
            words = np.frombuffer(data, "<u2").reshape(-1, half // 2)[:, :R]
            sums = L.acc_result(words.astype(np.uint32))
        else:
            data = await self.read(BufferId.ACC, 0, L.acc_words * word_stride(4 * R))
            sums = L.acc_result(image_words(data, R, "<u4"))
        codes = None
        if out != "none":
            data = await self.read(BufferId.A, out_base * word_stride(R),
                                   L.acc_words * word_stride(R))
            codes = L.out_result(image_words(data, R, "u1"))
        return sums, codes


def settings(mode, fa, fb, M, K, N, chunk=0, out="none", accumulate=True, a_base=0,
             out_base=0):
    return pack_gemm(mode=Mode.from_label(mode), fmt_a=SourceFormat.from_label(fa),
                     fmt_b=SourceFormat.from_label(fb), out=OutFormat.from_label(out),
                     accumulate=int(accumulate), m=M, k=K, n=N, chunk=chunk, a_base=a_base,
                     out_base=out_base)


async def setup(dut):
    dut.rx.value = 1
    await start_clock(dut)
    return Host(dut)


@cocotb.test()
async def identify(dut):
    host = await setup(dut)
    info = unpack_identity(await host.ok(Command.IDENTIFY))
    max_m, max_k, max_n = largest_dimensions(R, *WORDS)
    assert info == dict(version=VERSION, rows=R, cols=C, dataflow=1, pipeline=2, bias=11,
                        a_words=WORDS[0], b_words=WORDS[1], acc_words=WORDS[2],
                        max_m=max_m, max_k=max_k, max_n=max_n, chunking=1,
                        divisor=DIV, clock_khz=0, banks=RECEIVE_BANKS, history=HISTORY,
                        max_payload=MAX_PAYLOAD, engine=0, ways=0, room=0), info


@cocotb.test()
async def gemms_equal_golden(dut):
    host = await setup(dut)
    rng = np.random.default_rng(4)
    cycles = (await host.status())["cycles"]
    for mode, fa, fb, chunk, out, initial in (
            ("fp8", "e4m3", "e5m2", 0, "none", True), ("int4", "e4m3", "e4m3", 0, "none", True),
            ("fp8", "e5m2", "e4m3", 2, "e4m3", False), ("int2", "e4m3", "e4m3", 3, "none", False),
            ("fp8", "e4m3", "e4m3", R + 1, "e5m2", True)):
        M, K, N = int(rng.integers(1, 12)), int(rng.integers(1, 3 * R + 2)), \
            int(rng.integers(1, 2 * C + 2))
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        Cinit = rng.integers(0, 2**16 if mode == "fp8" else 2**32, (M, N)).astype(np.uint32) \
            if initial else None
        sums, codes = await host.gemm(A, B, Cinit, mode, fa, fb, chunk, out, a_base=3,
                                      out_base=60)
        want = matmul(A, B, Cinit, mode, fa, fb, chunk=chunk)
        assert np.array_equal(sums, want), (mode, fa, fb, M, K, N, chunk)
        if out != "none":
            assert np.array_equal(codes, matmul(A, B, Cinit, mode, fa, fb, chunk=chunk,
                                                out=out)), (mode, out)
    assert (await host.status())["cycles"] > cycles


@cocotb.test()
async def resident_chain(dut):
    """The first GEMM's quantized result stays on chip as the second's A."""
    host = await setup(dut)
    rng = np.random.default_rng(8)
    M, K, N1, N2 = 5, 2 * R + 1, 2 * R, R + 1
    A = rng.integers(0, 256, (M, K)).astype(np.uint8)
    B1 = rng.integers(0, 256, (K, N1)).astype(np.uint8)
    B2 = rng.integers(0, 256, (N1, N2)).astype(np.uint8)
    _, Y1 = await host.gemm(A, B1, None, "fp8", "e4m3", "e4m3", out="e4m3", out_base=30)
    sums, _ = await host.gemm(Y1, B2, None, "fp8", "e4m3", "e5m2", a_base=30, write_a=False)
    want = matmul(matmul(A, B1, out="e4m3"), B2, fmt_b="e5m2")
    assert np.array_equal(sums, want)


@cocotb.test()
async def refused_frames_change_nothing(dut):
    host = await setup(dut)
    await host.write(BufferId.ACC, 0, bytes(range(8)))
    frame = bytearray(encode_frame(host.seq, Command.WRITE, bytes([BufferId.ACC, 0, 0, 0, 0]) + b"\xff" * 8))
    frame[7] ^= 1
    await send_bytes(dut.clk, dut.rx, bytes(frame), DIV)    # dropped: no answer
    assert await host.request(0x33) == (NAK, bytes([0x33, Nak.COMMAND]))
    assert await host.request(Command.READ, bytes([3, 0, 0, 0, 0, 1, 0, 0])) == \
        (NAK, bytes([Command.READ, Nak.ARGUMENT]))
    # LOW16 is a view of ACC only; a GEMM too big for the buffers; a short GEMM.
    assert await host.request(Command.READ, bytes([0, 0, 0, 0, 0, 1, 0, ReadView.LOW16])) \
        == (NAK, bytes([Command.READ, Nak.ARGUMENT]))
    assert await host.request(Command.GEMM, settings("fp8", "e4m3", "e4m3", WORDS[2] + 1,
                                                     R, R)) == \
        (NAK, bytes([Command.GEMM, Nak.ARGUMENT]))
    assert await host.request(Command.GEMM, bytes(3)) == \
        (NAK, bytes([Command.GEMM, Nak.ARGUMENT]))
    assert await host.read(BufferId.ACC, 0, 8) == bytes(range(8))
    status = await host.status()
    assert (status["crc_errors"], status["timeouts"], status["refused"]) == (1, 0, 5), status
    assert line_is_empty(host)


def line_is_empty(host):
    return bytes(host.line.data) == b""


@cocotb.test()
async def repeated_gemm_is_not_run_again(dut):
    """A GEMM sent again with its seq (its answer lost, say) gets the same ACK and leaves
    ACC as it was: the result is A x B + C once, not twice."""
    host = await setup(dut)
    A = np.full((1, R), 0x38, np.uint8)
    B = np.full((R, C), 0x40, np.uint8)
    Cinit = np.full((1, C), 5, np.uint32)
    L = EngineLayout(1, R, C, R)
    await host.write(BufferId.A, 0, words_image(L.a(A), "u1"))
    await host.write(BufferId.B, 0, words_image(L.b(B), "u1"))
    await host.write(BufferId.ACC, 0, words_image(L.acc(Cinit), "<u4"))
    gemm = settings("fp8", "e4m3", "e4m3", 1, R, C)
    seq = host.seq
    assert await host.request(Command.GEMM, gemm) == (ACK, bytes([Command.GEMM]))
    runs = (await host.status())["runs"]
    assert await host.request(Command.GEMM, gemm, seq=seq) == (ACK, bytes([Command.GEMM]))
    status = await host.status()
    assert (status["runs"], status["replayed"]) == (runs, 1), status
    out = await host.read(BufferId.ACC, 0, word_stride(4 * R))
    assert np.array_equal(L.acc_result(image_words(out, R, "<u4")),
                          matmul(A, B, Cinit, "fp8", "e4m3", "e4m3"))


@cocotb.test()
async def requests_beside_a_running_gemm(dut):
    """A GEMM is answered once accepted and runs on. Sent right behind it: a READ of the
    upper half of A, which the GEMM does not use (it runs beside the GEMM: a STATUS sent
    next still finds the GEMM busy), and a READ of the GEMM's result, which waits for
    the GEMM to end (the golden bits, not a half-computed sum)."""
    host = await setup(dut)
    rng = np.random.default_rng(12)
    M, K, N, chunk = 16, 8, 6 * C, 1              # about 2,000 cycles: chunk 1 folds a lot
    upper = (WORDS[0] // 2) * word_stride(R)
    A = rng.integers(0, 256, (M, K)).astype(np.uint8)
    B = rng.integers(0, 256, (K, N)).astype(np.uint8)
    L = EngineLayout(M, K, N, R, chunk)
    assert L.a_words <= WORDS[0] // 2 and L.acc_words <= WORDS[2] and L.b_words <= WORDS[1]
    await host.write(BufferId.A, 0, words_image(L.a(A), "u1"))
    await host.write(BufferId.B, 0, words_image(L.b(B), "u1"))
    await host.write(BufferId.A, upper, b"\x5a\xa5\x01")       # a word: R codes
    before = (await host.status())["cycles"]
    half = word_stride(4 * R) // 2
    requests = [(Command.GEMM, settings("fp8", "e4m3", "e4m3", M, K, N, chunk, "none",
                                        False)),
                (Command.READ, bytes([BufferId.A]) + upper.to_bytes(4, "little")
                 + (3).to_bytes(2, "little") + bytes([ReadView.BYTES])),
                (Command.STATUS, b""),
                (Command.READ, bytes([BufferId.ACC, 0, 0, 0, 0])
                 + (L.acc_words * half).to_bytes(2, "little") + bytes([ReadView.LOW16]))]
    frames = b""
    for command, payload in requests:
        frames += b"\x00" + encode_frame(host.seq, command, payload)
        host.seq = (host.seq + 1) & 0xFF
    sending = cocotb.start_soon(send_bytes(dut.clk, dut.rx, frames, DIV))
    answers = [await host.answer() for _ in requests]
    await sending
    for (command, _), (_, code, data) in zip(requests, answers):
        assert code == ACK and data[0] == command, (command, code, data)
    assert answers[1][2][1:] == b"\x5a\xa5\x01"
    during = unpack_status(answers[2][2][1:])["cycles"] - before
    total = (await host.status())["cycles"] - before
    assert 0 < during < total, (during, total)
    cocotb.log.info(f"GEMM busy {total} cycles, {during} when STATUS ran beside it")
    words = np.frombuffer(answers[3][2][1:], "<u2").reshape(-1, half // 2)[:, :R]
    assert np.array_equal(L.acc_result(words.astype(np.uint32)),
                          matmul(A, B, None, "fp8", chunk=chunk))
