"""``python -m golden.bench``: the golden model's speed as an emulator, on one core.

Each GEMM runs at M = K = N = ``--size`` (256 by default) on seeded random tensors of
real-valued data (normal, quantized to each format), next to numpy's float32 matmul in
the same process, so that a row's ratio to float32 holds on a shared, noisy machine.
Rates are the best of ``--repeat`` runs, in million MACs (or additions) a second. The
definition rows (``fold_mpe``: ``mpe`` one k at a time; ``fmatree`` one chunk at a
time, as the golden model ran before its fast path) run on fewer rows of A (the rate
does not depend on M) to keep the benchmark short.

BLAS and numpy are held to one thread: the command starts itself again with
``OPENBLAS_NUM_THREADS=1`` (and the other libraries' switches) when they are not set.
"""

from __future__ import annotations

import os
import sys
import time

_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread_or_restart(argv) -> None:
    if all(os.environ.get(name) == "1" for name in _ONE_THREAD):
        return
    env = dict(os.environ, **{name: "1" for name in _ONE_THREAD})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "golden.bench", *argv], env)


def _best_seconds(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure(size: int = 256, repeat: int = 3, seed: int = 1) -> list[tuple[str, float]]:
    """[(row, million operations a second)], float32 matmul first."""
    import numpy as np

    from .dladd import dladd, dladd_exact
    from .codec import encode
    from .fmatree import fmatree
    from .matmul import fold_mpe, matmul
    from .seb_matmul import seb_matmul

    rng = np.random.default_rng(seed)
    n = size
    x, w = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    A, B = encode(x, "e4m3", bias=11), encode(w, "e4m3", bias=11)
    A5 = encode(x, "e5m2")
    ints_a = rng.integers(0, 256, (n, n)).astype(np.uint8)
    ints_b = rng.integers(0, 256, (n, n)).astype(np.uint8)
    seb_a, seb_b = encode(x, "fp8seb", bias=0), encode(w, "fp8seb", bias=0)
    short = max(1, n // 16)                   # rows of A for the definitions
    sums_x = encode(x.ravel() * 8, "dlfloat16", rounding="rnu")
    sums_y = encode(w.ravel() * 8, "dlfloat16", rounding="rnu")
    macs = n ** 3

    def rate(operations, run):
        return operations / _best_seconds(run, repeat) / 1e6

    def seb_by_fmatree():
        acc = np.zeros(short * n, np.int64)
        for q in range(0, n, 24):
            a = np.pad(seb_a[:short, q:q + 24], ((0, 0), (0, max(0, q + 24 - n))))
            b = np.pad(seb_b[q:q + 24], ((0, max(0, q + 24 - n)), (0, 0)))
            acc = fmatree(acc, np.repeat(a, n, axis=0), np.tile(b.T, (short, 1)), 0, 0)

    xf, wf = x.astype(np.float32), w.astype(np.float32)
    return [
        ("numpy float32 matmul (BLAS)", rate(macs, lambda: xf @ wf)),
        ("fp8 e4m3 x e4m3, dlfloat16 sums", rate(macs, lambda: matmul(A, B))),
        ("fp8 e5m2 x e4m3, chunk 64", rate(macs, lambda: matmul(A5, B, fmt_a="e5m2",
                                                                 chunk=64))),
        ("fp8 by the definition (`fold_mpe`, before)",
         rate(short * n * n, lambda: fold_mpe(A[:short], B, np.zeros((short, n), np.int64)))),
        ("int4 (2 MACs a byte pair)", rate(2 * macs, lambda: matmul(ints_a, ints_b, mode="int4"))),
        ("int2 (4 MACs a byte pair)", rate(4 * macs, lambda: matmul(ints_a, ints_b, mode="int2"))),
        ("fp8seb, 24-way trees, fp30 sums", rate(macs, lambda: seb_matmul(seb_a, seb_b))),
        ("fp8seb by `fmatree` chunk by chunk (before)", rate(short * n * n, seb_by_fmatree)),
        ("dladd (additions)", rate(n * n, lambda: dladd(sums_x, sums_y))),
        ("dladd by exact integers (before)", rate(n * n, lambda: dladd_exact(sums_x, sums_y))),
    ]


def table(rows, size: int) -> str:
    reference = rows[0][1]
    lines = [f"| golden model, {size}x{size}x{size}, one core | M ops/s | of float32 matmul |",
             "|---|---|---|"]
    for name, rate in rows:
        lines.append(f"| {name} | {rate:,.1f} | {rate / reference:.2%} |")
    return "\n".join(lines)


def main(argv=None, prog: str = "python -m golden.bench") -> int:
    from fp8hw.cli import ArgumentParser, run_command

    argv = list(sys.argv[1:] if argv is None else argv)

    def run(args):
        parser = ArgumentParser(prog=prog,
                                description="The golden model's GEMM speed on one core, "
                                            "against numpy's float32 matmul.")
        parser.add_argument("--size", type=int, default=256, help="M = K = N (default 256)")
        parser.add_argument("--repeat", type=int, default=3,
                            help="runs of each row; the best counts (default 3)")
        options = parser.parse_args(args)
        if not 1 <= options.size <= 4096:
            parser.error(f"--size must be 1..4096, got {options.size}")
        if not 1 <= options.repeat <= 100:
            parser.error(f"--repeat must be 1..100, got {options.repeat}")
        _one_thread_or_restart(args)
        print(table(measure(options.size, options.repeat), options.size))
        return 0

    return run_command(run, argv)


if __name__ == "__main__":
    sys.exit(main())
