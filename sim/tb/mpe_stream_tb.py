"""The bare MPE with ``valid_in`` toggling at random: every valid row comes out once, in
order, ``pipeline`` cycles later, equal to the golden model; idle cycles produce nothing.

Environment: FP8HW_HW_PARAMS (JSON: bias, pipeline), FP8HW_SEED.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, Timer

from fp8hw.enums import Mode, SourceFormat
from hw.units.mpe import MPE
from sim.checks import compare
from sim.lanes import start_clock
from sim.tb.mpe_tb import describer, golden_rows, random_rows

PARAMS = json.loads(os.environ["FP8HW_HW_PARAMS"])
SEED = int(os.environ.get("FP8HW_SEED", "1"))


def apply(dut, rows, i, valid):
    dut.valid_in.value = valid
    dut.mode.value = Mode.from_label(rows["mode"][i])
    dut.fmt_a.value = SourceFormat.from_label(rows["fmt_a"][i])
    dut.fmt_b.value = SourceFormat.from_label(rows["fmt_b"][i])
    dut.a.value = int(rows["a"][i])
    dut.b.value = int(rows["b"][i])
    dut.acc_in.value = int(rows["acc"][i])


@cocotb.test()
async def valid_toggling_stream(dut):
    rng = np.random.default_rng(SEED + 10 * PARAMS["pipeline"])
    n = 3000
    rows = random_rows(rng, n, PARAMS["bias"])
    depth = MPE(**PARAMS).latency        # the unit says how long it takes
    got, issued_at, seen_at = [], [], []
    clocked = await start_clock(dut)
    if clocked:
        assert int(dut.valid_out.value) == 0, "valid_out set after reset"
    i, cycle = 0, 0
    while len(got) < n:
        valid = i < n and rng.random() < 0.6
        # Idle cycles carry random junk that must not come out.
        apply(dut, rows, i if valid else int(rng.integers(0, n)), int(valid))
        if valid:
            issued_at.append(cycle)
            i += 1
        if clocked:
            await RisingEdge(dut.clk)
            await Timer(1, unit="ps")
        else:
            await Timer(1, unit="ns")
        if int(dut.valid_out.value):
            got.append(dut.acc_out.value.to_unsigned())
            seen_at.append(cycle)
        cycle += 1
        assert cycle < 4 * n + 100, f"only {len(got)} of {n} results came out"
    # Clocked: a row sampled at the edge ending cycle c is visible after the edge of
    # cycle c + depth - 1; combinational (depth 0): in its own cycle.
    delays = np.array(seen_at) - np.array(issued_at)
    assert np.all(delays == max(depth - 1, 0)), f"latency not {depth}: {np.unique(delays)}"
    for _ in range(depth + 2):              # nothing more comes out once idle
        dut.valid_in.value = 0
        if clocked:
            await RisingEdge(dut.clk)
            await Timer(1, unit="ps")
        else:
            await Timer(1, unit="ns")
        assert int(dut.valid_out.value) == 0, "a result appeared without input"
    got = np.array(got, dtype=np.uint32)
    want = golden_rows(rows)
    compare(dut._log, f"stream, pipeline {depth}", got, want, describer(rows, got, want))
