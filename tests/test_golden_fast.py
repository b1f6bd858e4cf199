"""The golden model's fast paths (golden/float_round.py) against the definitions they
replace: ``matmul`` in fp8 mode against ``fold_mpe`` (``mpe`` one k at a time, the
golden model's implementation before the fast path) and against the Fraction reference;
``seb_matmul`` and ``dot`` against ``fmatree`` chunk by chunk; ``dladd`` against its
exact integer path; the int modes' BLAS product against an integer einsum. Directed
cases push the float32 path where it must hand over: overflow, results below the
smallest value, NaN and Inf, and the ties and swamping it must get right by itself."""

import sys

import numpy as np
import pytest

from golden import DLFLOAT16, FP30, dladd, encode, seb_matmul
from golden.dladd import dladd_exact
from golden.float_round import DL16, FP30_ACC, RangeWatch
from golden.fmatree import dot, fmatree
from golden.matmul import fold_mpe, matmul
from test_golden_mpe_reference import mpe_ref

pytestmark = pytest.mark.quick

matmul_module = sys.modules["golden.matmul"]
PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]


def signed_codes(rng, lo, hi, shape):
    """Codes with magnitude codes in lo..hi and random signs."""
    return (rng.integers(lo, hi + 1, shape) | (rng.integers(0, 2, shape) << 7)).astype(np.uint8)


def definition(A, B, C, fmt_a, fmt_b, bias, chunk):
    acc = np.zeros((A.shape[0], B.shape[1]), np.int64) if C is None else C.astype(np.int64)
    return fold_mpe(A, B, acc, fmt_a, fmt_b, bias, chunk).astype(np.uint32)


# The range watch and the code conversions ---------------------------------------------

@pytest.mark.parametrize("acc", [DL16, FP30_ACC], ids=["dlfloat16", "fp30"])
def test_codes_and_values_round_trip(acc):
    fmt = acc.fmt
    rng = np.random.default_rng(3)
    codes = (np.arange(1 << fmt.width) if fmt.width <= 16
             else rng.integers(0, 1 << fmt.width, 200_000))
    values = acc.values(codes)
    back = acc.codes(values)
    magnitude = codes & ((1 << (fmt.width - 1)) - 1)
    want = np.where(magnitude == 0, 0, codes)                    # the dl zero has no sign
    want = np.where(magnitude == fmt.canonical_nan, fmt.canonical_nan, want)
    assert np.array_equal(back, want)


@pytest.mark.parametrize("acc", [DL16, FP30_ACC], ids=["dlfloat16", "fp30"])
def test_range_watch(acc):
    fmt = acc.fmt
    smallest = 2.0 ** -31 * (1 + 2.0 ** -fmt.man_bits)
    largest = float(np.uint32(acc.max_bits).view(np.float32))
    inside = [0.0, -0.0, smallest, -smallest, largest, -largest, 1.0, -3.5]
    outside = [2.0 ** -31, -(2.0 ** -31), 2.0 ** -40, np.nextafter(np.float32(smallest), 0),
               2.0 ** 33, -(2.0 ** 33), np.nextafter(np.float32(largest), np.inf), np.nan]
    for value, flagged in [(v, False) for v in inside] + [(v, True) for v in outside]:
        watch = RangeWatch(acc, (2,))
        steps = np.array([[1.0, 0.0], [value, 0.0], [1.0, 0.0]], np.float32)
        for step in steps:
            watch.see(step.view(np.uint32))
        assert watch.outside().tolist() == [flagged, False], value


def test_rounding_to_dlfloat16_ties_away():
    one_ulp = 2.0 ** -9
    values = np.array([1 + one_ulp / 2, -(1 + one_ulp / 2), 1 + one_ulp / 2 - 2.0 ** -20,
                       2 - one_ulp / 4, 3 * 2.0 ** 20 + 2.0 ** 11], np.float32)
    DL16.round_(values.view(np.uint32))
    assert values.tolist() == [1 + one_ulp, -(1 + one_ulp), 1.0, 2.0, 3 * 2.0 ** 20 + 2 ** 12]


# fp8 matmul ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt_a, fmt_b", PAIRS)
def test_fp8_random_codes_against_the_definition(fmt_a, fmt_b):
    rng = np.random.default_rng(hash((fmt_a, fmt_b)) % 2 ** 32)
    for trial in range(40):
        M, K, N = rng.integers(1, 9, 3)
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        C = (rng.integers(0, 1 << 32, (M, N), dtype=np.uint64).astype(np.uint32)
             if trial % 2 else None)
        bias, chunk = int(rng.choice([0, 7, 11, 15])), int(rng.choice([0, 1, 2, 5]))
        assert np.array_equal(matmul(A, B, C, "fp8", fmt_a, fmt_b, bias, chunk),
                              definition(A, B, C, fmt_a, fmt_b, bias, chunk)), trial


