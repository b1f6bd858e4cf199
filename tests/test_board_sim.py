"""The unmodified host driver against the board's RTL (the simulated board, over a
socket bridged to the UART pins): identify, GEMMs in every mode, refused requests."""

import numpy as np
import pytest

from conftest import sweep_simulators
from golden.matmul import matmul
from host.driver import Board, BoardError
from hw.soc.protocol import Command
from sim.board import ANSWER_TIMEOUT_S, SIM_BOARD, simulated_board


# The simulated board on Icarus runs at about 30,000 cycles a second (Verilator 600,000):
# the whole driver test there only with --full; the CLI test below runs on both.
@pytest.mark.parametrize("sim", sweep_simulators("verilator"))
def test_driver_on_simulated_board(sim):
    rng = np.random.default_rng(11)
    with simulated_board(sim) as transport:
        board = Board(transport, timeout=ANSWER_TIMEOUT_S)
        info = board.identify()
        assert (info.rows, info.cols, info.dataflow, info.a_words) == (
            SIM_BOARD["rows"], SIM_BOARD["cols"], "ws", SIM_BOARD["a_words"])
        # M past max_m: row blocks; K and N past what one block holds: K blocks that
        # continue the fold on chip, column blocks.
        big = (info.max_m + 3, 2 * info.rows + 1, 3)
        for (mode, fa, fb, chunk, out), (M, K, N) in zip(
                (("fp8", "e4m3", "e4m3", 0, "none"), ("fp8", "e5m2", "e5m2", 3, "e4m3"),
                 ("int4", "e4m3", "e4m3", 0, "none"), ("int2", "e4m3", "e4m3", 0, "none"),
                 ("fp8", "e4m3", "e5m2", 2, "none")),
                ((19, 5, 3), (7, 9, 5), big, (3, info.max_k + 5, 2), (2, 4, info.max_n + 3))):
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            C = rng.integers(0, 1 << 16, (M, N)).astype(np.uint32)
            assert np.array_equal(board.matmul(A, B, C, mode, fa, fb, chunk, out),
                                  matmul(A, B, C, mode, fa, fb, chunk=chunk, out=out)), mode
        # A chain of layers: only the input and the final output cross the link.
        A = rng.integers(0, 256, (6, 5)).astype(np.uint8)
        W1 = rng.integers(0, 256, (5, 4)).astype(np.uint8)
        W2 = rng.integers(0, 256, (4, 3)).astype(np.uint8)
        hidden = board.matmul(A, W1, out="e4m3", keep=True)
        assert np.array_equal(hidden.numpy(), matmul(A, W1, out="e4m3"))
        got = board.matmul(hidden, W2, out="e5m2")
        hidden.free()
        assert np.array_equal(got, matmul(matmul(A, W1, out="e4m3"), W2, out="e5m2"))
        with pytest.raises(BoardError, match="freed"):
            hidden.numpy()
        # An on-chip A whose K needs more B than the board holds (1x300 times 300x4:
        # 300 B words of 256) goes in K blocks, runs of its tiles; the kept result of
        # the first layer is 1x300, its columns in blocks that start on its words.
        x = rng.integers(0, 256, (1, 3)).astype(np.uint8)
        W1 = rng.integers(0, 256, (3, 300)).astype(np.uint8)
        W2 = rng.integers(0, 256, (300, 4)).astype(np.uint8)
        hidden = board.matmul(x, W1, out="e5m2", keep=True)
        first = matmul(x, W1, out="e5m2")
        assert np.array_equal(hidden.numpy(), first)
        got = board.matmul(hidden, W2, None, "fp8", "e5m2", "e4m3", chunk=4)
        hidden.free()
        assert np.array_equal(got, matmul(first, W2, None, "fp8", "e5m2", chunk=4))
        with pytest.raises(BoardError, match="ARGUMENT"):
            board.request(Command.READ, bytes([7, 0, 0, 0, 0, 1, 0, 0]))
        # Garbage on the line is answered with NAKs and loses nothing.
        board.transport.write(bytes(rng.integers(0, 256, 100).tolist()))
        board.write(0, 0, b"\x01\x02\x03")
        assert board.read(0, 0, 3) == b"\x01\x02\x03"
        assert board.status()["runs"] > 0


