"""Golden ``convert``: ``e4m3``/``e5m2`` to ``fp9`` codes (docs/numerics.md, ``convert``).

Lossless for every input code and every ``e4m3`` bias 0..15. The sign bit passes through
unchanged, so -0 becomes fp9 -0 (0x100), as ``e5m2``'s ``c << 1`` rule gives. ``e5m2``
infinities and NaN payloads carry over; the ``e4m3`` NaN S.1111.111 becomes S.11111.111.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, decode, encode
from .formats import E4M3, E5M2, FP9, FormatError
from .params import FMT


def convert(a, fmt: str = "e4m3", bias: int = E4M3.bias) -> np.ndarray:
    """uint8 codes of ``fmt`` to uint16 ``fp9`` codes."""
    if fmt not in FMT.choices:
        raise FormatError(f"convert: unknown source format {fmt!r} "
                          f"(known: {', '.join(FMT.choices)})")
    src = E4M3.with_bias(bias) if fmt == "e4m3" else E5M2
    a = check_codes(a, 8, src.name)
    if fmt == "e5m2":
        return (a << 1).astype(np.uint16)
    sign = a >> 7
    magnitude = a & 0x7F
    value = decode(magnitude, src)
    nan = np.isnan(value)
    y = encode(np.where(nan, 0.0, value), FP9).astype(np.int64)
    y = np.where(nan, FP9.canonical_nan, y)
    return ((sign << (FP9.width - 1)) | y).astype(np.uint16)
