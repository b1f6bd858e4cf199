"""Quick tier: the ``mpe`` unit in Amaranth's simulator against the golden ``mpe``.

Directed corner cases (zeros, subnormals, the largest codes, overflow, NaN and Inf,
rounding ties, swamping, cancellation, underflow, integer wrap-around) and seeded random
rows in every mode and format pair, at pipeline depths 0 (combinational), 2 (the
default) and 6 (the deepest), rows arriving with idle cycles between them; every other
depth with a few random rows, so that each ``latency`` is checked against ``valid_out``.
"""

import numpy as np
import pytest

from fp8hw.enums import Mode, SourceFormat
from golden import DLFLOAT16, E4M3, E5M2, decode, encode
from golden.convert import convert
from golden.mpe import mpe
from hw.units.mpe import MPE, PIPELINE_CUTS
from sim.pysim import (PlantedBug, check, hex_and_value, simulate,
                       stream_rows)

pytestmark = pytest.mark.quick

FORMATS = ("e4m3", "e5m2")
FORMAT_PAIRS = [(fa, fb) for fa in FORMATS for fb in FORMATS]
DL_MAX = DLFLOAT16.max_code                  # 0x7FFE
DL_NAN = DLFLOAT16.canonical_nan             # 0x7FFF


def source(fmt, bias):
    return E4M3.with_bias(bias) if fmt == "e4m3" else E5M2


def products(a, b, fa, fb, bias) -> np.ndarray:
    """a * b as float64 (exact: two 4-bit significands), NaN for NaN/Inf operands."""
    return decode(convert(a, fa, bias), "fp9") * decode(convert(b, fb, bias), "fp9")


def rows_of(acc, a, b, mode, fa, fb) -> dict:
    n = len(a)
    return {"acc": np.asarray(acc, np.uint32), "a": np.asarray(a, np.uint8),
            "b": np.asarray(b, np.uint8), "mode": np.full(n, mode),
            "fmt_a": np.full(n, fa), "fmt_b": np.full(n, fb)}


def join(parts) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def dl_code(sign, exponent, mantissa) -> np.ndarray:
    """dlfloat16 codes from fields (exponent unbiased)."""
    return ((np.asarray(sign, np.int64) << 15) | ((np.asarray(exponent) + DLFLOAT16.bias) << 9)
            | np.asarray(mantissa)).astype(np.uint32)


def tie_rows(rng, fa, fb, bias, n):
    """acc + a*b exactly halfway between two dlfloat16 neighbours: the accumulator's
    quantum is twice the product's lowest bit, and the product is small beside it."""
    src_a, src_b = source(fa, bias), source(fb, bias)
    a = rng.integers(1, src_a.max_code + 1, 4 * n) | (rng.integers(0, 2, 4 * n) << 7)
    b = rng.integers(1, src_b.max_code + 1, 4 * n) | (rng.integers(0, 2, 4 * n) << 7)
    p = products(a, b, fa, fb, bias)
    mant, exp2 = np.frexp(np.abs(p))
    sig = (mant * 2.0 ** 53).astype(np.int64)
    lowest = exp2 - 53 + np.log2(sig & -sig).astype(np.int64)    # p's lowest set bit
    e = lowest + 10                                              # acc's quantum: 2**(e-9)
    ok = (e + DLFLOAT16.bias >= 1) & (e + DLFLOAT16.bias <= DLFLOAT16.exp_all_ones - 1)
    a, b, e = a[ok][:n], b[ok][:n], e[ok][:n]
    acc = dl_code(rng.integers(0, 2, len(e)), e, rng.integers(0, 512, len(e)))
    return rows_of(acc, a, b, "fp8", fa, fb)


