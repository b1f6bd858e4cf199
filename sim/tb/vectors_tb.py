"""cocotb test that runs a vector file through a ``LaneArray`` of the unit under test.

Environment: FP8HW_UNIT, FP8HW_PARAMS (JSON: run-time parameters), FP8HW_HW_PARAMS
(JSON: generator parameters), FP8HW_LANES, FP8HW_VECTORS_IN, FP8HW_VECTORS_OUT.
"""

import json
import os

import cocotb
import numpy as np

from hw.registry import get_unit
from sim.drivers import VECTOR_PORTS
from sim.lanes import LaneArray, drive_rows


@cocotb.test()
async def run_vectors(dut):
    unit = os.environ["FP8HW_UNIT"]
    params = json.loads(os.environ["FP8HW_PARAMS"])
    hw_params = json.loads(os.environ["FP8HW_HW_PARAMS"])
    lanes = int(os.environ["FP8HW_LANES"])
    spec = get_unit(unit)
    top = LaneArray(lambda: spec.elaborate(hw_params), lanes)
    with np.load(os.environ["FP8HW_VECTORS_IN"], allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    ports = VECTOR_PORTS[unit]
    got = await drive_rows(dut, top.ports, lanes, ports.inputs(arrays, params),
                           list(ports.outputs), latency=top.latency,
                           valid="valid_in" if "valid_in" in top.ports else None)
    outputs = {name: got[port].astype(dtype) for port, (name, dtype) in ports.outputs.items()}
    np.savez(os.environ["FP8HW_VECTORS_OUT"], **outputs)
