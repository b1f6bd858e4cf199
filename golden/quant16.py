"""Golden ``quant16``: ``dlfloat16`` to ``e4m3`` / ``e5m2`` (docs/numerics.md, ``quant16``).

y = rne(x) into the target; overflow ``sat`` (default: +-max) or ``nan`` (``e4m3``: 0x7F;
``e5m2``, an ``ieee`` format: +-inf). The NaN/Inf input 0x7FFF (either sign) gives the
target's canonical NaN, 0x7F, whatever the overflow action. A nonzero value that rounds
to zero keeps its sign; the ``dlfloat16`` zero gives +0.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, decode, encode
from .formats import DLFLOAT16, E4M3, E5M2, FormatError
from .params import FMT, OVERFLOW


def quant16(x, fmt: str = "e4m3", bias: int = E4M3.bias, overflow: str = "sat") -> np.ndarray:
    """uint16 ``dlfloat16`` codes to uint8 codes of ``fmt``."""
    for param, value in ((FMT, fmt), (OVERFLOW, overflow)):
        if value not in param.choices:
            raise FormatError(f"quant16: {param.name} must be {param.allowed}, got {value!r}")
    target = E4M3.with_bias(bias) if fmt == "e4m3" else E5M2
    value = decode(check_codes(x, 16, DLFLOAT16.name), DLFLOAT16)  # exact; NaN for 0x7FFF
    nan = np.isnan(value)
    y = encode(np.where(nan, 0.0, value), target, rounding="rne", overflow=overflow)
    return np.where(nan, target.canonical_nan, y).astype(np.uint8)
