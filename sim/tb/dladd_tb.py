"""dladd testbench on a ``LaneArray``: both zeros and both NaN/Inf codes against every one
of the 65,536 codes (the zeros as ``a``, NaN/Inf as ``b``), the directed pairs of
``sim.dladd_vectors`` (every special and edge code against every exponent in both
orders, ties at every exponent distance, cancellation, tiny and overflowing results) and
seeded random pairs, bit-exact against the golden ``dladd``. Environment: FP8HW_HW_PARAMS (JSON: pipeline), FP8HW_LANES,
FP8HW_SEED."""

import json
import os

import cocotb
import numpy as np

from golden import DLFLOAT16, dladd
from hw.units.dl_add import DlAdd
from sim.checks import compare, hex_and_value
from sim.dladd_vectors import NAN, SIGN, directed_pairs
from sim.lanes import LaneArray, drive_rows

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
LANES = int(os.environ.get("FP8HW_LANES", "32"))
SEED = int(os.environ.get("FP8HW_SEED", "1"))
RANDOM_PAIRS = 100_000


@cocotb.test()
async def specials_directed_and_random(dut):
    top = LaneArray(lambda: DlAdd(**PARAMS), LANES)
    every = np.arange(1 << 16, dtype=np.int64)
    zeros, nans = np.array([0, SIGN]), np.array([NAN, NAN | SIGN])
    rng = np.random.default_rng(SEED)
    directed = directed_pairs(SEED, per_case=4)
    x = np.concatenate([np.repeat(zeros, len(every)), np.tile(every, len(nans)),
                        directed[:, 0], rng.integers(0, 1 << 16, RANDOM_PAIRS)])
    y = np.concatenate([np.tile(every, len(zeros)), np.repeat(nans, len(every)),
                        directed[:, 1], rng.integers(0, 1 << 16, RANDOM_PAIRS)])
    got = (await drive_rows(dut, top.ports, LANES, {"a": x, "b": y}, ["y"],
                            latency=top.latency))["y"]
    want = dladd(x, y)

    def describe(i):
        return (f"pipeline={PARAMS.get('pipeline')} seed={SEED} "
                f"a={hex_and_value(int(x[i]), DLFLOAT16, digits=4)} "
                f"b={hex_and_value(int(y[i]), DLFLOAT16, digits=4)} "
                f"rtl={hex_and_value(int(got[i]), DLFLOAT16, digits=4)} "
                f"golden={hex_and_value(int(want[i]), DLFLOAT16, digits=4)}")

    compare(dut._log, "dladd", got.astype(np.uint16), want, describe)
