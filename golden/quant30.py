"""Golden ``quant30``: ``fp30`` to ``fp8seb`` with an output bias, and shared-bias tracking
(docs/numerics.md, ``quant30``).

y = rne(x) into ``fp8seb`` with bias ``bias`` (-32..31), saturating; a NaN input gives +max.
The tracker reports the largest unbiased exponent floor(log2|x|) among the nonzero inputs
quantized since it was last cleared (NaN inputs are not numbers and are not tracked), and
``next_bias`` turns it into the bias of the next tensor.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, is_nan_code, round_exact, split_codes
from .formats import FP8SEB, FP30, FormatError, check_bias
from .params import ROOM

DEFAULT_ROOM = ROOM.default


def quant30(x, bias) -> np.ndarray:
    """uint32 ``fp30`` codes and biases (scalar or per row) to uint8 ``fp8seb`` codes."""
    x = check_codes(x, FP30.width, "x (fp30)")
    check_bias(FP8SEB, bias)
    sign, sig, exp = split_codes(x, FP30)
    y = round_exact(sign, sig, exp, FP8SEB, bias=np.asarray(bias, np.int64),
                    rounding="rne", overflow="sat")
    return np.where(is_nan_code(x, FP30), FP8SEB.max_code, y).astype(np.uint8)


def exponents(x) -> np.ndarray:
    """floor(log2|x|) of each ``fp30`` code; None-like (int64 min) for zero and NaN."""
    x = check_codes(x, FP30.width, "x (fp30)")
    e = (x >> FP30.man_bits) & FP30.exp_all_ones
    valid = (x & ~(1 << (FP30.width - 1))) != 0
    valid &= ~is_nan_code(x, FP30)
    return np.where(valid, e - FP30.bias, np.iinfo(np.int64).min)


def max_exponent(x) -> int | None:
    """The tracker's reading after quantizing ``x``: the largest floor(log2|x|) among the
    nonzero, non-NaN inputs, or None when there is none."""
    e = exponents(np.ravel(x))
    return int(e.max()) if e.size and e.max() != np.iinfo(np.int64).min else None


def next_bias(bias: int, max_exp: int | None, room: int = DEFAULT_ROOM) -> int:
    """The shared-bias update rule: keep the largest value ``room`` binades below the top.

    With top = 15 - bias: one less when max_exp > top - room, one more when
    max_exp < top - room, else unchanged; an all-zero tensor (None) keeps the bias; the
    result is clamped to -32..31.
    """
    check_bias(FP8SEB, bias)
    if max_exp is None:
        return int(bias)
    if not isinstance(room, int) or not ROOM.lo <= room <= ROOM.hi:
        raise FormatError(f"room must be {ROOM.allowed}, got {room!r}")
    target = (FP8SEB.exp_all_ones - bias) - room
    step = -1 if max_exp > target else (1 if max_exp < target else 0)
    lo, hi = FP8SEB.bias_range
    return int(min(hi, max(lo, bias + step)))
