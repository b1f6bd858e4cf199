"""The systolic array generator: output-stationary or weight-stationary MPE arrays."""

from golden.formats import E4M3
from golden.matmul import DATAFLOWS
from hw.array.output_stationary import OutputStationaryArray
from hw.array.weight_stationary import WeightStationaryArray


def systolic_array(rows: int, cols: int, dataflow: str = "os", bias: int = E4M3.bias,
                   pipeline: int = 2):
    """An array of ``rows`` x ``cols`` MPEs with the given dataflow (``os`` or ``ws``)."""
    if dataflow == "os":
        return OutputStationaryArray(rows, cols, bias=bias, pipeline=pipeline)
    if dataflow == "ws":
        return WeightStationaryArray(rows, cols, bias=bias, pipeline=pipeline)
    raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {dataflow!r}")


__all__ = ["DATAFLOWS", "OutputStationaryArray", "WeightStationaryArray", "systolic_array"]
