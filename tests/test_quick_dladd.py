"""Quick tier: the ``dladd`` unit in Amaranth's simulator against the golden ``dladd``,
at every pipeline depth: directed pairs (every special code, ties at every exponent
distance, cancellation, tiny and overflowing results) and seeded random pairs, with idle
cycles between rows; and a planted one-bit error on the ties is caught."""

import numpy as np
import pytest

from golden import DLFLOAT16, dladd
from hw.units.dl_add import PIPELINE, DlAdd
from sim.dladd_vectors import constructed_pairs, directed_pairs
from sim.pysim import PlantedBug, check, hex_and_value, simulate, stream_rows

pytestmark = pytest.mark.quick


def run(unit, x, y, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, 3, len(x)) * (rng.random(len(x)) < 0.2) if unit.latency else None
    result = {}

    async def testbench(ctx):
        result.update(await stream_rows(ctx, unit, {"a": x, "b": y}, ["y"],
                                        latency=unit.latency, gaps=gaps, seed=seed))

    simulate(unit, testbench)
    return result["y"]


def describe(x, y, got, want):
    def row(i):
        return (f"a={hex_and_value(int(x[i]), DLFLOAT16, digits=4)} "
                f"b={hex_and_value(int(y[i]), DLFLOAT16, digits=4)} "
                f"rtl={hex_and_value(int(got[i]), DLFLOAT16, digits=4)} "
                f"golden={hex_and_value(int(want[i]), DLFLOAT16, digits=4)}")
    return row


@pytest.mark.parametrize("pipeline", range(PIPELINE.lo, PIPELINE.hi + 1))
def test_directed_and_random(pipeline):
    """The default depth takes every directed pair; the others the constructed ones (the
    datapath is the same, only the registers move)."""
    unit = DlAdd(pipeline=pipeline)
    assert unit.latency == pipeline
    rng = np.random.default_rng(pipeline)
    pairs = (directed_pairs(seed=pipeline, per_case=1) if pipeline == PIPELINE.default
             else constructed_pairs(seed=pipeline, per_case=1))
    x = np.concatenate([pairs[:, 0], rng.integers(0, 1 << 16, 500)])
    y = np.concatenate([pairs[:, 1], rng.integers(0, 1 << 16, 500)])
    got, want = run(unit, x, y, pipeline), dladd(x, y)
    check(f"dladd pipeline {pipeline}", got, want, describe(x, y, got, want))


def test_planted_bug_is_caught():
    """Bit 0 of y flipped whenever b is 2**-10 (a tie with 1.0 + a): the check fails."""
    unit = PlantedBug(DlAdd(pipeline=0), "y", lambda u: u.b == 0x2A00)
    x = np.array([0x3E00, 0x3E01, 0x4000], np.int64)
    y = np.array([0x2A00, 0x3E00, 0x2A00], np.int64)
    got, want = run(unit, x, y, 0), dladd(x, y)
    with pytest.raises(AssertionError, match="2 of 3 rows differ"):
        check("planted", got, want, describe(x, y, got, want))
