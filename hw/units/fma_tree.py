"""FP8-SEB N-way FMA tree with an FP30 accumulator (docs/numerics.md, ``fmatree``)."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.params import Param
from golden.fmatree import tree_width
from golden.formats import FP8SEB, FP30
from golden.params import WAYS
from hw.arith import Pipeline, leading_zeros, mul_lut
from hw.dl_round import round_to_dl
from hw.layouts import float_layout

BIAS_SHAPE = signed(6)                    # fp8seb shared bias, -32..31
MAX_SHIFT = 2 * FP8SEB.exp_all_ones - 2   # e'(a) + e'(b) - 2 <= 28
PRODUCT_BITS = 8 + MAX_SHIFT              # |S(a) S(b)| <= 225 < 2**8


def product_term(m, a, b) -> tuple:
    """One way: (sign, magnitude S(a) S(b) << (e'(a) + e'(b) - 2)), exact."""
    def fields(code):
        f = data.View(float_layout(FP8SEB), code)
        return f.sign, Cat(f.mantissa, f.exponent != 0), Mux(f.exponent == 0, 1, f.exponent)

    sa, Sa, ea = fields(a)
    sb, Sb, eb = fields(b)
    shift = Signal(range(MAX_SHIFT + 1))
    magnitude = Signal(PRODUCT_BITS)
    m.d.comb += [shift.eq(ea + eb - 2), magnitude.eq(mul_lut(Sa, Sb) << shift)]
    return sa ^ sb, magnitude


def tree_levels(ways: int) -> int:
    return max(0, (ways - 1).bit_length())


def node_width(leaves: int) -> int:
    """Signed width that holds the sum of ``leaves`` products."""
    return tree_width(leaves)


def fixed_to_fp30(m, total, scale_exp, name="t") -> Signal:
    """rne_fp30(total * 2**scale_exp), saturating; ``total`` is a signed integer."""
    magnitude = Signal(len(total) - 1, name=f"{name}_mag")
    m.d.comb += magnitude.eq(Mux(total < 0, -total, total))
    lz = leading_zeros(m, magnitude, name=f"{name}_lz")
    width = max(len(magnitude), FP30.man_bits + 3)
    normalized = Signal(width, name=f"{name}_norm")
    m.d.comb += normalized.eq((magnitude << lz) << (width - len(magnitude)))
    # The MSB is bit len-1-lz of total, worth 2**(len - 1 - lz + scale_exp).
    return round_to_dl(m, FP30, normalized, scale_exp, lz, total < 0,
                       exp_offset=len(magnitude) - 1 + FP30.bias, rounding="rne",
                       overflow="sat", name=name)


ADD_WINDOW = FP30.man_bits + 1 + 3      # 24-bit significand, guard, round, sticky


def fp30_add(m, x, y, name="sum") -> Signal:
    """rne_fp30(x + y), saturating, for two non-NaN ``fp30`` codes (``dl``: no subnormals).

    Both significands are normalized, so a window of the significand plus guard, round
    and sticky bits is exact: an addend shifted by two or more loses bits only into the
    sticky bit and cancels at most one leading bit; one shifted by 0 or 1 loses nothing.
    """
    fx = data.View(float_layout(FP30), x)
    fy = data.View(float_layout(FP30), y)
    zero_x = (fx.exponent == 0) & (fx.mantissa == 0)
    zero_y = (fy.exponent == 0) & (fy.mantissa == 0)
    x_big = Signal(name=f"{name}_xbig")
    m.d.comb += x_big.eq(Cat(fx.mantissa, fx.exponent) >= Cat(fy.mantissa, fy.exponent))
    big_exp = Mux(x_big, fx.exponent, fy.exponent)
    small_exp = Mux(x_big, fy.exponent, fx.exponent)
    big_sig = Mux(x_big, Cat(fx.mantissa, 1), Cat(fy.mantissa, 1))
    small_sig = Mux(x_big, Cat(fy.mantissa, 1), Cat(fx.mantissa, 1))
    big_sign = Mux(x_big, fx.sign, fy.sign)
    subtract = fx.sign ^ fy.sign

    W = ADD_WINDOW
    shift = Signal(range(W + 1), name=f"{name}_shift")
    m.d.comb += shift.eq(Mux(big_exp - small_exp > W, W, big_exp - small_exp))
    extended = Cat(Const(0, W), Const(0, W - 24), small_sig) >> shift
    small = Cat(extended[:W + 1].any(), extended[W + 1:2 * W])   # sticky LSB + 26 bits
    big = Cat(Const(0, W - 24), big_sig)
    total = Signal(W + 1, name=f"{name}_total")
    m.d.comb += total.eq(Mux(subtract, big - small, big + small))
    lz = leading_zeros(m, total, name=f"{name}_lz")
    normalized = Signal(W + 1, name=f"{name}_norm")
    m.d.comb += normalized.eq(total << lz)
    # The big significand's MSB sits at bit W-1 of total, worth 2**(big_exp - bias).
    rounded = round_to_dl(m, FP30, normalized, big_exp, lz, big_sign, exp_offset=1,
                          rounding="rne", overflow="sat", name=name)
    result = Signal(FP30.width, name=f"{name}_result")
    m.d.comb += result.eq(Mux(zero_x, Mux(zero_y, 0, y), Mux(zero_y, x, rounded)))
    return result


def product_tree(m, pipe, ways: int, a, b, carry: dict) -> tuple:
    """Stage 1: the exact integer T of ``ways`` products, with the "terms" and "tree"
    register cuts of ``pipe``. ``carry`` (name -> value, "valid" among them) is delayed
    alongside; returns (T, delayed carry)."""
    terms = {}
    for i in range(ways):
        sign, magnitude = product_term(m, a[i], b[i])
        term = Signal(signed(node_width(1)), name=f"term{i}")
        m.d.comb += term.eq(Mux(sign, -magnitude, magnitude))
        terms[f"t{i}"] = term
    regs = pipe.cut_all("terms", {**carry, **terms})
    carry = {k: regs[k] for k in carry}
    nodes = [(regs[f"t{i}"], 1) for i in range(ways)]           # (value, leaves)
    levels = tree_levels(ways)
    middle = (levels + 1) // 2                                  # levels before "tree"

    def tree_cut(nodes, carry):
        regs = pipe.cut_all("tree", {**carry, **{f"n{i}": v for i, (v, _) in enumerate(nodes)}})
        return ([(regs[f"n{i}"], n) for i, (_, n) in enumerate(nodes)],
                {k: regs[k] for k in carry})

    if middle == 0:
        nodes, carry = tree_cut(nodes, carry)
    for level in range(levels):
        pairs = []
        for j in range(0, len(nodes), 2):
            if j + 1 < len(nodes):
                (x, nx), (y, ny) = nodes[j], nodes[j + 1]
                node = Signal(signed(node_width(nx + ny)), name=f"l{level}n{j // 2}")
                m.d.comb += node.eq(x + y)
                pairs.append((node, nx + ny))
            else:
                pairs.append(nodes[j])
        nodes = pairs
        if level + 1 == middle:
            nodes, carry = tree_cut(nodes, carry)
    return nodes[0][0], carry


def shared_scale(m, bias_a, bias_b) -> Signal:
    """The exponent of T's LSB, -4 - bias_a - bias_b (-66..60)."""
    scale = Signal(signed(8), name="scale")
    m.d.comb += scale.eq(-4 - bias_a - bias_b)
    return scale


