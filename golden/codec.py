"""Vectorized decode and encode for every format, and the exact rounding core.

``round_exact`` is the one rounding routine of the golden model: it takes an exact value
as (sign, integer magnitude, power-of-two exponent, sticky bit) and rounds it to a format
per docs/numerics.md, Rounding. ``encode`` feeds it float64 values; the arithmetic units feed
it exact sums that do not fit a float64.
"""

from __future__ import annotations

import numpy as np

from .formats import (OVERFLOWS, ROUNDINGS, FloatFormat, FormatError, IntFormat,
                      check_bias, get_format)

_MAX_MAG_BITS = 62  # magnitudes handed to round_exact must be below 2**62


def code_dtype(width: int):
    """The smallest unsigned numpy dtype that holds a code of ``width`` bits."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if width <= np.iinfo(dt).bits:
            return dt
    raise FormatError(f"no dtype for {width}-bit codes")


def bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (0 for 0), exact for every int64."""
    x = np.asarray(x, dtype=np.int64)
    _, e = np.frexp(x.astype(np.float64))
    e = e.astype(np.int64)
    # float64(x) can round up to the next power of two: then x >> (e-1) is 0.
    too_big = (x > 0) & ((x >> np.maximum(e - 1, 0)) == 0)
    return e - too_big


def _resolve_bias(fmt: FloatFormat, bias) -> np.ndarray:
    if bias is None:
        return np.asarray(fmt.bias, dtype=np.int64)
    check_bias(fmt, bias)
    return np.asarray(bias).astype(np.int64)


