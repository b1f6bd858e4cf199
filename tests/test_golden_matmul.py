"""Golden matmul against the MAC fold that defines it (docs/numerics.md, ``matmul``)."""

import numpy as np
import pytest

from golden import DLFLOAT16, FormatError, encode
from golden.matmul import matmul
from golden.mpe import mpe

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
