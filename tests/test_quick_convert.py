"""Quick tier: the ``convert`` unit (``Fp8ToFp9``) in Amaranth's simulator, every code of
both source formats at every e4m3 bias, against the golden ``convert``."""

import numpy as np
import pytest

from fp8hw.enums import SourceFormat
from golden import E4M3, FP9, convert
from hw.units.fp8_to_fp9 import Fp8ToFp9
from sim.pysim import PlantedBug, check, hex_and_value, simulate, stream_rows

pytestmark = pytest.mark.quick

BIASES = range(E4M3.bias_range[0], E4M3.bias_range[1] + 1)


def run_convert(unit, fmt: str) -> np.ndarray:
    codes = np.arange(256)
    result = {}

    async def testbench(ctx):
        result.update(await stream_rows(
            ctx, unit, {"a": codes, "fmt": np.full(256, SourceFormat[fmt.upper()].value)},
            ["y"], latency=unit.latency))

    simulate(unit, testbench)
    return result["y"]


def check_convert(unit, bias: int, fmt: str) -> None:
    got = run_convert(unit, fmt)
    codes = np.arange(256, dtype=np.uint8)
    want = convert(codes, fmt, bias)
    src_bias = bias if fmt == "e4m3" else None

    def describe(i):
        return (f"{fmt} bias {bias}: a={hex_and_value(i, fmt, src_bias)} "
                f"rtl={hex_and_value(int(got[i]), FP9, digits=3)} "
                f"golden={hex_and_value(int(want[i]), FP9, digits=3)}")

    check(f"convert {fmt} bias {bias}", got, want, describe)


@pytest.mark.parametrize("bias", BIASES)
def test_every_code_both_formats(bias):
    unit = Fp8ToFp9(bias=bias)
    assert unit.latency == 0
    for fmt in ("e4m3", "e5m2"):
        check_convert(unit, bias, fmt)


def test_a_one_lsb_error_in_one_code_is_caught():
    """A converter wrong in the last bit of one e4m3 code fails the check, which names it."""
    unit = PlantedBug(Fp8ToFp9(bias=11), "y",
                      lambda u: (u.a == 0x09) & (u.fmt == SourceFormat.E4M3))
    check_convert(unit, 11, "e5m2")
    with pytest.raises(AssertionError, match=r"1 of 256 rows differ; first: e4m3 bias 11: "
                                             r"a=0x09 .* rtl=0x028 .* golden=0x029 "):
        check_convert(unit, 11, "e4m3")
