"""MPE testbench on a ``LaneArray`` of MPEs: exhaustive operand pairs in every mode.

Environment: FP8HW_HW_PARAMS (JSON: bias, pipeline), FP8HW_LANES, FP8HW_SEED, and
FP8HW_FULL_SWEEP=1 for every kind of accumulator with every pair (about 3x longer; by
default each pair meets two of the six fp8 kinds and one of the two int kinds, drawn at
random, so that every kind still meets a third or a half of all pairs).
"""

import json
import os

import cocotb
import numpy as np

from fp8hw.enums import Mode, SourceFormat
from golden import DLFLOAT16, decode, encode
from golden.convert import convert
from golden.mpe import mpe
from hw.units.mpe import MPE
from sim.checks import compare, hex_and_value
from sim.lanes import LaneArray, drive_rows

PARAMS = json.loads(os.environ.get("FP8HW_HW_PARAMS", "{}"))
LANES = int(os.environ.get("FP8HW_LANES", "32"))
SEED = int(os.environ.get("FP8HW_SEED", "1"))
FULL_SWEEP = os.environ.get("FP8HW_FULL_SWEEP") == "1"
FORMAT_PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]


def lanes():
    return LaneArray(lambda: MPE(**PARAMS), LANES)


async def run_rows(dut, rows: dict) -> np.ndarray:
    """rows: acc, a, b, mode (name per row), fmt_a, fmt_b -> RTL acc_out."""
    inputs = {
        "acc_in": rows["acc"], "a": rows["a"], "b": rows["b"],
        "mode": np.array([Mode.from_label(x) for x in rows["mode"]]),
        "fmt_a": np.array([SourceFormat.from_label(x) for x in rows["fmt_a"]]),
        "fmt_b": np.array([SourceFormat.from_label(x) for x in rows["fmt_b"]]),
    }
    top = lanes()
    got = await drive_rows(dut, top.ports, LANES, inputs, ["acc_out"], latency=top.latency)
    return got["acc_out"].astype(np.uint32)


def golden_rows(rows: dict) -> np.ndarray:
    """Golden results, evaluated per (mode, fmt_a, fmt_b) group of rows."""
    want = np.zeros(len(rows["a"]), dtype=np.uint32)
    keys = np.char.add(np.char.add(rows["mode"], rows["fmt_a"]), rows["fmt_b"])
    for key in np.unique(keys):
        sel = keys == key
        i = np.nonzero(sel)[0][0]
        want[sel] = mpe(rows["acc"][sel], rows["a"][sel], rows["b"][sel], rows["mode"][i],
                        rows["fmt_a"][i], rows["fmt_b"][i], PARAMS["bias"])
    return want


def describer(rows, got, want):
    bias = PARAMS["bias"]

    def describe(i):
        mode, fa, fb = rows["mode"][i], rows["fmt_a"][i], rows["fmt_b"][i]
        if mode != "fp8":
            return (f"mode={mode} acc=0x{rows['acc'][i]:08x} a=0x{rows['a'][i]:02x} "
                    f"b=0x{rows['b'][i]:02x} rtl=0x{got[i]:08x} golden=0x{want[i]:08x}")
        return (f"mode=fp8 fmt_a={fa} fmt_b={fb} bias={bias} "
                f"acc={hex_and_value(int(rows['acc'][i]) & 0xFFFF, DLFLOAT16, digits=4)} "
                f"(word 0x{rows['acc'][i]:08x}) "
                f"a={hex_and_value(int(rows['a'][i]), fa, bias if fa == 'e4m3' else None)} "
                f"b={hex_and_value(int(rows['b'][i]), fb, bias if fb == 'e4m3' else None)} "
                f"rtl={hex_and_value(int(got[i]) & 0xFFFF, DLFLOAT16, digits=4)} "
                f"(word 0x{got[i]:08x}) golden={hex_and_value(int(want[i]), DLFLOAT16, digits=4)}")
    return describe


async def check(dut, what: str, rows: dict):
    got = await run_rows(dut, rows)
    want = golden_rows(rows)
    compare(dut._log, what, got, want, describer(rows, got, want))


def product_values(a, b, fa, fb, bias):
    pa = decode(convert(a, fa, bias), "fp9")
    pb = decode(convert(b, fb, bias), "fp9")
    return pa * pb


