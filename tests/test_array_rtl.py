"""The systolic arrays in RTL (both dataflows, both simulators) against the golden GEMM.

Each test builds one array shape as output-stationary and as weight-stationary and runs
the same GEMMs through both, one after the other on one simulated array (so the run-time
mode and formats change between GEMMs): fp8 in all four format pairs, int4, int2, M, K
and N that are not multiples of the array, K = 1 and K = 300 with swamping, initial C,
NaN/Inf and overflowing operands, and random idle cycles on the inputs and random
``ready`` on the results. Every C must equal the golden ``matmul``, so ``os`` and ``ws``
agree bit for bit.
"""

import numpy as np
import pytest

from golden import DLFLOAT16, decode, encode
from golden.matmul import matmul
from sim.matmul import MatmulJob, simulate_matmul
from sim.runner import SIMULATORS

# (rows, cols, MPE pipeline): the pipeline sets how many accumulations an os PE
# interleaves (1, 3, 1, 2 here), so every slot arrangement is built.
SHAPES = [(1, 1, 0), (2, 3, 3), (4, 4, 1), (8, 8, 2)]
PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]
SPECIALS = {"e4m3": [0x7F, 0xFF, 0x7E, 0xFE], "e5m2": [0x7C, 0xFC, 0x7D, 0x7B, 0xFB]}


def dl_codes(rng, shape, scale=8.0):
    return encode(rng.standard_normal(shape) * scale, DLFLOAT16).astype(np.uint32)


def jobs_for(rows, cols, pipeline, rng):
    lanes = max(pipeline, 1) * rows               # the taller of the two tile shapes
    M, N = lanes + 1 + rows // 2, cols + 2 + cols // 3
    jobs = []

    def codes(shape):
        return rng.integers(0, 256, shape).astype(np.uint8)

    for n, (fa, fb) in enumerate(PAIRS):
        K = int(rng.integers(5, 24))
        A, B = codes((M, K)), codes((K, N))
        if n % 2:                                  # NaN, Inf and the largest values
            A.flat[rng.choice(A.size, 3, replace=False)] = rng.choice(SPECIALS[fa], 3)
            B.flat[rng.choice(B.size, 2, replace=False)] = rng.choice(SPECIALS[fb], 2)
        C = dl_codes(rng, (M, N)) if n < 2 else None
        jobs.append(("fp8 " + fa + " x " + fb, MatmulJob(A, B, C, "fp8", fa, fb, seed=n,
                                                         idle_in=0.2, busy_out=0.3)))
    for mode in ("int4", "int2"):
        K = int(rng.integers(3, 20))
        C = rng.integers(0, 2**32, (M, N), dtype=np.uint64).astype(np.uint32)
        C[0, 0] = 0x7FFFFFF0                       # next to the wrap
        jobs.append((mode, MatmulJob(codes((M, K)), codes((K, N)), C, mode, seed=7,
                                     busy_out=0.5)))
    # K = 1, and a fp8 C with bits above the dlfloat16 code (the MPE clears them).
    C = rng.integers(0, 2**32, (M, N), dtype=np.uint64).astype(np.uint32)
    jobs.append(("K=1", MatmulJob(codes((M, 1)), codes((1, N)), C, "fp8")))
    # K = 300: a large first product, then many small ones that a dlfloat16 accumulator
    # swamps, so their order matters.
    K = 300
    A, B = codes((3, K)), codes((K, 2))
    A[:, 0], B[0, :] = 0x77, 0x77                  # about 2^8 each in e4m3 at bias 11
    A[:, 1:] &= 0x9F
    jobs.append(("K=300 swamping", MatmulJob(A, B, None, "fp8", idle_in=0.1)))
    return jobs


def first_mismatch(got, want, name):
    bad = np.argwhere(got != want)
    i, j = bad[0]
    return (f"{name}: {len(bad)} of {want.size} values differ; first at C[{i}, {j}]: "
            f"rtl 0x{int(got[i, j]):08x} ({float(decode(got[i, j] & 0xFFFF, DLFLOAT16))}) "
            f"golden 0x{int(want[i, j]):08x} ({float(decode(want[i, j] & 0xFFFF, DLFLOAT16))})")


# Every shape on both simulators in the full tier; the default tier runs the 1x1 and
# 2x3 arrays (the 8x8's two C++ builds take about 220 s, Icarus runs it in 80 to 150 s;
# the 4x4 takes 77 s on Verilator and 24 s on Icarus).
CASES = [pytest.param(sim, *shape, id=f"{sim}-{shape[0]}x{shape[1]}",
                      marks=pytest.mark.full if shape[0] in (4, 8) else ())
         for sim in SIMULATORS for shape in SHAPES]


