"""FP8-SEB N-way FMA tree with an FP30 accumulator (docs/numerics.md, ``fmatree``)."""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.params import Param
from golden.fmatree import tree_width
from golden.formats import FP8SEB, FP30
from golden.params import WAYS
from hw.arith import Pipeline, add_carry, add_short, leading_zeros, mul_short, normalize
from hw.dl_round import round_to_dl
from hw.layouts import float_layout

BIAS_SHAPE = signed(6)                    # fp8seb shared bias, -32..31
MAX_SHIFT = 2 * FP8SEB.exp_all_ones - 2   # e'(a) + e'(b) - 2 <= 28
PRODUCT_BITS = 8 + MAX_SHIFT              # |S(a) S(b)| <= 225 < 2**8
OPERAND_BITS = 4 + MAX_SHIFT // 2         # S << (e' - 1) <= 15 * 2**14: a DSP operand

MULTIPLIER = Param("multiplier", "lut", "products from LUTs, or one 18x18 DSP block a way",
                   choices=("lut", "dsp"))


def decode(code) -> tuple:
    """(sign, significand S, e' - 1) of an fp8seb code."""
    f = data.View(float_layout(FP8SEB), code)
    normal = f.exponent != 0
    return f.sign, Cat(f.mantissa, normal), Mux(normal, f.exponent - 1, 0)[:FP8SEB.exp_bits]


def product_terms(m, pipe, ways: int, a, b, multiplier: str, carry: dict) -> tuple:
    """Each way's product S(a) S(b) 2**(e'(a) + e'(b) - 2) as a signed term, a negative
    one as its ones' complement (the magnitude inverted): the missing +1 is the way's
    sign, which the adder tree takes as a carry in. Returns ([(term, sign)], delayed
    carry).

    ``lut``: the 4x4 multiply and the exponent sum, both without carry chains
    (``add_short``), the "products" cut, the shift by up to 28 with the inversion, the
    "terms" cut. ``dsp``: the operands S << (e' - 1), 18 bits each, the "products" cut,
    one 18x18 multiply giving the 36-bit magnitude, the "terms" cut, the inversion (a
    DSP block's product goes straight into the register: the block and its routing take
    most of a cycle)."""
    parts = {}
    for i in range(ways):
        sa, Sa, ka = decode(a[i])
        sb, Sb, kb = decode(b[i])
        if multiplier == "lut":
            parts[f"x{i}"] = mul_short(m, Sa, Sb, name=f"p{i}")
            parts[f"y{i}"] = add_short(m, ka, kb, name=f"shift{i}")
        else:
            x = Signal(OPERAND_BITS, name=f"x{i}")
            y = Signal(OPERAND_BITS, name=f"y{i}")
            m.d.comb += [x.eq(Sa << ka), y.eq(Sb << kb)]
            parts[f"x{i}"], parts[f"y{i}"] = x, y
        sign = Signal(name=f"neg{i}")
        m.d.comb += sign.eq(sa ^ sb)
        parts[f"s{i}"] = sign
    regs = pipe.cut_all("products", {**carry, **parts})

    def inverted(magnitude, sign, i):
        term = Signal(signed(PRODUCT_BITS + 1), name=f"term{i}")
        m.d.comb += term.eq(Cat(magnitude, 0) ^ sign.replicate(PRODUCT_BITS + 1))
        return term

    terms = {}
    for i in range(ways):
        x, y, sign = regs[f"x{i}"], regs[f"y{i}"], regs[f"s{i}"]
        magnitude = Signal(PRODUCT_BITS, name=f"mag{i}")
        m.d.comb += magnitude.eq(x << y if multiplier == "lut" else x * y)
        terms[f"t{i}"] = inverted(magnitude, sign, i) if multiplier == "lut" else magnitude
        terms[f"s{i}"] = sign
    regs = pipe.cut_all("terms", {**{k: regs[k] for k in carry}, **terms})
    leaves = []
    for i in range(ways):
        term, sign = regs[f"t{i}"], regs[f"s{i}"]
        leaves.append((term if multiplier == "lut" else inverted(term, sign, i), sign))
    return leaves, {k: regs[k] for k in carry}


def tree_levels(ways: int) -> int:
    return max(0, (ways - 1).bit_length())


