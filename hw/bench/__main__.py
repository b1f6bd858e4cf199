"""``python -m hw.bench``: the benchmark's command (see ``hw.bench``).

The Markdown goes to stdout and ``--out``; stderr shows each design as it starts and
finishes, with how many of them are done.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from boards import toolchain
from fp8hw.cli import ArgumentParser, run_command
from fp8hw.files import write_text_atomic
from hw.bench import BenchError
from hw.bench.configs import (Config, Design, describe, harness_design, resolve_config,
                              select_configs, unit_design)
from hw.bench.measure import DEVICES, FAMILIES, Result, run_design
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
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="designs placed and routed at once (default 1)")
    p.add_argument("--quick", action="store_true", help="skip the 4x4 and 8x8 arrays")
    p.add_argument("--reuse", action="store_true",
                   help="take a design's result from its work directory when an earlier run "
                   "measured the same sources with the same commands and tools (to finish "
                   "an interrupted sweep)")
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


class Tally:
    """How many of a run's designs of one kind are done, for the progress lines."""

    def __init__(self, kind: str, total: int, log):
        self.kind, self.total, self.log = kind, total, log
        self.done = 0
        self.lock = threading.Lock()

    def started(self, what: str) -> None:
        with self.lock:
            self.log(f"{what}: started ({self.done} of {self.total} {self.kind} done)")

    def finished(self, what: str, result: Result) -> None:
        if result.error:
            outcome = result.error
        elif result.fmax is not None:
            outcome = f"Fmax {result.fmax:.1f} MHz" + (" (reused)" if result.reused else "")
        else:
            outcome = "no Fmax"
        with self.lock:
            self.done += 1
            self.log(f"{what}: finished, {outcome} ({self.done} of {self.total} {self.kind} "
                     f"done)")


def run(args) -> int:
    started = time.monotonic()
    families = list(dict.fromkeys(args.family or FAMILIES))
    if args.seeds < 1 or args.jobs < 1:
        raise BenchError("--seeds and --jobs must be at least 1")
    tools = ["yosys"] + [DEVICES[f].cells.nextpnr for f in families]
    versions = {toolchain.tool_command(t): toolchain.tool_version(t) for t in tools}
    configs = select_configs(args.only, args.quick)
    revision = source_revision()     # before the units are imported and elaborated
    workdir = Path(args.workdir)
    print_lock, build_lock = threading.Lock(), threading.Lock()

    def log(text: str) -> None:
        with print_lock:
            print(f"[bench {duration(time.monotonic() - started)}] {text}", file=sys.stderr,
                  flush=True)

    # Elaboration is quick next to place and route; it runs one at a time (Amaranth and
    # its built-in Yosys are not meant to be shared by threads).
    def unit_task(config: Config, family: str, cache: dict) -> Result:
        config_text = describe(resolve_config(config))
        what = f"{config.unit} {config_text} {family}"
        units.started(what)
        try:
            with build_lock:
                if config not in cache:
                    log(f"{config.unit} {config_text}: generating Verilog")
                    cache[config] = unit_design(config)
                design, widths = cache[config]
            result = run_design(design, family, workdir / design.key / family, args.seeds,
                                log, reuse=args.reuse)
        except (BenchError, toolchain.ToolError):
            raise               # the whole run stops with one line
        except Exception as e:  # noqa: BLE001 - one design's failure is a table cell
            log(f"{what}: failed: {e!r}")
            result = Result(config.unit, config_text, family, error=f"failed: {e}")
        units.finished(what, result)
        return result

    def harness_task(design: Design, family: str) -> Result:
        what = f"harness {design.config} {family}"
        harnesses.started(what)
        try:
            result = run_design(design, family, workdir / design.key / family, args.seeds,
                                log, reuse=args.reuse)
        except (BenchError, toolchain.ToolError):
            raise
        except Exception as e:  # noqa: BLE001
            log(f"{what}: failed: {e!r}")
            result = Result(design.unit, design.config, family, per_cycle=0,
                            error=f"failed: {e}")
        harnesses.finished(what, result)
        return result

    cache: dict = {}
    tasks = [(c, f) for c in configs for f in families]
    units = Tally("unit designs", len(tasks), log)
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
            harness_tasks = [(d, f) for d in designs for f in families]
            harnesses = Tally("harness designs", len(harness_tasks), log)
            harness_results = list(pool.map(lambda t: harness_task(*t), harness_tasks))

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
