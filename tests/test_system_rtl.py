"""The board system (UART link, buffers, controller, ws array) end to end in RTL."""

import pytest

from conftest import sweep_simulators
from hw.soc.system import ArraySystem
from sim.runner import default_cache_dir, run_cocotb


# One simulator in the default tier (the board-sim and link tests run the same system on
# both), the other in the full tier.
@pytest.mark.parametrize("sim", sweep_simulators("verilator"))
def test_system(sim, tmp_path):
    # 3 rows: buffer words are padded to 4 and 16 bytes (the simulated board tests 2x2).
    params = dict(rows=3, cols=3, divisor=4, timeout_bits=40, a_words=256, b_words=64,
                  acc_words=96)
    top = ArraySystem(**params)
    result = run_cocotb(top, "array_system_3x3", sim, "sim.tb.system_tb", tmp_path,
                        quiet=True, cache_dir=default_cache_dir(), cxx_opt="-O0",
                        env={"FP8HW_HW_PARAMS": params})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"