def chunk_to_fp30(m, pipe, ways: int, a, b, bias_a, bias_b, carry: dict) -> tuple:
    """Stage 1 and the first rounding of stage 2: rne_fp30(T * 2**(-4 - bias_a - bias_b))
    of one chunk, with the "terms", "tree" and "t" cuts of ``pipe``. ``carry`` is delayed
    alongside; returns (t, delayed carry)."""
    total, s = product_tree(m, pipe, ways, a, b,
                            {**carry, "scale": shared_scale(m, bias_a, bias_b)})
    t = fixed_to_fp30(m, total, s.pop("scale"))
    s = pipe.cut_all("t", {**s, "t": t})
    return s.pop("t"), s


# Register positions, in the order they are enabled as ``pipeline`` grows.
PIPELINE_CUTS = {
    0: (),
    1: ("result",),
    2: ("terms", "result"),
    3: ("terms", "t", "result"),
    4: ("terms", "tree", "t", "result"),
}
PIPELINE = Param("pipeline", 3, "register stages (= latency in cycles)", lo=0,
                 hi=len(PIPELINE_CUTS) - 1)


class FmaTree(wiring.Component):
    """acc_out = rne_fp30(acc_in + rne_fp30(T * 2**(-4 - bias_a - bias_b))), T the exact
    sum of ``ways`` fp8seb products.

    Ports, sampled together when ``valid_in`` is high: ``a``, ``b`` (``ways`` fp8seb codes
    each, way i in bits 8i..8i+7), ``bias_a``, ``bias_b`` (signed 6 bits, -32..31),
    ``acc_in`` (``fp30`` code); ``valid_out`` and ``acc_out`` come ``pipeline`` cycles later.
    ``skip`` high passes ``acc_in`` through unchanged (all 30 bits, -0 and NaN codes too)
    whatever ``a`` and ``b``: a bubble in an array, where a chunk of zero codes would not
    do (it turns -0 into +0).

    Parameters: ``ways`` (N >= 1, default 24), ``pipeline`` (register stages 0..4: on the
    result, after the products, after the conversion of T to fp30, in the middle of the
    adder tree, in that order).

    Stage 1 turns each product into an exact integer of up to 36 bits (a 4x4 LUT
    multiplier and a shift by e'(a) + e'(b) - 2 <= 28) and sums them in an adder tree
    whose nodes are exactly as wide as their sums need; the root is ``tree_width(ways)``
    bits, 42 for N = 24, since |T| <= N * 225 * 2^28 < 2^41. Stage 2 rounds T to fp30 and
    adds the accumulator, each to nearest even, saturating at +-2^32 x (2-2^-22); values
    below the smallest fp30 round to it or to 0. A NaN accumulator gives 0x1FFFFFFF.

    Latency: ``pipeline`` cycles; throughput: one N-way dot-product chunk (N MACs) a cycle.
    """

    parameters = (WAYS, PIPELINE)

    def __init__(self, ways: int = WAYS.default, pipeline: int = PIPELINE.default):
        self.ways = WAYS.check(ways, "FmaTree")
        self.pipeline = PIPELINE.check(pipeline, "FmaTree")
        super().__init__({
            "valid_in": In(1),
            "a": In(data.ArrayLayout(8, ways)),
            "b": In(data.ArrayLayout(8, ways)),
            "bias_a": In(BIAS_SHAPE),
            "bias_b": In(BIAS_SHAPE),
            "acc_in": In(FP30.width),
            "skip": In(1),
            "valid_out": Out(1),
            "acc_out": Out(FP30.width),
        })

    @property
    def latency(self) -> int:
        return self.pipeline

    @property
    def tree_width(self) -> int:
        return tree_width(self.ways)

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, PIPELINE_CUTS[self.pipeline])
        t, s = chunk_to_fp30(m, pipe, self.ways, self.a, self.b, self.bias_a, self.bias_b,
                             {"valid": self.valid_in, "acc": self.acc_in, "skip": self.skip})
        acc = data.View(float_layout(FP30), s["acc"])
        acc_nan = (acc.exponent == FP30.exp_all_ones) & (acc.mantissa == FP30.man_all_ones)
        result = Mux(s["skip"], s["acc"],
                     Mux(acc_nan, FP30.canonical_nan, fp30_add(m, s["acc"], t)))
        out = pipe.cut_all("result", {"valid": s["valid"], "acc": result})
        m.d.comb += [self.acc_out.eq(out["acc"]), self.valid_out.eq(out["valid"])]
        return m