DIRECTED = {
    # e5m2 near its top: sums of a few products pass dlfloat16's max (overflow, 0x7FFF).
    "overflow": lambda rng, M, K, N: (signed_codes(rng, 0x6C, 0x7B, (M, K)) & 0x7F,
                                      signed_codes(rng, 0x6C, 0x7B, (K, N)) & 0x7F, "e5m2"),
    # subnormal and tiny operands: products and sums below dlfloat16's smallest value.
    "tiny": lambda rng, M, K, N: (signed_codes(rng, 0, 12, (M, K)), signed_codes(rng, 0, 12, (K, N)),
                                  "e5m2"),
    # equal and opposite products: exact cancellation, to zero or to tiny remainders.
    "cancellation": lambda rng, M, K, N: _cancelling(rng, M, K, N),
    # one big product then many small ones: swamping, every small one below half a unit.
    "swamping": lambda rng, M, K, N: (np.concatenate(
        [np.full((M, 1), 0x70, np.uint8), signed_codes(rng, 8, 40, (M, K - 1))], axis=1),
        signed_codes(rng, 30, 60, (K, N)), "e4m3"),
    # NaN and Inf operands here and there.
    "specials": lambda rng, M, K, N: _with_specials(rng, M, K, N),
}


def _cancelling(rng, M, K, N):
    A = signed_codes(rng, 1, 126, (M, K))
    A[:, 1::2] = A[:, 0:K - 1:2] ^ 0x80
    B = np.repeat(signed_codes(rng, 1, 126, (1, N)), K, axis=0)
    return A, B, "e4m3"


def _with_specials(rng, M, K, N):
    A, B = signed_codes(rng, 0, 126, (M, K)), signed_codes(rng, 0, 126, (K, N))
    A[rng.random((M, K)) < 0.05] = 0x7F
    B[rng.random((K, N)) < 0.05] = 0xFC                    # e5m2 -inf
    return A, B, "e5m2"


@pytest.mark.parametrize("case", DIRECTED)
def test_fp8_directed_cases_against_the_definition(case):
    rng = np.random.default_rng(len(case))
    for trial in range(12):
        M, K, N = 5, int(rng.integers(2, 40)), 6
        A, B, fmt_b = DIRECTED[case](rng, M, K, N)
        fmt_a = fmt_b if case in ("overflow", "tiny") else "e4m3"
        C = encode(rng.standard_normal((M, N)) * 2.0 ** rng.integers(-40, 34, (M, N)),
                   DLFLOAT16, rounding="rnu", overflow="nan").astype(np.uint32)
        for chunk in (0, 3):
            want = definition(A, B, C, fmt_a, fmt_b, 11, chunk)
            assert np.array_equal(matmul(A, B, C, "fp8", fmt_a, fmt_b, 11, chunk), want), trial


def test_fp8_against_the_fraction_reference():
    rng = np.random.default_rng(11)
    for fmt_a, fmt_b in PAIRS:
        M, K, N = 3, 24, 3
        A = signed_codes(rng, 0, 127, (M, K))
        B = signed_codes(rng, 0, 127, (K, N))
        C = encode(rng.standard_normal((M, N)), DLFLOAT16, rounding="rnu").astype(np.uint32)
        got = matmul(A, B, C, "fp8", fmt_a, fmt_b, 11)
        for i in range(M):
            for j in range(N):
                acc = int(C[i, j])
                for k in range(K):
                    acc = mpe_ref(acc, int(A[i, k]), int(B[k, j]), "fp8", fmt_a, fmt_b, 11)
                assert got[i, j] == acc, (fmt_a, fmt_b, i, j)


def test_the_fast_path_carries_ordinary_data_and_hands_over_the_rest(monkeypatch):
    """Ordinary tensors never reach the definition; an overflowing output does, alone."""
    handed = []
    original = matmul_module.fold_mpe

    def spy(A, B, acc, *args):
        if len(args) > 4:
            handed.extend(zip(args[4].tolist(), args[5].tolist()))
        return original(A, B, acc, *args)

    monkeypatch.setattr(matmul_module, "fold_mpe", spy)
    rng = np.random.default_rng(2)
    A = encode(rng.standard_normal((16, 300)), "e4m3", bias=11)
    B = encode(rng.standard_normal((300, 12)) * 0.3, "e4m3", bias=11)
    matmul(A, B, chunk=64)
    assert handed == []
    big = np.zeros((2, 4), np.uint8)
    big[1] = 0x7B                                            # e5m2 57344, four times
    got = matmul(big, np.full((4, 3), 0x7B, np.uint8), None, "fp8", "e5m2", "e5m2")
    assert handed == [(1, 0), (1, 1), (1, 2)]
    assert got.tolist() == [[0, 0, 0], [DLFLOAT16.canonical_nan] * 3]


