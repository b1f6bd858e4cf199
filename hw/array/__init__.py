"""The systolic array generator: output-stationary or weight-stationary MPE arrays."""

from hw.array.common import Dataflow
from hw.array.output_stationary import OutputStationaryArray
from hw.array.weight_stationary import WeightStationaryArray

DATAFLOWS = ("os", "ws")


def systolic_array(rows: int, cols: int, dataflow: str = "os", bias: int = 11,
                   pipeline: int = 2):
    """An array of ``rows`` x ``cols`` MPEs with the given dataflow (``os`` or ``ws``)."""
    if dataflow == "os":
        return OutputStationaryArray(rows, cols, bias=bias, pipeline=pipeline)
    if dataflow == "ws":
        return WeightStationaryArray(rows, cols, bias=bias, pipeline=pipeline)
    raise ValueError(f"dataflow must be os or ws, got {dataflow!r}")


__all__ = ["DATAFLOWS", "Dataflow", "OutputStationaryArray", "WeightStationaryArray",
           "systolic_array"]
