"""``dlfloat16`` to ``e4m3`` / ``e5m2`` quantizer (docs/numerics.md, ``quant16``)."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Overflow, SourceFormat
from golden.formats import DLFLOAT16, E4M3, E5M2, FloatFormat
from golden.params import BIAS
from fp8hw.params import Param
from hw.layouts import float_layout

PIPELINE = Param("pipeline", 0, "register stages (0: combinational; 1: a cut after the "
                 "rounding)", lo=0, hi=1)


class Quant16(wiring.Component):
    """Rounds a ``dlfloat16`` code to nearest-even ``e4m3`` or ``e5m2``.

    Ports: ``x`` (``dlfloat16`` code), ``fmt`` (``SourceFormat``, run time), ``overflow``
    (``Overflow``, run time), ``y`` (8-bit code). Parameter: ``bias``, the ``e4m3`` bias
    (0..15, default 11).

    Latency: ``pipeline`` cycles (0, combinational, by default; 1 puts a register between
    the significand's rounding and the code's assembly); one value per cycle.

    Special values: the NaN/Inf code 0x7FFF (either sign) gives 0x7F whatever the overflow
    action; zero gives +0; a nonzero value that rounds to zero keeps its sign. Results
    that round above the largest finite value saturate (``SAT``) or become 0x7F in
    ``e4m3`` and +-inf in ``e5m2`` (``NAN``). Values below the target's normal range
    round into its subnormals.
    """

    parameters = (BIAS, PIPELINE)

    def __init__(self, bias: int = BIAS.default, pipeline: int = PIPELINE.default):
        self.bias = BIAS.check(bias, "Quant16")
        self.pipeline = PIPELINE.check(pipeline, "Quant16")
        super().__init__({
            "x": In(float_layout(DLFLOAT16)),
            "fmt": In(SourceFormat),
            "overflow": In(Overflow),
            "y": Out(8),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``x`` (and ``fmt``, ``overflow``) to ``y``: ``pipeline``."""
        return self.pipeline

    def _stage(self, m, value, name):
        """``value``, registered when pipelined: the cut between the rounding of the
        significand and the code's assembly."""
        if not self.pipeline:
            return value
        reg = Signal.like(value, name=f"{name}_q")
        m.d.sync += reg.eq(value)
        return reg

    def _round_into(self, m, target: FloatFormat) -> Signal:
        """The ``target`` code of ``x`` (not NaN), before the format select."""
        x, dl = self.x, DLFLOAT16
        M, b = target.man_bits, target.bias
        sig = Cat(x.mantissa, Const(1, 1))            # 1.m, 10 bits: x = sig * 2**(e - 40)
        # Right shift that brings sig to the target's quantum: 9 - M inside a normal
        # binade, more below it (emin = 1 - b, i.e. e < 32 - b). Beyond 11 it rounds to 0.
        below = Signal(range(64))
        m.d.comb += below.eq(Mux(x.exponent < dl.bias + 1 - b, dl.bias + 1 - b - x.exponent, 0))
        shift = Signal(range(12))
        m.d.comb += shift.eq(Mux(below > 11 - (dl.man_bits - M), 11,
                                 below + (dl.man_bits - M)))
        room = 12
        shifted = Cat(Const(0, room), sig) >> shift
        kept = shifted[room:]
        guard = shifted[room - 1]
        sticky = shifted[:room - 1].any()
        rounded = Signal(M + 2, name=f"rounded_{target.name}")
        m.d.comb += rounded.eq(kept + (guard & (sticky | kept[0])))
        rounded = self._stage(m, rounded, f"rounded_{target.name}")
        # Adding the rounded significand (hidden bit included) to (exponent - 1) << M
        # yields the code, carries included; subnormals start from exponent field 0.
        exp_base = Signal(range(128), name=f"exp_base_{target.name}")
        m.d.comb += exp_base.eq(Mux(below == 0, x.exponent + b - dl.bias - 1, 0))
        exp_base = self._stage(m, exp_base, f"exp_base_{target.name}")
        magnitude = Signal(range(1 << 12))
        m.d.comb += magnitude.eq((exp_base << M) + rounded)

        max_code = target.max_code
        over_code = (target.inf_code() if target.has_inf else target.canonical_nan)
        code = Signal(8)
        sign = self._stage(m, x.sign, f"sign_{target.name}") << (target.width - 1)
        zero = self._stage(m, (x.exponent == 0) & (x.mantissa == 0), f"zero_{target.name}")
        overflow = self._stage(m, self.overflow, f"overflow_{target.name}")
        with m.If(zero):
            m.d.comb += code.eq(0)
        with m.Elif(magnitude > max_code):
            with m.If(overflow == Overflow.SAT):
                m.d.comb += code.eq(sign | max_code)
            with m.Elif(target.has_inf):
                m.d.comb += code.eq(sign | over_code)
            with m.Else():
                m.d.comb += code.eq(over_code)
        with m.Else():
            m.d.comb += code.eq(sign | magnitude)
        return code

    def elaborate(self, platform):
        m = Module()
        x, dl = self.x, DLFLOAT16
        to_e4m3 = self._round_into(m, E4M3.with_bias(self.bias))
        to_e5m2 = self._round_into(m, E5M2)
        is_nan = self._stage(m, (x.exponent == dl.exp_all_ones)
                             & (x.mantissa == dl.man_all_ones), "is_nan")
        fmt = self._stage(m, self.fmt, "fmt")
        with m.If(is_nan):
            m.d.comb += self.y.eq(E4M3.canonical_nan)     # 0x7F in both targets
        with m.Elif(fmt == SourceFormat.E4M3):
            m.d.comb += self.y.eq(to_e4m3)
        with m.Else():
            m.d.comb += self.y.eq(to_e5m2)
        return m
