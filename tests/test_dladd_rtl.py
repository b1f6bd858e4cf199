"""The DlAdd RTL against the golden ``dladd`` on both simulators: every special code
against every code, directed ties, cancellation, tiny and overflowing results, and seeded
random pairs (sim/tb/dladd_tb.py)."""

import pytest

from conftest import sweep_simulators
from hw.units.dl_add import DlAdd
from sim.lanes import LaneArray
from sim.runner import run_cocotb

# Icarus's time goes into the Python side per cycle, Verilator's into its C++ build, which
# grows with the lanes: measured, 32 and 16 lanes are the quickest.
LANES = {"icarus": 32, "verilator": 16}


# The engine's depth (hw.soc.gemm.DLADD_PIPELINE); on Icarus (Python-bound) with --full.
@pytest.mark.parametrize("sim", sweep_simulators("verilator"))
@pytest.mark.parametrize("pipeline", [4])
def test_specials_directed_and_random(sim, tmp_path, pipeline):
    lanes = LANES[sim]
    top = LaneArray(lambda: DlAdd(pipeline), lanes)
    result = run_cocotb(top, f"dladd_pipeline{pipeline}_x{lanes}", sim, "sim.tb.dladd_tb",
                        tmp_path, env={"FP8HW_HW_PARAMS": {"pipeline": pipeline},
                                       "FP8HW_LANES": str(lanes), "FP8HW_SEED": "1"})
    assert (result.tests, result.failed) == (1, 0)
