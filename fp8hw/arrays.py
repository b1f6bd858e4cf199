"""The systolic array's shape and dataflow: declared once for the array generator, the
tiling scheduler, the host driver and the ``matmul`` vector files (where they choose the
array a GEMM runs on, and change no result bit)."""

from fp8hw.enums import Dataflow
from fp8hw.params import Param

MAX_SIDE = 64

ROWS = Param("rows", 4, "PE rows", lo=1, hi=MAX_SIDE)
COLS = Param("cols", 4, "PE columns", lo=1, hi=MAX_SIDE)
DATAFLOW = Param("dataflow", Dataflow.OS.label,
                 "os (output-stationary) or ws (weight-stationary)", choices=Dataflow.labels())
