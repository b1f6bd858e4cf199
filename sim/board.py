"""Start a simulated board (``sim.tb.board_tb``) in the background and connect to it."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from pathlib import Path

from host.driver import Board, BoardError, SocketTransport
from hw.soc.system import ArraySystem
from sim.runner import default_cache_dir, run_cocotb

SIM_BOARD = dict(rows=2, cols=2, max_m=16, divisor=8, timeout_bits=40)


@contextlib.contextmanager
def simulated_board(sim: str = "verilator", build_dir=None, **params):
    """Yields a ``Board`` connected to the RTL of ``ArraySystem(**params)``."""
    params = {**SIM_BOARD, **params}
    top = ArraySystem(params["rows"], params["cols"], max_m=params["max_m"],
                      divisor=params["divisor"], timeout_bits=params["timeout_bits"])
    with tempfile.TemporaryDirectory(prefix="fp8hw-board-") as tmp:
        work = Path(build_dir or tmp)
        portfile = work / "port"
        portfile.unlink(missing_ok=True)
        outcome = {}

        def simulate():
            try:
                outcome["result"] = run_cocotb(
                    top, f"array_system_{params['rows']}x{params['cols']}_m{params['max_m']}",
                    sim, "sim.tb.board_tb", work, quiet=True, cache_dir=default_cache_dir(),
                    cxx_opt="-O0", env={"FP8HW_HW_PARAMS": params,
                                        "FP8HW_BOARD_PORTFILE": str(portfile)})
            except Exception as e:          # reported to the caller below
                outcome["error"] = e

        thread = threading.Thread(target=simulate, daemon=True)
        thread.start()
        while not portfile.exists():
            if not thread.is_alive():
                raise BoardError(f"the simulated board did not start: "
                                 f"{outcome.get('error') or outcome.get('result')}")
            time.sleep(0.2)
        transport = SocketTransport("127.0.0.1", int(portfile.read_text()))
        try:
            yield Board(transport, timeout=120.0)
        finally:
            transport.sock.close()
            thread.join(timeout=120)
        if "error" in outcome:
            raise outcome["error"]