def node_width(leaves: int) -> int:
    """Signed width that holds the sum of ``leaves`` products."""
    return tree_width(leaves)


MAX_TREE_CUT = tree_levels(WAYS.hi)


def tree_cuts(level: int, levels: int) -> list:
    """Names of the cuts after adder level ``level`` (0: before the first) of a tree of
    ``levels`` levels: "treeK" after level K (at the root when the tree has fewer), and
    "tree" after the middle level."""
    names = [f"tree{level}"] if level else []
    if level == levels:
        names += [f"tree{k}" for k in range(levels + 1, MAX_TREE_CUT + 1)]
    if level == (levels + 1) // 2:
        names.append("tree")
    return names


def adder_tree(m, pipe, leaves: list, carry: dict) -> tuple:
    """The exact sum of ``leaves`` ((ones' complement term, its sign) pairs), in a tree of
    adders each exactly as wide as its sum needs, with the "tree" cuts of ``pipe``.

    Each adder takes one pending sign as its carry in: a subtree of n leaves has n - 1
    adders and n signs, so one sign is left over at the root. Returns (total, that sign,
    delayed carry): the sum is total + sign."""
    nodes = [(t, 1, s) for t, s in leaves]                  # (value, leaves, pending sign)
    levels = tree_levels(len(nodes))

    def cut(level, nodes, carry):
        for name in tree_cuts(level, levels):
            values = {f"v{i}": v for i, (v, _, _) in enumerate(nodes)}
            values.update({f"s{i}": s for i, (_, _, s) in enumerate(nodes)})
            regs = pipe.cut_all(name, {**carry, **values})
            nodes = [(regs[f"v{i}"], n, regs[f"s{i}"]) for i, (_, n, _) in enumerate(nodes)]
            carry = {k: regs[k] for k in carry}
        return nodes, carry

    nodes, carry = cut(0, nodes, carry)
    for level in range(1, levels + 1):
        pairs = []
        for j in range(0, len(nodes), 2):
            if j + 1 < len(nodes):
                (x, nx, sx), (y, ny, sy) = nodes[j], nodes[j + 1]
                node = Signal(signed(node_width(nx + ny)), name=f"l{level}n{j // 2}")
                m.d.comb += node.eq(add_carry(x, y, sx))
                pairs.append((node, nx + ny, sy))
            else:
                pairs.append(nodes[j])
        nodes, carry = cut(level, pairs, carry)
    (total, _, sign), = nodes
    return total, sign, carry


def shared_scale(m, bias_a, bias_b) -> Signal:
    """The exponent of T's LSB, -4 - bias_a - bias_b (-66..60)."""
    scale = Signal(signed(8), name="scale")
    m.d.comb += scale.eq(-4 - bias_a - bias_b)
    return scale


ROUND_BITS = FP30.man_bits + 3          # the significand, guard, sticky: round_to_dl's input


def fixed_to_fp30(m, pipe, total, carry_in, scale_exp, carry: dict, name="t") -> tuple:
    """rne_fp30((total + carry_in) * 2**scale_exp), saturating; ``total`` is a signed
    integer and ``carry_in`` one bit. Cuts: "abs" after the ones' complement of the
    magnitude, "lz" after its leading-zero count (and the magnitude), "shift" after the
    normalization. Returns (code, delayed carry)."""
    # |total + c| = z + d: z = total, d = c, or when total is negative z = ~total,
    # d = 1 - c (total = -1 with c = 1 gives 0 either way).
    negative = total[-1]
    ones = Signal(len(total) - 1, name=f"{name}_ones")
    m.d.comb += ones.eq((total ^ negative.replicate(len(total)))[:-1])
    s = pipe.cut_all("abs", {**carry, "z": ones, "d": carry_in ^ negative, "neg": negative,
                             "scale": scale_exp})
    # The leading zeros of z, beside the adder of z + d rather than after it: z + d has
    # one fewer exactly when the +1 carries out of z's ones (z = 2**k - 1), and it is
    # then the power of two 2**k.
    z, d = s.pop("z"), s.pop("d")
    magnitude = Signal(len(z), name=f"{name}_mag")
    carried = Signal(name=f"{name}_carried")
    m.d.comb += [magnitude.eq(z + d), carried.eq(d & ~(magnitude & z).any())]
    s = pipe.cut_all("lz", {**s, "mag": magnitude, "carried": carried,
                            "lz": leading_zeros(m, z, name=f"{name}_lz")})
    magnitude, lz, carried = s.pop("mag"), s.pop("lz"), s.pop("carried")
    # The MSB is bit len-1-lz of the magnitude, worth 2**(len - 1 - lz + scale_exp): its
    # biased exponent, beside the shift (not in series with the rounding).
    exponent = Signal(signed(9), name=f"{name}_exp")
    m.d.comb += exponent.eq(add_carry(s.pop("scale"), (len(magnitude) - 1 + FP30.bias) - lz,
                                      carried))
    normalized = Signal(ROUND_BITS, name=f"{name}_normalized")
    m.d.comb += normalized.eq(Mux(carried, 1 << (ROUND_BITS - 1),
                                  normalize(m, magnitude, lz, ROUND_BITS, name=f"{name}_norm")))
    s = pipe.cut_all("shift", {**s, "exp": exponent, "norm": normalized})
    code = round_to_dl(m, FP30, s["norm"], s["exp"], Const(0, 1), s["neg"], rounding="rne",
                       overflow="sat", name=name)
    return code, {k: s[k] for k in carry}


