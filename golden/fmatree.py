"""Golden ``fmatree``: the FP8-SEB N-way fused multiply-add tree with an FP30 accumulator
(docs/numerics.md, ``fmatree``), and ``dot``, a whole K-long dot product run through the tree N
products at a time exactly as the hardware does.

Stage 1 is exact: every product of two ``fp8seb`` codes becomes an integer
S(a) * S(b) * 2**(e'(a) + e'(b) - 2) (S = m + 8 for normals, e' = max(e, 1)), and the N
signed products sum to an integer T worth T * 2**(-4 - bias_a - bias_b). Stage 2 rounds
that value to ``fp30`` (nearest even, saturating) and adds it to the accumulator with a
second such rounding. A NaN accumulator gives the NaN code.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, add_exact, is_nan_code, round_exact, split_codes
from .float_round import FP30_ACC, RangeWatch
from .formats import FP8SEB, FP30, FormatError, check_bias
from .params import WAYS

DEFAULT_WAYS = WAYS.default


def code_integers(codes) -> np.ndarray:
    """Each ``fp8seb`` code as the signed integer +-S * 2**(e' - 1) (int64, |x| < 2**18),
    so that a product's term S(a) S(b) 2**(e'(a) + e'(b) - 2) is the product of two."""
    c = np.asarray(codes).astype(np.int64)
    e = (c >> FP8SEB.man_bits) & FP8SEB.exp_all_ones
    m = c & FP8SEB.man_all_ones
    magnitude = np.where(e == 0, m, m + (1 << FP8SEB.man_bits)) << (np.maximum(e, 1) - 1)
    return np.where(c >> (FP8SEB.width - 1), -magnitude, magnitude)


def product_terms(a, b) -> np.ndarray:
    """Signed integer products S(a) S(b) 2**(e'(a) + e'(b) - 2), elementwise (int64)."""
    return code_integers(a) * code_integers(b)


def tree_scale(bias_a, bias_b) -> np.ndarray:
    """The value of T's unit, 2**(-4 - bias_a - bias_b), as float64 (exact)."""
    return np.ldexp(1.0, -4 - np.asarray(bias_a, np.int64) - np.asarray(bias_b, np.int64))


def fold_tree_sums(start, tree_sums, scale) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 of successive trees in float32: ``start`` float32 ``fp30`` values, each
    of ``tree_sums`` a float64 array of exact integers T, ``scale`` the unit's value.
    float64 holds T * scale exactly (|T| < 2**41), its conversion to float32 is the
    rounding to ``fp30`` (24 bits, nearest even) and so is the float32 add (see
    ``float_round``), while the values stay in ``fp30``'s finite range. Returns (values,
    ever outside that range), the latter to be done again by ``fmatree``."""
    total = np.array(start, np.float32)
    watch = RangeWatch(FP30_ACC, total.shape)
    for T in tree_sums:
        t = np.asarray(T * scale, np.float32)
        watch.see(t.view(np.uint32))
        np.add(total, t, out=total)
        watch.see(total.view(np.uint32))
    return total, watch.outside()


def tree_sum(a, b) -> np.ndarray:
    """Stage 1: the exact integer T of each row of a[n, N], b[n, N]."""
    return product_terms(a, b).sum(axis=-1)


def tree_width(ways: int) -> int:
    """Bits of the smallest two's complement integer that holds T for ``ways`` products:
    each |product| is at most 15 * 15 * 2**28, so |T| <= ways * 225 * 2**28."""
    return int(ways * 225 << 28).bit_length() + 1


def _check_rows(acc, a, b, bias_a, bias_b):
    a = check_codes(a, 8, "a")
    b = check_codes(b, 8, "b")
    if a.ndim != 2 or a.shape != b.shape:
        raise FormatError(f"fmatree: a and b must both be [n, ways], got {a.shape} and {b.shape}")
    if not WAYS.lo <= a.shape[1] <= WAYS.hi:
        raise FormatError(f"fmatree: ways must be {WAYS.allowed}, got {a.shape[1]}")
    check_bias(FP8SEB, bias_a)
    check_bias(FP8SEB, bias_b)
    acc = check_codes(acc, FP30.width, "acc (fp30)")
    return acc, a, b, np.asarray(bias_a, np.int64), np.asarray(bias_b, np.int64)


def fmatree(acc, a, b, bias_a, bias_b) -> np.ndarray:
    """acc' = rne_fp30(acc + rne_fp30(T * 2**(-4 - bias_a - bias_b))), per row.

    acc: uint32 ``fp30`` codes [n]; a, b: ``fp8seb`` codes [n, ways]; bias_a, bias_b: the
    shared biases (-32..31), scalars or [n]. Returns uint32 ``fp30`` codes.
    """
    acc, a, b, bias_a, bias_b = _check_rows(acc, a, b, bias_a, bias_b)
    T = tree_sum(a, b)
    t = round_exact(T < 0, np.abs(T), -4 - bias_a - bias_b, FP30, rounding="rne",
                    overflow="sat")
    s_acc, sig_acc, exp_acc = split_codes(acc, FP30)
    s_t, sig_t, exp_t = split_codes(t, FP30)
    sign, mag, exp, sticky = add_exact(s_acc, sig_acc, exp_acc, s_t, sig_t, exp_t,
                                       align_bits=36)
    y = round_exact(sign, mag, exp, FP30, sticky=sticky, rounding="rne", overflow="sat")
    return np.where(is_nan_code(acc, FP30), FP30.canonical_nan, y).astype(np.uint32)


def dot(a, b, bias_a, bias_b, ways: int = DEFAULT_WAYS, acc=0) -> np.ndarray:
    """K-long dot products a[n, K] . b[n, K] through an N-way tree, as the hardware runs
    them: chunks of ``ways`` products in ascending k, the last chunk padded with zeros,
    each chunk added into the ``fp30`` accumulator (initially ``acc``, default +0).
    Returns uint32 ``fp30`` codes [n].

    Fast: each chunk's T in float64 (exact) and stage 2 in float32 (``fold_tree_sums``);
    rows that leave ``fp30``'s finite range are run again through ``fmatree``."""
    a = np.atleast_2d(check_codes(a, 8, "a"))
    b = np.atleast_2d(check_codes(b, 8, "b"))
    if a.shape != b.shape:
        raise FormatError(f"dot: a and b must have the same shape, got {a.shape} and {b.shape}")
    n, k = a.shape
    if not WAYS.lo <= ways <= WAYS.hi:
        raise FormatError(f"fmatree: ways must be {WAYS.allowed}, got {ways}")
    check_bias(FP8SEB, bias_a)
    check_bias(FP8SEB, bias_b)
    chunks = max(1, -(-k // ways))
    pad = chunks * ways - k
    a = np.pad(a, ((0, 0), (0, pad))).reshape(n, chunks, ways)
    b = np.pad(b, ((0, 0), (0, pad))).reshape(n, chunks, ways)
    start = np.broadcast_to(check_codes(acc, FP30.width, "acc (fp30)"), (n,))
    sums = (code_integers(a) * code_integers(b)).sum(axis=-1).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        values, outside = fold_tree_sums(FP30_ACC.values(start), sums.T,
                                         tree_scale(bias_a, bias_b))
    result = FP30_ACC.codes(values)
    again = np.nonzero(outside & ~np.isnan(values))[0]
    if again.size:
        exact = start[again]
        ba, bb = (np.broadcast_to(bias, (n,))[again] for bias in (bias_a, bias_b))
        for c in range(chunks):
            exact = fmatree(exact, a[again, c], b[again, c], ba, bb)
        result[again] = exact
    return result.astype(np.uint32)
