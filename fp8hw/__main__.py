"""``fp8hw``: one command for every tool of the project (``python -m fp8hw`` too).

Each subcommand is one of the ``python -m`` entry points, with the same arguments:
``fp8hw build --unit mpe`` is ``python -m hw.build --unit mpe``.
"""

from __future__ import annotations

import importlib
import sys

# subcommand: (the ``python -m`` module whose main() it runs, what it does)
SUBCOMMANDS = {
    "build": ("hw.build", "generate Verilog, or a board's bitstream (--board)"),
    "synth": ("hw.synth", "Yosys synthesis check and cell counts of a unit"),
    "bench": ("hw.bench", "place-and-route benchmark of the units on ECP5 and iCE40"),
    "golden": ("golden", "run the golden model on a vector file (eval, units)"),
    "bench-golden": ("golden.bench", "the golden model's GEMM speed on one core"),
    "sim": ("sim", "run a vector file through a unit's RTL (run)"),
    "bench-array": ("sim.bench_array", "measured cycles and utilization of the arrays"),
    "host": ("host", "use a board or the simulated board (identify, status, matmul)"),
    "lab": ("lab", "FP8 training on real data in each recipe, swamping, the report"),
}
PACKAGES = ("golden", "sim", "host", "hw.bench", "lab")   # ``python -m`` runs their ``__main__``


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: fp8hw SUBCOMMAND [ARGUMENTS...]   (fp8hw SUBCOMMAND --help for its own)",
             "", "Synthesizable FP8 training arithmetic, checked bit for bit.", "",
             "subcommands:"]
    lines += [f"  {name:<{width}}  {what} (python -m {module})"
              for name, (module, what) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from fp8hw import __version__
        print(f"fp8hw {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"error: unknown subcommand {name!r} (subcommands: {', '.join(SUBCOMMANDS)})",
              file=sys.stderr)
        return 2
    module = SUBCOMMANDS[name][0]
    entry = importlib.import_module(f"{module}.__main__" if module in PACKAGES else module)
    return entry.main(rest, prog=f"fp8hw {name}")


if __name__ == "__main__":
    sys.exit(main())
