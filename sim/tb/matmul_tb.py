"""cocotb test: GEMMs through a systolic array top, one after the other on one array.

Environment: FP8HW_HW_PARAMS (JSON: rows, cols, dataflow, bias, pipeline for the MPE
array; rows, cols, ways, pipeline for the FP8-SEB array) and FP8HW_MATMUL_JOBS, a JSON
file with a list of jobs: ``input`` (npz with A, B and optionally C), ``output`` (npz
written with C, cycles, stalls), ``mode``, ``fmt_a``, ``fmt_b`` (the MPE array) or
``bias_a``, ``bias_b`` (mode fp8seb), and optional ``seed``, ``idle_in``, ``busy_out``
for random handshakes.
"""

import json
import os

import cocotb
import numpy as np

from golden.formats import FP30
from hw.schedule import GemmSchedule, chunk_operands
from sim.array_driver import mpe_settings, reset_array, run_gemm

HW = json.loads(os.environ["FP8HW_HW_PARAMS"])
SEB = "ways" in HW                       # the FP8-SEB array (weight-stationary)


@cocotb.test()
async def gemms(dut):
    with open(os.environ["FP8HW_MATMUL_JOBS"]) as f:
        jobs = json.load(f)
    await reset_array(dut, {"bias_a": 0, "bias_b": 0} if SEB else None)
    for job in jobs:
        with np.load(job["input"], allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        A, B = arrays["A"], arrays["B"]
        if SEB:                          # chunks of ``ways`` codes, one a PE row
            A, B = chunk_operands(A, B, HW["ways"])
            settings = {"bias_a": job["bias_a"], "bias_b": job["bias_b"]}
        else:
            settings = mpe_settings(job["mode"], job["fmt_a"], job["fmt_b"])
        schedule = GemmSchedule(A.shape[0], A.shape[1], B.shape[1], HW["rows"], HW["cols"],
                                "ws" if SEB else HW["dataflow"], HW["pipeline"])
        rng = np.random.default_rng(job.get("seed", 1))
        C, stats = await run_gemm(dut, schedule, A, B, arrays.get("C"), settings=settings,
                                  sum_width=FP30.width if SEB else 32, rng=rng,
                                  idle_in=job.get("idle_in", 0.0),
                                  busy_out=job.get("busy_out", 0.0))
        tmp = job["output"] + ".tmp.npz"
        np.savez(tmp, C=C, cycles=stats.cycles, stalls=stats.stall_cycles)
        os.replace(tmp, job["output"])
