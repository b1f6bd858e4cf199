"""Converter testbench: every code of both source formats at every e4m3 bias 0..15.

The top is ``sim.tops.ConvertBiasSweep``: one converter per bias, all fed the same code,
so one build checks all 16 generator configurations exhaustively.
"""

import cocotb
import numpy as np

from golden import E4M3, FP9, convert
from sim.checks import compare, hex_and_value
from sim.drivers import drive_convert
from sim.tops import sweep_output_name

BIASES = range(E4M3.bias_range[0], E4M3.bias_range[1] + 1)


async def check_all_codes(dut, fmt: str):
    codes = np.arange(256, dtype=np.uint8)
    outputs = [sweep_output_name(b) for b in BIASES]
    got = await drive_convert(dut, codes, fmt, outputs)
    # One row per (bias, code), so every failing bias is reported.
    rtl = np.concatenate([got[name].astype(np.int64) for name in outputs])
    golden = np.concatenate([convert(codes, fmt, bias).astype(np.int64) for bias in BIASES])

    def describe(i):
        bias, code = BIASES[i // 256], i % 256
        src_bias = bias if fmt == "e4m3" else None
        return (f"{fmt} bias {bias}: a={hex_and_value(code, fmt, src_bias)} "
                f"rtl={hex_and_value(int(rtl[i]), FP9, digits=3)} "
                f"golden={hex_and_value(int(golden[i]), FP9, digits=3)}")

    compare(dut._log, f"convert {fmt}", rtl, golden, describe)


@cocotb.test()
async def every_e4m3_code_every_bias(dut):
    await check_all_codes(dut, "e4m3")


@cocotb.test()
async def every_e5m2_code(dut):
    await check_all_codes(dut, "e5m2")
