"""Independent checks of golden's ``fmatree``/``dot`` and ``quant30`` (docs/numerics.md).

The references below are written from docs/numerics.md (Formats, Rounding, ``fmatree``,
``quant30``) with exact ``fractions.Fraction`` arithmetic and share no code with ``golden/``:

* operand values come from ``reference_fractions.Spec`` (the Styles table for
  ``fp8seb`` and ``fp30``);
* the stage-1 integer T is computed twice per row: from the exact decoded values,
  T = sum(a_i * b_i) * 2^(4 + bias_a + bias_b) (asserted to be an integer), and from the
  contract's S / e' formula; both must agree;
* rounding into ``fp30`` uses ``reference_fractions.round_direct`` (binade, quantum, round
  the quotient), into ``fp8seb`` the enumerated ``reference_fractions.Grid`` (cross-checked
  against ``round_direct`` here).

Golden is called once per batch; the reference runs row by row and a failure prints the
offending rows in hex and decoded. Rows exercised:

* seeded random vectors at ways 24, 1, 2, 7 and 64, biases over all of -32..31 (half
  uniform, half aimed so that v lands near or just outside fp30's range), accumulators
  over the whole fp30 range (random codes, both zeros, both NaN codes, near max, near min
  positive, near -t, t's binade, t around acc's half ulp);
* directed: swamping (with known answers), exact cancellation (acc = -t, T = 0), stage-1
  and stage-2 saturation (including a saturated t cancelled by acc = -max, which only two
  roundings give as 0), all-subnormal operands, the largest |T|, NaN accumulators,
  constructed exact ties in both stages (asserted: >= 400 and >= 550, both directions),
  and sums falling in the dl gap between 0 and min positive;
* every (a, b) pair in one way (position varying) at six bias pairs, acc 0 / -0 / random;
* ``tree_width``, ``dot`` for K in 1..300, ``quant30`` / ``max_exponent`` / ``next_bias``.

The all-pairs sweep (65,536 (a, b) pairs per bias pair) uses a vectorised float64
computation that is exact for its ranges (see ``pair_products``) plus a Python-integer
fp30 rounder (``fp30_round_scaled``), both cross-checked against the Fraction reference.
"""

from __future__ import annotations

import bisect
import functools
import random
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pytest

from golden.fmatree import DEFAULT_WAYS, dot, fmatree, tree_sum, tree_width
from golden.quant30 import max_exponent, next_bias, quant30
from reference_fractions import OVERFLOW, Grid, Spec, floor_log2, grid_tie, pow2, round_direct

pytestmark = pytest.mark.quick

# Constants from docs/numerics.md, Formats (checked against Spec in test_reference_constants) --
FP30 = Spec.of("fp30")
FP30_NAN = 0x1FFFFFFF
FP30_NAN_CODES = (0x1FFFFFFF, 0x3FFFFFFF)  # dl: the sign is ignored on the NaN code
FP30_SIGN = 1 << 29
FP30_NEG_ZERO = FP30_SIGN
FP30_MAX_MAG = 0x1FFFFFFE
FP30_MAX = pow2(32) * (2 - pow2(-22))
FP30_MINPOS = pow2(-31) * (1 + pow2(-23))
SEB_MAX_MAG = 0x7F
BIASES = range(-32, 32)
WAYS = 24
assert DEFAULT_WAYS == WAYS


def extreme_T(ways: int) -> int:
    """max |T|: every way 0x7F x 0x7F, S = 15, e' = 15: 15 * 15 * 2^28."""
    return ways * 225 * (1 << 28)


# Operand decoding ------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def seb_spec(bias: int) -> Spec:
    return Spec.of("fp8seb", bias)


@functools.lru_cache(maxsize=None)
def seb_table(bias: int) -> tuple:
    """Exact value of every fp8seb code at this bias (all finite)."""
    return tuple(seb_spec(bias).signed_value(c) for c in range(256))


@functools.lru_cache(maxsize=None)
def seb_grid(bias: int) -> Grid:
    return Grid(seb_spec(bias))


def seb_fields(code: int) -> tuple[int, int, int]:
    """``fmatree``: (sign, S, e') with S = m + (8 if e != 0 else 0), e' = max(e, 1)."""
    s, e, m = code >> 7, (code >> 3) & 15, code & 7
    return s, m + (8 if e else 0), max(e, 1)


def fp30_value(code: int):
    """Exact value of a 30-bit fp30 code, None for the NaN code."""
    assert 0 <= code < 1 << 30, hex(code)
    return FP30.signed_value(code)


def fp30_rne_sat(x: Fraction) -> tuple[int, bool]:
    """Rounding: rne into fp30, overflow saturates, dl zero is code 0. (code, saturated)."""
    if x == 0:
        return 0, False
    mag = round_direct(FP30, abs(x), "rne")
    if mag == OVERFLOW:
        return (FP30_SIGN if x < 0 else 0) | FP30_MAX_MAG, True
    if mag == 0:
        return 0, False
    return (FP30_SIGN if x < 0 else 0) | mag, False


def fp30_is_tie(x: Fraction) -> bool:
    """Is |x| exactly halfway between two neighbouring fp30 grid points (below max)?"""
    return grid_tie(x, 23, FP30_MINPOS, FP30_MAX)


def fp30_exact_code(x: Fraction):
    """The fp30 code whose value is exactly x, or None."""
    code, sat = fp30_rne_sat(x)
    if sat:
        return None
    return code if fp30_value(code) == x else None


# References ------------------------------------------------------------------------------
def tree_T_ref(a_row, b_row, bias_a: int, bias_b: int) -> int:
    """Stage 1 exactly, two ways (decoded values, and the S/e' formula), which must agree."""
    ta, tb = seb_table(bias_a), seb_table(bias_b)
    exact = sum((ta[x] * tb[y] for x, y in zip(a_row, b_row)), Fraction(0))
    scaled = exact * pow2(4 + bias_a + bias_b)
    assert scaled.denominator == 1, ("T not an integer", a_row, b_row, bias_a, bias_b)
    T = 0
    for x, y in zip(a_row, b_row):
        sx, Sx, ex = seb_fields(x)
        sy, Sy, ey = seb_fields(y)
        p = (Sx * Sy) << (ex + ey - 2)
        T += -p if sx ^ sy else p
    assert T == scaled.numerator, (T, scaled)
    return T


class Trace(NamedTuple):
    code: int
    T: int
    v: Fraction
    t_code: int
    sat1: bool
    total: Fraction | None  # acc + t, None for a NaN acc
    sat2: bool
    tie1: bool
    tie2: bool


def fmatree_trace(acc: int, a_row, b_row, bias_a: int, bias_b: int) -> Trace:
    """``fmatree`` for one row, with the intermediate values for coverage counts."""
    T = tree_T_ref(a_row, b_row, bias_a, bias_b)
    v = T * pow2(-4 - bias_a - bias_b)
    t_code, sat1 = fp30_rne_sat(v)
    acc_val = fp30_value(acc)
    if acc_val is None:
        return Trace(FP30_NAN, T, v, t_code, sat1, None, False, fp30_is_tie(v), False)
    total = acc_val + fp30_value(t_code)
    code, sat2 = fp30_rne_sat(total)
    return Trace(code, T, v, t_code, sat1, total, sat2, fp30_is_tie(v), fp30_is_tie(total))


def fmatree_ref(acc: int, a_row, b_row, bias_a: int, bias_b: int) -> int:
    return fmatree_trace(acc, a_row, b_row, bias_a, bias_b).code