def check_codes(codes, width: int, fmt_name: str) -> np.ndarray:
    """``codes`` as int64, after checking they are integers of ``width`` bits."""
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise FormatError(f"{fmt_name}: codes must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= (1 << width)):
        raise FormatError(f"{fmt_name}: codes must be in 0..{(1 << width) - 1}")
    return c


# Decode -------------------------------------------------------------------------------

def decode(codes, fmt, bias=None) -> np.ndarray:
    """Codes to float64 values; NaN for NaN and Inf codes.

    ``bias`` overrides the format's bias (a scalar or an array broadcast with ``codes``);
    it must lie in the format's bias range. Integer formats decode one lane code
    (``bits`` wide, see ``unpack_lanes``) to its signed value.
    """
    fmt = get_format(fmt)
    if isinstance(fmt, IntFormat):
        c = check_codes(codes, fmt.bits, fmt.name)
        return np.where(c >= (1 << (fmt.bits - 1)), c - (1 << fmt.bits), c).astype(np.float64)

    c = check_codes(codes, fmt.width, fmt.name)
    sign, sig, lsb_exp = split_codes(c, fmt, _resolve_bias(fmt, bias))
    mag = np.ldexp(sig.astype(np.float64), lsb_exp)
    val = np.where(sign == 1, -mag, mag)
    return np.where(is_nan_code(c, fmt), np.nan, val)


def split_codes(codes, fmt: FloatFormat, bias=None):
    """Codes to exact (sign, integer significand, exponent of the significand's LSB).

    The value is (-1)**sign * significand * 2**exponent (NaN and Inf codes give
    meaningless numbers: test them with ``is_nan_code``). The ``dl`` zero has sign 0.
    """
    c = np.asarray(codes).astype(np.int64)
    b = fmt.bias if bias is None else bias
    M = fmt.man_bits
    sign = (c >> fmt.sign_shift) & 1
    e = (c >> M) & fmt.exp_all_ones
    m = c & fmt.man_all_ones
    if fmt.has_subnormals:
        return sign, np.where(e == 0, m, m | (1 << M)), np.maximum(e, 1) - b - M
    zero = (e == 0) & (m == 0)
    return np.where(zero, 0, sign), np.where(zero, 0, m | (1 << M)), e - b - M


def is_nan_code(codes, fmt) -> np.ndarray:
    """True for NaN codes and, in ``ieee`` formats, for infinities too."""
    fmt = get_format(fmt)
    c = np.asarray(codes).astype(np.int64)
    e = (c >> fmt.man_bits) & fmt.exp_all_ones
    m = c & fmt.man_all_ones
    if fmt.style == "ieee":
        return e == fmt.exp_all_ones
    if fmt.style in ("fn", "dl"):
        return (e == fmt.exp_all_ones) & (m == fmt.man_all_ones)
    return np.zeros(c.shape, dtype=bool)


# Rounding core ------------------------------------------------------------------------

def _check_modes(fmt: FloatFormat, rounding: str, overflow: str) -> None:
    if rounding not in ROUNDINGS:
        raise FormatError(f"unknown rounding {rounding!r} (known: {', '.join(ROUNDINGS)})")
    if overflow not in OVERFLOWS:
        raise FormatError(f"unknown overflow action {overflow!r} (known: {', '.join(OVERFLOWS)})")
    if overflow == "nan" and not fmt.has_nan:
        raise FormatError(f"{fmt.name} has no NaN code: its overflow action must be 'sat'")


def _overflow_code(fmt: FloatFormat, sign: np.ndarray, overflow: str) -> np.ndarray:
    if overflow == "sat":
        return (sign << fmt.sign_shift) | fmt.max_code
    if fmt.has_inf:
        return (sign << fmt.sign_shift) | (fmt.exp_all_ones << fmt.man_bits)
    return np.full(sign.shape, fmt.canonical_nan, dtype=np.int64)


def round_exact(sign, mag, exp, fmt, *, sticky=False, bias=None, rounding="rne",
                overflow="sat") -> np.ndarray:
    """Round the exact value (-1)**sign * (mag + d) * 2**exp into ``fmt``.

    ``mag`` is a non-negative integer below 2**62; ``d`` is 0 where ``sticky`` is false
    and some value strictly between 0 and 1 where it is true (the OR of bits that were
    shifted out). A set sticky bit needs ``mag`` to reach at least one bit below the
    rounding position, which holds whenever ``mag`` keeps M+2 or more significant bits.

    Rounds on the format's grid as if the exponent were unbounded above, then applies the
    overflow action (``sat``: +-max finite; ``nan``: the NaN code, or +-inf in ``ieee``
    formats). A nonzero value that rounds to zero keeps its sign (``dl``: code 0); an
    exact zero gives +0. Returns int64 codes.
    """
    fmt = get_format(fmt)
    if not isinstance(fmt, FloatFormat):
        raise FormatError(f"round_exact needs a float format, not {fmt.name}")
    _check_modes(fmt, rounding, overflow)
    b = _resolve_bias(fmt, bias)
    sign, mag, exp, sticky, b = np.broadcast_arrays(
        np.asarray(sign, np.int64), np.asarray(mag, np.int64), np.asarray(exp, np.int64),
        np.asarray(sticky, bool), b)
    if mag.size and (mag.min() < 0 or mag.max() >= (1 << _MAX_MAG_BITS)):
        raise ValueError("round_exact: magnitude out of range")
    M = fmt.man_bits

    # Quantum exponent q of the value's binade (never below the lowest full binade).
    value_exp = bit_length(mag) - 1 + exp
    q = np.maximum(value_exp, fmt.emin(b)) - M
    s = q - exp                       # bits of mag below the quantum

    # s <= 0: the value is a multiple of the quantum (sticky is then never set).
    r_exact = mag << np.clip(-s, 0, 62)
    # s >= 1: round mag >> s using the dropped bits and the sticky bit.
    sc = np.clip(s, 1, _MAX_MAG_BITS)
    r_trunc = mag >> sc
    low = mag & ((np.int64(1) << sc) - 1)
    half = np.int64(1) << (sc - 1)
    if rounding == "rne":
        tie_up = (r_trunc & 1) == 1
    else:
        tie_up = np.ones_like(sticky)
    up = (low > half) | ((low == half) & (sticky | tie_up))
    up &= s <= _MAX_MAG_BITS          # beyond that, the value is below half a quantum
    r = np.where(s <= 0, r_exact, r_trunc + up)

    # A carry into the next binade.
    carry = r == (1 << (M + 1))
    r = np.where(carry, r >> 1, r)
    q = q + carry

    if fmt.style == "dl":
        # Below min positive (2**M + 1) * 2**q0 the grid has only 0 and min positive
        # (e=0, m=0 is zero, not 2**-bias): round between those two, ties to 0 under rne
        # (0 is even, min positive has m=1), away from zero under rnu.
        q0 = fmt.emin(b) - M
        tiny = (q == q0) & (r <= (1 << M))
        s2 = q0 - 1 - exp             # compare 2*value/2**q0 with 2**M + 1
        s2c = np.clip(s2, 0, _MAX_MAG_BITS)
        twice = np.where(s2 <= 0, mag << np.clip(-s2, 0, 62), mag >> s2c)
        twice = np.where(s2 > _MAX_MAG_BITS, 0, twice)
        rest = ((mag & ((np.int64(1) << s2c) - 1)) != 0) & (s2 > 0) | sticky
        rest |= (s2 > _MAX_MAG_BITS) & (mag != 0)
        minpos = (1 << M) + 1
        above = (twice > minpos) | ((twice == minpos) & rest)
        tie = (twice == minpos) & ~rest
        to_min = above | (tie & (rounding == "rnu"))
        r = np.where(tiny, np.where(to_min, minpos, 0), r)

    normal = r >= (1 << M)
    e_field = np.where(normal, q + M + b, 0)
    m_field = np.where(normal, r - (1 << M), r)
    if fmt.style == "dl":
        e_field = np.where(normal, e_field, 0)

    e_max, m_max = fmt.max_fields
    over = (e_field > e_max) | ((e_field == e_max) & (m_field > m_max))
    codes = (sign << fmt.sign_shift) | (np.clip(e_field, 0, fmt.exp_all_ones) << M) | m_field
    codes = np.where(over, _overflow_code(fmt, sign, overflow), codes)

    zero = r == 0
    exact_zero = (mag == 0) & ~sticky
    if fmt.style == "dl":
        zero_code = np.zeros_like(sign)
    else:
        zero_code = np.where(exact_zero, 0, sign << fmt.sign_shift)
    return np.where(zero, zero_code, codes)


def split_float(x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite float64 values to exact (sign, 53-bit integer magnitude, exponent)."""
    x = np.asarray(x, dtype=np.float64)
    sign = np.signbit(x).astype(np.int64)
    frac, e = np.frexp(np.abs(x))
    mag = (frac * 2.0 ** 53).astype(np.int64)
    return sign, mag, e.astype(np.int64) - 53


# Bits kept below the larger addend by add_exact (the MPE's dlfloat16 sums need 12).
_ALIGN_BITS = 40


def add_exact(sign_x, sig_x, exp_x, sign_y, sig_y, exp_y, align_bits: int = _ALIGN_BITS):
    """The exact sum of two signed values sig * 2**exp, as (sign, mag, exp, sticky).

    Both are aligned to the larger exponent minus ``align_bits``; an addend further below
    only sets the sticky bit, which is exact for rounding to any format with fewer than
    ``align_bits - 2`` significand bits. Significands must stay below 2**(61 -
    align_bits). Subtracting a sticky addend takes one more unit off the magnitude, so that
    mag + d (0 < d < 1) stays the exact result.
    """
    base = np.maximum(exp_x, exp_y) - align_bits

    def aligned(sig, exp):
        shift = exp - base
        right = np.clip(-shift, 0, 62)
        value = np.where(shift >= 0, sig << np.clip(shift, 0, 62), sig >> right)
        sticky = (shift < 0) & ((sig & ((np.int64(1) << right) - 1)) != 0)
        return value, sticky

    vx, stx = aligned(sig_x, exp_x)
    vy, sty = aligned(sig_y, exp_y)
    same = sign_x == sign_y
    x_bigger = vx >= vy                     # a sticky addend is always the smaller one
    mag = np.where(same, vx + vy, np.abs(vx - vy))
    sticky = stx | sty
    mag = np.where(~same & sticky, mag - 1, mag)
    sign = np.where(same, sign_x, np.where(x_bigger, sign_x, sign_y))
    return sign, mag, base, sticky


# Encode -------------------------------------------------------------------------------

def encode(x, fmt, bias=None, rounding="rne", overflow="sat") -> np.ndarray:
    """Float64 values to codes of ``fmt``, rounded once (docs/numerics.md, Rounding).

    ``rounding``: ``rne`` (ties to even) or ``rnu`` (ties away from zero).
    ``overflow``: ``sat`` (+-max finite) or ``nan`` (NaN code; +-inf in ``ieee`` formats).
    NaN input gives the canonical NaN (``finite`` formats: +max). An infinite input is an
    overflow and takes the overflow action. Exact zeros (either sign) give +0.
    Integer formats round to an integer with the same rounding and saturate; they give
    lane codes (``bits`` wide, see ``pack_lanes``).
    """
    fmt = get_format(fmt)
    x = np.asarray(x, dtype=np.float64)
    if isinstance(fmt, IntFormat):
        if rounding not in ROUNDINGS:
            raise FormatError(f"unknown rounding {rounding!r} (known: {', '.join(ROUNDINGS)})")
        if overflow != "sat":
            raise FormatError(f"{fmt.name} has no NaN code: its overflow action must be 'sat'")
        if np.isnan(x).any():
            raise FormatError(f"{fmt.name} cannot encode NaN")
        if rounding == "rne":
            v = np.rint(x)
        else:
            # |x| - floor(|x|) is exact; |x| + 0.5 is not (0.49999999999999994 + 0.5 == 1).
            whole = np.floor(np.abs(x))
            v = np.sign(x) * (whole + (np.abs(x) - whole >= 0.5))
        v = np.clip(v, fmt.min_value, fmt.max_value).astype(np.int64)
        return (v & ((1 << fmt.bits) - 1)).astype(code_dtype(fmt.bits))

    _check_modes(fmt, rounding, overflow)
    finite = np.isfinite(x)
    sign, mag, exp = split_float(np.where(finite, x, 0.0))
    codes = round_exact(sign, mag, exp, fmt, bias=bias, rounding=rounding, overflow=overflow)
    isinf = np.isinf(x)
    if isinf.any():
        codes = np.where(isinf, _overflow_code(fmt, np.signbit(x).astype(np.int64), overflow),
                         codes)
    isnan = np.isnan(x)
    if isnan.any():
        nan_code = fmt.canonical_nan if fmt.has_nan else fmt.max_code
        codes = np.where(isnan, nan_code, codes)
    return codes.astype(code_dtype(fmt.width))


# Integer lanes ------------------------------------------------------------------------

def unpack_lanes(packed, fmt) -> np.ndarray:
    """Bytes to signed lane values, shape (..., lanes_per_byte), lane 0 first."""
    fmt = get_format(fmt)
    if not isinstance(fmt, IntFormat):
        raise FormatError(f"{fmt.name} is not an integer lane format")
    p = check_codes(packed, 8, fmt.name)
    shifts = np.arange(fmt.lanes_per_byte) * fmt.bits
    lanes = (p[..., None] >> shifts) & ((1 << fmt.bits) - 1)
    return np.where(lanes >= (1 << (fmt.bits - 1)), lanes - (1 << fmt.bits), lanes)


def pack_lanes(values, fmt) -> np.ndarray:
    """Signed lane values, shape (..., lanes_per_byte), to bytes (lane 0 in the LSBs)."""
    fmt = get_format(fmt)
    if not isinstance(fmt, IntFormat):
        raise FormatError(f"{fmt.name} is not an integer lane format")
    v = np.asarray(values, dtype=np.int64)
    if v.shape[-1:] != (fmt.lanes_per_byte,):
        raise FormatError(f"{fmt.name}: last axis must have {fmt.lanes_per_byte} lanes")
    if v.size and (v.min() < fmt.min_value or v.max() > fmt.max_value):
        raise FormatError(f"{fmt.name}: lane values must be in {fmt.min_value}..{fmt.max_value}")
    shifts = np.arange(fmt.lanes_per_byte) * fmt.bits
    return (((v & ((1 << fmt.bits) - 1)) << shifts).sum(axis=-1)).astype(np.uint8)
