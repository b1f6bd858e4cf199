"""Golden ``dladd`` against exact references written from docs/numerics.md (``dladd``).

``reference_fractions.dladd_ref`` decodes both codes with the Styles table, adds them as
``Fraction``s and rounds with ``round_direct`` (rnu), applying the ``mpe`` rules for
special values; ``dladd_units_ref`` does the same in integers (units of 2**-40), fast
enough for millions of pairs, and is checked against ``dladd_ref`` here first.

Quick tier: every unordered pair of a structured set (both zeros, NaN/Inf of both signs,
every exponent with mantissas 0, 1 and 511) and constructed rows (``sim.dladd_vectors``:
exact ties at every exponent distance, cancellation, results at and below the smallest
``dlfloat16``, the overflow threshold) against ``dladd_ref``. Default tier: every ordered
pair of about 1,300 codes and seeded random pairs against ``dladd_units_ref``.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden import DLFLOAT16, dladd, round_exact
from golden.codec import add_exact, split_codes
from sim.dladd_vectors import MAX, NAN, SIGN, code, constructed_pairs, structured_codes
from reference_fractions import (DL_SPEC, DL_UNIT_EXP, dl_units, dl_values, dladd_ref,
                                 dladd_units_ref, grid_tie, pow2)

MINPOS = pow2(-31) * (1 + pow2(-9))


def check(x: np.ndarray, y: np.ndarray, reference, what: str) -> np.ndarray:
    """Compare golden (one call) with ``reference`` row by row; return the expected codes."""
    got = dladd(x, y)
    assert got.dtype == np.uint16 and got.shape == x.shape
    want = np.array([reference(int(a), int(b)) for a, b in zip(x, y)], np.int64)
    bad = np.flatnonzero(got != want)
    if bad.size:
        lines = [f"{what}: {bad.size} of {len(x)} rows wrong"]
        for i in bad[:10]:
            vx, vy = dl_values()[x[i]], dl_values()[y[i]]
            exact = "NaN/Inf input" if vx is None or vy is None else repr(float(vx + vy))
            lines.append(f"  x=0x{x[i]:04X} y=0x{y[i]:04X} exact sum {exact}: "
                         f"expected 0x{want[i]:04X}, got 0x{int(got[i]):04X}")
        pytest.fail("\n".join(lines))
    return want


def is_tie(units: int) -> bool:
    """Is a sum of ``units`` (of 2**-40) exactly halfway between two dlfloat16 neighbours?"""
    return grid_tie(units * pow2(DL_UNIT_EXP), 9, MINPOS)


def coverage(x, y, want) -> dict:
    """What the rows exercised, counted on the exact sums (in units of 2**-40)."""
    counts = dict(special=0, overflow=0, exact_zero=0, to_zero=0, to_minpos=0, tie=0,
                  cancellation=0)
    minpos = MINPOS / pow2(DL_UNIT_EXP)
    for a, b, w in zip(x.tolist(), y.tolist(), want.tolist()):
        ua, ub = dl_units()[a], dl_units()[b]
        if ua is None or ub is None:
            counts["special"] += 1
            continue
        s = ua + ub
        counts["overflow"] += w == NAN
        counts["exact_zero"] += s == 0
        counts["to_zero"] += s != 0 and w == 0
        counts["to_minpos"] += abs(s) < minpos and w & 0x7FFF == 1
        # A tie has one set bit, the half, below the last place (or is minpos / 2).
        drop = abs(s).bit_length() - 10
        if abs(s) >= minpos and drop <= 0:
            continue
        counts["tie"] += (2 * abs(s) == minpos if abs(s) < minpos
                          else abs(s) & ((1 << drop) - 1) == 1 << (drop - 1)) and is_tie(s)
        counts["cancellation"] += ua != 0 and ub != 0 and (ua < 0) != (ub < 0) \
            and abs(s) * 16 < min(abs(ua), abs(ub))
    return counts


@pytest.mark.quick
def test_references_agree_and_hand_rows():
    assert dladd_ref(0x3E00, 0x3E00) == 0x4000                  # 1 + 1 = 2
    assert dladd_ref(0x3E00, 0xBE00) == 0                       # 1 - 1 = 0
    assert dladd_ref(0x3E00, 0x2A00) == 0x3E01                  # 1 + 2**-10: tie, up
    assert dladd_ref(0xBE00, 0xAA00) == 0xBE01                  # away from zero
    assert dladd_ref(MAX, code(0, 53, 0)) == NAN                # max + half place
    assert dladd_ref(MAX, code(0, 52, 511)) == MAX              # just under it
    assert dladd_ref(0x0002, 0x8001) == 0                       # 2**-40 < minpos / 2
    assert dladd_ref(0x0001, 0x8000) == 0x0001                  # -0 is zero
    assert dladd_ref(NAN | SIGN, 0) == NAN and dladd_ref(0, NAN) == NAN
    assert dladd_ref(0x8000, 0x8000) == 0
    rows = constructed_pairs(seed=1, per_case=1)
    for a, b in rows.tolist():
        assert dladd_units_ref(a, b) == dladd_ref(a, b), (hex(a), hex(b))


@pytest.mark.quick
def test_structured_pairs_and_constructed_rows():
    codes = structured_codes()
    i, j = np.triu_indices(len(codes))                          # unordered pairs
    pairs = np.concatenate([np.stack([codes[i], codes[j]], 1), constructed_pairs(seed=2)])
    x, y = pairs[:, 0], pairs[:, 1]
    want = check(x, y, dladd_ref, "structured pairs")
    assert np.array_equal(dladd(y, x), want)                    # and in the other order
    c = coverage(x, y, want)
    assert c["tie"] >= 1000 and c["overflow"] >= 60 and c["exact_zero"] >= 100
    assert c["to_zero"] >= 20 and c["to_minpos"] >= 20 and c["cancellation"] >= 500
    assert c["special"] >= 700, c
    # Each sweep finds a rounding that is not rnu: ties to even fail on the ties.
    sx, Sx, Lx = split_codes(x, DLFLOAT16)
    sy, Sy, Ly = split_codes(y, DLFLOAT16)
    finite = (dl_values_array()[x] & dl_values_array()[y]).astype(bool)
    sign, mag, exp, sticky = add_exact(sx, Sx, Lx, sy, Sy, Ly)
    rne = round_exact(sign, mag, exp, DLFLOAT16, sticky=sticky, rounding="rne",
                      overflow="nan")
    assert np.count_nonzero(finite & (rne != want)) >= 500


def dl_values_array() -> np.ndarray:
    """1 for the finite codes, 0 for NaN/Inf."""
    return np.array([v is not None for v in dl_values()], np.int64)


def test_every_pair_of_many_codes_and_random():
    """About 1,300 codes (the structured set with more mantissas, and random ones), every
    ordered pair; then seeded random pairs, a quarter of them near-cancelling."""
    rng = np.random.default_rng(13)
    codes = np.unique(np.concatenate([
        structured_codes((0, 1, 2, 255, 256, 257, 509, 510, 511)),
        rng.integers(0, 1 << 16, 150)]))
    assert 1200 <= len(codes) <= 1500
    x, y = np.meshgrid(codes, codes, indexing="ij")
    x, y = x.ravel(), y.ravel()
    want = check(x, y, dladd_units_ref, "every pair")
    c = coverage(x[::7], y[::7], want[::7])
    assert c["tie"] >= 1000 and c["to_minpos"] >= 10 and c["overflow"] >= 100, c
    n = 200_000
    x = rng.integers(0, 1 << 16, n)
    y = rng.integers(0, 1 << 16, n)
    near = rng.random(n) < 0.25
    y = np.where(near, ((x ^ SIGN) + rng.integers(-8, 9, n)) & 0xFFFF, y)
    check(x, y, dladd_units_ref, "random pairs")
    assert DL_SPEC.max_code == MAX
