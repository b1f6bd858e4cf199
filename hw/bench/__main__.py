"""``python -m hw.bench``: the benchmark's command (see ``hw.bench``).

The Markdown goes to stdout and ``--out``; stderr shows each job (Yosys, or nextpnr with
one seed) as it starts and finishes, with how many jobs are done and left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from boards import toolchain
from fp8hw.cli import ArgumentParser, run_command
from fp8hw.files import write_text_atomic
from hw.bench import BenchError, cluster
from hw.bench.configs import (Config, Design, describe, harness_design, resolve_config,
                              select_configs, unit_design)
from hw.bench.measure import DEVICES, FAMILIES, Result
from hw.bench.report import duration, format_report


def _parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog,
                       description="Place and route every unit configuration (CONFIGS in "
                       "hw/bench/configs.py) in a register harness on ECP5 and iCE40; a "
                       "Markdown table of utilization, Fmax and peak throughput.")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="only this unit (repeatable, or comma-separated)")
    p.add_argument("--family", action="append", choices=FAMILIES,
                   help="ecp5 or ice40 (repeatable; default both)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="nextpnr seeds 1..N, median Fmax (default 1)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes of the local Dask cluster: Yosys and nextpnr "
                   "runs at once (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on the Dask cluster of this scheduler (e.g. "
                   "tcp://host:8786) instead of a local one; its workers need this package, "
                   "the tools and the work directory at the same path")
    p.add_argument("--quick", action="store_true", help="skip the 4x4 and 8x8 arrays")
    p.add_argument("--reuse", action="store_true",
                   help="take a job's outcome (Yosys, or nextpnr with one seed) from the work "
                   "directory when an earlier run ran it on the same sources with the same "
                   "commands and tools (to finish an interrupted sweep)")
    p.add_argument("--no-harness-table", action="store_true",
                   help="skip the harness-only runs")
    p.add_argument("--out", default="build/bench.md", help="Markdown output (build/bench.md)")
    p.add_argument("--workdir", default="build/bench",
                   help="per-design work directories (build/bench)")
    return p


def source_revision() -> str:
    """The git commit of the code being measured, with ``-dirty`` for local changes."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                              cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def elaborate(configs: list[Config], log: Callable[[str], None]) -> tuple[dict, dict]:
    """Each configuration's design and harness widths, or why it failed. Elaboration stays
    in this process, one unit at a time (Amaranth and its built-in Yosys are not meant to
    be shared); only Yosys and nextpnr run on the workers."""
    designs: dict[Config, tuple[Design, tuple[int, int]]] = {}
    failures: dict[Config, str] = {}
    for config in configs:
        config_text = describe(resolve_config(config))
        log(f"{config.unit} {config_text}: generating Verilog")
        try:
            designs[config] = unit_design(config)
        except (BenchError, toolchain.ToolError):
            raise               # the whole run stops with one line
        except Exception as e:  # noqa: BLE001 - one unit's failure is a table cell
            log(f"{config.unit} {config_text}: failed: {e!r}")
            failures[config] = f"failed: {e}"
    return designs, failures


def harness_designs(designs: dict[Config, tuple[Design, tuple[int, int]]]) -> list[Design]:
    """The harness alone, once per pair of port widths, naming the units it is around."""
    users: dict[tuple[int, int], list[str]] = {}
    for config, (_, widths) in designs.items():
        params = resolve_config(config)
        label = config.unit + (f" {params['rows']}x{params['cols']}"
                               if "rows" in params else "")
        if label not in users.setdefault(widths, []):
            users[widths].append(label)
    return [harness_design(w, "; ".join(u)) for w, u in users.items()]


def run(args) -> int:
    started = time.monotonic()
    families = list(dict.fromkeys(args.family or FAMILIES))
    if args.seeds < 1 or (args.jobs is not None and args.jobs < 1):
        raise BenchError("--seeds and --jobs must be at least 1")
    if args.scheduler and args.jobs is not None:
        raise BenchError("--jobs is the size of the local cluster; the cluster at "
                         "--scheduler has its own workers")
    tools = ["yosys"] + [DEVICES[f].cells.nextpnr for f in families]
    versions = {toolchain.tool_command(t): toolchain.tool_version(t) for t in tools}
    configs = select_configs(args.only, args.quick)
    revision = source_revision()     # before the units are imported and elaborated
    workdir = Path(args.workdir).resolve()   # the same path on every worker
    print_lock = threading.Lock()

    def log(text: str) -> None:      # from this thread and the Dask client's
        with print_lock:
            print(f"[bench {duration(time.monotonic() - started)}] {text}", file=sys.stderr,
                  flush=True)

    # Connected first: a cluster that cannot be reached stops the run before the work.
    with cluster.connect(args.scheduler, args.jobs or 1) as client:
        log(f"Dask scheduler {client.scheduler.address}: {len(client.nthreads())} workers")
        designs, failures = elaborate(configs, log)
        harnesses = [] if args.no_harness_table else harness_designs(designs)
        sweep = cluster.Sweep(client, log, args.reuse)

        def add(design: Design, family: str) -> cluster.DesignJobs:
            return sweep.add(design, family, str(workdir / design.key / family), args.seeds)

        unit_rows = [add(designs[c][0], f) if c in designs
                     else Result(c.unit, describe(resolve_config(c)), f, error=failures[c])
                     for c in configs for f in families]
        harness_rows = [add(design, f) for design in harnesses for f in families]
        sweep.wait()
        unit_results = [r if isinstance(r, Result) else r.result() for r in unit_rows]
        harness_results = [r.result() for r in harness_rows]

    report = format_report(unit_results, harness_results, seeds=args.seeds,
                           versions=versions, seconds=time.monotonic() - started,
                           revision=revision)
    print(report, end="")
    out = Path(args.out)
    write_text_atomic(out, report)
    raw = workdir / "results.json"
    write_text_atomic(raw, json.dumps([r.to_json() for r in unit_results + harness_results],
                                      indent=1))
    log(f"wrote {out} and {raw}")
    return 0


def main(argv=None, prog: str = "python -m hw.bench") -> int:
    return run_command(lambda a: run(_parser(prog).parse_args(a)), argv)


if __name__ == "__main__":
    sys.exit(main())
