"""Bitstream builds and programming for the boards in ``boards.targets``.

``build(target, top, build_dir)`` has amaranth-boards' platform prepare the build (the
design's RTLIL, the Yosys script, the pin and clock constraints, the tool commands), then
runs its commands one by one with the tools of ``boards.toolchain`` (the YoWASP builds
from PyPI by default), a fixed nextpnr seed and ``--timing-allow-fail``, showing each
stage as it goes (``boards.progress``). nextpnr's report gives the utilization, the Fmax
and the critical path; the Fmax is checked against the board's clock by the caller.

A build whose plan (the design, the constraints, the commands with the seed), tools and
nextpnr options are those of the last bitstream in ``build_dir`` reuses that bitstream,
as Glasgow does, unless ``force``: the stamp beside it (``NAME.stamp.json``) holds the
key and the report of that build. ``program(result)`` loads a bitstream with
openFPGALoader.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from boards import toolchain
from boards.progress import Progress
from boards.targets import BoardError, BoardTarget
from boards.toolchain import CriticalPath, Fmax
from fp8hw.files import write_text_atomic

NEXTPNR_SEED = 1
STAMP_VERSION = 1            # of the stamp's layout: a stamp of another layout is ignored


def design_name(target: BoardTarget) -> str:
    """The name of ``target``'s design: its top module and its files' stem."""
    return f"fp8hw_{target.name}"


@dataclass
class BuildResult:
    """A built bitstream: where it is, nextpnr's utilization, Fmax and critical path,
    Yosys's flip-flop count, how long each step took (seconds), and whether it is the
    last build's bitstream, reused."""
    target: BoardTarget
    name: str
    build_dir: Path
    utilization: list[tuple[str, str, int, int]]      # label, nextpnr cell, used, total
    fmax: Fmax
    ffs: int
    seconds: dict[str, float] = field(default_factory=dict)
    critical_path: CriticalPath | None = None
    reused: bool = False

    @property
    def bitstream(self) -> Path:
        suffix = toolchain.FAMILIES[self.target.family].bitstream_suffix
        return self.build_dir / f"{self.name}.{suffix}"

    @property
    def timing_met(self) -> bool:
        return self.fmax.mhz >= self.target.clock_mhz

    def report(self) -> str:
        lines = []
        if self.reused:
            lines.append("reused the last build: design, constraints, tools and seed "
                         "unchanged (--force builds again)")
        lines.append("utilization (nextpnr):")
        for label, cell, used, total in self.utilization:
            lines.append(f"  {label:<14} {used:>6} / {total:<6} {100 * used / total:5.1f}%  "
                         f"({cell})")
        lines.append(f"  {'FF (yosys)':<14} {self.ffs:>6}")
        verdict = "met" if self.timing_met else "NOT met"
        lines.append(f"Fmax: {self.fmax.mhz:.2f} MHz for clock {self.fmax.clock!r}, target "
                     f"{self.target.clock_mhz:g} MHz: {verdict}")
        if self.critical_path is not None:
            lines.append(f"critical path: {self.critical_path.describe()}")
        when = "time (of that build)" if self.reused else "time"
        lines.append(f"{when}: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        lines.append(f"bitstream: {self.bitstream}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"utilization": self.utilization,
                "fmax": [self.fmax.clock, self.fmax.mhz, self.fmax.constraint_mhz],
                "ffs": self.ffs, "seconds": self.seconds,
                "critical_path": (None if self.critical_path is None
                                  else list(vars(self.critical_path).values()))}

    @classmethod
    def from_json(cls, target: BoardTarget, name: str, build_dir: Path, data: dict,
                  reused: bool = True) -> BuildResult:
        path = data["critical_path"]
        return cls(target, name, Path(build_dir),
                   [tuple(row) for row in data["utilization"]], Fmax(*data["fmax"]),
                   data["ffs"], data["seconds"], None if path is None else CriticalPath(*path),
                   reused)


# The build's key -----------------------------------------------------------------------

def build_key(plan, tools: dict[str, str], seed: int, nextpnr_opts: str) -> dict:
    """What a bitstream depends on: amaranth's build plan (the design's RTLIL, the Yosys
    script, the constraints and the tool commands), the identity of each tool, the seed
    and nextpnr's options (both are in the plan too; named here so the stamp says so)."""
    return {"stamp_version": STAMP_VERSION, "plan": plan.digest().hex(),
            "tools": dict(sorted(tools.items())), "seed": seed, "nextpnr_opts": nextpnr_opts}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp_path(build_dir: Path, name: str) -> Path:
    return build_dir / f"{name}.stamp.json"


