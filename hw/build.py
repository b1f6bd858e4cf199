"""Generate Verilog: ``python -m hw.build [--list] [--unit NAME --param NAME=VALUE] [--out DIR]``.

Without ``--unit``, writes every registered unit with its default parameters. Each file
starts with a comment naming the unit and configuration it was built from, and the
configuration is printed, so a netlist can be traced back to its parameters.
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
    p.add_argument("--out", default="build/verilog", help="output folder (build/verilog)")
    p.add_argument("--list", action="store_true", help="list units and their parameters")
    p.add_argument("--unit", help="build only this unit")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="generator parameter of --unit (repeatable)")
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
            return 0
        if args.param and not args.unit:
            raise BuildError("--param needs --unit")
        if args.unit:
            spec = get_unit(args.unit)
            jobs = [(spec, spec.resolve(parse_assignments(args.param)))]
        else:
            jobs = [(spec, spec.resolve()) for spec in UNITS.values()]
        # Elaborate everything first, so a failure writes no file.
        outputs = []
        for spec, params in jobs:
            try:
                text = spec.verilog(params)
            except ValueError as e:
                raise BuildError(f"{spec.name}: {e}") from None
            outputs.append((spec, params, Path(args.out) / f"{spec.module_name(params)}.v", text))
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
