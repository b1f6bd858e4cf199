"""One design on one device, as jobs: Yosys once (``synthesize``), then nextpnr once per
seed (``place_and_route``), read from nextpnr's report (utilization, Fmax, critical path);
``combine`` makes the design's ``Result`` of them (the median Fmax over the seeds). Each job
saves its outcome in the design's work directory and, with ``reuse``, reads it back
instead of running when nothing it depends on has changed. The jobs are plain functions
of plain values, so they run as Dask tasks in other processes (``hw.bench.cluster``);
``run_design`` runs one design's jobs in this process."""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from boards import toolchain
from fp8hw.files import write_text_atomic
from hw.bench import BenchError
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
    reused: bool = False                     # every job read back (--reuse)
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


def _nextpnr_args(dev: Device, seed: int) -> list[str]:
    return [*dev.args, "--json", "synth.json", "--freq", f"{dev.freq_mhz:g}",
            "--seed", str(seed), "--timing-allow-fail", "--report", f"report-seed{seed}.json"]



# The jobs ------------------------------------------------------------------------------

@dataclass
class Synthesis:
    """A Yosys job's outcome: its time and Yosys's flip-flop count, or why it failed."""
    seconds: float
    ffs: int | None = None
    error: str | None = None
    reused: bool = False        # read back from an earlier run (--reuse)


@dataclass
class Routing:
    """A nextpnr job's outcome (one seed): the utilization, the Fmax and the critical path,
    or why it failed (with the utilization nextpnr logged before it did)."""
    seed: int
    seconds: float
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)
    fmax: float | None = None
    path: dict | None = None
    error: str | None = None
    reused: bool = False

    def __post_init__(self):
        self.usage = {k: tuple(v) for k, v in self.usage.items()}   # lists when read back


def _digest(what) -> str:
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def job_stamps(design: Design, family: str, seeds: int) -> tuple[str, list[str]]:
    """What each job depends on, hashed: the Yosys job's sources, script and Yosys build;
    each nextpnr job's netlist (the Yosys job's stamp), options and nextpnr build. Made
    where the run starts, so that every worker compares against the same tools."""
    dev = DEVICES[family]
    synthesis = _digest({"sources": design.sources, "script": synthesis_script(design, family),
                         "yosys": toolchain.tool_identity("yosys")})
    nextpnr = toolchain.tool_identity(dev.cells.nextpnr)
    return synthesis, [_digest({"netlist": synthesis, "args": _nextpnr_args(dev, seed),
                                "nextpnr": nextpnr}) for seed in range(1, seeds + 1)]


def _saved_path(workdir: Path, job: str) -> Path:
    return workdir / f"{job}.result.json"


def _save(workdir: Path, job: str, stamp: str, outcome) -> None:
    fields = {k: v for k, v in asdict(outcome).items() if k != "reused"}
    write_text_atomic(_saved_path(workdir, job), json.dumps({"stamp": stamp, **fields},
                                                            indent=1))