def reusable_build(target: BoardTarget, name: str, build_dir: Path,
                   key: dict) -> BuildResult | None:
    """The last build in ``build_dir`` if its key is ``key`` and its bitstream is the one
    it made; otherwise None."""
    try:
        stamp = json.loads(_stamp_path(build_dir, name).read_text())
        if stamp["key"] != key:
            return None
        result = BuildResult.from_json(target, name, build_dir, stamp["result"])
        if _sha256(result.bitstream) != stamp["bitstream_sha256"]:
            return None
        return result
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_stamp(result: BuildResult, key: dict) -> None:
    stamp = {"key": key, "bitstream_sha256": _sha256(result.bitstream),
             "result": result.to_json()}
    write_text_atomic(_stamp_path(result.build_dir, result.name),
                      json.dumps(stamp, indent=1) + "\n")


# Building ------------------------------------------------------------------------------

def _remove_old_products(build_dir: Path, name: str) -> None:
    for pattern in (f"{name}.*", f"build_{name}.*"):
        for path in build_dir.glob(pattern):
            path.unlink()


def _explain_nextpnr_error(target: BoardTarget, message: str, log: str) -> str:
    device = target.platform.device
    over = toolchain.overfull_resources(log)
    if over and over[0][1] is not None:
        parts = [f"{cell} {used} of {total} ({100 * used / total:.0f}%)"
                 for cell, used, total in over]
        return f"design does not fit the {device}: {', '.join(parts)}; nextpnr: {message}"
    if over:
        return f"design does not fit the {device}: out of {over[0][0]}; nextpnr: {message}"
    return f"nextpnr failed for {target.name}: {message}"


def _log_argument(argv: list[str]) -> str | None:
    """The log file a Yosys (``-l``) or nextpnr (``--log``) command line writes."""
    for flag in ("-l", "--log"):
        if flag in argv[:-1]:
            return argv[argv.index(flag) + 1]
    return None


def _run_step(argv: list[str], build_dir: Path, name: str, progress: Progress,
              family: toolchain.Family) -> tuple[toolchain.ToolRun, Path]:
    """One command of the plan, with its stage and its output shown as it runs; returns
    the run and the tool's log (its own, or else its output)."""
    tool = argv[0]
    if tool == family.nextpnr:
        progress.stage("nextpnr: reading the netlist")

        def on_line(line: str) -> None:
            progress.tool_line(line)
            stage = toolchain.nextpnr_stage(line)
            if stage:
                progress.stage(f"nextpnr: {stage}")
    else:
        progress.stage(f"{tool}: {'synthesis' if tool == 'yosys' else 'bitstream'}")
        on_line = progress.tool_line
    output = build_dir / f"{name}.{tool}.out"
    log = build_dir / _log_argument(argv) if _log_argument(argv) else output
    run = toolchain.run_tool(tool, argv[1:], build_dir, output, follow=log, on_line=on_line,
                             on_tick=progress.tick)
    return run, log


def _failure(target: BoardTarget, run: toolchain.ToolRun, log_path: Path) -> BoardError:
    """The one line for a tool that failed, from its log."""
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    said = [ln.strip() for ln in run.output.splitlines() if ln.strip()]
    # No ERROR line: a tool that crashed (a YoWASP tool's WebAssembly trap, say) said why
    # last.
    message = (toolchain.first_error(log) or toolchain.first_error(run.output)
               or (said[-1] if said else None))
    if run.tool == "yosys":
        return BoardError(f"Yosys failed for {target.name}: {message or f'see {log_path}'}")
    if run.tool == toolchain.FAMILIES[target.family].nextpnr:
        return BoardError(_explain_nextpnr_error(target, message or f"see {log_path}",
                                                 log + run.output))
    return BoardError(f"bitstream packing failed for {target.name}: "
                      f"{message or f'see {log_path}'}")


