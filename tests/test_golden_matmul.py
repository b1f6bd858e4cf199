"""Golden matmul against the MAC fold that defines it (docs/numerics.md, ``matmul``), and
its chunked accumulation and output quantization against the exact references."""

import numpy as np
import pytest

from golden import DLFLOAT16, FormatError, decode, encode
from golden.matmul import matmul
from golden.mpe import mpe
from reference_fractions import dladd_ref
from test_golden_mpe_reference import mpe_ref, quant16_ref

pytestmark = pytest.mark.quick

PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]


def fold(A, B, C, mode, fmt_a, fmt_b, bias):
    """C[i][j] by the definition: one MAC at a time, k ascending."""
    M, K = A.shape
    N = B.shape[1]
    out = np.zeros((M, N), np.uint32)
    for i in range(M):
        for j in range(N):
            acc = np.uint32(C[i, j])
            for k in range(K):
                acc = mpe(np.array([acc], np.uint32), np.array([A[i, k]], np.uint8),
                          np.array([B[k, j]], np.uint8), mode, fmt_a, fmt_b, bias)[0]
            out[i, j] = acc
    return out


CASES = [("fp8", fa, fb) for fa, fb in PAIRS] + [("int4", "e4m3", "e4m3"),
                                                  ("int2", "e4m3", "e4m3")]


@pytest.mark.parametrize("mode, fmt_a, fmt_b", CASES)
def test_matches_the_fold(mode, fmt_a, fmt_b):
    rng = np.random.default_rng(hash((mode, fmt_a, fmt_b)) % 2**32)
    for M, K, N in ((1, 1, 1), (3, 7, 2), (5, 40, 4)):
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        if mode == "fp8":
            C = encode(rng.standard_normal((M, N)) * 4, DLFLOAT16).astype(np.uint32)
        else:
            C = rng.integers(0, 1 << 32, (M, N), dtype=np.uint64).astype(np.uint32)
        for bias in (11, 0):
            want = fold(A, B, C, mode, fmt_a, fmt_b, bias)
            assert np.array_equal(matmul(A, B, C, mode, fmt_a, fmt_b, bias), want)
        assert np.array_equal(matmul(A, B, None, mode, fmt_a, fmt_b),
                              fold(A, B, np.zeros((M, N), np.uint32), mode, fmt_a, fmt_b, 11))


def test_order_of_k_matters_in_fp8():
    """Swamping: a large first product hides later small ones, so the fold is not a sum."""
    one, big, small = 0x38, 0x77, 0x20          # e4m3 bias 11: 1/8, 24, 2^-6
    A = np.array([[big, small, small, small]], np.uint8)
    B = np.full((4, 1), one, np.uint8)
    forward = matmul(A, B)
    backward = matmul(A[:, ::-1].copy(), B)
    assert forward[0, 0] != backward[0, 0]


def test_int_modes_wrap():
    A = np.full((1, 300), 0x77, np.uint8)       # int4 lanes (7, 7)
    B = np.full((300, 1), 0x77, np.uint8)
    C = np.array([[0x7FFFFFFF]], np.uint32)
    assert matmul(A, B, C, "int4")[0, 0] == (0x7FFFFFFF + 300 * 98) & 0xFFFFFFFF


def test_bad_shapes():
    with pytest.raises(FormatError, match="A must be"):
        matmul(np.zeros((2, 3), np.uint8), np.zeros((4, 2), np.uint8))
    with pytest.raises(FormatError, match="C must be"):
        matmul(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), np.zeros((3, 3), np.uint32))
    with pytest.raises(FormatError, match="unknown mode"):
        matmul(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8), mode="int8")


# Chunk-based accumulation and output quantization -------------------------------------

def chunked_reference(A, B, C, mode, fmt_a, fmt_b, bias, chunk):
    """docs/numerics.md, ``matmul``, one output at a time with the exact references:
    S = C[i][j]; per chunk of ``chunk`` k, P = the ``mpe`` fold from 0, S = dladd(S, P)."""
    M, K = A.shape
    N = B.shape[1]
    result = np.zeros((M, N), np.uint32)
    for i in range(M):
        for j in range(N):
            s = int(C[i, j])
            for k0 in range(0, K, chunk):
                p = 0
                for k in range(k0, min(k0 + chunk, K)):
                    p = mpe_ref(p, int(A[i, k]), int(B[k, j]), mode, fmt_a, fmt_b, bias)
                s = dladd_ref(s & 0xFFFF, p) if mode == "fp8" else (s + p) % (1 << 32)
            result[i, j] = s
    return result


