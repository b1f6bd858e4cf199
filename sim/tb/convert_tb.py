"""Converter testbench: every code of both source formats at every e4m3 bias 0..15.

The top is ``sim.tops.ConvertBiasSweep``: one converter per bias, all fed the same code,
so one build checks all 16 generator configurations exhaustively.
"""

import cocotb
import numpy as np

from golden import E4M3, E5M2, FP9, convert, decode
from sim.drivers import drive_convert
from sim.tops import sweep_output_name

BIASES = range(E4M3.bias_range[0], E4M3.bias_range[1] + 1)


def describe(code: int, fmt, bias=None) -> str:
    value = decode(np.array([code]), fmt, bias=bias)[0]
    return f"0x{code:0{(fmt.width + 3) // 4}x} ({value!r})"


async def check_all_codes(dut, fmt: str):
    codes = np.arange(256, dtype=np.uint8)
    outputs = [sweep_output_name(b) for b in BIASES]
    got = await drive_convert(dut, codes, fmt, outputs)
    failures = []
    for bias, name in zip(BIASES, outputs):
        want = convert(codes, fmt, bias)
        src = E4M3.with_bias(bias) if fmt == "e4m3" else E5M2
        for code, g, w in zip(codes.tolist(), got[name].tolist(), want.tolist()):
            if g != w:
                failures.append(f"{fmt} bias {bias}: a={describe(code, src)} "
                                f"rtl={describe(g, FP9)} golden={describe(w, FP9)}")
    for line in failures[:20]:
        dut._log.error(line)
    assert not failures, f"{len(failures)} mismatches, first: {failures[0]}"


@cocotb.test()
async def every_e4m3_code_every_bias(dut):
    await check_all_codes(dut, "e4m3")


@cocotb.test()
async def every_e5m2_code(dut):
    await check_all_codes(dut, "e5m2")
