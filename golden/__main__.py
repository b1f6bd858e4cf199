"""``python -m golden eval UNIT IN.npz OUT.npz [--param NAME=VALUE ...]`` and ``units``.

Runs the golden model of a unit on a vector file (NUMERICS.md section 4). Bad input ends
with a one-line error and exit status 2, and writes no output file.
"""

from __future__ import annotations

import argparse
import sys

from .formats import FormatError
from .vectors import (VECTOR_UNITS, VectorError, get_vector_unit, load_inputs,
                      parse_params, save_npz)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise VectorError(message)


def _parser():
    p = _Parser(prog="python -m golden", description="Golden model of every unit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ev = sub.add_parser("eval", help="run a unit on a vector file")
    ev.add_argument("unit")
    ev.add_argument("input")
    ev.add_argument("output")
    ev.add_argument("--param", action="append", metavar="NAME=VALUE")
    sub.add_parser("units", help="list the units, their parameters and arrays")
    return p


def describe_units() -> str:
    lines = []
    for u in VECTOR_UNITS.values():
        lines.append(f"{u.name}: params {', '.join(p.describe() for p in u.params) or '-'}")
        fmt = lambda arrs: ", ".join(  # noqa: E731
            f"{a.name} {a.dtype}[{', '.join(a.dims)}]{' (optional)' if a.optional else ''}"
            for a in arrs)
        lines.append(f"    in: {fmt(u.inputs)}")
        lines.append(f"    out: {fmt(u.outputs)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "units":
            print(describe_units())
            return 0
        unit = get_vector_unit(args.unit)
        params = unit.resolve_params(parse_params(args.param))
        inputs = load_inputs(unit, args.input, params)
        outputs = unit.run_golden(inputs, params)
        save_npz(args.output, outputs)
        return 0
    except (VectorError, FormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
