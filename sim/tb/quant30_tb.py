"""quant30 testbenches: the quantizer on a ``LaneArray`` (random and directed inputs at
every bias), and the tracker on a single ``Quant30`` (clears, idle cycles, next bias);
each test is selected for its own top.

Environment: FP8HW_HW_PARAMS (JSON: room), FP8HW_LANES, FP8HW_SEED.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, Timer

from golden import FP8SEB, FP30, decode, encode
from golden.quant30 import max_exponent, next_bias, quant30
from hw.units.quant30 import Quant30
from sim.checks import compare, hex_and_value
from sim.lanes import LaneArray, drive_rows, start_clock

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
LANES = int(os.environ.get("FP8HW_LANES", "16"))
SEED = int(os.environ.get("FP8HW_SEED", "1"))


def quantizer_inputs(rng):
    """Random codes; values around every bias's range (ties, subnormal outputs,
    saturation); zeros, NaNs and the extreme codes."""
    n = 40000
    bias = rng.integers(-32, 32, n)
    x = rng.integers(0, 1 << 30, n)
    # Values spread from below the subnormals to above the maximum of each row's bias.
    scaled = rng.integers(-6, 18, n) - bias
    values = np.where(rng.random(n) < 0.5, 1.0, -1.0) * rng.random(n) * 2.0 ** scaled
    near = encode(values, FP30).astype(np.int64)
    # Exact ties: the midpoint of two neighbouring fp8seb codes, if fp30 holds it.
    codes = rng.integers(0, 0x7F, n)
    lo = decode(codes, FP8SEB, bias=bias)
    hi = decode(codes + 1, FP8SEB, bias=bias)
    ties = encode((lo + hi) / 2 * np.where(rng.random(n) < 0.5, 1, -1), FP30).astype(np.int64)
    kind = rng.integers(0, 3, n)
    x = np.choose(kind, [x, near, ties])
    special = np.array([0, 1 << 29, FP30.canonical_nan, FP30.canonical_nan | 1 << 29, 1,
                        (1 << 29) | 1, FP30.max_code, FP30.max_code | 1 << 29])
    x[:len(special) * 8] = np.repeat(special, 8)
    bias[:len(special) * 8] = np.tile([-32, -1, 0, 1, 15, 30, 31, 7], len(special))
    return x.astype(np.uint32), bias


@cocotb.test()
async def quantizer_random_and_directed(dut):
    rng = np.random.default_rng(SEED)
    x, bias = quantizer_inputs(rng)
    top = LaneArray(lambda: Quant30(**PARAMS), LANES)
    got = (await drive_rows(dut, top.ports, LANES, {"x": x, "bias": bias}, ["y"],
                            latency=top.latency, valid=None))["y"].astype(np.uint8)
    want = quant30(x, bias)

    def describe(i):
        return (f"x={hex_and_value(int(x[i]), FP30, digits=8)} bias={bias[i]} "
                f"rtl={hex_and_value(int(got[i]), FP8SEB, int(bias[i]))} "
                f"golden={hex_and_value(int(want[i]), FP8SEB, int(bias[i]))}")

    compare(dut._log, "quant30", got, want, describe)


@cocotb.test()
async def tracker_over_tensors(dut):
    """Tensors of random length quantized with valid toggling; after each, max_exp, seen
    and next_bias must follow the golden tracker and bias rule; clear starts afresh.
    Runs on a single ``Quant30``."""
    rng = np.random.default_rng(SEED + 1)
    for name in ("valid", "clear", "x", "bias"):
        getattr(dut, name).value = 0
    await start_clock(dut)
    for tensor in range(60):
        n = int(rng.integers(1, 40))
        kind = tensor % 4
        x = rng.integers(0, 1 << 30, n)
        if kind == 1:
            x[:] = 0                                  # all zero: bias stays
        elif kind == 2:
            x[rng.random(n) < 0.5] = FP30.canonical_nan  # NaNs are not tracked
        bias = int(rng.integers(-32, 32))
        dut.clear.value = 1
        dut.valid.value = 0
        await RisingEdge(dut.clk)
        dut.clear.value = 0
        tracked = []
        for code in x.tolist():
            while rng.random() < 0.3:                 # idle cycles with junk on x
                dut.valid.value = 0
                dut.x.value = int(rng.integers(0, 1 << 30))
                await RisingEdge(dut.clk)
            dut.valid.value = 1
            dut.x.value = int(code)
            dut.bias.value = bias
            tracked.append(code)
            await RisingEdge(dut.clk)
        dut.valid.value = 0
        await RisingEdge(dut.clk)
        await Timer(1, unit="ps")
        want_exp = max_exponent(np.array(tracked, np.uint32))
        seen = int(dut.seen.value)
        got_exp = dut.max_exp.value.to_signed()
        got_next = dut.next_bias.value.to_signed()
        want_next = next_bias(bias, want_exp, PARAMS["room"])
        assert seen == (want_exp is not None), f"tensor {tensor}: seen={seen}, want {want_exp}"
        if seen:
            assert got_exp == want_exp, f"tensor {tensor}: max_exp {got_exp}, want {want_exp}"
        assert got_next == want_next, (f"tensor {tensor}: bias {bias} max_exp {want_exp}: "
                                       f"next_bias {got_next}, want {want_next}")
    dut._log.info("tracker: 60 tensors match the golden tracker and bias rule")
