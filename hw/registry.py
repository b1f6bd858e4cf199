"""Every buildable unit, its generator parameters, and its Verilog.

A ``UnitSpec`` names a unit and the function that builds it; its parameters are the ones
the component declares (``parameters``, checked by the component itself), so the Verilog
generator (``python -m hw.build``), the benchmark and the simulation runner
(``python -m sim``) mean the same thing by a configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.back import verilog

from fp8hw import __version__
from fp8hw.errors import Fp8hwError
from fp8hw.params import Param, resolve_parameters
from hw.array import SYSTOLIC_ARRAY_PARAMETERS, SebArray, systolic_array
from hw.units.dl_add import DlAdd
from hw.units.dot_engine import DotEngine
from hw.units.fma_tree import FmaTree
from hw.units.fp8_to_fp9 import Fp8ToFp9
from hw.units.mpe import MPE
from hw.units.quant16 import Quant16
from hw.units.quant30 import Quant30


class BuildError(Fp8hwError):
    """A unit or parameter that cannot be built; the message says why."""


@dataclass(frozen=True)
class UnitSpec:
    name: str
    summary: str
    factory: Callable[..., object]
    params: tuple[Param, ...]

    def resolve(self, overrides: dict | None = None) -> dict:
        """Defaults with ``overrides`` (name -> command-line text) parsed over them."""
        return resolve_parameters(self.params, overrides or {}, self.name)

    def module_name(self, params: dict) -> str:
        """A Verilog module name unique to this configuration, e.g. ``convert_bias11``."""
        parts = [self.name] + [f"{k}{v}".replace("-", "m") for k, v in sorted(params.items())]
        return "_".join(parts)

    def elaborate(self, params: dict):
        return self.factory(**params)

    def verilog(self, params: dict) -> str:
        top = self.elaborate(params)
        config = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
        header = (f"// fp8hw {__version__}: unit {self.name}"
                  f"{' (' + config + ')' if config else ''}\n")
        return header + verilog.convert(top, name=self.module_name(params), emit_src=False)


def _component(name: str, summary: str, cls) -> UnitSpec:
    return UnitSpec(name, summary, cls, cls.parameters)


UNITS: dict[str, UnitSpec] = {spec.name: spec for spec in (
    _component("convert", "e4m3/e5m2 to fp9 converter, source format chosen at run time",
               Fp8ToFp9),
    _component("mpe", "mixed-precision MAC: fp8 (e4m3/e5m2 per operand) into dlfloat16, "
               "int4, int2", MPE),
    _component("quant16", "dlfloat16 to e4m3/e5m2 quantizer (rne, sat or nan), format at "
               "run time", Quant16),
    _component("dladd", "dlfloat16 adder (rnu, the MPE's special values): chunk sums",
               DlAdd),
    _component("fmatree", "fp8seb N-way fused multiply-add tree with fp30 accumulator input",
               FmaTree),
    _component("quant30", "fp30 to fp8seb quantizer, run-time bias, max-exponent tracker",
               Quant30),
    _component("dot", "dot-product engine: fmatree chunks into an fp30 accumulator, then "
               "quant30", DotEngine),
    UnitSpec("matmul", "systolic array of MPEs (rows x cols, output- or weight-stationary) "
             "with stream interfaces; mode and formats at run time", systolic_array,
             SYSTOLIC_ARRAY_PARAMETERS),
    _component("seb_array", "FP8-SEB GEMM array: weight-stationary, rows x cols N-way FMA "
               "trees, fp30 sums down the columns; shared biases at run time", SebArray),
)}


def get_unit(name: str) -> UnitSpec:
    try:
        return UNITS[name]
    except KeyError:
        raise BuildError(f"unknown unit {name!r} (units: {', '.join(UNITS)})") from None
