"""The host link's frame receiver and sender in RTL, on both simulators."""

from hw.soc.frames import FrameReceiver
from sim.runner import run_cocotb
from sim.tops import FrameEcho

import pytest


def test_frame_echo(sim, tmp_path):
    divisor, timeout = 8, 8 * 30
    result = run_cocotb(FrameEcho(divisor, timeout), "frame_echo", sim, "sim.tb.frames_tb",
                        tmp_path, quiet=True,
                        env={"FP8HW_HW_PARAMS": {"divisor": divisor, "timeout": timeout}})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"


def test_bad_timeout():
    with pytest.raises(ValueError, match="timeout must be at least 1 cycle"):
        FrameReceiver(0)
