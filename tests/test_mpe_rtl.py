"""The MPE RTL against the golden model, on both simulators."""

import pytest

from conftest import sweep_simulators
from hw.units.mpe import MPE, PIPELINE_CUTS
from sim.lanes import LaneArray
from sim.runner import SIMULATORS, run_cocotb

LANES = 32


def run_lanes(sim, tmp_path, testcase=None, lanes=LANES, **params):
    params = {"bias": 11, "pipeline": 2, **params}
    top = LaneArray(lambda: MPE(**params), lanes)
    name = "mpe_" + "_".join(f"{k}{v}" for k, v in params.items()) + f"_x{lanes}"
    return run_cocotb(top, name, sim, "sim.tb.mpe_tb", tmp_path, testcase=testcase,
                      env={"FP8HW_HW_PARAMS": params, "FP8HW_LANES": str(lanes)})


@pytest.mark.parametrize("sim", sweep_simulators("verilator"))
@pytest.mark.parametrize("multiplier, pipeline", [
    ("lut", 2), pytest.param("dsp", 8, marks=pytest.mark.full)])
def test_every_pair_every_mode(sim, tmp_path, multiplier, pipeline):
    """fp8: 65,536 pairs x 4 format pairs x 2 of 6 kinds of accumulator; int4/int2: every
    pair (FP8HW_FULL_SWEEP=1: every kind with every pair). The DSP products (the packed
    INT lanes) at the depth the ULX3S build uses, in the full tier (the quick tier has
    their random and directed rows)."""
    result = run_lanes(sim, tmp_path, multiplier=multiplier, pipeline=pipeline)
    assert (result.tests, result.failed) == (3, 0)


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
@pytest.mark.parametrize("bias", [0, 15])
def test_other_biases_random(sim, tmp_path, bias):
    result = run_lanes(sim, tmp_path, testcase="random_mixed_modes", bias=bias, pipeline=1,
                       lanes=8)
    assert (result.tests, result.failed) == (1, 0)


# Every depth on Icarus; on Verilator (a C++ build each) the shallowest and the deepest,
# and the others in the full tier.
@pytest.mark.parametrize("sim, pipeline", [
    pytest.param(sim, p, id=f"{sim}-{p}", marks=pytest.mark.full if sim == "verilator" and p
                 not in (min(PIPELINE_CUTS), max(PIPELINE_CUTS)) else ())
    for sim in SIMULATORS for p in sorted(PIPELINE_CUTS)])
def test_valid_toggling_stream(sim, tmp_path, pipeline):
    params = {"bias": 11, "pipeline": pipeline}
    result = run_cocotb(MPE(**params), f"mpe_bias11_pipeline{pipeline}", sim,
                        "sim.tb.mpe_stream_tb", tmp_path, env={"FP8HW_HW_PARAMS": params})
    assert (result.tests, result.failed) == (1, 0)


@pytest.mark.parametrize("params, message", [
    ({"bias": 16}, "MPE: parameter bias=16 is outside the allowed range 0..15"),
    ({"pipeline": 9}, "MPE: parameter pipeline=9 is outside the allowed range 0..8"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        MPE(**params)


@pytest.mark.parametrize("params, message", [
    ({"bias": "11"}, "MPE: parameter bias must be an integer in 0..15, got '11'"),
    ({"pipeline": 2.0}, "MPE: parameter pipeline must be an integer in 0..8, got 2.0"),
])
def test_parameters_of_the_wrong_type(params, message):
    with pytest.raises(TypeError, match=message):
        MPE(**params)