def build(target: BoardTarget, top, build_dir: Path, *, yosys_after_read: str = "",
          seed: int = NEXTPNR_SEED, force: bool = False,
          progress: Progress | None = None) -> BuildResult:
    """Build the bitstream of ``top`` (an Elaboratable for ``target``'s platform) in
    ``build_dir`` and read its utilization, Fmax and critical path; or reuse the last one
    built there from the same plan, tools and seed, unless ``force``.

    ``yosys_after_read``: Yosys commands the design needs after it is read (see
    ``design_name`` for the top module's name). Raises ``BoardError`` when a tool fails
    (with nextpnr's reason, and the resource when the design does not fit) and
    ``toolchain.ToolError`` when one is missing. An Fmax below the target is not an error
    here: the result says so (``timing_met``).
    """
    progress = progress or Progress()
    start = time.monotonic()
    family = toolchain.FAMILIES[target.family]
    platform = target.platform()
    tools = {tool: toolchain.tool_identity(tool) for tool in platform.required_tools}
    name = design_name(target)
    build_dir = Path(build_dir)
    nextpnr_opts = f"--seed {seed} --timing-allow-fail --report {name}.report.json"

    progress.stage("elaboration")
    elaboration = time.monotonic()
    plan = platform.prepare(top, name, nextpnr_opts=nextpnr_opts,
                            script_after_read=yosys_after_read,
                            script_after_synth=f"tee -q -o {name}.stat.json stat -json")
    key = build_key(plan, tools, seed, nextpnr_opts)
    if not force:
        last = reusable_build(target, name, build_dir, key)
        if last is not None:
            progress.say(f"reused {last.bitstream}")
            return last

    build_dir.mkdir(parents=True, exist_ok=True)
    _remove_old_products(build_dir, name)
    plan.extract(build_dir)
    seconds = {"elaboration": time.monotonic() - elaboration}
    commands = json.loads(plan.files[f"{plan.script}.json"])["commands"]
    for argv in commands:
        run, log = _run_step(argv, build_dir, name, progress, family)
        step = "packing" if argv[0] == family.packer else argv[0].split("-")[0]
        seconds[step] = run.seconds
        if not run.ok:
            raise _failure(target, run, log)
    seconds["total"] = time.monotonic() - start
    progress.say("done")

    report = toolchain.read_nextpnr_report(build_dir / f"{name}.report.json")
    utilization = [(label, cell, *report.utilization[cell]) for label, cell in family.resources
                   if cell in report.utilization]
    ours = [f for f in report.fmax if abs(f.constraint_mhz - target.clock_mhz) < 0.01]
    if not ours:
        raise BoardError(f"nextpnr reported no Fmax for the {target.clock_mhz:g} MHz system "
                         f"clock (see {build_dir / f'{name}.report.json'})")
    fmax = min(ours, key=lambda f: f.mhz)
    ffs = toolchain.read_yosys_stat(build_dir / f"{name}.stat.json", target.family).ffs
    result = BuildResult(target, name, build_dir, utilization, fmax, ffs, seconds,
                         report.critical_path(fmax.clock))
    _write_stamp(result, key)
    return result


# Programming ---------------------------------------------------------------------------

def _run_programmer(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    tool = toolchain.tool_command("openFPGALoader")
    try:
        proc = subprocess.run([tool, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError(f"openFPGALoader {' '.join(args)} did not finish in {timeout:g} s") \
            from None
    missing = re.search(r"error while loading shared libraries: (\S+?):",
                        proc.stdout + proc.stderr)
    if missing:
        raise BoardError(f"openFPGALoader cannot start: the library {missing[1]} is missing "
                         f"(it needs libusb-1.0 and libftdi1: apt-get install libusb-1.0-0 "
                         f"libftdi1-2)")
    return proc


def check_programmer(target: BoardTarget) -> None:
    """Before a build that will be programmed: openFPGALoader runs and sees a USB device.
    Raises ``BoardError`` saying what is missing."""
    proc = _run_programmer(["--scan-usb"], timeout=60)
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    devices = [ln for ln in lines if re.match(r"^\d+\s+\d+\s+0x[0-9a-f]{4}:0x[0-9a-f]{4}", ln,
                                              re.I)]
    if proc.returncode != 0 or not devices:
        why = next((ln for ln in lines if re.search(r"no usb|not found|error|fail|unable", ln,
                                                     re.I)), "no USB device listed")
        raise BoardError(f"no {target.name} board found: openFPGALoader --scan-usb sees no "
                         f"USB programming cable ({why}); is the board plugged in?")


def program(result: BuildResult, *, timeout: float = 600) -> str:
    """Load ``result``'s bitstream into its board with openFPGALoader (ULX3S: into SRAM;
    iCEBreaker: into the configuration flash, the only way openFPGALoader loads an iCE40).
    Returns openFPGALoader's output; raises ``BoardError`` with the reason on failure."""
    board = result.target.program_board
    args = ["-b", board] + (["-m"] if result.target.family == "ecp5" else [])
    proc = _run_programmer(args + [str(result.bitstream)], timeout=timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return output
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if re.search(r"error|fail|unable|not found", ln, re.I)),
                  lines[-1] if lines else f"exit status {proc.returncode}")
    if re.search(r"device not found|no USB devices|Failed to claim cable", output, re.I):
        raise BoardError(f"no {result.target.name} board found: openFPGALoader -b {board}: "
                         f"{detail}")
    raise BoardError(f"programming the {result.target.name} failed: openFPGALoader "
                     f"-b {board}: {detail}")
