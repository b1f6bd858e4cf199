"""Processing elements of the weight-stationary array: the MPE (HFP8: one code of A and of
B a PE, ``dlfloat16`` or integer sums) and the FP8-SEB FMA tree (``ways`` codes of A and of
B a PE, ``fp30`` sums). The array generator (``hw.array.weight_stationary``) is the same
for both; an element says what a PE holds and takes, and builds one PE.

A PE computes ``sum_out = f(sum_in, a, b, settings)`` ``latency`` cycles after its inputs,
or, on a bubble (``mac`` low), passes ``sum_in`` through unchanged, every bit of it, so
that bubbles and inactive PE rows may fall anywhere.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data

from fp8hw.enums import Mode, SourceFormat
from golden.formats import FP30
from golden.params import BIAS, WAYS
from hw.array.common import MacCell
from hw.units import fma_tree
from hw.units.mpe import MULTIPLIER as MPE_MULTIPLIER
from hw.units.mpe import PIPELINE as MPE_PIPELINE


class MpeElement:
    """The MPE (``hw.units.mpe``): one 8-bit code of A and of B, 32-bit sums, run-time
    ``mode``, ``fmt_a`` and ``fmt_b``."""

    parameters = (BIAS, MPE_PIPELINE, MPE_MULTIPLIER)
    sum_width = 32
    codes = 1                      # codes of A (and of B) a PE takes a cycle
    code_shape = 8                 # their shape in a stream's payload: one byte

    def __init__(self, bias: int = BIAS.default, pipeline: int = MPE_PIPELINE.default,
                 owner: str = "MpeElement", multiplier: str = MPE_MULTIPLIER.default):
        self.bias = BIAS.check(bias, owner)
        self.pipeline = MPE_PIPELINE.check(pipeline, owner)
        self.multiplier = MPE_MULTIPLIER.check(multiplier, owner)
        self.latency = max(self.pipeline, 1)
        self.settings = data.StructLayout({"mode": Mode, "fmt_a": SourceFormat,
                                           "fmt_b": SourceFormat})

    def build(self, m: Module, name: str, settings, a, b, sum_in, tag, mac) -> tuple:
        """One PE in ``m``: returns (sum out, tag out), ``latency`` cycles after the inputs.
        A bubble adds 0 x 0 in INT2 mode, which returns ``sum_in`` unchanged."""
        cell = MacCell(m, name, self.bias, self.pipeline, settings.mode, settings.fmt_a,
                       settings.fmt_b, multiplier=self.multiplier)
        m.d.comb += [cell.a.eq(a), cell.b.eq(Mux(mac, b, 0)), cell.mac.eq(mac),
                     cell.tag.eq(tag), cell.acc_in.eq(sum_in)]
        return cell.acc_out, cell.tag_out


class TreeElement:
    """The FP8-SEB FMA tree (``hw.units.fma_tree``): a chunk of ``ways`` consecutive codes
    of A and of B, ``fp30`` sums, run-time shared biases ``bias_a`` and ``bias_b``."""

    parameters = (WAYS, fma_tree.PIPELINE)
    sum_width = FP30.width

    def __init__(self, ways: int = WAYS.default, pipeline: int = fma_tree.PIPELINE.default,
                 owner: str = "TreeElement"):
        self.ways = WAYS.check(ways, owner)
        self.pipeline = fma_tree.PIPELINE.check(pipeline, owner)
        self.codes = self.ways
        self.code_shape = data.ArrayLayout(8, self.ways)
        # The tree's pipeline is its register stages, its latency (``FmaTree.latency``).
        self.latency = max(self.pipeline, 1)
        self.settings = data.StructLayout({"bias_a": fma_tree.BIAS_SHAPE,
                                           "bias_b": fma_tree.BIAS_SHAPE})

    def build(self, m: Module, name: str, settings, a, b, sum_in, tag, mac) -> tuple:
        """One PE in ``m``: returns (sum out, tag out). A bubble sets the tree's ``skip``.
        A combinational tree (latency 0) gets a register after it."""
        tree = fma_tree.FmaTree(self.ways, self.pipeline)
        m.submodules[name] = tree
        m.d.comb += [tree.a.eq(a), tree.b.eq(b), tree.bias_a.eq(settings.bias_a),
                     tree.bias_b.eq(settings.bias_b), tree.acc_in.eq(sum_in),
                     tree.skip.eq(~mac), tree.valid_in.eq(tag)]
        if tree.latency:
            return tree.acc_out, tree.valid_out
        acc = Signal(FP30.width, name=f"{name}_acc")
        valid = Signal(name=f"{name}_tag")
        m.d.sync += [acc.eq(tree.acc_out), valid.eq(tree.valid_out)]
        return acc, valid
