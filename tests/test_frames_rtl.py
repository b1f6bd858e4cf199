"""The host link (framing, sequence numbers, repeats) in RTL, on both simulators."""

import pytest

from hw.soc.frames import FrameReceiver
from sim.runner import run_cocotb
from sim.tops import LinkEcho


def test_link_echo(sim, tmp_path):
    divisor, timeout = 4, 4 * 30
    result = run_cocotb(LinkEcho(divisor, timeout), "link_echo", sim, "sim.tb.frames_tb",
                        tmp_path, quiet=True,
                        env={"FP8HW_HW_PARAMS": {"divisor": divisor, "timeout": timeout}})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"


def test_bad_timeout():
    with pytest.raises(ValueError, match="timeout must be at least 1 cycle"):
        FrameReceiver(0)