def quantized_reference(C, out, bias):
    """``quant16`` (rne, sat) of each result, by the exact reference."""
    return np.array([[quant16_ref(int(c) & 0xFFFF, out, bias, "sat") for c in row]
                     for row in C], np.uint8)


def fp8_operands(rng, M, K, N):
    """Random codes, nine in ten NaN/Inf codes made finite (bit 6 cleared), and C with
    upper bits set (ignored) and a NaN/Inf start."""
    A = rng.integers(0, 256, (M, K)).astype(np.uint8)
    B = rng.integers(0, 256, (K, N)).astype(np.uint8)
    A = np.where((A & 0x7C == 0x7C) & (rng.random(A.shape) < 0.9), A & 0xBF, A)
    B = np.where((B & 0x7C == 0x7C) & (rng.random(B.shape) < 0.9), B & 0xBF, B)
    C = encode(rng.standard_normal((M, N)) * 4, DLFLOAT16).astype(np.uint32)
    C[0, 0] |= 0xABCD0000
    C[-1, -1] = 0x7FFF
    return A.astype(np.uint8), B.astype(np.uint8), C


@pytest.mark.parametrize("fmt_a, fmt_b", PAIRS)
def test_chunked_matches_the_definition(fmt_a, fmt_b):
    rng = np.random.default_rng(hash((fmt_a, fmt_b, "chunk")) % 2**32)
    M, K, N = 3, 13, 4
    A, B, C = fp8_operands(rng, M, K, N)
    for bias in ((11, 2) if "e4m3" in (fmt_a, fmt_b) else (11,)):
        for chunk in (1, 4, 13, 100):
            want = chunked_reference(A, B, C, "fp8", fmt_a, fmt_b, bias, chunk)
            got = matmul(A, B, C, "fp8", fmt_a, fmt_b, bias, chunk=chunk)
            assert got.dtype == np.uint32 and np.array_equal(got, want), (bias, chunk)
            for out in ("e4m3", "e5m2"):
                got = matmul(A, B, C, "fp8", fmt_a, fmt_b, bias, chunk=chunk, out=out)
                assert got.dtype == np.uint8, got.dtype
                assert np.array_equal(got, quantized_reference(want, out, bias)), \
                    (bias, chunk, out)
    # chunk 0 is the plain fold; out quantizes it too.
    plain = fold(A, B, C, "fp8", fmt_a, fmt_b, 11)
    assert np.array_equal(matmul(A, B, C, "fp8", fmt_a, fmt_b, chunk=0), plain)
    assert np.array_equal(matmul(A, B, C, "fp8", fmt_a, fmt_b, out="e5m2"),
                          quantized_reference(plain, "e5m2", 11))


def test_chunks_fight_swamping():
    """A large start swamps small products one at a time; summed in a chunk first, they
    count (each is below half of 24's last place, 2**-5; the exact sum is
    24 + 64 * 2**-7 = 24.5)."""
    one, small = 0x58, 0x20                     # e4m3 bias 11: 1, 2**-7
    A = np.full((1, 64), small, np.uint8)
    B = np.full((64, 1), one, np.uint8)
    C = encode(np.array([[24.0]]), DLFLOAT16).astype(np.uint32)
    assert decode(matmul(A, B, C)[0, 0], DLFLOAT16) == 24.0
    assert decode(matmul(A, B, C, chunk=16)[0, 0], DLFLOAT16) == 24.5


@pytest.mark.parametrize("mode", ["int4", "int2"])
def test_int_modes_ignore_chunks_refuse_out(mode):
    rng = np.random.default_rng(5)
    A = rng.integers(0, 256, (3, 9)).astype(np.uint8)
    B = rng.integers(0, 256, (9, 2)).astype(np.uint8)
    C = rng.integers(0, 1 << 32, (3, 2), dtype=np.uint64).astype(np.uint32)
    plain = matmul(A, B, C, mode)
    for chunk in (1, 2, 4, 9, 65535):
        assert np.array_equal(matmul(A, B, C, mode, chunk=chunk), plain)
    assert np.array_equal(chunked_reference(A, B, C, mode, "e4m3", "e4m3", 11, 2), plain)
    with pytest.raises(FormatError, match="^matmul: out=e4m3 needs mode fp8"):
        matmul(A, B, C, mode, out="e4m3")


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"chunk": -1}, ValueError, "chunk=-1 is outside the allowed range 0..65535"),
    ({"chunk": 65536}, ValueError, "chunk=65536 is outside"),
    ({"chunk": 2.0}, TypeError, "chunk must be an integer"),
    ({"out": "fp9"}, ValueError, "out must be one of none, e4m3, e5m2"),
])
def test_bad_chunk_or_out(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        matmul(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8), **kwargs)