def dot_ref(a_row, b_row, bias_a: int, bias_b: int, ways: int = WAYS, acc: int = 0) -> int:
    """Chunks of ``ways`` products in ascending k, the last one zero-padded, folded."""
    K = len(a_row)
    assert K == len(b_row) and K >= 1
    for k0 in range(0, K, ways):
        ca = list(a_row[k0:k0 + ways])
        cb = list(b_row[k0:k0 + ways])
        pad = ways - len(ca)
        acc = fmatree_ref(acc, ca + [0] * pad, cb + [0] * pad, bias_a, bias_b)
    return acc


def quant30_ref(x: int, bias: int) -> int:
    """``quant30``: rne into fp8seb (bias), saturating; NaN -> +max; zero -> 0x00."""
    val = fp30_value(x)
    if val is None:
        return SEB_MAX_MAG
    if val == 0:
        return 0
    sign = 0x80 if val < 0 else 0
    mag = seb_grid(bias).round_mag(abs(val), "rne")
    if mag == OVERFLOW:
        return sign | SEB_MAX_MAG
    return sign | mag  # mag 0: a nonzero value rounded to zero keeps its sign


def max_exponent_ref(codes):
    exps = [floor_log2(abs(v)) for v in map(fp30_value, codes) if v is not None and v != 0]
    return max(exps) if exps else None


def next_bias_ref(bias: int, max_exp, room: int = 1) -> int:
    if max_exp is None:
        return bias
    top = 15 - bias
    if max_exp > top - room:
        nb = bias - 1
    elif max_exp < top - room:
        nb = bias + 1
    else:
        nb = bias
    return min(31, max(-32, nb))


# Failure messages ------------------------------------------------------------------------
def describe30(code: int) -> str:
    if not 0 <= code < 1 << 30:
        return "out of 30 bits"
    v = fp30_value(code)
    return "NaN" if v is None else repr(float(v))


def describe_seb(code: int, bias: int) -> str:
    return f"{code:02X}={float(seb_table(bias)[code]):g}"


def fmatree_row_text(row, exp: int, got: int) -> str:
    acc, a_row, b_row, ba, bb = row
    tr = fmatree_trace(acc, a_row, b_row, ba, bb)
    a_txt = " ".join(describe_seb(c, ba) for c in a_row)
    b_txt = " ".join(describe_seb(c, bb) for c in b_row)
    total = "n/a (NaN acc)" if tr.total is None else f"{float(tr.total)!r}"
    return (f"  acc=0x{acc:08X} [{describe30(acc)}] bias_a={ba} bias_b={bb}\n"
            f"    a=[{a_txt}]\n    b=[{b_txt}]\n"
            f"    T={tr.T} v={float(tr.v)!r} t=0x{tr.t_code:08X} [{describe30(tr.t_code)}] "
            f"acc+t={total}\n"
            f"    expected 0x{exp:08X} [{describe30(exp)}], got 0x{got:08X} [{describe30(got)}]")


def report(ctx: str, got, exp, text, limit: int = 8):
    """Fail with the first ``limit`` mismatching rows, ``text(i)`` describing row i."""
    got = np.asarray(got)
    exp = np.asarray(exp)
    assert got.shape == exp.shape, (ctx, got.shape, exp.shape)
    bad = np.flatnonzero(got != exp)
    if bad.size:
        lines = [f"{ctx}: {bad.size} of {exp.size} rows wrong"]
        lines += [text(int(i)) for i in bad[:limit]]
        pytest.fail("\n".join(lines))


def as_arrays(rows):
    acc = np.array([r[0] for r in rows], dtype=np.uint32)
    a = np.array([r[1] for r in rows], dtype=np.uint8)
    b = np.array([r[2] for r in rows], dtype=np.uint8)
    ba = np.array([r[3] for r in rows], dtype=np.int8)
    bb = np.array([r[4] for r in rows], dtype=np.int8)
    return acc, a, b, ba, bb


def check_fmatree_rows(rows, ctx: str) -> list[Trace]:
    """Golden once on the batch (per-row biases), tree_sum too; reference row by row."""
    acc, a, b, ba, bb = as_arrays(rows)
    n, ways = a.shape
    got = np.asarray(fmatree(acc, a, b, ba, bb))
    assert got.dtype == np.uint32 and got.shape == (n,), (got.dtype, got.shape)
    traces = [fmatree_trace(*r) for r in rows]
    T_got = np.asarray(tree_sum(a, b))
    assert T_got.dtype == np.int64 and T_got.shape == (n,), (T_got.dtype, T_got.shape)
    T_exp = np.array([tr.T for tr in traces], dtype=np.int64)
    report(f"{ctx}: tree_sum", T_got, T_exp,
           lambda i: f"  row {i}: a={bytes(a[i]).hex()} b={bytes(b[i]).hex()} "
                     f"T expected {T_exp[i]}, got {T_got[i]}")
    exp = np.array([tr.code for tr in traces], dtype=np.uint32)
    report(ctx, got, exp, lambda i: fmatree_row_text(rows[i], int(exp[i]), int(got[i])))
    return traces


# Building rows ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def product_table():
    """Sorted positive single-product values S_a S_b 2^(e'a+e'b-2), each with its pairs."""
    by_value: dict[int, list] = {}
    for x in range(128):
        for y in range(128):
            _, Sx, ex = seb_fields(x)
            _, Sy, ey = seb_fields(y)
            p = (Sx * Sy) << (ex + ey - 2)
            if p:
                by_value.setdefault(p, []).append((x, y))
    vals = sorted(by_value)
    return vals, [by_value[v] for v in vals]


def decompose(T: int, rng: random.Random, limit: int):
    """Signed (a, b) pairs whose products sum to T (greedy), or None if more than limit."""
    vals, pairs = product_table()
    R, out = abs(T), []
    while R:
        i = bisect.bisect_right(vals, R) - 1
        if i > 3 and rng.random() < 0.25:  # sometimes a smaller product, for variety
            i -= rng.randint(1, 3)
        out.append(rng.choice(pairs[i]))
        R -= vals[i]
        if len(out) > limit:
            return None
    # the sign: flip a or b for a negative product, both (or none) for a positive one
    neg = T < 0
    signed = []
    for x, y in out:
        if neg:
            signed.append((x | 0x80, y) if rng.random() < 0.5 else (x, y | 0x80))
        else:
            signed.append((x | 0x80, y | 0x80) if rng.random() < 0.3 else (x, y))
    return signed


def tree_for_T(T: int, ways: int, rng: random.Random):
    """a_row, b_row with tree sum exactly T (spare ways: zeros, signed zeros, cancelling pairs)."""
    for _ in range(20):
        prods = decompose(T, rng, ways)
        if prods is not None:
            break
    else:
        raise AssertionError(f"cannot decompose T={T} in {ways} ways")
    spare = ways - len(prods)
    while spare:
        r = rng.random()
        if spare >= 2 and r < 0.3:
            x, y = rng.randrange(256), rng.randrange(256)
            prods += [(x, y), (x ^ 0x80, y)]  # p + (-p) = 0
            spare -= 2
        elif r < 0.6:
            prods.append((rng.choice((0x00, 0x80)), rng.randrange(256)))  # +-0 * b
            spare -= 1
        else:
            prods.append((rng.randrange(256), rng.choice((0x00, 0x80))))
            spare -= 1
    rng.shuffle(prods)
    return [p[0] for p in prods], [p[1] for p in prods]


