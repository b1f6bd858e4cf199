"""Rounding a normalized significand into a ``dl``-style format (``dlfloat16``, ``fp30``).

Shared by the units whose results are ``dl`` codes: the MPE (``rnu``, overflow to NaN) and
the FMA tree (``rne``, saturating). ``dl`` formats have no subnormals: below the smallest
value, 2**-bias * (1 + 2**-M), the only candidates are 0 and that value, and the code
e=0, m=0 is zero, not 2**-bias.
"""

from amaranth import Module, Mux, Signal, Value, signed

from golden.formats import FloatFormat


def round_to_dl(m: Module, fmt: FloatFormat, normalized, exp_top, lz, sign, *,
                rounding: str, overflow: str, nan=None, name: str = "round") -> Signal:
    """The ``fmt`` code of (-1)**sign * 0.1xxx (``normalized``, MSB set, or all zero) with
    the MSB worth 2**(exp_top - lz - bias), rounded once (``rne`` or ``rnu``).

    ``normalized`` must hold every bit of the exact value below its MSB, or have its LSB
    be the sticky OR of the bits that are not held (and be at least M + 3 bits wide).
    ``lz`` is the normalization shift and ``exp_top`` the biased exponent the MSB would
    have without it; both exponents the rounding can give, exp_top - lz and
    exp_top + 1 - lz, are then one subtraction each from the inputs, so no decision waits
    for the rounding adder (whose carry only picks between them). ``exp_top`` is unsigned
    and at most 2**len(exp_top) - 2, ``lz`` below 2**len(exp_top): the exponents are held
    in one more bit, for their sign.
    ``overflow``: ``sat`` (+-max) or ``nan`` (the NaN/Inf code). ``nan``: an optional bit
    that forces the NaN code (a NaN or Inf input).
    """
    assert fmt.style == "dl" and rounding in ("rne", "rnu") and overflow in ("sat", "nan")
    M = fmt.man_bits
    width = len(normalized)
    assert width >= M + 3
    fraction = normalized[width - M - 1:width - 1]        # the M kept bits below the MSB
    guard = normalized[width - M - 2]
    sticky = normalized[:width - M - 2].any()
    up = guard & (sticky | fraction[0]) if rounding == "rne" else guard
    # Rounding up carries out of the significand only when the fraction is all ones; the
    # result is then 2**(exponent + 1) with mantissa 0, which the M-bit sum wraps to.
    carry = Signal(name=f"{name}_carry")
    man = Signal(M, name=f"{name}_man")
    m.d.comb += [carry.eq(fraction.all() & up), man.eq(fraction + up)]
    exp_top = Value.cast(exp_top)
    assert not exp_top.shape().signed
    exp_field = Signal(signed(len(exp_top) + 1), name=f"{name}_exp")      # before rounding
    exp_next = Signal(signed(len(exp_top) + 1), name=f"{name}_exp_next")  # the same, plus one
    m.d.comb += [exp_field.eq(exp_top - lz), exp_next.eq(exp_top + 1 - lz)]
    exp_final = Mux(carry, exp_next, exp_field)

    # Past the largest finite value: a larger exponent, or the largest one with a
    # mantissa over m_max after rounding (a carry makes the exponent larger instead).
    e_max, m_max = fmt.max_fields
    mantissa_over = carry | (fraction > m_max) | ((fraction == m_max) & up)
    too_big = (exp_field > e_max) | ((exp_field == e_max) & mantissa_over)

    # Below 2**-bias: 0 or min positive, whichever is nearer; the halfway point is
    # 2**(-bias-1) * (1 + 2**-M), that is a fraction (bits below the MSB) of 2**-M.
    if rounding == "rnu":
        tiny_up = fraction.any()
    else:
        tiny_up = fraction[1:].any() | (fraction[0] & normalized[:width - M - 1].any())

    code = Signal(fmt.width, name=f"{name}_code")
    signed_bit = sign << (fmt.width - 1)
    too_big_code = signed_bit | fmt.max_code if overflow == "sat" else fmt.canonical_nan
    with m.If(nan if nan is not None else 0):
        m.d.comb += code.eq(fmt.canonical_nan)
    with m.Elif(~normalized[-1]):                         # an exact zero
        m.d.comb += code.eq(0)
    with m.Elif(too_big):
        m.d.comb += code.eq(too_big_code)
    with m.Elif(exp_field < -1):
        m.d.comb += code.eq(0)
    with m.Elif(exp_field == -1):
        m.d.comb += code.eq(Mux(tiny_up, signed_bit | 1, 0))
    with m.Elif((exp_field == 0) & ~fraction.any() & ~up):
        # e=0, m=0 is the zero code, not 2**-bias: round up to min positive instead.
        m.d.comb += code.eq(signed_bit | 1)
    with m.Else():
        m.d.comb += code.eq(signed_bit | (exp_final[:fmt.exp_bits] << M) | man)
    return code
