"""Place-and-route benchmark of the units: ``python -m hw.bench [--only NAME] [--family F]``.

For every configuration in ``CONFIGS`` and every FPGA family, wraps the unit's Verilog
(from the registry) in a measurement harness, synthesizes it with Yosys and places and
routes it with nextpnr (the YoWASP tools from PyPI), and reports nextpnr's utilization
and Fmax and the peak throughput, as a Markdown table on stdout and in ``--out``.

The harness (``Harness``): every unit input comes from a register of a shift chain fed by
one pin, and every unit output goes into a register, so the Fmax is register to register
through the unit (a sequential unit's ``clk`` is the harness clock and its ``rst`` one
more chain bit). The output registers are folded by a registered XOR tree (4 inputs a
level) into one pin, and the chain's last bit goes to another pin, so nothing is optimized
away and the design has four pins: ``clk``, ``sin``, ``sout``, ``chain_out``.

Yosys maps the unit by itself (as ``python -m hw.synth`` does) and the harness around it
as a black box, then joins the two netlists without optimizing across them: the unit's
cells are exactly its own synthesis, and no harness register is merged into the unit or
the chain. The main table's figures include the harness; the second table is the same
harness around wires (output bit j = input bit j), once per port-width pair, so its
overhead can be subtracted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Callable

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.back import verilog as amaranth_verilog

from boards.flow import (TOOL_DEFAULTS, TOOL_PACKAGES, first_error, overfull_resources,
                         parse_fmax, parse_utilization)
from hw.registry import BuildError, get_unit

DEEPEST = object()   # a parameter value: the largest the registry accepts


def _array_macs(params) -> int:
    return params["rows"] * params["cols"]


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
    Config("quant16", (), 1, "conv"),
    Config("quant30", (), 1, "conv"),
    Config("fmatree", (("ways", 24),), 24, "MAC"),
    Config("fmatree", (("ways", 24), ("pipeline", DEEPEST)), 24, "MAC"),
    Config("matmul", (("rows", 2), ("cols", 2)) + _WS5, _array_macs, "MAC", "FP8"),
    Config("matmul", (("rows", 4), ("cols", 4)) + _WS5, _array_macs, "MAC", "FP8", big=True),
    Config("matmul", (("rows", 8), ("cols", 8)) + _WS5, _array_macs, "MAC", "FP8", big=True),
)


@dataclass(frozen=True)
class Device:
    family: str
    name: str
    nextpnr: str                 # the tool's name (its environment variable: upper case)
    args: tuple[str, ...]
    freq_mhz: float              # clock constraint, above any Fmax reached here
    lut: str                     # nextpnr's cell names
    ff: str | None               # None: flip-flops from Yosys (iCE40 LCs hold LUT and FF)
    dsp: str
    bram: str
    yosys_ff_prefix: str


DEVICES: dict[str, Device] = {
    "ecp5": Device("ecp5", "LFE5U-85F", "nextpnr-ecp5",
                   ("--85k", "--package", "CABGA381", "--lpf-allow-unconstrained"), 400,
                   "TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD", "TRELLIS_FF"),
    "ice40": Device("ice40", "iCE40UP5K", "nextpnr-ice40",
                    ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"), 250,
                    "ICESTORM_LC", None, "ICESTORM_DSP", "ICESTORM_RAM", "SB_DFF"),
}
FAMILIES = tuple(DEVICES)


class BenchError(RuntimeError):
    """Something that stops the whole run (a missing tool, a bad option)."""


# The harness --------------------------------------------------------------------------

@dataclass(frozen=True)
class Port:
    direction: str      # "input" or "output"
    width: int
    name: str


_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\S+);", re.M)


def module_ports(verilog_text: str, module: str) -> list[Port]:
    """The ports of ``module`` in Verilog as Amaranth writes it, in declaration order."""
    match = re.search(rf"^module {re.escape(module)}\s*\((.*?)^endmodule", verilog_text,
                      re.S | re.M)
    if match is None:
        raise BenchError(f"module {module} not found in its Verilog")
    ports = []
    for direction, msb, lsb, name in _PORT.findall(match[1]):
        width = abs(int(msb) - int(lsb)) + 1 if msb else 1
        ports.append(Port(direction, width, name))
    return ports


def _is_clock(port: Port) -> bool:
    return port.direction == "input" and port.name == "clk" and port.width == 1


def harness_widths(ports: list[Port]) -> tuple[int, int]:
    """Bits of the input chain and of the output registers for a unit with ``ports``."""
    w_in = sum(p.width for p in ports if p.direction == "input" and not _is_clock(p))
    w_out = sum(p.width for p in ports if p.direction == "output")
    return w_in, w_out


class Harness(Elaboratable):
    """Registers around the module ``module`` with ports ``ports``, instantiated as
    ``unit``."""

    TREE_FANIN = 4

    def __init__(self, module: str, ports: list[Port]):
        self.module = module
        self.unit_ports = list(ports)
        self.w_in, self.w_out = harness_widths(self.unit_ports)
        self.clk = Signal()
        self.sin = Signal()
        self.sout = Signal()
        self.chain_out = Signal()

    @property
    def ports(self):
        return [self.clk, self.sin, self.sout, self.chain_out]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", reset_less=True)
        m.d.comb += cd.clk.eq(self.clk)

        chain = Signal(self.w_in)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        m.d.comb += self.chain_out.eq(chain[-1])

        connections, at_in, outputs = {}, 0, []
        for port in self.unit_ports:
            if _is_clock(port):
                connections[f"i_{port.name}"] = ClockSignal("sync")
            elif port.direction == "input":
                connections[f"i_{port.name}"] = chain[at_in:at_in + port.width]
                at_in += port.width
            else:
                wire = Signal(port.width, name=f"u_{port.name}")
                connections[f"o_{port.name}"] = wire
                outputs.append(wire)
        m.submodules.unit = Instance(self.module, **connections)
        captured = Signal(self.w_out)
        m.d.sync += captured.eq(Cat(*outputs))

        level = list(captured)
        while len(level) > 1:
            folded = []
            for i in range(0, len(level), self.TREE_FANIN):
                bit = Signal(name=f"xor_{len(level)}_{i}")
                m.d.sync += bit.eq(reduce(xor, level[i:i + self.TREE_FANIN]))
                folded.append(bit)
            level = folded
        m.d.comb += self.sout.eq(level[0] if level else 0)
        return m


PASSTHROUGH = "passthrough"


def passthrough_verilog(w_in: int, w_out: int) -> str:
    """A module of wires with the harness widths: output bit j = input bit j mod w_in."""
    bits = ", ".join(f"i[{j % w_in}]" for j in reversed(range(w_out)))
    return (f"module {PASSTHROUGH}(input [{w_in - 1}:0] i, output [{w_out - 1}:0] o);\n"
            f"  assign o = {{{bits}}};\nendmodule\n")


def harness_verilog(harness: Harness, name: str = "bench_top") -> str:
    return amaranth_verilog.convert(harness, name=name, ports=harness.ports, emit_src=False)


# Tools --------------------------------------------------------------------------------

def tool_command(tool: str, check: bool = True) -> str:
    """The command for ``tool`` (``yosys``, ``nextpnr-ecp5``, ...): its environment variable,
    as amaranth reads it, or the YoWASP default. Raises BenchError when it is missing."""
    var = tool.upper().replace("-", "_")
    command = os.environ.get(var, TOOL_DEFAULTS[var])
    if check and shutil.which(command) is None:
        raise BenchError(f"{tool} not found: {var}={command} is not a command "
                         f"(pip install {TOOL_PACKAGES.get(tool, command)}, or set {var})")
    return command


def source_revision() -> str:
    """The git commit of the code being measured, with ``-dirty`` for local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                              cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def tool_version(command: str, flag: str) -> str:
    try:
        proc = subprocess.run([command, flag], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout + proc.stderr).strip()
    short = re.search(r"\b(Yosys \S+)|Version (nextpnr-[^)\s]+)", text)
    if short:
        return short[1] or short[2]
    return text.splitlines()[0].strip() if text else "?"


