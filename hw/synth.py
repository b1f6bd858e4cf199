"""Synthesis check and resource counts with Yosys: ``python -m hw.synth --unit NAME``.

Runs Yosys (found by ``boards.toolchain``: ``$YOSYS``, or the YoWASP build from PyPI) on a
unit's Verilog with ``synth_ecp5`` or ``synth_ice40``, fails if the design has a latch or
anything Yosys's ``check`` objects to (multiple drivers, combinational loops, undriven
signals), and reports LUTs, flip-flops, carry cells, DSP and block RAM cells.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from boards import toolchain
from boards.toolchain import CellCounts
from fp8hw.cli import ArgumentParser, parse_assignments, run_command
from fp8hw.errors import Fp8hwError
from hw.registry import get_unit

FAMILIES = tuple(toolchain.FAMILIES)


class SynthError(Fp8hwError):
    """Yosys failed, or found a latch or a design problem."""


def synthesize(verilog_text: str, top: str, family: str) -> CellCounts:
    """Synthesize for ``family``; raises SynthError on a latch or a failed check."""
    if family not in FAMILIES:
        raise SynthError(f"unknown family {family!r} (families: {', '.join(FAMILIES)})")
    with tempfile.TemporaryDirectory(prefix="fp8hw-synth-") as tmp:
        tmp = Path(tmp)
        (tmp / "top.v").write_text(verilog_text)
        script = "; ".join([
            "read_verilog top.v",
            f"hierarchy -check -top {top}",
            "proc",
            # Latches would come out of proc as $dlatch cells: refuse them.
            "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$sr",
            f"synth_{family} -top {top}",
            "check -assert",
            "tee -q -o stat.json stat -json",
        ])
        run = toolchain.run_tool("yosys", ["-q", "-p", script], tmp, tmp / "yosys.out")
        if not run.ok:
            lines = [ln.strip() for ln in run.output.splitlines() if ln.strip()]
            detail = toolchain.first_error(run.output) or (lines[-1] if lines else "?")
            raise SynthError(f"Yosys failed for {top} ({family}): {detail}")
        return toolchain.read_yosys_stat(tmp / "stat.json", family)


def synthesize_unit(name: str, overrides: dict | None = None,
                    family: str = "ecp5") -> tuple[dict, CellCounts]:
    spec = get_unit(name)
    params = spec.resolve(overrides)
    return params, synthesize(spec.verilog(params), spec.module_name(params), family)


def _main(argv=None, prog: str = "python -m hw.synth") -> int:
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--unit", required=True)
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--family", action="append", choices=FAMILIES,
                   help="ecp5 and/or ice40 (default: both)")
    args = p.parse_args(argv)
    overrides = parse_assignments(args.param)
    for family in args.family or FAMILIES:
        params, report = synthesize_unit(args.unit, overrides, family)
        config = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"{args.unit} ({config}) {report.summary()}")
    return 0


def main(argv=None, prog: str = "python -m hw.synth") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
