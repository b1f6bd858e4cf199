"""The board system (UART link, buffers, controller, ws array) end to end in RTL."""

from hw.soc.system import ArraySystem
from sim.runner import default_cache_dir, run_cocotb


def test_system(sim, tmp_path):
    # 3 rows: A's buffer rows are padded to 4 bytes (the simulated board tests 2x2).
    params = dict(rows=3, cols=2, max_m=12, divisor=4, timeout_bits=40)
    top = ArraySystem(params["rows"], params["cols"], max_m=params["max_m"],
                      divisor=params["divisor"], timeout_bits=params["timeout_bits"])
    result = run_cocotb(top, "array_system_3x2", sim, "sim.tb.system_tb", tmp_path,
                        quiet=True, cache_dir=default_cache_dir(), cxx_opt="-O0",
                        env={"FP8HW_HW_PARAMS": params})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"
