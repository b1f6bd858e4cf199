"""python -m hw.bench: the harness, the reading of a failed nextpnr run, the table, one
small design through Yosys and nextpnr, and a small sweep on a local Dask cluster (fast
checks only; the full sweep is run by hand)."""

import re

import pytest

from conftest import assert_one_line_error, run_cli
from boards import toolchain
from hw.bench import BenchError
from hw.bench.configs import (CONFIGS, DEEPEST, Config, harness_design, resolve_config,
                              select_configs, unit_design)
from hw.bench.harness import module_ports
from hw.bench.measure import (DEVICES, Result, Routing, Synthesis, combine,
                              explain_nextpnr_failure, place_and_route, run_design)
from hw.bench.report import format_table
from hw.registry import get_unit

# What nextpnr-ice40 prints for a design larger than the UP5K (cut down).
OVERFULL_LOG = """\
Info: Packing constants..
Info: Device utilisation:
Info: 	         ICESTORM_LC:    7552/   5280   143%
Info: 	        ICESTORM_RAM:       0/     30     0%
Info: 	               SB_IO:       4/     96     4%
Info: 	               SB_GB:       1/      8    12%
Info: 	        ICESTORM_DSP:       0/      8     0%
ERROR: Unable to place cell 'x_SB_LUT4_O_LC', no BELs remaining to implement cell type 'ICESTORM_LC'
"""


def test_config_table_resolves():
    for config in CONFIGS:
        params = resolve_config(config)
        assert get_unit(config.unit).resolve(params) == params
    deepest = Config("fmatree", (("pipeline", DEEPEST),))
    assert resolve_config(deepest)["pipeline"] == max(
        p.hi for p in get_unit("fmatree").params if p.name == "pipeline")
    assert all(c.unit != "matmul" or c.params[0][1] == 2 for c in select_configs(None, True))
    assert [c.unit for c in select_configs(["mpe,convert"], False)] == ["convert"] + ["mpe"] * 5


def test_ports_and_harness_widths():
    design, widths = unit_design(Config("mpe", (("pipeline", 2),)))
    ports = module_ports(design.sources["unit.v"], design.key)
    assert {p.name: (p.direction, p.width) for p in ports}["acc_in"] == ("input", 32)
    # Inputs without the clock (rst is a chain bit); outputs: acc_out and valid_out.
    assert widths == (1 + 2 + 1 + 1 + 8 + 8 + 32 + 1, 33)
    assert "Instance" not in design.sources["harness.v"]
    assert "mpe_bias11_multiplierlut_pipeline2 unit" in design.sources["harness.v"]


def test_failure_reported_not_raised():
    assert explain_nextpnr_failure(OVERFULL_LOG) == \
        "does not fit (needs 7552 of 5280 ICESTORM_LC)"
    assert explain_nextpnr_failure("ERROR: Unable to place cell 'c', no BELs remaining to "
                                   "implement cell type 'ICESTORM_DSP'\n") \
        == "does not fit (out of ICESTORM_DSP)"
    assert explain_nextpnr_failure("Info: x\nERROR: something else\n") == \
        "nextpnr failed: something else"


