"""Yosys (synth_ecp5, synth_ice40) accepts every unit: no latches, no check failures."""

import pytest

from conftest import assert_one_line_error, run_cli
from hw.synth import FAMILIES, synthesize_unit


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("unit, params, registers", [
    ("convert", {}, False),
    ("quant16", {}, False),
    ("mpe", {"pipeline": "0"}, False),
    ("mpe", {"pipeline": "3"}, True),
    ("quant30", {}, True),
    ("dladd", {"pipeline": "0"}, False),
    ("dladd", {"pipeline": "2"}, True),
    ("fmatree", {"ways": "4", "pipeline": "0"}, False),
    ("fmatree", {"ways": "24"}, True),
    ("dot", {"ways": "4"}, True),
    ("matmul", {"rows": "2", "cols": "2"}, True),
    ("matmul", {"rows": "2", "cols": "2", "dataflow": "ws"}, True),
])
def test_synthesizes_cleanly(family, unit, params, registers):
    _, report = synthesize_unit(unit, params, family)
    assert report.luts > 0
    assert report.dsps == 0          # multipliers are built from LUTs on purpose
    assert (report.ffs > 0) == registers


def test_synth_cli_errors():
    assert_one_line_error(run_cli("hw.synth", "--unit", "nope"), "unknown unit 'nope'")
    assert_one_line_error(run_cli("hw.synth", "--unit", "mpe", "--param", "bias=99"),
                          "outside the allowed range 0..15")
