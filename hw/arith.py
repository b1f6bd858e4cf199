"""Small arithmetic building blocks shared by the units."""

from amaranth import Cat, Const, Mux, Signal
from amaranth.hdl import Shape, Value


def mul_lut(a: Value, b: Value, width: int | None = None, *, is_signed=False) -> Value:
    """a * b as a sum of partial products, so synthesis builds it from LUTs.

    Yosys maps even a 4x4 ``$mul`` to an 18x18 DSP block on ECP5, slower than LUTs here
    and a waste of a scarce resource. With ``is_signed``, both operands are two's complement:
    ``a`` is sign-extended and the partial product of ``b``'s sign bit is subtracted
    (its weight is -2**(n-1)). The result has ``width`` bits (default len(a) + len(b),
    which always holds the product) and is taken modulo 2**width.
    """
    a, b = Value.cast(a), Value.cast(b)
    width = width or (len(a) + len(b))
    fill = a[-1] if is_signed else Const(0, 1)
    ext_a = Cat(*(a[i] if i < len(a) else fill for i in range(width)))
    total = Const(0, width)
    for i in range(len(b)):
        partial = ((ext_a & b[i].replicate(width)) << i)[:width]
        if is_signed and i == len(b) - 1:
            total = (total - partial)[:width]
        else:
            total = (total + partial)[:width]
    return total.as_signed() if is_signed else total


def add_short(m, a: Value, b: Value, name: str = "sum") -> Signal:
    """a + b (unsigned, one bit wider than the wider operand) as a ripple of 2-bit adds,
    each taking the carry below its LSB (``add_carry``), so that no adder has more than
    4 result bits: Yosys's ECP5 mapping leaves those to LUTs. A carry chain costs its
    cells and about four more in nextpnr's ECP5 packing (the feed-out of its last carry),
    so for a sum of a few bits LUTs are smaller."""
    a, b = Value.cast(a).as_unsigned(), Value.cast(b).as_unsigned()
    width = max(len(a), len(b))
    a, b = (Cat(v, Const(0, width - len(v))) for v in (a, b))
    bits, carry = [], Const(0, 1)
    for low in range(0, width, 2):
        high = min(low + 2, width)
        piece = Signal(high - low + 1, name=f"{name}_{low}")
        m.d.comb += piece.eq(add_carry(a[low:high], b[low:high], carry))
        bits.append(piece[:-1])
        carry = piece[-1]
    total = Signal(width + 1, name=name)
    m.d.comb += total.eq(Cat(*bits, carry))
    return total


def mul_short(m, a: Value, b: Value, name: str = "product") -> Signal:
    """a * b (unsigned, len(a) + len(b) bits) from AND rows summed with ``add_short``:
    no carry chains (on ECP5, a chain for each row would cost more than the LUTs)."""
    a, b = Value.cast(a), Value.cast(b)
    total = a & b[0].replicate(len(a))
    for i in range(1, len(b)):
        row = add_short(m, total[i:], a & b[i].replicate(len(a)), name=f"{name}_row{i}")
        total = Cat(total[:i], row)
    product = Signal(len(a) + len(b), name=name)
    m.d.comb += product.eq(total)
    return product


def add_carry(a: Value, b: Value, carry: Value) -> Value:
    """a + b + carry (``carry`` one bit) as one two-operand adder, the carry entering
    below the LSB: (2a + carry) + (2b + 1), shifted right by one. Written as
    a + b + carry, Yosys makes a three-operand ``$macc`` of LUTs instead of one carry
    chain. Signed if either operand is; one bit wider than the wider operand."""
    a, b = Value.cast(a), Value.cast(b)
    if a.shape().signed or b.shape().signed:
        a, b = (v if v.shape().signed else Cat(v, Const(0, 1)).as_signed() for v in (a, b))
        total = Cat(carry, a).as_signed() + Cat(Const(1, 1), b).as_signed()
        return total[1:].as_signed()
    return (Cat(carry, a) + Cat(Const(1, 1), b))[1:]


def leading_zeros(m, value: Value, name: str = "lz") -> Signal:
    """Number of leading zero bits of ``value`` (len(value) when it is zero).

    A balanced tree: ``value`` is padded below with ones to the next power of two above
    its width (so the count of an all-zero ``value`` comes out as its width), and each node
    picks its upper half's count, or half its width plus the lower half's count when the
    upper half is all zero.
    """
    width = len(value)
    size = 1 << width.bit_length()        # a power of two above width: at least one 1 pad
    padded = Cat(Const((1 << (size - width)) - 1, size - width), value)

    def node(bits):                       # -> (all zero, count of leading zeros)
        if len(bits) == 2:
            return ~(bits[0] | bits[1]), ~bits[1]
        half = len(bits) // 2
        zero_lo, count_lo = node(bits[:half])
        zero_hi, count_hi = node(bits[half:])
        return zero_hi & zero_lo, Mux(zero_hi, Cat(count_lo, 1), Cat(count_hi, 0))

    lz = Signal(range(width + 1), name=name)
    m.d.comb += lz.eq(node(padded)[1])
    return lz


def normalize(m, value: Value, lz: Value, keep: int, name: str = "norm") -> Signal:
    """``value`` shifted left by ``lz`` (its leading-zero count), cut to ``keep`` bits: the
    top ``keep - 1`` bits exactly, and below them a sticky bit, the OR of all the others.

    The shift goes by the largest step first, and after each step only the bits that can
    still reach the top ``keep - 1`` are kept (the rest go into the sticky bit), so the
    later steps are narrower than ``value``.
    """
    v = Value.cast(value)
    if len(v) < keep - 1:
        v = Cat(Const(0, keep - 1 - len(v)), v)
    sticky = Const(0, 1)
    for bit in reversed(range(len(lz))):
        step = 1 << bit
        shifted = Cat(Const(0, step), v[:len(v) - step]) if step < len(v) else Const(0, len(v))
        stage = Signal(len(v), name=f"{name}_{step}")
        m.d.comb += stage.eq(Mux(lz[bit], shifted, v))
        drop = len(v) - (keep - 1 + step - 1)       # bits that the later steps cannot lift
        v = stage
        if drop > 0:
            sticky = sticky | v[:drop].any()
            v = v[drop:]
    result = Signal(keep, name=name)
    m.d.comb += result.eq(Cat(sticky, v))
    return result


def trailing_zeros(m, value: Value, name: str = "tz") -> Signal:
    """Number of trailing zero bits of ``value`` (len(value) when it is zero)."""
    return leading_zeros(m, value[::-1], name=name)


class Pipeline:
    """Registers placed at named cut points, each either a register or a wire.

    ``cut(name, value)`` returns ``value`` delayed by one cycle when ``name`` is one of the
    enabled cuts, else ``value`` itself; the unit's latency is the number of enabled cuts.
    """

    def __init__(self, m, enabled_cuts):
        self.m = m
        self.enabled = set(enabled_cuts)

    def cut_all(self, name: str, values: dict) -> dict:
        """``cut`` every value of ``values``; only the one named "valid" is reset."""
        return {k: self.cut(name, v, reset_less=k != "valid") for k, v in values.items()}

    def cut(self, name: str, value, *, reset_less=True):
        if name not in self.enabled:
            return value
        shape = value.shape() if hasattr(value, "shape") else Shape.cast(len(value))
        reg = Signal(shape, name=f"{name}_{getattr(value, 'name', 'q')}",
                     reset_less=reset_less)
        self.m.d.sync += reg.eq(value)
        return reg
