"""Exact reference for the float formats, from docs/numerics.md, Formats and Rounding.

Independent of ``golden/``: it takes no parameter from ``golden.formats`` and does all its
arithmetic with ``fractions.Fraction`` (float64 inputs are converted exactly). Two rounding
references are given and cross-checked by the tests:

* ``Grid``: every finite representable value is enumerated and sorted, the NaN/Inf slot
  (or, for ``finite``, the first power of two above the top binade) is appended as the
  overflow point, and x is rounded to its nearest neighbour with the tie rule. Used for
  every format up to 16 bits.
* ``round_direct``: binade by comparison with powers of two, quantum, round the quotient.
  Used for ``fp30``, which is too large to enumerate.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from fractions import Fraction

# The format table (docs/numerics.md): name -> (E, M, default bias, style, (min bias, max bias)).
SPEC_FORMATS = {
    "e4m3": (4, 3, 11, "fn", (0, 15)),
    "e5m2": (5, 2, 15, "ieee", (15, 15)),
    "fp9": (5, 3, 15, "ieee", (15, 15)),
    "dlfloat16": (6, 9, 31, "dl", (31, 31)),
    "fp30": (6, 23, 31, "dl", (31, 31)),
    "fp8seb": (4, 3, 0, "finite", (-32, 31)),
}
SPEC_INT_FORMATS = {"int4": 4, "int2": 2}

HALF = Fraction(1, 2)


def pow2(k: int) -> Fraction:
    return Fraction(2) ** k


@dataclass(frozen=True)
class Spec:
    """A (1-E-M) format at one bias, with the values the Styles table gives its codes."""

    name: str
    E: int
    M: int
    bias: int
    style: str

    @classmethod
    def of(cls, name: str, bias: int | None = None) -> "Spec":
        E, M, b, style, _ = SPEC_FORMATS[name]
        return cls(name, E, M, b if bias is None else bias, style)

    @property
    def width(self) -> int:
        return 1 + self.E + self.M

    @property
    def sign_bit(self) -> int:
        return 1 << (self.E + self.M)

    @property
    def e_all(self) -> int:
        return (1 << self.E) - 1

    @property
    def m_all(self) -> int:
        return (1 << self.M) - 1

    @property
    def canonical_nan(self) -> int | None:
        """Rounding: positive, exponent and mantissa all ones. ``finite`` has none."""
        if self.style == "finite":
            return None
        return (self.e_all << self.M) | self.m_all

    def inf_code(self, negative: bool) -> int:
        assert self.style == "ieee"
        return (self.sign_bit if negative else 0) | (self.e_all << self.M)

    # The Styles table -----------------------------------------------------------------
    def value(self, code: int) -> tuple[str, int, Fraction]:
        """(kind, sign, magnitude) of a code; kind is "num", "nan" or "inf".

        ``dl`` zero and ``dl`` NaN/Inf ignore the sign (reported as sign 0).
        """
        s = (code >> (self.E + self.M)) & 1
        e = (code >> self.M) & self.e_all
        m = code & self.m_all
        top = e == self.e_all
        if self.style == "ieee" and top:
            return ("inf" if m == 0 else "nan"), s, Fraction(0)
        if self.style in ("fn", "dl") and top and m == self.m_all:
            return "nan", (0 if self.style == "dl" else s), Fraction(0)
        if self.style == "dl":
            if e == 0 and m == 0:
                return "num", 0, Fraction(0)
            return "num", s, pow2(e - self.bias) * (1 + Fraction(m, 1 << self.M))
        if e == 0:
            return "num", s, pow2(1 - self.bias) * Fraction(m, 1 << self.M)
        return "num", s, pow2(e - self.bias) * (1 + Fraction(m, 1 << self.M))

    def signed_value(self, code: int) -> Fraction | None:
        """The exact value, or None for a NaN/Inf code (zero loses its sign here)."""
        kind, s, mag = self.value(code)
        if kind != "num":
            return None
        return -mag if s else mag

    # Derived from the value table, not from a formula --------------------------------
    def finite_magnitudes(self) -> list[tuple[Fraction, int]]:
        """(value, magnitude code) of every non-negative finite code, sorted by value."""
        out = []
        for code in range(self.sign_bit):
            kind, _, mag = self.value(code)
            if kind == "num":
                out.append((mag, code))
        out.sort()
        return out

    @property
    def max_code(self) -> int:
        """Largest finite magnitude code: just below the top codes the style reserves.

        (The tests check it against ``finite_magnitudes()`` wherever that can be listed.)
        """
        if self.style == "ieee":
            return ((self.e_all - 1) << self.M) | self.m_all
        if self.style in ("fn", "dl"):
            return (self.e_all << self.M) | (self.m_all - 1)
        return (self.e_all << self.M) | self.m_all

    @property
    def max_value(self) -> Fraction:
        return self.value(self.max_code)[2]

    @property
    def min_positive(self) -> Fraction:
        """Code 1: the smallest subnormal, or in ``dl`` e=0, m=1."""
        return self.value(1)[2]

    def overflow_point(self) -> tuple[Fraction, int]:
        """The grid point just above max finite, and its mantissa LSB.

        ``ieee``: the inf slot 2^(emax+1) (m=0, even). ``fn``/``dl``: the NaN slot
        (e and m all ones, odd). ``finite``: 2^(top exponent + 1) (m=0, even).
        """
        top = self.e_all - self.bias
        if self.style == "ieee":
            return pow2(top), 0
        if self.style in ("fn", "dl"):
            return pow2(top) * (1 + Fraction(self.m_all, 1 << self.M)), 1
        return pow2(top + 1), 0


# Rounding results: a magnitude code, or OVERFLOW. ------------------------------------
OVERFLOW = -1


class Grid:
    """Rounding by enumeration: the sorted finite values plus the overflow point."""

    def __init__(self, spec: Spec):
        self.spec = spec
        pairs = spec.finite_magnitudes()
        slot, slot_parity = spec.overflow_point()
        assert slot > pairs[-1][0]
        assert (pairs[-1][1], pairs[1][0]) == (spec.max_code, spec.min_positive)
        self.values = [v for v, _ in pairs] + [slot]
        self.codes = [c for _, c in pairs] + [OVERFLOW]
        self.parity = [c & 1 for _, c in pairs] + [slot_parity]

    def round_mag(self, a: Fraction, rounding: str) -> int:
        """Magnitude code of |x| = a rounded on the grid, or OVERFLOW."""
        assert a >= 0
        vals = self.values
        i = bisect.bisect_left(vals, a)
        if i == len(vals):  # beyond the overflow point: unbounded grid, still > max
            return OVERFLOW
        if vals[i] == a:
            return self.codes[i]
        lo, hi = i - 1, i  # a > vals[0] == 0, so i >= 1
        twice = 2 * a
        mid2 = vals[lo] + vals[hi]
        if twice < mid2:
            pick = lo
        elif twice > mid2:
            pick = hi
        elif rounding == "rnu":
            pick = hi
        else:
            pick = lo if self.parity[lo] == 0 else hi
            assert self.parity[lo] != self.parity[hi], "tie between two odd/even codes"
        return self.codes[pick]


def floor_log2(a: Fraction) -> int:
    """floor(log2 a) for a > 0, by comparison with powers of two."""
    k = a.numerator.bit_length() - a.denominator.bit_length()
    while pow2(k) > a:
        k -= 1
    while pow2(k + 1) <= a:
        k += 1
    return k


def grid_tie(x: Fraction, man_bits: int, min_positive: Fraction,
             largest: Fraction | None = None) -> bool:
    """Is |x| exactly halfway between two neighbouring points of a float grid with
    ``man_bits`` fraction bits, whose smallest positive value is ``min_positive`` with
    nothing between it and 0 (never, above ``largest`` when given)?"""
    mag = abs(x)
    if mag == 0 or (largest is not None and mag > largest):
        return False
    if mag < min_positive:
        return mag == min_positive / 2
    q = pow2(floor_log2(mag) - man_bits)
    return (mag / q).denominator == 2


def _round_quotient(n: Fraction, rounding: str) -> int:
    """Round n >= 0 to an integer: nearest, ties to even (rne) or up (rnu)."""
    fl = n.numerator // n.denominator
    rem = n - fl
    if rem < HALF:
        return fl
    if rem > HALF:
        return fl + 1
    if rounding == "rnu":
        return fl + 1
    return fl if fl % 2 == 0 else fl + 1


@functools.lru_cache(maxsize=None)
def _max_value(spec: Spec) -> Fraction:
    return spec.max_value


def round_direct(spec: Spec, a: Fraction, rounding: str) -> int:
    """Magnitude code of a = |x| rounded into ``spec`` (exponent unbounded), or OVERFLOW."""
    assert a >= 0
    M = spec.M
    if a == 0:
        return 0
    if spec.style == "dl":
        minpos = pow2(-spec.bias) * (1 + Fraction(1, 1 << M))
        if a < minpos:  # only 0 and min positive live down here
            half = minpos / 2
            if a < half:
                return 0
            if a > half:
                return 1
            return 1 if rounding == "rnu" else 0  # 0 is even, min positive has m=1
        emin = -spec.bias
    else:
        emin = 1 - spec.bias
    e = floor_log2(a)
    if e < emin:  # subnormal range (never reached for dl: a >= minpos > 2^emin)
        q = pow2(emin - M)
        n = _round_quotient(a / q, rounding)  # 0..2^M; 2^M is the first normal
        code = n
        value = n * q
    else:
        q = pow2(e - M)
        n = _round_quotient(a / q, rounding)  # 2^M..2^(M+1)
        value = n * q
        if n == 1 << (M + 1):
            e, n = e + 1, 1 << M
        code = ((e + spec.bias) << M) | (n - (1 << M))
    if value > _max_value(spec):
        return OVERFLOW
    return code


def encode_ref(spec: Spec, x: float, round_mag, rounding: str, overflow: str) -> int:
    """Rounding plus the Project choices (docs/numerics.md), for one float64 x.

    ``round_mag(ax, rounding)`` gives the magnitude code of the float ``ax = |x|`` (finite,
    nonzero) rounded, or OVERFLOW. Raises ValueError where the operation does not exist
    (overflow="nan" on ``finite``).
    """
    if overflow == "nan" and spec.style == "finite":
        raise ValueError("finite formats have no NaN")
    if math.isnan(x):
        return spec.canonical_nan if spec.style != "finite" else spec.max_code
    if x == 0:
        return 0
    neg = x < 0
    sign = spec.sign_bit if neg else 0
    mag = OVERFLOW if math.isinf(x) else round_mag(abs(x), rounding)
    if mag == OVERFLOW:
        if overflow == "sat":
            return sign | spec.max_code
        if spec.style == "ieee":
            return spec.inf_code(neg)
        return spec.canonical_nan
    if mag == 0 and spec.style == "dl":
        return 0
    return sign | mag


def encode_int_ref(bits: int, x: float, rounding: str) -> int:
    """Round to an integer, saturate to the lane range, two's complement lane code."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if math.isinf(x):
        v = hi if x > 0 else lo
    else:
        a = abs(Fraction(x))
        n = _round_quotient(a, rounding)
        v = -n if x < 0 else n
        v = max(lo, min(hi, v))
    return v & ((1 << bits) - 1)


