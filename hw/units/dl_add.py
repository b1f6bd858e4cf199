"""``dlfloat16`` adder (docs/numerics.md, ``dladd``): the chunk sums of chunk-based
accumulation."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.params import Param
from golden.formats import DLFLOAT16
from hw.arith import Pipeline, leading_zeros, trailing_zeros
from hw.dl_round import round_to_dl
from hw.layouts import float_layout

# Register positions, in the order they are enabled as ``pipeline`` grows.
PIPELINE_CUTS = {
    0: (),
    1: ("result",),
    2: ("sum", "result"),
    3: ("swap", "sum", "result"),
    4: ("swap", "sum", "normalize", "result"),
}
PIPELINE = Param("pipeline", 1, "DlAdd register stages (= latency in cycles)", lo=0,
                 hi=len(PIPELINE_CUTS) - 1)

# The larger significand (10 bits) sits above GUARD_BITS exact bits and a sticky bit.
# With an exponent distance of 2 or more the sum loses at most one leading bit, so its
# 10 bits and guard bit lie within the exact bits; with 0 or 1 nothing is shifted out.
GUARD_BITS = 2


def operand(m, code, name: str) -> dict:
    """A code's fields: sign, exponent, significand 1.m (0 for the zero code), NaN/Inf."""
    dl = DLFLOAT16
    view = data.View(float_layout(dl), code)
    zero = (view.exponent == 0) & (view.mantissa == 0)
    significand = Signal(dl.man_bits + 1, name=f"{name}_significand")
    m.d.comb += significand.eq(Cat(view.mantissa, ~zero))
    return {"sign": view.sign, "exponent": view.exponent, "significand": significand,
            "nan": (view.exponent == dl.exp_all_ones) & (view.mantissa == dl.man_all_ones)}


def align(m, big: dict, small: dict):
    """The two addends, ``small`` shifted right by the exponent distance: (big, small),
    each 1 + 10 + GUARD_BITS + 1 bits (a carry bit on top, the sticky bit at the bottom)."""
    width = DLFLOAT16.man_bits + 1 + GUARD_BITS
    distance = Signal(DLFLOAT16.exp_bits, name="distance")
    m.d.comb += distance.eq(big["exponent"] - small["exponent"])
    window_small = Cat(Const(0, GUARD_BITS), small["significand"])
    shifted = Signal(width, name="shifted")
    m.d.comb += shifted.eq(Mux(distance >= width, 0, window_small >> distance))
    # Some set bit falls out exactly when the distance exceeds the trailing zeros; this
    # comparison runs beside the shifter instead of after it.
    sticky = (small["significand"] != 0) & (distance > trailing_zeros(m, window_small,
                                                                      name="tz_small"))
    return (Cat(Const(0, 1 + GUARD_BITS), big["significand"], Const(0, 1)),
            Cat(sticky, shifted, Const(0, 1)))


class DlAdd(wiring.Component):
    """y = a + b on ``dlfloat16`` codes, one addition per cycle.

    Ports (sampled together when ``valid_in`` is high): ``a``, ``b`` (``dlfloat16``
    codes); ``y`` and ``valid_out`` come ``pipeline`` cycles later.

    Parameter: ``pipeline``, the register stages (0..4, default 1: on the result; 2 adds
    one after the addition, before the normalization; 3 one after the operands' swap,
    before the alignment; 4 one after the normalization, before the rounding).

    Latency: ``pipeline`` cycles (0: combinational). Throughput: one sum per cycle.

    The operands are swapped so that ``a`` or ``b`` with the larger magnitude comes first
    (a 15-bit compare: ``dlfloat16`` codes order like their magnitudes), so the one
    alignment shifter moves only the smaller one, keeping the bits it shifts out as a
    sticky bit, and a subtraction is never negative. The exact sum is rounded once, to
    nearest with ties away from zero (``hw.dl_round``, as in the MPE). A NaN/Inf input
    (0x7FFF, 0xFFFF) or an overflow gives 0x7FFF; an exact zero gives 0; a result below
    the smallest ``dlfloat16`` (2^-31 x (1+2^-9)) rounds to it or to 0.
    """

    parameters = (PIPELINE,)

    def __init__(self, pipeline: int = PIPELINE.default):
        self.pipeline = PIPELINE.check(pipeline, "DlAdd")
        super().__init__({
            "valid_in": In(1),
            "a": In(DLFLOAT16.width),
            "b": In(DLFLOAT16.width),
            "valid_out": Out(1),
            "y": Out(DLFLOAT16.width),
        })

    @property
    def latency(self) -> int:
        return self.pipeline

    def elaborate(self, platform):
        m = Module()
        dl = DLFLOAT16
        pipe = Pipeline(m, PIPELINE_CUTS[self.pipeline])
        magnitude_bits = dl.width - 1
        a_first = self.a[:magnitude_bits] >= self.b[:magnitude_bits]
        big_code = Mux(a_first, self.a, self.b)
        small_code = Mux(a_first, self.b, self.a)
        s0 = pipe.cut_all("swap", {"valid": self.valid_in, "big": big_code,
                                   "small": small_code})
        big, small = operand(m, s0["big"], "big"), operand(m, s0["small"], "small")
        big_addend, small_addend = align(m, big, small)
        subtract = big["sign"] ^ small["sign"]
        # big >= small, so big - small = big + ~small + 1 (modulo the width) is never
        # negative.
        total = Signal(len(big_addend), name="total")
        m.d.comb += total.eq(big_addend + (small_addend ^ subtract.replicate(len(total)))
                             + subtract)
        s1 = pipe.cut_all("sum", {
            "valid": s0["valid"], "total": total, "sign": big["sign"],
            "exponent": big["exponent"], "nan": big["nan"] | small["nan"],
        })

        lz = leading_zeros(m, s1["total"])
        normalized = Signal(len(total), name="normalized")
        m.d.comb += normalized.eq(s1["total"] << lz)
        s2 = pipe.cut_all("normalize", {
            "valid": s1["valid"], "normalized": normalized, "lz": lz, "sign": s1["sign"],
            "exponent": s1["exponent"], "nan": s1["nan"], "zero": s1["total"] == 0,
        })
        # The big significand's MSB, one below the carry bit, is worth 2**(exponent -
        # bias), so the carry bit is worth 2**(exponent + 1 - bias).
        code = round_to_dl(m, dl, s2["normalized"], s2["exponent"], s2["lz"], s2["sign"],
                           exp_offset=1, rounding="rnu", overflow="nan", nan=s2["nan"],
                           zero=s2["zero"])
        m.d.comb += [self.y.eq(pipe.cut("result", code)),
                     self.valid_out.eq(pipe.cut("result", s2["valid"], reset_less=False))]
        return m