def _read_back(kind, workdir: Path, job: str, stamp: str):
    """The outcome that a job with the same ``stamp`` saved, or None."""
    try:
        fields = json.loads(_saved_path(workdir, job).read_text())
        if fields.pop("stamp") != stamp:
            return None
        return kind(**fields, reused=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def synthesize(design: Design, family: str, workdir: str, stamp: str,
               reuse: bool = False) -> Synthesis:
    """The Yosys job: ``synth.json`` in ``workdir`` for the nextpnr jobs. A failure is
    ``Synthesis.error``, not raised."""
    workdir = Path(workdir)
    if reuse and (workdir / "synth.json").exists():
        saved = _read_back(Synthesis, workdir, "yosys", stamp)
        if saved:
            return saved
    workdir.mkdir(parents=True, exist_ok=True)
    # A new netlist: the outcomes of the nextpnr jobs on the old one are stale.
    for pattern in ("*.result.json", "nextpnr-seed*.log", "report-seed*.json", "synth.json"):
        for old in workdir.glob(pattern):
            old.unlink()
    for name, text in design.sources.items():
        (workdir / name).write_text(text)
    script = "; ".join(synthesis_script(design, family))
    run = toolchain.run_tool("yosys", ["-q", "-l", "yosys.log", "-p", script], workdir,
                             workdir / "yosys.out")
    if run.ok:
        ffs = toolchain.read_yosys_stat(workdir / "stat.json", family).ffs
        outcome = Synthesis(run.seconds, ffs)
    else:
        message = toolchain.first_error(run.output) or f"see {workdir / 'yosys.log'}"
        outcome = Synthesis(run.seconds, error=f"yosys failed: {message}")
    _save(workdir, "yosys", stamp, outcome)
    return outcome


def place_and_route(synthesis: Synthesis, family: str, workdir: str, seed: int, stamp: str,
                    reuse: bool = False) -> Routing | None:
    """The nextpnr job of one seed, on the netlist of the Yosys job whose outcome is
    ``synthesis``; None when that job failed. A failure of nextpnr is ``Routing.error``."""
    if synthesis.error:
        return None
    workdir = Path(workdir)
    job = f"nextpnr-seed{seed}"
    if reuse:
        saved = _read_back(Routing, workdir, job, stamp)
        if saved:
            return saved
    if not (workdir / "synth.json").exists():
        raise BenchError(f"{workdir / 'synth.json'} not found: the Dask workers must share "
                         "the work directory (--workdir)")
    dev = DEVICES[family]
    run = toolchain.run_tool(dev.cells.nextpnr, _nextpnr_args(dev, seed), workdir,
                             workdir / f"{job}.log")
    if not run.ok:
        outcome = Routing(seed, run.seconds, toolchain.log_utilization(run.output),
                          error=explain_nextpnr_failure(run.output))
    else:
        report_path = workdir / f"report-seed{seed}.json"
        report = toolchain.read_nextpnr_report(report_path)
        slowest = report.slowest()
        if slowest is None:
            outcome = Routing(seed, run.seconds, report.utilization,
                              error=f"nextpnr reported no Fmax (see {report_path})")
        else:
            critical = report.critical_path(slowest.clock)
            outcome = Routing(seed, run.seconds, report.utilization, slowest.mhz,
                              critical.summary() if critical else None)
    _save(workdir, job, stamp, outcome)
    return outcome


def combine(design: Design, family: str, workdir: str, synthesis: Synthesis,
            routings: list[Routing | None]) -> Result:
    """The design's result from its jobs: the median Fmax over the seeds, with the
    utilization and critical path of the median seed's run, or the first failure."""
    ran = [r for r in routings if r is not None]
    result = Result(design.unit, design.config, family, per_cycle=design.per_cycle,
                    op=design.op, note=design.note, workdir=workdir,
                    yosys_ffs=synthesis.ffs, synth_seconds=synthesis.seconds,
                    tool_seconds=synthesis.seconds + sum(r.seconds for r in ran),
                    reused=synthesis.reused and all(r.reused for r in ran),
                    error=synthesis.error)
    routed = [r for r in ran if r.error is None]
    result.fmax_seeds = [r.fmax for r in routed]
    result.pnr_seconds = [r.seconds for r in routed]
    failed = [r for r in ran if r.error]
    if failed:
        result.error, result.usage = failed[0].error, failed[0].usage
    elif routed:
        median = sorted(routed, key=lambda r: r.fmax)[(len(routed) - 1) // 2]   # lower middle
        result.usage, result.path = median.usage, median.path
    return result


def run_design(design: Design, family: str, workdir: Path, seeds: int, *,
               reuse: bool = False) -> Result:
    """Every job of ``design`` on ``family``, one after another in this process (the
    command runs them as Dask tasks: ``hw.bench.cluster``)."""
    synthesis_stamp, seed_stamps = job_stamps(design, family, seeds)
    synthesis = synthesize(design, family, str(workdir), synthesis_stamp, reuse)
    routings = [place_and_route(synthesis, family, str(workdir), seed, stamp, reuse)
                for seed, stamp in enumerate(seed_stamps, 1)]
    return combine(design, family, str(workdir), synthesis, routings)
