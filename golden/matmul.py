"""Golden ``matmul``: the systolic array's GEMM (docs/numerics.md, ``matmul``).

C[i][j] = fold over k = 0..K-1, ascending, of acc <- mpe(acc, A[i][k], B[k][j]), starting
from the initial C[i][j] (default 0). A is the west operand (``fmt_a``), B the north one
(``fmt_b``). Any array, output- or weight-stationary, must give exactly these bits.

Vectorized: ``fp8`` folds one k at a time over the whole M x N tile (each step is a
rounding, so the order matters); ``int4`` / ``int2`` accumulate modulo 2**32, where the
order does not, so they are one integer matrix product.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, unpack_lanes
from .formats import E4M3, FormatError
from .mpe import check_mode, mpe


def matmul(A, B, C=None, mode: str = "fp8", fmt_a: str = "e4m3", fmt_b: str = "e4m3",
           bias: int = E4M3.bias) -> np.ndarray:
    """uint8 A [M, K] x uint8 B [K, N], optional uint32 C [M, N]; returns uint32 [M, N]."""
    check_mode(mode, fmt_a, fmt_b)
    A = check_codes(A, 8, "A")
    B = check_codes(B, 8, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise FormatError(f"matmul: A must be [M, K] and B [K, N], got {A.shape} and {B.shape}")
    M, K = A.shape
    N = B.shape[1]
    if C is None:
        acc = np.zeros((M, N), np.int64)
    else:
        acc = check_codes(C, 32, "C")
        if acc.shape != (M, N):
            raise FormatError(f"matmul: C must be [{M}, {N}], got {acc.shape}")
    if mode != "fp8":
        # [M, K, L] lanes of A against [K, N, L] lanes of B: sum over k and lanes.
        la, lb = unpack_lanes(A, mode), unpack_lanes(B, mode)
        products = np.einsum("ikl,kjl->ij", la, lb, dtype=np.int64)
        return ((acc + products) & 0xFFFFFFFF).astype(np.uint32)
    for k in range(K):
        acc = mpe(acc, A[:, k, None], B[None, k, :], "fp8", fmt_a, fmt_b, bias)
    return np.asarray(acc, np.uint32).reshape(M, N)
