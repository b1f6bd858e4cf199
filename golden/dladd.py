"""Golden ``dladd``: the sum of two ``dlfloat16`` codes (docs/numerics.md, ``dladd``).

z = rnu_dlfloat16(x + y), the sum computed exactly and rounded once, with the MPE's rules
for special values (``round_accumulator``, which the MPE's fused add shares): a NaN/Inf
input or an overflow gives 0x7FFF, an exact zero gives 0, a result below the smallest
``dlfloat16`` rounds to it or to 0. Chunked ``matmul`` adds its chunks' partial sums with it.
"""

from __future__ import annotations

import numpy as np

from .codec import add_exact, check_codes, is_nan_code, round_exact, split_codes
from .formats import DLFLOAT16


def round_accumulator(sign, mag, exp, sticky, special) -> np.ndarray:
    """The ``dlfloat16`` accumulator code of the exact value (-1)**sign * (mag + d) * 2**exp
    (``round_exact``'s terms): rnu, overflow to 0x7FFF, and 0x7FFF where ``special`` (a
    NaN/Inf input) is true. Returns int64 codes."""
    y = round_exact(sign, mag, exp, DLFLOAT16, sticky=sticky, rounding="rnu", overflow="nan")
    return np.where(special, DLFLOAT16.canonical_nan, y)


def dladd(x, y) -> np.ndarray:
    """uint16 ``dlfloat16`` codes ``x`` and ``y`` (broadcast); uint16 codes of their sum."""
    x = check_codes(x, DLFLOAT16.width, "x")
    y = check_codes(y, DLFLOAT16.width, "y")
    sx, Sx, Lx = split_codes(x, DLFLOAT16)
    sy, Sy, Ly = split_codes(y, DLFLOAT16)
    sign, mag, exp, sticky = add_exact(sx, Sx, Lx, sy, Sy, Ly)
    special = is_nan_code(x, DLFLOAT16) | is_nan_code(y, DLFLOAT16)
    return round_accumulator(sign, mag, exp, sticky, special).astype(np.uint16)