ADD_WINDOW = FP30.man_bits + 1 + 3      # 24-bit significand, guard, round, sticky


def fp30_sum(m, pipe, x, y, carry: dict, nan=None, name="sum") -> tuple:
    """rne_fp30(x + y), saturating, for two non-NaN ``fp30`` codes (``dl``: no subnormals),
    with the cuts "swap" (after the compare), "align", "sum", "count" (after the
    leading-zero count) and "normalize" of ``pipe``. ``nan`` (optional, a bit sampled with
    x and y) gives the NaN code instead. Returns (code, delayed carry).

    Both significands are normalized, so a window of the significand plus guard, round
    and sticky bits is exact: an addend shifted by two or more loses bits only into the
    sticky bit and cancels at most one leading bit; one shifted by 0 or 1 loses nothing.
    A zero addend has the significand 0: the sum is then the other addend, exactly (0 for
    two zeros).
    """
    W = ADD_WINDOW
    keys = list(carry)
    if nan is not None:
        carry = {**carry, "nan": nan}
    fx = data.View(float_layout(FP30), x)
    fy = data.View(float_layout(FP30), y)
    x_sig = Cat(fx.mantissa, (fx.exponent != 0) | (fx.mantissa != 0))
    y_sig = Cat(fy.mantissa, (fy.exponent != 0) | (fy.mantissa != 0))
    x_big = Signal(name=f"{name}_xbig")
    m.d.comb += x_big.eq(Cat(fx.mantissa, fx.exponent) >= Cat(fy.mantissa, fy.exponent))
    # Both differences, clamped to the window, beside the compare, not after it.
    x_minus_y, y_minus_x = fx.exponent - fy.exponent, fy.exponent - fx.exponent
    shift = Signal(range(W + 1), name=f"{name}_shift")
    m.d.comb += shift.eq(Mux(x_big, Mux(x_minus_y > W, W, x_minus_y),
                             Mux(y_minus_x > W, W, y_minus_x)))
    s = pipe.cut_all("swap", {
        **carry, "shift": shift,
        "big_exp": Mux(x_big, fx.exponent, fy.exponent),
        "big_sig": Mux(x_big, x_sig, y_sig), "small_sig": Mux(x_big, y_sig, x_sig),
        "big_sign": Mux(x_big, fx.sign, fy.sign), "subtract": fx.sign ^ fy.sign})

    # The smaller significand in a window of 26 exact bits (it and two below) and a
    # sticky bit, the OR of its bits shifted below the window; inverted to subtract.
    small_sig, shift, subtract = s.pop("small_sig"), s.pop("shift"), s["subtract"]
    lost = Cat(*(small_sig[i] & (shift > i + 2) for i in range(len(small_sig))))
    small = Signal(W + 1, name=f"{name}_small")
    m.d.comb += small.eq(Cat(lost.any(), Cat(Const(0, 2), small_sig) >> shift, 0)
                         ^ subtract.replicate(W + 1))
    s = pipe.cut_all("align", {**s, "small": small})

    # big - small as big + ~small + 1: one adder.
    total = Signal(W + 1, name=f"{name}_total")
    m.d.comb += total.eq(add_carry(Cat(Const(0, W - 24), s.pop("big_sig")), s.pop("small"),
                                   s.pop("subtract")))
    s = pipe.cut_all("sum", {**s, "total": total})
    s = pipe.cut_all("count", {**s, "lz": leading_zeros(m, s["total"], name=f"{name}_lz")})
    total, lz = s.pop("total"), s.pop("lz")
    # The big significand's MSB sits at bit W-1 of total, worth 2**(big_exp - bias).
    exponent = Signal(signed(8), name=f"{name}_exp")
    m.d.comb += exponent.eq(s.pop("big_exp") + 1 - lz)
    s = pipe.cut_all("normalize", {**s, "exp": exponent, "norm": normalize(
        m, total, lz, ROUND_BITS, name=f"{name}_norm")})
    rounded = round_to_dl(m, FP30, s["norm"], s["exp"], Const(0, 1), s["big_sign"],
                          nan=s.get("nan"), rounding="rne", overflow="sat", name=name)
    return rounded, {k: s[k] for k in keys}


