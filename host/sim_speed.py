"""``python -m host.sim_speed``: how fast the simulated board runs, in simulated clock
cycles per wall second, while the host driver streams bytes both ways.

For each configuration (the test board ``SIM_BOARD``, and each board of
``boards.targets`` with its array, pipeline and bias at its UART divisor and at divisor
20, 3 Mbaud at 60 MHz), the driver identifies the board, then writes a block of random
bytes into the ACC buffer and reads it back (checked) until ``--seconds`` have passed. The
bridge counts the simulated cycles and wall seconds from the host's connection to its
closing, which leaves the build out; cycles/s is their ratio. Prints a Markdown table.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from boards.targets import BOARDS
from fp8hw.cli import ArgumentParser, UsageError, run_command
from host.driver import Board, BoardError
from hw.schedule import word_stride
from hw.soc.buffers import BufferId
from sim.board import ANSWER_TIMEOUT_S, SIM_BOARD, board_configuration, simulated_board
from sim.runner import SIMULATORS

BLOCK = 128                  # bytes a write and a read-back


def configurations(divisors=(None, 20)) -> list[tuple[str, dict]]:
    """(label, ``simulated_board`` parameters): ``SIM_BOARD``, then each board at its own
    UART divisor (``None``) or at the divisors given."""
    out = [("SIM_BOARD", dict(SIM_BOARD))]
    for board in BOARDS.values():
        for divisor in divisors:
            out.append((board.name, board_configuration(board, divisor)))
    return out


def measure(sim: str, params: dict, seconds: float, seed: int = 1) -> dict:
    """Stream write/read-back traffic for about ``seconds``; returns the bridge's counts
    (``cycles``, ``wall_s``), ``bytes`` (over the link, both ways) and ``start_s`` (from
    the call to the host's connection: the build, cached or not, and the start)."""
    rng = np.random.default_rng(seed)
    stats: dict = {}
    start = time.perf_counter()
    with simulated_board(sim, stats=stats, **params) as transport:
        connected = time.perf_counter()
        counted = CountingTransport(transport)
        board = Board(counted, timeout=ANSWER_TIMEOUT_S)
        info = board.identify()
        size = min(BLOCK, info.acc_words * word_stride(4 * info.rows))
        while True:
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            board.write(BufferId.ACC, 0, data)
            if board.read(BufferId.ACC, 0, size) != data:
                raise BoardError("the simulated board read back other bytes than written")
            if time.perf_counter() - connected > seconds:
                break
    return {**stats, "bytes": counted.bytes, "start_s": connected - start}


class CountingTransport:
    """A transport that counts the bytes that pass, both ways."""

    def __init__(self, transport):
        self.transport, self.bytes = transport, 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        self.transport.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        data = self.transport.read(n, timeout)
        self.bytes += len(data)
        return data


def _main(argv=None, prog="python -m host.sim_speed") -> int:
    p = ArgumentParser(prog=prog, description=__doc__.split("\n")[0].split(": ", 1)[1])
    p.add_argument("--sim", action="append", choices=SIMULATORS,
                   help="simulator (repeat for both; default verilator)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="wall seconds of traffic a configuration (default 10)")
    p.add_argument("--only", choices=["SIM_BOARD", *BOARDS], help="one configuration")
    p.add_argument("--divisor", type=int, action="append",
                   help="a board's UART divisor (repeat for several; default: the board's "
                   "own and 20)")
    args = p.parse_args(argv)
    if args.divisor and min(args.divisor) < 4:
        raise UsageError(f"--divisor must be at least 4, got {min(args.divisor)}")
    print("| simulator | configuration | array | divisor | link bytes | simulated cycles "
          "| wall s | cycles/s | cycles/CPU s | start s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for sim in args.sim or ["verilator"]:
        for label, params in configurations(args.divisor or (None, 20)):
            if args.only and label != args.only:
                continue
            r = measure(sim, params, args.seconds)
            print(f"| {sim} | {label} | {params['rows']}x{params['cols']} "
                  f"| {params['divisor']} | {r['bytes']:,} | {r['cycles']:,.0f} "
                  f"| {r['wall_s']:.1f} | {r['cycles'] / r['wall_s']:,.0f} "
                  f"| {r['cycles'] / r['cpu_s']:,.0f} "
                  f"| {r['start_s']:.1f} |", flush=True)
    return 0


def main(argv=None, prog="python -m host.sim_speed") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
