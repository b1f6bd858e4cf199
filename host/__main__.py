"""``python -m host``: use a board (or the simulated board) from the command line.

    python -m host identify (--serial PORT (--board B | --baud N) | --sim S [--board B])
    python -m host status   (...)
    python -m host matmul IN.npz OUT.npz [--param mode=fp8 ...] (...)
    python -m host bench [--board B] [--gemm MxKxN:MODE[:OUT]] [--sim S]

``matmul`` reads and writes the vector files of ``python -m golden eval matmul`` and gives
the same output file, and shows its progress on stderr (GEMM passes, requests, bytes).
``--sim S`` runs the simulated board (the RTL on simulator S): by default a small 2x2
one (``sim.board.SIM_BOARD``), with ``--board B`` that board build's configuration (its
array, buffers, engine, clock and UART divisor). Errors end with one line on stderr and
exit status 2; an interrupt (Ctrl-C, SIGTERM) stops the simulated board, removes its
temporary folder and exits with status 130.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

from boards.targets import ENGINES
from fp8hw.cli import ArgumentParser, UsageError, parse_assignments, run_command
from fp8hw.files import check_output_path
from golden.params import SEB_MODE
from golden.vectors import get_vector_unit, load_inputs, save_npz, seb_matmul_outputs
from host.driver import Board, BoardError, SerialTransport
from sim.runner import SIMULATORS


# The vector file's parameters that choose the array ``python -m sim run`` builds: a board
# has its own array, which they cannot change.
ARRAY_PARAMS = ("rows", "cols", "dataflow")


def board_builds() -> dict:
    """Each board build (``boards.targets.BoardTarget``) by its build's name
    (``icebreaker``, ``icebreaker-seb``, ...: the folder ``python -m hw.build --board``
    writes)."""
    return {t.build_name: t for table in ENGINES.values() for t in table.values()}


def board_rates() -> dict[str, int]:
    """Each board build's link rate, by its build's name."""
    return {name: t.uart_baud for name, t in board_builds().items()}


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
                   help="with --serial: the board build loaded (its serial rate); with "
                   "--sim: simulate that build's configuration (default: a 2x2 board)")
    p.add_argument("--baud", type=int,
                   help="with --serial: the serial rate, as the bitstream was built "
                   "(default: --board's)")
    return p


class ProgressLine:
    """Shows a board's ``LinkProgress`` on ``stream`` at most every ``every`` seconds (in
    place on a terminal, a line each time otherwise), and the last one with ``finish``."""

    def __init__(self, what: str, stream=None, every: float = 2.0):
        self.what, self.stream, self.every = what, stream or sys.stderr, every
        self.last = None
        self.tty = self.stream.isatty()

    def _show(self, progress, end: str) -> None:
        text = f"[{self.what}] {progress.describe()}"
        self.stream.write(("\r" + text + end) if self.tty else text + "\n")
        self.stream.flush()

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            self._show(progress, "")

    def finish(self, board) -> None:
        self._show(board.link_progress(), "\n")
        self.last = None

    def close(self) -> None:
        """End a line left open on a terminal (an error follows it)."""
        if self.tty and self.last is not None:
            self.stream.write("\n")


def simulated_configuration(args, params=None) -> tuple[dict, str]:
    """The simulated board's parameters (``sim.board.simulated_board``) and a description:
    ``--board``'s build, else the small default board, with the FP8-SEB engine
    (``SIM_SEB_BOARD``, trees of the vector file's ``ways``) for a GEMM in mode fp8seb."""
    from sim.board import SIM_BOARD, SIM_SEB_BOARD, board_configuration
    if args.board is not None:
        target = board_builds()[args.board]
        return board_configuration(target), f"the {args.board} build's configuration"
    seb = params is not None and params["mode"] == SEB_MODE
    if seb:
        extra = dict(SIM_SEB_BOARD, ways=params["ways"], room=params["room"])
    else:
        extra = {} if params is None else {"bias": params["bias"]}
    config = {**SIM_BOARD, **extra}
    engine = (f", FP8-SEB {extra['ways']}-way trees" if seb
              else f", e4m3 bias {extra['bias']}" if extra else "")
    return extra, f"{config['rows']}x{config['cols']}{engine}"


def _check_board_build(name: str, params: dict) -> None:
    """Refuse, before any board starts, a GEMM that ``--board``'s build cannot run as
    asked (its engine, bias, trees and chunking are fixed when it is built)."""
    target = board_builds()[name]
    seb = params["mode"] == SEB_MODE
    if seb != (target.engine == "seb"):
        need = "--board NAME-seb (the FP8-SEB engine)" if seb else "a build with the MPE engine"
        raise UsageError(f"mode {params['mode']} does not run on the {name} build: it needs "
                         f"{need}")
    if seb and (params["ways"], params["room"]) != (target.ways, target.room):
        raise UsageError(f"the {name} build has {target.ways}-way trees and room "
                         f"{target.room}, not ways={params['ways']}, room={params['room']}")
    if not seb and params["bias"] != target.bias:
        raise UsageError(f"the {name} build's e4m3 bias is {target.bias}, not "
                         f"bias={params['bias']}")
    if not seb and params["chunk"] and not target.chunking:
        raise UsageError(f"the {name} build has no chunk-based accumulation (chunk="
                         f"{params['chunk']})")


@contextlib.contextmanager
def _board(args, params=None):
    """The board, or the simulated one (``simulated_configuration``)."""
    if args.serial:
        yield Board(SerialTransport(args.serial, serial_baud(args)))
    else:
        from sim.board import ANSWER_TIMEOUT_S, simulated_board
        config, described = simulated_configuration(args, params)
        print(f"[sim] starting the simulated board ({args.sim}, {described}); its first "
              f"run builds it (a minute or more)", file=sys.stderr, flush=True)
        with simulated_board(args.sim, **config) as transport:
            yield Board(transport, timeout=ANSWER_TIMEOUT_S)


def _check_array_params(given: dict, args) -> None:
    """A board's array is its own: ``rows``, ``cols`` and ``dataflow`` are refused."""
    named = [name for name in ARRAY_PARAMS if name in given]
    if named:
        how = ("choose a board's configuration with --board NAME" if args.sim
               else "the board's bitstream fixes them")
        raise UsageError(f"--param {', '.join(named)}: a board runs its own array "
                         f"(python -m sim run matmul takes them); {how}")


def _main(argv=None, prog="python -m host") -> int:
    args = _parser(prog).parse_args(argv)
    if args.sim and args.baud is not None:
        raise UsageError("--baud applies to --serial only")
    if args.command == "matmul":
        if len(args.files) != 2:
            raise UsageError("matmul needs IN.npz and OUT.npz")
        unit = get_vector_unit("matmul")
        given = parse_assignments(args.param)
        _check_array_params(given, args)
        params = unit.resolve_params(given)
        if args.board is not None:
            _check_board_build(args.board, params)
        inputs = load_inputs(unit, args.files[0], params)
        check_output_path(args.files[1])          # before the GEMM, not after
    elif args.files or args.param:
        raise UsageError(f"{args.command} takes no files or parameters")
    with contextlib.ExitStack() as stack:
        board = stack.enter_context(_board(args, params if args.command == "matmul" else None))
        if args.command == "matmul":
            board.progress = progress = ProgressLine("matmul")
            stack.callback(progress.close)
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
            progress.finish(board)
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
            progress.finish(board)
            save_npz(args.files[1], {"C": result} if params["out"] == "none"
                     else {"C": result[1], "Y": result[0]})
            print(f"matmul on the board: {inputs['A'].shape[0]}x{inputs['A'].shape[1]} x "
                  f"{inputs['B'].shape[1]} -> {args.files[1]}")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None, prog="python -m host") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM as Ctrl-C: the simulated board stops and its folder goes.
        signal.signal(signal.SIGTERM, _interrupt)
    if argv[:1] == ["bench"]:                  # its own options: host/bench.py
        from host.bench import main as bench
        return bench(argv[1:], f"{prog} bench")
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
