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
