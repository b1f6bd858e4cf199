"""Golden ``matmul``: the systolic array's GEMM (docs/numerics.md, ``matmul``).

C[i][j] = fold over k = 0..K-1, ascending, of acc <- mpe(acc, A[i][k], B[k][j]), starting
from the initial C[i][j] (default 0). A is the west operand (``fmt_a``), B the north one
(``fmt_b``). Any array, output- or weight-stationary, must give exactly these bits.

Chunk-based accumulation (``chunk`` = CL > 0): S = the initial C[i][j]; for each chunk of
CL consecutive k (the last one shorter), ascending, P = the fold of ``mpe`` over the
chunk starting from 0, then S <- dladd(S, P). Output quantization (``out`` = ``e4m3`` or
``e5m2``, ``fp8`` mode only): each final C[i][j] goes through ``quant16`` (rne, sat).

Fast and exact: ``fp8`` folds one k at a time over a block of the M x N outputs (each
step is a rounding, so the order matters) in float32 arithmetic (``float_round``: the
proof that this gives the contract's bits is there), a handful of array passes a step;
the few outputs that ever leave ``dlfloat16``'s finite range are folded again by
``fold_mpe``, the definition itself (``mpe`` one k at a time), which the tests also
hold the fast path to. ``int4`` / ``int2`` accumulate modulo 2**32, where the order does
not matter (so chunking changes nothing): one matrix product of the lanes through BLAS,
exact because every partial sum is a small integer.
"""

from __future__ import annotations

import numpy as np

from .codec import check_codes, decode, unpack_lanes
from .dladd import dladd
from .float_round import DL16, RangeWatch, row_blocks
from .formats import E4M3, E5M2, FormatError, INT2, INT4
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