def fp8_directed(rng, fa, fb, bias) -> dict:
    src_a, src_b = source(fa, bias), source(fb, bias)
    parts = []

    def add(acc, a, b):
        acc, a, b = np.broadcast_arrays(np.asarray(acc, np.int64), np.asarray(a, np.int64),
                                        np.asarray(b, np.int64))
        parts.append(rows_of(acc.ravel(), a.ravel(), b.ravel(), "fp8", fa, fb))

    def specials(fmt):
        return [0x7F, 0xFF] if fmt == "e4m3" else [0x7C, 0xFC, 0x7D, 0x7E, 0x7F, 0xFF]

    max_a, max_b = src_a.max_code, src_b.max_code
    subs_a, subs_b = np.arange(1, 1 << src_a.man_bits), np.arange(1, 1 << src_b.man_bits)
    some_b = rng.integers(0, 256, 8)
    # Zeros of both signs against anything; an exact zero result is +0.
    add([[0], [0x8000], [0x1234]], [[0, 0x80, 0, 0x80]], [[0, 0, 0x80, 0x80]])
    add(0, np.array([0, 0x80])[:, None], some_b[None, :])
    # Subnormal operands (with both signs), alone and on an accumulator.
    sa = np.concatenate([subs_a, subs_a | 0x80])
    add(0, sa[:, None], np.array([subs_b[0], subs_b[-1], max_b])[None, :])
    add(rng.integers(0, 1 << 16, len(sa)), sa, rng.integers(0, 256, len(sa)))
    # The largest codes, and overflow: accumulators next to the largest dlfloat16.
    big = np.array([max_a, max_a | 0x80])
    add(0, big[:, None], np.array([max_b, max_b | 0x80])[None, :])
    near_max = np.concatenate([DL_MAX - np.arange(4), (DL_MAX - np.arange(4)) | 0x8000])
    add(near_max[:, None], big[None, :], np.array([max_b])[None, :])
    add(near_max, rng.integers(0, 256, len(near_max)), rng.integers(0, 256, len(near_max)))
    # Overflow by the rounding alone: the largest accumulators (both signs) plus half
    # their quantum (2**22) of the same sign, a tie that rounds away into the NaN code.
    every = np.arange(256)
    half = np.argwhere(products(every[:, None], every[None, :], fa, fb, bias) == 2.0 ** 22)
    if len(half):
        a_half, b_half = half[:4, 0], half[:4, 1]
        add(DL_MAX, a_half, b_half)
        add(DL_MAX | 0x8000, a_half ^ 0x80, b_half)
    # NaN and Inf operands and accumulators (zero times Inf included).
    for s in specials(fa):
        add([[0], [0x3E00]], s, [[0, 0x80, max_b, 0x38]])
    for s in specials(fb):
        add(0, [[0, 0x38, max_a]], s)
    add([[DL_NAN], [DL_NAN | 0x8000]], [[0, 0x38, max_a]], [[0, 0x38, max_b]])
    # Rounding ties, to nearest with ties away from zero.
    parts.append(tie_rows(rng, fa, fb, bias, 40))
    # Swamping: a large accumulator and a tiny product, and a tiny accumulator and a
    # large product (only the sticky bit of the smaller remains).
    n = 24
    small = rng.integers(1, 8, n) | (rng.integers(0, 2, n) << 7)
    add(dl_code(rng.integers(0, 2, n), rng.integers(10, 30, n), rng.integers(0, 512, n)),
        small, rng.integers(1, 16, n))
    add(dl_code(rng.integers(0, 2, n), rng.integers(-31, -20, n), rng.integers(0, 512, n)),
        rng.integers(0x50, max_a, n), rng.integers(0x50, max_b, n))
    # Cancellation: acc = -a*b exactly, and within a few quanta of it.
    a, b = rng.integers(0, 256, 3 * n), rng.integers(0, 256, 3 * n)
    p = np.nan_to_num(products(a, b, fa, fb, bias), nan=1.0)
    cancel = encode(-p, DLFLOAT16, rounding="rnu").astype(np.int64)
    cancel += np.repeat([0, 1, -1], n) * (cancel != 0)
    cancel = np.where((cancel & 0x7FFF) == DL_NAN, 0, cancel & 0xFFFF)
    add(cancel, a, b)
    # Underflow: products of subnormals, and results next to the smallest dlfloat16.
    add(0, rng.choice(sa, 48), rng.choice(np.concatenate([subs_b, subs_b | 0x80]), 48))
    add(rng.integers(0, 1 << 10, n) | (rng.integers(0, 2, n) << 15), rng.integers(0, 256, n),
        rng.integers(0, 256, n))
    return join(parts)


