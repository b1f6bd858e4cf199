"""Golden ``seb_matmul`` (``matmul`` in ``fp8seb`` mode, docs/numerics.md) against the
exact ``fractions`` reference of ``fmatree`` / ``dot`` / ``quant30`` / the tracker (from
``test_golden_fmatree_reference``, which shares no code with ``golden/``), and against
``golden.dot`` row by row: random GEMMs over every bias, directed bias corners,
saturation, exact cancellation, swamping, NaN accumulators, K not a multiple of the ways,
ways 1, 7 and 24, and bad input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from golden import FormatError
from golden.fmatree import dot
from golden.seb_matmul import seb_matmul
from test_golden_fmatree_reference import (FP30_NAN, dot_ref, max_exponent_ref,
                                           next_bias_ref, quant30_ref)

pytestmark = pytest.mark.quick


def reference(A, B, C, bias_a, bias_b, ways, out_bias, room=1):
    M, K = A.shape
    N = B.shape[1]
    got = np.zeros((M, N), np.uint32)
    for i in range(M):
        for j in range(N):
            acc = 0 if C is None else int(C[i, j])
            got[i, j] = dot_ref([int(x) for x in A[i]], [int(x) for x in B[:, j]],
                                bias_a, bias_b, ways, acc)
    if out_bias is None:
        return got, None, None, None
    Y = np.array([[quant30_ref(int(x), out_bias) for x in row] for row in got], np.uint8)
    max_exp = max_exponent_ref([int(x) for x in got.ravel()])
    return got, Y, max_exp, next_bias_ref(out_bias, max_exp, room)


def check(A, B, C, bias_a, bias_b, ways, out_bias=None, room=1, name=""):
    r = seb_matmul(A, B, C, bias_a, bias_b, ways, out_bias, room)
    want_C, want_Y, want_exp, want_next = reference(A, B, C, bias_a, bias_b, ways, out_bias,
                                                    room)
    bad = np.argwhere(r.C != want_C)
    assert not len(bad), (f"{name}: {len(bad)} of {want_C.size} differ, first at "
                          f"{tuple(bad[0])}: 0x{int(r.C[tuple(bad[0])]):08x} != "
                          f"0x{int(want_C[tuple(bad[0])]):08x}")
    if out_bias is not None:
        assert np.array_equal(r.Y, want_Y), name
        assert (r.max_exp, r.next_bias) == (want_exp, want_next), name
    else:
        assert r.Y is None and r.max_exp is None and r.next_bias is None
    return r


@pytest.mark.parametrize("ways", [1, 7, 24])
def test_random_gemms_against_fractions(ways):
    rng = np.random.default_rng(ways)
    pyrng = random.Random(ways)
    for trial in range(6):
        M, N = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        K = int(rng.integers(1, 3 * ways + 2))
        A = rng.integers(0, 256, (M, K), dtype=np.uint8)
        B = rng.integers(0, 256, (K, N), dtype=np.uint8)
        C = None if trial % 2 else rng.integers(0, 1 << 30, (M, N)).astype(np.uint32)
        bias_a, bias_b = pyrng.randint(-32, 31), pyrng.randint(-32, 31)
        out_bias = pyrng.randint(-32, 31) if trial % 3 else None
        check(A, B, C, bias_a, bias_b, ways, out_bias, room=trial % 3,
              name=f"ways {ways} trial {trial}")


def test_bias_corners_and_directed_cases():
    rng = np.random.default_rng(5)
    for bias_a, bias_b in [(-32, -32), (31, 31), (0, 0), (-32, 31), (31, -32), (7, -20)]:
        A = rng.integers(0, 256, (2, 30), dtype=np.uint8)
        B = rng.integers(0, 256, (30, 3), dtype=np.uint8)
        check(A, B, None, bias_a, bias_b, 24, out_bias=bias_a, name=f"bias {bias_a} {bias_b}")
    # Saturation: the largest codes at the smallest biases, and their negatives.
    big = np.full((2, 48), 0x7F, np.uint8)
    big[1] |= 0x80
    check(big, np.full((48, 2), 0x7F, np.uint8), None, -32, -32, 24, out_bias=31,
          name="saturation")
    # Exact cancellation: a row, then its negative in the next chunk.
    row = rng.integers(0, 128, 24, dtype=np.uint8)
    A = np.concatenate([row, row | 0x80])[None, :]
    B = np.full((48, 1), 0x38, np.uint8)
    r = check(A, B, None, 0, 0, 24, out_bias=0, name="cancellation")
    assert r.C[0, 0] == 0 and r.max_exp is None and r.next_bias == 0
    # Swamping: a large accumulator, then chunks of tiny products.
    C = np.full((1, 1), 0x1F000000, np.uint32)
    check(np.full((1, 96), 0x01, np.uint8), np.full((96, 1), 0x01, np.uint8), C, 31, 31,
          24, name="swamping")
    # NaN accumulators stay NaN; K = 1; N = 1.
    C = np.array([[FP30_NAN, 0]], np.uint32)
    r = check(np.array([[0x45]], np.uint8), np.array([[0x33, 0x21]], np.uint8), C, 3, -4,
              24, out_bias=5, name="NaN acc, K = 1")
    assert r.C[0, 0] == FP30_NAN


def test_equals_dot_row_by_row():
    rng = np.random.default_rng(8)
    M, K, N = 5, 53, 4
    A = rng.integers(0, 256, (M, K), dtype=np.uint8)
    B = rng.integers(0, 256, (K, N), dtype=np.uint8)
    C = rng.integers(0, 1 << 30, (M, N)).astype(np.uint32)
    r = seb_matmul(A, B, C, -3, 9, 24)
    for j in range(N):
        want = dot(A, np.repeat(B[:, j][None, :], M, axis=0), -3, 9, 24, C[:, j])
        assert np.array_equal(r.C[:, j], want)


def test_bad_input():
    A = np.zeros((2, 3), np.uint8)
    B = np.zeros((3, 2), np.uint8)
    with pytest.raises(FormatError, match=r"A must be \[M, K\]"):
        seb_matmul(A, np.zeros((4, 2), np.uint8))
    with pytest.raises(FormatError, match="bias"):
        seb_matmul(A, B, bias_a=32)
    with pytest.raises(FormatError, match="one shared bias"):
        seb_matmul(A, B, bias_b=np.zeros(2, np.int8))
    with pytest.raises(FormatError, match="bias"):
        seb_matmul(A, B, out_bias=-33)
    with pytest.raises(FormatError, match=r"C must be \[2, 2\]"):
        seb_matmul(A, B, np.zeros((2, 3), np.uint32))
    with pytest.raises(FormatError, match="fp30"):
        seb_matmul(A, B, np.full((2, 2), 1 << 30, np.uint32))
    with pytest.raises(Exception, match="ways"):
        seb_matmul(A, B, ways=0)
    with pytest.raises(FormatError, match="none of them 0"):
        seb_matmul(np.zeros((2, 0), np.uint8), np.zeros((0, 2), np.uint8))


@pytest.mark.parametrize("room, step", [(0, 1), (1, 0), (2, -1), (3, -1)])
def test_room_moves_the_next_bias(room, step):
    """Results whose largest exponent is one below the top of ``out_bias``'s range: room
    0 raises the bias, room 1 keeps it, more lowers it."""
    from golden import FP30, encode
    out_bias = 4
    top = 15 - out_bias
    C = encode(np.array([[2.0 ** (top - 1), -2.0 ** (top - 3)]]), FP30).astype(np.uint32)
    A = np.zeros((1, 5), np.uint8)                # zero products: the result is C
    r = check(A, np.zeros((5, 2), np.uint8), C, 0, 0, 24, out_bias=out_bias, room=room,
              name=f"room {room}")
    assert r.max_exp == top - 1 and r.next_bias == out_bias + step


# ``python -m golden eval matmul`` in fp8seb mode -------------------------------------

def _eval(tmp_path, capsys, arrays, *params):
    """Run the golden CLI in this process; (exit status, stderr, output arrays or None)."""
    from golden.__main__ import main
    np.savez(tmp_path / "in.npz", **arrays)
    out = tmp_path / "out.npz"
    if out.exists():
        out.unlink()
    status = main(["eval", "matmul", str(tmp_path / "in.npz"), str(out)]
                  + [a for p in params for a in ("--param", p)])
    err = capsys.readouterr().err
    if not out.exists():
        return status, err, None
    with np.load(out) as f:
        return status, err, {k: f[k] for k in f.files}


def test_vector_file_eval(tmp_path, capsys):
    """The vector file's arrays are seb_matmul's: C; with out_bias, Y, max_exp (int16)
    and next_bias (int8) as scalars; max_exp is -128 when no result is a nonzero number."""
    rng = np.random.default_rng(14)
    A = rng.integers(0, 256, (6, 31)).astype(np.uint8)
    B = rng.integers(0, 256, (31, 5)).astype(np.uint8)
    C = rng.integers(0, 1 << 30, (6, 5)).astype(np.uint32)
    status, err, got = _eval(tmp_path, capsys, {"A": A, "B": B, "C": C}, "mode=fp8seb",
                             "bias_a=-7", "bias_b=12", "ways=7")
    assert status == 0, err
    assert list(got) == ["C"] and np.array_equal(got["C"], seb_matmul(A, B, C, -7, 12, 7).C)
    status, err, got = _eval(tmp_path, capsys, {"A": A, "B": B}, "mode=fp8seb", "bias_a=3",
                             "out_bias=-5", "room=2")
    want = seb_matmul(A, B, None, 3, 0, 24, out_bias=-5, room=2)
    assert status == 0, err
    assert list(got) == ["C", "Y", "max_exp", "next_bias"]
    assert got["max_exp"].dtype == np.int16 and got["max_exp"].shape == ()
    assert got["next_bias"].dtype == np.int8 and got["next_bias"].shape == ()
    assert np.array_equal(got["C"], want.C) and np.array_equal(got["Y"], want.Y)
    assert (int(got["max_exp"]), int(got["next_bias"])) == (want.max_exp, want.next_bias)
    zeros = np.zeros_like(A)
    status, err, got = _eval(tmp_path, capsys, {"A": zeros, "B": B}, "mode=fp8seb",
                             "out_bias=6")
    assert status == 0, err
    assert (int(got["max_exp"]), int(got["next_bias"])) == (-128, 6)


@pytest.mark.parametrize("params, fragment", [
    (("mode=fp8seb", "fmt_a=e5m2"), "parameter fmt_a does not apply to mode fp8seb"),
    (("mode=fp8seb", "chunk=4"), "parameter chunk does not apply to mode fp8seb"),
    (("mode=fp8seb", "out=e4m3"), "parameter out does not apply to mode fp8seb"),
    (("bias_a=2",), "parameter bias_a does not apply to mode fp8"),
    (("mode=int4", "out_bias=1"), "parameter out_bias does not apply to mode int4"),
    (("mode=fp8", "ways=8"), "parameter ways does not apply to mode fp8"),
    (("mode=fp8seb", "room=2"), "parameter room applies only with out_bias"),
    (("mode=fp8seb", "out_bias=32"), "out_bias=32 is outside the allowed range -32..31"),
    (("mode=fp8seb", "bias_b=x"), "parameter bias_b must be an integer in -32..31"),
])
def test_vector_file_parameters_refused(tmp_path, capsys, params, fragment):
    """A parameter the mode does not use is refused in one line, and no file is written."""
    A = np.zeros((2, 3), np.uint8)
    status, err, got = _eval(tmp_path, capsys, {"A": A, "B": A.T.copy()}, *params)
    assert status == 2 and got is None
    assert fragment in err and err.count("\n") == 1, err


def test_vector_file_fp30_range(tmp_path, capsys):
    """An initial C that is not fp30 codes (30 bits) is refused."""
    A = np.zeros((2, 3), np.uint8)
    status, err, got = _eval(tmp_path, capsys, {"A": A, "B": A.T.copy(),
                                                "C": np.full((2, 2), 1 << 30, np.uint32)},
                             "mode=fp8seb")
    assert status == 2 and got is None and "fp30" in err, err
