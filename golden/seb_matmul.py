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

Fast and exact: each chunk's exact sums T through float64 BLAS (one M x ways x N product),
then stage 2 in float32 (``fmatree.fold_tree_sums``); chunks go in order, as each is a
rounding. Outputs that ever leave ``fp30``'s finite range are done again by ``fmatree``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import check_codes
from .float_round import FP30_ACC, row_blocks
from .fmatree import code_integers, fmatree, fold_tree_sums, tree_scale
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
    # Each chunk's T through float64 BLAS: the products (|x| < 2**36) and every partial
    # sum of them (|T| < 2**41) are integers that float64 holds exactly, in any order.
    ints_a = code_integers(A).astype(np.float64)
    ints_b = code_integers(B).astype(np.float64)
    scale = tree_scale(bias_a, bias_b)
    start = FP30_ACC.values(acc).reshape(M, N)
    values = np.empty((M, N), np.float32)
    outside = np.empty((M, N), bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for rows in row_blocks(M, N):
            sums = (ints_a[rows, q * ways:(q + 1) * ways] @ ints_b[q * ways:(q + 1) * ways]
                    for q in range(chunks))
            values[rows], outside[rows] = fold_tree_sums(start[rows], sums, scale)
    codes = FP30_ACC.codes(values).reshape(M * N)
    again = np.nonzero((outside & ~np.isnan(values)).reshape(M * N))[0]
    if again.size:
        # Those outputs again through ``fmatree``: row i * N + j is A[i, chunk], B[chunk, j].
        exact = acc[again]
        rows, cols = again // N, again % N
        for q in range(chunks):
            ks = slice(q * ways, (q + 1) * ways)
            exact = fmatree(exact, A[rows, ks], B[ks, cols].T, int(bias_a), int(bias_b))
        codes[again] = exact
    acc = codes
    result = np.asarray(acc, np.uint32).reshape(M, N)
    if out_bias is None:
        return SebMatmul(result)
    tracked = max_exponent(result)
    return SebMatmul(result, quant30(result, int(out_bias)), tracked,
                     next_bias(int(out_bias), tracked, room))
