"""Quick tier: the simulated board's edge-driven line (``sim.line_bridge.line_levels``)
against a bit-by-bit 8N1 waveform, and the Verilator control file that makes only a
top's ports public (``sim.runner``)."""

import numpy as np
import pytest

from sim.line_bridge import line_levels
from sim.runner import _ports_control_file

pytestmark = pytest.mark.quick


def frame_bits(data: bytes) -> list[int]:
    """Start bit, 8 data bits LSB first, stop bit, for each byte."""
    return [bit for byte in data for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]]


def test_line_levels_are_the_8n1_waveform():
    rng = np.random.default_rng(5)
    for data in (bytes(range(256)), rng.integers(0, 256, 1000, dtype=np.uint8).tobytes(),
                 b"\x00", b"\xff", b"\x55\xaa"):
        runs = line_levels(data)
        for (a, _), (b, _) in zip(runs, runs[1:]):
            assert a != b                   # neighbours merged: each run changes the line
        assert [level for level, n in runs for _ in range(n)] == frame_bits(data)


def test_line_levels_of_extreme_bytes():
    assert line_levels(b"\x00") == [(0, 9), (1, 1)]
    assert line_levels(b"\xff") == [(0, 1), (1, 9)]
    assert line_levels(b"\xff\xff") == [(0, 1), (1, 9), (0, 1), (1, 9)]


def test_ports_control_file(tmp_path):
    text = "module board_x(rx, tx, clk, rst);\n  input rx;\nendmodule\n"
    path = _ports_control_file(text, "board_x", tmp_path / "board_x.vlt")
    lines = path.read_text().splitlines()
    assert lines[0] == "`verilator_config"
    assert lines[1:] == [f'public_flat_rw -module "board_x" -var "{p}"'
                         for p in ("rx", "tx", "clk", "rst")]
