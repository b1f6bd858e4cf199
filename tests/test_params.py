"""Parameters are declared once: the components, the registry, the golden model's vector
files and the commands read the same ``Param`` objects, which refuse a wrong type with
TypeError and a wrong value with ValueError, naming the parameter and what is allowed."""

import pytest

from fp8hw.arrays import COLS, DATAFLOW, ROWS
from fp8hw.params import Param, ParameterError, resolve_parameters
from golden.params import (BIAS, BIAS_A, BIAS_B, CHUNK, FMT_A, MATMUL_MODE, MODE, OUT, OUT_BIAS,
                           ROOM, WAYS)
from golden.vectors import VECTOR_UNITS
from hw.array import OutputStationaryArray, WeightStationaryArray, systolic_array
from hw.registry import UNITS

pytestmark = pytest.mark.quick


def test_param_check():
    p = Param("n", 3, "a count", lo=1, hi=8)
    assert p.check(8) == 8 and p.parse("0x4") == 4 and p.describe() == "n=1..8 (default 3)"
    with pytest.raises(ParameterError,
                       match=r"^u: parameter n=9 is outside the allowed range 1\.\.8$"):
        p.check(9, "u")
    for wrong in ("3", 3.0, True, None):
        with pytest.raises(TypeError, match="parameter n must be an integer in 1..8"):
            p.check(wrong)
    with pytest.raises(ParameterError, match="parameter n must be an integer in 1..8, got 'x'"):
        p.parse("x")
    c = Param("flow", "os", "dataflow", choices=("os", "ws"))
    assert c.check("ws") == "ws" and c.describe() == "flow=os|ws (default os)"
    with pytest.raises(ParameterError, match="parameter flow must be one of os, ws, got 'xs'"):
        c.parse("xs")
    with pytest.raises(TypeError, match="parameter flow must be one of os, ws, got 1"):
        c.check(1)
    with pytest.raises(ValueError):
        Param("bad", 0, "default outside its range", lo=1, hi=2)
    o = Param("o", None, "optional", lo=-2, hi=2, optional=True)
    assert o.check(None) is None and o.parse("none") is None and o.parse("-2") == -2
    assert o.describe() == "o=-2..2|none (default none)"
    with pytest.raises(TypeError):
        p.check(None)                          # only an optional parameter may be absent


def test_resolve_parameters():
    params = (ROWS, DATAFLOW)
    assert resolve_parameters(params, {"dataflow": "ws"}, "x") == {"rows": 4, "dataflow": "ws"}
    with pytest.raises(ParameterError, match="x: unknown parameter 'cols'"):
        resolve_parameters(params, {"cols": "2"}, "x")


def test_one_declaration_each():
    """The registry, the components and the vector files share the declaring objects."""
    assert UNITS["matmul"].params[:4] == (ROWS, COLS, DATAFLOW, BIAS)
    for name in ("convert", "mpe", "quant16"):
        assert BIAS in UNITS[name].params and BIAS in VECTOR_UNITS[name].params
    assert WAYS in UNITS["fmatree"].params and VECTOR_UNITS["fmatree"].params == (WAYS,)
    assert ROOM in UNITS["quant30"].params and ROOM in UNITS["dot"].params
    vector_matmul = VECTOR_UNITS["matmul"].params
    assert {MATMUL_MODE, FMT_A, ROWS, COLS, DATAFLOW, CHUNK, OUT, BIAS_A, BIAS_B, WAYS,
            OUT_BIAS, ROOM} <= set(vector_matmul)
    # The MPE's modes are matmul's, which adds the FP8-SEB GEMM.
    assert set(MODE.choices) < set(MATMUL_MODE.choices)
    for spec in UNITS.values():
        if spec.name != "matmul":
            assert spec.params == spec.factory.parameters


@pytest.mark.parametrize("make, error, message", [
    (lambda: OutputStationaryArray(rows=0, cols=2), ValueError, "rows=0 is outside"),
    (lambda: WeightStationaryArray(rows=2, cols=65), ValueError, "cols=65 is outside"),
    (lambda: WeightStationaryArray(rows=2.0, cols=2), TypeError, "rows must be an integer"),
    (lambda: systolic_array(2, 2, dataflow="xs"), ValueError, "dataflow must be one of os, ws"),
    (lambda: systolic_array(2, 2, dataflow=1), TypeError, "dataflow must be one of os, ws"),
    (lambda: systolic_array(2, 2, pipeline=9), ValueError, "pipeline=9 is outside"),
])
def test_array_parameters(make, error, message):
    with pytest.raises(error, match=message):
        make()
