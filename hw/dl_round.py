"""Rounding a normalized significand into a ``dl``-style format (``dlfloat16``, ``fp30``).

Shared by the units whose results are ``dl`` codes: the MPE (``rnu``, overflow to NaN) and
the FMA tree (``rne``, saturating). ``dl`` formats have no subnormals: below the smallest
value, 2**-bias * (1 + 2**-M), the only candidates are 0 and that value, and the code
e=0, m=0 is zero, not 2**-bias.
"""

from amaranth import Cat, Module, Mux, Signal, Value

from golden.formats import FloatFormat


def round_to_dl(m: Module, fmt: FloatFormat, normalized, exp_top, lz, sign, *,
                exp_offset: int = 0, rounding: str, overflow: str, nan=None, zero=None,
                name: str = "round") -> Signal:
    """The ``fmt`` code of (-1)**sign * 0.1xxx (``normalized``, MSB set, or all zero) with
    the MSB worth 2**(exp_top + exp_offset - lz - bias), rounded once (``rne`` or ``rnu``).

    ``normalized`` must hold every bit of the exact value below its MSB, or have its LSB
    be the sticky OR of the bits that are not held (and be at least M + 3 bits wide).
    ``lz`` is the normalization shift and ``exp_top + exp_offset`` (a value and an int)
    the biased exponent of the MSB before it.
    ``overflow``: ``sat`` (+-max) or ``nan`` (the NaN/Inf code). ``nan``: an optional bit
    that forces the NaN code (a NaN or Inf input). ``zero``: an optional bit, high when the
    value is zero, for a caller that has it before the normalization shift (by default,
    ``normalized``'s MSB tells).

    No decision waits for the rounding adder: the exponent and its successor are each one
    subtraction from the inputs (Yosys folds the constant into it; an adder of its own for
    exp_top + exp_offset would be in series), overflow is decided from the kept bits and
    the rounding bit, and the adder's carry out only picks the exponent, as its sum gives
    the mantissa.
    """
    assert fmt.style == "dl" and rounding in ("rne", "rnu") and overflow in ("sat", "nan")
    M = fmt.man_bits
    width = len(normalized)
    assert width >= M + 3
    fraction = normalized[width - M - 1:width - 1]        # the M kept bits below the MSB
    guard = normalized[width - M - 2]
    sticky = normalized[:width - M - 2].any()
    up = guard & (sticky | fraction[0]) if rounding == "rne" else guard
    # A carry out of the fraction (all ones, rounded up) makes 2**(exponent + 1), whose
    # mantissa is the 0 that the M-bit sum wraps to.
    man = Signal(M, name=f"{name}_man")
    carry = Signal(name=f"{name}_carry")
    m.d.comb += Cat(man, carry).eq(fraction + up)

    exp_top, lz = Value.cast(exp_top), Value.cast(lz)
    top_min, top_max = ((-2 ** (len(exp_top) - 1), 2 ** (len(exp_top) - 1) - 1)
                        if exp_top.shape().signed else (0, 2 ** len(exp_top) - 1))
    exp_range = range(top_min + exp_offset - (2 ** len(lz) - 1), top_max + exp_offset + 2)
    exp_field = Signal(exp_range, name=f"{name}_exp")            # before rounding
    exp_next = Signal(exp_range, name=f"{name}_exp_next")        # the same, plus one
    m.d.comb += [exp_field.eq(exp_top + exp_offset - lz),
                 exp_next.eq(exp_top + (exp_offset + 1) - lz)]
    exp_final = Mux(carry, exp_next, exp_field)

    # Past the largest finite value (in dl, e_max and all ones but the last mantissa bit):
    # a larger exponent, or e_max with a fraction that is all ones, or rounds up to it
    # (a carry out makes the exponent larger instead).
    e_max, m_max = fmt.max_fields
    assert (e_max, m_max) == (fmt.exp_all_ones, fmt.man_all_ones - 1)
    too_big = (exp_field > e_max) | ((exp_field == e_max) & fraction[1:].all()
                                     & (fraction[0] | up))

    # Below 2**-bias: 0 or min positive, whichever is nearer; the halfway point is
    # 2**(-bias-1) * (1 + 2**-M), that is a fraction (bits below the MSB) of 2**-M.
    if rounding == "rnu":
        tiny_up = fraction.any()
    else:
        tiny_up = fraction[1:].any() | (fraction[0] & normalized[:width - M - 1].any())

    nan = Value.cast(0 if nan is None else nan)
    zero = ~normalized[-1] if zero is None else zero
    code = Signal(fmt.width, name=f"{name}_code")
    signed_bit = sign << (fmt.width - 1)
    too_big_code = signed_bit | fmt.max_code if overflow == "sat" else fmt.canonical_nan
    with m.If(nan | (too_big & ~zero)):
        m.d.comb += code.eq(Mux(nan, fmt.canonical_nan, too_big_code))
    with m.Elif(zero | (exp_field < -1)):
        m.d.comb += code.eq(0)
    with m.Elif(exp_field == -1):
        m.d.comb += code.eq(Mux(tiny_up, signed_bit | 1, 0))
    with m.Elif((exp_field == 0) & ~fraction.any() & ~up):
        # e=0, m=0 is the zero code, not 2**-bias: round up to min positive instead.
        m.d.comb += code.eq(signed_bit | 1)
    with m.Else():
        m.d.comb += code.eq(signed_bit | (exp_final[:fmt.exp_bits] << M) | man)
    return code


