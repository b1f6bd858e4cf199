"""The tiling scheduler: every tile of every plan, computed with the golden MAC, gives the
golden GEMM, for both dataflows, odd shapes and every slot count (no simulator needed)."""

import numpy as np
import pytest

from golden import DLFLOAT16, encode
from golden.matmul import matmul
from golden.mpe import mpe
from hw.schedule import GemmSchedule

pytestmark = pytest.mark.quick


def os_tile(mode, fmt_a, fmt_b):
    """What an output-stationary tile computes: each output folds its K beats."""
    def run(tile, a, b, inits):
        acc = inits.T.astype(np.uint32)              # [lanes, cols]
        for k in range(len(a)):
            acc = mpe(acc, a[k][:, None], b[k][None, :], mode, fmt_a, fmt_b)
        return acc.T
    return run


def ws_tile(mode, fmt_a, fmt_b):
    """What a weight-stationary pass computes: active PE rows in order, others pass."""
    def run(tile, b, active, a, c):
        acc = c.astype(np.uint32)                    # [M, cols]
        for r in range(len(b)):
            if active[r]:
                acc = mpe(acc, a[:, r, None], b[None, r, :], mode, fmt_a, fmt_b)
        return acc
    return run


SHAPES = [(1, 1, 1), (1, 9, 1), (5, 1, 7), (7, 13, 5), (16, 8, 16), (9, 300, 3)]
ARRAYS = [(1, 1, 0), (2, 3, 3), (4, 4, 1), (3, 2, 2), (8, 8, 2)]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("mode", ["fp8", "int4", "int2"])
def test_schedule_gives_the_golden_gemm(dataflow, mode):
    rng = np.random.default_rng(7)
    tile = (os_tile if dataflow == "os" else ws_tile)(mode, "e4m3", "e5m2")
    for M, K, N in SHAPES:
        A = rng.integers(0, 256, (M, K)).astype(np.uint8)
        B = rng.integers(0, 256, (K, N)).astype(np.uint8)
        if mode == "fp8":
            C = encode(rng.standard_normal((M, N)) * 8, DLFLOAT16).astype(np.uint32)
            C[0, 0] = 0x8000                         # -0 must survive untouched rows of k
        else:
            C = rng.integers(0, 2**32, (M, N), dtype=np.uint64).astype(np.uint32)
        want = matmul(A, B, C, mode, "e4m3", "e5m2")
        for rows, cols, pipeline in ARRAYS:
            s = GemmSchedule(M, K, N, rows, cols, dataflow, pipeline)
            got = s.run(A, B, C, tile)
            assert np.array_equal(got, want), (M, K, N, rows, cols, pipeline)


def test_plan_shapes():
    s = GemmSchedule(10, 20, 9, 4, 4, "os", 2)      # tiles of 8 x 4, all of K
    assert s.lanes == 8
    assert [(t.m0, t.m1, t.n0, t.n1) for t in s.tiles][:4] == [
        (0, 8, 0, 4), (0, 8, 4, 8), (0, 8, 8, 9), (8, 10, 0, 4)]
    assert all((t.k0, t.k1) == (0, 20) for t in s.tiles)
    w = GemmSchedule(10, 9, 9, 4, 4, "ws", 2)       # passes of 4 k x 4 n, k outermost
    assert [(t.k0, t.k1, t.n0, t.depends_on) for t in w.tiles] == [
        (0, 4, 0, None), (0, 4, 4, None), (0, 4, 8, None),
        (4, 8, 0, 0), (4, 8, 4, 1), (4, 8, 8, 2), (8, 9, 0, 3), (8, 9, 4, 4), (8, 9, 8, 5)]


@pytest.mark.parametrize("bad", [dict(M=0), dict(K=0), dict(rows=0), dict(dataflow="xs")])
def test_bad_plans_are_refused(bad):
    args = dict(M=2, K=2, N=2, rows=2, cols=2, dataflow="os") | bad
    with pytest.raises(ValueError):
        GemmSchedule(**args)