@pytest.mark.parametrize("sim, rows, cols, pipeline", CASES)
def test_array_equals_golden_matmul(sim, rows, cols, pipeline, tmp_path):
    rng = np.random.default_rng(rows * 100 + cols)
    jobs = jobs_for(rows, cols, pipeline, rng)
    results = {}
    for dataflow in ("os", "ws"):
        hw = dict(rows=rows, cols=cols, dataflow=dataflow, bias=11, pipeline=pipeline)
        results[dataflow] = simulate_matmul([job for _, job in jobs], hw, sim,
                                            tmp_path / dataflow)
    for (name, job), os_run, ws_run in zip(jobs, results["os"], results["ws"]):
        want = matmul(job.A, job.B, job.C, job.mode, job.fmt_a, job.fmt_b)
        for dataflow, run in (("os", os_run), ("ws", ws_run)):
            assert np.array_equal(run.C, want), first_mismatch(run.C, want,
                                                               f"{dataflow} {name}")
        assert np.array_equal(os_run.C, ws_run.C)


# The FP8-SEB array ------------------------------------------------------------------------

def seb_jobs(rows, cols, ways, rng):
    """Random GEMMs at bias corners with NaN / -0 / random fp30 initial C; saturation;
    exact cancellation; swamping (a long K of tiny products into a large C); M, N and K
    not multiples of the array (K not one of the ways either)."""
    M, N, tile = 2 * rows + 1, cols + 1, rows * ways
    codes = lambda *shape: rng.integers(0, 256, shape).astype(np.uint8)  # noqa: E731
    nan, neg = 0x1FFFFFFF, 1 << 29
    jobs = []
    for n, (ba, bb) in enumerate(((-32, -32), (31, 31), (0, 0), (-32, 31), (9, -14))):
        K = int(rng.integers(1, 3 * tile))
        C = rng.integers(0, 1 << 30, (M, N)).astype(np.uint32)
        C.flat[:3] = [nan, nan | neg, neg]
        jobs.append((f"random {ba},{bb}", MatmulJob(codes(M, K), codes(K, N), C, "fp8seb",
                                                    bias_a=ba, bias_b=bb, seed=n,
                                                    idle_in=0.2, busy_out=0.3)))
    K = 2 * ways + 1
    A = np.full((M, K), 0x7F, np.uint8)
    A[1::2] |= 0x80
    jobs.append(("saturation", MatmulJob(A, np.full((K, N), 0x7F, np.uint8), None, "fp8seb",
                                         bias_a=-32, bias_b=-32)))
    x = codes(M, ways)
    b = codes(ways, N)
    jobs.append(("cancellation", MatmulJob(np.concatenate([x, x ^ 0x80], axis=1),
                                           np.concatenate([b, b]), None, "fp8seb",
                                           bias_a=4, bias_b=-6, seed=9, busy_out=0.5)))
    K = 6 * tile + 1
    C = np.full((M, N), (31 + 20) << 23, np.uint32)              # 2^20
    jobs.append(("swamping", MatmulJob(np.full((M, K), 0x01, np.uint8),
                                       np.full((K, N), 0x01, np.uint8), C, "fp8seb")))
    return jobs


# (rows, cols, ways, tree pipeline): a 1-way tree, a 7-way tree, the 24-way default.
SEB_SHAPES = [(1, 1, 1, 0), (2, 3, 7, 2), (2, 2, 24, 3)]


# Every shape on both simulators with --full; the default tier builds the 24-way array
# on Icarus only (its Verilator build is the longest, 20 s).
@pytest.mark.parametrize("sim, rows, cols, ways, pipeline", [
    pytest.param(sim, *shape, id=f"{sim}-{shape[0]}x{shape[1]}-ways{shape[2]}",
                 marks=pytest.mark.full if (sim, shape[2]) == ("verilator", 24) else ())
    for sim in SIMULATORS for shape in SEB_SHAPES])
def test_seb_array_equals_golden(sim, rows, cols, ways, pipeline, tmp_path):
    from golden.seb_matmul import seb_matmul
    jobs = seb_jobs(rows, cols, ways, np.random.default_rng(ways))
    hw = dict(rows=rows, cols=cols, ways=ways, pipeline=pipeline)
    runs = simulate_matmul([job for _, job in jobs], hw, sim, tmp_path, unit="seb_array")
    for (name, job), run in zip(jobs, runs):
        want = seb_matmul(job.A, job.B, job.C, job.bias_a, job.bias_b, ways).C
        bad = np.argwhere(run.C != want)
        assert not len(bad), (f"{name}: {len(bad)} of {want.size} differ; first C"
                              f"[{bad[0][0]}, {bad[0][1]}] rtl 0x{int(run.C[tuple(bad[0])]):08x} "
                              f"golden 0x{int(want[tuple(bad[0])]):08x}")
