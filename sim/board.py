"""The simulated board: ``ArraySystem``'s RTL in cocotb (``sim.tb.board_tb``) with its UART
pins bridged to a local socket, started in the background; ``simulated_board`` yields the
socket as a transport, which ``host.driver.Board`` speaks to as to a serial port."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from hw.soc.system import ArraySystem
from sim.runner import SimError, build_name, default_cache_dir, run_cocotb
from sim.tops import PoweredBoard

SIM_BOARD = dict(rows=2, cols=2, divisor=20, timeout_bits=40, a_words=256, b_words=256,
                 acc_words=256, chunking=1)
# The simulated board with the FP8-SEB engine (``ways`` given with it): SIM_BOARD's,
# without the MPE's chunking hardware, its trees at pipeline 1.
SIM_SEB_BOARD = dict(engine="seb", chunking=0, pipeline=1)
# The model's C++ optimization: -O2 runs the 8x8 board 3.2 times as fast as -O0 for
# about the same build time (README, "The simulated board's speed").
CXX_OPT = "-O2"
# A simulated board answers much more slowly than a real one: give it this long.
ANSWER_TIMEOUT_S = 120.0


def board_configuration(target, divisor: int | None = None) -> dict:
    """``simulated_board`` parameters of a board target (``boards.targets``): its array,
    buffers, clock and UART divisor (or ``divisor``), as its bitstream has them."""
    return dict(rows=target.rows, cols=target.cols, pipeline=target.pipeline,
                bias=target.bias, divisor=divisor or target.uart_divisor, timeout_bits=100,
                a_words=target.a_words, b_words=target.b_words, acc_words=target.acc_words,
                chunking=target.chunking, spram=target.spram,
                clock_khz=round(target.clock_mhz * 1000), engine=target.engine,
                ways=target.ways, room=target.room)


class SocketTransport:
    """The host side of the simulated board's UART: ``write`` and ``read`` as for a serial
    port (``read`` gives fewer bytes, or none, on timeout)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 60.0):
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SimError(f"no simulated board at {host}:{port}") from None
                time.sleep(0.2)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(n)
        except socket.timeout:
            return b""

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def simulated_board(sim: str = "verilator", build_dir=None, stats: dict | None = None,
                    **params):
    """Yields a ``SocketTransport`` connected to the RTL of ``ArraySystem(**params)``
    (``SIM_BOARD`` completes them; ``pipeline``, ``bias`` and ``clock_khz`` may be given
    too). With ``stats``, a dict, it is filled once the board has stopped: ``cycles``
    (simulated clock cycles), ``wall_s`` and ``cpu_s`` (wall and simulator CPU seconds) from the
    host's connection to its closing, and ``framing_errors`` (bytes from the board whose
    stop bit was low).

    The array's core runs on its clock gated by its ``step`` (``gate_clock``), which
    enables every one of its registers on the board: the same registers change on the
    same cycles, but the simulator skips the array while it sleeps (most of the time,
    since the link is far slower)."""
    params = {**SIM_BOARD, **params}
    top = PoweredBoard(ArraySystem(**params, gate_clock=True))
    # Every parameter in the name: each configuration keeps its own cached build.
    name = build_name("board", {**params, "gated": 1})
    work = Path(build_dir) if build_dir else Path(tempfile.mkdtemp(prefix="fp8hw-board-"))
    work.mkdir(parents=True, exist_ok=True)
    portfile, statsfile = work / "port", work / "stats.json"
    portfile.unlink(missing_ok=True)
    statsfile.unlink(missing_ok=True)
    outcome = {}

    def simulate():
        try:
            outcome["result"] = run_cocotb(
                top, name, sim, "sim.tb.board_tb", work, quiet=True,
                cache_dir=default_cache_dir(), cxx_opt=CXX_OPT, internals=False,
                env={"FP8HW_HW_PARAMS": params, "FP8HW_BOARD_PORTFILE": str(portfile),
                     "FP8HW_BOARD_STATSFILE": str(statsfile)})
        except Exception as e:          # reported to the caller below
            outcome["error"] = e

    thread = threading.Thread(target=simulate, daemon=True)
    transport = None
    try:
        thread.start()
        while not portfile.exists():
            if not thread.is_alive():
                raise SimError(f"the simulated board did not start: "
                               f"{outcome.get('error') or outcome.get('result')}")
            time.sleep(0.2)
        transport = SocketTransport("127.0.0.1", int(portfile.read_text()))
        yield transport
        transport.close()
        thread.join(timeout=120)
        if "error" in outcome:
            raise outcome["error"]
        if stats is not None and statsfile.is_file():
            stats.update(json.loads(statsfile.read_text()))
    finally:
        # Also when interrupted: a board that is running stops when its host goes (the
        # testbench ends on the closed socket), so wait for it to end before the folder
        # goes; one that is still being built is left to the end of the process.
        if transport is not None:
            transport.close()
        elif portfile.exists() and thread.is_alive():
            with contextlib.suppress(OSError, SimError):
                SocketTransport("127.0.0.1", int(portfile.read_text()), 5).close()
        if portfile.exists():
            thread.join(timeout=30)
        if not build_dir:
            shutil.rmtree(work, ignore_errors=True)