def split_bias(total: int, rng: random.Random) -> tuple[int, int]:
    """bias_a + bias_b == total with both in -32..31."""
    assert -64 <= total <= 62
    ba = rng.randint(max(-32, total - 31), min(31, total + 32))
    return ba, total - ba


def tree_for_value(x: Fraction, ways: int, rng: random.Random):
    """(a_row, b_row, bias_a, bias_b) whose stage-1 value v is exactly x (x fp30-exact)."""
    if x == 0:
        return [0] * ways, [0] * ways, *split_bias(rng.randint(-64, 62), rng)
    low = floor_log2(abs(x)) - 23  # x is a multiple of 2^low (24 significant bits)
    while (x / pow2(low)).denominator != 1:
        low += 1
    top = floor_log2(abs(x))
    # T = x 2^(4+s) integer: 4 + s + low >= 0; |T| below ~2^37: top + 4 + s <= 36
    lo, hi = max(-64, -4 - low), min(62, 32 - top)
    assert lo <= hi, (x, lo, hi)
    s = rng.randint(lo, hi)
    T = x * pow2(4 + s)
    assert T.denominator == 1
    a_row, b_row = tree_for_T(T.numerator, ways, rng)
    return a_row, b_row, *split_bias(s, rng)


def random_fp30(rng: random.Random, e_lo: int = 0, e_hi: int = 63, neg=None) -> int:
    """A finite fp30 code with biased exponent in e_lo..e_hi, never NaN."""
    while True:
        e = rng.randint(e_lo, e_hi)
        m = rng.randrange(1 << 23)
        s = rng.randrange(2) if neg is None else int(neg)
        code = (s << 29) | (e << 23) | m
        if code & 0x1FFFFFFF != FP30_NAN and code & 0x1FFFFFFF:
            return code


def random_operands(rng: random.Random, ways: int):
    style = rng.random()
    if style < 0.35:  # anything
        a = [rng.randrange(256) for _ in range(ways)]
        b = [rng.randrange(256) for _ in range(ways)]
    elif style < 0.55:  # a narrow exponent window
        e0 = rng.randint(0, 12)
        mk = lambda: (rng.randrange(2) << 7) | (rng.randint(e0, e0 + 3) << 3) | rng.randrange(8)
        a = [mk() for _ in range(ways)]
        b = [mk() for _ in range(ways)]
    elif style < 0.7:  # subnormals and zeros only
        a = [rng.randrange(2) << 7 | rng.randrange(8) for _ in range(ways)]
        b = [rng.randrange(2) << 7 | rng.randrange(8) for _ in range(ways)]
    elif style < 0.85:  # sparse
        a = [rng.randrange(256) if rng.random() < 0.2 else rng.choice((0, 0x80))
             for _ in range(ways)]
        b = [rng.randrange(256) for _ in range(ways)]
    else:  # near cancellation: products in +- pairs, one perturbed
        a = [rng.randrange(256) for _ in range(ways)]
        b = [rng.randrange(256) for _ in range(ways)]
        for i in range(0, ways - 1, 2):
            a[i + 1], b[i + 1] = a[i] ^ 0x80, b[i]
        if rng.random() < 0.5:
            j = rng.randrange(ways)
            a[j] = (a[j] & 0xF8) | rng.randrange(8)
    return a, b


def random_biases(rng: random.Random, T: int) -> tuple[int, int]:
    """Uniform over the whole range half the time, else aimed to put v near fp30's range."""
    if T == 0 or rng.random() < 0.45:
        return rng.randint(-32, 31), rng.randint(-32, 31)
    msb = abs(T).bit_length() - 1
    target = rng.randint(-36, 36)  # exponent of v, a few binades past each end
    s = max(-64, min(62, msb - 4 - target))
    return split_bias(s, rng)


def random_acc(rng: random.Random, t_code: int) -> int:
    """An accumulator from across the whole fp30 range, often related to t."""
    r = rng.random()
    t_e = (t_code >> 23) & 63
    if r < 0.25:
        return rng.randrange(1 << 30)  # any code (NaN included, rarely)
    if r < 0.32:
        return rng.choice((0, FP30_NEG_ZERO, *FP30_NAN_CODES))
    if r < 0.40:  # near max
        return rng.randrange(2) << 29 | (FP30_MAX_MAG - rng.randrange(4))
    if r < 0.48:  # near min positive
        return rng.randrange(2) << 29 | (1 + rng.randrange(4))
    if t_code & 0x1FFFFFFF == 0:
        return random_fp30(rng)
    if r < 0.62:  # near -t: (near) cancellation
        mag = t_code & 0x1FFFFFFF
        mag = max(1, min(FP30_MAX_MAG, mag + rng.randint(-3, 3)))
        return (t_code ^ FP30_SIGN) & FP30_SIGN | mag
    if r < 0.80:  # same binade as t
        return random_fp30(rng, t_e, t_e)
    d = rng.choice((-1, 1)) * rng.randint(18, 30)  # t around acc's half ulp, or vice versa
    e = max(0, min(63, t_e + d))
    return random_fp30(rng, e, e)


def random_rows(rng: random.Random, n: int, ways: int):
    rows = []
    for _ in range(n):
        a, b = random_operands(rng, ways)
        T = sum((-1) ** (x >> 7 ^ y >> 7) * (seb_fields(x)[1] * seb_fields(y)[1]
                << (seb_fields(x)[2] + seb_fields(y)[2] - 2)) for x, y in zip(a, b))
        ba, bb = random_biases(rng, T)
        t_code, _ = fp30_rne_sat(T * pow2(-4 - ba - bb))
        rows.append((random_acc(rng, t_code), a, b, ba, bb))
    return rows


# Reference self-checks -------------------------------------------------------------------
def test_reference_constants():
    assert FP30.max_code == FP30_MAX_MAG and FP30.max_value == FP30_MAX
    assert FP30.min_positive == FP30_MINPOS and FP30.canonical_nan == FP30_NAN
    assert fp30_value(0x3FFFFFFF) is None and fp30_value(FP30_NEG_ZERO) == 0
    for bias in BIASES:
        spec = seb_spec(bias)
        assert spec.max_code == SEB_MAX_MAG
        assert spec.max_value == pow2(15 - bias) * Fraction(15, 8)
        assert spec.min_positive == pow2(-2 - bias)
        # value = (-1)^s S 2^(e' - bias - 3), the identity behind stage 1
        for c in range(256):
            s, S, e1 = seb_fields(c)
            assert seb_table(bias)[c] == (-1) ** s * S * pow2(e1 - bias - 3)
    assert extreme_T(24) < 1 << 41  # docs/numerics.md, fmatree


def test_reference_seb_grid_matches_round_direct():
    """The enumerated fp8seb grid and the binade/quantum rounder agree (rne)."""
    rng = random.Random(11)
    for bias in (-32, -5, 0, 13, 31):
        spec, grid = seb_spec(bias), seb_grid(bias)
        pts = [v for v in grid.values]
        xs = pts + [(p + q) / 2 for p, q in zip(pts, pts[1:])]
        xs += [pts[-1] * rng.uniform(0.0, 1.2) for _ in range(300)]
        for x in xs:
            x = abs(Fraction(x))
            if x:
                assert grid.round_mag(x, "rne") == round_direct(spec, x, "rne"), (bias, x)