def int_directed(rng, mode) -> dict:
    """The extreme lanes (-8 x -8 sums to the largest product), on accumulators next to
    the two's complement wrap points."""
    lanes = (0x88, 0x77, 0x87, 0x78, 0x00, 0xFF, 0xAA, 0x55)
    a, b = np.meshgrid(lanes, lanes)
    wrap = np.array([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0, 0x7FFFFF80, 0x80000010])
    acc = wrap[rng.integers(0, len(wrap), a.size)]
    return rows_of(acc, a.ravel(), b.ravel(), mode, "e4m3", "e4m3")


def random_rows(rng, n, bias) -> dict:
    """Every mode and format pair mixed, changing every row, with accumulators of every
    kind: random codes (upper 16 bits too, which FP8 ignores), zeros, NaN/Inf, ones that
    nearly cancel the product, ones next to the overflow and next to the smallest value."""
    mode = np.array(Mode.labels())[rng.integers(0, len(Mode), n)]
    fa = np.array(FORMATS)[rng.integers(0, 2, n)]
    fb = np.array(FORMATS)[rng.integers(0, 2, n)]
    a = rng.integers(0, 256, n).astype(np.uint8)
    b = rng.integers(0, 256, n).astype(np.uint8)
    acc = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.int64)
    for f1, f2 in FORMAT_PAIRS:
        sel = (fa == f1) & (fb == f2) & (mode == "fp8")
        k = int(sel.sum())
        p = np.nan_to_num(products(a[sel], b[sel], f1, f2, bias), nan=1.0)
        cancel = encode(-p, DLFLOAT16, rounding="rnu").astype(np.int64) + rng.integers(-2, 3, k)
        kinds = [acc[sel], np.zeros(k, np.int64), np.full(k, DL_NAN),
                 np.clip(cancel, 0, 0xFFFE), DL_MAX - rng.integers(0, 3, k),
                 rng.integers(0, 1 << 10, k)]
        acc[sel] = np.choose(rng.integers(0, len(kinds), k), kinds)
    return {"acc": acc.astype(np.uint32), "a": a, "b": b, "mode": mode, "fmt_a": fa,
            "fmt_b": fb}


def golden_rows(rows, bias) -> np.ndarray:
    want = np.zeros(len(rows["a"]), np.uint32)
    for mode in Mode.labels():
        for fa, fb in FORMAT_PAIRS:
            sel = (rows["mode"] == mode) & (rows["fmt_a"] == fa) & (rows["fmt_b"] == fb)
            if sel.any():
                want[sel] = mpe(rows["acc"][sel], rows["a"][sel], rows["b"][sel], mode, fa, fb,
                                bias)
    return want


def describe_row(rows, got, want, bias):
    def describe(i):
        mode, fa, fb = rows["mode"][i], rows["fmt_a"][i], rows["fmt_b"][i]
        acc, a, b = int(rows["acc"][i]), int(rows["a"][i]), int(rows["b"][i])
        if mode != "fp8":
            return (f"mode={mode} acc=0x{acc:08x} a=0x{a:02x} b=0x{b:02x} "
                    f"rtl=0x{int(got[i]):08x} golden=0x{int(want[i]):08x}")
        return (f"mode=fp8 fmt_a={fa} fmt_b={fb} bias={bias} "
                f"acc={hex_and_value(acc & 0xFFFF, DLFLOAT16, digits=4)} (word 0x{acc:08x}) "
                f"a={hex_and_value(a, fa, bias if fa == 'e4m3' else None)} "
                f"b={hex_and_value(b, fb, bias if fb == 'e4m3' else None)} "
                f"rtl={hex_and_value(int(got[i]) & 0xFFFF, DLFLOAT16, digits=4)} "
                f"(word 0x{int(got[i]):08x}) "
                f"golden={hex_and_value(int(want[i]), DLFLOAT16, digits=4)}")
    return describe


