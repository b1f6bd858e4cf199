"""The numerics parameters of the units: each declared once, here, with its default and
allowed values. The golden functions, the vector files (``golden.vectors``) and the
hardware generators (``hw``) read them from here; the array's shape and dataflow are in
``fp8hw.arrays``, the hardware's pipeline depths on its components."""

from fp8hw.enums import GemmMode, Mode, Overflow, SourceFormat
from fp8hw.params import Param, ParameterError

from .formats import E4M3, FP8SEB

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

# matmul runs on the MPE (fp8, int4, int2) or, in ``fp8seb`` mode, on the FMA tree.
SEB_MODE = GemmMode.FP8SEB.label
MATMUL_MODE = Param("mode", GemmMode.FP8.label, "fp8, int4 / int2 lanes, or fp8seb (the "
                    "FP8-SEB GEMM)", choices=GemmMode.labels())
BIAS_A = Param("bias_a", 0, "fp8seb shared bias of A", lo=FP8SEB.bias_range[0],
               hi=FP8SEB.bias_range[1])
BIAS_B = Param("bias_b", 0, "fp8seb shared bias of B", lo=FP8SEB.bias_range[0],
               hi=FP8SEB.bias_range[1])
OUT_BIAS = Param("out_bias", None, "fp8seb output bias: quantize C with it, track the tensor",
                 lo=FP8SEB.bias_range[0], hi=FP8SEB.bias_range[1], optional=True)

# Which of matmul's numerics parameters apply in which mode (the rest must keep their
# defaults: a parameter that does nothing is refused, not ignored).
MPE_MATMUL_PARAMS = (FMT_A, FMT_B, BIAS, CHUNK, OUT)
SEB_MATMUL_PARAMS = (BIAS_A, BIAS_B, WAYS, OUT_BIAS, ROOM)


def check_matmul_params(params: dict) -> None:
    """ParameterError when a numerics parameter of ``params`` that ``params["mode"]`` does
    not use differs from its default (``room`` is used only with an ``out_bias``)."""
    mode = params["mode"]
    seb = mode == SEB_MODE
    used = SEB_MATMUL_PARAMS if seb else MPE_MATMUL_PARAMS
    unused = [p for p in MPE_MATMUL_PARAMS + SEB_MATMUL_PARAMS if p not in used]
    if seb and params.get("out_bias") is None:
        unused.append(ROOM)
    for p in unused:
        if p.name in params and params[p.name] != p.default:
            if p is ROOM:
                raise ParameterError("matmul: parameter room applies only with out_bias (it "
                                     "is the output tracker's headroom)")
            modes = (f"mode {SEB_MODE}" if p in SEB_MATMUL_PARAMS
                     else f"modes {', '.join(Mode.labels())}")
            raise ParameterError(f"matmul: parameter {p.name} does not apply to mode {mode} "
                                 f"(it applies to {modes})")