def test_table():
    ok = Result("mpe", "bias=11, pipeline=2", "ecp5", per_cycle=1, op="MAC",
                note="FP8; INT4 2x, INT2 4x",
                usage={"TRELLIS_COMB": (1200, 83640), "TRELLIS_FF": (150, 83640),
                       "MULT18X18D": (0, 156), "DP16KD": (0, 208)},
                fmax_seeds=[40.0, 50.0, 45.0], pnr_seconds=[10.0, 12.0, 11.0])
    over = Result("matmul", "rows=8, cols=8", "ice40",
                  usage=parse_usage(OVERFULL_LOG), yosys_ffs=900,
                  error=explain_nextpnr_failure(OVERFULL_LOG))
    lines = format_table([ok, over]).splitlines()
    assert lines[0] == ("| unit | configuration | device | LUT4 | FF | DSP | BRAM | Fmax MHz | "
                        "peak throughput | P&R time (s) |")
    assert all(line.count("|") == 11 for line in lines)
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:5] == ["`mpe`", "bias=11, pipeline=2", "LFE5U-85F", "1200 (1.4%)", "150 (0.2%)"]
    assert cells[7].startswith("45.0 (median of 3")
    assert cells[8] == "0.0450 GMAC/s (FP8; INT4 2x, INT2 4x)"
    assert cells[9] == "11"
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[2] == "iCE40UP5K"
    assert cells[3] == "7552 (143.0%)"
    assert cells[4] == "900 (17.0%)"           # Yosys's flip-flops, of the logic cells
    assert cells[7] == "does not fit (needs 7552 of 5280 ICESTORM_LC)"
    assert cells[8] == "-" and cells[9] == "-"


def parse_usage(log):
    return toolchain.log_utilization(log)


def test_harness_only_design(tmp_path):
    design = harness_design((5, 7))
    assert {p.name for p in module_ports(design.sources["harness.v"], "bench_top")} == \
        {"clk", "sin", "sout", "chain_out"}
    assert "assign o = {i[1], i[0], i[4], i[3], i[2], i[1], i[0]};" in design.sources["unit.v"]
    # Nothing merged or removed: 5 chain, 7 output and 2 + 1 tree registers.
    result = run_design(design, "ice40", tmp_path, seeds=1)
    assert result.error is None and result.yosys_ffs == 5 + 7 + 2 + 1
    assert result.throughput() == "-"


@pytest.mark.parametrize("family", ["ice40"])
def test_convert_through_yosys_and_nextpnr(tmp_path, family):
    design, (w_in, w_out) = unit_design(Config("convert", (("bias", 11),), 1, "conv"))
    result = run_design(design, family, tmp_path / family, seeds=1)
    assert result.error is None
    assert result.fmax is not None and result.fmax > 0
    lut = result.resource("lut")
    assert lut is not None and lut[0] > 0 and lut[1] == 5280
    # Chain, output registers and the XOR tree (9 -> 3 -> 1): nothing optimized away.
    assert result.yosys_ffs == w_in + w_out + 3 + 1
    assert result.throughput().endswith("Mconv/s")
    assert result.path["logic_ns"] > 0 and result.path["to"] != "?"
    assert (tmp_path / family / "nextpnr-seed1.log").exists()
    assert (tmp_path / family / "report-seed1.json").exists()
    assert DEVICES[family].name in format_table([result])
    # --reuse: the saved result comes back without running the tools again.
    again = run_design(design, family, tmp_path / family, seeds=1, reuse=True)
    assert again.reused and (again.fmax, again.usage, again.path) == \
        (result.fmax, result.usage, result.path)
    assert table_row_cells(again) == table_row_cells(result)
    changed = unit_design(Config("convert", (("bias", 10),), 1, "conv"))[0]
    changed.key = design.key
    assert not run_design(changed, family, tmp_path / family, seeds=1, reuse=True).reused


def table_row_cells(result):
    return format_table([result]).splitlines()[2]


def test_cli_errors(tmp_path):
    assert_one_line_error(run_cli("hw.bench", "--only", "nope", "--out", tmp_path / "x.md"),
                          "unknown unit 'nope'")
    assert_one_line_error(run_cli("hw.bench", "--only", "dot", "--out", tmp_path / "x.md"),
                          "no benchmark configuration")
    assert_one_line_error(run_cli("hw.bench", "--seeds", "0", "--out", tmp_path / "x.md"),
                          "at least 1")
    assert_one_line_error(run_cli("hw.bench", "--scheduler", "tcp://127.0.0.1:1", "--jobs",
                                  "2", "--out", tmp_path / "x.md"), "--jobs")
    import os
    env = dict(os.environ, NEXTPNR_ICE40="no-such-nextpnr")
    assert_one_line_error(run_cli("hw.bench", "--family", "ice40", "--out", tmp_path / "x.md",
                                  env=env), "nextpnr-ice40 not found")
    assert not (tmp_path / "x.md").exists()