# The FP8-SEB board on Verilator (its GEMMs past max_m and max_k would take Icarus,
# at about 30,000 cycles a second, many minutes; not yet run there).
@pytest.mark.parametrize("sim", ["verilator"])
def test_driver_on_simulated_seb_board(sim):
    """The simulated board with the FP8-SEB engine (a 2x2 array of 5-way trees): GEMMs
    with and without an initial C at bias corners, in row, K and column blocks (K blocks
    go on with the same sums on chip), quantized outputs tracked over a whole tensor cut
    into blocks, a chain of layers through a resident A; MPE modes refused."""
    from golden.seb_matmul import seb_matmul
    from sim.board import SIM_SEB_BOARD
    rng = np.random.default_rng(12)
    W = 5
    with simulated_board(sim, **SIM_SEB_BOARD, ways=W) as transport:
        board = Board(transport, timeout=ANSWER_TIMEOUT_S)
        info = board.identify()
        assert (info.engine, info.ways, info.room, info.bias) == ("seb", W, 1, 0)
        cases = [((7, 23, 5), -32, 31, None, True),
                 ((info.max_m + 3, 2 * W + 1, 3), 0, 0, 3, False),      # row blocks
                 ((3, info.max_k + 7, 2), 5, -7, None, True),           # K blocks
                 ((2, W, info.max_n + 3), -1, 2, -2, True)]             # column blocks
        for (M, K, N), ba, bb, ob, with_c in cases:
            A = rng.integers(0, 256, (M, K)).astype(np.uint8)
            B = rng.integers(0, 256, (K, N)).astype(np.uint8)
            C = rng.integers(0, 1 << 30, (M, N)).astype(np.uint32) if with_c else None
            got = board.matmul(A, B, C, "fp8seb", bias_a=ba, bias_b=bb, out_bias=ob,
                               sums=True)
            want = seb_matmul(A, B, C, ba, bb, W, ob)
            assert np.array_equal(got.C, want.C), (M, K, N)
            if ob is not None:
                assert np.array_equal(got.Y, want.Y), (M, K, N)
                assert (got.max_exp, got.next_bias) == (want.max_exp, want.next_bias)
        # Two layers: the hidden tensor stays on chip (its codes at out_bias 1).
        A = rng.integers(0, 256, (6, 13)).astype(np.uint8)
        W1 = rng.integers(0, 256, (13, 12)).astype(np.uint8)
        W2 = rng.integers(0, 256, (12, 3)).astype(np.uint8)
        hidden = board.matmul(A, W1, mode="fp8seb", bias_a=2, bias_b=-3, out_bias=1,
                              keep=True)
        first = seb_matmul(A, W1, None, 2, -3, W, 1)
        assert np.array_equal(hidden.numpy(), first.Y)
        assert (hidden.max_exp, hidden.next_bias) == (first.max_exp, first.next_bias)
        with pytest.raises(BoardError, match="shared bias 1, not bias_a=0"):
            board.matmul(hidden, W2, mode="fp8seb")
        got = board.matmul(hidden, W2, mode="fp8seb", bias_a=1, bias_b=4)
        hidden.free()
        assert np.array_equal(got.C, seb_matmul(first.Y, W2, None, 1, 4, W).C)
        # A kept result in column blocks (its A on chip, so only N splits: 24 columns
        # of 12 ACC words each exceed the 256 words): blocks start on output words (10
        # codes), else a block's codes land inside the previous block's words.
        A0 = rng.integers(0, 256, (40, 7)).astype(np.uint8)
        W0 = rng.integers(0, 256, (7, 10)).astype(np.uint8)
        W1 = rng.integers(0, 256, (10, 24)).astype(np.uint8)
        hidden = board.matmul(A0, W0, mode="fp8seb", out_bias=0, keep=True)
        kept = board.matmul(hidden, W1, mode="fp8seb", out_bias=-1, keep=True)
        want = seb_matmul(seb_matmul(A0, W0, None, 0, 0, W, 0).Y, W1, None, 0, 0, W, -1)
        assert np.array_equal(kept.numpy(), want.Y)
        assert (kept.max_exp, kept.next_bias) == (want.max_exp, want.next_bias)
        hidden.free()
        kept.free()
        # An on-chip A split in K (B of 1300 codes a column is 260 words of 256).
        x = rng.integers(0, 256, (1, 4)).astype(np.uint8)
        W1 = rng.integers(0, 256, (4, 1300)).astype(np.uint8)
        W2 = rng.integers(0, 256, (1300, 2)).astype(np.uint8)
        hidden = board.matmul(x, W1, mode="fp8seb", out_bias=3, keep=True)
        first = seb_matmul(x, W1, None, 0, 0, W, 3)
        assert np.array_equal(hidden.numpy(), first.Y)
        got = board.matmul(hidden, W2, mode="fp8seb", bias_a=3, bias_b=1)
        hidden.free()
        assert np.array_equal(got.C, seb_matmul(first.Y, W2, None, 3, 1, W).C)
        with pytest.raises(BoardError, match="needs the MPE engine"):
            board.matmul(A, W1)


