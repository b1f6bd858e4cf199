"""What the benchmark measures: one ``Config`` a line in ``CONFIGS``, and the designs (a
unit in its harness, or the harness alone) made from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hw.bench import BenchError
from hw.bench.harness import (PASSTHROUGH, Harness, Port, harness_verilog, module_ports,
                              passthrough_verilog)
from hw.registry import get_unit

DEEPEST = object()   # a parameter value: the largest the registry accepts


def _array_macs(params) -> int:
    return params["rows"] * params["cols"]


def _seb_array_macs(params) -> int:
    return params["rows"] * params["cols"] * params["ways"]


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration: the unit, its generator parameters (the rest are
    the registry's defaults), the operations a cycle (an int, or a function of the
    resolved parameters), what an operation is, a note for the throughput column, and
    whether ``--quick`` skips it."""
    unit: str
    params: tuple = ()
    per_cycle: int | Callable[[dict], int] = 1
    op: str = "MAC"
    note: str = ""
    big: bool = False


_WS5 = (("dataflow", "ws"), ("pipeline", 5))

# The benchmarked configurations, one a line.
CONFIGS: tuple[Config, ...] = (
    Config("convert", (("bias", 11),), 1, "conv"),
    Config("mpe", (("pipeline", 2),), 1, "MAC", "FP8; INT4 2x, INT2 4x"),
    Config("mpe", (("pipeline", 4),), 1, "MAC", "FP8; INT4 2x, INT2 4x"),
    Config("mpe", (("pipeline", 5),), 1, "MAC", "FP8; INT4 2x, INT2 4x"),
    Config("mpe", (("pipeline", 8),), 1, "MAC", "FP8; INT4 2x, INT2 4x"),
    Config("mpe", (("pipeline", 8), ("multiplier", "dsp")), 1, "MAC",
           "FP8; INT4 2x, INT2 4x; the ULX3S's"),
    Config("quant16", (), 1, "conv"),
    Config("quant30", (), 1, "conv"),
    Config("dladd", (("pipeline", 0),), 1, "add"),
    Config("dladd", (("pipeline", 1),), 1, "add"),
    Config("dladd", (("pipeline", 2),), 1, "add"),
    Config("fmatree", (("ways", 24),), 24, "MAC", "LUT multipliers"),
    Config("fmatree", (("ways", 24), ("multiplier", "dsp")), 24, "MAC", "DSP multipliers"),
    Config("fmatree", (("ways", 8),), 8, "MAC", "LUT multipliers"),
    Config("matmul", (("rows", 2), ("cols", 2)) + _WS5, _array_macs, "MAC", "FP8"),
    Config("matmul", (("rows", 4), ("cols", 4)) + _WS5, _array_macs, "MAC", "FP8", big=True),
    Config("matmul", (("rows", 8), ("cols", 8)) + _WS5, _array_macs, "MAC", "FP8", big=True),
    Config("seb_array", (("rows", 1), ("cols", 1), ("ways", 8)), _seb_array_macs, "MAC",
           "FP8-SEB"),
    Config("seb_array", (("rows", 2), ("cols", 2), ("ways", 24)), _seb_array_macs, "MAC",
           "FP8-SEB", big=True),
)


@dataclass
class Design:
    """A harness top ready for Yosys: its unit's Verilog and the harness's."""
    key: str                     # work directory name under the bench directory
    unit: str
    config: str
    module: str                  # the unit's module, in unit.v
    sources: dict[str, str]      # unit.v and harness.v
    top: str = "bench_top"
    per_cycle: int = 1
    op: str = "MAC"
    note: str = ""


def resolve_config(config: Config) -> dict:
    """The configuration's full parameters, ``DEEPEST`` replaced by the registry's limit."""
    spec = get_unit(config.unit)
    limits = {p.name: p.hi for p in spec.params}
    overrides = {k: (limits[k] if v is DEEPEST else v) for k, v in config.params}
    return spec.resolve(overrides)


def describe(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def unit_design(config: Config) -> tuple[Design, tuple[int, int]]:
    """The harness around ``config``'s unit, and the harness's port widths."""
    spec = get_unit(config.unit)
    params = resolve_config(config)
    module = spec.module_name(params)
    unit_v = spec.verilog(params)
    harness = Harness(module, module_ports(unit_v, module))
    per_cycle = config.per_cycle(params) if callable(config.per_cycle) else config.per_cycle
    design = Design(module, config.unit, describe(params), module,
                    {"unit.v": unit_v, "harness.v": harness_verilog(harness)},
                    per_cycle=per_cycle, op=config.op, note=config.note)
    return design, (harness.w_in, harness.w_out)


def harness_design(widths: tuple[int, int], users: str = "") -> Design:
    """The harness of ``widths`` (input, output bits) around wires; ``users`` names the
    configurations it is the harness of."""
    w_in, w_out = widths
    harness = Harness(PASSTHROUGH, [Port("input", w_in, "i"), Port("output", w_out, "o")])
    return Design(f"harness_in{w_in}_out{w_out}", "harness only",
                  f"in {w_in} bits, out {w_out} bits" + (f" ({users})" if users else ""),
                  PASSTHROUGH,
                  {"unit.v": passthrough_verilog(w_in, w_out),
                   "harness.v": harness_verilog(harness)}, per_cycle=0)


def select_configs(only: list[str] | None, quick: bool) -> list[Config]:
    names = [n.strip() for item in (only or []) for n in item.split(",") if n.strip()]
    known = {c.unit for c in CONFIGS}
    for name in names:
        if name not in known:
            get_unit(name)      # an unknown unit: the registry's message
            raise BenchError(f"unit {name!r} has no benchmark configuration "
                             f"(benchmarked: {', '.join(sorted(known))})")
    return [c for c in CONFIGS if (not names or c.unit in names) and not (quick and c.big)]