@pytest.mark.parametrize("mode, lanes, top", [("int4", 2, 64), ("int2", 4, 4)])
def test_int_modes_through_blas_on_both_sides_of_float32s_exact_range(mode, lanes, top):
    from golden import unpack_lanes
    rng = np.random.default_rng(7)
    for K in (5, (1 << 24) // (lanes * top) + 3):    # the second one needs float64
        A = rng.integers(0, 256, (2, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, 3)).astype(np.uint8)
        A[0] = 0x88 if mode == "int4" else 0xAA          # every lane at its minimum
        B[:, 0] = A[0, 0]
        C = rng.integers(0, 1 << 32, (2, 3), dtype=np.uint64).astype(np.uint32)
        products = np.einsum("ikl,kjl->ij", unpack_lanes(A, mode), unpack_lanes(B, mode))
        want = ((C.astype(np.int64) + products) & 0xFFFFFFFF).astype(np.uint32)
        assert np.array_equal(matmul(A, B, C, mode), want), K


# dladd ---------------------------------------------------------------------------------

def test_dladd_against_its_exact_path():
    rng = np.random.default_rng(4)
    x = np.concatenate([np.arange(1 << 16), rng.integers(0, 1 << 16, 300_000)])
    y = np.concatenate([rng.integers(0, 1 << 16, 1 << 16), rng.integers(0, 1 << 16, 300_000)])
    # and pairs that cancel to below the smallest value, and that overflow
    near = rng.integers(0, 1 << 12, 20_000)
    x = np.concatenate([x, near, 0x7E00 + (near & 0x1FF)])
    y = np.concatenate([y, (near ^ 0x8000) + rng.integers(0, 3, 20_000),
                        0x7E00 + (near >> 3 & 0x1FF)])
    assert np.array_equal(dladd(x, y), dladd_exact(x, y).astype(np.uint16))


# fp8seb: seb_matmul and dot --------------------------------------------------------------

def by_fmatree(A, B, C, bias_a, bias_b, ways):
    """``seb_matmul``'s C the way the golden model computed it before: ``fmatree`` chunk
    by chunk over all outputs."""
    M, K = A.shape
    N = B.shape[1]
    pad = -K % ways
    A, B = np.pad(A, ((0, 0), (0, pad))), np.pad(B, ((0, pad), (0, 0)))
    acc = np.zeros(M * N, np.int64) if C is None else C.reshape(M * N).astype(np.int64)
    for q in range(0, K + pad, ways):
        acc = fmatree(acc, np.repeat(A[:, q:q + ways], N, axis=0),
                      np.tile(B[q:q + ways].T, (M, 1)), bias_a, bias_b)
    return acc.reshape(M, N).astype(np.uint32)


def test_seb_matmul_and_dot_against_fmatree():
    rng = np.random.default_rng(9)
    for trial in range(60):
        M, K, N = int(rng.integers(1, 7)), int(rng.integers(1, 80)), int(rng.integers(1, 7))
        ways = int(rng.choice([1, 3, 24]))
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        if trial % 3 == 0:                                # opposite pairs: cancellation
            A[:, 1::2] = A[:, 0:K - 1:2] ^ 0x80
            B[1::2] = B[0:K - 1:2]
        # the biases' extremes push sums past fp30's max (saturation) and below its min
        bias_a, bias_b = (int(b) for b in rng.choice([-32, -20, 0, 20, 31], 2))
        C = None
        if trial % 2:
            C = encode(rng.standard_normal((M, N)) * 2.0 ** rng.integers(-31, 33, (M, N)),
                       FP30).astype(np.uint32)
            C[0, 0] = FP30.canonical_nan if trial % 4 == 1 else C[0, 0]
        want = by_fmatree(A, B, C, bias_a, bias_b, ways)
        assert np.array_equal(seb_matmul(A, B, C, bias_a, bias_b, ways).C, want), trial
        rows = np.repeat(A, N, axis=0)
        cols = np.tile(B.T, (M, 1))
        start = 0 if C is None else C.reshape(M * N)
        assert np.array_equal(dot(rows, cols, bias_a, bias_b, ways, start),
                              want.reshape(M * N)), trial


# python -m golden.bench ---------------------------------------------------------------

def test_bench_table_and_bad_input(capsys):
    from golden import bench
    rows = bench.measure(size=16, repeat=1)
    assert rows[0][0].startswith("numpy float32") and len(rows) == 10
    assert all(rate > 0 for _, rate in rows)
    lines = bench.table(rows, 16).splitlines()
    assert lines[0].startswith("| golden model, 16x16x16") and len(lines) == 12
    assert lines[2].endswith("| 100.00% |")
    for argv, fragment in ((["--size", "0"], "--size must be"), (["--repeat", "x"], "invalid int")):
        assert bench.main(argv) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1
