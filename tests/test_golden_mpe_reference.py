"""Independent verification of golden's ``mpe`` and ``quant16`` against docs/numerics.md.

The references below are written from docs/numerics.md (Formats, Rounding, ``mpe``,
``quant16``) with exact ``fractions.Fraction`` arithmetic. They share no code with ``golden/``: operand and
accumulator codes are decoded by ``reference_fractions.Spec`` (the Styles table),
rounding into ``dlfloat16`` uses ``reference_fractions.round_direct`` (binade, quantum,
round the quotient; itself cross-checked against an enumerated grid in
``test_golden_reference.py``, and again here on every tie row against ``Grid``).

Golden is always called once per batch (numpy arrays); the reference runs row by row.
Rows exercised (fp8 mode, per operand-format / bias configuration):

* seeded random rows with accumulators drawn from a mix (zero, -0, random codes, NaN/Inf,
  near max, near min positive, near-cancellation of the product, same binade as the
  product), upper 16 accumulator bits randomly set;
* constructed exact ties (acc + a*b exactly halfway between two dlfloat16 neighbours),
  both signs, checked to round away from zero;
* the underflow region (results below min positive, rounding to 0 or to min positive);
* the overflow threshold (max finite, the midpoint to the NaN slot, beyond);
* NaN/Inf in every input position.

``int4``/``int2`` are checked on all 65536 (a, b) pairs against a vectorised lane
computation (itself cross-checked against the row reference), ``quant16`` on all 65536
inputs. A failure prints the rows in hex and decoded form.
"""

from __future__ import annotations

import bisect
import functools
import random
from fractions import Fraction

import numpy as np
import pytest

from golden.mpe import mpe
from golden.quant16 import quant16
from reference_fractions import (OVERFLOW, Grid, Spec, decode_int_ref, floor_log2, grid_tie, pow2,
                                 round_direct)

pytestmark = pytest.mark.quick

DL = Spec.of("dlfloat16")
DL_NAN = 0x7FFF
DL_SIGN = 0x8000
DL_MAX_MAG = 0x7FFE
DL_MAX = pow2(32) * (1 + Fraction(510, 512))
DL_MINPOS = pow2(-31) * (1 + Fraction(1, 512))
DL_NAN_SLOT = pow2(32) * (1 + Fraction(511, 512))
DL_THRESHOLD = (DL_MAX + DL_NAN_SLOT) / 2  # exact values >= this overflow under rnu

FMT_COMBOS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]
E4M3_BIASES = (11, 0, 15, 7)
FP8_CONFIGS = [(fa, fb, bias) for fa, fb in FMT_COMBOS
               for bias in (E4M3_BIASES if "e4m3" in (fa, fb) else (11,))]


def cfg_id(cfg):
    fa, fb, bias = cfg
    return f"{fa}x{fb}-b{bias}" if "e4m3" in (fa, fb) else f"{fa}x{fb}"


# Reference -------------------------------------------------------------------------------
def operand_spec(fmt: str, bias: int) -> Spec:
    """The ``bias`` parameter applies to ``e4m3`` only; ``e5m2`` always has bias 15."""
    return Spec.of(fmt, bias) if fmt == "e4m3" else Spec.of(fmt)


@functools.lru_cache(maxsize=None)
def operand_table(fmt: str, bias: int) -> tuple:
    """Exact value of every 8-bit code (None for NaN/Inf)."""
    spec = operand_spec(fmt, bias)
    return tuple(spec.signed_value(c) for c in range(256))


@functools.lru_cache(maxsize=None)
def dl_table() -> tuple:
    """Exact value of every dlfloat16 code (None for the NaN/Inf code 0x7FFF/0xFFFF)."""
    return tuple(DL.signed_value(c) for c in range(1 << 16))


@functools.lru_cache(maxsize=None)
def dl_grid() -> Grid:
    return Grid(DL)


def exact_sum(acc: int, a: int, b: int, fmt_a: str, fmt_b: str, bias: int):
    """acc + a*b exactly, or None if any input is NaN/Inf. Upper acc bits ignored."""
    va = operand_table(fmt_a, bias)[a]
    vb = operand_table(fmt_b, bias)[b]
    vacc = dl_table()[acc & 0xFFFF]
    if va is None or vb is None or vacc is None:
        return None
    return vacc + va * vb


def dl_rnu(x: Fraction) -> int:
    """Rounding: rnu into dlfloat16, overflow action NaN, dl zero is code 0."""
    if x == 0:
        return 0
    mag = round_direct(DL, abs(x), "rnu")
    if mag == OVERFLOW:
        return DL_NAN
    if mag == 0:
        return 0
    return (DL_SIGN if x < 0 else 0) | mag


