"""Generate Verilog: ``python -m hw.build [--list] [--unit NAME --param NAME=VALUE] [--out DIR]``,
or an FPGA bitstream: ``python -m hw.build --board NAME [--program] [--out DIR]``.

Without ``--unit`` or ``--board``, writes every registered unit with its default
parameters. Each file starts with a comment naming the unit and configuration it was built
from, and the configuration is printed, so a netlist can be traced back to its parameters.

``--board`` builds the board's bitstream (``boards/targets.py`` holds each board's
configuration) into ``build/boards/NAME/`` with the YoWASP tools and prints the
configuration, the utilization, nextpnr's Fmax against the board clock and the bitstream's
path; it fails (exit 2, one line) when the Fmax is below the clock. ``--program`` then loads
it into the board with openFPGALoader.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from hw.registry import UNITS, BuildError, get_unit, parse_assignments


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BuildError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m hw.build", description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (build/verilog; with --board, "
                   "build/boards/NAME)")
    p.add_argument("--list", action="store_true",
                   help="list units and their parameters, and the boards")
    p.add_argument("--unit", help="build only this unit")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="generator parameter of --unit (repeatable)")
    p.add_argument("--board", help="build the bitstream of this board")
    p.add_argument("--program", action="store_true",
                   help="with --board: load the bitstream into the board (openFPGALoader)")
    return p


def list_units() -> str:
    lines = []
    for spec in UNITS.values():
        lines.append(f"{spec.name}: {spec.summary}")
        for p in spec.params:
            allowed = "|".join(p.choices) if p.choices else f"range {p.lo}..{p.hi}"
            lines.append(f"    {p.name} = {p.default}  ({allowed}): {p.help}")
        if not spec.params:
            lines.append("    (no parameters)")
    return "\n".join(lines)


def list_boards() -> str:
    from boards.targets import BOARDS
    return "boards (--board NAME; configuration in boards/targets.py):\n" + "\n".join(
        f"    {board.summary()}" for board in BOARDS.values())


def build_board(name: str, out: str | None, program: bool) -> int:
    """``--board``: the bitstream, its report, and optionally programming."""
    from boards import flow
    from boards.pll import PllError
    from boards.targets import BoardError, get_board
    try:
        target = get_board(name)
        print(target.summary(), flush=True)
        if program:
            flow.check_programmer(target)
        try:
            result = flow.build(target, Path(out or f"build/boards/{name}"))
        except (PllError, ValueError) as e:
            raise BoardError(f"{name}: {e}") from None
        print(result.report(), flush=True)
        if not result.timing_met:
            raise BoardError(f"{name}: Fmax {result.fmax.mhz:.2f} MHz is below the "
                             f"{target.clock_mhz:g} MHz clock (timing not met; the bitstream "
                             f"is in {result.build_dir})")
        if program:
            flow.program(result)
            print(f"programmed the {name} with {result.bitstream}")
        return 0
    except BoardError as e:
        raise BuildError(str(e)) from None


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.list:
            print(list_units())
            print(list_boards())
            return 0
        if args.board is not None:
            if args.unit or args.param:
                raise BuildError("--board cannot be combined with --unit or --param")
            return build_board(args.board, args.out, args.program)
        if args.program:
            raise BuildError("--program needs --board")
        if args.param and not args.unit:
            raise BuildError("--param needs --unit")
        if args.unit:
            spec = get_unit(args.unit)
            jobs = [(spec, spec.resolve(parse_assignments(args.param)))]
        else:
            jobs = [(spec, spec.resolve()) for spec in UNITS.values()]
        # Elaborate everything first, so a failure writes no file.
        out = Path(args.out or "build/verilog")
        outputs = []
        for spec, params in jobs:
            try:
                text = spec.verilog(params)
            except ValueError as e:
                raise BuildError(f"{spec.name}: {e}") from None
            outputs.append((spec, params, out / f"{spec.module_name(params)}.v", text))
        for spec, params, path, text in outputs:
            write_atomic(path, text)
            config = ", ".join(f"{k}={v}" for k, v in params.items()) or "no parameters"
            print(f"{spec.name} ({config}) -> {path} [module {spec.module_name(params)}]")
        return 0
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