def _check_operands(A, B, C):
    A = check_codes(A, 8, "A")
    B = check_codes(B, 8, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise FormatError(f"matmul: A must be [M, K] and B [K, N], got {A.shape} and {B.shape}")
    M, N = A.shape[0], B.shape[1]
    if C is None:
        return A, B, np.zeros((M, N), np.int64)
    acc = check_codes(C, 32, "C")
    if acc.shape != (M, N):
        raise FormatError(f"matmul: C must be [{M}, {N}], got {acc.shape}")
    return A, B, acc


def operand_values(codes, fmt: str, bias: int) -> np.ndarray:
    """float32 values of ``e4m3`` (with ``bias``) or ``e5m2`` codes; NaN for NaN and Inf."""
    return decode(codes, E4M3.with_bias(bias) if fmt == "e4m3" else E5M2).astype(np.float32)


def fold_mpe(A, B, acc, fmt_a: str = "e4m3", fmt_b: str = "e4m3", bias: int = E4M3.bias,
             chunk: int = 0, rows=None, cols=None) -> np.ndarray:
    """``fp8`` outputs by the definition: ``mpe`` one k at a time (and ``dladd`` for the
    chunks), vectorized over the outputs (``rows[n]``, ``cols[n]``) with initial words
    ``acc[n]`` (all of C [M, N] when ``rows`` and ``cols`` are None). int64 codes."""
    A, B = np.asarray(A, np.int64), np.asarray(B, np.int64)
    acc = np.asarray(acc, np.int64)
    if rows is None:
        rows, cols = np.arange(A.shape[0])[:, None], np.arange(B.shape[1])[None, :]
    K = A.shape[1]

    def fold(start, ks):
        for k in ks:
            start = mpe(start, A[rows, k], B[k, cols], "fp8", fmt_a, fmt_b, bias)
        return start.astype(np.int64)

    if chunk == 0:
        return fold(acc, range(K))
    for k0 in range(0, K, chunk):
        partial = fold(np.zeros(acc.shape, np.int64), range(k0, min(k0 + chunk, K)))
        acc = dladd(acc & 0xFFFF, partial).astype(np.int64)   # mpe ignores C's upper 16 bits
    return acc


def _fold_fast(a_by_k, b, start, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """One block of outputs in float32: ``a_by_k`` [K, m] and ``b`` [K, N] operand values,
    ``start`` [m, N] the initial ``dlfloat16`` values. Returns (values, ever outside the
    finite range)."""
    K, m = a_by_k.shape
    N = b.shape[1]
    watch = RangeWatch(DL16, (m, N))
    product = np.empty((m, N), np.float32)

    def fold(total, ks):
        bits = total.view(np.uint32)
        for k in ks:
            np.multiply(a_by_k[k][:, None], b[k][None, :], out=product)
            np.add(total, product, out=total)
            DL16.round_(bits)
            watch.see(bits)

    total = np.array(start, np.float32)
    if chunk == 0:
        fold(total, range(K))
    else:
        partial = np.empty((m, N), np.float32)
        for k0 in range(0, K, chunk):
            partial.fill(0)
            fold(partial, range(k0, min(k0 + chunk, K)))
            np.add(total, partial, out=total)                  # dladd(S, P)
            DL16.round_(total.view(np.uint32))
            watch.see(total.view(np.uint32))
    return total, watch.outside()


def _accumulate_fp8(A, B, acc, fmt_a, fmt_b, bias, chunk) -> np.ndarray:
    M, N = acc.shape
    a_by_k = np.ascontiguousarray(operand_values(A, fmt_a, bias).T)
    b = operand_values(B, fmt_b, bias)
    start = DL16.values(acc & 0xFFFF)                           # mpe ignores the upper bits
    values = np.empty((M, N), np.float32)
    outside = np.empty((M, N), bool)
    # A float32 NaN (a NaN or Inf operand) stays NaN, as 0x7FFF does; values far beyond
    # dlfloat16's range may overflow float32 and are folded again anyway.
    with np.errstate(over="ignore", invalid="ignore"):
        for rows in row_blocks(M, N):
            values[rows], outside[rows] = _fold_fast(a_by_k[:, rows], b, start[rows], chunk)
    codes = DL16.codes(values)
    again = outside & ~np.isnan(values)
    if again.any():
        rows, cols = np.nonzero(again)
        codes[rows, cols] = fold_mpe(A, B, acc[rows, cols], fmt_a, fmt_b, bias, chunk,
                                     rows, cols)
    return codes


def _accumulate_int(A, B, acc, mode) -> np.ndarray:
    # [M, K, L] lanes of A against [K, N, L] lanes of B, as one [M, K L] x [K L, N]
    # product. Every partial sum is an integer of magnitude at most K L max|a b|: exact in
    # float32 below 2**24, else in float64 (below 2**53).
    (M, K), N = A.shape, B.shape[1]
    lanes_a, lanes_b = unpack_lanes(A, mode), unpack_lanes(B, mode)
    L = lanes_a.shape[-1]
    fmt = INT4 if mode == "int4" else INT2
    bound = K * L * fmt.min_value ** 2
    dtype = np.float32 if bound < 2 ** 24 else np.float64
    products = (lanes_a.reshape(M, K * L).astype(dtype)
                @ lanes_b.transpose(0, 2, 1).reshape(K * L, N).astype(dtype))
    return (acc + products.astype(np.int64)) & 0xFFFFFFFF


def accumulate(A, B, C=None, mode: str = "fp8", fmt_a: str = "e4m3", fmt_b: str = "e4m3",
               bias: int = E4M3.bias, chunk: int = 0) -> np.ndarray:
    """The uint32 C [M, N] of ``matmul`` before its output quantization."""
    check_mode(mode, fmt_a, fmt_b)
    CHUNK.check(chunk, "matmul")
    A, B, acc = _check_operands(A, B, C)
    if mode == "fp8":
        codes = _accumulate_fp8(A, B, acc, fmt_a, fmt_b, bias, chunk)
    else:
        codes = _accumulate_int(A, B, acc, mode)
    return codes.astype(np.uint32)


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