_PATH_SECTION = re.compile(r"Critical path report for clock '[^']*' \(posedge -> posedge\):\n"
                           r"(.*?)Info: ([\d.]+) ns logic, ([\d.]+) ns routing", re.S)
_PATH_END = re.compile(r"^Info:\s+(?:clk-to-q|logic|setup|source)\s+[\d.]+\s+[\d.]+\s+"
                       r"Source (\S+)", re.M)


def critical_path(log: str) -> dict | None:
    """nextpnr's last register-to-register critical path: its first and last cell pins
    and its logic and routing delays (ns)."""
    sections = list(_PATH_SECTION.finditer(log))
    if not sections:
        return None
    last = sections[-1]
    pins = _PATH_END.findall(last[1])
    levels = len(re.findall(r"^Info:\s+logic\s", last[1], re.M))
    return {"from": pins[0] if pins else "?", "to": pins[-1] if pins else "?",
            "logic_levels": levels, "logic_ns": float(last[2]), "routing_ns": float(last[3])}


def explain_nextpnr_failure(log: str) -> str:
    """One line for a failed nextpnr run: ``does not fit (needs X of Y CELL)`` when the
    design is larger than the device, otherwise nextpnr's first error."""
    over = overfull_resources(log)
    if over and over[0][1] is None:
        return f"does not fit (out of {over[0][0]})"
    if over:
        return f"does not fit (needs {', '.join(f'{u} of {t} {c}' for c, u, t in over)})"
    return f"nextpnr failed: {first_error(log) or 'no error message'}"


