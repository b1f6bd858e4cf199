"""Bad input found by trying the tools as a user: each ends with one line on stderr and a
non-zero exit status, and writes nothing."""

import os
import zipfile

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


def _not_an_array_member(path):
    """An .npz (a zip) whose member 'a' is raw bytes, not an .npy array."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a", b"raw bytes, no .npy header")
    return path


# Each command as (the words before IN.npz OUT.npz, the options after them).
CONVERT_COMMANDS = [(["golden", "eval", "convert"], []), (["sim", "run", "convert"], []),
                    (["host", "matmul"], ["--sim", "icarus"])]
MATMUL_COMMANDS = [(["sim", "run", "matmul"], []), (["host", "matmul"], ["--sim", "icarus"])]


@pytest.mark.parametrize("head, tail", CONVERT_COMMANDS)
def test_member_that_is_not_an_array(tmp_path, head, tail):
    vin = _not_an_array_member(tmp_path / "in.npz")
    out = tmp_path / "out.npz"
    proc = run_cli(*head, vin, out, *tail)
    assert_one_line_error(proc, "member 'a' is not a numpy array")
    assert not out.exists()


@pytest.mark.parametrize("baud", ["0", "-9600", "10000000000", "fast"])
def test_host_bad_baud(tmp_path, baud):
    proc = run_cli("host", "identify", "--serial", tmp_path / "no-such-port", "--baud", baud)
    assert_one_line_error(proc, "baud" if baud != "fast" else "invalid int value")


def test_host_baud_with_sim():
    assert_one_line_error(run_cli("host", "identify", "--sim", "icarus", "--baud", "9600"),
                          "--baud applies to --serial only")


def test_build_empty_out(tmp_path):
    proc = run_cli("hw.build", "--unit", "convert", "--out", "", cwd=tmp_path)
    assert_one_line_error(proc, "--out is empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unit, arrays", [
    ("mpe", {"acc": np.zeros(0, np.uint32), "a": np.zeros(0, np.uint8),
             "b": np.zeros(0, np.uint8)}),
    ("fmatree", {"acc": np.zeros(0, np.uint32), "a": np.zeros((0, 24), np.uint8),
                 "b": np.zeros((0, 24), np.uint8), "bias_a": np.zeros(0, np.int8),
                 "bias_b": np.zeros(0, np.int8)}),
])
def test_empty_vector_file(sim, tmp_path, unit, arrays):
    """No rows: both commands write the same empty output."""
    np.savez(tmp_path / "in.npz", **arrays)
    gold = run_cli("golden", "eval", unit, tmp_path / "in.npz", tmp_path / "g.npz")
    assert gold.returncode == 0, gold.stderr
    rtl = run_cli("sim", "run", unit, tmp_path / "in.npz", tmp_path / "r.npz", "--sim", sim)
    assert rtl.returncode == 0, rtl.stderr
    assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "r.npz").read_bytes()
    with np.load(tmp_path / "r.npz") as f:
        assert f["acc"].shape == (0,) and f["acc"].dtype == np.uint32


@pytest.mark.parametrize("head, tail", MATMUL_COMMANDS)
def test_unwritable_output_found_before_the_work(tmp_path, head, tail):
    """The output's folder is checked before the GEMM is simulated."""
    np.savez(tmp_path / "in.npz", A=np.zeros((2, 3), np.uint8), B=np.zeros((3, 2), np.uint8))
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        for out, fragment in ((tmp_path / "no" / "o.npz", "does not exist"),
                              (locked / "o.npz", "is not writable"),
                              (tmp_path, "is a folder")):
            if fragment == "is not writable" and os.access(locked, os.W_OK):
                continue                          # root writes anywhere
            proc = run_cli(*head, tmp_path / "in.npz", out, *tail)
            assert_one_line_error(proc, fragment)
            assert "GEMM" not in proc.stdout
    finally:
        os.chmod(locked, 0o700)


def test_generated_files_have_normal_permissions(tmp_path):
    proc = run_cli("hw.build", "--unit", "convert", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "convert_bias11.v").stat().st_mode & 0o777 == 0o666 & ~umask
    np.savez(tmp_path / "in.npz", a=np.arange(4, dtype=np.uint8))
    proc = run_cli("golden", "eval", "convert", tmp_path / "in.npz", tmp_path / "o.npz")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.npz").stat().st_mode & 0o777 == 0o666 & ~umask