def fp30_add(m, x, y, name="sum") -> Signal:
    """rne_fp30(x + y) of two non-NaN ``fp30`` codes, combinational (``fp30_sum``)."""
    result, _ = fp30_sum(m, Pipeline(m, ()), x, y, {}, name=name)
    return result


def chunk_to_fp30(m, pipe, ways: int, a, b, bias_a, bias_b, carry: dict,
                  multiplier: str = MULTIPLIER.default) -> tuple:
    """Stage 1 and the first rounding of stage 2: rne_fp30(T * 2**(-4 - bias_a - bias_b))
    of one chunk, with the "products", "terms", "tree..", "abs", "lz", "shift" and "t"
    cuts of ``pipe``. ``carry`` is delayed alongside; returns (t, delayed carry)."""
    carry = {**carry, "scale": shared_scale(m, bias_a, bias_b)}
    leaves, carry = product_terms(m, pipe, ways, a, b, multiplier, carry)
    total, sign, carry = adder_tree(m, pipe, leaves, carry)
    scale = carry.pop("scale")
    t, s = fixed_to_fp30(m, pipe, total, sign, scale, carry)
    s = pipe.cut_all("t", {**s, "t": t})
    return s.pop("t"), s


# Register positions, in the order they are enabled as ``pipeline`` grows. In the order
# of the data: "products" (after the 4x4 multiplies), "terms" (after the shifts),
# "tree2", "tree" and "tree4" (after adder levels 2, (levels + 1) // 2 and 4), "abs",
# "lz", "shift" and "t" (T to fp30: ones' complement, leading zeros, normalization,
# rounding), "swap", "align", "sum", "count", "normalize" (the fp30 add: compare,
# alignment, add, leading zeros, normalization) and "result" (after its rounding).
# Depths 0..4 keep the registers they had before the deeper pipelines came.
PIPELINE_CUTS = {
    0: (),
    1: ("result",),
    2: ("terms", "result"),
    3: ("terms", "t", "result"),
    4: ("terms", "tree", "t", "result"),
    5: ("terms", "tree", "t", "sum", "result"),
    6: ("terms", "tree", "lz", "t", "sum", "result"),
    7: ("terms", "tree2", "tree4", "lz", "t", "sum", "result"),
    8: ("products", "terms", "tree2", "tree4", "lz", "t", "sum", "result"),
    9: ("products", "terms", "tree2", "tree4", "lz", "t", "sum", "normalize", "result"),
    10: ("products", "terms", "tree2", "tree4", "lz", "t", "swap", "sum", "normalize",
         "result"),
    11: ("products", "terms", "tree2", "tree4", "abs", "lz", "t", "swap", "sum", "normalize",
         "result"),
    12: ("products", "terms", "tree2", "tree4", "abs", "lz", "shift", "t", "swap", "sum",
         "normalize", "result"),
    13: ("products", "terms", "tree2", "tree4", "abs", "lz", "shift", "t", "swap", "align",
         "sum", "normalize", "result"),
    14: ("products", "terms", "tree2", "tree4", "abs", "lz", "shift", "t", "swap", "align",
         "sum", "count", "normalize", "result"),
}
# Where a cut would be a plain delay, the spare it moves to (the first not in use): in a
# tree of few levels, "tree", "tree2" and "tree4" fall right after "terms" or one another.
SPARE_CUTS = ("swap", "align", "count", "normalize", "abs", "shift", "products")


