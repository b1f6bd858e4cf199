"""Rounding a normalized significand into a ``dl``-style format (``dlfloat16``, ``fp30``).

Shared by the units whose results are ``dl`` codes. ``dl`` formats have no subnormals:
below the smallest value, 2**-bias * (1 + 2**-M), the only candidates are 0 and that value,
and the code e=0, m=0 is zero, not 2**-bias.
"""

from amaranth import Module, Mux, Signal, signed

from golden.formats import FloatFormat


def round_to_dl(m: Module, fmt: FloatFormat, normalized, exp_field, sign, *,
                rounding: str, overflow: str, name: str = "round") -> Signal:
    """The ``fmt`` code of (-1)**sign * 0.1xxx (``normalized``, MSB set, or all zero) with
    the MSB worth 2**(exp_field - bias), rounded once (``rne`` or ``rnu``).

    ``normalized`` must hold every bit of the exact value below its MSB, or have its LSB
    be the sticky OR of the bits that are not held (and be at least M + 3 bits wide).
    ``overflow``: ``sat`` (+-max) or ``nan`` (the NaN/Inf code).
    """
    assert fmt.style == "dl" and rounding in ("rne", "rnu") and overflow in ("sat", "nan")
    M = fmt.man_bits
    width = len(normalized)
    assert width >= M + 3
    kept = normalized[width - M - 1:]                     # 1.m, M + 1 bits
    guard = normalized[width - M - 2]
    sticky = normalized[:width - M - 2].any()
    up = guard & (sticky | kept[0]) if rounding == "rne" else guard
    rounded = Signal(M + 2, name=f"{name}_rounded")
    m.d.comb += rounded.eq(kept + up)
    carry = rounded[-1]
    exp_final = Signal(signed(len(exp_field) + 1), name=f"{name}_exp")
    m.d.comb += exp_final.eq(exp_field + carry)
    man = Signal(M, name=f"{name}_man")
    m.d.comb += man.eq(Mux(carry, 0, rounded[:M]))

    # Below 2**-bias: 0 or min positive, whichever is nearer; the halfway point is
    # 2**(-bias-1) * (1 + 2**-M), that is a fraction (bits below the MSB) of 2**-M.
    fraction = normalized[:width - 1]                     # MSB first: bit k is 2**-(width-1-k)
    first = fraction[width - 1 - M:]                      # fraction bits 2**-1 .. 2**-M
    if rounding == "rnu":
        tiny_up = first.any()
    else:
        tiny_up = first[1:].any() | (first[0] & fraction[:width - 1 - M].any())

    code = Signal(fmt.width, name=f"{name}_code")
    signed_bit = sign << (fmt.width - 1)
    e_max, m_max = fmt.max_fields
    with m.If(normalized == 0):
        m.d.comb += code.eq(0)
    with m.Elif((exp_final > e_max) | ((exp_final == e_max) & (man > m_max))):
        m.d.comb += code.eq(signed_bit | fmt.max_code if overflow == "sat" else fmt.canonical_nan)
    with m.Elif(exp_field < -1):
        m.d.comb += code.eq(0)
    with m.Elif(exp_field == -1):
        m.d.comb += code.eq(Mux(tiny_up, signed_bit | 1, 0))
    with m.Elif((exp_final == 0) & (man == 0)):
        m.d.comb += code.eq(signed_bit | 1)
    with m.Else():
        m.d.comb += code.eq(signed_bit | (exp_final[:fmt.exp_bits] << M) | man)
    return code