def test_combine_seeds():
    design = harness_design((5, 7))
    synthesis = Synthesis(2.0, 15, reused=True)
    usage = {"ICESTORM_LC": (30, 5280)}
    routings = [Routing(seed, 1.0, usage, fmax, {"from": f"seed{seed}"}, reused=True)
                for seed, fmax in ((1, 200.0), (2, 180.0), (3, 220.0))]
    result = combine(design, "ice40", "w", synthesis, routings)
    assert (result.fmax, result.fmax_seeds, result.path) == (200.0, [200.0, 180.0, 220.0],
                                                             {"from": "seed1"})
    assert result.reused and result.tool_seconds == 5.0 and result.yosys_ffs == 15
    # One seed that does not fit is the design's error; a Yosys failure runs no nextpnr.
    routings[1] = Routing(2, 1.0, usage, error="does not fit (out of ICESTORM_LC)")
    routings[2].reused = False
    result = combine(design, "ice40", "w", synthesis, routings)
    assert result.error == "does not fit (out of ICESTORM_LC)" and not result.reused
    failed = combine(design, "ice40", "w", Synthesis(1.0, error="yosys failed: x"), [None])
    assert failed.error == "yosys failed: x" and failed.fmax is None


def test_nextpnr_job_needs_the_netlist(tmp_path):
    with pytest.raises(BenchError, match="share the work directory"):
        place_and_route(Synthesis(1.0, 15), "ice40", str(tmp_path), 1, "stamp")


FMAX_SPREAD = re.compile(r"^(\d+\.\d) \(median of 2: (\d+\.\d)-(\d+\.\d)\)$")


def test_sweep_on_local_cluster(tmp_path):
    """Two seeds of the smallest unit on a LocalCluster of two workers; then a third seed
    with --reuse runs only the one new job."""
    args = ["hw.bench", "--only", "convert", "--family", "ice40", "--jobs", "2",
            "--out", tmp_path / "bench.md", "--workdir", tmp_path / "work"]
    proc = run_cli(*args, "--seeds", "2")
    assert proc.returncode == 0, proc.stderr
    assert "(6 of 6 jobs done, 0 left)" in proc.stderr     # Yosys and 2 seeds, 2 designs
    assert proc.stderr.count("started on tcp://") == 6
    rows = [line for line in (tmp_path / "bench.md").read_text().splitlines()
            if line.startswith("|") and "iCE40UP5K" in line]
    assert [r.split("|")[1].strip() for r in rows] == ["`convert`", "harness only"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        fmax = FMAX_SPREAD.match(cells[7])
        assert fmax, cells[7]
        median, low, high = map(float, fmax.groups())
        assert 0 < low <= median <= high
        assert int(cells[3].split()[0]) > 0 and float(cells[9]) >= 0
    proc = run_cli(*args, "--seeds", "3", "--reuse", "--no-harness-table")
    assert proc.returncode == 0, proc.stderr
    reused = re.findall(r"ice40 (yosys|seed \d): .*\(reused\)", proc.stderr)
    assert sorted(reused) == ["seed 1", "seed 2", "yosys"]
    assert re.search(r"seed 3: Fmax [\d.]+ MHz, nextpnr", proc.stderr)
    assert "(median of 3:" in proc.stdout


def test_unreachable_scheduler(tmp_path):
    assert_one_line_error(run_cli("hw.bench", "--only", "convert", "--scheduler",
                                  "tcp://127.0.0.1:1", "--out", tmp_path / "x.md"),
                          "cannot connect to the Dask scheduler tcp://127.0.0.1:1")
    assert not (tmp_path / "x.md").exists()
