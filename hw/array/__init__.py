"""The systolic array generator: output-stationary or weight-stationary MPE arrays."""

from fp8hw.arrays import COLS, DATAFLOW, ROWS
from fp8hw.enums import Dataflow
from golden.params import BIAS
from hw.array.output_stationary import OutputStationaryArray
from hw.array.weight_stationary import SebArray, WeightStationaryArray
from hw.units.mpe import PIPELINE

SYSTOLIC_ARRAY_PARAMETERS = (ROWS, COLS, DATAFLOW, BIAS, PIPELINE)


def systolic_array(rows: int = ROWS.default, cols: int = COLS.default,
                   dataflow: str = DATAFLOW.default, bias: int = BIAS.default,
                   pipeline: int = PIPELINE.default):
    """An array of ``rows`` x ``cols`` MPEs with the given dataflow (``os`` or ``ws``)."""
    array = {Dataflow.OS.label: OutputStationaryArray,
             Dataflow.WS.label: WeightStationaryArray}[DATAFLOW.check(dataflow, "matmul")]
    return array(rows, cols, bias=bias, pipeline=pipeline)


__all__ = ["SYSTOLIC_ARRAY_PARAMETERS", "OutputStationaryArray", "SebArray", "WeightStationaryArray",
           "systolic_array"]
