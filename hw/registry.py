"""Every buildable unit, its generator parameters, and its Verilog.

One ``UnitSpec`` per unit names its parameters with defaults and ranges; the Verilog
generator (``python -m hw.build``) and the simulation runner (``python -m sim``) both
elaborate units through here, so a configuration means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from amaranth.back import verilog

from golden.formats import E4M3
from golden.matmul import DATAFLOWS
from golden.vectors import VectorError, parse_params

__version__ = "0.1.0"


class BuildError(ValueError):
    """A unit or parameter that cannot be built; the message says why."""


@dataclass(frozen=True)
class Param:
    """An integer parameter in ``lo..hi``, or with ``choices`` one of those names."""
    name: str
    default: int | str
    lo: int
    hi: int
    help: str
    choices: tuple[str, ...] = ()

    def parse(self, unit: str, text) -> int | str:
        if self.choices:
            if str(text) not in self.choices:
                raise BuildError(f"{unit}: parameter {self.name} must be one of "
                                 f"{', '.join(self.choices)}, got {text!r}")
            return str(text)
        try:
            value = int(str(text), 0)
        except ValueError:
            raise BuildError(f"{unit}: parameter {self.name} must be an integer "
                             f"in {self.lo}..{self.hi}, got {text!r}") from None
        if not self.lo <= value <= self.hi:
            raise BuildError(f"{unit}: parameter {self.name}={value} is outside "
                             f"the allowed range {self.lo}..{self.hi}")
        return value


@dataclass(frozen=True)
class UnitSpec:
    name: str
    summary: str
    factory: Callable[..., object]
    params: tuple[Param, ...] = field(default_factory=tuple)

    def resolve(self, overrides: dict | None = None) -> dict[str, int]:
        """Defaults with ``overrides`` (name -> text or int) applied and checked."""
        overrides = dict(overrides or {})
        known = {p.name: p for p in self.params}
        for name in overrides:
            if name not in known:
                allowed = ", ".join(known) or "none"
                raise BuildError(f"{self.name}: unknown parameter {name!r} "
                                 f"(parameters: {allowed})")
        return {p.name: (p.parse(self.name, overrides[p.name]) if p.name in overrides
                         else p.default) for p in self.params}

    def module_name(self, params: dict[str, int]) -> str:
        """A Verilog module name unique to this configuration, e.g. ``convert_bias11``."""
        parts = [self.name] + [f"{k}{v}".replace("-", "m") for k, v in sorted(params.items())]
        return "_".join(parts)

    def elaborate(self, params: dict[str, int]):
        return self.factory(**params)

    def verilog(self, params: dict[str, int]) -> str:
        top = self.elaborate(params)
        config = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
        header = (f"// fp8hw {__version__}: unit {self.name}"
                  f"{' (' + config + ')' if config else ''}\n")
        return header + verilog.convert(top, name=self.module_name(params), emit_src=False)


def _convert(bias):
    from hw.units.fp8_to_fp9 import Fp8ToFp9
    return Fp8ToFp9(bias=bias)


def _mpe(bias, pipeline):
    from hw.units.mpe import MPE
    return MPE(bias=bias, pipeline=pipeline)


def _quant16(bias):
    from hw.units.quant16 import Quant16
    return Quant16(bias=bias)


def _fmatree(ways, pipeline):
    from hw.units.fma_tree import FmaTree
    return FmaTree(ways=ways, pipeline=pipeline)


def _quant30(room):
    from hw.units.quant30 import Quant30
    return Quant30(room=room)


def _dot(ways, pipeline, room):
    from hw.units.dot_engine import DotEngine
    return DotEngine(ways=ways, pipeline=pipeline, room=room)


def _matmul(rows, cols, dataflow, bias, pipeline):
    from hw.array import systolic_array
    return systolic_array(rows, cols, dataflow, bias=bias, pipeline=pipeline)


_BIAS = Param("bias", E4M3.bias, *E4M3.bias_range, "e4m3 exponent bias")
_WAYS = Param("ways", 24, 1, 1024, "products summed per cycle (N)")
_ROOM = Param("room", 1, 0, 15, "binades the shared-bias rule keeps free at the top")

UNITS: dict[str, UnitSpec] = {
    "convert": UnitSpec(
        "convert", "e4m3/e5m2 to fp9 converter, source format chosen at run time",
        _convert, (_BIAS,)),
    "mpe": UnitSpec(
        "mpe", "mixed-precision MAC: fp8 (e4m3/e5m2 per operand) into dlfloat16, int4, int2",
        _mpe, (_BIAS, Param("pipeline", 2, 0, 6, "register stages (= latency in cycles)"))),
    "quant16": UnitSpec(
        "quant16", "dlfloat16 to e4m3/e5m2 quantizer (rne, sat or nan), format at run time",
        _quant16, (_BIAS,)),
    "fmatree": UnitSpec(
        "fmatree", "fp8seb N-way fused multiply-add tree with fp30 accumulator input",
        _fmatree, (_WAYS, Param("pipeline", 3, 0, 4, "register stages (= latency)"))),
    "quant30": UnitSpec(
        "quant30", "fp30 to fp8seb quantizer, run-time bias, max-exponent tracker",
        _quant30, (_ROOM,)),
    "dot": UnitSpec(
        "dot", "dot-product engine: fmatree chunks into an fp30 accumulator, then quant30",
        _dot, (_WAYS, Param("pipeline", 3, 0, 3, "register stages before the accumulator"),
               _ROOM)),
    "matmul": UnitSpec(
        "matmul", "systolic array of MPEs (rows x cols, output- or weight-stationary) "
        "with stream interfaces; mode and formats at run time",
        _matmul, (Param("rows", 4, 1, 64, "PE rows"), Param("cols", 4, 1, 64, "PE columns"),
                  Param("dataflow", "os", 0, 0, "os (output-stationary) or ws "
                        "(weight-stationary)", choices=DATAFLOWS),
                  _BIAS, Param("pipeline", 2, 0, 6, "MPE register stages (os: "
                                      "accumulations interleaved per PE)"))),
}


def get_unit(name: str) -> UnitSpec:
    try:
        return UNITS[name]
    except KeyError:
        raise BuildError(f"unknown unit {name!r} (units: {', '.join(UNITS)})") from None


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` to a dict; a malformed item is a BuildError."""
    try:
        return parse_params(items)
    except VectorError as e:
        raise BuildError(str(e)) from None
