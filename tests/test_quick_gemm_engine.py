"""Quick tier: the GEMM engine's buffer layouts and K tiles (pure Python), and small whole
GEMMs through the engine (``hw.soc.gemm``) in Amaranth's simulator, checked bit for bit
against the golden model through the host byte port."""

import numpy as np
import pytest

from fp8hw.params import ParameterError
from golden import matmul, mpe
from hw.schedule import EngineLayout, image_words, k_tiles, word_stride, words_image
from hw.soc.buffers import BufferId, WordBuffer
from hw.soc.gemm import HOST_READ_LATENCY, GemmEngine
from sim.gemm_jobs import EngineGemm, dl_codes, fp8_codes, small_codes
from sim.pysim import put, simulate

pytestmark = pytest.mark.quick


# -- K tiles and layouts -------------------------------------------------------------------

def reference_tiles(K, R, chunk):
    """k_tiles written another way: walk k one at a time, cutting at chunk and tile ends."""
    tiles, k0 = [], 0
    for k in range(1, K + 1):
        chunk_end = k % chunk == 0 if chunk else False
        if k - k0 == R or chunk_end or k == K:
            c0 = (k0 // chunk) * chunk if chunk else 0
            c1 = min(c0 + chunk, K) if chunk else K
            tiles.append((k0, k - k0, k0 == c0, k == c1))
            k0 = k
    return tiles


@pytest.mark.parametrize("R", [1, 2, 3, 4, 8])
def test_k_tiles(R):
    for K in range(1, 30):
        for chunk in list(range(0, K + 3)) + [1000]:
            got = k_tiles(K, R, chunk)
            assert got == reference_tiles(K, R, chunk), (K, R, chunk)
            assert sum(length for _, length, _, _ in got) == K


def test_k_tiles_examples():
    assert k_tiles(10, 4, 0) == [(0, 4, True, False), (4, 4, False, False),
                                 (8, 2, False, True)]
    assert k_tiles(10, 4, 5) == [(0, 4, True, False), (4, 1, False, True),
                                 (5, 4, True, False), (9, 1, False, True)]
    assert k_tiles(3, 4, 1) == [(0, 1, True, True), (1, 1, True, True), (2, 1, True, True)]
    with pytest.raises(ValueError):
        k_tiles(0, 4)
    with pytest.raises(ValueError):
        k_tiles(4, 4, -1)


def test_layouts():
    rng = np.random.default_rng(1)
    M, K, N, R = 3, 7, 5, 2
    A, B = fp8_codes(rng, (M, K)), fp8_codes(rng, (K, N))
    C = rng.integers(0, 2**32, (M, N), dtype=np.uint64).astype(np.uint32)
    lay = EngineLayout(M, K, N, R, chunk=3)
    a = lay.a(A)
    for t, (k0, length, _, _) in enumerate(lay.tiles):
        for i in range(M):
            for r in range(length):
                assert a[t * M + i, r] == A[i, k0 + r]
    b = lay.b(B)
    for k in range(K):
        for n in range(N):
            assert b[(n // R) * K + k, n % R] == B[k, n]
    acc = lay.acc(C)
    for i in range(M):
        for j in range(N):
            assert acc[(j // R) * M + i, j % R] == C[i, j]
    assert np.array_equal(lay.acc_result(acc), C)
    assert np.array_equal(lay.out_result(lay.out(A[:, :N])), A[:, :N])
    assert (lay.a_words, lay.b_words, lay.acc_words) == (len(lay.tiles) * M, 3 * K, 3 * M)
    assert word_stride(3) == 4 and word_stride(1) == 1 and word_stride(32) == 32
    image = words_image(acc, "<u4")
    assert len(image) == acc.shape[0] * 8
    assert np.array_equal(image_words(image, R, "<u4"), acc)


@pytest.mark.parametrize("mode", ["fp8", "int4", "int2"])
def test_tile_schedule_gives_the_golden_gemm(mode):
    """The engine's tile order on the layouts, computed with the golden MPE, is the GEMM:
    tile t's word i of A with the sums of ACC word i, a PE row per lane."""
    rng = np.random.default_rng(3)
    for M, K, N, R in [(1, 1, 1, 1), (3, 7, 5, 2), (5, 9, 4, 4), (2, 17, 3, 3)]:
        A, B = fp8_codes(rng, (M, K)), fp8_codes(rng, (K, N))
        C = dl_codes(rng, (M, N))
        lay = EngineLayout(M, K, N, R)
        a, b, acc = lay.a(A), lay.b(B), lay.acc(C)
        for nt in range(lay.n_tiles):
            for t, (k0, length, _, _) in enumerate(lay.tiles):
                sums = acc[nt * M:(nt + 1) * M]
                for r in range(length):
                    sums = mpe(sums, a[t * M:(t + 1) * M, r, None],
                               b[None, nt * K + k0 + r, :], mode, "e4m3", "e5m2")
                acc[nt * M:(nt + 1) * M] = sums
        assert np.array_equal(lay.acc_result(acc), matmul(A, B, C, mode, "e4m3", "e5m2"))


# -- parameters ----------------------------------------------------------------------------

def test_engine_needs_a_square_array():
    with pytest.raises(ParameterError, match="cols=3 must equal rows=2"):
        GemmEngine(2, 3)
    with pytest.raises(ParameterError, match="a_words"):
        GemmEngine(2, 2, a_words=0)
    with pytest.raises(ValueError, match="depth"):
        WordBuffer(2, 1, 1 << 17)


# -- the engine in Amaranth's simulator ----------------------------------------------------

async def host_write(ctx, engine, buffer, first_word, words):
    """Write ``words`` (one a row) from word ``first_word`` on, a byte a cycle."""
    dtype = "<u4" if buffer == BufferId.ACC else "u1"
    stride = engine.buffers[buffer].stride
    data = words_image(words, dtype)
    host = engine.host
    ctx.set(host.buffer, buffer)
    ctx.set(host.write, 1)
    for offset, byte in enumerate(data):
        ctx.set(host.addr, first_word * stride + offset)
        ctx.set(host.data, byte)
        await ctx.tick()
    ctx.set(host.write, 0)


async def host_read(ctx, engine, buffer, first_word, count, items):
    """``count`` words from ``first_word`` on, read a byte a cycle."""
    dtype = "<u4" if buffer == BufferId.ACC else "u1"
    stride = engine.buffers[buffer].stride
    host = engine.host
    ctx.set(host.buffer, buffer)
    data = bytearray()
    for offset in range(count * stride):
        ctx.set(host.addr, first_word * stride + offset)
        await ctx.tick().repeat(HOST_READ_LATENCY)
        data.append(ctx.get(host.read_data))
    return image_words(bytes(data), items, dtype)


async def run_gemm(ctx, engine, g: EngineGemm):
    """Load, start, wait for done, read back into ``g.result`` (acc, out, cycles,
    refused)."""
    for buffer, first, words in g.loads():
        await host_write(ctx, engine, buffer, first, words)
    before = ctx.get(engine.cycles)
    await put(ctx, engine.start, g.settings())
    while not ctx.get(engine.done):
        await ctx.tick()
    refused = ctx.get(engine.refused)
    await ctx.tick()
    assert not ctx.get(engine.busy)
    lay = g.layout
    g.result["cycles"] = ctx.get(engine.cycles) - before
    g.result["refused"] = refused
    words = await host_read(ctx, engine, BufferId.ACC, g.acc_base, lay.acc_words, g.rows)
    g.result["acc"] = lay.acc_result(words)
    if g.out != "none":
        words = await host_read(ctx, engine, BufferId.A, g.out_base, lay.out_words,
                                lay.word_items)
        g.result["out"] = lay.out_result(words)
    g.result["tracker"] = tuple(ctx.get(getattr(engine, n)) for n in ("max_exp", "seen",
                                                                        "next_bias"))


def check_gemm(g: EngineGemm):
    assert not g.result["refused"], g.name
    want = g.golden()
    got = g.result["acc"]
    bad = np.argwhere(got != want)
    assert not len(bad), (f"{g.name}: {len(bad)} of {want.size} differ, first at "
                          f"{tuple(bad[0])}: 0x{int(got[tuple(bad[0])]):08x} != "
                          f"0x{int(want[tuple(bad[0])]):08x}")
    if g.out != "none":
        assert np.array_equal(g.result["out"], g.golden_out()), g.name


@pytest.mark.parametrize("spram", [0, 1])
def test_small_gemms_in_amaranth_sim(spram):
    R = 2
    engine = GemmEngine(R, R, pipeline=1, a_words=64, b_words=32, acc_words=32, chunking=0,
                        spram=spram)
    rng = np.random.default_rng(5)
    gemms = [
        EngineGemm(fp8_codes(rng, (3, 5)), fp8_codes(rng, (5, 3)), dl_codes(rng, (3, 3)), R,
                   fmt_b="e5m2", name="fp8 with C"),
        EngineGemm(small_codes(rng, (1, 3)), small_codes(rng, (3, 4)), None, R, name="M=1",
                   out="e4m3", out_base=40),
        EngineGemm(fp8_codes(rng, (7, 4)), fp8_codes(rng, (4, 3)),
                   rng.integers(0, 2**32, (7, 3), dtype=np.uint64).astype(np.uint32), R,
                   mode="int4", a_base=3, name="int4"),
    ]

    # Without the chunking hardware, a chunked fp8 GEMM is refused and changes nothing.
    chunked = EngineGemm(fp8_codes(rng, (2, 3)), fp8_codes(rng, (3, 2)), None, R, chunk=2,
                         name="chunk without dladd")

    async def testbench(ctx):
        for g in gemms:
            await run_gemm(ctx, engine, g)
        before = gemms[-1].result["acc"]
        await put(ctx, engine.start, chunked.settings())
        while not ctx.get(engine.done):
            await ctx.tick()
        assert ctx.get(engine.refused)
        await ctx.tick()
        words = await host_read(ctx, engine, BufferId.ACC, 0, gemms[-1].layout.acc_words, R)
        assert np.array_equal(gemms[-1].layout.acc_result(words), before)

    simulate(engine, testbench, max_cycles=20_000)
    for g in gemms:
        check_gemm(g)


@pytest.mark.parametrize("R", [1, 3, 4])
def test_k_tile_walker_walks_k_tiles(R):
    """The hardware walker (hw.soc.k_tile_walker) steps through exactly ``k_tiles``."""
    from amaranth import Module, Signal
    from hw.soc.k_tile_walker import KTileWalker
    m = Module()
    k, chunk, restart, step = Signal(16), Signal(16), Signal(), Signal()
    walker = KTileWalker(m, "w", R, k, chunk)
    with m.If(restart):
        walker.restart(m)
    with m.Elif(step):
        walker.advance(m)
    cases = [(K, c) for K in (1, 2, R, R + 1, 2 * R + 3, 17) for c in (0, 1, 2, R, R + 1, 5, 40)]

    async def testbench(ctx):
        for K, c in cases:
            ctx.set(k, K)
            ctx.set(chunk, c)
            ctx.set(restart, 1)
            await ctx.tick()
            ctx.set(restart, 0)
            ctx.set(step, 1)
            got = []
            while True:
                tile = (ctx.get(walker.k0), ctx.get(walker.length),
                        bool(ctx.get(walker.first_of_chunk)), bool(ctx.get(walker.last_of_chunk)))
                got.append(tile)
                assert ctx.get(walker.first_chunk) == (tile[0] < (c or K)), (K, c, tile)
                if ctx.get(walker.last):
                    break
                assert len(got) <= K, (K, c, got)
                await ctx.tick()
            ctx.set(step, 0)
            assert got == k_tiles(K, R, c), (K, c, got)

    simulate(m, testbench, max_cycles=5_000)


@pytest.mark.parametrize("spram", [0, 1])
def test_host_beside_a_running_gemm(spram):
    """While a GEMM runs in the lower halves of the buffers, the host pauses the engine
    again and again (for A, B and ACC in turn, a few bytes each time) and loads the next
    GEMM into the upper halves, reading each piece back: both GEMMs give the golden bits.
    ``uses`` names exactly the halves the running GEMM touches; ``accepted`` pulses once."""
    R = 2
    engine = GemmEngine(R, R, pipeline=1, a_words=256, b_words=64, acc_words=64,
                        chunking=1, spram=spram)
    half = engine.half_words
    rng = np.random.default_rng(11)
    first = EngineGemm(small_codes(rng, (8, 16)), small_codes(rng, (16, 4)),
                       dl_codes(rng, (8, 4)), R, chunk=3, out="e4m3", out_base=100,
                       name="lower halves, chunk 3, out e4m3")
    second = EngineGemm(small_codes(rng, (6, 5)), small_codes(rng, (5, 4)),
                        dl_codes(rng, (6, 4)), R, out="e5m2", a_base=half[BufferId.A],
                        out_base=half[BufferId.A] + 40, b_base=half[BufferId.B],
                        acc_base=half[BufferId.ACC], name="upper halves, out e5m2")
    seen = {"accepted": 0, "pauses": 0, "beside": 0}

    async def paused_piece(ctx, buffer, word, words):
        """Pause for ``buffer``, write ``words`` from ``word`` and read them back."""
        ctx.set(engine.host.buffer, buffer)
        ctx.set(engine.pause, 1)
        for _ in range(200):
            if ctx.get(engine.paused):
                break
            await ctx.tick()
        assert ctx.get(engine.paused), "the engine did not pause"
        busy = ctx.get(engine.busy)
        await host_write(ctx, engine, buffer, word, words)
        items = words.shape[1]
        back = await host_read(ctx, engine, buffer, word, len(words), items)
        assert np.array_equal(back, words), (buffer, word)
        assert ctx.get(engine.paused)
        ctx.set(engine.pause, 0)
        seen["pauses"] += 1
        seen["beside"] += int(busy and ctx.get(engine.busy))

    async def testbench(ctx):
        for buffer, word, words in first.loads():
            await host_write(ctx, engine, buffer, word, words)
        await put(ctx, engine.start, first.settings())
        pieces = [(buffer, word + i, words[i:i + 2]) for buffer, word, words in second.loads()
                  for i in range(0, len(words), 2)]
        rng_gap = np.random.default_rng(3)
        gap = 0
        while not ctx.get(engine.done):
            seen["accepted"] += ctx.get(engine.accepted)
            if ctx.get(engine.uses):
                assert ctx.get(engine.uses) == 0b010101, bin(ctx.get(engine.uses))
                if pieces and gap == 0:
                    await paused_piece(ctx, *pieces.pop(rng_gap.integers(len(pieces))))
                    gap = int(rng_gap.integers(0, 6))
                    continue
            gap = max(gap - 1, 0)
            await ctx.tick()
        assert not ctx.get(engine.refused)
        await ctx.tick()
        for piece in pieces:                  # what the GEMM left over, now idle
            await host_write(ctx, engine, *piece)
        lay = first.layout
        first.result["acc"] = lay.acc_result(
            await host_read(ctx, engine, BufferId.ACC, 0, lay.acc_words, R))
        first.result["out"] = lay.out_result(
            await host_read(ctx, engine, BufferId.A, first.out_base, lay.acc_words, R))
        first.result["refused"] = 0
        second.keep_a = True                  # loaded beside the first GEMM
        await run_gemm(ctx, engine, second)

    simulate(engine, testbench, max_cycles=60_000)
    assert seen["accepted"] == 1
    assert seen["beside"] >= 10, seen
    check_gemm(first)
    check_gemm(second)


# -- the FP8-SEB engine --------------------------------------------------------------------

def test_seb_layouts():
    """Chunks of W codes a lane: A word t*M + i holds row i's chunks k0_t.., B's column n
    chunk k at word (n // R) * KC + k, lane n % R; the quantized output's bytes j % (R*W)
    of word (j // (R*W)) * M + i; zero codes pad K."""
    rng = np.random.default_rng(2)
    M, K, N, R, W = 3, 11, 9, 2, 3
    A, B = fp8_codes(rng, (M, K)), fp8_codes(rng, (K, N))
    lay = EngineLayout(M, K, N, R, ways=W)
    assert lay.k_chunks == 4 and lay.word_items == 6
    a, b = lay.a(A).reshape(-1, R, W), lay.b(B).reshape(-1, R, W)
    Ap = np.pad(A, ((0, 0), (0, 1)))
    Bp = np.pad(B, ((0, 1), (0, 0)))
    for t, (k0, length, _, _) in enumerate(lay.tiles):
        for i in range(M):
            for r in range(length):
                assert list(a[t * M + i, r]) == list(Ap[i, (k0 + r) * W:(k0 + r + 1) * W])
    for k in range(lay.k_chunks):
        for n in range(N):
            assert list(b[(n // R) * 4 + k, n % R]) == list(Bp[k * W:(k + 1) * W, n])
    out = lay.out(A[:, :N])
    assert lay.out_words == 2 * M and out.shape == (2 * M, 6)
    assert out[M + 1, 8 % 6] == A[1, 8]          # C[1, 8]: the second word, byte 2
    assert np.array_equal(lay.out_result(out), A[:, :N])


def seb_codes(rng, shape):
    """fp8seb codes, a fifth of them zero."""
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    codes[rng.random(shape) < 0.2] = 0
    return codes


def fp30_codes(rng, shape):
    from golden import FP30, encode
    return encode(rng.standard_normal(shape) * 4.0, FP30).astype(np.uint32)


def test_seb_engine_in_amaranth_sim():
    """Whole FP8-SEB GEMMs on the engine (2x2 array of 3-way trees): with and without an
    initial C, N over several A words of outputs, quantized outputs tracked over two GEMMs
    of one tensor (``track``) and afresh, a chain through a resident A; the MPE's modes,
    e4m3 outputs and chunks refused."""
    from golden.quant30 import max_exponent, next_bias
    R, W = 2, 3
    engine = GemmEngine(R, R, pipeline=1, a_words=64, b_words=64, acc_words=64, chunking=0,
                        engine="seb", ways=W)
    rng = np.random.default_rng(14)

    def gemm(M, K, N, C=True, **kw):
        return EngineGemm(seb_codes(rng, (M, K)), seb_codes(rng, (K, N)),
                          fp30_codes(rng, (M, N)) if C else None, R, mode="fp8seb", ways=W,
                          **kw)

    first = gemm(6, 13, 2 * R * W + 1, out="fp8seb", bias_a=-3, bias_b=5, out_bias=2,
                 out_base=40, name="out, a new tensor")
    second = gemm(3, 7, 4, C=False, out="fp8seb", bias_a=-3, bias_b=5, out_bias=2,
                  out_base=60, track=1, name="the same tensor, on")
    gemms = [gemm(5, 8, 3, bias_a=-32, bias_b=31, a_base=3, acc_base=2, name="with C"),
             gemm(1, 2, 1, C=False, bias_a=31, bias_b=31, name="1x2x1"),
             first, second]
    chained = EngineGemm(first.golden_out(), seb_codes(rng, (first.N, 3)), None, R,
                         mode="fp8seb", ways=W, bias_a=2, bias_b=-1, a_base=40, keep_a=True,
                         out="fp8seb", out_bias=0, out_base=0, name="resident A, afresh")
    gemms.append(chained)
    refused = [EngineGemm(seb_codes(rng, (2, 3)), seb_codes(rng, (3, 2)), None, R, **kw)
               for kw in (dict(mode="fp8"), dict(mode="fp8seb", ways=W, out="e4m3"),
                          dict(mode="fp8seb", ways=W, chunk=2))]

    async def testbench(ctx):
        for g in gemms:
            await run_gemm(ctx, engine, g)
        for g in refused:
            await put(ctx, engine.start, g.settings())
            while not ctx.get(engine.done):
                await ctx.tick()
            g.result["refused"] = ctx.get(engine.refused)
            await ctx.tick()

    simulate(engine, testbench, max_cycles=40_000)
    for g in gemms:
        check_gemm(g)
    assert all(g.result["refused"] for g in refused)
    # The tracker: over first and second together, then over the chained GEMM alone.
    both = np.concatenate([first.golden().ravel(), second.golden().ravel()])
    want = max_exponent(both)
    assert second.result["tracker"] == (want, 1, next_bias(2, want)), second.result["tracker"]
    want = max_exponent(chained.golden())
    assert chained.result["tracker"] == (want, 1, next_bias(0, want))