# One design on one device ---------------------------------------------------------------

@dataclass
class Result:
    unit: str
    config: str
    family: str
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)   # nextpnr cell: used, total
    yosys_ffs: int | None = None
    fmax_seeds: list[float] = field(default_factory=list)
    pnr_seconds: list[float] = field(default_factory=list)
    synth_seconds: float | None = None
    tool_seconds: float = 0.0                # Yosys and every nextpnr run, failed ones too
    reused: bool = False                     # read back from an earlier run (--reuse)
    error: str | None = None
    path: dict | None = None                 # critical path of the median seed's run
    per_cycle: int = 1
    op: str = "MAC"
    note: str = ""
    workdir: str = ""

    @property
    def device(self) -> Device:
        return DEVICES[self.family]

    @property
    def fmax(self) -> float | None:
        return statistics.median(self.fmax_seeds) if self.fmax_seeds else None

    @property
    def pnr_time(self) -> float | None:
        return statistics.median(self.pnr_seconds) if self.pnr_seconds else None

    def resource(self, kind: str) -> tuple[int, int] | None:
        """(used, total) of ``lut``, ``ff``, ``dsp`` or ``bram`` on this device."""
        dev = self.device
        if kind == "ff" and dev.ff is None:
            lc = self.usage.get(dev.lut)
            if self.yosys_ffs is None or lc is None:
                return None
            return self.yosys_ffs, lc[1]
        return self.usage.get(getattr(dev, kind))

    def throughput(self) -> str:
        if self.fmax is None or self.per_cycle == 0:
            return "-"
        rate = self.per_cycle * self.fmax * 1e6
        if self.op == "MAC":
            text = f"{rate / 1e9:#.3g} GMAC/s"
        else:
            text = f"{rate / 1e6:#.4g} M{self.op}/s"
        return f"{text} ({self.note})" if self.note else text

    def to_json(self) -> dict:
        return {"unit": self.unit, "config": self.config, "family": self.family,
                "device": self.device.name, "usage": self.usage, "yosys_ffs": self.yosys_ffs,
                "fmax_mhz": self.fmax, "fmax_seeds": self.fmax_seeds,
                "pnr_seconds": self.pnr_seconds, "synth_seconds": self.synth_seconds,
                "tool_seconds": self.tool_seconds, "error": self.error,
                "throughput": self.throughput(), "critical_path": self.path,
                "workdir": self.workdir}


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


