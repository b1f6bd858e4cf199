"""The host link's UART in RTL on both simulators, and its bad parameters."""

import pytest

from hw.soc.uart import UartRx, UartTx
from sim.runner import run_cocotb
from sim.tops import UartEcho


@pytest.mark.parametrize("divisor", [4, 13])
def test_uart_echo(sim, tmp_path, divisor):
    result = run_cocotb(UartEcho(divisor), f"uart_echo_div{divisor}", sim, "sim.tb.uart_tb",
                        tmp_path, quiet=True, env={"FP8HW_HW_PARAMS": {"divisor": divisor}})
    assert result.ok, f"{result.failed} of {result.tests} failed; see {result.log}"


@pytest.mark.parametrize("unit", [UartRx, UartTx])
def test_bad_divisor(unit):
    with pytest.raises(ValueError, match="divisor .* must be an integer >= 4 and <= 65535, got 3"):
        unit(3)
