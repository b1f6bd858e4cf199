"""Golden ``mpe``: the mixed-precision multiply-accumulate (docs/numerics.md, ``mpe``).

``fp8`` mode: acc' = rnu_dlfloat16(acc + a*b), the sum computed exactly and rounded once;
``a`` and ``b`` are ``e4m3`` or ``e5m2`` codes, widened losslessly to ``fp9``. A NaN or Inf
operand or accumulator, or an overflow, gives 0x7FFF; an exact zero gives 0. The upper 16
bits of ``acc`` are ignored and come out zero.

``int4`` / ``int2`` modes: acc' = (acc + sum of the lane products) mod 2**32, lanes packed
2 (int4) or 4 (int2) per byte, lane 0 in the LSBs, ``acc`` a two's complement int32.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, add_exact, is_nan_code, split_codes, unpack_lanes
from .convert import convert
from .dladd import round_accumulator
from .formats import DLFLOAT16, E4M3, FP9, FormatError
from .params import FMT_A, FMT_B, MODE


def check_mode(mode, fmt_a, fmt_b) -> None:
    """FormatError unless ``mode``, ``fmt_a`` and ``fmt_b`` are allowed values."""
    if mode not in MODE.choices:
        raise FormatError(f"mpe: unknown mode {mode!r} (modes: {', '.join(MODE.choices)})")
    for param, fmt in ((FMT_A, fmt_a), (FMT_B, fmt_b)):
        if fmt not in param.choices:
            raise FormatError(f"mpe: {param.name} must be {param.allowed}, got {fmt!r}")


def mpe(acc, a, b, mode: str = "fp8", fmt_a: str = "e4m3", fmt_b: str = "e4m3",
        bias: int = E4M3.bias) -> np.ndarray:
    """One MAC per row: uint32 ``acc``, uint8 ``a`` and ``b`` (broadcast); uint32 result."""
    check_mode(mode, fmt_a, fmt_b)
    acc = check_codes(acc, 32, "acc")
    a = check_codes(a, 8, "a")
    b = check_codes(b, 8, "b")
    if mode != "fp8":
        lanes_a, lanes_b = unpack_lanes(a, mode), unpack_lanes(b, mode)
        total = acc + (lanes_a * lanes_b).sum(axis=-1)
        return (total & 0xFFFFFFFF).astype(np.uint32)

    wide_a, wide_b, acc16 = convert(a, fmt_a, bias), convert(b, fmt_b, bias), acc & 0xFFFF
    sa, Sa, La = split_codes(wide_a, FP9)
    sb, Sb, Lb = split_codes(wide_b, FP9)
    sc, Sc, Lc = split_codes(acc16, DLFLOAT16)
    sign, mag, exp, sticky = add_exact(sa ^ sb, Sa * Sb, La + Lb, sc, Sc, Lc)
    special = is_nan_code(wide_a, FP9) | is_nan_code(wide_b, FP9) | is_nan_code(acc16, DLFLOAT16)
    return round_accumulator(sign, mag, exp, sticky, special).astype(np.uint32)