def synthesis_script(design: Design, family: str) -> list[str]:
    """Yosys commands: the unit by itself, the harness around it as a black box, then the
    two netlists joined with nothing optimized across them (``synth.json``, ``stat.json``)."""
    unit, top = design.module, design.top
    return [
        "read_verilog unit.v",
        f"hierarchy -check -top {unit}",
        f"synth_{family} -top {unit}",
        "design -stash unit",
        "read_verilog -lib unit.v",
        "read_verilog harness.v",
        f"hierarchy -check -top {top}",
        f"synth_{family} -top {top}",
        f"delete {unit}",
        f"design -copy-from unit -as {unit} {unit}",
        f"hierarchy -check -top {top}",
        "flatten",
        "opt_clean",
        "check -assert",
        "tee -q -o stat.json stat -json",
        "write_json synth.json",
    ]


_SAVED_FIELDS = ("usage", "yosys_ffs", "fmax_seeds", "pnr_seconds", "synth_seconds",
                 "tool_seconds", "error", "path")


def _nextpnr_command(dev: Device, seed: int, check: bool = True) -> list[str]:
    return [tool_command(dev.nextpnr, check), *dev.args, "--json", "synth.json",
            "--freq", f"{dev.freq_mhz:g}", "--seed", str(seed), "--timing-allow-fail"]