def test_host_cli_matmul_equals_golden_eval(sim, tmp_path):
    from conftest import run_cli
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "in.npz", A=rng.integers(0, 256, (3, 4)).astype(np.uint8),
             B=rng.integers(0, 256, (4, 3)).astype(np.uint8))
    flags = ["--param", "fmt_b=e5m2", "--param", "chunk=3", "--param", "out=e4m3"]
    gold = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "g.npz", *flags)
    assert gold.returncode == 0, gold.stderr
    board = run_cli("host", "matmul", tmp_path / "in.npz", tmp_path / "b.npz", *flags,
                    "--sim", sim)
    assert board.returncode == 0, board.stderr
    assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_host_cli_matmul_fp8seb_equals_golden_eval(sim, tmp_path):
    """mode fp8seb: the simulated board with the FP8-SEB engine of the file's ways."""
    from conftest import run_cli
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "in.npz", A=rng.integers(0, 256, (3, 7)).astype(np.uint8),
             B=rng.integers(0, 256, (7, 4)).astype(np.uint8),
             C=rng.integers(0, 1 << 30, (3, 4)).astype(np.uint32))
    flags = ["--param", "mode=fp8seb", "--param", "bias_a=-5", "--param", "bias_b=9",
             "--param", "ways=3", "--param", "out_bias=-1"]
    gold = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "g.npz", *flags)
    assert gold.returncode == 0, gold.stderr
    board = run_cli("host", "matmul", tmp_path / "in.npz", tmp_path / "b.npz", *flags,
                    "--sim", sim)
    assert board.returncode == 0, board.stderr
    assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_host_cli_errors(tmp_path):
    from conftest import assert_one_line_error, run_cli
    assert_one_line_error(run_cli("host", "identify", "--serial", tmp_path / "no-such-port",
                                  "--board", "ulx3s"), "cannot open serial port")
    assert_one_line_error(run_cli("host", "identify", "--serial", tmp_path / "no-such-port"),
                          "--serial needs --board NAME or --baud N (the builds' rates: "
                          "icebreaker 6000000")
    # Parameters that a board cannot take are refused before any board starts.
    assert_one_line_error(run_cli("host", "matmul", "in.npz", "out.npz", "--sim", "icarus",
                                  "--param", "rows=8", "--param", "cols=8", "--param",
                                  "dataflow=os"),
                          "--param rows, cols, dataflow: a board runs its own array",
                          "--board NAME")
    assert_one_line_error(run_cli("host", "matmul", "in.npz", "out.npz", "--serial", "x",
                                  "--board", "ulx3s", "--param", "dataflow=ws"),
                          "--param dataflow", "the board's bitstream fixes them")
    for board, param, fragment in (
            ("ulx3s", "mode=fp8seb", "mode fp8seb does not run on the ulx3s build"),
            ("ulx3s-seb", "mode=int4", "mode int4 does not run on the ulx3s-seb build"),
            ("icebreaker", "bias=7", "the icebreaker build's e4m3 bias is 11, not bias=7"),
            ("icebreaker-seb", "ways=3", "has 1-way trees and room 1, not ways=3")):
        seb = "seb" in board and not param.startswith("mode")
        params = ["--param", param] + (["--param", "mode=fp8seb"] if seb else [])
        assert_one_line_error(run_cli("host", "matmul", "in.npz", "out.npz", "--sim",
                                      "icarus", "--board", board, *params), fragment)
    assert_one_line_error(run_cli("host", "matmul", "--sim", "icarus"),
                          "matmul needs IN.npz and OUT.npz")
    assert_one_line_error(run_cli("host", "identify"), "one of the arguments")
    assert_one_line_error(run_cli("host", "identify", "--sim", "icarus", "--baud", "115200"),
                          "--baud applies to --serial only")
    assert_one_line_error(run_cli("host", "identify", "--serial", tmp_path / "x", "--baud",
                                  "13000000"), "baud rate must be an integer in 300..12000000")