def enabled_cuts(pipeline: int, ways: int) -> tuple:
    """``PIPELINE_CUTS[pipeline]`` for a tree of ``ways``, each cut with no logic before it
    moved to a spare cut point (kept where none is left: the latency is ``pipeline``)."""
    levels = tree_levels(ways)

    def level_of(name):
        if name == "terms":
            return 0
        if name == "tree":
            return (levels + 1) // 2
        if name.startswith("tree"):
            return min(int(name[4:]), levels)
        return None

    cuts = PIPELINE_CUTS[pipeline]
    spares = [c for c in SPARE_CUTS if c not in cuts]
    taken, enabled = set(), []
    for name in cuts:
        level = level_of(name)
        if level is not None and level in taken and spares:
            name = spares.pop(0)
        taken.add(level)
        enabled.append(name)
    return tuple(enabled)


PIPELINE = Param("pipeline", 12, "register stages (= latency in cycles)", lo=0,
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

    Parameters: ``ways`` (N >= 1, default 24), ``pipeline`` (register stages 0..14,
    default 12: ``PIPELINE_CUTS`` lists where they go at each depth), ``multiplier``
    (``lut``, the default, or ``dsp``: one 18x18 DSP block a way).

    Stage 1 turns each product into an exact integer of up to 36 bits (``lut``: a 4x4
    multiply and the exponent sum without carry chains, a register, then a shift by
    e'(a) + e'(b) - 2 <= 28; ``dsp``: (S(a) << e'(a) - 1) x (S(b) << e'(b) - 1)), a
    negative one as its ones' complement, and sums them in an adder tree whose nodes are
    exactly as wide as their sums need; each adder takes one way's sign as its carry in
    (the ones' complement's missing +1), the last sign is added with the magnitude. The
    root is ``tree_width(ways)`` bits, 42 for N = 24, since |T| <= N * 225 * 2^28 < 2^41.
    Stage 2 rounds T to fp30 and adds the accumulator, each to nearest even, saturating at
    +-2^32 x (2-2^-22); values below the smallest fp30 round to it or to 0. A NaN
    accumulator gives 0x1FFFFFFF.

    At the default depth the 12 stages are: the 4x4 multiplies; the shifts; adder levels
    1-2; levels 3-4; level 5 and the ones' complement of the magnitude; its leading zeros
    beside the +1; the normalization; the rounding of T; the fp30 add's compare; its
    alignment and add; its leading zeros and normalization; its rounding. The other
    inputs, ``acc_in`` too, enter the first register, and ``acc_out`` leaves a register.

    Latency: ``pipeline`` cycles; throughput: one N-way dot-product chunk (N MACs) a cycle.
    """

    parameters = (WAYS, PIPELINE, MULTIPLIER)

    def __init__(self, ways: int = WAYS.default, pipeline: int = PIPELINE.default,
                 multiplier: str = MULTIPLIER.default):
        self.ways = WAYS.check(ways, "FmaTree")
        self.pipeline = PIPELINE.check(pipeline, "FmaTree")
        self.multiplier = MULTIPLIER.check(multiplier, "FmaTree")
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
        pipe = Pipeline(m, enabled_cuts(self.pipeline, self.ways))
        t, s = chunk_to_fp30(m, pipe, self.ways, self.a, self.b, self.bias_a, self.bias_b,
                             {"valid": self.valid_in, "acc": self.acc_in, "skip": self.skip},
                             self.multiplier)
        # skip passes the accumulator unchanged; a NaN accumulator gives the NaN code.
        acc = data.View(float_layout(FP30), s["acc"])
        acc_nan = (acc.exponent == FP30.exp_all_ones) & (acc.mantissa == FP30.man_all_ones)
        total, s = fp30_sum(m, pipe, s["acc"], t, {
            "valid": s["valid"], "acc": s["acc"], "skip": s["skip"]}, nan=acc_nan)
        result = Mux(s["skip"], s["acc"], total)
        out = pipe.cut_all("result", {"valid": s["valid"], "acc": result})
        m.d.comb += [self.acc_out.eq(out["acc"]), self.valid_out.eq(out["valid"])]
        return m
