"""The accumulators' roundings done by float32 arithmetic: the fast path of the GEMMs.

``dlfloat16`` (1-6-9, rnu) and ``fp30`` (1-6-23, rne) are ``dl``-style formats whose
finite values all lie in float32's normal range, on float32's grid (10 and 24 significant
bits). A fold step ``acc <- round(acc + x)`` (``mpe``: x = a*b; ``dladd`` and the chunks:
x a ``dlfloat16``; ``fmatree``: x an ``fp30``) is then a float32 add and, for
``dlfloat16``, one integer round to 10 bits, instead of the exact integer path of
``codec.add_exact`` and ``round_exact`` (about 60 array passes a step).

Why the float32 add gives the contract's bits. Let x be the addend of larger magnitude,
y the other, both nonzero (with a zero addend the sum is exact), 2**ex <= |x| <
2**(ex+1), and P the number of y's significant bits (8 for an ``fp9`` product, 10 for a
``dlfloat16``, 24 for an ``fp30``).

* If y's lowest set bit is at most 22 places below 2**ex, the exact sum's bits lie from
  there up to 2**(ex+1) (x has at most 24 bits, from 2**ex down): 24 bits, which
  float32 holds exactly, so the rounding that follows is the only one, as the contract
  wants.
* Otherwise |y| < 2**(ex-23+P). For ``fp30`` nothing more is needed: the float32 add is
  itself the format's rounding (correctly rounded, ties to even, on the same grid). For
  ``dlfloat16``, |y| < 2**(ex-13), an eighth of x's half unit in the last place
  (2**(ex-10), or 2**(ex-11) on the grid just below a power of two). x is on the grid:
  an accumulator is, and so is a product (8 bits) that is the larger addend here, since
  then |x| > 2**13 |y| >= 2**-18. So the exact sum rounds to x, with no tie, and so does
  the float32 sum, which lies within |y| + 2**(ex-24) of x.

So float32's result, rounded to the format as a float (ties away for ``dlfloat16``:
add half a unit of the 10th bit to the magnitude's bits, then clear the 14 bits below;
a carry moves into the exponent as it should), equals the contract's rounding of the
exact sum, *as long as the result is 0 or lies in the format's finite range*
[``min``, ``max``]. The contract's grid below ``min`` (only 0 and ``min``: ``e = 0,
m = 0`` is zero, not 2**-31) and its overflow actions are not float32's, so a fold
watches every rounded value (``RangeWatch``); the few elements that ever leave the range
are computed again by the exact path. A NaN stays NaN through float32 adds, as the
accumulators' NaN stays NaN.
"""

from __future__ import annotations

import numpy as np

from .codec import decode
from .formats import DLFLOAT16, FP30, FloatFormat

_FLOAT32_MAN = 23


def _bits(value: float) -> int:
    return int(np.array(value, np.float32).view(np.uint32))


class FloatAccumulator:
    """A ``dl``-style accumulator format held in float32: codes to values and back, the
    rounding of a float32 result to the format, and its finite range as float32 bits."""

    def __init__(self, fmt: FloatFormat, rounding: str):
        assert fmt.style == "dl" and fmt.man_bits <= _FLOAT32_MAN and fmt.bias == 31
        self.fmt = fmt
        self.rounding = rounding
        self.drop = _FLOAT32_MAN - fmt.man_bits          # float32 bits below the format's
        self._table = None
        M = fmt.man_bits
        e_max, m_max = fmt.max_fields
        smallest = 2.0 ** (-fmt.bias) * (1 + 2.0 ** -M)
        largest = 2.0 ** (e_max - fmt.bias) * (1 + m_max * 2.0 ** -M)
        self.min_bits = np.uint32(_bits(smallest))
        self.max_bits = np.uint32(_bits(largest))
        assert float(np.uint32(self.max_bits).view(np.float32)) == largest
        if self.drop:
            # rnu on the magnitude's bits: add half of the last kept bit, clear the rest.
            assert rounding == "rnu"
            self.half = np.uint32(1 << (self.drop - 1))
            self.keep = np.uint32((0xFFFFFFFF << self.drop) & 0xFFFFFFFF)
        else:
            assert rounding == "rne"     # float32's own rounding is the format's

    def values(self, codes) -> np.ndarray:
        """float32 values of the format's codes (NaN for the NaN code)."""
        if self.fmt.width > 16:
            return decode(codes, self.fmt).astype(np.float32)
        if self._table is None:          # every code's value: one gather, not a decode
            self._table = decode(np.arange(1 << self.fmt.width), self.fmt).astype(np.float32)
        return self._table[np.asarray(codes, np.int64)]

    def round_(self, bits: np.ndarray) -> None:
        """Round float32 values (given as their uint32 view) to the format, in place."""
        if self.drop:
            np.add(bits, self.half, out=bits)
            np.bitwise_and(bits, self.keep, out=bits)

    def codes(self, values: np.ndarray) -> np.ndarray:
        """int64 codes of float32 values that are 0, NaN or in the finite range."""
        bits = np.ascontiguousarray(values, np.float32).view(np.uint32).astype(np.int64)
        fmt = self.fmt
        exponent = ((bits >> _FLOAT32_MAN) & 0xFF) - 127 + fmt.bias
        codes = (((bits >> 31) << fmt.sign_shift) | (exponent << fmt.man_bits)
                 | ((bits & 0x7FFFFF) >> self.drop))
        codes = np.where((bits & 0x7FFFFFFF) == 0, 0, codes)
        return np.where(np.isnan(values), fmt.canonical_nan, codes)


DL16 = FloatAccumulator(DLFLOAT16, "rnu")
FP30_ACC = FloatAccumulator(FP30, "rne")


class RangeWatch:
    """Watches every rounded value of a fold of ``shape`` float32 values: ``outside()``
    is true where one was ever nonzero and outside [min, max] (NaN included)."""

    def __init__(self, acc: FloatAccumulator, shape):
        self.acc = acc
        self.largest = np.zeros(shape, np.uint32)                 # of the magnitudes
        self.smallest = np.full(shape, 0xFFFFFFFF, np.uint32)     # of magnitude - 1
        self.magnitude = np.empty(shape, np.uint32)

    def see(self, bits: np.ndarray) -> None:
        """Take one step's rounded values (their uint32 view)."""
        magnitude = self.magnitude
        np.bitwise_and(bits, np.uint32(0x7FFFFFFF), out=magnitude)
        np.maximum(self.largest, magnitude, out=self.largest)
        # magnitude - 1 wraps a zero to the largest uint32, so zeros never count here.
        np.subtract(magnitude, np.uint32(1), out=magnitude)
        np.minimum(self.smallest, magnitude, out=self.smallest)

    def outside(self) -> np.ndarray:
        return ((self.largest > self.acc.max_bits)
                | (self.smallest < self.acc.min_bits - np.uint32(1)))


def row_blocks(rows: int, cols: int, elements: int = 32768):
    """Slices of ``rows`` whose blocks of ``rows x cols`` values stay in the cache for a
    whole fold (about ``elements`` values each)."""
    step = max(1, elements // max(cols, 1))
    return [slice(r, min(r + step, rows)) for r in range(0, rows, step)]
