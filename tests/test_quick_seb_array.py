"""Quick tier: the FP8-SEB GEMM array (``hw.array.SebArray``, a weight-stationary array of
FMA trees) in Amaranth's simulator against ``golden.seb_matmul``: GEMMs tiled by
``hw.schedule.GemmSchedule`` over chunks of ``ways`` codes (``chunk_operands``), with
random idle input cycles and result stalls, at bias corners, with saturation, exact
cancellation, swamping and NaN accumulators, K not a multiple of the ways nor of a tile,
M and N not multiples of the array; without stalls each result must arrive exactly the
array's ``latency`` after its row."""

import numpy as np
import pytest

from golden import FP30, encode
from golden.seb_matmul import seb_matmul
from hw.array import SebArray
from hw.schedule import chunk_operands
from sim.pysim import check
from test_quick_arrays import Gemm, GemmRun, check_latency

pytestmark = pytest.mark.quick

NAN = FP30.canonical_nan
NEG = 1 << 29                       # fp30 sign bit


def seb_gemm(A, B, C0, bias_a, bias_b, ways, **stalls) -> Gemm:
    """A Gemm of the tree array: chunked operands, the biases as its settings; ``A0``,
    ``B0`` keep the codes for the golden model."""
    Ac, Bc = chunk_operands(A, B, ways)
    g = Gemm(Ac, Bc, np.asarray(C0, np.uint32), settings={"bias_a": bias_a, "bias_b": bias_b},
             **stalls)
    g.A0, g.B0, g.biases = A, B, (bias_a, bias_b)
    return g


def random_fp30(rng, shape):
    """Accumulators of every kind: zeros of both signs, NaN codes, random codes."""
    kinds = [np.where(rng.random(shape) < 0.5, 0, NEG),
             np.where(rng.random(shape) < 0.5, NAN, NAN | NEG),
             rng.integers(0, 1 << 30, shape), rng.integers(0, 1 << 30, shape)]
    return np.choose(rng.integers(0, len(kinds), shape), kinds).astype(np.uint32)


def gemms_for(rng, ways, rows):
    """Random GEMMs (bias corners) and directed ones."""
    # Garbage in the inactive PE rows: they must pass the sums, not compute.
    stalls = {"idle_in": 0.3, "busy_out": 0.3, "garbage": True}
    codes = lambda *shape: rng.integers(0, 256, shape).astype(np.uint8)  # noqa: E731
    tile = ways * rows
    out = [seb_gemm(codes(5, tile + 1), codes(tile + 1, 4), random_fp30(rng, (5, 4)), 0, 0,
                    ways)]                                       # no stall: the latency
    for ba, bb in ((-32, -32), (31, 31), (-32, 31), (7, -12)):
        M, K, N = rng.integers(1, 6), rng.integers(1, 2 * tile + 3), rng.integers(1, 6)
        out.append(seb_gemm(codes(M, K), codes(K, N), random_fp30(rng, (M, N)), ba, bb,
                            ways, **stalls))
    # Saturation: the largest products at the largest scale, both signs.
    K = 2 * ways + 1
    big = np.full((3, K), 0x7F, np.uint8)
    big[1] |= 0x80
    out.append(seb_gemm(big, np.full((K, 2), 0x7F, np.uint8), np.zeros((3, 2)), -32, -32,
                        ways, **stalls))
    # Exact cancellation: chunk 1 is chunk 0 negated, so the sum returns to the initial C.
    x = codes(4, ways)
    A = np.concatenate([x, x ^ 0x80], axis=1)
    b = codes(ways, 3)
    out.append(seb_gemm(A, np.concatenate([b, b]), np.zeros((4, 3)), 3, -5, ways,
                        **stalls))
    # Swamping: a large initial C and a long K of tiny products.
    K = 4 * tile + 1
    C0 = encode(np.full((2, 3), 2.0 ** 20), FP30).astype(np.uint32)
    out.append(seb_gemm(np.full((2, K), 0x01, np.uint8), np.full((K, 3), 0x01, np.uint8),
                        C0, 0, 0, ways, **stalls))
    return out


def check_seb(array, g) -> None:
    want = seb_matmul(g.A0, g.B0, g.C0, *g.biases, ways=array.ways).C
    (M, K), N = g.A0.shape, g.B0.shape[1]

    def describe(flat):
        i, j = divmod(flat, N)
        return (f"SebArray {array.rows}x{array.cols} ways {array.ways} pipeline "
                f"{array.pipeline}, GEMM {M}x{K}x{N} biases {g.biases}: C[{i},{j}] "
                f"C0=0x{g.C0[i, j]:08x} rtl=0x{g.C[i, j]:08x} golden=0x{want[i, j]:08x}")

    check(f"SEB GEMM {M}x{K}x{N}", g.C.ravel(), want.ravel(), describe)


@pytest.mark.parametrize("rows, cols, ways, pipeline", [(2, 3, 3, 0), (2, 2, 5, 3),
                                                        (1, 2, 1, 1)])
def test_seb_gemms(rows, cols, ways, pipeline):
    array = SebArray(rows, cols, ways=ways, pipeline=pipeline)
    rng = np.random.default_rng(ways * 10 + pipeline)
    gemms = gemms_for(rng, ways, rows)
    run = GemmRun(array, gemms, rng)
    run.run()
    for g in gemms:
        check_seb(array, g)
    check_latency(array, gemms[0], run.schedules[0])