def fp30_round_scaled(n: int, k: int) -> int:
    """Fast Python-int fp30 rne_sat of n * 2^-k (k >= 0); used by the all-pairs sweep only.

    Cross-checked against ``round_direct`` by ``test_reference_fast_rounder``.
    """
    assert k >= 0
    if n == 0:
        return 0
    sign = FP30_SIGN if n < 0 else 0
    a = abs(n)
    if a << 54 < ((1 << 23) + 1) << k:  # below min positive (2^23+1) 2^-54: 0 or minpos
        return sign | 1 if a << 55 > ((1 << 23) + 1) << k else 0  # tie -> 0 (even)
    sh = a.bit_length() - 24
    if sh > 0:
        q, r, half = a >> sh, a & ((1 << sh) - 1), 1 << (sh - 1)
        if r > half or (r == half and q & 1):
            q += 1
            if q == 1 << 24:
                q, sh = q >> 1, sh + 1
    else:
        q = a << -sh
    e = sh + 23 - k  # value q 2^(sh-k), q in [2^23, 2^24)
    if e > 32 or (e == 32 and q - (1 << 23) > FP30_MAX_MAG & 0x7FFFFF):
        return sign | FP30_MAX_MAG
    return sign | ((e + 31) << 23) | (q - (1 << 23))


def test_reference_fast_rounder():
    rng = random.Random(5)
    ns = [rng.randrange(1, 1 << rng.randint(1, 100)) for _ in range(4000)]
    minpos_n = (1 << 23) + 1  # minpos, max and the NaN slot in units of 2^-54
    max_n = ((1 << 24) - 2) << 63
    ns += [minpos_n, minpos_n - 1, minpos_n + 1, 1 << 22, (1 << 22) + 1]
    ns += [max_n + d for d in range(-1 << 63, 1 << 64, 1 << 61)]
    for base in (rng.randrange(1 << 24, 1 << 25) for _ in range(500)):  # ties and neighbours
        sh = rng.randint(1, 60)
        ns += [(base << sh) + (1 << (sh - 1)) + d for d in (-1, 0, 1)]
    for n in ns:
        for k in (54, 70):
            sgn = rng.choice((1, -1))
            exp_code, _ = fp30_rne_sat(Fraction(sgn * n, 1 << k))
            assert fp30_round_scaled(sgn * n, k) == exp_code, (n, k)


def test_decompose_builds_exact_trees():
    rng = random.Random(3)
    for T in [1, -1, 2, 15, 17, 225 << 28, -(225 << 28)] + \
             [rng.randrange(-(1 << 36), 1 << 36) for _ in range(300)]:
        a_row, b_row = tree_for_T(T, WAYS, rng)
        assert tree_T_ref(a_row, b_row, rng.randint(-32, 31), rng.randint(-32, 31)) == T


# fmatree: random vectors -----------------------------------------------------------------
@pytest.mark.parametrize("ways,n,seed", [(24, 2200, 1), (24, 2200, 2), (1, 2000, 3),
                                         (2, 2000, 4), (7, 1500, 5), (64, 600, 6)])
def test_fmatree_random(ways, n, seed):
    rng = random.Random(seed)
    rows = random_rows(rng, n, ways)
    traces = check_fmatree_rows(rows, f"random ways={ways} seed={seed}")
    # the data must actually reach the interesting regions
    assert sum(tr.sat1 for tr in traces) > n // 50
    assert sum(tr.total is not None and 0 < abs(tr.total) < FP30_MINPOS for tr in traces) + \
        sum(0 < abs(tr.v) < FP30_MINPOS for tr in traces) > 5
    assert sum(tr.total == 0 and tr.T != 0 for tr in traces) > 5  # acc = -t cancellations
    assert sum(tr.code == FP30_NAN for tr in traces) > 5
    biases = {r[3] for r in rows} | {r[4] for r in rows}
    assert biases == set(BIASES)


def test_fmatree_scalar_biases():
    """Scalar biases give the same bits as per-row arrays (and as the reference)."""
    rng = random.Random(7)
    for ba, bb in ((-32, -32), (31, 31), (0, 0), (-32, 31), (5, -9)):
        rows = [(random_fp30(rng), *random_operands(rng, WAYS), ba, bb) for _ in range(120)]
        acc, a, b, _, _ = as_arrays(rows)
        got = np.asarray(fmatree(acc, a, b, ba, bb))
        exp = np.array([fmatree_ref(*r) for r in rows], dtype=np.uint32)
        report(f"scalar biases ({ba}, {bb})", got, exp,
               lambda i: fmatree_row_text(rows[i], int(exp[i]), int(got[i])))


# fmatree: directed -----------------------------------------------------------------------
def test_fmatree_swamping():
    """One huge product and many tiny ones: the tree is exact, one rounding at the end."""
    rng = random.Random(21)
    rows = []
    big = (0x78, 0x78)  # S=8, e'=15 each: 2^34
    tiny64 = (0x08, 0x08)  # S=8, e'=1 each: 64
    # v = T 2^-34 with bias_a + bias_b = 30: 1 + k 2^-28; quantum 2^-23 at 1
    known = {15: 0x0F800000, 16: 0x0F800000, 17: 0x0F800001, 23: 0x0F800001}
    krows = []
    for k, code in known.items():
        a_row = [big[0]] + [tiny64[0]] * k + [0] * (23 - k)
        b_row = [big[1]] + [tiny64[1]] * k + [0] * (23 - k)
        krows.append(((0, a_row, b_row, 12, 18), code))
        # the negative: 0x80 on the big and the tiny a's
        krows.append(((0, [x ^ 0x80 if x else 0 for x in a_row], b_row, 18, 12),
                      code | FP30_SIGN))
    for (row, code) in krows:
        assert fmatree_ref(*row) == code, (row, hex(code))
    rows += [r for r, _ in krows]
    for _ in range(300):
        hi = (rng.randrange(2) << 7 | rng.randint(12, 15) << 3 | rng.randrange(8),
              rng.randint(12, 15) << 3 | rng.randrange(8))
        smalls = [(rng.randrange(2) << 7 | rng.randint(0, 3) << 3 | rng.randrange(8),
                   rng.randint(0, 3) << 3 | rng.randrange(8)) for _ in range(WAYS - 1)]
        if rng.random() < 0.5:  # all tiny ones with the same sign
            s = rng.randrange(2) << 7
            smalls = [((x & 0x7F) | s, y) for x, y in smalls]
        prods = [hi] + smalls
        rng.shuffle(prods)
        T = tree_T_ref([p[0] for p in prods], [p[1] for p in prods], 0, 0)
        msb = abs(T).bit_length() - 1
        ba, bb = split_bias(max(-64, min(62, msb - 4 - rng.randint(-30, 31))), rng)
        acc = rng.choice((0, random_fp30(rng)))
        rows.append((acc, [p[0] for p in prods], [p[1] for p in prods], ba, bb))
    # and the accumulator swamping t: acc's half ulp against small t
    for _ in range(100):
        a_row, b_row = random_operands(rng, WAYS)
        T = tree_T_ref(a_row, b_row, 0, 0)
        ba, bb = rng.randint(-32, 31), rng.randint(-32, 31)
        t_code, _ = fp30_rne_sat(T * pow2(-4 - ba - bb))
        e = min(63, ((t_code >> 23) & 63) + rng.randint(20, 40))
        rows.append((random_fp30(rng, e, e), a_row, b_row, ba, bb))
    check_fmatree_rows(rows, "swamping")


