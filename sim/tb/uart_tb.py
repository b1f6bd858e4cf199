"""cocotb tests of the UART (``sim.tops.UartEcho``): bytes sent to ``rx`` come back on
``tx``, with bit lengths off by a few percent, glitches ignored, bad stop bits dropped.

Environment: FP8HW_HW_PARAMS (JSON: divisor).
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

DIVISOR = json.loads(os.environ["FP8HW_HW_PARAMS"])["divisor"]


async def setup(dut):
    dut.rx.value = 1
    await start_clock(dut)
    receiver = LineReceiver(dut.clk, dut.tx, DIVISOR)
    cocotb.start_soon(receiver.run())
    return receiver


async def wait_bits(dut, bits):
    for _ in range(bits * DIVISOR):
        await RisingEdge(dut.clk)


@cocotb.test()
async def every_byte_echoes(dut):
    receiver = await setup(dut)
    data = bytes(range(256))
    await send_bytes(dut.clk, dut.rx, data, DIVISOR)
    await wait_bits(dut, 12)
    assert bytes(receiver.data) == data
    assert int(dut.frame_errors.value) == 0 and int(dut.overruns.value) == 0


@cocotb.test()
async def bit_lengths_off_by_four_percent(dut):
    receiver = await setup(dut)
    rng = np.random.default_rng(5)
    data = bytes(rng.integers(0, 256, 64).tolist())
    for sign in (+1, -1):
        # Every bit 4% long (or short): the last bit's middle is then 36% of a bit off.
        # Short bits come with an idle bit between bytes, or the echo could not keep up.
        def cycles(i, scale=1 + sign * 0.04):        # bit i ends at (i + 1) * scale bits
            return round((i + 1) * DIVISOR * scale) - round(i * DIVISOR * scale)
        await send_bytes(dut.clk, dut.rx, data, DIVISOR, bit_cycles=cycles,
                         idle_cycles=DIVISOR if sign < 0 else 0)
        await wait_bits(dut, 12)
    assert bytes(receiver.data) == data + data


@cocotb.test()
async def glitches_and_bad_stop_bits(dut):
    receiver = await setup(dut)
    # A low pulse shorter than half a bit is not a start bit.
    dut.rx.value = 0
    for _ in range(DIVISOR // 4):
        await RisingEdge(dut.clk)
    dut.rx.value = 1
    await wait_bits(dut, 3)
    await send_bytes(dut.clk, dut.rx, b"\x55", DIVISOR, stop_bit=0)
    await send_bytes(dut.clk, dut.rx, b"ok", DIVISOR)
    await wait_bits(dut, 12)
    assert bytes(receiver.data) == b"ok"
    assert int(dut.frame_errors.value) == 1
    assert int(dut.overruns.value) == 0
