"""Format parameters against the figures docs/numerics.md, Formats, states."""

import pytest

from golden import DLFLOAT16, E4M3, E5M2, FP8SEB, FP9, FP30, FORMATS, FormatError, get_format

pytestmark = pytest.mark.quick


def test_stated_ranges():
    e4m3 = E4M3.with_bias(11)
    assert e4m3.max_finite() == 28
    assert e4m3.min_positive() == 2.0 ** -13
    assert 2.0 ** (1 - 11) == 2.0 ** -10          # min normal, from emin
    assert e4m3.emin() == -10
    assert E4M3.with_bias(7).max_finite() == 448   # OCP E4M3FN
    assert E5M2.max_finite() == 57344
    assert FP9.max_finite() == 61440
    assert FP9.min_positive() == 2.0 ** -17
    assert DLFLOAT16.max_finite() == 2.0 ** 32 * (1 + 510 / 512)
    assert DLFLOAT16.min_positive() == 2.0 ** -31 * (1 + 1 / 512)
    assert FP30.max_finite() == 2.0 ** 32 * (2 - 2.0 ** -22)
    for b in (-32, 0, 31):
        assert FP8SEB.max_finite(b) == 2.0 ** (15 - b) * 1.875
        assert FP8SEB.min_positive(b) == 2.0 ** (-2 - b)


def test_canonical_nans():
    assert E4M3.canonical_nan == 0x7F
    assert E5M2.canonical_nan == 0x7F
    assert DLFLOAT16.canonical_nan == 0x7FFF
    assert FP30.canonical_nan == 0x1FFFFFFF
    assert FP8SEB.canonical_nan is None


def test_widths():
    assert {n: f.width for n, f in FORMATS.items()} == {
        "e4m3": 8, "e5m2": 8, "fp9": 9, "dlfloat16": 16, "fp30": 30, "fp8seb": 8,
        "int4": 4, "int2": 2}


@pytest.mark.parametrize("bias", [-1, 16, 3.5])
def test_e4m3_bias_out_of_range(bias):
    with pytest.raises(FormatError, match="bias"):
        E4M3.with_bias(bias)


def test_unknown_format():
    with pytest.raises(FormatError, match="unknown format"):
        get_format("e3m4")
