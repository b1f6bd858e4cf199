"""Faults on the host link, through the unmodified driver on the simulated board (with the
MPE engine, and with the FP8-SEB engine): a seeded ``sim.faults.FaultyTransport`` loses,
cuts, damages (a bit in every field), duplicates and buries in garbage requests and
answers while GEMMs run. Every GEMM equals ``golden.matmul`` (``golden.seb_matmul``, its
tracker included) bit for bit or the driver raises ``BoardError``, never a wrong result;
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


# (bias_a, bias_b, out_bias) of the FP8-SEB GEMMs: sums, or quantized codes and tracker.
SEB_MODES = ((0, 0, None), (-7, 12, 3), (31, -32, None), (5, 5, -2))
SEB_WAYS = 3


def seb_gemm(board, n, A, B, C):
    """The FP8-SEB GEMM ``n`` on the board and in the golden model: (got, want), each
    (C, Y, max_exp, next_bias)."""
    from golden.seb_matmul import seb_matmul
    ba, bb, ob = SEB_MODES[n % len(SEB_MODES)]
    C = C & ((1 << 30) - 1)
    got = board.matmul(A, B, C, "fp8seb", bias_a=ba, bias_b=bb, out_bias=ob, sums=True)
    want = seb_matmul(A, B, C, ba, bb, SEB_WAYS, ob)
    return ([got.C, got.Y, got.max_exp, got.next_bias],
            [want.C, want.Y, want.max_exp, want.next_bias])


def same(got, want) -> bool:
    return all(np.array_equal(g, w) if isinstance(w, np.ndarray) else g == w
               for g, w in zip(got, want))


# The MPE board on Verilator in the default tier, on Icarus with --full; the FP8-SEB
# board (90 s) on Verilator with --full (not yet run on Icarus).
@pytest.mark.parametrize("sim, engine", [
    pytest.param(s, "mpe", marks=p.marks, id=f"{s}-mpe")
    for p in sweep_simulators("verilator") for s in p.values] + [
    pytest.param("verilator", "seb", marks=pytest.mark.full, id="verilator-seb")])
def test_faults_never_give_a_wrong_result(sim, engine):
    rng = np.random.default_rng(21)
    seb = engine == "seb"
    extra = dict(engine="seb", chunking=0, pipeline=1, ways=SEB_WAYS) if seb else {}
    with simulated_board(sim, divisor=4, **extra) as transport:
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
            # Small enough to be one GEMM on chip (the runs counter checks it ran once):
            # the SEB board's trees have a shorter pipeline, so its row blocks are smaller.
            M, K, N = (int(rng.integers(1, 13 if seb else 17)),
                       int(rng.integers(1, 9 if seb else 5)), int(rng.integers(1, 5)))
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            C = rng.integers(0, 1 << (16 if mode == "fp8" else 20), (M, N)).astype(np.uint32)
            runs = status()["runs"]
            try:
                if seb:
                    got, want = seb_gemm(board, n, A, B, C)
                else:
                    got = board.matmul(A, B, C, mode, fa, fb, chunk, out)
            except BoardError:
                outcomes["BoardError"] += 1
                assert status()["runs"] - runs <= 1
                continue
            if seb:
                assert same(got, want), (n, M, K, N)
            else:
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
        print(f"\nfaults injected ({sim}, {engine} engine, {GEMMS} GEMMs: {outcomes}, "
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
