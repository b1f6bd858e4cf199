"""The ``fp8seb`` recipe: Seoul National University's FP8 with a shared exponent bias
(Park, Lee and Jeon, ISSCC 2021: an 8-bit floating-point training processor with a shared
exponent bias and a 24-way fused multiply-add tree).

- One format, ``fp8seb`` (1-4-3, no NaN, no infinity), for weights, activations and
  errors; each tensor has its own shared bias (-32..31). The bias follows the tensor as
  training goes: after a tensor is quantized, ``golden.next_bias`` (the hardware's rule,
  docs/numerics.md ``quant30``) moves its bias by at most one so that the tensor's largest
  value sits ``room`` binades below the format's top; the next step's tensor of the same
  name is quantized with the new bias. The tracker reads the values as ``fp30`` (as the
  hardware's quantizer sees a GEMM's output), ``golden.max_exponent``.
- A tensor's first bias: ``initial_bias``, or by default the rule's fixed point for the
  tensor's first value (the bias at which ``next_bias`` would not move). The lab states
  this choice; the paper's start-up is not modelled.
- Every GEMM is ``golden.seb_matmul``: ``ways``-way exact product trees (24 in the chip)
  accumulated in ``fp30``; a layer's bias row is the initial C.
- No loss scaling: the errors' shared bias follows their range.
- Master weights, update and the non-GEMM operations in FP32, as for ``hfp8``.
"""

from __future__ import annotations

import numpy as np

import golden
from lab.errors import LabError
from lab.recipe import Recipe, broadcast_bias

DEFAULT_WAYS = 24
DEFAULT_ROOM = 1
BIAS_LO, BIAS_HI = golden.FP8SEB.bias_range
TOP_EXPONENT = golden.FP8SEB.exp_all_ones       # the largest binade is 15 - bias


def settled_bias(max_exp: int | None, room: int) -> int:
    """The bias at which ``next_bias`` leaves a tensor with largest exponent ``max_exp``
    where it is (0 for a tensor of zeros)."""
    if max_exp is None:
        return 0
    return int(min(BIAS_HI, max(BIAS_LO, TOP_EXPONENT - room - max_exp)))


def largest_exponent(x) -> int | None:
    """The tracker's reading of ``x``: floor(log2|x|) of its largest value as fp30."""
    return golden.max_exponent(golden.encode(np.asarray(x, np.float64), golden.FP30))


class SebRecipe(Recipe):
    name = "fp8seb"

    def __init__(self, ways: int = DEFAULT_WAYS, room: int = DEFAULT_ROOM,
                 initial_bias: int | None = None):
        super().__init__()
        if initial_bias is not None and not BIAS_LO <= initial_bias <= BIAS_HI:
            raise LabError(f"initial_bias must be in {BIAS_LO}..{BIAS_HI}, got {initial_bias}")
        self.ways, self.room, self.initial_bias = int(ways), int(room), initial_bias
        self.bias: dict[str, int] = {}              # each tensor's bias for its next use
        self.history: dict[str, list[int]] = {}     # the bias of each training use
        self.largest: dict[str, list[int | None]] = {}  # and the tensor's max exponent

    def describe(self) -> dict:
        return {**super().describe(), "ways": self.ways, "room": self.room,
                "initial_bias": self.initial_bias}

    def quantize(self, role, name, x, track=True):
        bias = self.bias.get(name)
        if bias is None:
            bias = settled_bias(largest_exponent(x), self.room) \
                if self.initial_bias is None else self.initial_bias
        q = self._encode(role, x, golden.FP8SEB, bias, track)
        if track:
            largest = largest_exponent(x)
            self.history.setdefault(name, []).append(bias)
            self.largest.setdefault(name, []).append(largest)
            self.bias[name] = golden.next_bias(bias, largest, self.room)
        return q

    def gemm(self, a, b, bias=None):
        c = broadcast_bias(bias, a.codes.shape[0])
        if c is not None:
            c = golden.encode(c, golden.FP30, rounding="rne", overflow="sat")
        result = golden.seb_matmul(a.codes, b.codes, c, bias_a=a.bias, bias_b=b.bias,
                                   ways=self.ways)
        return golden.decode(result.C, golden.FP30)