def run_mpe(unit, rows, gaps=None, seed=0) -> np.ndarray:
    """The unit's acc_out for each row, taken ``unit.latency`` cycles after the row."""
    inputs = {"acc_in": rows["acc"], "a": rows["a"], "b": rows["b"],
              "mode": [Mode[m.upper()].value for m in rows["mode"]],
              "fmt_a": [SourceFormat[f.upper()].value for f in rows["fmt_a"]],
              "fmt_b": [SourceFormat[f.upper()].value for f in rows["fmt_b"]]}
    result = {}

    async def testbench(ctx):
        result.update(await stream_rows(ctx, unit, inputs, ["acc_out"], latency=unit.latency,
                                        gaps=gaps, seed=seed))

    simulate(unit, testbench)
    return result["acc_out"]


def check_mpe(unit, what, rows, gaps=None, seed=0) -> None:
    got = run_mpe(unit, rows, gaps, seed)
    want = golden_rows(rows, unit.bias)
    check(what, got, want, describe_row(rows, got, want, unit.bias))


def directed_rows(rng, bias) -> dict:
    parts = [fp8_directed(rng, fa, fb, bias) for fa, fb in FORMAT_PAIRS]
    return join(parts + [int_directed(rng, "int4"), int_directed(rng, "int2")])


def test_tie_rows_are_ties():
    """The directed tie rows do land halfway between two dlfloat16 codes."""
    rng = np.random.default_rng(0)
    for fa, fb in FORMAT_PAIRS:
        rows = tie_rows(rng, fa, fb, E4M3.bias, 40)
        total = (decode(rows["acc"].astype(np.uint16), DLFLOAT16)
                 + products(rows["a"], rows["b"], fa, fb, E4M3.bias))
        quantum = 2.0 ** (np.floor(np.log2(np.abs(total))) - DLFLOAT16.man_bits)
        assert np.mean(np.mod(total / quantum, 1) == 0.5) > 0.5, (fa, fb)


@pytest.mark.parametrize("bias,pipeline,multiplier", [
    (11, 2, "lut"), (15, 0, "lut"), (0, 6, "lut"), (11, 8, "dsp"), (15, 0, "dsp")])
def test_directed_and_random(bias, pipeline, multiplier):
    unit = MPE(bias=bias, pipeline=pipeline, multiplier=multiplier)
    assert unit.latency == pipeline
    rng = np.random.default_rng(100 + pipeline)
    rows = join([directed_rows(rng, bias), random_rows(rng, 600, bias)])
    # valid_in toggles: a quarter of the rows wait 1 or 2 idle cycles (not at depth 0).
    gaps = None if pipeline == 0 else np.where(rng.random(len(rows["a"])) < 0.25,
                                                rng.integers(1, 3, len(rows["a"])), 0)
    check_mpe(unit, f"mpe bias {bias} pipeline {pipeline} {multiplier}", rows, gaps,
              seed=pipeline)


@pytest.mark.parametrize("pipeline", [p for p in PIPELINE_CUTS if p not in (0, 2, 6)])
def test_every_other_depth(pipeline):
    unit = MPE(pipeline=pipeline)
    rng = np.random.default_rng(200 + pipeline)
    rows = random_rows(rng, 150, unit.bias)
    gaps = np.where(rng.random(150) < 0.3, 1, 0)
    check_mpe(unit, f"mpe pipeline {pipeline}", rows, gaps, seed=pipeline)


def test_a_one_lsb_error_is_caught():
    """An MPE whose result is one LSB off on about one row in sixteen (those whose low
    four bits should be 1011) fails the check."""
    unit = PlantedBug(MPE(pipeline=2), "acc_out", lambda u: u.acc_out[:4] == 0b1011)
    rows = random_rows(np.random.default_rng(5), 200, unit.bias)
    with pytest.raises(AssertionError, match=r"rows differ; first: mode=.* golden=0x[0-9a-f]*b"):
        check_mpe(unit, "mpe with a planted bug", rows)


def test_a_wrong_latency_is_caught():
    """A unit that claims one cycle more latency than it has fails on valid_out."""
    class LateMPE(MPE):
        latency = property(lambda self: self.pipeline + 1)

    rows = random_rows(np.random.default_rng(6), 20, E4M3.bias)
    with pytest.raises(AssertionError, match="cycle 2: valid_out is 1, expected 0"):
        check_mpe(LateMPE(pipeline=2), "mpe claiming latency 3", rows)
