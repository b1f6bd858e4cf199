"""cocotb test that runs a vector file through the unit under test.

Environment: FP8HW_UNIT, FP8HW_PARAMS (JSON), FP8HW_VECTORS_IN, FP8HW_VECTORS_OUT.
"""

import json
import os

import cocotb
import numpy as np

from sim.drivers import VECTOR_DRIVERS


@cocotb.test()
async def run_vectors(dut):
    unit = os.environ["FP8HW_UNIT"]
    params = json.loads(os.environ["FP8HW_PARAMS"])
    with np.load(os.environ["FP8HW_VECTORS_IN"], allow_pickle=False) as f:
        inputs = {name: f[name] for name in f.files}
    outputs = await VECTOR_DRIVERS[unit](dut, inputs, params)
    np.savez(os.environ["FP8HW_VECTORS_OUT"], **outputs)
