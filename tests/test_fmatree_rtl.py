"""The FMA tree, quant30 and the dot-product engine against the golden model, on both
simulators."""

import pytest

from conftest import sweep_simulators
from golden.fmatree import tree_width
from hw.units.dot_engine import DotEngine
from hw.units.fma_tree import PIPELINE, FmaTree
from hw.units.quant30 import Quant30
from sim.lanes import LaneArray
from sim.runner import SIMULATORS, run_cocotb

TREE_LANES = 4


def run_tree(sim, tmp_path, testcase=None, **params):
    top = LaneArray(lambda: FmaTree(**params), TREE_LANES)
    name = (f"fmatree_ways{params['ways']}_pipeline{params['pipeline']}"
            f"_{params.get('multiplier', 'lut')}_x{TREE_LANES}")
    return run_cocotb(top, name, sim, "sim.tb.fmatree_tb", tmp_path, testcase=testcase,
                      env={"FP8HW_HW_PARAMS": params, "FP8HW_LANES": str(TREE_LANES)})


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
def test_tree_24_ways(sim, tmp_path):
    """Every pair alone at four bias pairs, random full vectors, directed cases."""
    result = run_tree(sim, tmp_path, ways=24, pipeline=PIPELINE.default)
    assert (result.tests, result.failed) == (3, 0)


OTHER_SIZES = [(1, 14, "lut"), (7, 0, "lut"), (2, 5, "lut"), (24, 3, "lut"), (5, 12, "dsp")]


# The 24-way tree at depth 3 on Verilator (25 s of C++ build) is in the full tier only.
@pytest.mark.parametrize("sim, ways, pipeline, multiplier", [
    pytest.param(sim, *case, id="-".join(map(str, (sim, *case))),
                 marks=pytest.mark.full if (sim, case[0]) == ("verilator", 24) else ())
    for sim in SIMULATORS for case in OTHER_SIZES])
def test_tree_other_sizes(sim, tmp_path, ways, pipeline, multiplier):
    result = run_tree(sim, tmp_path, testcase="random_full_vectors,directed_cases",
                      ways=ways, pipeline=pipeline, multiplier=multiplier)
    assert (result.tests, result.failed) == (2, 0)


def test_quant30_quantizer(sim, tmp_path):
    top = LaneArray(lambda: Quant30(), 16)
    result = run_cocotb(top, "quant30_room1_x16", sim, "sim.tb.quant30_tb", tmp_path,
                        testcase="quantizer_random_and_directed",
                        env={"FP8HW_HW_PARAMS": {"room": 1}, "FP8HW_LANES": "16"})
    assert (result.tests, result.failed) == (1, 0)


@pytest.mark.parametrize("room", [1, 0, 3])
def test_quant30_tracker(sim, tmp_path, room):
    result = run_cocotb(Quant30(room=room), f"quant30_room{room}", sim, "sim.tb.quant30_tb",
                        tmp_path, testcase="tracker_over_tensors",
                        env={"FP8HW_HW_PARAMS": {"room": room}})
    assert (result.tests, result.failed) == (1, 0)


@pytest.mark.parametrize("ways, pipeline", [(24, 3), (5, 0), (24, 1)])
def test_dot_engine(sim, tmp_path, ways, pipeline):
    params = {"ways": ways, "pipeline": pipeline, "room": 1}
    result = run_cocotb(DotEngine(**params), f"dot_ways{ways}_pipeline{pipeline}", sim,
                        "sim.tb.dot_tb", tmp_path, env={"FP8HW_HW_PARAMS": params})
    assert (result.tests, result.failed) == (1, 0)


def test_tree_width():
    assert tree_width(24) == 42 == FmaTree(24).tree_width
    assert tree_width(1) == 37


@pytest.mark.parametrize("make, message", [
    (lambda: FmaTree(ways=0), "parameter ways=0 is outside the allowed range 1..1024"),
    (lambda: FmaTree(pipeline=15), "parameter pipeline=15 is outside the allowed range 0..14"),
    (lambda: FmaTree(multiplier="dsp48"),
     "parameter multiplier must be one of lut, dsp, got 'dsp48'"),
    (lambda: DotEngine(pipeline=4), "parameter pipeline=4 is outside the allowed range 0..3"),
    (lambda: Quant30(room=16), "parameter room=16 is outside the allowed range 0..15"),
])
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: FmaTree(ways=2.5), "parameter ways must be an integer in 1..1024, got 2.5"),
    (lambda: DotEngine(room="1"), "parameter room must be an integer in 0..15, got '1'"),
    (lambda: Quant30(room=True), "parameter room must be an integer in 0..15, got True"),
])
def test_parameters_of_the_wrong_type(make, message):
    with pytest.raises(TypeError, match=message):
        make()
