"""Runs GEMM jobs through the systolic array's RTL (``sim.tb.matmul_tb``) and reads back C."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.registry import get_unit
from sim.runner import SimError, default_cache_dir, run_cocotb


@dataclass
class MatmulJob:
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray | None = None
    mode: str = "fp8"
    fmt_a: str = "e4m3"
    fmt_b: str = "e4m3"
    bias_a: int = 0                  # mode fp8seb (the FP8-SEB array)
    bias_b: int = 0
    seed: int = 1
    idle_in: float = 0.0
    busy_out: float = 0.0


@dataclass
class MatmulResult:
    C: np.ndarray
    cycles: int
    stalls: int


def simulate_matmul(jobs: list[MatmulJob], hw_params: dict, sim: str, build_dir,
                    quiet: bool = True, waves: bool | None = None,
                    unit: str = "matmul") -> list[MatmulResult]:
    """Run ``jobs`` in order on one simulated array built with ``hw_params``: the MPE array
    (unit ``matmul``: rows, cols, dataflow, bias, pipeline) or the FP8-SEB array (unit
    ``seb_array``: rows, cols, ways, pipeline; jobs in mode fp8seb)."""
    spec = get_unit(unit)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    listing = []
    for n, job in enumerate(jobs):
        arrays = {"A": job.A, "B": job.B}
        if job.C is not None:
            arrays["C"] = job.C
        vin, vout = build_dir / f"job{n}_in.npz", build_dir / f"job{n}_out.npz"
        np.savez(vin, **arrays)
        if vout.exists():
            vout.unlink()
        listing.append({"input": str(vin.resolve()), "output": str(vout.resolve()),
                        "mode": job.mode, "fmt_a": job.fmt_a, "fmt_b": job.fmt_b,
                        "bias_a": job.bias_a, "bias_b": job.bias_b,
                        "seed": job.seed, "idle_in": job.idle_in, "busy_out": job.busy_out})
    jobs_file = build_dir / "matmul_jobs.json"
    jobs_file.write_text(json.dumps(listing))
    result = run_cocotb(spec.elaborate(hw_params), spec.module_name(hw_params), sim,
                        "sim.tb.matmul_tb", build_dir, quiet=quiet,
                        cache_dir=default_cache_dir(), cxx_opt="-O0", waves=waves,
                        env={"FP8HW_HW_PARAMS": hw_params,
                             "FP8HW_MATMUL_JOBS": str(jobs_file.resolve())})
    out = []
    for entry in listing:
        path = Path(entry["output"])
        if not path.is_file():
            raise SimError(f"{sim}: the matmul run failed", result.log)
        with np.load(path) as f:
            out.append(MatmulResult(f["C"], int(f["cycles"]), int(f["stalls"])))
    if not result.ok:
        raise SimError(f"{sim}: the matmul run failed", result.log)
    return out
