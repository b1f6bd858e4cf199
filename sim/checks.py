"""Comparing RTL outputs with the golden model, with failures a person can reproduce."""

from __future__ import annotations

import numpy as np


def compare(log, what: str, got: np.ndarray, want: np.ndarray, describe, limit: int = 20):
    """Assert ``got == want`` elementwise; log the first mismatches via ``describe(i)``."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: {got.shape} results, expected {want.shape}"
    bad = np.nonzero(got != want)[0]
    for i in bad[:limit]:
        log.error(f"{what}: row {i}: {describe(int(i))}")
    assert len(bad) == 0, (f"{what}: {len(bad)} of {len(want)} rows differ; first: "
                           f"{describe(int(bad[0]))}")
    log.info(f"{what}: {len(want)} rows match the golden model")


def hex_and_value(code: int, fmt=None, bias=None, digits: int = 2) -> str:
    """``0x3c (1.5)``: a code in hex and, for a float format, its decoded value."""
    from golden import decode
    if fmt is None:
        return f"0x{code:0{digits}x}"
    value = decode(np.array([code]), fmt, bias=bias)[0]
    return f"0x{code:0{digits}x} ({float(value)!r})"


def fmatree_row(i: int, a, b, bias_a, bias_b, acc, got, want, T) -> str:
    """Row ``i`` of an FMA-tree check for a failure message: the biases, the nonzero ways
    (the first six), the exact T, the accumulator, and both results."""
    from golden import FP30
    nz = np.nonzero((a[i] != 0) | (b[i] != 0))[0]
    pairs = " ".join(f"[{k}]a=0x{a[i, k]:02x},b=0x{b[i, k]:02x}" for k in nz[:6])
    more = f" (+{len(nz) - 6} ways)" if len(nz) > 6 else ""
    return (f"bias_a={bias_a[i]} bias_b={bias_b[i]} {pairs}{more} T={T[i]} "
            f"acc={hex_and_value(int(acc[i]), FP30, digits=8)} "
            f"rtl={hex_and_value(int(got[i]), FP30, digits=8)} "
            f"golden={hex_and_value(int(want[i]), FP30, digits=8)}")


def dot_product(i: int, work, got_acc, got_y, want_acc, want_y) -> str:
    """Dot product ``i`` of a dot-engine check for a failure message; ``work`` holds
    (a, b, bias_a, bias_b, out_bias) per dot product."""
    from golden import FP8SEB, FP30
    a, b, ba, bb, ob = work[i]
    return (f"K={len(a)} bias_a={ba} bias_b={bb} out_bias={ob} "
            f"a[:4]={a[:4].tolist()} b[:4]={b[:4].tolist()} "
            f"rtl acc={hex_and_value(int(got_acc[i]), FP30, digits=8)} "
            f"y={hex_and_value(int(got_y[i]), FP8SEB, ob)} "
            f"golden acc={hex_and_value(int(want_acc[i]), FP30, digits=8)} "
            f"y={hex_and_value(int(want_y[i]), FP8SEB, ob)}")
