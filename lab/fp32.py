"""The ``fp32`` recipe: the baseline, every GEMM in numpy float32."""

from __future__ import annotations

import numpy as np

from lab.quantized import Quantized
from lab.recipe import Recipe


class Fp32Recipe(Recipe):
    name = "fp32"

    def quantize(self, role, name, x, track=True) -> Quantized:
        return Quantized(np.asarray(x, np.float32))

    def gemm(self, a, b, bias=None) -> np.ndarray:
        c = a.values @ b.values
        return c if bias is None else c + np.asarray(bias, np.float32)
