"""Faults on the host link, through the unmodified driver on the simulated board: a seeded
``sim.faults.FaultyTransport`` loses, cuts, damages (a bit in every field), duplicates and
buries in garbage requests and answers while GEMMs run. Every GEMM equals
``golden.matmul`` bit for bit or the driver raises ``BoardError``, never a wrong result;
a GEMM is never run twice (the board's ``runs`` counter); a payload holding a whole valid
frame is only data. The faults injected are printed as a table (``pytest -s``)."""

import numpy as np
import pytest

from conftest import sweep_simulators
from golden.matmul import matmul
from hw.soc.buffers import BufferId
from hw.soc.protocol import Command, encode_frame, pack_gemm
from host.driver import Board, BoardError
from sim.board import simulated_board
from sim.faults import ANSWER_FAULTS, REQUEST_FAULTS, FaultyTransport

GEMMS = 12
# Seconds without an answer before the driver sends again: the simulated board at divisor
# 4 answers a window of these small frames in well under this.
TIMEOUT_S = 1.5
# (mode, fmt_a, fmt_b, chunk, out): the fp8 GEMMs read 16-bit sums or quantized codes.
MODES = (("fp8", "e4m3", "e4m3", 0, "none"), ("fp8", "e5m2", "e4m3", 2, "e4m3"),
         ("int4", "e4m3", "e4m3", 0, "none"), ("int2", "e4m3", "e4m3", 0, "none"))


@pytest.mark.parametrize("sim", sweep_simulators("verilator"))
def test_faults_never_give_a_wrong_result(sim):
    rng = np.random.default_rng(21)
    with simulated_board(sim, divisor=4) as transport:
        faulty = FaultyTransport(transport, seed=13, rate=0.3, answer_rates={"GEMM": 0.9})
        board = Board(faulty, timeout=TIMEOUT_S, retries=10)

        def status():                        # read without faults: the test's own check
            faulty.enabled = False
            counters = board.status()
            faulty.enabled = True
            return counters

        faulty.enabled = False
        board.identify()
        faulty.enabled = True
        outcomes = {"equal": 0, "BoardError": 0}
        for n in range(GEMMS):
            mode, fa, fb, chunk, out = MODES[n % len(MODES)]
            M, K, N = (int(rng.integers(1, 17)), int(rng.integers(1, 5)),
                       int(rng.integers(1, 5)))
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            C = rng.integers(0, 1 << (16 if mode == "fp8" else 20), (M, N)).astype(np.uint32)
            runs = status()["runs"]
            try:
                got = board.matmul(A, B, C, mode, fa, fb, chunk, out)
            except BoardError:
                outcomes["BoardError"] += 1
                assert status()["runs"] - runs <= 1
                continue
            want = matmul(A, B, C, mode, fa, fb, chunk=chunk, out=out)
            assert np.array_equal(got, want), (n, mode, M, K, N)
            assert status()["runs"] - runs == 1, "a GEMM ran twice"
            outcomes["equal"] += 1
            if n % 3 == 1:
                # A payload holding a whole valid GEMM frame, with the very seq the board
                # expects next: only data, written and read back, nothing run.
                gemm = pack_gemm(m=1, k=1, n=1)
                data = b"\x00" + encode_frame(board.seq, Command.GEMM, gemm) + b"\x00"
                runs = status()["runs"]
                board.write(BufferId.ACC, 0, data)
                assert board.read(BufferId.ACC, 0, len(data)) == data
                assert status()["runs"] == runs
                faulty.injected["payload holding a frame"] += 1
        print(f"\nfaults injected ({sim}, {GEMMS} GEMMs: {outcomes}, "
              f"{board.recoveries} requests sent again):\n{faulty.table()}")
        counters = status()
        print("board counters: " + " ".join(f"{k}={v}" for k, v in counters.items()))
    assert outcomes["equal"] >= GEMMS - 1
    for kind in REQUEST_FAULTS:
        assert faulty.injected[kind] >= 3, kind
    for kind in ANSWER_FAULTS:
        assert sum(v for k, v in faulty.injected.items() if k.startswith(kind)) >= 3, kind
    assert faulty.injected["answer lost (GEMM)"] >= 2
    assert faulty.injected["answer damaged (GEMM)"] >= 2
    assert counters["replayed"] > 0 and counters["crc_errors"] > 0
