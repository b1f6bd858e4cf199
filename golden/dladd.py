"""Golden ``dladd``: the sum of two ``dlfloat16`` codes (docs/numerics.md, ``dladd``).

z = rnu_dlfloat16(x + y), the sum computed exactly and rounded once, with the MPE's rules
for special values (``round_accumulator``, which the MPE's fused add shares): a NaN/Inf
input or an overflow gives 0x7FFF, an exact zero gives 0, a result below the smallest
``dlfloat16`` rounds to it or to 0. Chunked ``matmul`` adds its chunks' partial sums with it.
"""

from __future__ import annotations

import numpy as np

from .codec import add_exact, check_codes, is_nan_code, round_exact, split_codes
from .float_round import DL16, RangeWatch
from .formats import DLFLOAT16


def round_accumulator(sign, mag, exp, sticky, special) -> np.ndarray:
    """The ``dlfloat16`` accumulator code of the exact value (-1)**sign * (mag + d) * 2**exp
    (``round_exact``'s terms): rnu, overflow to 0x7FFF, and 0x7FFF where ``special`` (a
    NaN/Inf input) is true. Returns int64 codes."""
    y = round_exact(sign, mag, exp, DLFLOAT16, sticky=sticky, rounding="rnu", overflow="nan")
    return np.where(special, DLFLOAT16.canonical_nan, y)


def dladd_exact(x, y) -> np.ndarray:
    """``dladd`` by exact integer arithmetic (int64 codes): the definition, which ``dladd``
    falls back to where the float32 path cannot be used."""
    sx, Sx, Lx = split_codes(x, DLFLOAT16)
    sy, Sy, Ly = split_codes(y, DLFLOAT16)
    sign, mag, exp, sticky = add_exact(sx, Sx, Lx, sy, Sy, Ly)
    special = is_nan_code(x, DLFLOAT16) | is_nan_code(y, DLFLOAT16)
    return round_accumulator(sign, mag, exp, sticky, special)


def dladd(x, y) -> np.ndarray:
    """uint16 ``dlfloat16`` codes ``x`` and ``y`` (broadcast); uint16 codes of their sum.

    A float32 add and a rounding to 10 bits (``float_round`` has the proof); sums outside
    ``dlfloat16``'s finite range (overflow, or below its smallest value) are done again by
    ``dladd_exact``."""
    x = check_codes(x, DLFLOAT16.width, "x")
    y = check_codes(y, DLFLOAT16.width, "y")
    x, y = np.broadcast_arrays(x, y)
    total = np.asarray(DL16.values(x) + DL16.values(y), np.float32)
    DL16.round_(total.view(np.uint32))
    watch = RangeWatch(DL16, total.shape)
    watch.see(total.view(np.uint32))
    codes = DL16.codes(total)
    again = watch.outside() & ~np.isnan(total)
    if again.any():
        codes[again] = dladd_exact(x[again], y[again])
    return codes.astype(np.uint16)
