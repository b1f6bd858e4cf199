"""The numerics parameters of the units: each declared once, here, with its default and
allowed values. The golden functions, the vector files (``golden.vectors``) and the
hardware generators (``hw``) read them from here; the array's shape and dataflow are in
``fp8hw.arrays``, the hardware's pipeline depths on its components."""

from fp8hw.enums import Mode, Overflow, SourceFormat
from fp8hw.params import Param

from .formats import E4M3

BIAS = Param("bias", E4M3.bias, "e4m3 exponent bias", lo=E4M3.bias_range[0],
             hi=E4M3.bias_range[1])
MODE = Param("mode", Mode.FP8.label, "fp8, or int4 / int2 lanes", choices=Mode.labels())
FMT = Param("fmt", SourceFormat.E4M3.label, "8-bit format", choices=SourceFormat.labels())
FMT_A = Param("fmt_a", SourceFormat.E4M3.label, "format of a (the west operand of an array)",
              choices=SourceFormat.labels())
FMT_B = Param("fmt_b", SourceFormat.E4M3.label, "format of b (the north operand of an array)",
              choices=SourceFormat.labels())
OVERFLOW = Param("overflow", Overflow.SAT.label, "above the largest finite value: sat or nan",
                 choices=Overflow.labels())
# The generator and the vector files take trees of up to 1024 ways; T stays far inside
# the golden model's int64 arithmetic (|T| < 1024 * 225 * 2**28 < 2**46).
WAYS = Param("ways", 24, "products summed per cycle (N)", lo=1, hi=1024)
ROOM = Param("room", 1, "binades the shared-bias rule keeps free at the top", lo=0, hi=15)
# matmul's chunk-based accumulation (0: one fold over all of K) and output quantization.
CHUNK = Param("chunk", 0, "products per chunk of matmul's chunked accumulation (0: none)",
              lo=0, hi=65535)
OUT = Param("out", "none", "matmul's output quantization (fp8 mode): none, e4m3 or e5m2",
            choices=("none",) + SourceFormat.labels())
