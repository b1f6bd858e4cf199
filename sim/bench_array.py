"""``python -m sim.bench_array``: measured cycles and utilization of the systolic arrays.

Runs fp8 GEMMs through the RTL of each dataflow (no idle cycles, results always taken)
and prints a Markdown table: cycles from the first operand taken to the last result
taken, cycles per tile (os: a tile of L*rows x cols outputs; ws: a pass of rows x cols
weights over all M rows), and utilization = M*K*N MACs / (cycles * rows * cols).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from golden.matmul import matmul
from hw.schedule import GemmSchedule
from sim.matmul import MatmulJob, simulate_matmul
from sim.runner import SIMULATORS, SimError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench_array", description=__doc__.split("\n")[0])
    p.add_argument("--sim", default="verilator", choices=SIMULATORS)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--cols", type=int, default=8)
    p.add_argument("--pipeline", type=int, default=2)
    p.add_argument("--gemm", action="append", metavar="MxKxN",
                   help="GEMM shapes (default: one os tile at K=256, 64x256x16, 64x32x16)")
    args = p.parse_args(argv)
    R, C = args.rows, args.cols
    L = max(args.pipeline, 1)
    shapes = [tuple(map(int, g.split("x"))) for g in args.gemm or
              [f"{L * R}x256x{C}", "64x256x16", f"64x{4 * max(R, C)}x16"]]
    rng = np.random.default_rng(1)
    print("| dataflow | GEMM M x K x N | tiles | cycles | cycles per tile | utilization |")
    print("|---|---|---|---|---|---|")
    for dataflow in ("os", "ws"):
        jobs = []
        for M, K, N in shapes:
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            jobs.append(MatmulJob(A, B))
        hw = dict(rows=R, cols=C, dataflow=dataflow, bias=11, pipeline=args.pipeline)
        start = time.time()
        with tempfile.TemporaryDirectory(prefix="fp8hw-bench-") as tmp:
            try:
                runs = simulate_matmul(jobs, hw, args.sim, tmp)
            except SimError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        for (M, K, N), job, run in zip(shapes, jobs, runs):
            if not np.array_equal(run.C, matmul(job.A, job.B)):
                print(f"error: {dataflow} {M}x{K}x{N} differs from the golden matmul",
                      file=sys.stderr)
                return 1
            tiles = len(GemmSchedule(M, K, N, R, C, dataflow, args.pipeline).tiles)
            util = M * K * N / (run.cycles * R * C)
            print(f"| {dataflow} | {M} x {K} x {N} | {tiles} | {run.cycles} | "
                  f"{run.cycles / tiles:.1f} | {100 * util:.1f}% |")
        print(f"<!-- {dataflow}: {R}x{C} array, MPE pipeline {args.pipeline}, {args.sim}, "
              f"{time.time() - start:.0f} s -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