def round_away_to_dl(m: Module, fmt: FloatFormat, normalized, exp_field, sign, *, nan,
                     zero, name: str = "round") -> Signal:
    """The ``fmt`` code of (-1)**sign * 1.xxx (``normalized``, MSB set unless ``zero``)
    with its MSB worth 2**(exp_field - bias), rounded to nearest with ties away from
    zero; an overflow or ``nan`` gives the NaN code (``round_to_dl``'s ``rnu`` and
    ``nan``, with the exponent given instead of computed here).

    Ties away need only the guard bit, and one increment of the code's magnitude bits
    (exponent and fraction) rounds: a carry out of the fraction moves to the exponent.
    So the only carry chain is that increment, and the exponent's range checks are bit
    tests.
    ``normalized`` needs M + 2 bits (the kept bits and the guard bit).
    """
    assert fmt.style == "dl"
    M, E = fmt.man_bits, fmt.exp_bits
    width = len(normalized)
    fraction = normalized[width - M - 1:width - 1]
    guard = normalized[width - M - 2]
    exp_field = Value.cast(exp_field)
    assert exp_field.shape().signed and len(exp_field) > E + 1
    negative = exp_field[-1]
    high = exp_field[E:-1].any()                 # at least 2**E, when not negative
    minus_one = exp_field.all()
    e_max, m_max = fmt.max_fields
    assert (e_max, m_max) == (fmt.exp_all_ones, fmt.man_all_ones - 1)
    # Past the largest finite value: the NaN code's fields or above, or rounding up to
    # them (the increment would make them too, but with the sign of the value).
    too_big = ~negative & (high | (exp_field[:E].all() & fraction[1:].all()
                                   & (fraction[0] | guard)))
    rounded = Signal(M + E, name=f"{name}_magnitude")
    m.d.comb += rounded.eq(Cat(fraction, exp_field[:E]) + guard)
    code = Signal(fmt.width, name=f"{name}_code")
    signed_bit = sign << (fmt.width - 1)
    with m.If(nan | (too_big & ~zero)):
        m.d.comb += code.eq(fmt.canonical_nan)
    with m.Elif(zero | (negative & ~minus_one)):
        m.d.comb += code.eq(0)
    with m.Elif(minus_one):
        # Below 2**-bias: 0 or min positive (2**-bias * (1 + 2**-M)), ties away.
        m.d.comb += code.eq(Mux(fraction.any(), signed_bit | 1, 0))
    with m.Elif(~exp_field[:E].any() & ~fraction.any() & ~guard):
        # e=0, m=0 is the zero code, not 2**-bias: round up to min positive instead.
        m.d.comb += code.eq(signed_bit | 1)
    with m.Else():
        m.d.comb += code.eq(signed_bit | rounded)
    return code