def test_fmatree_cancellation():
    rng = random.Random(22)
    rows = []
    # acc = -t exactly: code 0 (never the negative zero code)
    for _ in range(250):
        a_row, b_row = random_operands(rng, WAYS)
        T = tree_T_ref(a_row, b_row, 0, 0)
        if T == 0:
            continue
        msb = abs(T).bit_length() - 1
        ba, bb = split_bias(max(-64, min(62, msb - 4 - rng.randint(-33, 35))), rng)
        t_code, _ = fp30_rne_sat(T * pow2(-4 - ba - bb))
        if t_code:
            rows.append((t_code ^ FP30_SIGN, a_row, b_row, ba, bb))
    # tree sums that cancel exactly (T = 0): acc' = acc, canonical
    for _ in range(150):
        a_row, b_row = tree_for_T(0, WAYS - 2, rng)
        x, y = rng.randrange(256), rng.randrange(256)
        i, j = sorted(rng.sample(range(WAYS), 2))
        a_row[i:i], b_row[i:i] = [x], [y]
        a_row[j:j], b_row[j:j] = [x], [y ^ 0x80]
        acc = rng.choice((0, FP30_NEG_ZERO, random_fp30(rng), random_fp30(rng)))
        rows.append((acc, a_row, b_row, rng.randint(-32, 31), rng.randint(-32, 31)))
    # cancellation within the tree leaving a small remainder
    for _ in range(150):
        a_row, b_row = random_operands(rng, WAYS // 2)
        a_row += [x ^ 0x80 for x in a_row]
        b_row += b_row
        k = rng.randrange(WAYS)
        a_row[k] = rng.randrange(256)
        rows.append((rng.choice((0, random_fp30(rng))), a_row, b_row,
                     rng.randint(-32, 31), rng.randint(-32, 31)))
    traces = check_fmatree_rows(rows, "cancellation")
    n_acc = sum(tr.total == 0 and tr.t_code != 0 for tr in traces)
    n_tree = sum(tr.T == 0 for tr in traces)
    assert n_acc >= 200 and n_tree >= 150, (n_acc, n_tree)
    for tr, row in zip(traces, rows):
        if tr.total == 0:
            assert tr.code == 0
        if tr.T == 0 and fp30_value(row[0]) not in (None, 0):
            assert tr.code == row[0]


def test_fmatree_saturation():
    rng = random.Random(23)
    rows = []
    # stage 1: T large, biases small: v beyond fp30 max -> t = +-max
    for _ in range(200):
        a_row = [rng.randrange(2) << 7 | rng.randint(8, 15) << 3 | rng.randrange(8)
                 for _ in range(WAYS)]
        b_row = [rng.randint(8, 15) << 3 | rng.randrange(8) for _ in range(WAYS)]
        s = rng.randint(-64, -20)
        acc = rng.choice((0, random_fp30(rng), rng.randrange(2) << 29 | FP30_MAX_MAG,
                          random_fp30(rng, 50, 63)))
        rows.append((acc, a_row, b_row, *split_bias(s, rng)))
    # stage 1 saturates, then acc = -max cancels it exactly: fmatree rounds twice
    for _ in range(30):
        a_row = [rng.randint(10, 15) << 3 | rng.randrange(8) for _ in range(WAYS)]
        b_row = [rng.randint(10, 15) << 3 | rng.randrange(8) for _ in range(WAYS)]
        rows.append((FP30_SIGN | FP30_MAX_MAG, a_row, b_row, -32, -32))
    # stage 2: acc near max plus t of the same sign
    for _ in range(250):
        neg = rng.randrange(2)
        acc = neg << 29 | (FP30_MAX_MAG - rng.randrange(1 << rng.randint(0, 23)))
        t_exp = rng.randint(0, 32)  # t = 2^(t_exp) * something, up to max
        t_val = pow2(t_exp) * (1 + Fraction(rng.randrange(1 << 23), 1 << 23))
        if rng.random() < 0.2:  # exactly the max/NaN-slot midpoint and around it
            t_val = FP30_MAX + pow2(8) - fp30_value(acc & 0x1FFFFFFF) + \
                rng.choice((-1, 0, 1)) * pow2(9)
            if fp30_exact_code(t_val) is None or t_val <= 0:
                continue
        t_val = -t_val if neg else t_val
        if fp30_exact_code(t_val) is None:
            continue
        a_row, b_row, ba, bb = tree_for_value(t_val, WAYS, rng)
        rows.append((acc, a_row, b_row, ba, bb))
    traces = check_fmatree_rows(rows, "saturation")
    sat1 = sum(tr.sat1 for tr in traces)
    sat2 = sum(tr.sat2 and not tr.sat1 for tr in traces)
    assert sat1 >= 200 and sat2 >= 100, (sat1, sat2)
    # stage-1 saturation followed by acc = -max: exactly zero
    assert sum(tr.sat1 and tr.total == 0 for tr in traces) >= 30


def test_fmatree_all_subnormal_inputs():
    rng = random.Random(24)
    rows = []
    for _ in range(500):
        a_row = [rng.randrange(2) << 7 | rng.randrange(8) for _ in range(WAYS)]
        b_row = [rng.randrange(2) << 7 | rng.randrange(8) for _ in range(WAYS)]
        T = tree_T_ref(a_row, b_row, 0, 0)
        ba, bb = random_biases(rng, T)
        acc = rng.choice((0, random_fp30(rng), random_fp30(rng, 0, 2)))
        rows.append((acc, a_row, b_row, ba, bb))
    traces = check_fmatree_rows(rows, "all subnormal")
    assert sum(0 < abs(tr.v) < FP30_MINPOS for tr in traces) > 20


def test_fmatree_largest_T():
    ext = extreme_T(WAYS)
    rows = []
    for ba, bb in ((-32, -32), (31, 31), (0, 0), (-32, 31), (10, 7), (20, 23), (31, 30)):
        for a_code, b_code in ((0x7F, 0x7F), (0xFF, 0x7F), (0x7F, 0xFF), (0xFF, 0xFF)):
            for acc in (0, FP30_NEG_ZERO, 0x1FFFFFFE, 0x3FFFFFFE, 0x0F800000):
                rows.append((acc, [a_code] * WAYS, [b_code] * WAYS, ba, bb))
    traces = check_fmatree_rows(rows, "largest T")
    for tr, row in zip(traces, rows):
        sign = -1 if (row[1][0] ^ row[2][0]) & 0x80 else 1
        assert tr.T == sign * ext


def test_fmatree_nan_accumulator():
    rng = random.Random(25)
    rows = []
    for acc in FP30_NAN_CODES:
        rows.append((acc, [0] * WAYS, [0] * WAYS, 0, 0))
        rows.append((acc, [0x7F] * WAYS, [0x7F] * WAYS, -32, -32))
        rows.append((acc, [0xFF] * WAYS, [0x7F] * WAYS, 31, 31))
        for _ in range(60):
            rows.append((acc, *random_operands(rng, WAYS), rng.randint(-32, 31),
                         rng.randint(-32, 31)))
    traces = check_fmatree_rows(rows, "NaN accumulator")
    assert all(tr.code == FP30_NAN for tr in traces)


def test_fmatree_ties():
    """Exact halfway cases in stage 1 (v) and in stage 2 (acc + t), both directions."""
    rng = random.Random(26)
    rows = []
    # stage 1: T with 25 significant bits, v inside the normal range
    for _ in range(420):
        T = (((1 << 23) | rng.randrange(1 << 23)) * 2 + 1) << rng.randint(0, 12)
        T = -T if rng.random() < 0.5 else T
        msb = abs(T).bit_length() - 1
        lo, hi = max(-64, msb - 4 - 32), min(62, msb - 4 + 31)  # v exponent in -31..32
        a_row, b_row = tree_for_T(T, WAYS, rng)
        ba, bb = split_bias(rng.randint(lo, hi), rng)
        t_code, _ = fp30_rne_sat(T * pow2(-4 - ba - bb))
        acc = rng.choice((0, 0, FP30_NEG_ZERO, random_fp30(rng), t_code ^ FP30_SIGN))
        rows.append((acc, a_row, b_row, ba, bb))
    # stage 1 exactly at half of min positive (rounds to 0, even) and its neighbours
    for s in range(0, 12):
        for d in (-1, 0, 1):
            T = (((1 << 23) + 1) << s) + d * (1 << s)
            for sign in (1, -1):
                a_row, b_row = tree_for_T(sign * T, WAYS, rng)
                rows.append((0, a_row, b_row, *split_bias(s + 51, rng)))
    # stage 2: acc + t halfway between neighbours, t below acc's ulp
    n2 = 0
    while n2 < 420:
        acc = random_fp30(rng, 20, 63)
        q = pow2(((acc >> 23) & 63) - 31 - 23)  # acc's ulp
        k = rng.randrange(1 << rng.randint(0, 22))
        t_val = (2 * k + 1) * q / 2 * rng.choice((1, -1))
        total = fp30_value(acc) + t_val
        if fp30_exact_code(t_val) is None or not fp30_is_tie(total):
            continue
        rows.append((acc, *tree_for_value(t_val, WAYS, rng)))
        n2 += 1
    # stage 2: t large, acc the odd half-ulp part (roles swapped)
    n3 = 0
    while n3 < 200:
        t_code = random_fp30(rng, 20, 63)
        q = pow2(((t_code >> 23) & 63) - 31 - 23)
        k = rng.randrange(1 << rng.randint(0, 22))
        acc_val = (2 * k + 1) * q / 2 * rng.choice((1, -1))
        acc = fp30_exact_code(acc_val)
        total = fp30_value(t_code) + acc_val
        if acc is None or not fp30_is_tie(total):
            continue
        rows.append((acc, *tree_for_value(fp30_value(t_code), WAYS, rng)))
        n3 += 1
    traces = check_fmatree_rows(rows, "ties")
    tie1 = sum(tr.tie1 for tr in traces)
    tie2 = sum(tr.tie2 for tr in traces)
    # both rounding directions happen: down to an even code and up to an even code
    up2 = sum(tr.tie2 and abs(fp30_value(tr.code)) > abs(tr.total) for tr in traces)
    up1 = sum(tr.tie1 and abs(fp30_value(tr.t_code)) > abs(tr.v) for tr in traces)
    assert tie1 >= 400 and tie2 >= 550, (tie1, tie2)
    assert min(up1, tie1 - up1, up2, tie2 - up2) >= 100, (up1, tie1, up2, tie2)
    assert sum(tr.tie1 and tr.t_code == 0 for tr in traces) >= 20  # half minpos -> 0


def test_fmatree_gap_below_min_positive():
    """acc + t lands in (0, min positive): 0 below half of it, min positive above."""
    rng = random.Random(27)
    rows = []
    for j in [1, 2, (1 << 22) - 1, 1 << 22, (1 << 22) + 1, (1 << 23) - 1, 1 << 23] + \
            [rng.randrange(1, 1 << 23) for _ in range(100)]:
        # acc = 2^-30 (e=1, m=0); t = -(2^-30 - j 2^-54) -> acc + t = j 2^-54
        t_val = -(pow2(-30) - j * pow2(-54))
        for sign in (1, -1):
            acc = (0 if sign > 0 else FP30_SIGN) | (1 << 23)
            rows.append((acc, *tree_for_value(sign * t_val, WAYS, rng)))
    traces = check_fmatree_rows(rows, "gap below min positive")
    assert sum(tr.code == 0 for tr in traces) >= 50
    assert sum(tr.code & 0x1FFFFFFF == 1 for tr in traces) >= 50


# fmatree: all (a, b) pairs ---------------------------------------------------------------
PAIR_BIASES = [(-32, -32), (31, 31), (0, 0), (-32, 31), (16, 14), (-16, -14)]


def pair_products(ba: int, bb: int):
    """Exact a*b for all 65,536 pairs, and its fp30 rounding t, vectorised.

    Each fp8seb value is +-(up to 4 significant bits) * 2^k with k in -33..47, so it is
    exact in float64, and so is every product: at most 8 significant bits (S_a S_b <= 225)
    with exponents in -66..96, far inside float64's normal range. An 8-bit value is exactly
    an fp30 value when 2^-31 < |p| <= max (24-bit significands); 2^-31 itself and anything
    in (2^-32, 2^-31) lie in the dl gap above half of min positive (2^-32 (1 + 2^-23), which
    needs 24 bits, so no 8-bit value equals it) and round to min positive; |p| <= 2^-32
    rounds to 0; |p| > max means |p| >= 2^33 (max is 2^33 - 2^10) and saturates.
    """
    va = np.array([float(v) for v in seb_table(ba)])
    vb = np.array([float(v) for v in seb_table(bb)])
    A, B = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    A, B = A.ravel(), B.ravel()
    p = va[A] * vb[B]
    ap = np.abs(p)
    mant, ex = np.frexp(ap)  # ap = mant 2^ex, mant in [0.5, 1)
    E = ex - 1
    frac = (mant * 2 - 1) * (1 << 23)
    normal = (ap > 2.0 ** -31) & (ap <= float(FP30_MAX))
    assert np.all(frac[normal] == np.floor(frac[normal]))
    mag = np.zeros(p.shape, dtype=np.int64)
    mag[normal] = ((E[normal] + 31) << 23) | frac[normal].astype(np.int64)
    mag[(ap > 2.0 ** -32) & (ap <= 2.0 ** -31)] = 1
    mag[ap > float(FP30_MAX)] = FP30_MAX_MAG
    t = np.where((p < 0) & (mag != 0), FP30_SIGN, 0) | mag
    return A, B, p, t.astype(np.uint32)


@pytest.mark.parametrize("ba,bb", PAIR_BIASES, ids=lambda x: str(x))
def test_fmatree_all_pairs(ba, bb):
    rng = random.Random(1000 + 64 * ba + bb)
    A, B, p, t = pair_products(ba, bb)
    n = A.size
    col = np.arange(n) % WAYS  # the pair sits in every way position in turn
    a = np.zeros((n, WAYS), dtype=np.uint8)
    b = np.zeros((n, WAYS), dtype=np.uint8)
    a[np.arange(n), col] = A
    b[np.arange(n), col] = B
    # stage 1 integer from the float64 products; also the S/e' formula vectorised
    T = p * 2.0 ** (4 + ba + bb)
    assert np.all(T == np.round(T)) and np.all(np.abs(T) < 2.0 ** 53)
    sA, sB = A >> 7, B >> 7
    eA, eB = (A >> 3) & 15, (B >> 3) & 15
    SA, SB = (A & 7) + np.where(eA != 0, 8, 0), (B & 7) + np.where(eB != 0, 8, 0)
    T_formula = np.where(sA ^ sB, -1, 1) * (SA * SB) << (np.maximum(eA, 1) +
                                                           np.maximum(eB, 1) - 2)
    assert np.array_equal(T.astype(np.int64), T_formula)
    report(f"all pairs tree_sum ({ba}, {bb})", np.asarray(tree_sum(a, b)), T_formula,
           lambda i: f"  a=0x{A[i]:02X} b=0x{B[i]:02X} T expected {T_formula[i]}")

    # acc = 0 (both zero codes): the result is t
    for acc0 in (0, FP30_NEG_ZERO):
        acc = np.full(n, acc0, dtype=np.uint32)
        got = np.asarray(fmatree(acc, a, b, ba, bb))
        report(f"all pairs ({ba}, {bb}) acc=0x{acc0:X}", got, t,
               lambda i: fmatree_row_text((acc0, list(a[i]), list(b[i]), ba, bb),
                                          int(t[i]), int(got[i])))

    # random accumulators: half any code, half near t's binade
    acc_list = []
    for tc in t.tolist():
        if rng.random() < 0.5 or tc & 0x1FFFFFFF in (0, FP30_MAX_MAG):
            acc_list.append(rng.randrange(1 << 30))
        else:
            e = max(0, min(63, ((tc >> 23) & 63) + rng.randint(-26, 26)))
            acc_list.append(random_fp30(rng, e, e))
    acc = np.array(acc_list, dtype=np.uint32)
    got = np.asarray(fmatree(acc, a, b, ba, bb))

    def scaled(code):  # fp30 value times 2^54, an integer (the dl style)
        e, m = (code >> 23) & 63, code & 0x7FFFFF
        if code & 0x1FFFFFFF == 0:
            return 0
        v = ((1 << 23) | m) << e
        return -v if code & FP30_SIGN else v

    exp = np.array([FP30_NAN if ac & 0x1FFFFFFF == FP30_NAN else
                    fp30_round_scaled(scaled(ac) + scaled(tc), 54)
                    for ac, tc in zip(acc_list, t.tolist())], dtype=np.uint32)
    report(f"all pairs ({ba}, {bb}) random acc", got, exp,
           lambda i: fmatree_row_text((acc_list[i], list(a[i]), list(b[i]), ba, bb),
                                      int(exp[i]), int(got[i])))
    # the vectorised expectation against the Fraction reference, on a sample
    idx = rng.sample(range(n), 300) + [i for i in range(0, n, 97)
                                       if 0 < abs(p[i]) < 2.0 ** -30][:100]
    for i in idx:
        row = (acc_list[i], list(map(int, a[i])), list(map(int, b[i])), ba, bb)
        assert fmatree_ref(*row) == exp[i], fmatree_row_text(row, int(exp[i]), int(got[i]))
        assert fmatree_ref(0, *row[1:]) == t[i]


# tree_width ------------------------------------------------------------------------------
@pytest.mark.parametrize("ways", [1, 2, 24, 100])
def test_tree_width(ways):
    ext = extreme_T(ways)
    w = tree_width(ways)
    assert isinstance(w, (int, np.integer))
    assert -(1 << (w - 1)) <= -ext and ext <= (1 << (w - 1)) - 1  # holds +-extreme
    assert not (ext <= (1 << (w - 2)) - 1)  # one bit less cannot hold +extreme
    if ways == 24:
        assert w == 42  # |T| < 2^41 (docs/numerics.md, fmatree): 42-bit two's complement
    # the extreme is reached, both signs, and tree_sum returns it exactly
    a = np.array([[0x7F] * ways, [0xFF] * ways], dtype=np.uint8)
    b = np.full((2, ways), 0x7F, dtype=np.uint8)
    assert np.asarray(tree_sum(a, b)).tolist() == [ext, -ext]
    assert tree_T_ref([0x7F] * ways, [0x7F] * ways, 0, 0) == ext


# dot -------------------------------------------------------------------------------------
@pytest.mark.parametrize("K,n", [(1, 120), (23, 80), (24, 80), (25, 80), (48, 50), (100, 30),
                                 (300, 12)])
def test_dot(K, n):
    rng = random.Random(K)
    a = np.array([[rng.randrange(256) for _ in range(K)] for _ in range(n)], dtype=np.uint8)
    b = np.array([[rng.randrange(256) for _ in range(K)] for _ in range(n)], dtype=np.uint8)
    # sparse / small-valued rows too, so that chunks do not always saturate
    for i in range(0, n, 3):
        a[i] &= 0xBF
        b[i] &= 0xA7
    half = n // 2
    ba = np.array([rng.randint(-32, 31) for _ in range(half)] +
                  [rng.randint(0, 20) for _ in range(n - half)], dtype=np.int8)
    bb = np.array([rng.randint(-32, 31) for _ in range(half)] +
                  [rng.randint(0, 20) for _ in range(n - half)], dtype=np.int8)
    acc = np.array([rng.choice((0, FP30_NEG_ZERO, random_fp30(rng), random_fp30(rng),
                                random_fp30(rng), rng.choice(FP30_NAN_CODES)))
                    for _ in range(n)], dtype=np.uint32)
    rows = [(list(map(int, a[i])), list(map(int, b[i])), int(ba[i]), int(bb[i]))
            for i in range(n)]

    def text(exp, got):
        return lambda i: (f"  row {i}: bias_a={rows[i][2]} bias_b={rows[i][3]} "
                          f"acc=0x{int(acc[i]):08X}\n    a={bytes(a[i]).hex()}\n"
                          f"    b={bytes(b[i]).hex()}\n    expected 0x{int(exp[i]):08X} "
                          f"[{describe30(int(exp[i]))}], got 0x{int(got[i]):08X} "
                          f"[{describe30(int(got[i]))}]")

    got = np.asarray(dot(a, b, ba, bb))  # default ways=24, acc=0
    assert got.dtype == np.uint32 and got.shape == (n,)
    exp = np.array([dot_ref(*r) for r in rows], dtype=np.uint32)
    report(f"dot K={K} acc=0", got, exp, text(exp, got))
    got = np.asarray(dot(a, b, ba, bb, ways=24, acc=acc))
    exp = np.array([dot_ref(*r, ways=24, acc=int(acc[i])) for i, r in enumerate(rows)],
                   dtype=np.uint32)
    report(f"dot K={K} random acc", got, exp, text(exp, got))
    if K in (25, 100):
        got = np.asarray(dot(a, b, ba, bb, ways=7, acc=acc))
        exp = np.array([dot_ref(*r, ways=7, acc=int(acc[i])) for i, r in enumerate(rows)],
                       dtype=np.uint32)
        report(f"dot K={K} ways=7", got, exp, text(exp, got))
    assert len({int(x) for x in exp}) > n // 3  # not all saturated / zero


# quant30 ---------------------------------------------------------------------------------
def quant30_text(xs, biases, exp, got):
    return lambda i: (f"  x=0x{int(xs[i]):08X} [{describe30(int(xs[i]))}] bias={int(biases[i])}:"
                      f" expected 0x{int(exp[i]):02X} "
                      f"[{float(seb_table(int(biases[i]))[int(exp[i])])!r}], got "
                      f"0x{int(got[i]):02X}")


def check_quant30(xs, biases, ctx):
    xs = np.asarray(xs, dtype=np.uint32)
    biases = np.asarray(biases, dtype=np.int8)
    got = np.asarray(quant30(xs, biases))
    assert got.dtype == np.uint8 and got.shape == xs.shape, (got.dtype, got.shape)
    exp = np.array([quant30_ref(int(x), int(bi)) for x, bi in zip(xs, biases)],
                   dtype=np.uint8)
    report(ctx, got, exp, quant30_text(xs, biases, exp, got))
    return exp


def test_quant30_random():
    rng = random.Random(31)
    xs, biases = [], []
    for _ in range(8000):
        bias = rng.randint(-32, 31)
        r = rng.random()
        if r < 0.3:
            x = rng.randrange(1 << 30)
        else:  # around the fp8seb range of this bias: 2^(-4-b) .. 2^(17-b)
            e = max(0, min(63, rng.randint(-4 - bias, 17 - bias) + 31))
            x = random_fp30(rng, e, e)
            if r < 0.5:  # few mantissa bits: exact fp8seb values and near ties
                x &= ~((1 << rng.randint(17, 23)) - 1)
        xs.append(x)
        biases.append(bias)
    xs += [0, FP30_NEG_ZERO, *FP30_NAN_CODES] * 16
    biases += list(range(-32, 32))
    exp = check_quant30(xs, biases, "quant30 random")
    assert sum(e & 0x7F == 0x7F for e in exp) > 100
    assert sum(e == 0x80 for e in exp) > 50


def test_quant30_scalar_bias():
    rng = random.Random(32)
    for bias in (-32, -1, 0, 17, 31):
        xs = np.array([random_fp30(rng, max(0, 26 - bias), min(63, 48 - bias))
                       for _ in range(300)] + [0, FP30_NEG_ZERO, *FP30_NAN_CODES],
                      dtype=np.uint32)
        got = np.asarray(quant30(xs, bias))
        biases = np.full(xs.shape, bias)
        exp = np.array([quant30_ref(int(x), bias) for x in xs], dtype=np.uint8)
        report(f"quant30 scalar bias {bias}", got, exp, quant30_text(xs, biases, exp, got))


def test_quant30_directed():
    """Every fp8seb grid point and midpoint (ties), representable in fp30, +-1 fp30 ulp."""
    xs, biases = [], []
    ties = 0
    for bias in BIASES:
        pts = seb_grid(bias).values  # 0, finite magnitudes, overflow point 2^(16-b)
        cands = list(pts) + [(p + q) / 2 for p, q in zip(pts, pts[1:])] + [pts[-1] * 4]
        for i, c in enumerate(cands):
            code = fp30_exact_code(c)
            if code is None or code == 0:
                continue
            ties += i >= len(pts) and i < 2 * len(pts) - 1
            for d in (-1, 0, 1):
                m = code + d
                if 1 <= m <= FP30_MAX_MAG:
                    xs += [m, m | FP30_SIGN]
                    biases += [bias, bias]
        xs += [0, FP30_NEG_ZERO, *FP30_NAN_CODES, 1, 1 | FP30_SIGN, FP30_MAX_MAG,
               FP30_MAX_MAG | FP30_SIGN]
        biases += [bias] * 8
    exp = check_quant30(xs, biases, "quant30 directed")
    assert ties >= 3000, ties
    # saturation, signed zeros and subnormal outputs all appear
    assert sum(e == 0xFF for e in exp) > 100 and sum(e == 0x80 for e in exp) > 100
    assert sum(0 < e & 0x7F < 8 for e in exp) > 500


def test_quant30_known_answers():
    b = 0
    cases = [  # (x value, expected code) at bias 0: subnormals m/4, normals from 2
        (Fraction(15, 8) * 2 ** 15, 0x7F), (Fraction(31, 16) * 2 ** 15, 0x7F),  # tie -> sat
        (-Fraction(61, 32) * 2 ** 15, 0xFF), (Fraction(2) ** 20, 0x7F),
        (Fraction(1, 4), 0x01), (Fraction(1, 8), 0x00), (-Fraction(1, 8), 0x80),  # to even 0
        (Fraction(3, 8), 0x02), (Fraction(5, 8), 0x02), (-Fraction(7, 8), 0x84),
        (Fraction(1), 0x04), (Fraction(7, 4), 0x07), (Fraction(15, 8), 0x08),  # into normals
        (Fraction(17, 8), 0x08), (Fraction(19, 8), 0x0A), (Fraction(3, 2 ** 31), 0x00),
        (-Fraction(2) ** -30, 0x80)]
    xs = [fp30_exact_code(v) for v, _ in cases]
    got = np.asarray(quant30(np.array(xs, dtype=np.uint32), b)).tolist()
    assert [quant30_ref(x, b) for x in xs] == [c for _, c in cases]
    assert got == [c for _, c in cases], [hex(g) for g in got]


def test_max_exponent():
    rng = random.Random(33)
    for trial in range(300):
        n = rng.randint(1, 40)
        codes = []
        for _ in range(n):
            r = rng.random()
            codes.append(rng.choice((0, FP30_NEG_ZERO, *FP30_NAN_CODES)) if r < 0.3 else
                         random_fp30(rng) if r < 0.8 else rng.randrange(1 << 30))
        if trial % 10 == 0:
            codes = [rng.choice((0, FP30_NEG_ZERO, *FP30_NAN_CODES)) for _ in range(n)]
        exp = max_exponent_ref(codes)
        got = max_exponent(np.array(codes, dtype=np.uint32))
        assert (got is None) == (exp is None) and (got is None or got == exp), \
            ([hex(c) for c in codes], exp, got)
    for codes, exp in (([0], None), ([0, FP30_NEG_ZERO], None), (list(FP30_NAN_CODES), None),
                       ([1], -31), ([FP30_MAX_MAG | FP30_SIGN, 5], 32),
                       ([0x0F800000, FP30_NAN], 0), ([0x0F7FFFFF], -1)):
        assert max_exponent_ref(codes) == exp
        got = max_exponent(np.array(codes, dtype=np.uint32))
        assert (got is None and exp is None) or got == exp, (codes, exp, got)


def test_next_bias():
    bad = []
    for bias in BIASES:
        for max_exp in [None] + list(range(-40, 61)):
            for room in (0, 1, 2):
                exp = next_bias_ref(bias, max_exp, room)
                got = next_bias(bias, max_exp, room=room)
                if got != exp:
                    bad.append((bias, max_exp, room, exp, got))
            if next_bias(bias, max_exp) != next_bias_ref(bias, max_exp):
                bad.append((bias, max_exp, "default", next_bias_ref(bias, max_exp),
                            next_bias(bias, max_exp)))
    assert not bad, f"{len(bad)} wrong (bias, max_exp, room, expected, got): {bad[:10]}"
    # clamping is reached at both ends
    assert next_bias_ref(-32, 60) == -32 and next_bias_ref(31, -40) == 31


# The comparator catches a wrong bit ------------------------------------------------------
def test_comparator_catches_flipped_bit():
    rng = random.Random(41)
    rows = random_rows(rng, 50, WAYS)
    acc, a, b, ba, bb = as_arrays(rows)
    got = np.asarray(fmatree(acc, a, b, ba, bb)).copy()
    exp = np.array([fmatree_ref(*r) for r in rows], dtype=np.uint32)
    report("unmodified", got, exp, lambda i: "")
    for bit in (0, 22, 23, 29):
        bad = got.copy()
        bad[17] ^= np.uint32(1 << bit)
        with pytest.raises(pytest.fail.Exception, match="1 of 50 rows wrong"):
            report("flipped", bad, exp,
                   lambda i: fmatree_row_text(rows[i], int(exp[i]), int(bad[i])))
