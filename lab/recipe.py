"""What a training recipe is to the lab's trainer: how each tensor is quantized before a
GEMM and how the GEMM is computed. ``fp32``, ``hfp8`` and ``fp8seb`` (``lab.recipes``)
are the three; the MLP (``lab.mlp``) calls nothing else, so every GEMM of training, forward,
backward data and weight gradient, goes through a recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import golden
from lab.quantized import Quantized

ROLES = ("activation", "weight", "error")


@dataclass
class QuantStats:
    """Per tensor role, over training: nonzero values quantized, how many became zero
    (underflow: the reason for loss scaling) and how many were above the largest finite
    value (saturated)."""
    nonzero: dict = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    flushed: dict = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    saturated: dict = field(default_factory=lambda: dict.fromkeys(ROLES, 0))

    def count(self, role: str, x: np.ndarray, values: np.ndarray, largest: float) -> None:
        nonzero = x != 0
        self.nonzero[role] += int(nonzero.sum())
        self.flushed[role] += int((nonzero & (values == 0)).sum())
        self.saturated[role] += int((np.abs(x) > largest).sum())

    def fractions(self) -> dict:
        """{role: {"flushed": f, "saturated": f}}, fractions of the nonzero values."""
        return {role: {"flushed": self.flushed[role] / max(self.nonzero[role], 1),
                       "saturated": self.saturated[role] / max(self.nonzero[role], 1)}
                for role in ROLES}


class Recipe:
    """The interface: ``quantize`` a named tensor of a role, ``gemm`` two quantized tensors
    (A [M, K], B [K, N]) with an optional bias row added to every row of the result."""
    name = ""
    loss_scale = 1.0

    def __init__(self):
        self.stats = QuantStats()

    def quantize(self, role: str, name: str, x: np.ndarray, track: bool = True) -> Quantized:
        """``x`` as the GEMMs will see it. ``track``: training (tensor statistics, shared
        biases move); False for evaluation, which changes nothing."""
        raise NotImplementedError

    def gemm(self, a: Quantized, b: Quantized, bias: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        """The recipe's settings, for the results file."""
        return {"name": self.name, "loss_scale": self.loss_scale}

    def _encode(self, role, x, fmt, bias, track) -> Quantized:
        """``x`` rounded to nearest even into ``fmt`` at ``bias``, saturating."""
        x = np.asarray(x, np.float64)
        codes = golden.encode(x, fmt, bias=bias, rounding="rne", overflow="sat")
        values = golden.decode(codes, fmt, bias=bias)
        if track:
            self.stats.count(role, x, values, golden.get_format(fmt).max_finite(bias))
        return Quantized(values, codes, fmt, bias)


def broadcast_bias(bias: np.ndarray | None, rows: int) -> np.ndarray | None:
    """A bias row as an initial C of ``rows`` rows (None stays None)."""
    if bias is None:
        return None
    return np.broadcast_to(np.asarray(bias, np.float64), (rows, len(bias)))
