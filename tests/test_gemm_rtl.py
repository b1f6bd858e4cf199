"""The GEMM engine (``hw.soc.gemm``) in RTL on both simulators: whole GEMMs through its
host byte port against the golden model, and refused settings (sim/tb/gemm_tb.py)."""

import json

import pytest

from hw.soc.gemm import GemmEngine
from sim.runner import default_cache_dir, run_cocotb

# 2x2 and 4x4 arrays with small buffers (the largest M, K and N are tested, so the
# depths set the run time); pipeline 1 and 2 put different latencies under the scoreboard.
# The 2x2 has single-port A and B buffers (the iCE40 UP5K's SPRAM).
CONFIGS = [dict(rows=2, pipeline=2, a_words=32, b_words=16, acc_words=16, chunking=1,
                spram=1),
           dict(rows=4, pipeline=1, a_words=64, b_words=24, acc_words=20, chunking=1,
                spram=0)]
# The FP8-SEB engine: a 2x2 array of 5-way trees.
SEB_CONFIG = dict(rows=2, pipeline=1, a_words=32, b_words=16, acc_words=16, chunking=0,
                  spram=0, engine="seb", ways=5, room=1)


# The 2x2 on both simulators; the 4x4 on Verilator, and on Icarus too with --full.
@pytest.mark.parametrize("sim, params", [
    pytest.param(sim, params, id=f"{sim}-{params['rows']}x{params['rows']}",
                 marks=pytest.mark.full
                 if (sim, params["rows"]) in (("icarus", 4), ("verilator", 2)) else ())
    for params in CONFIGS for sim in ("icarus", "verilator")] + [
    pytest.param(sim, SEB_CONFIG, id=f"{sim}-seb") for sim in ("icarus", "verilator")])
def test_gemm_engine(sim, params, tmp_path):
    top = GemmEngine(params["rows"], params["rows"], pipeline=params["pipeline"],
                     a_words=params["a_words"], b_words=params["b_words"],
                     acc_words=params["acc_words"], chunking=params["chunking"],
                     spram=params["spram"], engine=params.get("engine", "mpe"),
                     ways=params.get("ways", 24), room=params.get("room", 1))
    name = "gemm_engine_" + "_".join(f"{k}{v}" for k, v in params.items())
    report = tmp_path / "cycles.json"
    result = run_cocotb(top, name, sim, "sim.tb.gemm_tb", tmp_path, quiet=True,
                        cache_dir=default_cache_dir(), cxx_opt="-O0",
                        env={"FP8HW_HW_PARAMS": params, "FP8HW_GEMM_REPORT": str(report)})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"
    for row in json.loads(report.read_text()):
        assert row["cycles"] >= row["ideal"], row
