"""Mixed-precision MAC (MPE): HFP8 operands, fused DLFloat16 accumulation, INT4/INT2 lanes."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Mode, SourceFormat
from fp8hw.params import Param
from golden.formats import DLFLOAT16, E4M3, E5M2, FP9
from golden.params import BIAS
from hw.arith import Pipeline, leading_zeros, mul_lut, trailing_zeros
from hw.dl_round import round_to_dl
from hw.layouts import float_layout


# Register positions, in the order they are enabled as ``pipeline`` grows.
PIPELINE_CUTS = {
    0: (),
    1: ("result",),
    2: ("product", "result"),
    3: ("product", "sum", "result"),
    4: ("product", "sum", "normalize", "result"),
    5: ("product", "align", "sum", "normalize", "result"),
    6: ("operands", "product", "align", "sum", "normalize", "result"),
}
PIPELINE = Param("pipeline", 2, "MPE register stages (= latency in cycles)", lo=0,
                 hi=len(PIPELINE_CUTS) - 1)

# Alignment window of the fused add: the 8-bit product and the 10-bit accumulator
# significand, plus 3 bits. Bits of the smaller addend fall out of the window (into the
# sticky bit) only when it lies 12 or more places below the larger one's top; the larger
# one then has its leading one at window bit 13 or above (a product of subnormals has
# leading zeros, but its lowest bit is bit 13), so the result's leading one is at bit 12
# or above, and its 10 bits and guard bit are all exact.
WINDOW = 21


def decode(code, fmt, bias: int) -> tuple:
    """Stage 1, one operand: (sign, 4-bit significand, exponent biased as in fp9, NaN/Inf)
    of the 8-bit ``code`` in ``fmt`` (``SourceFormat``; ``bias`` is the e4m3 bias).

    Subnormals are not normalized (their significand is 0.xxx with the exponent of e=1),
    so that the product can have leading zeros; the fused add is exact anyway (see WINDOW).
    """
    assert E5M2.bias == FP9.bias
    e4 = data.View(float_layout(E4M3), code)
    e5 = data.View(float_layout(E5M2), code)
    is_e5 = fmt == SourceFormat.E5M2
    significand = Mux(is_e5, Cat(Const(0, 1), e5.mantissa, e5.exponent != 0),
                      Cat(e4.mantissa, e4.exponent != 0))
    exponent = Mux(is_e5, Mux(e5.exponent == 0, 1, e5.exponent),
                   Mux(e4.exponent == 0, 1, e4.exponent) + (FP9.bias - bias))
    special = Mux(is_e5, e5.exponent == E5M2.exp_all_ones, code[:7] == E4M3.canonical_nan)
    return code[7], significand, exponent, special


def product_and_exponents(m, a: tuple, b: tuple, acc) -> dict:
    """Stage 1: the significand product and the exponent side of the fused add, so that
    stage 2 is only muxes and the shifter.

    Takes the two ``decode`` results and the ``dlfloat16`` accumulator (a view). Gives
    ``product`` (8 bits, exact), ``product_sign``, ``special`` (a NaN/Inf operand or
    accumulator), ``acc_zero``, ``product_big`` (the product is the larger addend), ``top``
    (the larger addend's exclusive MSB exponent, biased by +30: the product's is
    2**(ea+eb-28), the accumulator's 2**(e-30)), ``distance`` (from the smaller addend's top,
    garbage when that addend is 0) and each significand's trailing zeros in the WINDOW-bit
    window (``trailing_p``, ``trailing_c``), which give the sticky bit in stage 2.
    """
    sign_a, significand_a, exponent_a, special_a = a
    sign_b, significand_b, exponent_b, special_b = b
    dl = DLFLOAT16
    product = Signal(8)
    m.d.comb += product.eq(mul_lut(significand_a, significand_b))
    acc_zero = (acc.exponent == 0) & (acc.mantissa == 0)
    product_zero = (significand_a == 0) | (significand_b == 0)
    top_p = Signal(7)
    m.d.comb += top_p.eq(exponent_a + exponent_b + 2)
    top_c = acc.exponent
    product_big = Signal()
    m.d.comb += product_big.eq(~product_zero & (top_p >= top_c))
    top = Signal(7)
    distance = Signal(7)
    m.d.comb += [top.eq(Mux(product_big, top_p, top_c)),
                 distance.eq(Mux(product_big, top_p - top_c, top_c - top_p))]
    # The product's trailing zeros are its factors' summed.
    trailing_p = Signal(range(WINDOW + 1))
    trailing_c = Signal(range(WINDOW + 1))
    m.d.comb += [
        trailing_p.eq(WINDOW - 8 + trailing_zeros(m, significand_a, name="tz_a")
                      + trailing_zeros(m, significand_b, name="tz_b")),
        trailing_c.eq(WINDOW - dl.man_bits - 1
                      + trailing_zeros(m, Cat(acc.mantissa, 1), name="tz_c")),
    ]
    acc_nan = (acc.exponent == dl.exp_all_ones) & (acc.mantissa == dl.man_all_ones)
    return {"product": product, "product_sign": sign_a ^ sign_b,
            "special": special_a | special_b | acc_nan, "acc_zero": acc_zero,
            "product_big": product_big, "top": top, "distance": distance,
            "trailing_p": trailing_p, "trailing_c": trailing_c}


def digit_product(m, x, y, x_signed: bool, y_signed: bool, name: str) -> Signal:
    """A 2-bit x 2-bit product as a lookup table (each bit a 4-input function)."""
    product = Signal(signed(5), name=name)
    with m.Switch(Cat(x, y)):
        for code in range(16):
            vx, vy = code & 3, code >> 2
            vx -= 4 * (x_signed and vx >= 2)
            vy -= 4 * (y_signed and vy >= 2)
            with m.Case(code):
                m.d.comb += product.eq(vx * vy)
    return product


def lane_sums(m, a, b, *, int4) -> Signal:
    """Stage 1, INT modes: the sum of the lane products of ``a`` and ``b`` (2 INT4 lanes
    when ``int4`` is high, else 4 INT2 lanes), signed 10 bits.

    INT4 and INT2 share 2-bit digit products. Digit i of ``a`` is INT2 lane i; INT4 lane j
    is digits 2j (unsigned, low) and 2j+1 (signed, high), so that
    x * y = 16 * hi(x) * hi(y) + 4 * (hi(x) * lo(y) + lo(x) * hi(y)) + lo(x) * lo(y).
    """
    digit_a = [a[i:i + 2] for i in range(0, 8, 2)]
    digit_b = [b[i:i + 2] for i in range(0, 8, 2)]

    def product(i, j, i_signed, j_signed, name):
        return digit_product(m, digit_a[i], digit_b[j], i_signed, j_signed, name)

    high = [product(i, i, True, True, f"high_{i}") for i in (1, 3)]
    low = [Mux(int4, product(i, i, False, False, f"low_u_{i}"),
               product(i, i, True, True, f"low_s_{i}"))
           for i in (0, 2)]
    cross = [product(i + 1, i, True, False, f"cross_a{i}")
             + product(i, i + 1, False, True, f"cross_b{i}")
             for i in (0, 2)]
    high_sum = Signal(signed(6))
    m.d.comb += high_sum.eq(high[0] + high[1])
    lane_sum = Signal(signed(10))
    m.d.comb += lane_sum.eq(Mux(int4, high_sum << 4, high_sum) + (low[0] + low[1])
                            + Mux(int4, (cross[0] + cross[1]) << 2, 0))
    return lane_sum


def align(m, product, acc, acc_zero, product_big, distance, trailing_p, trailing_c) -> tuple:
    """Stage 2: the two addends of the fused add, as (big, small), WINDOW + 1 bits each.

    Each significand is top-justified in the WINDOW-bit window; the one with the lower top
    (the smaller addend) is shifted down by ``distance``, and the bits it loses are ORed
    into an extra LSB (the sticky bit): some set bit falls below the window exactly when
    the distance exceeds the significand's trailing zeros in the window. Takes stage 1's
    values (``acc`` is the accumulator's view).
    """
    window_p = Cat(Const(0, WINDOW - 8), product)
    window_c = Cat(Const(0, WINDOW - DLFLOAT16.man_bits - 1), acc.mantissa, ~acc_zero)
    big = Signal(WINDOW)
    small = Signal(WINDOW)
    m.d.comb += [big.eq(Mux(product_big, window_p, window_c)),
                 small.eq(Mux(product_big, window_c, window_p))]
    shifted = Signal(WINDOW)
    m.d.comb += shifted.eq(Mux(distance[5:].any(), 0, small >> distance[:5]))
    sticky = small.any() & (distance > Mux(product_big, trailing_c, trailing_p))
    return Cat(Const(0, 1), big), Cat(sticky, shifted)


def add(m, big, small, subtract, big_sign) -> tuple:
    """Stage 2: (magnitude, sign) of big +- small (``subtract``), the big addend having
    sign ``big_sign``; with stage 1's ``top``, the value is magnitude * 2**(top - 30 - 22).

    One adder: big + small, or big - small as big + ~small + 1. The difference is negative
    only when the tops are equal or the product is not normalized.
    """
    width = len(big)
    total = Signal(signed(width + 2))
    m.d.comb += total.eq(big + Cat(small ^ subtract.replicate(width), subtract).as_signed()
                         + subtract)
    magnitude = Signal(width + 1)
    sign = Signal()
    m.d.comb += [magnitude.eq(Mux(total < 0, -total, total)), sign.eq(big_sign ^ (total < 0))]
    return magnitude, sign


def normalize(m, magnitude) -> tuple:
    """Stage 3: (``magnitude`` shifted up until its MSB is set, the shift)."""
    lz = leading_zeros(m, magnitude)
    normalized = Signal(len(magnitude))
    m.d.comb += normalized.eq(magnitude << lz)
    return normalized, lz


class MPE(wiring.Component):
    """One multiply-accumulate per cycle: acc_out = acc_in + a * b.

    Ports (all sampled together when ``valid_in`` is high):
    ``mode`` (``Mode``: FP8, INT4, INT2), ``fmt_a`` / ``fmt_b`` (``SourceFormat``: E4M3 or
    E5M2, per operand), ``a``, ``b`` (8 bits), ``acc_in`` (32 bits); ``valid_out`` and
    ``acc_out`` come ``pipeline`` cycles later.

    Parameters: ``bias``, the ``e4m3`` bias (0..15, default 11); ``pipeline``, the number of
    register stages (0..6, default 2: after the product and on the result; 3 adds one after
    the fused add, 4 one after the normalization, 5 one after the alignment, 6 one on the
    inputs).

    Latency: ``pipeline`` cycles (0: combinational). Throughput: one row per cycle, that
    is 1 FP8 MAC, 2 INT4 MACs or 4 INT2 MACs per cycle.

    FP8: both operands are decoded to 4-bit significands (subnormals not normalized) and
    share one 4x4 significand multiplier and one fused add, whose alignment shifts only the
    smaller addend: the exact sum of the ``dlfloat16`` accumulator (low 16
    bits of ``acc_in``) and the product is rounded once, to nearest with ties away from zero.
    A NaN or Inf operand or accumulator, or an overflow, gives 0x7FFF; an exact zero gives 0;
    a result below the smallest ``dlfloat16`` (2^-31 x (1+2^-9)) rounds to it or to 0.
    The upper 16 bits of ``acc_out`` are zero.

    INT4 / INT2: ``a`` and ``b`` hold 2 (4-bit) or 4 (2-bit) signed lanes, lane 0 in the
    LSBs; acc_out = acc_in + sum of the lane products, wrapping modulo 2^32.
    """

    parameters = (BIAS, PIPELINE)

    def __init__(self, bias: int = BIAS.default, pipeline: int = PIPELINE.default):
        self.bias = BIAS.check(bias, "MPE")
        self.pipeline = PIPELINE.check(pipeline, "MPE")
        super().__init__({
            "valid_in": In(1),
            "mode": In(Mode),
            "fmt_a": In(SourceFormat),
            "fmt_b": In(SourceFormat),
            "a": In(8),
            "b": In(8),
            "acc_in": In(32),
            "valid_out": Out(1),
            "acc_out": Out(32),
        })

    @property
    def latency(self) -> int:
        return self.pipeline

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, PIPELINE_CUTS[self.pipeline])
        dl = DLFLOAT16
        s0 = pipe.cut_all("operands", {
            "valid": self.valid_in, "mode": self.mode, "fmt_a": self.fmt_a,
            "fmt_b": self.fmt_b, "a": self.a, "b": self.b, "acc": self.acc_in,
        })

        acc = data.View(float_layout(dl), s0["acc"][:dl.width])
        a = decode(s0["a"], s0["fmt_a"], self.bias)
        b = decode(s0["b"], s0["fmt_b"], self.bias)
        fused = product_and_exponents(m, a, b, acc)
        lane_sum = lane_sums(m, s0["a"], s0["b"], int4=s0["mode"] == Mode.INT4)
        # In this order: Yosys's LUT mapping follows the netlist's order, and other orders
        # measured up to 13% lower Fmax at pipeline 5 for the same logic.
        s1 = pipe.cut_all("product", {
            "valid": s0["valid"], "fp8": s0["mode"] == Mode.FP8, "acc": s0["acc"],
            "product": fused["product"], "product_sign": fused["product_sign"],
            "special": fused["special"], "lane_sum": lane_sum, "acc_zero": fused["acc_zero"],
            "product_big": fused["product_big"], "top": fused["top"],
            "distance": fused["distance"], "trailing_p": fused["trailing_p"],
            "trailing_c": fused["trailing_c"],
        })

        acc = data.View(float_layout(dl), s1["acc"][:dl.width])
        big, small = align(m, s1["product"], acc, s1["acc_zero"], s1["product_big"],
                           s1["distance"], s1["trailing_p"], s1["trailing_c"])
        int_result = Signal(32)
        m.d.comb += int_result.eq(s1["acc"] + s1["lane_sum"].as_signed())
        s2 = pipe.cut_all("align", {
            "valid": s1["valid"], "fp8": s1["fp8"], "special": s1["special"],
            "big": big, "small": small,
            "big_sign": Mux(s1["product_big"], s1["product_sign"], acc.sign),
            "subtract": s1["product_sign"] ^ acc.sign, "top": s1["top"],
            "int_result": int_result,
        })

        magnitude, sum_sign = add(m, s2["big"], s2["small"], s2["subtract"], s2["big_sign"])
        s3 = pipe.cut_all("sum", {
            "valid": s2["valid"], "fp8": s2["fp8"], "special": s2["special"],
            "magnitude": magnitude, "sign": sum_sign, "top": s2["top"],
            "int_result": s2["int_result"],
        })

        normalized, lz = normalize(m, s3["magnitude"])
        s4 = pipe.cut_all("normalize", {
            "valid": s3["valid"], "fp8": s3["fp8"], "special": s3["special"],
            "sign": s3["sign"], "top": s3["top"], "int_result": s3["int_result"],
            "normalized": normalized, "lz": lz,
            "zero": s3["magnitude"] == 0,           # known before the shift
        })

        # The magnitude's MSB is worth 2**(top - 30) (see add): biased, top + 1.
        code = round_to_dl(m, dl, s4["normalized"], s4["top"], s4["lz"], s4["sign"],
                           exp_offset=1, rounding="rnu", overflow="nan", nan=s4["special"],
                           zero=s4["zero"])
        acc_out = Mux(s4["fp8"], code, s4["int_result"])
        m.d.comb += [self.acc_out.eq(pipe.cut("result", acc_out)),
                     self.valid_out.eq(pipe.cut("result", s4["valid"], reset_less=False))]
        return m
