"""Mixed-precision MAC (MPE): HFP8 operands, fused DLFloat16 accumulation, INT4/INT2 lanes."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Mode, SourceFormat
from fp8hw.params import Param
from golden.formats import DLFLOAT16, E4M3, E5M2, FP9
from golden.params import BIAS
from hw.arith import Pipeline, leading_zeros, mul_lut, trailing_zeros
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
        inputs = pipe.cut_all("operands", {
            "valid": self.valid_in, "mode": self.mode, "fmt_a": self.fmt_a,
            "fmt_b": self.fmt_b, "a": self.a, "b": self.b, "acc": self.acc_in,
        })
        valid_in, mode, acc_in = inputs["valid"], inputs["mode"], inputs["acc"]
        a, b = inputs["a"], inputs["b"]

        # Stage 1: decode both operands and multiply the significands. -------------------
        rebias = FP9.bias - self.bias
        assert E5M2.bias == FP9.bias

        def decode(code, fmt):
            """(sign, 4-bit significand, exponent biased as in fp9, NaN/Inf) of an 8-bit code.

            Subnormals are not normalized (their significand is 0.xxx with the exponent of
            e=1), so that the product can have leading zeros; the fused add is exact anyway
            (see WINDOW).
            """
            e4 = data.View(float_layout(E4M3), code)
            e5 = data.View(float_layout(E5M2), code)
            is_e5 = fmt == SourceFormat.E5M2
            significand = Mux(is_e5, Cat(Const(0, 1), e5.mantissa, e5.exponent != 0),
                              Cat(e4.mantissa, e4.exponent != 0))
            exponent = Mux(is_e5, Mux(e5.exponent == 0, 1, e5.exponent),
                           Mux(e4.exponent == 0, 1, e4.exponent) + rebias)
            special = Mux(is_e5, e5.exponent == E5M2.exp_all_ones,
                          code[:7] == E4M3.canonical_nan)
            return code[7], significand, exponent, special

        sign_a, significand_a, exponent_a, special_a = decode(a, inputs["fmt_a"])
        sign_b, significand_b, exponent_b, special_b = decode(b, inputs["fmt_b"])
        acc = data.View(float_layout(dl), acc_in[:dl.width])

        product = Signal(8)
        m.d.comb += product.eq(mul_lut(significand_a, significand_b))

        # The fused add's exponent side, here so that stage 2 is only muxes and the shifter.
        # Tops (exclusive MSB exponents) biased by +30: product 2**(ea+eb-28), acc 2**(e-30).
        # Each significand is top-justified in the WINDOW-bit window; the one with the lower
        # top (the smaller addend) is shifted down by the difference of the tops, and the
        # bits it loses are ORed into an extra LSB (the sticky bit): some set bit falls
        # below the window exactly when that distance exceeds the significand's trailing
        # zeros in the window.
        acc_zero = (acc.exponent == 0) & (acc.mantissa == 0)
        product_zero = (significand_a == 0) | (significand_b == 0)
        top_p = Signal(7)
        m.d.comb += top_p.eq(exponent_a + exponent_b + 2)
        top_c = acc.exponent
        product_big = Signal()
        m.d.comb += product_big.eq(~product_zero & (top_p >= top_c))
        top = Signal(7)
        distance = Signal(7)                  # top - the smaller top (garbage when small is 0)
        m.d.comb += [top.eq(Mux(product_big, top_p, top_c)),
                     distance.eq(Mux(product_big, top_p - top_c, top_c - top_p))]
        # Trailing zeros in the window: the product's are its factors' summed.
        trailing_p = Signal(range(WINDOW + 1))
        trailing_c = Signal(range(WINDOW + 1))
        m.d.comb += [
            trailing_p.eq(WINDOW - 8 + trailing_zeros(m, significand_a, name="tz_a")
                          + trailing_zeros(m, significand_b, name="tz_b")),
            trailing_c.eq(WINDOW - dl.man_bits - 1
                          + trailing_zeros(m, Cat(acc.mantissa, 1), name="tz_c")),
        ]
        special = (special_a | special_b
                   | ((acc.exponent == dl.exp_all_ones) & (acc.mantissa == dl.man_all_ones)))

        # INT4 and INT2 share 2-bit digit products. Digit i of ``a`` is INT2 lane i; INT4
        # lane j is digits 2j (unsigned, low) and 2j+1 (signed, high), so that
        # x * y = 16 * hi(x) * hi(y) + 4 * (hi(x) * lo(y) + lo(x) * hi(y)) + lo(x) * lo(y).
        int4 = mode == Mode.INT4
        digit_a = [a[i:i + 2] for i in range(0, 8, 2)]
        digit_b = [b[i:i + 2] for i in range(0, 8, 2)]

        def digit_product(x, y, x_signed, y_signed, name):
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

        high = [digit_product(digit_a[i], digit_b[i], True, True, f"high_{i}") for i in (1, 3)]
        low = [Mux(int4, digit_product(digit_a[i], digit_b[i], False, False, f"low_u_{i}"),
                   digit_product(digit_a[i], digit_b[i], True, True, f"low_s_{i}"))
               for i in (0, 2)]
        cross = [digit_product(digit_a[i + 1], digit_b[i], True, False, f"cross_a{i}")
                 + digit_product(digit_a[i], digit_b[i + 1], False, True, f"cross_b{i}")
                 for i in (0, 2)]
        high_sum = Signal(signed(6))
        m.d.comb += high_sum.eq(high[0] + high[1])
        lane_sum = Signal(signed(10))
        m.d.comb += lane_sum.eq(Mux(int4, high_sum << 4, high_sum) + (low[0] + low[1])
                                + Mux(int4, (cross[0] + cross[1]) << 2, 0))

        s1 = pipe.cut_all("product", {
            "valid": valid_in, "fp8": mode == Mode.FP8, "acc": acc_in,
            "product": product, "product_sign": sign_a ^ sign_b, "special": special,
            "lane_sum": lane_sum, "acc_zero": acc_zero, "product_big": product_big,
            "top": top, "distance": distance, "trailing_p": trailing_p,
            "trailing_c": trailing_c,
        })

        # Stage 2: align the smaller addend below the larger one's top, and add. ---------
        acc = data.View(float_layout(dl), s1["acc"][:dl.width])
        product_big, distance = s1["product_big"], s1["distance"]
        window_p = Cat(Const(0, WINDOW - 8), s1["product"])
        window_c = Cat(Const(0, WINDOW - dl.man_bits - 1), acc.mantissa, ~s1["acc_zero"])
        big = Signal(WINDOW)
        small = Signal(WINDOW)
        m.d.comb += [big.eq(Mux(product_big, window_p, window_c)),
                     small.eq(Mux(product_big, window_c, window_p))]
        shifted = Signal(WINDOW)
        m.d.comb += shifted.eq(Mux(distance[5:].any(), 0, small >> distance[:5]))
        sticky = small.any() & (distance > Mux(product_big, s1["trailing_c"], s1["trailing_p"]))
        aligned_big = Cat(Const(0, 1), big)
        aligned_small = Cat(sticky, shifted)
        int_result = Signal(32)
        m.d.comb += int_result.eq(s1["acc"] + s1["lane_sum"].as_signed())

        s1a = pipe.cut_all("align", {
            "valid": s1["valid"], "fp8": s1["fp8"], "special": s1["special"],
            "big": aligned_big, "small": aligned_small,
            "big_sign": Mux(product_big, s1["product_sign"], acc.sign),
            "subtract": s1["product_sign"] ^ acc.sign, "top": s1["top"],
            "int_result": int_result,
        })
        # One adder: big + small, or big - small as big + ~small + 1. The difference is
        # negative only when the tops are equal or the product is not normalized.
        subtract = s1a["subtract"]
        total = Signal(signed(WINDOW + 3))
        m.d.comb += total.eq(s1a["big"] + Cat(s1a["small"] ^ subtract.replicate(WINDOW + 1),
                                              subtract).as_signed() + subtract)
        magnitude = Signal(WINDOW + 2)        # value = magnitude * 2**(top - 30 - 22)
        sum_sign = Signal()
        m.d.comb += [magnitude.eq(Mux(total < 0, -total, total)),
                     sum_sign.eq(s1a["big_sign"] ^ (total < 0))]

        s2 = pipe.cut_all("sum", {
            "valid": s1a["valid"], "fp8": s1a["fp8"], "special": s1a["special"],
            "magnitude": magnitude, "sign": sum_sign, "top": s1a["top"],
            "int_result": s1a["int_result"],
        })

        # Stage 3: normalize and round to nearest, ties away (rnu). ----------------------
        width = len(s2["magnitude"])
        lz_sum = leading_zeros(m, s2["magnitude"])
        normalized_sum = Signal(width)
        m.d.comb += normalized_sum.eq(s2["magnitude"] << lz_sum)
        s3 = pipe.cut_all("normalize", {
            "valid": s2["valid"], "fp8": s2["fp8"], "special": s2["special"],
            "sign": s2["sign"], "top": s2["top"], "int_result": s2["int_result"],
            "normalized": normalized_sum, "lz": lz_sum, "zero": s2["magnitude"] == 0,
        })
        normalized, lz = s3["normalized"], s3["lz"]
        sig_bits = dl.man_bits + 1
        kept = normalized[width - sig_bits:]              # 10 bits, MSB set
        guard = normalized[width - sig_bits - 1]
        fraction = kept[:dl.man_bits]
        # Rounding up carries out of the significand only when its fraction is all ones;
        # then the result is 2**(exponent + 1) (fraction 0). No decision below waits for
        # the rounding adder: the exponent cases come from exp_field and carry, the
        # mantissa cases from the kept bits and the guard bit.
        carry = Signal()
        m.d.comb += carry.eq(fraction.all() & guard)
        exp_field = Signal(signed(9))       # biased dlfloat16 exponent before rounding
        exp_next = Signal(signed(9))        # the same, plus one
        m.d.comb += [exp_field.eq(s3["top"] + 1 - lz), exp_next.eq(s3["top"] + 2 - lz)]
        exp_final = Mux(carry, exp_next, exp_field)
        man_final = Signal(dl.man_bits)
        m.d.comb += man_final.eq(Mux(carry, 0, fraction + guard))

        code = Signal(dl.width)
        sign = s3["sign"] << (dl.width - 1)
        e_max, m_max = dl.max_fields
        # Past the largest finite value: a larger exponent, or the largest one with a
        # mantissa over m_max after rounding (a carry makes the exponent larger instead).
        mantissa_over = carry | (fraction > m_max) | ((fraction == m_max) & guard)
        with m.If(s3["special"] | (exp_field > e_max) | ((exp_field == e_max) & mantissa_over)):
            m.d.comb += code.eq(dl.canonical_nan)
        with m.Elif(s3["zero"] | (exp_field < -1)):
            m.d.comb += code.eq(0)
        with m.Elif(exp_field == -1):
            # [2**-32, 2**-31): min positive when at or above half of it, 2**-32 * (1+2**-9),
            # that is when any of the 9 bits below the leading one is set; else zero.
            below_lead = normalized[width - dl.man_bits - 1:width - 1]
            m.d.comb += code.eq(Mux(below_lead.any(), sign | 1, 0))
        with m.Elif((exp_field == 0) & ~fraction.any() & ~guard):
            # e=0, m=0 is the zero code, not 2**-31: round up to min positive instead.
            m.d.comb += code.eq(sign | 1)
        with m.Else():
            m.d.comb += code.eq(sign | (exp_final[:dl.exp_bits] << dl.man_bits) | man_final)

        acc_out = Mux(s3["fp8"], code, s3["int_result"])
        m.d.comb += [self.acc_out.eq(pipe.cut("result", acc_out)),
                     self.valid_out.eq(pipe.cut("result", s3["valid"], reset_less=False))]
        return m
