"""cocotb tests of the GEMM engine (``hw.soc.gemm.GemmEngine``): whole GEMMs loaded and
read back through the host byte port, checked bit for bit against the golden model, and
settings the engine must refuse without writing anything.

Environment: FP8HW_HW_PARAMS (JSON: rows, pipeline, a_words, b_words, acc_words,
chunking, spram, bias; for the FP8-SEB engine also engine, ways, room) and optionally FP8HW_GEMM_REPORT, a JSON file to write each
GEMM's busy cycles to. With FP8HW_VECTORS_IN / FP8HW_VECTORS_OUT (and FP8HW_PARAMS, the
vector file's parameters) only ``vector_gemm`` runs: the one GEMM of ``python -m sim run
matmul`` with ``chunk`` or ``out``.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from hw.schedule import image_words, words_image
from hw.soc.buffers import BufferId
from hw.soc.gemm import HOST_READ_LATENCY, GemmEngine
from sim.gemm_jobs import (engine_gemms, refused_gemms, seb_engine_gemms, seb_refused_gemms,
                           settings_word)
from sim.lanes import start_clock

P = json.loads(os.environ["FP8HW_HW_PARAMS"])
R = P["rows"]
DEPTHS = (P["a_words"], P["b_words"], P["acc_words"])
ENGINE = GemmEngine(R, R, pipeline=P["pipeline"], a_words=P["a_words"],
                    b_words=P["b_words"], acc_words=P["acc_words"], chunking=P["chunking"],
                    spram=P["spram"], bias=P.get("bias", 11), engine=P.get("engine", "mpe"),
                    ways=P.get("ways", 24), room=P.get("room", 1))
VECTORS = "FP8HW_VECTORS_IN" in os.environ


def item_dtype(buffer):
    return "<u4" if buffer == BufferId.ACC else "u1"


def items(buffer):
    """Items of a word (the engine's buffer's: R sums of ACC, R chunks of A and B)."""
    return ENGINE.buffers[buffer].items


class Host:
    """The executor's side of the engine: the host byte port, ``start`` and ``done``.
    Inputs change and outputs are sampled on falling edges, between clock edges."""

    def __init__(self, dut):
        self.dut = dut

    async def write(self, buffer, first_word, words):
        dut = self.dut
        stride = ENGINE.buffers[buffer].stride
        await FallingEdge(dut.clk)
        dut.host__buffer.value = int(buffer)
        dut.host__write.value = 1
        for offset, byte in enumerate(words_image(words, item_dtype(buffer))):
            dut.host__addr.value = first_word * stride + offset
            dut.host__data.value = int(byte)
            await FallingEdge(dut.clk)
        dut.host__write.value = 0

    async def read(self, buffer, first_word, count):
        dut = self.dut
        stride = ENGINE.buffers[buffer].stride
        await FallingEdge(dut.clk)
        dut.host__buffer.value = int(buffer)
        data = bytearray()
        for offset in range(count * stride):
            dut.host__addr.value = first_word * stride + offset
            for _ in range(HOST_READ_LATENCY):
                await FallingEdge(dut.clk)
            data.append(int(dut.host__read_data.value))     # the byte at that address
        return image_words(bytes(data), items(buffer), item_dtype(buffer))

    def tracker(self):
        """(max_exp, seen, next_bias) of the FP8-SEB engine's output tracker."""
        d = self.dut
        return (d.max_exp.value.to_signed(), int(d.seen.value), d.next_bias.value.to_signed())

    async def run(self, g, load=True):
        """Load ``g`` (unless not ``load``), run it; returns (refused, busy cycles)."""
        dut = self.dut
        if load:
            for buffer, first, words in g.loads():
                await self.write(buffer, first, words)
        await FallingEdge(dut.clk)
        before = int(dut.cycles.value)
        assert int(dut.start__ready.value) == 1 and not int(dut.busy.value)
        dut.start__payload.value = settings_word(g)
        dut.start__valid.value = 1
        await FallingEdge(dut.clk)
        dut.start__valid.value = 0
        limit = 20 * (g.layout.a_words * g.layout.n_tiles + 100)
        for _ in range(limit):
            assert int(dut.busy.value), f"{g.name}: idle before done"
            if int(dut.done.value):
                break
            await FallingEdge(dut.clk)
        else:
            raise AssertionError(f"{g.name}: no done within {limit} cycles")
        refused = int(dut.refused.value)
        await FallingEdge(dut.clk)
        assert not int(dut.busy.value) and int(dut.refused.value) == refused
        return refused, int(dut.cycles.value) - before


def first_mismatch(got, want, what):
    bad = np.argwhere(got != want)
    i, j = bad[0]
    return (f"{what}: {len(bad)} of {want.size} values differ; first at [{i}, {j}]: "
            f"engine 0x{int(got[i, j]):08x}, golden 0x{int(want[i, j]):08x}")


async def setup(dut):
    dut.start__valid.value = 0
    dut.pause.value = 0          # the executor's pause, beside a GEMM: not used here
    dut.host__write.value = 0
    await start_clock(dut)
    return Host(dut)


