"""``python -m host bench``: GEMMs end to end through the driver on the simulated board, with
each board's configuration (array, buffers, clock, UART divisor), against the link's
limit, the array's peak and the golden model.

For each board and GEMM, a simulated board is started (its build cached) and the driver
runs SYNC, IDENTIFY and the GEMM (random codes; no initial C). Reported:

* link bytes: what crossed the link, both ways (frames, headers, answers);
* busy cycles: the board's engine busy cycles (STATUS ``cycles``, after minus before);
* board time: the simulated clock cycles from the host's connection to its closing, at
  the board's clock: the end-to-end time the board would take at its clock and baud
  (SYNC and IDENTIFY included; the host's own time counts at the simulator's speed, which
  only makes this longer);
* MACs/s at that time, its ratio to the link-bound limit (the bytes that must cross: A,
  B and the results at their wire width, 10 bits a byte at the baud) and to the array's
  peak (rows x cols x lanes MACs a cycle);
* the golden model's MACs/s for the same GEMM in the same process, and the simulated
  board's speed (simulated cycles per wall second).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from boards.targets import BOARDS, get_board
from fp8hw.cli import ArgumentParser, UsageError, run_command
from golden.matmul import matmul
from golden.seb_matmul import seb_matmul
from host.driver import Board, BoardError
from host.sim_speed import CountingTransport
from sim.board import ANSWER_TIMEOUT_S, board_configuration, simulated_board
from sim.runner import SIMULATORS

# (M, K, N, mode, out): the README's table; an fp8seb GEMM's out is its out_bias.
GEMMS = ((64, 64, 64, "fp8", "none"), (64, 64, 64, "fp8", "e4m3"),
         (64, 64, 64, "int4", "none"), (128, 128, 128, "fp8", "none"))
SEB_GEMMS = ((64, 64, 64, "fp8seb", "none"), (64, 64, 64, "fp8seb", "0"),
             (128, 128, 128, "fp8seb", "none"))
LANES = {"fp8": 1, "int4": 2, "int2": 4}
WIRE_BYTES = {("fp8", "none"): 2, ("fp8", "e4m3"): 1, ("fp8", "e5m2"): 1, ("int4", "none"): 4,
              ("int2", "none"): 4, ("fp8seb", "none"): 4}


def wire_bytes(mode: str, out: str) -> int | None:
    """Bytes a result takes on the link (None: not a GEMM the bench knows)."""
    if mode == "fp8seb" and out != "none":
        try:
            return 1 if -32 <= int(out) <= 31 else None     # the codes at an out_bias
        except ValueError:
            return None
    return WIRE_BYTES.get((mode, out))


def run_one(sim: str, board_name: str, M: int, K: int, N: int, mode: str, out: str,
            seed: int = 1, engine: str = "mpe") -> dict:
    target = get_board(board_name, engine)
    params = board_configuration(target)
    rng = np.random.default_rng(seed)
    A = rng.integers(0, 256, (M, K)).astype(np.uint8)
    B = rng.integers(0, 256, (K, N)).astype(np.uint8)
    seb = mode == "fp8seb"
    out_bias = None if out == "none" else int(out) if seb else None
    start = time.perf_counter()
    if seb:
        want = seb_matmul(A, B, ways=target.ways, out_bias=out_bias)
    else:
        want = matmul(A, B, mode=mode, out=out)
    golden_s = time.perf_counter() - start
    stats: dict = {}
    with simulated_board(sim, stats=stats, **params) as transport:
        counted = CountingTransport(transport)
        board = Board(counted, timeout=ANSWER_TIMEOUT_S)
        before = board.status()["cycles"]
        if seb:
            got = board.matmul(A, B, mode=mode, out_bias=out_bias)
        else:
            got = board.matmul(A, B, mode=mode, out=out)
        busy = (board.status()["cycles"] - before) & 0xFFFFFFFF
        link_bytes = counted.bytes
    same = (np.array_equal(got.Y if out_bias is not None else got.C,
                           want.Y if out_bias is not None else want.C)
            and (got.max_exp, got.next_bias) == (want.max_exp, want.next_bias)
            if seb else np.array_equal(got, want))
    if not same:
        raise BoardError(f"{board_name} {M}x{K}x{N} {mode} out={out}: the board's result "
                         f"differs from the golden model")
    clock = target.clock_mhz * 1e6
    baud = clock / params["divisor"]
    macs = M * K * N
    board_s = stats["cycles"] / clock
    needed = M * K + K * N + M * N * wire_bytes(mode, out)
    limit_s = needed * 10 / baud
    lanes = target.ways if seb else LANES[mode]
    peak = target.rows * target.cols * lanes * clock
    return dict(board=target.build_name, gemm=f"{M}x{K}x{N}", mode=mode, out=out,
                clock_mhz=target.clock_mhz, array=f"{target.rows}x{target.cols}",
                baud=round(baud), link_bytes=link_bytes, needed_bytes=needed, busy=busy,
                board_s=board_s, macs_s=macs / board_s, link_ratio=limit_s / board_s,
                peak_ratio=macs / board_s / peak, golden_macs_s=macs / golden_s,
                sim_cycles_s=stats["cycles"] / stats["wall_s"])


HEADER = ("| board | array, clock, baud | GEMM | mode | out | link bytes (needed) "
          "| busy cycles | board time | MACs/s | of link limit | of array peak "
          "| golden MACs/s | simulated cycles/s |\n"
          "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def row(r: dict) -> str:
    return (f"| {r['board']} | {r['array']}, {r['clock_mhz']:g} MHz, {r['baud'] / 1e6:g} Mbaud "
            f"| {r['gemm']} | {r['mode']} | {r['out']} | {r['link_bytes']:,} "
            f"({r['needed_bytes']:,}) | {r['busy']:,} | {r['board_s'] * 1e3:.1f} ms "
            f"| {r['macs_s'] / 1e6:.2f} M | {100 * r['link_ratio']:.0f}% "
            f"| {100 * r['peak_ratio']:.1f}% | {r['golden_macs_s'] / 1e6:.2f} M "
            f"| {r['sim_cycles_s']:,.0f} |")


def _main(argv=None, prog="python -m host bench") -> int:
    p = ArgumentParser(prog=prog, description="GEMMs end to end on the simulated board.")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator")
    p.add_argument("--board", action="append", choices=list(BOARDS),
                   help="a board's configuration (repeat; default: every board)")
    p.add_argument("--engine", choices=("mpe", "seb"), default="mpe",
                   help="the boards' engine: the MPE (default) or the FP8-SEB trees "
                   "(GEMMs in mode fp8seb, OUT its out_bias)")
    p.add_argument("--gemm", action="append", metavar="MxKxN:MODE[:OUT]",
                   help="a GEMM (repeat; default: the README's set)")
    args = p.parse_args(argv)
    gemms = []
    for spec in args.gemm or []:
        try:
            dims, mode, *rest = spec.split(":")
            M, K, N = (int(x) for x in dims.split("x"))
            out = rest[0] if rest else "none"
            if wire_bytes(mode, out) is None or min(M, K, N) < 1 or len(rest) > 1:
                raise ValueError
        except ValueError:
            raise UsageError(f"--gemm {spec!r}: expected MxKxN:MODE[:OUT], for example "
                             f"64x64x64:fp8:e4m3 or 64x64x64:fp8seb:-2") from None
        if (mode == "fp8seb") != (args.engine == "seb"):
            raise UsageError(f"--gemm {spec!r}: mode {mode} runs on the "
                             f"{'seb' if mode == 'fp8seb' else 'mpe'} engine (--engine)")
        gemms.append((M, K, N, mode, out))
    print(HEADER, flush=True)
    default = SEB_GEMMS if args.engine == "seb" else GEMMS
    for board_name in args.board or list(BOARDS):
        for M, K, N, mode, out in gemms or default:
            print(row(run_one(args.sim, board_name, M, K, N, mode, out, engine=args.engine)),
                  flush=True)
    return 0


def main(argv=None, prog="python -m host bench") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
