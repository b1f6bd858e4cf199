"""The quant16 RTL against the golden model: every input, both formats, both overflows."""

import pytest

from conftest import sweep_simulators
from hw.units.quant16 import Quant16
from sim.lanes import LaneArray
from sim.runner import run_cocotb

LANES = 32


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
@pytest.mark.parametrize("bias", [11, 0, 15])
def test_every_input(sim, tmp_path, bias):
    top = LaneArray(lambda: Quant16(bias), LANES)
    result = run_cocotb(top, f"quant16_bias{bias}_x{LANES}", sim, "sim.tb.quant16_tb", tmp_path,
                        env={"FP8HW_HW_PARAMS": {"bias": bias}, "FP8HW_LANES": str(LANES)})
    assert (result.tests, result.failed) == (1, 0)
