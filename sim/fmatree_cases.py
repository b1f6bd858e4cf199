"""Directed FMA-tree inputs shared by the quick tier (``tests/test_quick_fmatree.py``) and
the cocotb testbench (``sim/tb/fmatree_tb.py``)."""

from __future__ import annotations

import numpy as np


def power_of_two_chunks(rng, ways, n):
    """``n`` chunks whose T is +-2**k: way 0 a power of two (significands 1, 2, 4 or 8),
    the others pairs that cancel (x, -x) in either order, or zeros of either sign, so the
    last way, whose sign the tree leaves for the end, is positive or negative."""
    out = []
    powers = [0x01, 0x02, 0x04] + [e << 3 for e in range(1, 16)]      # S = 1, 2, 4 or 8
    for _ in range(n):
        a = np.where(rng.random(ways) < 0.5, 0, 0x80)
        b = np.zeros(ways, np.int64)
        a[0] = rng.choice(powers) | (0x80 if rng.random() < 0.5 else 0)
        b[0] = rng.choice(powers)
        for j in range(1, ways - 1, 2):
            x, y = int(rng.integers(0, 128)), int(rng.integers(0, 256))
            first = 0x80 if rng.random() < 0.5 else 0
            a[j], b[j], a[j + 1], b[j + 1] = x | first, y, x | (first ^ 0x80), y
        out.append((a, b))
    return out
