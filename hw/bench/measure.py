"""One design on one device: Yosys, then nextpnr once per seed, with nextpnr's report for
the utilization, the Fmax and the critical path (``run_design``); the result is saved in
the design's work directory and, with ``reuse``, read back when nothing it depends on has
changed."""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from boards import toolchain
from hw.bench.configs import Design


@dataclass(frozen=True)
class Device:
    """The part of a family the benchmark places and routes on, and the clock it asks
    nextpnr for."""
    family: str
    name: str
    args: tuple[str, ...]        # nextpnr's device options
    freq_mhz: float              # clock constraint, above any Fmax reached here

    @property
    def cells(self) -> toolchain.Family:
        return toolchain.FAMILIES[self.family]


DEVICES: dict[str, Device] = {
    "ecp5": Device("ecp5", "LFE5U-85F",
                   ("--85k", "--package", "CABGA381", "--lpf-allow-unconstrained"), 400),
    "ice40": Device("ice40", "iCE40UP5K",
                    ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"), 250),
}
FAMILIES = tuple(DEVICES)


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
        cells = self.device.cells
        if kind == "ff" and cells.ff is None:
            lc = self.usage.get(cells.lut)
            if self.yosys_ffs is None or lc is None:
                return None
            return self.yosys_ffs, lc[1]
        return self.usage.get(getattr(cells, kind))

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


def explain_nextpnr_failure(log: str) -> str:
    """One line for a failed nextpnr run: ``does not fit (needs X of Y CELL)`` when the
    design is larger than the device, otherwise nextpnr's first error."""
    over = toolchain.overfull_resources(log)
    if over and over[0][1] is None:
        return f"does not fit (out of {over[0][0]})"
    if over:
        return f"does not fit (needs {', '.join(f'{u} of {t} {c}' for c, u, t in over)})"
    return f"nextpnr failed: {toolchain.first_error(log) or 'no error message'}"


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


def _nextpnr_args(dev: Device, seed: int) -> list[str]:
    return [*dev.args, "--json", "synth.json", "--freq", f"{dev.freq_mhz:g}",
            "--seed", str(seed), "--timing-allow-fail", "--report", f"report-seed{seed}.json"]


def _stamp(design: Design, family: str, seeds: int) -> str:
    """What a measurement depends on: sources, Yosys script, nextpnr's options, and which
    Yosys and nextpnr run them."""
    nextpnr = DEVICES[family].cells.nextpnr
    what = {"sources": design.sources, "script": synthesis_script(design, family),
            "nextpnr": [_nextpnr_args(DEVICES[family], s) for s in range(1, seeds + 1)],
            "tools": [toolchain.tool_identity(t) for t in ("yosys", nextpnr)]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def run_design(design: Design, family: str, workdir: Path, seeds: int,
               log: Callable[[str], None] = lambda s: None, *, reuse: bool = False) -> Result:
    """Yosys and nextpnr (seeds 1..``seeds``) for ``design`` on ``family``. Tool failures
    and designs that do not fit end up in ``Result.error``; nothing is raised for them.

    The result is saved in ``workdir/result.json``; with ``reuse``, a saved result of the
    same sources, Yosys script, nextpnr options and tools is returned instead of
    measuring."""
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
    for pattern in ("nextpnr-seed*.log", "report-seed*.json"):
        for old in workdir.glob(pattern):
            old.unlink()
    for name, text in design.sources.items():
        (workdir / name).write_text(text)
    what = f"{design.unit} {design.config} {family}"

    script = "; ".join(synthesis_script(design, family))
    run = toolchain.run_tool("yosys", ["-q", "-l", "yosys.log", "-p", script], workdir,
                             workdir / "yosys.out")
    result.synth_seconds = run.seconds
    result.tool_seconds += run.seconds
    if not run.ok:
        message = toolchain.first_error(run.output) or f"see {workdir / 'yosys.log'}"
        result.error = f"yosys failed: {message}"
        log(f"{what}: {result.error}")
        return result
    result.yosys_ffs = toolchain.read_yosys_stat(workdir / "stat.json", family).ffs
    log(f"{what}: yosys {result.synth_seconds:.1f} s")

    paths = []
    for seed in range(1, seeds + 1):
        log_path = workdir / f"nextpnr-seed{seed}.log"
        run = toolchain.run_tool(dev.cells.nextpnr, _nextpnr_args(dev, seed), workdir,
                                 log_path)
        result.tool_seconds += run.seconds
        if not run.ok:
            result.usage = toolchain.log_utilization(run.output) or result.usage
            result.error = explain_nextpnr_failure(run.output)
            log(f"{what}: seed {seed}: {result.error} ({run.seconds:.1f} s)")
            return result
        report_path = workdir / f"report-seed{seed}.json"
        report = toolchain.read_nextpnr_report(report_path)
        slowest = report.slowest()
        if slowest is None:
            result.error = f"nextpnr reported no Fmax (see {report_path})"
            log(f"{what}: seed {seed}: {result.error}")
            return result
        result.usage = report.utilization
        result.fmax_seeds.append(slowest.mhz)
        result.pnr_seconds.append(run.seconds)
        critical = report.critical_path(slowest.clock)
        paths.append(critical.summary() if critical else None)
        log(f"{what}: seed {seed}: Fmax {slowest.mhz:.2f} MHz, nextpnr {run.seconds:.1f} s; "
            f"critical path {critical.describe() if critical else 'not reported'}")
    # The path of the seed whose Fmax is the median (the lower middle one).
    order = sorted(range(len(paths)), key=lambda i: result.fmax_seeds[i])
    result.path = paths[order[(len(order) - 1) // 2]]
    return result
