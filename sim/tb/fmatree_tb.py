"""FMA-tree testbench on a ``LaneArray`` of ``FmaTree``s: every operand pair, random full
vectors and directed cases, against the golden ``fmatree``.

Environment: FP8HW_HW_PARAMS (JSON: ways, pipeline, multiplier), FP8HW_LANES, FP8HW_SEED.
"""

import json
import os

import cocotb
import numpy as np

from golden import FP30, encode
from golden.fmatree import fmatree, tree_sum
from hw.units.fma_tree import FmaTree
from sim.checks import compare, fmatree_row
from sim.fmatree_cases import power_of_two_chunks
from sim.lanes import LaneArray, drive_rows

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
WAYS = PARAMS["ways"]
LANES = int(os.environ.get("FP8HW_LANES", "4"))
SEED = int(os.environ.get("FP8HW_SEED", "1"))
MAX = 0x7F                     # largest fp8seb magnitude code
NAN = FP30.canonical_nan


async def check(dut, what, acc, a, b, bias_a, bias_b, skip=None):
    """``skip`` (optional, a flag a row): those rows must pass ``acc`` through."""
    top = LaneArray(lambda: FmaTree(**PARAMS), LANES)
    skip = np.zeros(len(acc), np.int64) if skip is None else skip
    inputs = {"a": a.astype(np.uint8), "b": b.astype(np.uint8), "bias_a": bias_a,
              "bias_b": bias_b, "acc_in": acc, "skip": skip}
    got = (await drive_rows(dut, top.ports, LANES, inputs, ["acc_out"],
                            latency=top.latency))["acc_out"].astype(np.uint32)
    want = np.where(skip, acc, fmatree(acc, a, b, bias_a, bias_b))
    T = tree_sum(a, b)

    def describe(i):
        return fmatree_row(i, a, b, bias_a, bias_b, acc, got, want, T)

    compare(dut._log, what, got, want, describe)


def fp30_accumulators(rng, n, t_values):
    """A mix: zeros (both codes), random codes, NaN, near +-max, and ones that cancel t."""
    kinds = rng.integers(0, 6, n)
    random_codes = rng.integers(0, 1 << 30, n)
    zeros = np.where(rng.random(n) < 0.5, 0, 1 << 29)
    nan = np.where(rng.random(n) < 0.5, NAN, NAN | (1 << 29))
    near_max = (FP30.max_code - rng.integers(0, 4, n)) | (rng.integers(0, 2, n) << 29)
    cancel = encode(-t_values * (1 + rng.normal(0, 2.0 ** -22, n)), FP30).astype(np.int64)
    return np.choose(kinds, [zeros, random_codes, nan, near_max, cancel,
                             random_codes]).astype(np.uint32)


@cocotb.test()
async def every_pair_alone(dut):
    """All 65,536 (a, b) pairs, each in one way (rotating) with all other ways zero."""
    rng = np.random.default_rng(SEED)
    a_all, b_all = np.meshgrid(np.arange(256), np.arange(256))
    a_all, b_all = a_all.ravel(), b_all.ravel()
    n = len(a_all)
    for bias_a, bias_b, acc_kind in ((-32, -32, "zero"), (31, 31, "zero"), (0, 0, "mix"),
                                     (-32, 31, "mix")):
        a = np.zeros((n, WAYS), np.uint8)
        b = np.zeros((n, WAYS), np.uint8)
        way = np.arange(n) % WAYS
        a[np.arange(n), way] = a_all
        b[np.arange(n), way] = b_all
        ba, bb = np.full(n, bias_a), np.full(n, bias_b)
        t = tree_sum(a, b) * 2.0 ** (-4 - ba - bb)
        acc = np.zeros(n, np.uint32) if acc_kind == "zero" else fp30_accumulators(rng, n, t)
        await check(dut, f"every pair, biases {bias_a},{bias_b}", acc, a, b, ba, bb)


@cocotb.test()
async def random_full_vectors(dut):
    """Random codes in every way, biases over -32..31, accumulators over all of fp30; a
    tenth of the rows skip (their accumulators pass through)."""
    rng = np.random.default_rng(SEED + 1)
    n = 6000
    a = rng.integers(0, 256, (n, WAYS))
    b = rng.integers(0, 256, (n, WAYS))
    a[rng.random((n, WAYS)) < 0.2] = 0
    ba, bb = rng.integers(-32, 32, n), rng.integers(-32, 32, n)
    t = tree_sum(a, b) * 2.0 ** (-4 - ba - bb)
    skip = (rng.random(n) < 0.1).astype(np.int64)
    await check(dut, "random full vectors", fp30_accumulators(rng, n, t), a, b, ba, bb, skip)


