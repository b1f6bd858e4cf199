"""quant16 testbench on a ``LaneArray``: every one of the 65,536 inputs, both target
formats, both overflow actions. Environment: FP8HW_HW_PARAMS (JSON: bias), FP8HW_LANES."""

import json
import os

import cocotb
import numpy as np

from fp8hw.enums import Overflow, SourceFormat
from golden import DLFLOAT16
from golden.quant16 import quant16
from hw.units.quant16 import Quant16
from sim.checks import compare, hex_and_value
from sim.lanes import LaneArray, drive_rows

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
LANES = int(os.environ.get("FP8HW_LANES", "32"))


@cocotb.test()
async def every_input_both_formats_both_overflows(dut):
    bias = PARAMS["bias"]
    top = LaneArray(lambda: Quant16(**PARAMS), LANES)
    x_all = np.arange(1 << 16, dtype=np.uint16)
    cases = [(f, o) for f in ("e4m3", "e5m2") for o in ("sat", "nan")]
    x = np.tile(x_all, len(cases))
    fmt = np.repeat([f for f, _ in cases], len(x_all))
    ovf = np.repeat([o for _, o in cases], len(x_all))
    inputs = {"x": x,
              "fmt": np.array([SourceFormat.from_label(f) for f, _ in cases]).repeat(len(x_all)),
              "overflow": np.array([Overflow.from_label(o) for _, o in cases]).repeat(len(x_all))}
    got = (await drive_rows(dut, top.ports, LANES, inputs, ["y"], latency=top.latency,
                            valid=None))["y"]
    want = np.concatenate([quant16(x_all, f, bias, o) for f, o in cases])

    def describe(i):
        target_bias = bias if fmt[i] == "e4m3" else None
        return (f"fmt={fmt[i]} overflow={ovf[i]} bias={bias} "
                f"x={hex_and_value(int(x[i]), DLFLOAT16, digits=4)} "
                f"rtl={hex_and_value(int(got[i]), fmt[i], target_bias)} "
                f"golden={hex_and_value(int(want[i]), fmt[i], target_bias)}")

    compare(dut._log, "quant16 every input", got.astype(np.uint8), want, describe)
