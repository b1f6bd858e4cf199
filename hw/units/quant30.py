"""``fp30`` to ``fp8seb`` quantizer, shared-bias tracker (docs/numerics.md, ``quant30``)."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.formats import FP8SEB, FP30
from golden.params import ROOM
from hw.layouts import float_layout

BIAS_SHAPE = signed(6)          # -32..31
EXP_SHAPE = signed(7)           # floor(log2|x|) of an fp30 value: -31..32


def quantize_fp30(m, x, bias, name="q", split=False) -> Signal:
    """rne(x) into ``fp8seb`` with the run-time ``bias``, saturating; NaN gives +max.

    Combinational; with ``split``, a ``sync`` register cuts it after the shift, before the
    rounding (latency 1): whole, it is ~30 LUT levels, too long for a board's clock."""
    f = data.View(float_layout(FP30), x)
    M, src_M = FP8SEB.man_bits, FP30.man_bits

    def stage(value, suffix):
        held = Signal.like(value, name=f"{name}_{suffix}")
        if split:
            m.d.sync += held.eq(value)
        else:
            m.d.comb += held.eq(value)
        return held

    # Below the target's normal range (e - 31 < 1 - bias) the quantum stays 2**(1-bias-M).
    below = Signal(signed(9), name=f"{name}_below")
    m.d.comb += below.eq(FP30.bias + 1 - bias - f.exponent)
    limit = src_M + 2                                  # from here on sig rounds to 0
    shift = Signal(range(limit + 1), name=f"{name}_shift")
    m.d.comb += shift.eq(Mux(below > 0, Mux(below > limit - (src_M - M), limit,
                                            below + (src_M - M)), src_M - M))
    # (exponent - 1) << M plus the rounded significand (hidden bit included) is the code.
    exp_base = Signal(signed(9), name=f"{name}_expbase")
    m.d.comb += exp_base.eq(Mux(below > 0, 0, f.exponent + bias - FP30.bias - 1))
    zero = Signal(name=f"{name}_zero")
    nan = Signal(name=f"{name}_nan")
    m.d.comb += [zero.eq((f.exponent == 0) & (f.mantissa == 0)),
                 nan.eq((f.exponent == FP30.exp_all_ones) & (f.mantissa == FP30.man_all_ones))]
    sig = Cat(f.mantissa, Const(1, 1))                 # x = sig * 2**(e - 31 - 23)
    room = limit + 1
    shifted = Cat(Const(0, room), sig) >> shift
    # shift >= src_M - M, so M + 1 bits are kept (the rounding may carry into one more).
    kept = stage(shifted[room:room + M + 1], "kept")
    guard = stage(shifted[room - 1], "guard")
    sticky = stage(shifted[:room - 1].any(), "sticky")
    exp_base, zero, nan, sign = (stage(exp_base, "expbase_r"), stage(zero, "zero_r"),
                                 stage(nan, "nan_r"), stage(f.sign, "sign"))
    rounded = Signal(M + 2, name=f"{name}_rounded")
    m.d.comb += rounded.eq(kept + (guard & (sticky | kept[0])))
    magnitude = Signal(signed(12), name=f"{name}_mag")
    m.d.comb += magnitude.eq((exp_base << M) + rounded)
    code = Signal(8, name=f"{name}_code")
    with m.If(nan):
        m.d.comb += code.eq(FP8SEB.max_code)
    with m.Elif(zero):
        m.d.comb += code.eq(0)
    with m.Elif(magnitude > FP8SEB.max_code):
        m.d.comb += code.eq(Cat(Const(FP8SEB.max_code, 7), sign))
    with m.Else():
        m.d.comb += code.eq(Cat(magnitude[:7], sign))
    return code


def fp30_exponent(x):
    """(floor(log2|x|), counts): the exponent of a nonzero, non-NaN ``fp30`` code."""
    f = data.View(float_layout(FP30), x)
    zero = (f.exponent == 0) & (f.mantissa == 0)
    nan = (f.exponent == FP30.exp_all_ones) & (f.mantissa == FP30.man_all_ones)
    return f.exponent - FP30.bias, ~zero & ~nan


def next_bias_logic(m, bias, max_exp, seen, room: int, name="next") -> Signal:
    """The bias rule (docs/numerics.md, ``quant30``): bias - 1 above top - room, bias + 1
    below it, clamped to -32..31."""
    lo, hi = FP8SEB.bias_range
    target = Signal(signed(8), name=f"{name}_target")
    m.d.comb += target.eq(FP8SEB.exp_all_ones - bias - room)
    result = Signal(BIAS_SHAPE, name=f"{name}_bias")
    with m.If(seen & (max_exp > target) & (bias > lo)):
        m.d.comb += result.eq(bias - 1)
    with m.Elif(seen & (max_exp < target) & (bias < hi)):
        m.d.comb += result.eq(bias + 1)
    with m.Else():
        m.d.comb += result.eq(bias)
    return result


class Quant30(wiring.Component):
    """Rounds an ``fp30`` code to ``fp8seb`` with a run-time shared bias, and tracks the
    largest exponent it quantized.

    Ports: ``x`` (``fp30``), ``bias`` (signed 6 bits, -32..31), ``valid`` (x is quantized
    and tracked this cycle), ``clear`` (forget the tracked exponent; a ``valid`` input in
    the same cycle starts the new tracking), ``y`` (``fp8seb``); tracker outputs
    ``max_exp`` (signed: the largest floor(log2|x|) among the nonzero, non-NaN inputs since
    the last clear), ``seen`` (there was one), and ``next_bias``, the bias that the bias rule
    (docs/numerics.md, ``quant30``) gives from ``bias``, ``max_exp`` and ``room``.

    Parameter: ``room`` (default 1; 0..15), the binades kept free at the top.

    Latency: ``y`` and ``next_bias`` are combinational; the tracker updates at the clock
    edge. Throughput: one value per cycle. Rounding is to nearest even, saturating at
    +-2^(15-bias) x 1.875; small values round into fp8seb subnormals; NaN gives +max.
    """

    parameters = (ROOM,)

    def __init__(self, room: int = ROOM.default):
        self.room = ROOM.check(room, "Quant30")
        super().__init__({
            "x": In(FP30.width),
            "bias": In(BIAS_SHAPE),
            "valid": In(1),
            "clear": In(1),
            "y": Out(8),
            "max_exp": Out(EXP_SHAPE),
            "seen": Out(1),
            "next_bias": Out(BIAS_SHAPE),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``x`` to ``y``: 0, combinational (the tracker's outputs include
        a ``valid`` input from the next cycle on)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(quantize_fp30(m, self.x, self.bias))
        exp, counts = fp30_exponent(self.x)
        track = self.valid & counts
        with m.If(self.clear):
            m.d.sync += [self.seen.eq(track), self.max_exp.eq(exp)]
        with m.Elif(track & (~self.seen | (exp > self.max_exp))):
            m.d.sync += [self.seen.eq(1), self.max_exp.eq(exp)]
        m.d.comb += self.next_bias.eq(
            next_bias_logic(m, self.bias, self.max_exp, self.seen, self.room))
        return m
