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
    assert_one_line_error(run_cli("host", "identify", "--sim", "icarus", "--board", "ulx3s"),
                          "--board applies to --serial only")
    assert_one_line_error(run_cli("host", "matmul", "--sim", "icarus"),
                          "matmul needs IN.npz and OUT.npz")
    assert_one_line_error(run_cli("host", "identify"), "one of the arguments")
    assert_one_line_error(run_cli("host", "identify", "--sim", "icarus", "--baud", "115200"),
                          "--baud applies to --serial only")
    assert_one_line_error(run_cli("host", "identify", "--serial", tmp_path / "x", "--baud",
                                  "13000000"), "baud rate must be an integer in 300..12000000")
