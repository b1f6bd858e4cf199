"""Quick tier: the ``fmatree`` unit (``FmaTree``) in Amaranth's simulator against the
golden ``fmatree``: a 3-way tree at its shallowest, default and deepest pipelines with
random and directed rows, every other depth and the DSP multiplier with fewer rows, and
the default 24-way tree with directed rows (largest T, subnormals, swamping,
cancellation, saturation at both stages, NaN accumulators, negative terms, T a power of
two)."""

import numpy as np
import pytest

from golden import FP30, encode
from golden.fmatree import DEFAULT_WAYS, fmatree, tree_sum
from hw.units.fma_tree import PIPELINE, PIPELINE_CUTS, FmaTree, enabled_cuts
from sim.checks import fmatree_row
from sim.fmatree_cases import power_of_two_chunks
from sim.pysim import check, simulate, stream_rows

pytestmark = pytest.mark.quick

MAX = 0x7F                      # largest fp8seb magnitude code
NAN = FP30.canonical_nan
NEG = 1 << 29                   # fp30 sign bit


def directed_rows(rng, ways, bias_pairs):
    rows = []                   # (acc, a, b, bias_a, bias_b)

    def add(acc, a, b, ba, bb):
        rows.append((int(acc), np.asarray(a, np.int64), np.asarray(b, np.int64), ba, bb))

    zeros = np.zeros(ways, np.int64)
    for ba, bb in bias_pairs:
        # T at its largest magnitude, both signs: saturation of the first rounding.
        add(0, np.full(ways, MAX), np.full(ways, MAX), ba, bb)
        add(0, np.full(ways, MAX | 0x80), np.full(ways, MAX), ba, bb)
        # All-subnormal inputs (exponent field 0).
        add(0, rng.integers(0, 8, ways) | (rng.integers(0, 2, ways) << 7),
            rng.integers(0, 8, ways), ba, bb)
        # Swamping: one large product and tiny ones.
        tiny = rng.integers(1, 8, ways)
        big = tiny.copy()
        big[0] = MAX
        add(0, big, np.where(np.arange(ways) == 0, MAX, tiny), ba, bb)
        # Exact cancellation inside the tree: x*y against -x*y.
        x, y = rng.integers(0, 128, ways), rng.integers(0, 256, ways)
        half = ways // 2
        x[half:2 * half], y[half:2 * half] = x[:half] | 0x80, y[:half]
        x[2 * half:] = 0
        add(0, x, y, ba, bb)
        # NaN accumulators (either sign) whatever the products; saturation of the second
        # rounding (an accumulator at +-max plus a product of the same sign).
        add(NAN, rng.integers(0, 256, ways), rng.integers(0, 256, ways), ba, bb)
        add(NAN | NEG, zeros, zeros, ba, bb)
        add(FP30.max_code, np.full(ways, 0x38), np.full(ways, 0x38), ba, bb)
        add(FP30.max_code | NEG, np.full(ways, 0xB8), np.full(ways, 0x38), ba, bb)
    # Negative terms: the tree adds each as its ones' complement and takes the +1 as a
    # carry in. Every way negative; every way a negative zero (0x80 x b).
    for ba, bb in bias_pairs[:2]:
        add(0, rng.integers(0, 128, ways) | 0x80, rng.integers(0, 128, ways), ba, bb)
        add(0, np.full(ways, 0x80), rng.integers(0, 256, ways), ba, bb)
    # T = +-2**k: the magnitude's +1 can carry out of the ones' complement's ones.
    for a, b in power_of_two_chunks(rng, ways, 12):
        add(0, a, b, 0, 0)
    # The accumulator cancels the chunk exactly: acc = -t.
    for _ in range(4 * len(bias_pairs)):
        a, b = rng.integers(0, 256, ways), rng.integers(0, 256, ways)
        ba, bb = (int(v) for v in rng.integers(-32, 32, 2))
        t = int(fmatree(np.zeros(1, np.uint32), a[None], b[None], ba, bb)[0])
        add(t ^ NEG if t else 0, a, b, ba, bb)
    return (np.array([r[0] for r in rows], np.uint32), np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
            np.array([r[4] for r in rows]))


def random_rows(rng, n, ways):
    """Random codes (a fifth of them zero), biases over -32..31, accumulators of every
    kind: zeros of both signs, random codes, NaN, next to +-max, nearly cancelling."""
    a = rng.integers(0, 256, (n, ways))
    b = rng.integers(0, 256, (n, ways))
    a[rng.random((n, ways)) < 0.2] = 0
    ba, bb = rng.integers(-32, 32, n), rng.integers(-32, 32, n)
    t = tree_sum(a, b) * 2.0 ** (-4 - ba - bb)
    kinds = [np.where(rng.random(n) < 0.5, 0, NEG), rng.integers(0, 1 << 30, n),
             np.where(rng.random(n) < 0.5, NAN, NAN | NEG),
             (FP30.max_code - rng.integers(0, 4, n)) | (rng.integers(0, 2, n) << 29),
             encode(-t * (1 + rng.normal(0, 2.0 ** -22, n)), FP30).astype(np.int64)]
    acc = np.choose(rng.integers(0, len(kinds), n), kinds).astype(np.uint32)
    return acc, a, b, ba, bb