def fp8_accumulators(rng, a, b, fa, fb, bias):
    """Accumulators for each (a, b) row: one list entry per kind, each an array like a."""
    n = len(a)
    prod = np.nan_to_num(product_values(a, b, fa, fb, bias), nan=1.0)
    upper = rng.integers(0, 1 << 16, n).astype(np.uint32) << 16     # ignored on input
    finite = rng.integers(0, 1 << 16, n).astype(np.uint32)
    finite = np.where((finite & 0x7FFF) == 0x7FFF, finite ^ 1, finite)
    nan_inf = np.where(rng.random(n) < 0.5, 0x7FFF, 0xFFFF).astype(np.uint32)
    # Cancel the product to within a few accumulator ulps: exact zeros, tiny results, ties.
    cancel = encode(-prod, DLFLOAT16, rounding="rnu").astype(np.int64)
    cancel = np.where(cancel == 0, cancel, cancel + rng.integers(-3, 4, n))
    cancel = np.clip(cancel, 0, 0xFFFE) & 0xFFFF
    cancel = np.where((cancel & 0x7FFF) == 0x7FFF, 0, cancel).astype(np.uint32)
    # Next to the overflow threshold: max - product, a few ulps either way.
    top = DLFLOAT16.max_finite()
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    near_max = encode(sign * top - prod, DLFLOAT16).astype(np.int64)
    near_max = (near_max - rng.integers(0, 4, n)) & 0xFFFF
    near_max = np.where((near_max & 0x7FFF) == 0x7FFF, near_max - 1, near_max).astype(np.uint32)
    # Next to the smallest nonzero value: exponents 0 and 1, either sign.
    near_min = (rng.integers(0, 1 << 10, n) | (rng.integers(0, 2, n) << 15)).astype(np.uint32)
    return [np.zeros(n, np.uint32), finite | upper, nan_inf, cancel, near_max, near_min]


def pick_kinds(rng, kinds, per_pair):
    """``per_pair`` accumulator arrays, each row taking a different kind at random (all
    kinds in order with FULL_SWEEP)."""
    assert per_pair in (1, 2)
    if FULL_SWEEP:
        return kinds
    first = rng.integers(0, len(kinds), len(kinds[0]))
    picks = [first]
    if per_pair == 2:             # a second kind, never the first one
        picks.append((first + rng.integers(1, len(kinds), len(first))) % len(kinds))
    return [np.choose(pick, kinds) for pick in picks]


def every_pair_rows(rng, bias):
    a_all, b_all = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    a_all, b_all = a_all.ravel(), b_all.ravel()
    parts = []
    for fa, fb in FORMAT_PAIRS:
        kinds = fp8_accumulators(rng, a_all, b_all, fa, fb, bias)
        for acc in pick_kinds(rng, kinds, 2):
            parts.append({"acc": acc, "a": a_all, "b": b_all})
            parts[-1].update(mode=np.full(len(a_all), "fp8"), fmt_a=np.full(len(a_all), fa),
                             fmt_b=np.full(len(a_all), fb))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@cocotb.test()
async def fp8_every_pair_every_format(dut):
    """All 65,536 (a, b) pairs, all four format pairs, two of six kinds of accumulator
    each (all six with FP8HW_FULL_SWEEP=1)."""
    rng = np.random.default_rng(SEED)
    await check(dut, "fp8 every pair", every_pair_rows(rng, PARAMS["bias"]))


@cocotb.test()
async def int_every_pair(dut):
    """int4 and int2: every (a, b) pair, random accumulators and ones next to the wrap."""
    rng = np.random.default_rng(SEED + 1)
    a_all, b_all = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    a_all, b_all = a_all.ravel(), b_all.ravel()
    n = len(a_all)
    wrap_points = np.array([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0], dtype=np.int64)
    near_wrap = (wrap_points[rng.integers(0, 4, n)] + rng.integers(-130, 131, n)) & 0xFFFFFFFF
    random_acc = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    kinds = [random_acc.astype(np.uint32), near_wrap.astype(np.uint32)]
    parts = []
    for mode in ("int4", "int2"):
        for acc in pick_kinds(rng, kinds, 1):
            parts.append({"acc": acc.astype(np.uint32), "a": a_all, "b": b_all,
                          "mode": np.full(n, mode), "fmt_a": np.full(n, "e4m3"),
                          "fmt_b": np.full(n, "e4m3")})
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    await check(dut, "int every pair", rows)


def random_rows(rng, n, bias):
    """Rows of every mode and format pair mixed, with all kinds of accumulator."""
    modes = np.array(Mode.labels())[rng.integers(0, len(Mode), n)]
    fmts = np.array(["e4m3", "e5m2"])
    fa, fb = fmts[rng.integers(0, 2, n)], fmts[rng.integers(0, 2, n)]
    a = rng.integers(0, 256, n).astype(np.uint8)
    b = rng.integers(0, 256, n).astype(np.uint8)
    acc = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    for f1, f2 in FORMAT_PAIRS:
        sel = (fa == f1) & (fb == f2) & (modes == "fp8")
        kinds = fp8_accumulators(rng, a[sel], b[sel], f1, f2, bias)
        pick = rng.integers(0, len(kinds), sel.sum())
        acc[sel] = np.choose(pick, kinds)
    return {"acc": acc, "a": a, "b": b, "mode": modes, "fmt_a": fa, "fmt_b": fb}


@cocotb.test()
async def random_mixed_modes(dut):
    """Seeded random rows, modes and formats changing every row."""
    rng = np.random.default_rng(SEED + 2)
    await check(dut, "random mixed", random_rows(rng, 40000, PARAMS["bias"]))
