"""cocotb test: GEMMs through a systolic array top, one after the other on one array.

Environment: FP8HW_HW_PARAMS (JSON: rows, cols, dataflow, bias, pipeline) and
FP8HW_MATMUL_JOBS, a JSON file with a list of jobs: ``input`` (npz with A, B and
optionally C), ``output`` (npz written with C, cycles, stalls), ``mode``, ``fmt_a``,
``fmt_b``, and optional ``seed``, ``idle_in``, ``busy_out`` for random handshakes.
"""

import json
import os

import cocotb
import numpy as np

from hw.schedule import GemmSchedule
from sim.array_driver import reset_array, run_gemm

HW = json.loads(os.environ["FP8HW_HW_PARAMS"])


@cocotb.test()
async def gemms(dut):
    with open(os.environ["FP8HW_MATMUL_JOBS"]) as f:
        jobs = json.load(f)
    await reset_array(dut)
    for job in jobs:
        with np.load(job["input"], allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        A, B = arrays["A"], arrays["B"]
        schedule = GemmSchedule(A.shape[0], A.shape[1], B.shape[1], HW["rows"], HW["cols"],
                                HW["dataflow"], HW["pipeline"])
        rng = np.random.default_rng(job.get("seed", 1))
        C, stats = await run_gemm(dut, schedule, A, B, arrays.get("C"), mode=job["mode"],
                                  fmt_a=job["fmt_a"], fmt_b=job["fmt_b"], rng=rng,
                                  idle_in=job.get("idle_in", 0.0),
                                  busy_out=job.get("busy_out", 0.0))
        tmp = job["output"] + ".tmp.npz"
        np.savez(tmp, C=C, cycles=stats.cycles, stalls=stats.stall_cycles)
        os.replace(tmp, job["output"])