@cocotb.test(skip=VECTORS)
async def gemms_equal_golden(dut):
    host = await setup(dut)
    report = []
    gemms = (seb_engine_gemms(R, ENGINE.ways, *DEPTHS, ENGINE.latency) if ENGINE.seb
             else engine_gemms(R, *DEPTHS, P["chunking"], ENGINE.latency))
    tensor = []                  # the SEB outputs tracked together (``track``)
    for g in gemms:
        refused, cycles = await host.run(g)
        assert not refused, f"{g.name}: refused"
        lay = g.layout
        want = g.golden()
        got = lay.acc_result(await host.read(BufferId.ACC, g.acc_base, lay.acc_words))
        assert np.array_equal(got, want), first_mismatch(got, want, g.name)
        if g.out != "none":
            got = lay.out_result(await host.read(BufferId.A, g.out_base, lay.out_words))
            want8 = g.golden_out()
            assert np.array_equal(got, want8), first_mismatch(got, want8, g.name + " out")
        if g.seb and g.out != "none":
            from golden.quant30 import max_exponent, next_bias
            tensor = (tensor if g.track else []) + [want.ravel()]
            tracked = max_exponent(np.concatenate(tensor))
            got_max, got_seen, got_next = host.tracker()
            assert ((got_max if got_seen else None), got_next) == (
                tracked, next_bias(g.out_bias, tracked, g.room)), (g.name, host.tracker())
        ideal = ENGINE.ideal_cycles(g.M, g.layout.k_chunks, g.N, lay.chunk, g.out != "none")
        report.append({"name": g.name, "M": g.M, "K": g.K, "N": g.N, "cycles": cycles,
                       "ideal": ideal})
        dut._log.info(f"{g.name}: {cycles} busy cycles, ideal {ideal}")
    if "FP8HW_GEMM_REPORT" in os.environ:
        with open(os.environ["FP8HW_GEMM_REPORT"], "w") as f:
            json.dump(report, f)


@cocotb.test(skip=VECTORS)
async def refused_settings_write_nothing(dut):
    host = await setup(dut)
    for g in (seb_refused_gemms(R, ENGINE.ways, *DEPTHS) if ENGINE.seb
              else refused_gemms(R, *DEPTHS, P["chunking"])):
        acc = await host.read(BufferId.ACC, 0, DEPTHS[2])
        a = await host.read(BufferId.A, 0, DEPTHS[0])
        refused, cycles = await host.run(g, load=False)
        assert refused, f"{g.name}: not refused"
        dut._log.info(f"{g.name}: refused after {cycles} cycles")
        assert np.array_equal(await host.read(BufferId.ACC, 0, DEPTHS[2]), acc), g.name
        assert np.array_equal(await host.read(BufferId.A, 0, DEPTHS[0]), a), g.name


@cocotb.test(skip=VECTORS)
async def host_port_reaches_every_byte(dut):
    """Random words into each buffer and back, and bytes past a word's end read 0."""
    host = await setup(dut)
    rng = np.random.default_rng(2)
    for buffer, depth in zip(BufferId, DEPTHS):
        dtype = item_dtype(buffer)
        top = 2**32 if dtype == "<u4" else 256
        words = rng.integers(0, top, (depth, items(buffer)), dtype=np.uint64).astype(dtype)
        await host.write(buffer, 0, words)
        got = await host.read(buffer, 0, depth)
        assert np.array_equal(got, words), f"{buffer.name}: {got[:3]} != {words[:3]}"


@cocotb.test(skip=not VECTORS)
async def vector_gemm(dut):
    """The GEMM of a vector file: C, and Y with ``out``, as the engine computes them."""
    from golden.vectors import load_npz, save_npz
    from sim.gemm_jobs import EngineGemm
    from golden.seb_matmul import SebMatmul
    from golden.vectors import seb_matmul_outputs
    params = json.loads(os.environ["FP8HW_PARAMS"])
    inputs = load_npz(os.environ["FP8HW_VECTORS_IN"])
    if ENGINE.seb:
        quantize = params["out_bias"] is not None
        g = EngineGemm(inputs["A"], inputs["B"], inputs.get("C"), R, "fp8seb",
                       out="fp8seb" if quantize else "none", out_base=P["out_base"],
                       ways=ENGINE.ways, bias_a=params["bias_a"], bias_b=params["bias_b"],
                       out_bias=params["out_bias"] or 0, room=params["room"], name="vectors")
    else:
        g = EngineGemm(inputs["A"], inputs["B"], inputs.get("C"), R, params["mode"],
                       params["fmt_a"], params["fmt_b"], params["chunk"], params["out"],
                       out_base=P["out_base"], bias=params["bias"], name="vectors")
    host = await setup(dut)
    refused, _ = await host.run(g)
    assert not refused, "the engine refused the GEMM"
    lay = g.layout
    outputs = {"C": lay.acc_result(await host.read(BufferId.ACC, 0, lay.acc_words))}
    if g.out != "none":
        outputs["Y"] = lay.out_result(await host.read(BufferId.A, g.out_base, lay.out_words))
    if ENGINE.seb and g.out != "none":
        max_exp, seen, next_bias = host.tracker()
        outputs = seb_matmul_outputs(SebMatmul(outputs["C"], outputs["Y"],
                                               max_exp if seen else None, next_bias))
    save_npz(os.environ["FP8HW_VECTORS_OUT"], outputs)
