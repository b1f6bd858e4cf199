"""Golden ``matmul``: the systolic array's GEMM (docs/numerics.md, ``matmul``).

C[i][j] = fold over k = 0..K-1, ascending, of acc <- mpe(acc, A[i][k], B[k][j]), starting
from the initial C[i][j] (default 0). A is the west operand (``fmt_a``), B the north one
(``fmt_b``). Any array, output- or weight-stationary, must give exactly these bits.

Chunk-based accumulation (``chunk`` = CL > 0): S = the initial C[i][j]; for each chunk of
CL consecutive k (the last one shorter), ascending, P = the fold of ``mpe`` over the
chunk starting from 0, then S <- dladd(S, P). Output quantization (``out`` = ``e4m3`` or
``e5m2``, ``fp8`` mode only): each final C[i][j] goes through ``quant16`` (rne, sat).

Vectorized: ``fp8`` folds one k at a time over the whole M x N tile (each step is a
rounding, so the order matters); ``int4`` / ``int2`` accumulate modulo 2**32, where the
order does not (so chunking changes nothing), so they are one integer matrix product.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, unpack_lanes
from .dladd import dladd
from .formats import E4M3, FormatError
from .mpe import check_mode, mpe
from .params import CHUNK, OUT
from .quant16 import quant16


def check_output(mode: str, chunk, out) -> None:
    """ParameterError / FormatError unless ``chunk`` and ``out`` are allowed with ``mode``."""
    CHUNK.check(chunk, "matmul")
    OUT.check(out, "matmul")
    if out != "none" and mode != "fp8":
        raise FormatError(f"matmul: out={out} needs mode fp8 (the {mode} results are "
                          f"integers, not dlfloat16)")


def accumulate(A, B, C=None, mode: str = "fp8", fmt_a: str = "e4m3", fmt_b: str = "e4m3",
               bias: int = E4M3.bias, chunk: int = 0) -> np.ndarray:
    """The uint32 C [M, N] of ``matmul`` before its output quantization."""
    check_mode(mode, fmt_a, fmt_b)
    CHUNK.check(chunk, "matmul")
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

    def fold(start, ks):
        for k in ks:
            start = mpe(start, A[:, k, None], B[None, k, :], "fp8", fmt_a, fmt_b, bias)
        return start

    if chunk == 0:
        acc = fold(acc, range(K))
    else:
        for k0 in range(0, K, chunk):
            partial = fold(np.zeros((M, N), np.int64), range(k0, min(k0 + chunk, K)))
            acc = dladd(acc & 0xFFFF, partial)      # mpe too ignores C's upper 16 bits
    return np.asarray(acc, np.uint32).reshape(M, N)


def quantize_output(C, out: str, bias: int = E4M3.bias) -> np.ndarray:
    """``matmul``'s output quantization of its uint32 C (``dlfloat16`` codes in the low 16
    bits): uint8 codes of ``out`` (``e4m3`` with ``bias``, or ``e5m2``), rne, saturating."""
    return quant16(np.asarray(C, np.int64) & 0xFFFF, out, bias, "sat")


def matmul(A, B, C=None, mode: str = "fp8", fmt_a: str = "e4m3", fmt_b: str = "e4m3",
           bias: int = E4M3.bias, chunk: int = 0, out: str = "none") -> np.ndarray:
    """uint8 A [M, K] x uint8 B [K, N], optional uint32 C [M, N]; returns uint32 [M, N], or
    with ``out`` (``e4m3`` / ``e5m2``, ``fp8`` mode only) uint8 codes of that format."""
    check_mode(mode, fmt_a, fmt_b)
    check_output(mode, chunk, out)
    result = accumulate(A, B, C, mode, fmt_a, fmt_b, bias, chunk)
    return result if out == "none" else quantize_output(result, out, bias)