def mpe_ref(acc: int, a: int, b: int, mode: str = "fp8", fmt_a: str = "e4m3",
            fmt_b: str = "e4m3", bias: int = 11) -> int:
    """``mpe`` for one row (Python ints in, int out)."""
    if mode in ("int4", "int2"):
        bits = 4 if mode == "int4" else 2
        mask = (1 << bits) - 1
        total = acc - (1 << 32) if acc >= 1 << 31 else acc
        for lane in range(8 // bits):
            ai = decode_int_ref(bits, (a >> (bits * lane)) & mask)
            bi = decode_int_ref(bits, (b >> (bits * lane)) & mask)
            total += ai * bi
        return total % (1 << 32)
    assert mode == "fp8"
    x = exact_sum(acc, a, b, fmt_a, fmt_b, bias)
    if x is None:
        return DL_NAN
    return dl_rnu(x)


def dl_is_tie(x: Fraction) -> bool:
    """Is |x| exactly halfway between two neighbouring dlfloat16 grid points?

    The grid has 0, then min positive (no value in between), then the binades of
    2^e * (1 + m/512), continuing above max through the NaN slot (unbounded exponent).
    """
    return grid_tie(x, 9, DL_MINPOS)


def dl_exact_code(x: Fraction):
    """The dlfloat16 code whose value is exactly x, or None if x is not representable."""
    if x == 0:
        return 0
    mag = round_direct(DL, abs(x), "rne")
    if mag in (OVERFLOW, 0):
        return None
    code = (DL_SIGN if x < 0 else 0) | mag
    return code if dl_table()[code] == x else None


def dl_codes_near(y: Fraction, spread: int):
    """Finite dlfloat16 codes within ``spread`` grid steps of y (same sign as y)."""
    mag = round_direct(DL, abs(y), "rne")
    if mag == OVERFLOW:
        mag = DL_MAX_MAG
    sign = DL_SIGN if y < 0 else 0
    return [sign | m for m in range(mag - spread, mag + spread + 1) if 1 <= m <= DL_MAX_MAG]


def quant16_ref(x: int, fmt: str = "e4m3", bias: int = 11, overflow: str = "sat") -> int:
    """``quant16`` for one dlfloat16 code."""
    m = x & 0x7FFF
    mag = round_quant_mag(m, fmt, bias) if 0 < m < 0x7FFF else None
    return quant16_mag_then_sign(x, fmt, bias, overflow, mag)


@functools.lru_cache(maxsize=None)
def target_grid(fmt: str, bias: int) -> Grid:
    return Grid(operand_spec(fmt, bias))


def round_quant_mag(xmag_code: int, fmt: str, bias: int) -> int:
    """rne of a dlfloat16 magnitude into the target: magnitude code or OVERFLOW."""
    v = dl_table()[xmag_code]
    assert v is not None and v > 0
    return target_grid(fmt, bias).round_mag(v, "rne")


def quant16_mag_then_sign(x: int, fmt: str, bias: int, overflow: str, mag) -> int:
    spec = operand_spec(fmt, bias)
    if (x & 0x7FFF) == 0x7FFF:  # dl NaN/Inf (sign ignored): canonical NaN
        return spec.canonical_nan
    if (x & 0x7FFF) == 0:  # dl zero, sign ignored: exact zero gives +0
        return 0
    neg = bool(x & DL_SIGN)
    sign = spec.sign_bit if neg else 0
    if mag == OVERFLOW:
        if overflow == "sat":
            return sign | spec.max_code
        return spec.inf_code(neg) if spec.style == "ieee" else spec.canonical_nan
    return sign | mag  # mag == 0: a nonzero value rounded to zero keeps its sign


# Failure messages --------------------------------------------------------------------------
def describe_dl(code: int) -> str:
    v = dl_table()[code & 0xFFFF]
    return "NaN/Inf" if v is None else repr(float(v))


def describe_op(fmt: str, bias: int, code: int) -> str:
    kind, s, mag = operand_spec(fmt, bias).value(code)
    sign = "-" if s else "+"
    return f"{fmt} {sign}{kind}" if kind != "num" else f"{fmt} {sign}{float(mag)!r}"


def row_text(acc, a, b, fa, fb, bias, exp, got) -> str:
    x = exact_sum(acc, a, b, fa, fb, bias)
    xs = "NaN/Inf input" if x is None else f"{float(x)!r} (= {x})"
    return (f"  acc=0x{acc:08X} [{describe_dl(acc)}] a=0x{a:02X} [{describe_op(fa, bias, a)}] "
            f"b=0x{b:02X} [{describe_op(fb, bias, b)}]: exact acc+a*b = {xs}; "
            f"expected 0x{exp:08X} [{describe_dl(exp)}], got 0x{got:08X} [{describe_dl(got)}]")


def run_fp8(rows, cfg, ctx: str, limit: int = 12):
    """Call golden once on the batch, compare with the reference row by row.

    Returns (expected list, exact-sum list) for the caller's coverage counts.
    """
    fa, fb, bias = cfg
    acc = np.array([r[0] for r in rows], dtype=np.uint32)
    a = np.array([r[1] for r in rows], dtype=np.uint8)
    b = np.array([r[2] for r in rows], dtype=np.uint8)
    got = np.asarray(mpe(acc, a, b, mode="fp8", fmt_a=fa, fmt_b=fb, bias=bias))
    assert got.shape == acc.shape, (got.shape, acc.shape)
    assert got.dtype == np.uint32, got.dtype
    exp = [mpe_ref(int(r[0]), int(r[1]), int(r[2]), "fp8", fa, fb, bias) for r in rows]
    exp_arr = np.array(exp, dtype=np.uint32)
    bad = np.flatnonzero(got != exp_arr)
    if bad.size:
        lines = [f"{ctx} [{cfg_id(cfg)}]: {bad.size} of {len(rows)} rows wrong"]
        for i in bad[:limit]:
            lines.append(row_text(int(acc[i]), int(a[i]), int(b[i]), fa, fb, bias,
                                  int(exp_arr[i]), int(got[i])))
        pytest.fail("\n".join(lines))
    sums = [exact_sum(int(r[0]), int(r[1]), int(r[2]), fa, fb, bias) for r in rows]
    return exp, sums


def low_bit(p: Fraction) -> int:
    """k with p = odd * 2^k (p nonzero, a dyadic rational)."""
    n, d = abs(p.numerator), p.denominator
    assert d & (d - 1) == 0
    return (n & -n).bit_length() - 1 - (d.bit_length() - 1)


def finite_pairs(cfg):
    """(a, b, a*b) for every pair of finite operand codes."""
    fa, fb, bias = cfg
    ta, tb = operand_table(fa, bias), operand_table(fb, bias)
    return [(a, b, ta[a] * tb[b]) for a in range(256) if ta[a] is not None
            for b in range(256) if tb[b] is not None]


# Reference self-checks ---------------------------------------------------------------------
def test_reference_constants_match_spec():
    assert DL.max_value == DL_MAX and DL.max_code == DL_MAX_MAG
    assert DL.min_positive == DL_MINPOS
    assert DL.overflow_point() == (DL_NAN_SLOT, 1)
    assert dl_table()[0x8000] == 0 and dl_table()[0] == 0
    assert dl_table()[0x7FFF] is None and dl_table()[0xFFFF] is None
    assert dl_table()[0x0001] == DL_MINPOS and dl_table()[0x3E00] == 1
    t11 = operand_table("e4m3", 11)
    assert t11[0x7E] == 28 and t11[0x01] == pow2(-13) and t11[0x08] == pow2(-10)
    assert t11[0x7F] is None and t11[0xFF] is None and t11[0x80] == 0
    t5 = operand_table("e5m2", 11)
    assert t5[0x7B] == 57344 and t5[0x01] == pow2(-16)
    assert all(t5[c] is None for c in (0x7C, 0x7D, 0x7E, 0x7F, 0xFC, 0xFD, 0xFE, 0xFF))
    # Hand-computed rows.
    assert mpe_ref(0x3E00, 0x38, 0x38, "fp8", "e4m3", "e4m3", 7) == 0x4000  # 1 + 1*1
    assert mpe_ref(0xBE00, 0x38, 0x38, "fp8", "e4m3", "e4m3", 7) == 0  # -1 + 1 = 0
    assert mpe_ref(0x7FFE, 0x3C, 0x3C, "fp8", "e5m2", "e5m2") == 0x7FFE  # max + 1
    assert mpe_ref(0xFFFF_3E00, 0x3C, 0x3C, "fp8", "e5m2", "e5m2") == 0x4000  # upper bits
    # e5m2 2^11 * 2^11 = 2^22: max + 2^22 is the midpoint to the NaN slot -> overflow.
    assert mpe_ref(0x7FFE, 0x68, 0x68, "fp8", "e5m2", "e5m2") == DL_NAN
    assert mpe_ref(0xFFFE, 0xE8, 0x68, "fp8", "e5m2", "e5m2") == DL_NAN
    # 2^-16 * 2^-16 = 2^-32 < minpos/2 -> 0; 2^-16 * 2^-15 = 2^-31 -> min positive.
    assert mpe_ref(0, 0x01, 0x01, "fp8", "e5m2", "e5m2") == 0
    assert mpe_ref(0, 0x01, 0x82, "fp8", "e5m2", "e5m2") == 0x8001
    assert mpe_ref(0, 0x01, 0x03, "fp8", "e5m2", "e5m2") == 0x0100  # 1.5*2^-31
    # e4m3 bias 15: 2^-17 * 3*2^-16 = 0.75*2^-31 -> minpos; 2^-17 * 2^-17 -> 0
    assert mpe_ref(0, 0x81, 0x03, "fp8", "e4m3", "e5m2", 15) == 0x8001
    assert mpe_ref(0, 0x81, 0x01, "fp8", "e4m3", "e4m3", 15) == 0
    # A tie: 1 + 2^-10 is halfway between 1 and 1 + 2^-9 -> rnu gives 1 + 2^-9.
    x = Fraction(1) + pow2(-10)
    assert dl_is_tie(x) and dl_rnu(x) == 0x3E01 and dl_rnu(-x) == 0xBE01
    assert dl_is_tie(DL_THRESHOLD) and dl_rnu(DL_THRESHOLD) == DL_NAN
    assert dl_rnu(DL_THRESHOLD - pow2(-40)) == DL_MAX_MAG
    assert dl_rnu(DL_MINPOS / 2) == 1 and dl_rnu(DL_MINPOS / 2 - pow2(-60)) == 0
    assert mpe_ref(0xFFFFFFFF, 0xFF, 0x11, "int4") == (-1 - 1 - 1) % (1 << 32)
    assert mpe_ref(0x7FFFFFFF, 0x01, 0x01, "int2") == 0x80000000
    assert quant16_ref(0x3E00, "e4m3", 11) == 0x58  # 1.0 = 2^0 -> e=11
    assert quant16_ref(0x7FFF, "e5m2") == 0x7F and quant16_ref(0xFFFF, "e4m3") == 0x7F
    assert quant16_ref(0x8000, "e4m3") == 0x00
    assert quant16_ref(0x8001, "e4m3", 11) == 0x80  # -tiny keeps its sign
    assert quant16_ref(0x7FFE, "e5m2", overflow="nan") == 0x7C
    assert quant16_ref(0xFFFE, "e5m2", overflow="sat") == 0xFB
    assert quant16_ref(0xFFFE, "e4m3", 11, overflow="nan") == 0x7F
    assert quant16_ref(0xFFFE, "e4m3", 11, overflow="sat") == 0xFE


def test_reference_detects_a_wrong_expectation(monkeypatch):
    """The comparison machinery can fail: feed it a deliberately wrong expectation."""
    cfg = ("e4m3", "e4m3", 7)
    rows = [(0x3E00, 0x38, 0x38), (0x3E00, 0x38, 0x40)]
    run_fp8(rows, cfg, "original")
    orig = dl_rnu
    monkeypatch.setitem(mpe_ref.__globals__, "dl_rnu", lambda x: orig(x) ^ 1)
    with pytest.raises(pytest.fail.Exception, match=r"2 of 2 rows wrong"):
        run_fp8(rows, cfg, "mutant")


# fp8: random rows --------------------------------------------------------------------------
ACC_KINDS = [("zero", 4), ("negzero", 3), ("random", 12), ("nan", 3), ("near_max", 8),
             ("near_min", 8), ("cancel", 25), ("same_binade", 37)]


def random_acc(rng: random.Random, kind: str, p):
    """A dlfloat16 accumulator code (low 16 bits) of the given kind; p = a*b or None."""
    if kind in ("cancel", "same_binade") and not p:
        kind = "random"
    sign = DL_SIGN if rng.random() < 0.5 else 0
    if kind == "zero":
        return 0
    if kind == "negzero":
        return 0x8000
    if kind == "random":
        return rng.randrange(1 << 16)
    if kind == "nan":
        return rng.choice((0x7FFF, 0xFFFF))
    if kind == "near_max":
        e = rng.choice((63, 63, 63, 62))
        return sign | (e << 9) | rng.randrange(480, 511 if e == 63 else 512)
    if kind == "near_min":
        e = rng.choice((0, 0, 0, 1, 2))
        m = rng.randrange(0, 8) if rng.random() < 0.7 else rng.randrange(512)
        return sign | (e << 9) | m
    if kind == "cancel":  # -p rounded into dl, then a few ulps either way
        near = dl_codes_near(-p, 3)
        return rng.choice(near) if near else 0
    # same_binade: exponent within a few binades of the product's, random mantissa/sign
    e = floor_log2(abs(p)) + rng.randint(-11, 11) + 31
    e = min(max(e, 0), 63)
    m = rng.randrange(512 if e < 63 else 511)
    return sign | (e << 9) | m


def gen_random_rows(cfg, n: int, seed: int):
    fa, fb, bias = cfg
    ta, tb = operand_table(fa, bias), operand_table(fb, bias)
    rng = random.Random(seed)
    kinds = [k for k, _ in ACC_KINDS]
    weights = [w for _, w in ACC_KINDS]
    rows = []
    for _ in range(n):
        a, b = rng.randrange(256), rng.randrange(256)
        va, vb = ta[a], tb[b]
        p = None if va is None or vb is None else va * vb
        acc = random_acc(rng, rng.choices(kinds, weights)[0], p)
        if rng.random() < 0.5:
            acc |= rng.randrange(1, 1 << 16) << 16  # ignored on input
        rows.append((acc, a, b))
    return rows


def coverage(rows, exp, sums, cfg):
    """Counts of what the rows exercised (by the reference's view of them)."""
    fa, fb, bias = cfg
    c = dict(special=0, overflow=0, exact_zero=0, underflow_to_zero=0, below_minpos=0,
             tie=0, inexact=0, cancellation=0, heavy_cancellation=0)
    for (acc, a, b), e, x in zip(rows, exp, sums):
        if x is None:
            c["special"] += 1
            continue
        if e == DL_NAN:
            c["overflow"] += 1
        if x == 0:
            c["exact_zero"] += 1
            continue
        if e == 0:
            c["underflow_to_zero"] += 1
        if abs(x) < DL_MINPOS:
            c["below_minpos"] += 1
        if dl_is_tie(x):
            c["tie"] += 1
        if e != DL_NAN and dl_table()[e] != x:
            c["inexact"] += 1
        vacc = dl_table()[acc & 0xFFFF]
        p = operand_table(fa, bias)[a] * operand_table(fb, bias)[b]
        if vacc and p and (vacc < 0) != (p < 0):
            c["cancellation"] += 1
            if abs(x) * 16 < min(abs(vacc), abs(p)):
                c["heavy_cancellation"] += 1
    return c


def n_random(cfg) -> int:
    """Rows per configuration: 20000 per operand-format combination at least."""
    return 10000 if "e4m3" in cfg[:2] else 20000


@pytest.mark.parametrize("cfg", FP8_CONFIGS, ids=cfg_id)
def test_fp8_random(cfg):
    seed = 1000 + FP8_CONFIGS.index(cfg)
    rows = gen_random_rows(cfg, n_random(cfg), seed)
    exp, sums = run_fp8(rows, cfg, "random rows")
    c = coverage(rows, exp, sums, cfg)
    print(f"\nrandom {cfg_id(cfg)}: {len(rows)} rows {c}")
    assert c["special"] >= 250 and c["exact_zero"] >= 250, c
    assert c["inexact"] >= 1500 and c["cancellation"] >= 2000, c
    assert c["heavy_cancellation"] >= 500, c


# fp8: exact ties ---------------------------------------------------------------------------
TIES_PER_CONFIG = 400


def gen_tie_rows(cfg, seed: int, want: int):
    """Rows with acc + a*b exactly halfway between two dlfloat16 neighbours.

    For p = a*b, pick a binade E and an odd multiple s = +-(2N+1) * 2^(E-10) of half the
    quantum there (N in 512..1023, so s is a midpoint of binade E), and acc = s - p. Keep
    the row if acc is a finite dlfloat16 value and the reference agrees s is a tie.
    """
    rng = random.Random(seed)
    pairs = [t for t in finite_pairs(cfg) if t[2] != 0]
    rng.shuffle(pairs)
    rows, pos, neg = [], 0, 0
    for a, b, p in pairs:
        lo_bit = low_bit(p)  # p = odd * 2^lo_bit
        top = floor_log2(abs(p))
        for E in range(top - 3, lo_bit + 11):
            if not -31 <= E <= 32 or rng.random() < 0.6:
                continue
            sgn = 1 if rng.random() < 0.5 else -1
            s = sgn * (2 * rng.randrange(512, 1024) + 1) * pow2(E - 10)
            acc = dl_exact_code(s - p)
            if acc is None or not dl_is_tie(s):
                continue
            rows.append((acc, a, b))
            pos += s > 0
            neg += s < 0
        if pos >= want and neg >= want:
            break
    return rows, pos, neg


@pytest.mark.parametrize("cfg", FP8_CONFIGS, ids=cfg_id)
def test_fp8_ties_round_away_from_zero(cfg):
    rows, pos, neg = gen_tie_rows(cfg, 2000 + FP8_CONFIGS.index(cfg), TIES_PER_CONFIG)
    print(f"\nties {cfg_id(cfg)}: {len(rows)} rows ({pos} positive, {neg} negative)")
    assert pos >= TIES_PER_CONFIG and neg >= TIES_PER_CONFIG, (pos, neg)
    exp, sums = run_fp8(rows, cfg, "tie rows")
    grid = dl_grid()
    for (acc, a, b), e, x in zip(rows, exp, sums):
        assert dl_is_tie(x)
        # Second oracle: nearest neighbour on the enumerated grid, ties up.
        mag = grid.round_mag(abs(x), "rnu")
        assert e == (DL_NAN if mag == OVERFLOW else (DL_SIGN if x < 0 else 0) | mag)
        # And spelled out: the result is the neighbour away from zero.
        if e != DL_NAN:
            v = dl_table()[e]
            assert (v > 0) == (x > 0) and abs(v) > abs(x), row_text(acc, a, b, *cfg, e, e)


# fp8: underflow region ---------------------------------------------------------------------
def test_underflow_half_min_positive_is_unreachable():
    """Exact ties at minpos/2 cannot be built from these operands: document why.

    Every dlfloat16 value is a multiple of 2^-40 (the quantum of the lowest binade) and
    every product is a multiple of 2^-34 (smallest subnormals: e4m3 bias 15 2^-17,
    e5m2 2^-16), so acc + a*b is a multiple of 2^-40; minpos/2 = 513 * 2^-41 is not.
    """
    assert all(v is None or (v / pow2(-40)).denominator == 1 for v in dl_table())
    for fmt, bias in [("e4m3", b) for b in range(16)] + [("e5m2", 15)]:
        assert all(v is None or (v / pow2(-17)).denominator == 1
                   for v in operand_table(fmt, bias))
    assert (DL_MINPOS / 2 / pow2(-40)).denominator == 2


SMALL_ACCS = ([0, 0x8000] + [s | m for s in (0, DL_SIGN) for m in range(1, 12)]
              + [s | (1 << 9) | m for s in (0, DL_SIGN) for m in (0, 1, 511)])


@pytest.mark.parametrize("cfg", [c for c in FP8_CONFIGS if c[2] in (15, 11)], ids=cfg_id)
def test_fp8_underflow(cfg):
    """Results below min positive: only 0 and min positive are candidates."""
    rng = random.Random(3000 + FP8_CONFIGS.index(cfg))
    rows = []
    pairs = finite_pairs(cfg)
    tiny = [t for t in pairs if t[2] != 0 and abs(t[2]) < pow2(-27)]
    small = [t for t in pairs if t[2] != 0 and abs(t[2]) < pow2(-10)]
    for a, b, p in rng.sample(tiny, min(len(tiny), 600)):
        rows += [(acc, a, b) for acc in SMALL_ACCS]
    for a, b, p in rng.sample(small, min(len(small), 1500)):
        # near-cancellation: -p rounded into dl, +-k ulps -> tiny residues
        rows += [(acc, a, b) for acc in dl_codes_near(-p, 2)]
    exp, sums = run_fp8(rows, cfg, "underflow rows")
    below = sum(1 for x in sums if x and abs(x) < DL_MINPOS)
    to_zero = sum(1 for e, x in zip(exp, sums) if x and e == 0)
    to_min = sum(1 for e, x in zip(exp, sums) if x and abs(x) < DL_MINPOS and e & 0x7FFF == 1)
    print(f"\nunderflow {cfg_id(cfg)}: {len(rows)} rows, {below} below minpos, "
          f"{to_zero} round to 0, {to_min} round up to minpos")
    assert to_zero >= 20, (below, to_zero, to_min)
    if cfg[2] == 15 or cfg[:2] == ("e5m2", "e5m2"):
        assert to_min >= 20, (below, to_zero, to_min)


# fp8: overflow threshold -------------------------------------------------------------------
@pytest.mark.parametrize("cfg", FP8_CONFIGS, ids=cfg_id)
def test_fp8_overflow_threshold(cfg):
    """acc + a*b around max finite, the rnu threshold (max + ulp/2) and the NaN slot."""
    rng = random.Random(4000 + FP8_CONFIGS.index(cfg))
    big = sorted((t for t in finite_pairs(cfg) if t[2] != 0), key=lambda t: -abs(t[2]))
    pick = big[:300] + rng.sample(big[300:], 300)  # the largest products, and any
    # p = odd * 2^22: max + 2^22 - p is on the grid, so acc + p can hit the threshold
    pick += [t for t in big[300:] if low_bit(t[2]) == 22]
    rows = []
    for a, b, p in pick:
        for sgn in (1, -1):
            target = sgn * DL_THRESHOLD
            rows += [(acc, a, b) for acc in dl_codes_near(target - p, 2)]
            rows.append((DL_MAX_MAG | (DL_SIGN if sgn < 0 else 0), a, b))
    exp, sums = run_fp8(rows, cfg, "overflow rows")
    over = sum(1 for e in exp if e == DL_NAN)
    at = sum(1 for x in sums if abs(x) == DL_THRESHOLD)
    between = sum(1 for x in sums if DL_MAX < abs(x) < DL_THRESHOLD)
    to_max = sum(1 for e in exp if e & 0x7FFF == DL_MAX_MAG)
    print(f"\noverflow {cfg_id(cfg)}: {len(rows)} rows, {over} overflow, {at} exactly at "
          f"threshold, {between} in (max, threshold), {to_max} give +-max")
    assert to_max >= 100
    if abs(big[0][2]) >= pow2(22):  # max + p can reach the threshold
        assert over >= 100 and at >= 4, (over, at)


# fp8: NaN / Inf inputs ---------------------------------------------------------------------
def special_codes(fmt: str, bias: int):
    return [c for c in range(256) if operand_table(fmt, bias)[c] is None]


@pytest.mark.parametrize("cfg", FP8_CONFIGS, ids=cfg_id)
def test_fp8_nan_inf_inputs(cfg):
    fa, fb, bias = cfg
    rng = random.Random(5000 + FP8_CONFIGS.index(cfg))
    rows = []
    accs = [0, 0x8000, 0x3E00, 0x7FFE, 0xFFFE, 0x0001]
    for sa in special_codes(fa, bias):
        rows += [(rng.choice(accs) | (rng.randrange(1 << 16) << 16), sa, b) for b in range(256)]
    for sb in special_codes(fb, bias):
        rows += [(rng.choice(accs), a, sb) for a in range(256)]
    rows += [(rng.choice(accs), sa, sb) for sa in special_codes(fa, bias)
             for sb in special_codes(fb, bias)]  # both operands special
    for nan in (0x7FFF, 0xFFFF, 0xABCD7FFF, 0x1234FFFF, 0xFFFFFFFF):
        rows += [(nan, rng.randrange(256), rng.randrange(256)) for _ in range(200)]
        rows += [(nan, 0, 0), (nan, 0x80, 0x80)]
    exp, sums = run_fp8(rows, cfg, "NaN/Inf rows")
    assert all(e == DL_NAN for e in exp)
    assert len(rows) > 1500


def test_fp8_acc_upper_bits_ignored():
    """Same rows with every upper-16-bit pattern class: identical, output upper bits 0."""
    cfg = ("e4m3", "e5m2", 11)
    rng = random.Random(6000)
    base = gen_random_rows(cfg, 2000, 6001)
    rows = []
    for acc, a, b in base:
        for up in (0, 0xFFFF, 0x8000, 0x0001, rng.randrange(1 << 16)):
            rows.append(((acc & 0xFFFF) | (up << 16), a, b))
    exp, _ = run_fp8(rows, cfg, "upper-bit rows")
    assert all(e < (1 << 16) for e in exp)


# int4 / int2 -------------------------------------------------------------------------------
def int_lanes_np(x: np.ndarray, bits: int) -> list:
    out = []
    for lane in range(8 // bits):
        v = (x.astype(np.int64) >> (bits * lane)) & ((1 << bits) - 1)
        out.append(np.where(v >= 1 << (bits - 1), v - (1 << bits), v))
    return out


def int_mac_np(acc: np.ndarray, a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    acc64 = acc.astype(np.int64)
    acc64 = np.where(acc64 >= 1 << 31, acc64 - (1 << 32), acc64)
    dot = sum(x * y for x, y in zip(int_lanes_np(a, bits), int_lanes_np(b, bits)))
    return ((acc64 + dot) % (1 << 32)).astype(np.uint32)


WRAP_ACCS = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x00000000, 0x7FFFFFF8, 0x80000007)


@pytest.mark.parametrize("mode", ["int4", "int2"])
def test_int_modes_all_pairs(mode):
    bits = 4 if mode == "int4" else 2
    rng = np.random.default_rng(7000 + bits)
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256)
    accs = [rng.integers(0, 1 << 32, size=a.size, dtype=np.uint64).astype(np.uint32)]
    accs += [np.full(a.size, w, dtype=np.uint32) for w in WRAP_ACCS]
    # accumulators within a few units of the int32 wrap-around, both directions
    accs.append((np.uint32(0x7FFFFFFF) + rng.integers(-8, 9, size=a.size)
                 .astype(np.int64).astype(np.uint32)).astype(np.uint32))
    accs.append((np.uint32(0x80000000) + rng.integers(-8, 9, size=a.size)
                 .astype(np.int64).astype(np.uint32)).astype(np.uint32))
    wrapped = 0
    pyrng = random.Random(bits)
    for acc in accs:
        got = np.asarray(mpe(acc, a, b, mode=mode))
        exp = int_mac_np(acc, a, b, bits)
        assert got.dtype == np.uint32 and got.shape == exp.shape
        bad = np.flatnonzero(got != exp)
        if bad.size:
            lines = [f"{mode}: {bad.size} of {a.size} rows wrong"]
            for i in bad[:12]:
                la = [int(v[i]) for v in int_lanes_np(a, bits)]
                lb = [int(v[i]) for v in int_lanes_np(b, bits)]
                lines.append(f"  acc=0x{int(acc[i]):08X} a=0x{int(a[i]):02X} lanes {la} "
                             f"b=0x{int(b[i]):02X} lanes {lb}: expected 0x{int(exp[i]):08X}, "
                             f"got 0x{int(got[i]):08X}")
            pytest.fail("\n".join(lines))
        # the vectorised computation against the row reference, on a sample
        for i in pyrng.sample(range(a.size), 300):
            assert int(exp[i]) == mpe_ref(int(acc[i]), int(a[i]), int(b[i]), mode)
        s_acc = acc.astype(np.int64) - (acc >= 1 << 31) * (1 << 32)
        s_out = exp.astype(np.int64) - (exp >= 1 << 31) * (1 << 32)
        dot = sum(x * y for x, y in zip(int_lanes_np(a, bits), int_lanes_np(b, bits)))
        wrapped += int(np.count_nonzero(s_out != s_acc + dot))
    assert wrapped > 1000, wrapped  # signed overflow (wrap-around) really happened


# quant16 -----------------------------------------------------------------------------------
QUANT_CASES = [("e4m3", 11), ("e4m3", 0), ("e4m3", 15), ("e5m2", 15)]


@pytest.mark.parametrize("fmt,bias", QUANT_CASES, ids=[f"{f}-b{b}" for f, b in QUANT_CASES])
def test_quant16_every_input(fmt, bias):
    x = np.arange(1 << 16, dtype=np.uint16)
    mags = {}
    for m in range(1, 0x7FFF):  # rounding depends on the magnitude only
        mags[m] = round_quant_mag(m, fmt, bias)
    for overflow in ("sat", "nan"):
        got = np.asarray(quant16(x, fmt=fmt, bias=bias, overflow=overflow))
        assert got.dtype == np.uint8 and got.shape == x.shape
        exp = np.array([quant16_mag_then_sign(c, fmt, bias, overflow, mags.get(c & 0x7FFF))
                        for c in range(1 << 16)], dtype=np.uint8)
        bad = np.flatnonzero(got != exp)
        if bad.size:
            lines = [f"quant16 {fmt} bias {bias} overflow={overflow}: {bad.size} of 65536 wrong"]
            for i in bad[:12]:
                lines.append(f"  x=0x{i:04X} [{describe_dl(i)}]: expected 0x{exp[i]:02X} "
                             f"[{describe_op(fmt, bias, int(exp[i]))}], got 0x{got[i]:02X} "
                             f"[{describe_op(fmt, bias, int(got[i]))}]")
            pytest.fail("\n".join(lines))
        # spot-check the split computation against the one-row reference
        for c in (0, 0x8000, 0x7FFF, 0xFFFF, 0x0001, 0x8001, 0x7FFE, 0xFFFE, 0x3E00, 0xBE01):
            assert exp[c] == quant16_ref(c, fmt, bias, overflow)
    n_over = sum(1 for v in mags.values() if v == OVERFLOW)
    n_zero = sum(1 for v in mags.values() if v == 0)
    ties = sum(1 for m in range(1, 0x7FFF) if _is_target_tie(fmt, bias, dl_table()[m]))
    print(f"\nquant16 {fmt}-b{bias}: {n_over} overflowing magnitudes, {n_zero} rounding to 0, "
          f"{ties} ties")
    assert ties > 0


def _is_target_tie(fmt: str, bias: int, v: Fraction) -> bool:
    vals = target_grid(fmt, bias).values
    i = bisect.bisect_left(vals, v)
    return 0 < i < len(vals) and vals[i] != v and 2 * v == vals[i - 1] + vals[i]
