"""Generate Verilog: ``python -m hw.build [--list] [--unit NAME --param NAME=VALUE] [--out DIR]``,
or an FPGA bitstream: ``python -m hw.build --board NAME [--engine mpe|seb] [--baud N]
[--program] [--force]
[-v] [--out DIR]``.

Without ``--unit`` or ``--board``, writes every registered unit with its default
parameters. Each file starts with a comment naming the unit and configuration it was built
from, and the configuration is printed, so a netlist can be traced back to its parameters.

``--board`` builds the board's bitstream (``boards/targets.py`` holds each board's
configuration; ``--baud`` sets the host link's rate instead of the board's default, the
fastest standard rate its clock divides cleanly) into ``build/boards/NAME/`` with the YoWASP tools and prints the
configuration, the utilization, nextpnr's Fmax against the board clock and the bitstream's
path; it fails (exit 2, one line) when the Fmax is below the clock. While it runs, stderr
shows the stage and the elapsed time (``-v``: the tools' output too). A bitstream built
from the same design, constraints, tools and seed is reused (``--force`` builds it again).
``--program`` then loads it into the board with openFPGALoader.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

from fp8hw.cli import ArgumentParser, parse_assignments, run_command
from fp8hw.errors import Fp8hwError
from fp8hw.files import write_text_atomic
from hw.registry import UNITS, BuildError, get_unit


def _parser(prog: str = "python -m hw.build") -> ArgumentParser:
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (build/verilog; with --board, "
                   "build/boards/NAME)")
    p.add_argument("--list", action="store_true",
                   help="list units and their parameters, and the boards")
    p.add_argument("--unit", help="build only this unit")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="generator parameter of --unit (repeatable)")
    p.add_argument("--board", help="build the bitstream of this board")
    p.add_argument("--engine", choices=("mpe", "seb"),
                   help="with --board: the board system's engine, the MPE (HFP8, the "
                   "default) or the FP8-SEB trees")
    p.add_argument("--baud", type=int,
                   help="with --board: the host link's baud rate (default: the board's, "
                   "see --list)")
    p.add_argument("--program", action="store_true",
                   help="with --board: load the bitstream into the board (openFPGALoader)")
    p.add_argument("--force", action="store_true",
                   help="with --board: build even if the last bitstream in the folder was "
                   "built from the same design, constraints, tools and seed")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="with --board: show the tools' output as they run (stderr)")
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
    from boards.targets import BOARDS, SEB_BOARDS
    return ("boards (--board NAME; configuration in boards/targets.py):\n" + "\n".join(
        f"    {board.summary()}" for board in BOARDS.values())
        + "\nwith --engine seb (the FP8-SEB engine):\n" + "\n".join(
            f"    {board.summary()}" for board in SEB_BOARDS.values()))


def build_board(target, out: str | None, *, program: bool = False, force: bool = False,
                verbose: bool = False) -> int:
    """``--board``: the bitstream of ``target`` (a ``boards.targets.BoardTarget``) running
    the board system, its report, and optionally programming. Progress goes to stderr."""
    from boards import flow
    from boards.pll import PllError
    from boards.progress import Progress
    from boards.targets import BoardError
    from hw.soc.board_top import BoardTop

    print(target.summary(), flush=True)
    if program:
        flow.check_programmer(target)
    top = BoardTop(target)
    try:
        result = flow.build(target, top, Path(out or f"build/boards/{target.build_name}"),
                            yosys_after_read=top.yosys_after_read(flow.design_name(target)),
                            force=force, progress=Progress(verbose=verbose))
    except (PllError, ValueError) as e:
        # The design that was refused is never elaborated: no warnings about it after the
        # one-line error.
        warnings.simplefilter("ignore", UnusedElaboratable)
        raise BoardError(f"{target.name}: {e}") from None
    print(result.report(), flush=True)
    if not result.timing_met:
        raise BoardError(f"{target.name}: Fmax {result.fmax.mhz:.2f} MHz is below the "
                         f"{target.clock_mhz:g} MHz clock (timing not met; the bitstream "
                         f"is in {result.build_dir})")
    if program:
        flow.program(result)
        print(f"programmed the {target.name} with {result.bitstream}")
    return 0


def _verilog(spec, params) -> str:
    try:
        return spec.verilog(params)
    except Fp8hwError:
        raise
    except ValueError as e:         # a configuration the generator cannot build
        raise BuildError(f"{spec.name}: {e}") from None


def _main(argv=None, prog: str = "python -m hw.build") -> int:
    args = _parser(prog).parse_args(argv)
    if args.out is not None and not args.out.strip():
        raise BuildError("--out is empty: give a folder")
    if args.list:
        print(list_units())
        print(list_boards())
        return 0
    if args.board is not None:
        if args.unit or args.param:
            raise BuildError("--board cannot be combined with --unit or --param")
        from boards.targets import get_board
        target = get_board(args.board, args.engine or "mpe")
        if args.baud is not None:
            target = target.with_baud(args.baud)
        return build_board(target, args.out, program=args.program,
                           force=args.force, verbose=args.verbose)
    for option, given in (("--baud", args.baud is not None), ("--program", args.program),
                          ("--engine", args.engine is not None),
                          ("--force", args.force),
                          ("--verbose", args.verbose)):
        if given:
            raise BuildError(f"{option} needs --board")
    if args.param and not args.unit:
        raise BuildError("--param needs --unit")
    if args.unit:
        spec = get_unit(args.unit)
        jobs = [(spec, spec.resolve(parse_assignments(args.param)))]
    else:
        jobs = [(spec, spec.resolve()) for spec in UNITS.values()]
    # Elaborate everything first, so a failure writes no file.
    out = Path(args.out or "build/verilog")
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out}: not a folder")
    outputs = [(spec, params, out / f"{spec.module_name(params)}.v", _verilog(spec, params))
               for spec, params in jobs]
    for spec, params, path, text in outputs:
        write_text_atomic(path, text)
        config = ", ".join(f"{k}={v}" for k, v in params.items()) or "no parameters"
        print(f"{spec.name} ({config}) -> {path} [module {spec.module_name(params)}]")
    return 0


def main(argv=None, prog: str = "python -m hw.build") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
