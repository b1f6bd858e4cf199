"""A tensor as a GEMM of the lab takes it: its exact values and, in an FP8 recipe, the
codes that hold them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Quantized:
    """``values`` (float) are exactly what ``codes`` (uint8 codes of ``fmt`` at ``bias``)
    hold; the fp32 recipe has values only."""
    values: np.ndarray
    codes: np.ndarray | None = None
    fmt: str | None = None
    bias: int | None = None

    @property
    def T(self) -> "Quantized":
        """The transpose: the same codes, as the other operand of a GEMM."""
        return replace(self, values=self.values.T,
                       codes=None if self.codes is None else self.codes.T)
