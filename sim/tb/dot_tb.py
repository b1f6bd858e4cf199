"""Dot-product engine testbench: K-long dot products back to back, K from 1 to several
hundred, against the golden ``dot`` and ``quant30``, with the tracker and the bias rule.

Environment: FP8HW_HW_PARAMS (JSON: ways, pipeline, room), FP8HW_SEED.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, Timer

from golden.fmatree import dot
from golden.quant30 import max_exponent, next_bias, quant30
from sim.checks import compare, dot_product
from sim.lanes import start_clock

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
WAYS = PARAMS["ways"]
SEED = int(os.environ.get("FP8HW_SEED", "1"))


def jobs(rng):
    """(a, b, bias_a, bias_b, out_bias) for K = 1..several hundred, mixed data."""
    lengths = [1, 2, WAYS - 1, WAYS, WAYS + 1, 2 * WAYS, 97, 256, 300, 511]
    lengths += list(rng.integers(1, 400, 30))
    out = []
    for i, k in enumerate(lengths):
        a = rng.integers(0, 256, k)
        b = rng.integers(0, 256, k)
        if i % 3 == 1:                        # swamping: one large product, many small
            a[1:] &= 0x87
            a[0] = 0x7F
        if i % 3 == 2:
            a[rng.random(k) < 0.5] = 0
        out.append((a.astype(np.uint8), b.astype(np.uint8), *(int(v) for v in
                    rng.integers(-32, 32, 3))))
    return out


@cocotb.test()
async def dot_products_back_to_back(dut):
    rng = np.random.default_rng(SEED)
    work = jobs(rng)
    for name in ("valid_in", "first", "last", "clear", "a", "b", "bias_a", "bias_b",
                 "out_bias"):
        getattr(dut, name).value = 0
    await start_clock(dut)
    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    results = []

    async def step():
        await RisingEdge(dut.clk)
        await Timer(1, unit="ps")
        if int(dut.valid_out.value):
            results.append((dut.acc_out.value.to_unsigned(), dut.y.value.to_unsigned()))

    for a, b, ba, bb, ob in work:
        k = len(a)
        chunks = -(-k // WAYS)
        ap = np.pad(a, (0, chunks * WAYS - k))
        bp = np.pad(b, (0, chunks * WAYS - k))
        for c in range(chunks):
            while rng.random() < 0.15:        # an idle cycle now and then
                dut.valid_in.value = 0
                await step()
            dut.valid_in.value = 1
            dut.first.value = int(c == 0)
            dut.last.value = int(c == chunks - 1)
            dut.a.value = int.from_bytes(ap[c * WAYS:(c + 1) * WAYS].tobytes(), "little")
            dut.b.value = int.from_bytes(bp[c * WAYS:(c + 1) * WAYS].tobytes(), "little")
            dut.bias_a.value = ba
            dut.bias_b.value = bb
            dut.out_bias.value = ob
            await step()
    dut.valid_in.value = 0
    for _ in range(PARAMS["pipeline"] + 3):
        await step()

    assert len(results) == len(work), f"{len(results)} results for {len(work)} dot products"
    got_acc = np.array([r[0] for r in results], np.uint32)
    got_y = np.array([r[1] for r in results], np.uint8)
    want_acc = np.array([dot(a[None], b[None], ba, bb, WAYS)[0] for a, b, ba, bb, _ in work],
                        np.uint32)
    out_bias = np.array([w[4] for w in work])
    want_y = quant30(want_acc, out_bias)

    def describe(i):
        return dot_product(i, work, got_acc, got_y, want_acc, want_y)

    compare(dut._log, "dot acc", got_acc, want_acc, describe)
    compare(dut._log, "dot y", got_y, want_y, describe)
    want_exp = max_exponent(want_acc)
    assert int(dut.seen.value) == (want_exp is not None)
    assert dut.max_exp.value.to_signed() == want_exp, (dut.max_exp.value.to_signed(), want_exp)
    # next_bias applies the rule to the out_bias of the last dot product.
    want_next = next_bias(int(out_bias[-1]), want_exp, PARAMS["room"])
    assert dut.next_bias.value.to_signed() == want_next
