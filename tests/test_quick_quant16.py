"""Quick tier: the ``quant16`` unit in Amaranth's simulator against the golden
``quant16``: around every target's edges (saturation, the smallest subnormal, ties, the
NaN/Inf code, zeros) and seeded random codes, both formats, both overflow actions."""

import numpy as np
import pytest

from fp8hw.enums import Overflow, SourceFormat
from golden import DLFLOAT16, E4M3, E5M2, decode, encode
from golden.quant16 import quant16
from hw.units.quant16 import Quant16
from sim.pysim import check, hex_and_value, simulate, stream_rows

pytestmark = pytest.mark.quick

CASES = [(f, o) for f in ("e4m3", "e5m2") for o in ("sat", "nan")]


def edge_inputs(bias: int) -> np.ndarray:
    """dlfloat16 codes at and next to each target's interesting values: every binade
    boundary of the target's range with the codes on either side, the midpoints between
    neighbouring target codes (ties) and the codes next to them."""
    codes = []
    for target in (E4M3.with_bias(bias), E5M2):
        mags = np.arange(1, target.max_code + 2)      # every finite magnitude, and one more
        values = decode(mags, target)
        values = np.where(np.isnan(values), 2.0 * target.max_finite(), values)
        lower = np.concatenate([[0.0], values[:-1]])
        for v in (values, (values + lower) / 2, values * 1.5):  # codes, ties, between
            near = encode(v, DLFLOAT16).astype(np.int64)
            codes += [near - 1, near, near + 1]
    codes = np.concatenate(codes) & 0x7FFF
    codes = np.concatenate([codes, codes | 0x8000,
                            [0, 0x8000, 0x7FFF, 0xFFFF, 0x7FFE, 0xFFFE, 1, 0x8001]])
    return np.unique(codes)


def check_quant16(unit, x: np.ndarray, fmt: str, overflow: str) -> None:
    result = {}

    async def testbench(ctx):
        n = len(x)
        result.update(await stream_rows(
            ctx, unit, {"x": x, "fmt": np.full(n, SourceFormat[fmt.upper()].value),
                        "overflow": np.full(n, Overflow[overflow.upper()].value)},
            ["y"], latency=unit.latency))

    simulate(unit, testbench)
    got, want = result["y"], quant16(x, fmt, unit.bias, overflow)
    target_bias = unit.bias if fmt == "e4m3" else None

    def describe(i):
        return (f"fmt={fmt} overflow={overflow} bias={unit.bias} "
                f"x={hex_and_value(int(x[i]), DLFLOAT16, digits=4)} "
                f"rtl={hex_and_value(int(got[i]), fmt, target_bias)} "
                f"golden={hex_and_value(int(want[i]), fmt, target_bias)}")

    check(f"quant16 {fmt} {overflow} bias {unit.bias}", got, want, describe)


@pytest.mark.parametrize("bias, pipeline", [(0, 0), (7, 0), (11, 0), (15, 0), (11, 1),
                                            (0, 1)])
def test_edges_and_random(bias, pipeline):
    unit = Quant16(bias=bias, pipeline=pipeline)
    assert unit.latency == pipeline
    rng = np.random.default_rng(bias)
    x = np.concatenate([edge_inputs(bias), rng.integers(0, 1 << 16, 1000)]).astype(np.uint16)
    for fmt, overflow in CASES:
        check_quant16(unit, x, fmt, overflow)
