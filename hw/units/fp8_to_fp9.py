"""``e4m3`` / ``e5m2`` to ``fp9`` converter (docs/numerics.md, ``convert``)."""

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import SourceFormat
from golden.formats import E4M3, E5M2, FP9
from golden.params import BIAS
from hw.layouts import float_layout


class Fp8ToFp9(wiring.Component):
    """Widens an 8-bit HFP8 code to the MPE's internal 1-5-3 ``fp9`` format, losslessly.

    Ports: ``fmt`` (``SourceFormat``, run time), ``a`` (8-bit code), ``y`` (``fp9`` code).
    Parameter: ``bias``, the ``e4m3`` bias (0..15, default 11; ``e5m2`` is fixed at 15).

    Latency: combinational (0 cycles); throughput: one conversion per cycle.

    ``e5m2``: ``y = a << 1``; infinities and NaN payloads carry over. ``e4m3``: the value is
    re-biased (+15 - bias) and subnormals are normalized (with bias 0..12 they all become
    ``fp9`` normals; with bias 13..15 the smallest stay ``fp9`` subnormals); the NaN
    S.1111.111 becomes S.11111.111. The sign always passes through, so -0 stays -0.
    """

    parameters = (BIAS,)

    def __init__(self, bias: int = BIAS.default):
        self.bias = BIAS.check(bias, "Fp8ToFp9")
        super().__init__({
            "fmt": In(SourceFormat),
            "a": In(8),
            "y": Out(float_layout(FP9)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``a`` to ``y``: 0, combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        a4 = data.View(float_layout(E4M3), self.a)
        rebias = FP9.bias - self.bias            # 0..15, so normals never underflow fp9
        man = a4.mantissa
        from_e4m3 = Signal(float_layout(FP9))
        m.d.comb += from_e4m3.sign.eq(a4.sign)
        with m.If((a4.exponent == E4M3.exp_all_ones) & (man == E4M3.man_all_ones)):
            m.d.comb += [from_e4m3.exponent.eq(FP9.exp_all_ones),
                         from_e4m3.mantissa.eq(FP9.man_all_ones)]
        with m.Elif(a4.exponent != 0):
            m.d.comb += [from_e4m3.exponent.eq(a4.exponent + rebias),
                         from_e4m3.mantissa.eq(man)]
        with m.Else():
            # Subnormal: value = man * 2**(1 - bias - 3). With its leading one at bit p,
            # the fp9 exponent field is p + (1 - bias - 3) + 15; at or below 0 the value
            # is an fp9 subnormal, man * 2**(15 - bias) units of 2**-17.
            M = E4M3.man_bits
            for p in reversed(range(M)):
                exp_field = p + (1 - self.bias - M) + FP9.bias
                with m.If(man[p:] == 1):         # leading one at bit p
                    if exp_field >= 1:
                        m.d.comb += [from_e4m3.exponent.eq(exp_field),
                                     from_e4m3.mantissa.eq(man << (FP9.man_bits - p))]
                    else:
                        m.d.comb += [from_e4m3.exponent.eq(0),
                                     from_e4m3.mantissa.eq(man << (FP9.bias - self.bias))]
            # man == 0: exponent and mantissa stay 0 (a signed zero).

        with m.Switch(self.fmt):
            with m.Case(SourceFormat.E4M3):
                m.d.comb += self.y.eq(from_e4m3)
            with m.Case(SourceFormat.E5M2):
                m.d.comb += self.y.as_value().eq(self.a << (FP9.width - E5M2.width))
        return m