def directed_rows(rng):
    rows = []                                   # (acc, a, b, bias_a, bias_b)

    def add(acc, a, b, ba, bb):
        rows.append((int(acc), np.asarray(a, np.int64), np.asarray(b, np.int64), ba, bb))

    zeros = np.zeros(WAYS, np.int64)
    for ba, bb in ((-32, -32), (0, 0), (31, 31), (-32, 31), (10, -20)):
        # T at its largest magnitude, both signs, and saturation at stage 1.
        add(0, np.full(WAYS, MAX), np.full(WAYS, MAX), ba, bb)
        add(0, np.full(WAYS, MAX | 0x80), np.full(WAYS, MAX), ba, bb)
        # All-subnormal inputs (exponent 0).
        add(0, rng.integers(0, 8, WAYS) | (rng.integers(0, 2, WAYS) << 7),
            rng.integers(0, 8, WAYS), ba, bb)
        # Swamping: one huge product and many tiny ones.
        big = zeros.copy(); big[0] = MAX
        tiny = rng.integers(1, 8, WAYS); tiny[0] = MAX
        add(0, big + np.where(np.arange(WAYS) > 0, tiny, 0), tiny, ba, bb)
        # Exact cancellation inside the tree: x*y and -x*y.
        x = rng.integers(0, 128, WAYS)
        y = rng.integers(0, 256, WAYS)
        half = WAYS // 2
        xa = x.copy(); xa[half:2 * half] = x[:half] | 0x80
        ya = y.copy(); ya[half:2 * half] = y[:half]
        if WAYS % 2:
            xa[-1] = 0
        add(0, xa, ya, ba, bb)
        # NaN accumulators and saturation at stage 2 (acc near +-max plus t).
        add(NAN, rng.integers(0, 256, WAYS), rng.integers(0, 256, WAYS), ba, bb)
        add(NAN | (1 << 29), zeros, zeros, ba, bb)
        add(FP30.max_code, np.full(WAYS, 0x38), np.full(WAYS, 0x38), ba, bb)
        add(FP30.max_code | (1 << 29), np.full(WAYS, 0xB8), np.full(WAYS, 0x38), ba, bb)
    # Negative terms (added as ones' complements with the +1 as a carry in): every way
    # negative, every way a negative zero.
    for ba, bb in ((-32, -32), (0, 0), (31, 31)):
        add(0, rng.integers(0, 128, WAYS) | 0x80, rng.integers(0, 128, WAYS), ba, bb)
        add(0, np.full(WAYS, 0x80), rng.integers(0, 256, WAYS), ba, bb)
    # T = +-2**k (the magnitude's +1 carries out of the ones' complement's ones): way 0
    # a power of two, then pairs that cancel in either order, zeros of either sign.
    for a, b in power_of_two_chunks(rng, WAYS, 100):
        add(0, a, b, *(int(v) for v in rng.integers(-32, 32, 2)))
    # Exact cancellation of the accumulator: acc = -t for a representable t.
    for _ in range(200):
        a = rng.integers(0, 256, WAYS); b = rng.integers(0, 256, WAYS)
        ba, bb = (int(v) for v in rng.integers(-32, 32, 2))
        t = fmatree(np.zeros(1, np.uint32), a[None], b[None], ba, bb)[0]
        add(int(t) ^ (1 << 29) if t else 0, a, b, ba, bb)
    acc = np.array([r[0] for r in rows], np.uint32)
    a = np.array([r[1] for r in rows]); b = np.array([r[2] for r in rows])
    ba = np.array([r[3] for r in rows]); bb = np.array([r[4] for r in rows])
    return acc, a, b, ba, bb


@cocotb.test()
async def directed_cases(dut):
    """Swamping, cancellation, saturation at both stages, subnormals, largest T, NaN,
    negative terms, T a power of two."""
    rng = np.random.default_rng(SEED + 2)
    await check(dut, "directed", *directed_rows(rng))