def decode_int_ref(bits: int, code: int) -> int:
    return code - (1 << bits) if code >= 1 << (bits - 1) else code


# dladd: the sum of two dlfloat16 codes (docs/numerics.md, ``dladd``) ------------------
DL_SPEC = Spec.of("dlfloat16")
DL_CODES = 1 << DL_SPEC.width


@functools.lru_cache(maxsize=None)
def dl_values() -> tuple:
    """The exact value of every dlfloat16 code (None for the NaN/Inf codes)."""
    return tuple(DL_SPEC.signed_value(c) for c in range(DL_CODES))


def accumulator_ref(x: Fraction | None) -> int:
    """The ``mpe`` rules for a dlfloat16 result: NaN/Inf input (None) or overflow gives
    the NaN/Inf code, an exact zero 0, otherwise rnu (a tiny value rounds to the smallest
    dlfloat16 or to 0, which has no sign)."""
    if x is None:
        return DL_SPEC.canonical_nan
    if x == 0:
        return 0
    mag = round_direct(DL_SPEC, abs(x), "rnu")
    if mag == OVERFLOW:
        return DL_SPEC.canonical_nan
    if mag == 0:
        return 0
    return (DL_SPEC.sign_bit if x < 0 else 0) | mag


def dladd_ref(x: int, y: int) -> int:
    """``dladd`` of two dlfloat16 codes: rnu of the exact sum, with the ``mpe`` rules."""
    vx, vy = dl_values()[x], dl_values()[y]
    return accumulator_ref(None if vx is None or vy is None else vx + vy)


