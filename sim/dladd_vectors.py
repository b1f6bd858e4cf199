"""Directed ``dladd`` operand pairs (``dlfloat16`` codes), shared by the golden model's
reference test, the quick tier and the cocotb testbench: every special and edge code,
exact ties at every exponent distance, cancellation, results at and below the smallest
``dlfloat16``, and the overflow threshold."""

from __future__ import annotations

import random

import numpy as np

NAN, SIGN, MAX = 0x7FFF, 0x8000, 0x7FFE


def code(sign: int, e: int, m: int) -> int:
    return (sign << 15) | (e << 9) | m


def structured_codes(mantissas=(0, 1, 511)) -> np.ndarray:
    """Zeros, NaN/Inf, and every exponent with the given mantissas, both signs."""
    mags = [code(0, e, m) for e in range(64) for m in mantissas]
    codes = mags + [c | SIGN for c in mags] + [0, SIGN, NAN, NAN | SIGN]
    return np.unique(np.array(codes, np.int64))


def constructed_pairs(seed: int, per_case: int = 2) -> np.ndarray:
    """(x, y) rows, int64 [n, 2]: exact ties (y's bits below x's last place are exactly
    one half, for every exponent distance 1..10, added and subtracted), cancellation (y
    near -x), small values of opposite signs (results at or below the smallest
    dlfloat16), and large ones (overflow or just not)."""
    rng = random.Random(seed)
    rows = []
    for e in range(64):
        for d in range(1, 11):
            if e - d < 0:
                continue
            for _ in range(per_case):
                m = rng.randrange(511 if e == 63 else 512)
                # 1.m2 has 10 bits; its low d bits fall below x's last place.
                low = 1 << (d - 1)
                high = rng.randrange(1 << (10 - d)) | (1 << (9 - d) if d < 10 else 0)
                m2 = ((high << d) | low) & 0x1FF
                sx, sy = rng.randrange(2), rng.randrange(2)
                rows.append((code(sx, e, m), code(sy, e - d, m2)))
        for _ in range(per_case):               # cancellation: y = -x +- a few places
            x = code(rng.randrange(2), e, rng.randrange(511 if e == 63 else 512))
            y = ((x ^ SIGN) + rng.randrange(-4, 5)) & 0xFFFF
            rows.append((x, y))
    for _ in range(40 * per_case):              # tiny results
        rows.append((code(0, rng.randrange(3), rng.randrange(512)),
                     code(1, rng.randrange(3), rng.randrange(512))))
    for _ in range(60 * per_case):              # at the top: overflow or just not
        sign = rng.randrange(2)
        rows.append((code(sign, 63, rng.randrange(511)),
                     code(sign ^ (rng.random() < 0.1), rng.choice((53, 60, 62, 62, 63, 63)),
                          rng.randrange(512))))
    rows += [(MAX, code(0, 53, 0)), (MAX | SIGN, code(1, 53, 0)),    # max + half place
             (MAX, code(0, 52, 511)), (0x0001, 0x8000), (0x0002, 0x8001)]
    return np.array(rows, np.int64)


def directed_pairs(seed: int, per_case: int = 2) -> np.ndarray:
    """Every special code against every structured code (both orders), then
    ``constructed_pairs``: int64 [n, 2]."""
    codes = structured_codes()
    specials = np.array([0, SIGN, NAN, NAN | SIGN, 1, 1 | SIGN, MAX, MAX | SIGN], np.int64)
    s, c = np.meshgrid(specials, codes, indexing="ij")
    edge = np.stack([s.ravel(), c.ravel()], 1)
    return np.concatenate([edge, edge[:, ::-1], constructed_pairs(seed, per_case)])