def _stamp(design: Design, family: str, seeds: int) -> str:
    """What a measurement depends on: sources, Yosys script, nextpnr commands."""
    what = {"sources": design.sources, "script": synthesis_script(design, family),
            "nextpnr": [_nextpnr_command(DEVICES[family], s, check=False)
                        for s in range(1, seeds + 1)]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def run_design(design: Design, family: str, workdir: Path, seeds: int,
               log: Callable[[str], None] = lambda s: None, *, reuse: bool = False) -> Result:
    """Yosys and nextpnr (seeds 1..``seeds``) for ``design`` on ``family``. Tool failures
    and designs that do not fit end up in ``Result.error``; nothing is raised for them.

    The result is saved in ``workdir/result.json``; with ``reuse``, a saved result of the
    same sources, Yosys script and nextpnr commands is returned instead of measuring."""
    stamp = _stamp(design, family, seeds)
    saved = workdir / "result.json"
    if reuse and saved.exists():
        try:
            data = json.loads(saved.read_text())
        except ValueError:
            data = {}
        if data.get("stamp") == stamp:
            result = Result(design.unit, design.config, family, per_cycle=design.per_cycle,
                            op=design.op, note=design.note, workdir=str(workdir), reused=True)
            for name in _SAVED_FIELDS:
                setattr(result, name, data[name])
            result.usage = {k: tuple(v) for k, v in result.usage.items()}
            log(f"{design.unit} {design.config} {family}: reused {saved}")
            return result
    saved.unlink(missing_ok=True)
    result = _measure(design, family, workdir, seeds, log)
    saved.write_text(json.dumps({"stamp": stamp, **{name: getattr(result, name)
                                                     for name in _SAVED_FIELDS}}, indent=1))
    return result


def _measure(design: Design, family: str, workdir: Path, seeds: int,
             log: Callable[[str], None]) -> Result:
    dev = DEVICES[family]
    result = Result(design.unit, design.config, family, per_cycle=design.per_cycle,
                    op=design.op, note=design.note, workdir=str(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("nextpnr-seed*.log"):
        old.unlink()
    for name, text in design.sources.items():
        (workdir / name).write_text(text)
    what = f"{design.unit} {design.config} {family}"

    script = "; ".join(synthesis_script(design, family))
    start = time.monotonic()
    proc = subprocess.run([tool_command("yosys"), "-q", "-l", "yosys.log", "-p", script],
                          cwd=workdir, capture_output=True, text=True)
    result.synth_seconds = time.monotonic() - start
    result.tool_seconds += result.synth_seconds
    if proc.returncode != 0:
        message = first_error(proc.stderr + proc.stdout) or f"see {workdir / 'yosys.log'}"
        result.error = f"yosys failed: {message}"
        log(f"{what}: {result.error}")
        return result
    stat = json.loads((workdir / "stat.json").read_text())
    cells = stat["design"].get("num_cells_by_type", {})
    result.yosys_ffs = sum(int(n) for c, n in cells.items() if c.startswith(dev.yosys_ff_prefix))
    log(f"{what}: yosys {result.synth_seconds:.1f} s")

    paths = []
    for seed in range(1, seeds + 1):
        log_path = workdir / f"nextpnr-seed{seed}.log"
        start = time.monotonic()
        with open(log_path, "w") as out:
            proc = subprocess.run(_nextpnr_command(dev, seed), cwd=workdir, stdout=out,
                                  stderr=subprocess.STDOUT)
        seconds = time.monotonic() - start
        result.tool_seconds += seconds
        text = log_path.read_text(errors="replace")
        if proc.returncode != 0:
            result.usage = parse_utilization(text) or result.usage
            result.error = explain_nextpnr_failure(text)
            log(f"{what}: seed {seed}: {result.error} ({seconds:.1f} s)")
            return result
        clocks = parse_fmax(text)
        if not clocks:
            result.error = f"nextpnr reported no Fmax (see {log_path})"
            log(f"{what}: seed {seed}: {result.error}")
            return result
        result.usage = parse_utilization(text)
        result.fmax_seeds.append(min(c.mhz for c in clocks))
        result.pnr_seconds.append(seconds)
        paths.append(critical_path(text))
        path = paths[-1] or {}
        log(f"{what}: seed {seed}: Fmax {result.fmax_seeds[-1]:.2f} MHz, nextpnr "
            f"{seconds:.1f} s; critical path {path.get('from')} -> {path.get('to')}, "
            f"{path.get('logic_levels')} logic levels, {path.get('logic_ns')} ns logic, "
            f"{path.get('routing_ns')} ns routing")
    # The path of the seed whose Fmax is the median (the lower middle one).
    order = sorted(range(len(paths)), key=lambda i: result.fmax_seeds[i])
    result.path = paths[order[(len(order) - 1) // 2]]
    return result


# Configurations to designs ------------------------------------------------------------

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


# The table ----------------------------------------------------------------------------

COLUMNS = ("unit", "configuration", "device", "LUT4", "FF", "DSP", "BRAM", "Fmax MHz",
           "peak throughput", "P&R time (s)")


def _amount(pair: tuple[int, int] | None) -> str:
    if pair is None:
        return "-"
    used, total = pair
    return f"{used} ({100 * used / total:.1f}%)" if total else str(used)


def _zero_or_amount(result: Result, kind: str) -> str:
    pair = result.resource(kind)
    if pair is None and result.usage and result.fmax is not None:
        return "0"          # routed, and nextpnr lists no such cell
    return _amount(pair)


def table_row(result: Result) -> list[str]:
    if result.error:
        fmax = result.error
    elif result.fmax is None:
        fmax = "-"
    elif len(result.fmax_seeds) > 1:
        fmax = (f"{result.fmax:.1f} (median of {len(result.fmax_seeds)}: "
                f"{min(result.fmax_seeds):.1f}-{max(result.fmax_seeds):.1f})")
    else:
        fmax = f"{result.fmax:.1f}"
    pnr = f"{result.pnr_time:.0f}" if result.pnr_time is not None else "-"
    return [f"`{result.unit}`" if result.unit != "harness only" else result.unit,
            result.config, result.device.name, _amount(result.resource("lut")),
            _amount(result.resource("ff")), _zero_or_amount(result, "dsp"),
            _zero_or_amount(result, "bram"), fmax, result.throughput(), pnr]


def format_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for result in results:
        lines.append("| " + " | ".join(table_row(result)) + " |")
    return "\n".join(lines)


def format_report(unit_results: list[Result], harness_results: list[Result], *,
                  seeds: int, versions: dict[str, str], seconds: float,
                  revision: str = "unknown") -> str:
    constraint = ", ".join(f"{d.name} {d.freq_mhz:g} MHz" for d in DEVICES.values())
    seed_text = "seed 1" if seeds == 1 else f"median over seeds 1..{seeds}"
    parts = [
        "Units in the measurement harness (`python -m hw.bench`): every input from a "
        "register of a serial shift chain, every output into a register, XOR-folded to a "
        "pin by a registered tree, so Fmax is register to register through the unit; Yosys "
        "maps the unit alone and joins it to the harness without optimizing across. The "
        "figures include the harness; the second table is the harness alone (around wires "
        "of the same port widths), to subtract.",
        f"nextpnr: {seed_text}, `--timing-allow-fail`, clock constraint {constraint}; "
        "LUT4 = TRELLIS_COMB (ECP5) or ICESTORM_LC logic cells (iCE40, including "
        "flip-flop-only cells); FF = TRELLIS_FF (ECP5) or Yosys's SB_DFF* cells as a share "
        "of the logic cells (iCE40); DSP = MULT18X18D / ICESTORM_DSP (SB_MAC16); BRAM = "
        "DP16KD / ICESTORM_RAM; P&R time = nextpnr wall clock"
        f"{' (median)' if seeds > 1 else ''}.",
        "Tools: " + ", ".join(f"{v} (`{k}`)" for k, v in versions.items()) + "; source: git "
        + revision + ".",
        "",
        format_table(unit_results),
    ]
    if harness_results:
        parts += ["", "Harness alone (the overhead included above):", "",
                  format_table(harness_results)]
    everything = unit_results + harness_results
    tools = sum(r.tool_seconds for r in everything)
    reused = sum(r.reused for r in everything)
    total = f"Total run time: {_duration(seconds)}; Yosys and nextpnr, summed over the designs: "
    total += f"{_duration(tools)}"
    if reused:
        total += (f" ({reused} of {len(everything)} designs reused from an earlier run with "
                  f"--reuse, with that run's times)")
    parts += ["", total + "."]
    return "\n".join(parts) + "\n"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


# The command --------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BenchError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m hw.bench",
                description="Place and route every unit configuration (CONFIGS in hw/bench.py) "
                "in a register harness on ECP5 and iCE40; a Markdown table of utilization, "
                "Fmax and peak throughput.")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="only this unit (repeatable, or comma-separated)")
    p.add_argument("--family", action="append", choices=FAMILIES,
                   help="ecp5 or ice40 (repeatable; default both)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="nextpnr seeds 1..N, median Fmax (default 1)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="designs placed and routed at once (default 1)")
    p.add_argument("--quick", action="store_true", help="skip the 4x4 and 8x8 arrays")
    p.add_argument("--reuse", action="store_true",
                   help="take a design's result from its work directory when an earlier run "
                   "measured the same sources with the same commands (to finish an "
                   "interrupted sweep)")
    p.add_argument("--no-harness-table", action="store_true",
                   help="skip the harness-only runs")
    p.add_argument("--out", default="build/bench.md", help="Markdown output (build/bench.md)")
    p.add_argument("--workdir", default="build/bench",
                   help="per-design work directories (build/bench)")
    return p


def select_configs(only: list[str] | None, quick: bool) -> list[Config]:
    names = [n.strip() for item in (only or []) for n in item.split(",") if n.strip()]
    known = {c.unit for c in CONFIGS}
    for name in names:
        if name not in known:
            get_unit(name)      # an unknown unit: the registry's message
            raise BenchError(f"unit {name!r} has no benchmark configuration "
                             f"(benchmarked: {', '.join(sorted(known))})")
    return [c for c in CONFIGS if (not names or c.unit in names) and not (quick and c.big)]


def run(args) -> int:
    started = time.monotonic()
    families = list(dict.fromkeys(args.family or FAMILIES))
    if args.seeds < 1 or args.jobs < 1:
        raise BenchError("--seeds and --jobs must be at least 1")
    commands = {"yosys": tool_command("yosys")}
    for family in families:
        commands[DEVICES[family].nextpnr] = tool_command(DEVICES[family].nextpnr)
    versions = {cmd: tool_version(cmd, "-V" if tool == "yosys" else "--version")
                for tool, cmd in commands.items()}
    configs = select_configs(args.only, args.quick)
    revision = source_revision()     # before the units are imported and elaborated
    workdir = Path(args.workdir)
    print_lock, build_lock = threading.Lock(), threading.Lock()

    def log(text: str) -> None:
        with print_lock:
            print(f"[bench {_duration(time.monotonic() - started)}] {text}", file=sys.stderr,
                  flush=True)

    # Elaboration is quick next to place and route; it runs one at a time (Amaranth and
    # its built-in Yosys are not meant to be shared by threads).
    def unit_task(config: Config, family: str, cache: dict) -> Result:
        config_text = describe(resolve_config(config))
        try:
            with build_lock:
                if config not in cache:
                    log(f"{config.unit} {config_text}: generating Verilog")
                    cache[config] = unit_design(config)
                design, widths = cache[config]
            return run_design(design, family, workdir / design.key / family, args.seeds, log,
                              reuse=args.reuse)
        except BenchError:
            raise               # a missing tool: the whole run stops with one line
        except Exception as e:  # noqa: BLE001 - one design's failure is a table cell
            log(f"{config.unit} {config_text} {family}: failed: {e!r}")
            return Result(config.unit, config_text, family, error=f"failed: {e}")

    def harness_task(design: Design, family: str) -> Result:
        try:
            return run_design(design, family, workdir / design.key / family, args.seeds, log,
                              reuse=args.reuse)
        except BenchError:
            raise
        except Exception as e:  # noqa: BLE001
            log(f"{design.config} {family}: failed: {e!r}")
            return Result(design.unit, design.config, family, per_cycle=0,
                          error=f"failed: {e}")

    cache: dict = {}
    tasks = [(c, f) for c in configs for f in families]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        unit_results = list(pool.map(lambda t: unit_task(*t, cache), tasks))
        harness_results = []
        if not args.no_harness_table:
            users: dict[tuple[int, int], list[str]] = {}
            for c in configs:
                if c in cache:
                    widths, params = cache[c][1], resolve_config(c)
                    label = c.unit + (f" {params['rows']}x{params['cols']}"
                                      if "rows" in params else "")
                    users.setdefault(widths, [])
                    if label not in users[widths]:
                        users[widths].append(label)
            designs = [harness_design(w, "; ".join(u)) for w, u in users.items()]
            harness_results = list(pool.map(lambda t: harness_task(*t),
                                            [(d, f) for d in designs for f in families]))

    report = format_report(unit_results, harness_results, seeds=args.seeds,
                           versions=versions, seconds=time.monotonic() - started,
                           revision=revision)
    print(report, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    raw = workdir / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps([r.to_json() for r in unit_results + harness_results], indent=1))
    log(f"wrote {out} and {raw}")
    return 0


def main(argv=None) -> int:
    try:
        return run(_parser().parse_args(argv))
    except (BenchError, BuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
