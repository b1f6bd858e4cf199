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
