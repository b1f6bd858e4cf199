"""Dot-product engine: K-long FP8-SEB dot products through the N-way FMA tree, an FP30
accumulator register, and the quantizer with shared-bias tracking."""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.params import Param
from golden.fmatree import tree_width
from golden.formats import FP30
from golden.params import ROOM, WAYS
from hw.arith import Pipeline
from hw.units.fma_tree import BIAS_SHAPE, chunk_to_fp30, fp30_add
from hw.units.quant30 import EXP_SHAPE, Quant30

# Register positions before the accumulator, in the order they are enabled.
PIPELINE_CUTS = {
    0: (),
    1: ("terms",),
    2: ("terms", "t"),
    3: ("terms", "tree", "t"),
}
PIPELINE = Param("pipeline", 3, "register stages before the accumulator", lo=0,
                 hi=len(PIPELINE_CUTS) - 1)


class DotEngine(wiring.Component):
    """Runs K-long dot products N (``ways``) products a cycle and quantizes each result.

    Input, one chunk a cycle when ``valid_in`` is high: ``a``, ``b`` (``ways`` fp8seb codes
    each, way i in bits 8i..8i+7; pad the last chunk of a dot product with zeros),
    ``first`` (this chunk starts a dot product: the FP30 accumulator restarts from +0),
    ``last`` (it ends one), ``bias_a``, ``bias_b`` (the operands' shared biases, held for the
    whole dot product), ``out_bias`` (the output's shared bias, sampled with the last chunk).
    ``clear`` restarts the exponent tracker (for a new output tensor).

    Output, one cycle after the last chunk has left the pipeline: ``valid_out``, ``acc_out``
    (the ``fp30`` dot product, exactly the golden ``dot``), ``y`` (it quantized to
    ``fp8seb`` with ``out_bias``). Tracker: ``max_exp`` and ``seen`` over all results since
    ``clear``, and ``next_bias``, the bias rule (docs/numerics.md, ``quant30``) applied
    to ``out_bias``.

    Parameters: ``ways`` (N >= 1, default 24), ``pipeline`` (register stages before the
    accumulator, 0..3: after the products, after T is rounded to fp30, in the middle of the
    adder tree), ``room`` (the bias rule's headroom, default 1).

    Latency: ``pipeline`` + 1 cycles from the last chunk to the result. Throughput: N MACs
    a cycle, a dot product of length K every ceil(K / N) cycles, back to back. Each chunk's
    sum is rounded to fp30 and added to the accumulator with a second rounding (both to
    nearest even, saturating), in ascending k; the accumulate is a single-cycle loop.
    """

    parameters = (WAYS, PIPELINE, ROOM)

    def __init__(self, ways: int = WAYS.default, pipeline: int = PIPELINE.default,
                 room: int = ROOM.default):
        self.ways = WAYS.check(ways, "DotEngine")
        self.pipeline = PIPELINE.check(pipeline, "DotEngine")
        self.quantizer = Quant30(room=room)
        super().__init__({
            "valid_in": In(1),
            "first": In(1),
            "last": In(1),
            "a": In(data.ArrayLayout(8, ways)),
            "b": In(data.ArrayLayout(8, ways)),
            "bias_a": In(BIAS_SHAPE),
            "bias_b": In(BIAS_SHAPE),
            "out_bias": In(BIAS_SHAPE),
            "clear": In(1),
            "valid_out": Out(1),
            "acc_out": Out(FP30.width),
            "y": Out(8),
            "max_exp": Out(EXP_SHAPE),
            "seen": Out(1),
            "next_bias": Out(BIAS_SHAPE),
        })

    @property
    def latency(self) -> int:
        return self.pipeline + 1

    @property
    def tree_width(self) -> int:
        return tree_width(self.ways)

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, PIPELINE_CUTS[self.pipeline])
        t, s = chunk_to_fp30(m, pipe, self.ways, self.a, self.b, self.bias_a, self.bias_b, {
            "valid": self.valid_in, "first": self.first, "last": self.last,
            "out_bias": self.out_bias})

        acc = Signal(FP30.width)
        acc_next = Signal(FP30.width)
        m.d.comb += acc_next.eq(fp30_add(m, Mux(s["first"], 0, acc), t))
        with m.If(s["valid"]):
            m.d.sync += acc.eq(acc_next)

        m.submodules.quantizer = q = self.quantizer
        done = s["valid"] & s["last"]
        m.d.comb += [q.x.eq(acc_next), q.bias.eq(s["out_bias"]), q.valid.eq(done),
                     q.clear.eq(self.clear)]
        m.d.sync += self.valid_out.eq(done)
        with m.If(done):
            m.d.sync += [self.acc_out.eq(acc_next), self.y.eq(q.y)]
        m.d.comb += [self.max_exp.eq(q.max_exp), self.seen.eq(q.seen),
                     self.next_bias.eq(q.next_bias)]
        return m
