"""The ``hfp8`` recipe: IBM's hybrid FP8 as the RaPiD chip runs it (Sun et al., NeurIPS
2019; the chip: Agrawal et al., ISSCC 2021, Venkataramani et al., ISCA 2021).

- Weights and activations are ``e4m3`` with the shifted exponent bias 11 (the paper's
  1-4-3 with its bias moved by 4 from the IEEE 7), errors (the gradients a GEMM takes in
  the backward pass) ``e5m2`` (1-5-2, bias 15); both rounded to nearest even, saturating.
- Every GEMM is ``golden.matmul`` in ``fp8`` mode: the MPE's fused multiply-add in
  DLFloat16, one rounding a product, optionally with chunk-based accumulation (Wang et al.,
  NeurIPS 2018: chunks of ``chunk`` products summed apart, then added up); a layer's bias
  row is the GEMM's initial C, so it is in the DLFloat16 sum, as on the board.
- Loss scaling: the errors are multiplied by ``loss_scale`` (static) before they are
  quantized to ``e5m2``, and the gradients divided by it in FP32 (the trainer does both):
  without it most output-layer errors of a 64-image batch fall below e5m2's smallest
  value, 2^-16 (``lab.recipe.QuantStats`` counts them).
- The master weights, the SGD-with-momentum update and everything that is not a GEMM
  (bias add of the logits' gradient, softmax, ReLU) stay in FP32; see docs/lab.md for
  what the papers do and why the lab does this.
"""

from __future__ import annotations

import golden
from lab.recipe import Recipe, broadcast_bias

E4M3_BIAS = 11                # RaPiD's shifted bias (the MPE's generator parameter)
DEFAULT_CHUNK = 64            # Wang et al.'s chunk length
DEFAULT_LOSS_SCALE = 1024.0


class Hfp8Recipe(Recipe):
    name = "hfp8"

    def __init__(self, chunk: int = DEFAULT_CHUNK, loss_scale: float = DEFAULT_LOSS_SCALE):
        super().__init__()
        self.chunk, self.loss_scale = int(chunk), float(loss_scale)

    def describe(self) -> dict:
        return {**super().describe(), "e4m3_bias": E4M3_BIAS, "chunk": self.chunk}

    def quantize(self, role, name, x, track=True):
        if role == "error":
            return self._encode(role, x, "e5m2", None, track)
        return self._encode(role, x, "e4m3", E4M3_BIAS, track)

    def gemm(self, a, b, bias=None):
        c = broadcast_bias(bias, a.codes.shape[0])
        if c is not None:
            c = golden.encode(c, golden.DLFLOAT16, rounding="rne", overflow="sat")
        sums = golden.matmul(a.codes, b.codes, c, mode="fp8", fmt_a=a.fmt, fmt_b=b.fmt,
                             bias=E4M3_BIAS, chunk=self.chunk)
        return golden.decode(sums & 0xFFFF, golden.DLFLOAT16)
