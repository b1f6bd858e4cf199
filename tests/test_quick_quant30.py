"""Quick tier: the ``quant30`` unit in Amaranth's simulator: the quantizer against the
golden ``quant30`` (random and directed values around every bias's range), and the
tracker and bias rule against ``max_exponent`` and ``next_bias`` cycle by cycle over
tensors separated by ``clear``."""

import numpy as np
import pytest

from golden import FP8SEB, FP30, decode, encode
from golden.quant30 import max_exponent, next_bias, quant30
from hw.units.quant30 import Quant30
from sim.pysim import check, hex_and_value, simulate, stream_rows

pytestmark = pytest.mark.quick


def quantizer_inputs(rng, n):
    """Random codes; values spread around each row's bias range (subnormal outputs,
    saturation); exact ties between neighbouring fp8seb codes; zeros, NaNs and the
    extreme codes at the extreme biases."""
    bias = rng.integers(-32, 32, n)
    raw = rng.integers(0, 1 << 30, n)
    values = (np.where(rng.random(n) < 0.5, 1.0, -1.0) * rng.random(n)
              * 2.0 ** (rng.integers(-6, 18, n) - bias))
    near = encode(values, FP30).astype(np.int64)
    codes = rng.integers(0, FP8SEB.max_code, n)
    midpoints = (decode(codes, FP8SEB, bias=bias) + decode(codes + 1, FP8SEB, bias=bias)) / 2
    ties = encode(midpoints * np.where(rng.random(n) < 0.5, 1, -1), FP30).astype(np.int64)
    x = np.choose(rng.integers(0, 3, n), [raw, near, ties])
    special = np.array([0, 1 << 29, FP30.canonical_nan, FP30.canonical_nan | 1 << 29, 1,
                        (1 << 29) | 1, FP30.max_code, FP30.max_code | 1 << 29])
    extreme_biases = [-32, -1, 0, 1, 15, 30, 31, 7]
    x[:len(special) * 8] = np.repeat(special, 8)
    bias[:len(special) * 8] = np.tile(extreme_biases, len(special))
    return x.astype(np.uint32), bias


def test_quantizer():
    unit = Quant30()
    assert unit.latency == 0
    x, bias = quantizer_inputs(np.random.default_rng(30), 3000)
    result = {}

    async def testbench(ctx):
        result.update(await stream_rows(ctx, unit, {"x": x, "bias": bias}, ["y"],
                                        latency=unit.latency))

    simulate(unit, testbench)
    got, want = result["y"], quant30(x, bias)

    def describe(i):
        return (f"x={hex_and_value(int(x[i]), FP30, digits=8)} bias={bias[i]} "
                f"rtl={hex_and_value(int(got[i]), FP8SEB, int(bias[i]))} "
                f"golden={hex_and_value(int(want[i]), FP8SEB, int(bias[i]))}")

    check("quant30", got, want, describe)


@pytest.mark.parametrize("room", [0, 1, 3])
def test_tracker_and_next_bias(room):
    """Tensors of random length (all zero, with NaNs, or random), quantized with idle
    cycles carrying junk; on every cycle ``seen``, ``max_exp`` and ``next_bias`` follow
    the golden tracker over the values taken at earlier clock edges since the last
    ``clear``. Every other tensor's first value comes with the ``clear`` itself."""
    unit = Quant30(room=room)
    rng = np.random.default_rng(room)
    cycles = []

    async def testbench(ctx):
        tracked = []
        for tensor in range(40):
            n = int(rng.integers(1, 12))
            x = rng.integers(0, 1 << 30, n)
            if tensor % 4 == 1:
                x[:] = 0                                      # all zero: the bias stays
            elif tensor % 4 == 2:
                x[rng.random(n) < 0.5] = FP30.canonical_nan   # NaNs are not tracked
            bias = int(rng.integers(-32, 32))
            with_clear = tensor % 2 == 1
            ctx.set(unit.bias, bias)
            if not with_clear:
                ctx.set(unit.clear, 1)
                ctx.set(unit.valid, 0)
                await ctx.tick()
                tracked = []
            for k, code in enumerate(x.tolist()):
                while rng.random() < 0.3:                     # idle cycles, junk on x
                    ctx.set(unit.valid, 0)
                    ctx.set(unit.x, int(rng.integers(0, 1 << 30)))
                    await ctx.tick()
                    expect_tracker(ctx, unit, tracked, bias, room, cycles)
                ctx.set(unit.valid, 1)
                ctx.set(unit.x, code)
                if with_clear and k == 0:
                    ctx.set(unit.clear, 1)
                    tracked = []
                await ctx.tick()
                ctx.set(unit.clear, 0)
                tracked.append(code)
                expect_tracker(ctx, unit, tracked, bias, room, cycles)
            ctx.set(unit.valid, 0)

    simulate(unit, testbench)
    assert len(cycles) > 40


def expect_tracker(ctx, unit, tracked, bias, room, cycles):
    want_exp = max_exponent(np.array(tracked, np.uint32)) if tracked else None
    seen, got_exp, got_next = ctx.get(unit.seen), ctx.get(unit.max_exp), ctx.get(unit.next_bias)
    want_next = next_bias(bias, want_exp, room)
    where = f"cycle {len(cycles)}, values since clear {[hex(v) for v in tracked]}, bias {bias}"
    assert seen == (want_exp is not None), f"{where}: seen={seen}, golden max_exp {want_exp}"
    if seen:
        assert got_exp == want_exp, f"{where}: max_exp {got_exp}, golden {want_exp}"
    assert got_next == want_next, (f"{where}: room {room}: next_bias {got_next}, "
                                   f"golden {want_next}")
    cycles.append(got_exp)
