"""``python -m golden eval UNIT IN.npz OUT.npz [--param NAME=VALUE ...]`` and ``units``.

Runs the golden model of a unit on a vector file (docs/numerics.md, "Vector files"). Bad
input ends with a one-line error and exit status 2, and writes no output file.
"""

from __future__ import annotations

import sys

from fp8hw.cli import ArgumentParser, parse_assignments, run_command
from fp8hw.files import check_output_path

from .vectors import VECTOR_UNITS, get_vector_unit, load_inputs, save_npz


def _parser(prog="python -m golden"):
    p = ArgumentParser(prog=prog, description="Golden model of every unit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    ev = sub.add_parser("eval", help="run a unit on a vector file")
    ev.add_argument("unit")
    ev.add_argument("input")
    ev.add_argument("output")
    ev.add_argument("--param", action="append", metavar="NAME=VALUE")
    sub.add_parser("units", help="list the units, their parameters and arrays")
    return p


def describe_units() -> str:
    def arrays(specs):
        return ", ".join(f"{a.name} {a.dtype}[{', '.join(a.dims)}]"
                         f"{' (optional)' if a.optional else ''}" for a in specs)
    lines = []
    for u in VECTOR_UNITS.values():
        lines.append(f"{u.name}: params {', '.join(p.describe() for p in u.params) or '-'}")
        lines.append(f"    in: {arrays(u.inputs)}")
        lines.append(f"    out: {arrays(u.outputs)}")
    return "\n".join(lines)


def _main(argv=None, prog="python -m golden") -> int:
    args = _parser(prog).parse_args(argv)
    if args.command == "units":
        print(describe_units())
        return 0
    unit = get_vector_unit(args.unit)
    params = unit.resolve_params(parse_assignments(args.param))
    inputs = load_inputs(unit, args.input, params)
    check_output_path(args.output)
    save_npz(args.output, unit.run_golden(inputs, params))
    return 0


def main(argv=None, prog="python -m golden") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