def test_two_simulated_boards_side_by_side():
    """Two runs of one board design simulate at once (they share its cached build); each
    must be up before either closes, which a lock held for a whole simulation forbids."""
    import threading
    both_up = threading.Barrier(2, timeout=300)
    found, errors = [], []

    def run():
        try:
            with simulated_board("icarus") as transport:
                found.append(Board(transport, timeout=ANSWER_TIMEOUT_S).identify().rows)
                both_up.wait()
        except Exception as e:        # reported below
            errors.append(e)
            both_up.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and found == [SIM_BOARD["rows"]] * 2


def test_host_cli_simulates_a_board_builds_configuration():
    """--sim S --board NAME: the simulated board is that build's (its array, engine,
    buffers, clock and UART divisor), not the default 2x2."""
    from boards.targets import BOARDS
    from conftest import run_cli
    target = BOARDS["icebreaker"]
    proc = run_cli("host", "identify", "--sim", "icarus", "--board", "icebreaker")
    assert proc.returncode == 0, proc.stderr
    info = dict(item.split("=") for item in proc.stdout.split())
    assert (int(info["rows"]), int(info["cols"]), int(info["pipeline"])) == (
        target.rows, target.cols, target.pipeline)
    assert (int(info["a_words"]), int(info["divisor"]), int(info["clock_khz"])) == (
        target.a_words, target.uart_divisor, round(target.clock_mhz * 1000))
    assert "the icebreaker build's configuration" in proc.stderr


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_host_cli_interrupted_stops_the_board_and_cleans_up(signal_name, tmp_path):
    """An interrupted GEMM on the simulated board: exit status 130 and one line, no
    output file, and no temporary folder left behind. The matmul command also shows its
    progress (GEMM passes, requests, bytes) while it runs."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from conftest import ROOT
    rng = np.random.default_rng(8)
    np.savez(tmp_path / "in.npz", A=rng.integers(0, 256, (64, 64)).astype(np.uint8),
             B=rng.integers(0, 256, (64, 64)).astype(np.uint8))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host", "matmul", tmp_path / "in.npz", tmp_path / "out.npz",
         "--sim", "icarus"], cwd=ROOT, env=dict(os.environ, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(scratch.glob("fp8hw-board-*/port")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(3)                          # into the GEMM: the link is busy
    proc.send_signal(getattr(signal, signal_name))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert "GEMM passes" in err and "bytes sent" in err
    assert not (tmp_path / "out.npz").exists()
    assert list(scratch.iterdir()) == []
