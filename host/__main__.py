"""``python -m host``: use a board (or the simulated board) from the command line.

    python -m host identify (--serial PORT [--baud B] | --sim icarus|verilator)
    python -m host status   (...)
    python -m host matmul IN.npz OUT.npz [--param mode=fp8 ...] (...)
    python -m host bench [--board B] [--gemm MxKxN:MODE[:OUT]] [--sim S]

``matmul`` reads and writes the vector files of ``python -m golden eval matmul`` and gives
the same output file. Errors end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import contextlib
import sys

from boards.targets import ENGINES
from fp8hw.cli import ArgumentParser, UsageError, parse_assignments, run_command
from fp8hw.files import check_output_path
from golden.params import SEB_MODE
from golden.vectors import get_vector_unit, load_inputs, save_npz, seb_matmul_outputs
from host.driver import Board, BoardError, SerialTransport
from sim.runner import SIMULATORS


def board_rates() -> dict[str, int]:
    """Each board build's link rate, by its build's name (``icebreaker``,
    ``icebreaker-seb``, ...: the folder ``python -m hw.build --board`` writes)."""
    return {t.build_name: t.uart_baud for table in ENGINES.values() for t in table.values()}


def serial_baud(args) -> int:
    """``--baud``, else the rate of ``--board``'s build; a usage error if neither is given
    (the boards' rates differ)."""
    if args.baud is not None:
        return args.baud
    if args.board is None:
        rates = ", ".join(f"{name} {baud}" for name, baud in board_rates().items())
        raise UsageError(f"--serial needs --board NAME or --baud N (the builds' rates: "
                         f"{rates})")
    return board_rates()[args.board]


def _parser(prog="python -m host"):
    p = ArgumentParser(prog=prog, description="Run GEMMs on an fp8hw board.")
    p.add_argument("command", choices=("identify", "status", "matmul"))
    p.add_argument("files", nargs="*", metavar="IN.npz OUT.npz")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", metavar="PORT", help="a board on this serial port")
    where.add_argument("--sim", choices=SIMULATORS,
                       help="the simulated board (the RTL, on this simulator)")
    p.add_argument("--board", choices=sorted(board_rates()),
                   help="with --serial: the board build loaded (its serial rate)")
    p.add_argument("--baud", type=int,
                   help="with --serial: the serial rate, as the bitstream was built "
                   "(default: --board's)")
    return p


@contextlib.contextmanager
def _board(args, params=None):
    """The board, or the simulated one: with the FP8-SEB engine (``SIM_SEB_BOARD``, its
    trees of the vector file's ``ways``) for a GEMM in mode fp8seb."""
    if args.serial:
        yield Board(SerialTransport(args.serial, serial_baud(args)))
    else:
        from sim.board import ANSWER_TIMEOUT_S, SIM_SEB_BOARD, simulated_board
        seb = params is not None and params["mode"] == SEB_MODE
        extra = dict(SIM_SEB_BOARD, ways=params["ways"], room=params["room"]) if seb else {}
        with simulated_board(args.sim, **extra) as transport:
            yield Board(transport, timeout=ANSWER_TIMEOUT_S)


def _main(argv=None, prog="python -m host") -> int:
    args = _parser(prog).parse_args(argv)
    if args.sim and args.baud is not None:
        raise UsageError("--baud applies to --serial only")
    if args.sim and args.board is not None:
        raise UsageError("--board applies to --serial only")
    if args.command == "matmul":
        if len(args.files) != 2:
            raise UsageError("matmul needs IN.npz and OUT.npz")
        unit = get_vector_unit("matmul")
        params = unit.resolve_params(parse_assignments(args.param))
        inputs = load_inputs(unit, args.files[0], params)
        check_output_path(args.files[1])          # before the GEMM, not after
    elif args.files or args.param:
        raise UsageError(f"{args.command} takes no files or parameters")
    with _board(args, params if args.command == "matmul" else None) as board:
        if args.command == "identify":
            info = board.identify()
            print(" ".join(f"{k}={v}" for k, v in vars(info).items()))
        elif args.command == "status":
            print(" ".join(f"{k}={v}" for k, v in board.status().items()))
        elif params["mode"] == SEB_MODE:
            info = board.info
            if info.engine != "seb":
                raise BoardError("matmul: mode fp8seb needs a board with the FP8-SEB engine; "
                                 "this one has the MPE engine")
            if (info.ways, info.room) != (params["ways"], params["room"]):
                raise BoardError(f"the board's trees are {info.ways}-way with room "
                                 f"{info.room}, not ways={params['ways']}, "
                                 f"room={params['room']}")
            result = board.matmul(inputs["A"], inputs["B"], inputs.get("C"), SEB_MODE,
                                  bias_a=params["bias_a"], bias_b=params["bias_b"],
                                  out_bias=params["out_bias"], sums=True)
            # The same arrays as ``python -m golden eval matmul``.
            save_npz(args.files[1], seb_matmul_outputs(result))
            print(f"matmul on the board: {inputs['A'].shape[0]}x{inputs['A'].shape[1]} x "
                  f"{inputs['B'].shape[1]} fp8seb -> {args.files[1]}")
        else:
            if board.info.engine != "mpe":
                raise BoardError(f"matmul: mode {params['mode']} needs a board with the MPE "
                                 f"engine; this one has the FP8-SEB engine")
            if params["bias"] != board.info.bias:
                raise BoardError(f"the board's e4m3 bias is {board.info.bias}, "
                                 f"not {params['bias']}")
            result = board.matmul(inputs["A"], inputs["B"], inputs.get("C"), params["mode"],
                                  params["fmt_a"], params["fmt_b"], params["chunk"],
                                  params["out"], sums=True)
            # The same arrays as ``python -m golden eval matmul``: C, and Y with ``out``.
            save_npz(args.files[1], {"C": result} if params["out"] == "none"
                     else {"C": result[1], "Y": result[0]})
            print(f"matmul on the board: {inputs['A'].shape[0]}x{inputs['A'].shape[1]} x "
                  f"{inputs['B'].shape[1]} -> {args.files[1]}")
    return 0


def main(argv=None, prog="python -m host") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:                  # its own options: host/bench.py
        from host.bench import main as bench
        return bench(argv[1:], f"{prog} bench")
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
