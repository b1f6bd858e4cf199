"""Golden ``matmul`` in ``fp8seb`` mode: the FP8-SEB GEMM (docs/numerics.md, ``matmul``
in ``fp8seb`` mode).

A [M, K] and B [K, N] hold ``fp8seb`` codes with the per-tensor shared biases ``bias_a``
and ``bias_b``; the initial C and the result are ``fp30`` codes (default +0). For each
output, the products are taken in chunks of ``ways`` = N consecutive k in ascending
order (the last chunk padded with zero codes), and acc <- ``fmatree``(acc, A[i, chunk],
B[chunk, j], bias_a, bias_b) from the initial C[i][j]: ``golden.dot`` of row i and
column j. With ``out_bias``, each result is also quantized by ``quant30`` with that bias,
and the whole output tensor is tracked: ``max_exp`` (the largest floor(log2|x|) over its
nonzero, non-NaN results, None when there is none) and ``next_bias`` (the shared-bias
rule with ``room``).

Vectorized: one ``fmatree`` call a chunk over all M x N outputs (each chunk is a
rounding, so chunks go in order; within one, stage 1 is exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import check_codes
from .fmatree import fmatree
from .formats import FP8SEB, FP30, FormatError, check_bias
from .params import ROOM, WAYS
from .quant30 import max_exponent, next_bias, quant30


@dataclass(frozen=True)
class SebMatmul:
    """``seb_matmul``'s results: ``C`` (uint32 ``fp30`` codes [M, N]); with an
    ``out_bias``, ``Y`` (uint8 ``fp8seb`` codes [M, N]), ``max_exp`` and ``next_bias``
    (None without one; ``max_exp`` is None too when no result was a nonzero number)."""
    C: np.ndarray
    Y: np.ndarray | None = None
    max_exp: int | None = None
    next_bias: int | None = None


def seb_matmul(A, B, C=None, bias_a: int = 0, bias_b: int = 0, ways: int = WAYS.default,
               out_bias: int | None = None, room: int = ROOM.default) -> SebMatmul:
    """uint8 ``fp8seb`` A [M, K] x B [K, N] with shared biases ``bias_a``, ``bias_b``
    (-32..31), optional uint32 ``fp30`` C [M, N], through a ``ways``-way tree; see the
    module docstring."""
    A = check_codes(A, 8, "A")
    B = check_codes(B, 8, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0] or 0 in A.shape + B.shape:
        raise FormatError(f"matmul: A must be [M, K] and B [K, N], none of them 0, got "
                          f"{A.shape} and {B.shape}")
    for name, bias in (("bias_a", bias_a), ("bias_b", bias_b)) + (
            (("out_bias", out_bias),) if out_bias is not None else ()):
        if np.ndim(bias) != 0:
            raise FormatError(f"matmul: {name} is one shared bias, got shape {np.shape(bias)}")
        check_bias(FP8SEB, bias)
    WAYS.check(ways, "matmul")
    ROOM.check(room, "matmul")
    M, K = A.shape
    N = B.shape[1]
    if C is None:
        acc = np.zeros(M * N, np.int64)
    else:
        acc = check_codes(C, FP30.width, "C (fp30)")
        if acc.shape != (M, N):
            raise FormatError(f"matmul: C must be [{M}, {N}], got {acc.shape}")
        acc = acc.reshape(M * N)
    chunks = -(-K // ways)
    pad = chunks * ways - K
    A = np.pad(A, ((0, 0), (0, pad)))
    B = np.pad(B, ((0, pad), (0, 0)))
    for q in range(chunks):
        ks = slice(q * ways, (q + 1) * ways)
        # Row i * N + j of the tree's inputs: A[i, chunk] and B[chunk, j].
        a = np.repeat(A[:, ks], N, axis=0)
        b = np.tile(B[ks, :].T, (M, 1))
        acc = fmatree(acc, a, b, int(bias_a), int(bias_b))
    result = np.asarray(acc, np.uint32).reshape(M, N)
    if out_bias is None:
        return SebMatmul(result)
    tracked = max_exponent(result)
    return SebMatmul(result, quant30(result, int(out_bias)), tracked,
                     next_bias(int(out_bias), tracked, room))
