"""Quick tier: the ``dot`` engine (``DotEngine``) in Amaranth's simulator: K-long dot
products back to back, with idle cycles between chunks, against the golden ``dot`` and
``quant30``; each result must come exactly ``latency`` cycles after its last chunk, and
the tracker and bias rule must cover every result."""

import numpy as np
import pytest

from golden.fmatree import dot
from golden.quant30 import max_exponent, next_bias, quant30
from hw.units.dot_engine import DotEngine
from sim.checks import dot_product
from sim.pysim import check, simulate, stream_rows

pytestmark = pytest.mark.quick


def jobs(rng, ways, lengths):
    """(a, b, bias_a, bias_b, out_bias) per dot product; every third one swamps one large
    product with small ones, every third has half its codes zero."""
    out = []
    for i, k in enumerate(lengths):
        a, b = rng.integers(0, 256, k), rng.integers(0, 256, k)
        if i % 3 == 1:
            a[1:] &= 0x87
            a[0] = 0x7F
        if i % 3 == 2:
            a[rng.random(k) < 0.5] = 0
        out.append((a, b, *(int(v) for v in rng.integers(-32, 32, 3))))
    return out


def chunk_rows(work, ways):
    """One row per chunk: ways codes of a and b (the last chunk padded with zeros),
    first, last and the biases."""
    rows = {name: [] for name in ("a", "b", "first", "last", "bias_a", "bias_b", "out_bias")}
    for a, b, ba, bb, ob in work:
        chunks = max(1, -(-len(a) // ways))
        pad = chunks * ways - len(a)
        ap = np.pad(a, (0, pad)).reshape(chunks, ways)
        bp = np.pad(b, (0, pad)).reshape(chunks, ways)
        for c in range(chunks):
            rows["a"].append(ap[c].astype(np.uint8))
            rows["b"].append(bp[c].astype(np.uint8))
            rows["first"].append(int(c == 0))
            rows["last"].append(int(c == chunks - 1))
            rows["bias_a"].append(ba)
            rows["bias_b"].append(bb)
            rows["out_bias"].append(ob)
    return {name: np.array(values) for name, values in rows.items()}


def check_engine(unit, work, seed):
    rng = np.random.default_rng(seed)
    rows = chunk_rows(work, unit.ways)
    gaps = np.where(rng.random(len(rows["a"])) < 0.2, rng.integers(1, 3, len(rows["a"])), 0)
    final_bias = int(rng.integers(-32, 32))
    result = {}

    async def testbench(ctx):
        ctx.set(unit.clear, 1)
        await ctx.tick()
        ctx.set(unit.clear, 0)
        result.update(await stream_rows(ctx, unit, rows, ["acc_out", "y"],
                                        latency=unit.latency, gaps=gaps, seed=seed,
                                        expect=rows["last"]))
        # The bias rule reads the out_bias that leaves the pipeline with a chunk.
        ctx.set(unit.valid_in, 0)
        ctx.set(unit.out_bias, final_bias)
        for _ in range(unit.latency - 1):
            await ctx.tick()
        result.update(seen=ctx.get(unit.seen), max_exp=ctx.get(unit.max_exp),
                      next_bias=ctx.get(unit.next_bias))

    simulate(unit, testbench)
    last = rows["last"] == 1
    got_acc, got_y = result["acc_out"][last], result["y"][last]
    want_acc = np.array([dot(a[None], b[None], ba, bb, unit.ways)[0]
                         for a, b, ba, bb, _ in work], np.uint32)
    out_bias = np.array([w[4] for w in work])
    want_y = quant30(want_acc, out_bias)

    def describe(i):
        return f"ways={unit.ways} " + dot_product(i, work, got_acc, got_y, want_acc, want_y)

    check("dot acc", got_acc, want_acc, describe)
    check("dot y", got_y, want_y, describe)
    want_exp = max_exponent(want_acc)
    assert result["seen"] == (want_exp is not None)
    assert want_exp is None or result["max_exp"] == want_exp, (result["max_exp"], want_exp)
    assert result["next_bias"] == next_bias(final_bias, want_exp, unit.quantizer.room)


@pytest.mark.parametrize("pipeline", [0, 3])
def test_four_ways(pipeline):
    unit = DotEngine(ways=4, pipeline=pipeline)
    assert unit.latency == pipeline + 1
    rng = np.random.default_rng(pipeline)
    lengths = [1, 2, 3, 4, 5, 8, 9, 17] + list(rng.integers(1, 40, 30))
    check_engine(unit, jobs(rng, 4, lengths), seed=pipeline)


def test_default_engine():
    unit = DotEngine()
    rng = np.random.default_rng(24)
    w = unit.ways
    check_engine(unit, jobs(rng, w, [1, w - 1, w, w + 1, 2 * w, 3 * w + 5]), seed=24)