# The same in exact integers, for sweeps too large for Fraction: every dlfloat16 value is
# an integer number of units of 2**-40 (significand 1.m times 2**(e - 31), e >= 0).
DL_UNIT_EXP = -DL_SPEC.bias - DL_SPEC.M


@functools.lru_cache(maxsize=None)
def dl_units() -> tuple:
    """Every dlfloat16 code's value in units of 2**-40 (None for the NaN/Inf codes)."""
    out = []
    for v in dl_values():
        out.append(None if v is None else int(v / pow2(DL_UNIT_EXP)))
    return tuple(out)


def dladd_units_ref(x: int, y: int) -> int:
    """``dladd_ref`` by integer arithmetic: the sum S in units, then the binade of |S|
    (its bit length) gives the quantum, rounded half away from zero."""
    M = DL_SPEC.M
    ux, uy = dl_units()[x], dl_units()[y]
    if ux is None or uy is None:
        return DL_SPEC.canonical_nan
    s = ux + uy
    if s == 0:
        return 0
    a = abs(s)
    minpos = (1 << M) + 1                   # 2**-31 * (1 + 2**-9), in units
    if a < minpos:                          # only 0 and min positive down here
        mag = 1 if 2 * a >= minpos else 0
    else:
        drop = a.bit_length() - (M + 1)     # >= 0: the quantum is 2**drop units
        q = (a + (1 << drop >> 1)) >> drop if drop else a
        if q == 1 << (M + 1):               # rounded up into the next binade
            q, drop = q >> 1, drop + 1
        # q * 2**(drop - 40) = 2**(drop + M - 40) * q / 2**M: exponent field drop.
        mag = (drop << M) | (q - (1 << M))
        if mag > DL_SPEC.max_code:
            return DL_SPEC.canonical_nan
    if mag == 0:
        return 0
    return (DL_SPEC.sign_bit if s < 0 else 0) | mag
