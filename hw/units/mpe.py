"""Mixed-precision MAC (MPE): HFP8 operands, fused DLFloat16 accumulation, INT4/INT2 lanes."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Mode, SourceFormat
from fp8hw.params import Param
from golden.formats import DLFLOAT16, E4M3, E5M2
from golden.params import BIAS
from hw.arith import Pipeline, add_carry, leading_zeros, mul_lut, normalize, trailing_zeros
from hw.dl_round import round_away_to_dl
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
    7: ("operands", "decode", "product", "align", "sum", "normalize", "result"),
    8: ("operands", "decode", "product", "align", "sum", "count", "normalize", "result"),
}
PIPELINE = Param("pipeline", 2, "MPE register stages (= latency in cycles)", lo=0,
                 hi=len(PIPELINE_CUTS) - 1)
MULTIPLIER = Param("multiplier", "lut", "the significand product and the INT lanes from "
                   "LUTs, or from one 18x18 DSP block", choices=("lut", "dsp"))

# The fused add's window: the larger addend's significand top-justified in WINDOW bits
# (the product's 8 bits, whose MSB may be 0, or the accumulator's 10), then a sticky bit.
# Bits of the smaller addend fall below the window only when its top lies at least
# WINDOW - 9 places below the larger one's (the accumulator's 10 bits) or WINDOW - 7 (the
# product's 8); the tops' actual distance is then at least WINDOW - 10, so even a
# subtraction leaves the result's leading one at window bit WINDOW - 3 or above, and its
# 10 bits and guard bit (bits WINDOW - 3 .. WINDOW - 13) are exact, the sticky bit
# standing for the rest. Rounding to nearest with ties away needs no more.
WINDOW = 13

# Operand exponents are biased so that a value is S / 8 * 2**(X - x_bias), S the 4-bit
# normalized significand 1.xxx: b's by 17 (X is 0..32 for e4m3 biases 0..15 and e5m2),
# a's by 16 (-1..31), so that the product's top and the accumulator's differ by
# Xa + Xb - e - 1 = Xa + Xb + ~e, a sum with no constant (see product_and_exponents).
X_BIAS_A = 16
X_BIAS_B = 17


def table(m, index, function, shape, name: str) -> Signal:
    """``function(i)`` for every value i of the unsigned ``index``, as a lookup table: a
    small sum with a constant, written so, becomes a carry chain (on ECP5 its cells and
    about four more a chain), where the table is a few LUTs."""
    out = Signal(shape, name=name)
    with m.Switch(index):
        for i in range(2 ** len(index)):
            with m.Case(i):
                m.d.comb += out.eq(function(i))
    return out


def decode(m, code, fmt, bias: int, x_bias: int, name: str) -> tuple:
    """Stage 1, one operand: (sign, significand, exponent, NaN/Inf) of the 8-bit ``code``
    in ``fmt`` (``SourceFormat``; ``bias`` is the e4m3 bias): the significand is 1.xxx
    as 4 bits (0 for a zero), subnormals normalized, and the exponent X biased by
    ``x_bias`` (signed 7 bits)."""
    e4 = data.View(float_layout(E4M3), code)
    e5 = data.View(float_layout(E5M2), code)
    x4 = x_bias - bias                  # X of e4m3's exponent field 0, for 0.1xx
    m4, m5 = e4.mantissa, e5.mantissa
    significand_4 = Mux(e4.exponent != 0, Cat(m4, 1),
                        Mux(m4[2], Cat(0, m4[:2], 1),
                            Mux(m4[1], Cat(0, 0, m4[0], 1), Cat(0, 0, 0, m4[0]))))
    exponent_4 = Mux(e4.exponent != 0,
                     table(m, e4.exponent, lambda e: e + x4, signed(7), f"{name}_x4"),
                     Mux(m4[2], x4, Mux(m4[1], x4 - 1, x4 - 2)))
    x5 = x_bias - E5M2.bias
    significand_5 = Mux(e5.exponent != 0, Cat(0, m5, 1),
                        Mux(m5[1], Cat(0, 0, m5[0], 1), Cat(0, 0, 0, m5[0])))
    exponent_5 = Mux(e5.exponent != 0,
                     table(m, e5.exponent, lambda e: e + x5, signed(7), f"{name}_x5"),
                     Mux(m5[1], x5, x5 - 1))
    is_e5 = fmt == SourceFormat.E5M2
    special = Mux(is_e5, e5.exponent == E5M2.exp_all_ones, code[:7] == E4M3.canonical_nan)
    significand = Signal(4, name=f"{name}_significand")
    exponent = Signal(signed(7), name=f"{name}_exponent")
    m.d.comb += [significand.eq(Mux(is_e5, significand_5, significand_4)),
                 exponent.eq(Mux(is_e5, exponent_5, exponent_4))]
    return code[7], significand, exponent, special


def product_and_exponents(m, a: tuple, b: tuple, acc) -> dict:
    """Stage 2 (beside the significand product, 8 bits exact, MSB 0 when below 2): the
    exponent side of the fused add, so that the alignment is only muxes and the shifter.

    Takes the two ``decode`` results and the ``dlfloat16`` accumulator (a view). Gives
    ``product_sign``, ``special`` (a NaN/Inf operand or accumulator), ``acc_zero``,
    ``product_big`` (the product is the larger addend by its top), ``above`` (the
    product's top less the accumulator's, for ``larger_top``),
    ``distance`` (from the smaller addend's top) and ``sticky_after`` (the smaller
    addend's trailing zeros in the window: a larger distance shifts a set bit out).
    """
    sign_a, significand_a, exponent_a, special_a = a
    sign_b, significand_b, exponent_b, special_b = b
    dl = DLFLOAT16
    acc_zero = (acc.exponent == 0) & (acc.mantissa == 0)
    product_zero = ~significand_a[3] | ~significand_b[3]
    # above = top_p - top_c: the product's top is 2**(Xa + Xb - 31), the accumulator's
    # 2**(e - 30), so above = Xa + Xb + ~e; its three terms are first added without
    # carries, so that only one carry chain follows the operands' decode.
    terms = (exponent_a.as_signed(), exponent_b.as_signed(), Cat(~acc.exponent, 1, 1))
    partial = Signal(8)
    carries = Signal(8)
    m.d.comb += [partial.eq(terms[0] ^ terms[1] ^ terms[2]),
                 carries.eq(Cat(0, (terms[0] & terms[1]) | (terms[0] & terms[2])
                                | (terms[1] & terms[2])))]
    above = Signal(signed(8))
    m.d.comb += above.eq(partial + carries)
    product_big = Signal()
    m.d.comb += product_big.eq(~product_zero & (acc_zero | (above >= 0)))
    distance = Signal(7)
    # When the accumulator is larger, the distance is -above = ~above + 1: the product
    # enters the window one place lower (see align) and is shifted by ~above.
    m.d.comb += distance.eq(Mux(product_big, above, ~above))
    # The product's trailing zeros are its factors' summed.
    tz_p = Signal(range(WINDOW + 1))
    tz_c = Signal(range(WINDOW + 1))
    m.d.comb += [
        tz_p.eq(WINDOW - 9 + trailing_zeros(m, significand_a[:3], name="tz_a")
                + trailing_zeros(m, significand_b[:3], name="tz_b")),
        tz_c.eq(WINDOW - dl.man_bits - 1 + trailing_zeros(m, acc.mantissa, name="tz_c")),
    ]
    acc_nan = (acc.exponent == dl.exp_all_ones) & (acc.mantissa == dl.man_all_ones)
    return {"product_sign": sign_a ^ sign_b,
            "special": special_a | special_b | acc_nan, "acc_zero": acc_zero,
            "product_big": product_big, "above": above, "distance": distance,
            "sticky_after": Mux(product_big, tz_c, tz_p)}


def larger_top(m, acc_exponent, above, product_big) -> Signal:
    """Stage 3 (beside the fused add): ``top``, the larger addend lies below
    2**(top - 31) (a signed 8 bits). The accumulator's top is e + 1 and the product's
    Xa + Xb = above + e + 1, so top = e + 1 + (above when the product is larger): one
    carry chain (the 1 its carry in), not a sum of the operands' exponents beside
    e + 1 and a multiplexer. (In the alignment stage instead, beside the shifter, the
    MPE measured about 30 LUT4 larger in nextpnr.)"""
    top = Signal(signed(8))
    m.d.comb += top.eq(add_carry(acc_exponent, Mux(product_big, above, 0), 1))
    return top


def digit_product(m, x, y, x_signed: bool, y_signed: bool, name: str) -> Signal:
    """A 2-bit x 2-bit product as a lookup table (each bit a 4-input function)."""
    def value(code):
        vx, vy = code & 3, code >> 2
        return (vx - 4 * (x_signed and vx >= 2)) * (vy - 4 * (y_signed and vy >= 2))
    return table(m, Cat(x, y), value, signed(5), name)


def lane_terms(m, a, b, *, int4) -> dict:
    """Stage 1, INT modes with LUT products: three partial sums of the lane products of
    ``a`` and ``b`` (2 INT4 lanes when ``int4`` is high, else 4 INT2 lanes), which
    ``lane_sum`` adds up in the next stage.

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
    terms = {"high": Signal(signed(6)), "low": Signal(signed(6)), "cross": Signal(signed(7))}
    m.d.comb += [terms["high"].eq(high[0] + high[1]), terms["low"].eq(low[0] + low[1]),
                 terms["cross"].eq(cross[0] + cross[1])]
    return terms


def lane_sum(m, terms: dict, int4) -> Signal:
    """Stage 2: the lane products' sum from ``lane_terms``, signed 10 bits."""
    total = Signal(signed(10))
    m.d.comb += total.eq(Mux(int4, terms["high"] << 4, terms["high"]) + terms["low"]
                         + Mux(int4, terms["cross"] << 2, 0))
    return total


# DSP products (``multiplier="dsp"``): one signed 18 x 18 multiplication gives the FP8
# significand product in bits 0..7, or the INT lanes' dot product as one coefficient of a
# product of packed lanes: A = sum a_i 2**(k i), B = sum b_i 2**(k (n - 1 - i)), whose
# coefficient of 2**(k (n - 1)) is sum a_i b_i. The coefficients below it add up to less
# than 2**(k (n - 1) - 1) in magnitude, so the dot product is bits k (n - 1) and up, plus
# bit k (n - 1) - 1 (the rounding of a negative lower part).
INT4_K = 9      # 2 lanes: products -56..64, dot -112..128 (9 bits), lower part -56..64
INT2_K = 5      # 4 lanes: products -2..4, dot -8..16 (read modulo 32), lower part < 2**14


def dsp_operands(m, a, b, significand_a, significand_b, mode) -> tuple:
    """Stage 1: the DSP's two signed 18-bit operands for ``mode``."""
    def minus(value, borrow, name):
        # value - borrow; for INT4 lanes a table (as a subtraction, a carry chain)
        if isinstance(borrow, Const) or len(value) < 4:
            return (value - borrow).as_signed()
        width = len(value)
        return table(m, Cat(value, borrow),
                     lambda i: (i % 2 ** width) - 2 ** width * ((i >> (width - 1)) & 1)
                     - (i >> width), signed(width + 1), name)

    def packed(code, lanes, k, reverse):
        # Field i holds lane i minus the borrow of the lanes below it (negative as a whole
        # when the lane is negative, or 0 above a negative part); the last one extends.
        width = 8 // lanes
        values = [code[i * width:(i + 1) * width].as_signed() for i in range(lanes)]
        if reverse:
            values = values[::-1]
        fields, borrow = [], Const(0, 1)
        for i, value in enumerate(values):
            fields.append(minus(value, borrow, f"field_{lanes}_{int(reverse)}_{i}"))
            borrow = value[-1] | (borrow & (value == 0))
        last = fields.pop()
        return Cat(*(Cat(f, f[-1].replicate(k - len(f))) for f in fields), last).as_signed()

    int4 = (packed(a, 2, INT4_K, False), packed(b, 2, INT4_K, True))
    int2 = (packed(a, 4, INT2_K, False), packed(b, 4, INT2_K, True))
    fp8 = (Cat(significand_a, 0).as_signed(), Cat(significand_b, 0).as_signed())
    return tuple(Mux(mode == Mode.FP8, fp8[i], Mux(mode == Mode.INT4, int4[i], int2[i]))
                 for i in range(2))


def dsp_lane_sum(m, product, int4) -> tuple:
    """Stage 3: the lanes' dot product from the DSP's ``product`` as (field, round): a
    signed 10-bit field and the bit below it, whose sum is the dot product (the bit
    enters the accumulator's add as its carry in, so that no adder of its own is needed)."""
    k4, k2 = INT4_K, 3 * INT2_K
    field4 = product[k4:k4 + 9].as_signed()
    # INT2: the dot product is -8..16 and its field + bit is it modulo 32, so the field
    # alone is -9..16 modulo 32: 23..31 stand for -9..-1 (17..22 do not occur).
    field2 = product[k2:k2 + 5]
    negative2 = field2[4] & field2[:4].any()
    total = Signal(signed(10))
    m.d.comb += total.eq(Mux(int4, field4, Cat(field2, negative2.replicate(5))))
    return total, Mux(int4, product[k4 - 1], product[k2 - 1])


def align(m, product, acc, acc_zero, product_big, distance, sticky_after) -> tuple:
    """Stage 2: the two addends of the fused add, as (big, small), WINDOW + 1 bits each.

    Each significand is top-justified in the WINDOW-bit window; the one with the lower top
    (the smaller addend) is shifted down by ``distance``, and the bits it loses are ORed
    into an extra LSB (the sticky bit): some set bit falls below the window exactly when
    the distance exceeds the significand's trailing zeros in the window. Takes stage 1's
    values (``acc`` is the accumulator's view).
    """
    window_c = Cat(Const(0, WINDOW - DLFLOAT16.man_bits - 1), acc.mantissa, ~acc_zero)
    big = Signal(WINDOW)
    small = Signal(WINDOW)
    # A smaller product enters one place lower, as its distance is one short (stage 1).
    m.d.comb += [big.eq(Mux(product_big, Cat(Const(0, WINDOW - 8), product), window_c)),
                 small.eq(Mux(product_big, window_c, Cat(Const(0, WINDOW - 9), product, 0)))]
    shift_bits = (WINDOW - 1).bit_length()
    shifted = Signal(WINDOW)
    m.d.comb += shifted.eq(Mux(distance[shift_bits:].any(), 0, small >> distance[:shift_bits]))
    # sticky_after is at most WINDOW: a distance of 16 or more shifts every set bit out,
    # and the compare of the low 4 bits is LUTs, not a carry chain.
    assert WINDOW < 16 and len(sticky_after) <= 4
    sticky = small.any() & (distance[4:].any() | (distance[:4] > sticky_after))
    return Cat(Const(0, 1), big), Cat(sticky, shifted)


def add(m, big, small, subtract, big_sign) -> tuple:
    """Stage 3: (magnitude, sign) of big +- small, the big addend having sign
    ``big_sign``; ``small`` comes inverted when ``subtract`` (stage 2 does it); with
    ``larger_top``'s ``top``, the magnitude's MSB (a carry bit above the window) is worth
    2**(top - 31).

    big - small is big + ~small + 1. It is negative only when the tops are at most 1
    apart (the product's MSB may be 0), and then its magnitude is ~(big + ~small): a
    second adder beside the first, so that no negation follows it.
    """
    width = len(big)
    inverted = Cat(small, subtract).as_signed()
    total = Signal(signed(width + 2))
    less_one = Signal(signed(width + 2))       # big - small - 1
    m.d.comb += [total.eq(big + inverted + subtract), less_one.eq(big + inverted)]
    negative = total < 0
    magnitude = Signal(width + 1)
    sign = Signal()
    m.d.comb += [magnitude.eq(Mux(negative, ~less_one, total)),
                 sign.eq(big_sign ^ negative)]
    return magnitude, sign


class MPE(wiring.Component):
    """One multiply-accumulate per cycle: acc_out = acc_in + a * b.

    Ports (all sampled together when ``valid_in`` is high):
    ``mode`` (``Mode``: FP8, INT4, INT2), ``fmt_a`` / ``fmt_b`` (``SourceFormat``: E4M3 or
    E5M2, per operand), ``a``, ``b`` (8 bits), ``acc_in`` (32 bits); ``valid_out`` and
    ``acc_out`` come ``pipeline`` cycles later.

    Parameters: ``bias``, the ``e4m3`` bias (0..15, default 11); ``pipeline``, the number of
    register stages (0..8, default 2: after the product and on the result; 3 adds one after
    the fused add, 4 one after the normalization, 5 one after the alignment, 6 one on the
    inputs, 7 one after the operands' decode, 8 one after the leading-zero count);
    ``multiplier``, ``lut`` (the default) or ``dsp``: the significand product and the INT
    lanes' dot product from LUTs, or from one signed 18x18 multiplication (an ECP5
    MULT18X18D) of packed lanes.

    Latency: ``pipeline`` cycles (0: combinational). Throughput: one row per cycle, that
    is 1 FP8 MAC, 2 INT4 MACs or 4 INT2 MACs per cycle.

    FP8: both operands are decoded to normalized 4-bit significands (subnormals too), so
    the product has at most one leading zero, and share one 4x4 significand multiplier and
    one fused add in a 13-bit window (WINDOW), whose alignment shifts only the smaller
    addend: the exact sum of the ``dlfloat16`` accumulator (low 16 bits of ``acc_in``) and
    the product is rounded once, to nearest with ties away from zero. A NaN or Inf operand
    or accumulator, or an overflow, gives 0x7FFF; an exact zero gives 0; a result below
    the smallest ``dlfloat16`` (2^-31 x (1+2^-9)) rounds to it or to 0. The upper 16 bits
    of ``acc_out`` are zero.

    INT4 / INT2: ``a`` and ``b`` hold 2 (4-bit) or 4 (2-bit) signed lanes, lane 0 in the
    LSBs; acc_out = acc_in + sum of the lane products, wrapping modulo 2^32.
    """

    parameters = (BIAS, PIPELINE, MULTIPLIER)

    def __init__(self, bias: int = BIAS.default, pipeline: int = PIPELINE.default,
                 multiplier: str = MULTIPLIER.default):
        self.bias = BIAS.check(bias, "MPE")
        self.pipeline = PIPELINE.check(pipeline, "MPE")
        self.multiplier = MULTIPLIER.check(multiplier, "MPE")
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

        a = decode(m, s0["a"], s0["fmt_a"], self.bias, X_BIAS_A, "a")
        b = decode(m, s0["b"], s0["fmt_b"], self.bias, X_BIAS_B, "b")
        int4 = s0["mode"] == Mode.INT4
        if self.multiplier == "dsp":
            dsp_a, dsp_b = dsp_operands(m, s0["a"], s0["b"], a[1], b[1], s0["mode"])
            factors = {"dsp_a": dsp_a, "dsp_b": dsp_b}
        else:
            factors = lane_terms(m, s0["a"], s0["b"], int4=int4)
        sd = pipe.cut_all("decode", {
            "valid": s0["valid"], "fp8": s0["mode"] == Mode.FP8, "int4": int4,
            "acc": s0["acc"], "decoded_a": Cat(*a), "decoded_b": Cat(*b), **factors,
        })

        def fields(decoded):                 # (sign, significand, exponent, special)
            return (decoded[0], decoded[1:5], decoded[5:12].as_signed(), decoded[12])

        decoded_a, decoded_b = fields(sd["decoded_a"]), fields(sd["decoded_b"])
        if self.multiplier == "dsp":
            dsp_product = Signal(signed(36))
            m.d.comb += dsp_product.eq(sd["dsp_a"].as_signed() * sd["dsp_b"].as_signed())
            product = {"dsp_product": dsp_product[:3 * INT2_K + 5]}
        else:
            product = {"product": mul_lut(decoded_a[1], decoded_b[1]),
                       "lane_sum": lane_sum(m, {k: sd[k] for k in factors}, sd["int4"])}
        acc = data.View(float_layout(dl), sd["acc"][:dl.width])
        fused = product_and_exponents(m, decoded_a, decoded_b, acc)
        # In this order: Yosys's LUT mapping follows the netlist's order, and other orders
        # measured up to 13% lower Fmax at pipeline 5 for the same logic.
        s1 = pipe.cut_all("product", {
            "valid": sd["valid"], "fp8": sd["fp8"], "int4": sd["int4"], "acc": sd["acc"],
            **product, "product_sign": fused["product_sign"],
            "special": fused["special"], "acc_zero": fused["acc_zero"],
            "product_big": fused["product_big"], "above": fused["above"],
            "distance": fused["distance"], "sticky_after": fused["sticky_after"],
        })

        acc = data.View(float_layout(dl), s1["acc"][:dl.width])
        if self.multiplier == "dsp":
            s1["product"] = s1["dsp_product"][:8]
            s1["lane_sum"], s1["lane_carry"] = dsp_lane_sum(m, s1["dsp_product"], s1["int4"])
        else:
            s1["lane_carry"] = Const(0, 1)
        big, small = align(m, s1["product"], acc, s1["acc_zero"], s1["product_big"],
                           s1["distance"], s1["sticky_after"])
        subtract = s1["product_sign"] ^ acc.sign
        s2 = pipe.cut_all("align", {
            "valid": s1["valid"], "fp8": s1["fp8"], "special": s1["special"],
            "big": big, "small": small ^ subtract.replicate(len(small)),
            "big_sign": Mux(s1["product_big"], s1["product_sign"], acc.sign),
            "subtract": subtract, "above": s1["above"], "product_big": s1["product_big"],
            "acc": s1["acc"], "lane_sum": s1["lane_sum"], "lane_carry": s1["lane_carry"],
        })

        magnitude, sum_sign = add(m, s2["big"], s2["small"], s2["subtract"], s2["big_sign"])
        int_result = Signal(32)
        if self.multiplier == "dsp":
            m.d.comb += int_result.eq(add_carry(s2["acc"], s2["lane_sum"].as_signed(),
                                                s2["lane_carry"]))
        else:
            m.d.comb += int_result.eq(s2["acc"] + s2["lane_sum"].as_signed())
        s3 = pipe.cut_all("sum", {
            "valid": s2["valid"], "fp8": s2["fp8"], "special": s2["special"],
            "magnitude": magnitude, "sign": sum_sign,
            "top": larger_top(m, s2["acc"][dl.man_bits:dl.man_bits + dl.exp_bits],
                              s2["above"], s2["product_big"]),
            "int_result": int_result,
        })

        sc = pipe.cut_all("count", {
            "valid": s3["valid"], "fp8": s3["fp8"], "special": s3["special"],
            "sign": s3["sign"], "top": s3["top"], "int_result": s3["int_result"],
            "magnitude": s3["magnitude"], "lz": leading_zeros(m, s3["magnitude"]),
            "zero": s3["magnitude"] == 0,
        })

        # The top 11 bits (10 and the guard bit) are all that the rounding reads.
        normalized = normalize(m, sc["magnitude"], sc["lz"], keep=DLFLOAT16.man_bits + 3)[1:]
        # The magnitude's MSB is worth 2**(top - 31) (see add): biased, top.
        exponent = Signal(signed(len(sc["top"]) + 1))
        m.d.comb += exponent.eq(sc["top"] - sc["lz"])
        s4 = pipe.cut_all("normalize", {
            "valid": sc["valid"], "fp8": sc["fp8"], "special": sc["special"],
            "sign": sc["sign"], "exponent": exponent, "int_result": sc["int_result"],
            "normalized": normalized, "zero": sc["zero"],
        })

        code = round_away_to_dl(m, dl, s4["normalized"], s4["exponent"], s4["sign"],
                                nan=s4["special"], zero=s4["zero"])
        acc_out = Mux(s4["fp8"], code, s4["int_result"])
        m.d.comb += [self.acc_out.eq(pipe.cut("result", acc_out)),
                     self.valid_out.eq(pipe.cut("result", s4["valid"], reset_less=False))]
        return m