def check_tree(unit, what, acc, a, b, ba, bb, gaps=None, skip=None):
    """``skip`` (optional, one flag a row): those rows must pass ``acc`` through."""
    result = {}
    skip = np.zeros(len(acc), np.int64) if skip is None else skip

    async def testbench(ctx):
        result.update(await stream_rows(
            ctx, unit, {"acc_in": acc, "a": a, "b": b, "bias_a": ba, "bias_b": bb,
                        "skip": skip},
            ["acc_out"], latency=unit.latency, gaps=gaps))

    simulate(unit, testbench)
    got, T = result["acc_out"], tree_sum(a, b)
    want = np.where(skip, acc, fmatree(acc, a, b, ba, bb))

    def describe(i):
        return f"ways={unit.ways} " + fmatree_row(i, a, b, ba, bb, acc, got, want, T)

    check(what, got, want, describe)


BIAS_PAIRS = [(-32, -32), (0, 0), (31, 31), (-32, 31), (10, -20)]
FULL_DEPTHS = (0, PIPELINE.default, PIPELINE.hi)


def three_way_rows(pipeline, n):
    rng = np.random.default_rng(pipeline)
    parts = [directed_rows(rng, 3, BIAS_PAIRS), random_rows(rng, n, 3)]
    rows = [np.concatenate(p) for p in zip(*parts)]
    gaps = None if pipeline == 0 else np.where(rng.random(len(rows[0])) < 0.25, 1, 0)
    # A tenth of the rows skip: their accumulators (-0 and NaN codes among them) pass.
    skip = (rng.random(len(rows[0])) < 0.1).astype(np.int64)
    return rows, gaps, skip


@pytest.mark.parametrize("pipeline", FULL_DEPTHS)
def test_three_ways(pipeline):
    unit = FmaTree(ways=3, pipeline=pipeline)
    assert unit.latency == pipeline
    rows, gaps, skip = three_way_rows(pipeline, 400)
    check_tree(unit, f"fmatree ways 3 pipeline {pipeline}", *rows, gaps=gaps, skip=skip)


@pytest.mark.parametrize("pipeline", [p for p in range(PIPELINE.hi + 1) if p not in FULL_DEPTHS])
def test_three_ways_every_depth(pipeline):
    """The other depths: each puts its registers elsewhere (directed rows, 40 random)."""
    unit = FmaTree(ways=3, pipeline=pipeline)
    assert unit.latency == pipeline
    rows, gaps, skip = three_way_rows(pipeline, 40)
    check_tree(unit, f"fmatree ways 3 pipeline {pipeline}", *rows, gaps=gaps, skip=skip)


def test_spare_cuts():
    """Every depth has ``pipeline`` distinct registers; a 1-way tree's adder-level ones
    move to the fp30 add; a 24-way tree's stay."""
    for ways in range(1, 25):
        for pipeline in range(PIPELINE.hi + 1):
            cuts = enabled_cuts(pipeline, ways)
            assert len(set(cuts)) == pipeline, (ways, pipeline, cuts)
    assert enabled_cuts(7, 1) == ("terms", "swap", "align", "lz", "t", "sum", "result")
    assert enabled_cuts(12, 24) == PIPELINE_CUTS[12]


@pytest.mark.parametrize("pipeline", [4, 6, 7, 12])
def test_one_way_moved_cuts(pipeline):
    """A 1-way tree, where the adder-level registers move to the fp30 add."""
    unit = FmaTree(ways=1, pipeline=pipeline)
    assert unit.latency == pipeline
    rng = np.random.default_rng(100 + pipeline)
    parts = [directed_rows(rng, 1, BIAS_PAIRS), random_rows(rng, 100, 1)]
    rows = [np.concatenate(p) for p in zip(*parts)]
    check_tree(unit, f"fmatree ways 1 pipeline {pipeline}", *rows,
               gaps=np.where(rng.random(len(rows[0])) < 0.25, 1, 0))


@pytest.mark.parametrize("ways, pipeline", [(5, 0), (5, PIPELINE.default)])
def test_dsp_multiplier(ways, pipeline):
    unit = FmaTree(ways=ways, pipeline=pipeline, multiplier="dsp")
    rng = np.random.default_rng(ways + pipeline)
    parts = [directed_rows(rng, ways, BIAS_PAIRS[:2]), random_rows(rng, 100, ways)]
    rows = [np.concatenate(p) for p in zip(*parts)]
    check_tree(unit, f"fmatree ways {ways} pipeline {pipeline} dsp", *rows)


def test_default_tree_directed():
    unit = FmaTree()
    assert unit.ways == DEFAULT_WAYS and unit.latency == unit.pipeline
    rng = np.random.default_rng(24)
    parts = [directed_rows(rng, unit.ways, BIAS_PAIRS[:3]), random_rows(rng, 12, unit.ways)]
    rows = [np.concatenate(p) for p in zip(*parts)]
    check_tree(unit, "fmatree ways 24", *rows, gaps=np.tile([0, 1], len(rows[0]) // 2 + 1))
