"""``python -m sim.bench_array``: measured cycles and utilization of the systolic arrays.

Runs fp8 GEMMs through the RTL of each dataflow (no idle cycles, results always taken)
and prints a Markdown table: cycles from the first operand taken to the last result
taken, cycles per tile (os: a tile of L*rows x cols outputs; ws: a pass of rows x cols
weights over all M rows), and utilization = M*K*N MACs / (cycles * rows * cols).
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from fp8hw.arrays import COLS, DATAFLOW, ROWS
from fp8hw.cli import ArgumentParser, UsageError, run_command
from fp8hw.errors import Fp8hwError
from golden.matmul import matmul
from golden.params import BIAS
from hw.units.mpe import PIPELINE
from hw.schedule import GemmSchedule
from sim.matmul import MatmulJob, simulate_matmul
from sim.runner import SIMULATORS


class MismatchError(Fp8hwError):
    """The RTL's C differs from the golden model's."""


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--gemm needs MxKxN with positive integers, got {text!r}")
    return tuple(map(int, parts))


def _main(argv=None, prog="python -m sim.bench_array") -> int:
    p = ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--sim", default="verilator", choices=SIMULATORS)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--cols", type=int, default=8)
    p.add_argument("--pipeline", type=int, default=2)
    p.add_argument("--gemm", action="append", metavar="MxKxN",
                   help="GEMM shapes (default: one os tile at K=256, 64x256x16, 64x32x16)")
    args = p.parse_args(argv)
    R = ROWS.check(args.rows, "--rows")
    C = COLS.check(args.cols, "--cols")
    L = max(PIPELINE.check(args.pipeline, "--pipeline"), 1)
    shapes = [_shape(g) for g in args.gemm or
              [f"{L * R}x256x{C}", "64x256x16", f"64x{4 * max(R, C)}x16"]]
    rng = np.random.default_rng(1)
    print("| dataflow | GEMM M x K x N | tiles | cycles | cycles per tile | utilization |")
    print("|---|---|---|---|---|---|")
    for dataflow in DATAFLOW.choices:
        jobs = []
        for M, K, N in shapes:
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            jobs.append(MatmulJob(A, B))
        hw = dict(rows=R, cols=C, dataflow=dataflow, bias=BIAS.default, pipeline=args.pipeline)
        start = time.time()
        with tempfile.TemporaryDirectory(prefix="fp8hw-bench-") as tmp:
            runs = simulate_matmul(jobs, hw, args.sim, tmp)
        for (M, K, N), job, run in zip(shapes, jobs, runs):
            if not np.array_equal(run.C, matmul(job.A, job.B)):
                raise MismatchError(f"{dataflow} {M}x{K}x{N} differs from the golden matmul")
            tiles = len(GemmSchedule(M, K, N, R, C, dataflow, args.pipeline).tiles)
            util = M * K * N / (run.cycles * R * C)
            print(f"| {dataflow} | {M} x {K} x {N} | {tiles} | {run.cycles} | "
                  f"{run.cycles / tiles:.1f} | {100 * util:.1f}% |")
        print(f"<!-- {dataflow}: {R}x{C} array, MPE pipeline {args.pipeline}, {args.sim}, "
              f"{time.time() - start:.0f} s -->")
    return 0


def main(argv=None, prog="python -m sim.bench_array") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
