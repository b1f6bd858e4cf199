"""GEMMs for the GEMM engine's testbenches (``hw.soc.gemm``): what to load into its
buffers, the settings to start it with, and the golden bits expected back.

Shared by the quick tier (Amaranth's simulator) and the cocotb testbench, so that both
lay data out with ``hw.schedule.EngineLayout`` and judge it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fp8hw.enums import GemmMode, OutFormat, SourceFormat
from golden import DLFLOAT16, encode, matmul
from golden.seb_matmul import seb_matmul
from hw.schedule import EngineLayout, engine_chunk


@dataclass
class EngineGemm:
    """One GEMM on an engine with ``rows`` x ``rows`` array: operands, optional initial
    C (None: ``accumulate`` 0), settings, where A and the quantized output go."""
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray | None
    rows: int
    mode: str = "fp8"
    fmt_a: str = "e4m3"
    fmt_b: str = "e4m3"
    chunk: int = 0
    out: str = "none"
    a_base: int = 0
    out_base: int = 0
    acc_base: int = 0
    b_base: int = 0
    bias: int = 11
    name: str = ""
    keep_a: bool = False          # A is already in the buffer (a resident operand)
    # The FP8-SEB engine's (mode fp8seb, out fp8seb): its trees' ways, the shared biases,
    # the tracker's room and whether this GEMM goes on with the previous one's tensor.
    ways: int = 1
    bias_a: int = 0
    bias_b: int = 0
    out_bias: int = 0
    room: int = 1
    track: int = 0
    result: dict = field(default_factory=dict)

    @property
    def M(self):
        return self.A.shape[0]

    @property
    def K(self):
        return self.A.shape[1]

    @property
    def N(self):
        return self.B.shape[1]

    @property
    def seb(self) -> bool:
        return self.mode == GemmMode.FP8SEB.label

    @property
    def layout(self) -> EngineLayout:
        return EngineLayout(self.M, self.K, self.N, self.rows,
                            0 if self.seb else engine_chunk(self.mode, self.chunk), self.ways)

    def settings(self) -> dict:
        """The ``start`` payload (``hw.soc.gemm.GEMM_SETTINGS``) as field -> integer."""
        return {"mode": int(GemmMode.from_label(self.mode)),
                "fmt_a": int(SourceFormat.from_label(self.fmt_a)),
                "fmt_b": int(SourceFormat.from_label(self.fmt_b)),
                "out": int(OutFormat.from_label(self.out)),
                "accumulate": int(self.C is not None),
                "m": self.M, "k": self.layout.k_chunks, "n": self.N, "chunk": self.chunk,
                "a_base": self.a_base, "out_base": self.out_base,
                "acc_base": self.acc_base, "b_base": self.b_base,
                "bias_a": self.bias_a, "bias_b": self.bias_b, "out_bias": self.out_bias,
                "track": self.track}

    def _seb(self):
        return seb_matmul(self.A, self.B, self.C, self.bias_a, self.bias_b, self.ways,
                          self.out_bias if self.out != "none" else None, self.room)

    def golden(self) -> np.ndarray:
        """The expected ACC contents, uint32 [M, N]."""
        if self.seb:
            return self._seb().C
        return matmul(self.A, self.B, self.C, self.mode, self.fmt_a, self.fmt_b, self.bias,
                      chunk=self.chunk)

    def golden_out(self) -> np.ndarray:
        """The expected quantized output, uint8 [M, N] (``matmul`` with ``out``)."""
        if self.seb:
            return self._seb().Y
        return matmul(self.A, self.B, self.C, self.mode, self.fmt_a, self.fmt_b, self.bias,
                      chunk=self.chunk, out=self.out)

    def loads(self) -> list[tuple[int, int, np.ndarray]]:
        """(buffer, first word, words) to write before the GEMM: A (unless resident), B,
        and the initial C (or, without one, garbage: the engine must not read it)."""
        from hw.soc.buffers import BufferId
        lay = self.layout
        rng = np.random.default_rng(self.M * 1000 + self.K * 10 + self.N)
        loads = [] if self.keep_a else [(BufferId.A, self.a_base, lay.a(self.A))]
        loads.append((BufferId.B, self.b_base, lay.b(self.B)))
        if self.C is not None:
            loads.append((BufferId.ACC, self.acc_base, lay.acc(self.C)))
        else:
            junk = rng.integers(0, 2**32, (lay.acc_words, self.rows), dtype=np.uint64)
            loads.append((BufferId.ACC, self.acc_base, junk.astype(np.uint32)))
        return loads


def dl_codes(rng, shape, scale=8.0) -> np.ndarray:
    """Random ``dlfloat16`` codes (uint32) of normally distributed values."""
    return encode(rng.standard_normal(shape) * scale, DLFLOAT16).astype(np.uint32)


def fp8_codes(rng, shape) -> np.ndarray:
    """Random FP8 codes (every code, NaN and Inf included)."""
    return rng.integers(0, 256, shape).astype(np.uint8)


def small_codes(rng, shape) -> np.ndarray:
    """FP8 codes of moderate magnitude (no NaN or Inf, so that results are not all NaN
    after a long K): exponent fields 4..10, any sign and mantissa."""
    exponent = rng.integers(4, 11, shape)
    return ((rng.integers(0, 2, shape) << 7) | (exponent << 3)
            | rng.integers(0, 8, shape)).astype(np.uint8)


def settings_word(g: EngineGemm) -> int:
    """The ``start`` payload of ``g`` as one integer (``GEMM_SETTINGS`` packed)."""
    from hw.soc.gemm import GEMM_SETTINGS
    return GEMM_SETTINGS.const(g.settings()).as_value().value


def chain(first: EngineGemm, B2, fmt_b2: str = "e4m3", name: str = "") -> EngineGemm:
    """The GEMM that takes ``first``'s quantized output (left in the A buffer at its
    ``out_base``) as its A: K = ``first``'s N."""
    assert first.out != "none"
    A2 = first.golden_out()
    return EngineGemm(A2, B2, None, first.rows, fmt_a=first.out, fmt_b=fmt_b2,
                      a_base=first.out_base, keep_a=True, bias=first.bias,
                      name=name or f"{first.name} then resident A")


def engine_gemms(rows: int, a_words: int, b_words: int, acc_words: int, chunking: int,
                 latency: int, seed: int = 1) -> list[EngineGemm]:
    """The GEMMs the engine's testbench runs, on an engine with these buffer depths:
    every mode and format pair, with and without an initial C, partial tiles, K and N
    larger than the array, M = 1 and M past the array's latency, the largest M, K and N
    the buffers hold, both quantized outputs, a chain through a resident A, and (with
    ``chunking``) chunk lengths 1, R - 1, R, R + 1, 2R and more than K."""
    R = rows
    rng = np.random.default_rng(seed)
    gemms = []

    def add(M, K, N, C=True, codes=fp8_codes, **kw):
        A, B = codes(rng, (M, K)), codes(rng, (K, N))
        if C and kw.get("mode", "fp8") == "fp8":
            C0 = dl_codes(rng, (M, N))
        elif C:
            C0 = rng.integers(0, 2**32, (M, N), dtype=np.uint64).astype(np.uint32)
        else:
            C0 = None
        g = EngineGemm(A, B, C0, R, **kw)
        g.name = g.name or (f"{g.mode} {g.fmt_a}x{g.fmt_b} {M}x{K}x{N} C={C} "
                            f"chunk={g.chunk} out={g.out}")
        gemms.append(g)
        return g

    big_m = latency + 3
    add(big_m, 2 * R + 1, R + 1, fmt_a="e4m3", fmt_b="e4m3")
    add(3, 3 * R - 1, 2 * R, C=False, fmt_a="e4m3", fmt_b="e5m2")
    add(big_m, R + 1, 2 * R - 1, fmt_a="e5m2", fmt_b="e4m3")
    add(2, 2 * R, R, C=False, fmt_a="e5m2", fmt_b="e5m2", a_base=5)
    add(1, 2 * R + 1, R + 1, name="M=1")
    add(big_m, 2 * R + 1, 2 * R, mode="int4")
    add(3, R + 1, R + 1, C=False, mode="int2")
    add(5, R, 1, mode="int2", chunk=1, name="int2 with a chunk (ignored)")
    # The largest M, K and N the buffers hold.
    M = min(acc_words, a_words)
    add(M, R, R, codes=small_codes, name=f"largest M={M}")
    K = b_words
    add(max(a_words // -(-K // R), 1), K, R, codes=small_codes, C=False,
        name=f"largest K={K}")
    N = R * min(acc_words // 2, b_words // 2)
    add(2, 2, N, codes=small_codes, name=f"largest N={N}")
    # Quantized outputs, then a chain through a resident A.
    M, K, N = 3, R + 1, 2 * R + 1
    first = add(M, K, N, codes=small_codes, out="e4m3", a_base=0,
                out_base=a_words - M * -(-N // R), name="out e4m3")
    gemms.append(chain(first, small_codes(rng, (N, R + 1))))
    add(4, 2 * R, R + 1, codes=small_codes, C=False, out="e5m2", fmt_b="e5m2",
        a_base=2, out_base=2 + 4 * 2, name="out e5m2")
    if chunking:
        for chunk in sorted({1, max(R - 1, 1), R, R + 1, 2 * R}):
            add(big_m if chunk == R else 3, 2 * R + 1, R + 1, C=chunk % 2 == 0,
                codes=small_codes, chunk=chunk)
        add(1, 2 * R, R, chunk=2 * R + 5, codes=small_codes, name="chunk > K")
        first = add(2, 2 * R + 1, R + 1, codes=small_codes, chunk=2, out="e4m3",
                    out_base=a_words - 4, name="chunk 2 with out e4m3")
        gemms.append(chain(first, small_codes(rng, (R + 1, R))))
    return gemms


def refused_gemms(rows: int, a_words: int, b_words: int, acc_words: int,
                  chunking: int) -> list[EngineGemm]:
    """Settings the engine must refuse (nothing written): too large for a buffer, a
    quantized output over its own A, ``out`` in an integer mode, chunk without the
    hardware."""
    R = rows
    rng = np.random.default_rng(9)

    def g(M, K, N, **kw):
        return EngineGemm(fp8_codes(rng, (M, K)), fp8_codes(rng, (K, N)), None, R, **kw)

    bad = [g(acc_words + 1, 1, 1, name="M past ACC"),
           g(1, b_words + 1, 1, name="K past B"),
           g(1, 1, R * acc_words + 1, name="N past ACC"),
           g(a_words, R + 1, 1, name="A past its buffer"),
           g(2, 2 * R, R, out="e4m3", a_base=0, out_base=3, name="out over A"),
           g(2, R, R, mode="int4", out="e4m3", out_base=a_words - 2, name="out in int4")]
    if not chunking:
        bad.append(g(2, R, R, chunk=1, name="chunk without dladd"))
    return bad


# -- the FP8-SEB engine --------------------------------------------------------------------

def seb_codes(rng, shape) -> np.ndarray:
    """Random ``fp8seb`` codes (every code is a number), a fifth of them zero."""
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    codes[rng.random(shape) < 0.2] = 0
    return codes


def fp30_codes(rng, shape, scale=4.0) -> np.ndarray:
    """Random ``fp30`` codes of normally distributed values."""
    from golden import FP30
    return encode(rng.standard_normal(shape) * scale, FP30).astype(np.uint32)


def seb_engine_gemms(rows: int, ways: int, a_words: int, b_words: int, acc_words: int,
                     latency: int, seed: int = 1) -> list[EngineGemm]:
    """The FP8-SEB engine's GEMMs: bias corners, with and without an initial C, partial
    tiles and chunks (K not a multiple of the ways), M = 1 and M past the array's latency,
    the largest M, K and N the buffers hold, quantized outputs tracked over two GEMMs of
    one tensor and afresh, a chain through a resident A."""
    R, W = rows, ways
    rng = np.random.default_rng(seed)
    gemms = []

    def add(M, K, N, C=True, **kw):
        g = EngineGemm(seb_codes(rng, (M, K)), seb_codes(rng, (K, N)),
                       fp30_codes(rng, (M, N)) if C else None, R, mode="fp8seb", ways=W,
                       **kw)
        g.name = g.name or (f"fp8seb {M}x{K}x{N} C={C} biases {g.bias_a},{g.bias_b} "
                            f"out={g.out}")
        gemms.append(g)
        return g

    big_m = latency + 3
    add(big_m, 2 * R * W + 1, R + 1, bias_a=-32, bias_b=-32)
    add(3, 3 * W - 1, 2 * R, C=False, bias_a=31, bias_b=31)
    add(big_m, R * W + 1, 2 * R - 1, bias_a=-32, bias_b=31, a_base=1)
    add(1, 1, 1, name="1x1x1")
    # The largest M, K (in chunks) and N the buffers hold.
    M = min(acc_words, a_words)
    add(M, W, R, name=f"largest M={M}")
    KC = b_words
    add(max(a_words // -(-KC // R), 1), KC * W, R, C=False, name=f"largest K={KC * W}")
    N = R * min(acc_words // 2, b_words // 2)
    add(2, W, N, name=f"largest N={N}")
    # Quantized outputs: one tensor over two GEMMs, then a chain through a resident A.
    M, K, N = 2, max(R * W - 1, 1), R * W + 1         # two A words of outputs
    out_words = EngineLayout(M, 1, N, R, 0, W).out_words
    first = add(M, K, N, out="fp8seb", bias_a=-3, bias_b=5, out_bias=2,
                out_base=a_words - out_words, name="out, a new tensor")
    add(2, W + 1, R + 1, C=False, out="fp8seb", bias_a=-3, bias_b=5, out_bias=2,
        out_base=a_words - out_words - 2, track=1, name="out, the same tensor")
    gemms.append(EngineGemm(first.golden_out(), seb_codes(rng, (N, R + 1)), None, R,
                            mode="fp8seb", ways=W, bias_a=2, bias_b=-1,
                            a_base=first.out_base, keep_a=True, out="fp8seb", out_bias=-6,
                            out_base=0, name="resident A, a new tensor"))
    return gemms


def seb_refused_gemms(rows: int, ways: int, a_words: int, b_words: int,
                      acc_words: int) -> list[EngineGemm]:
    """Settings the FP8-SEB engine must refuse: the MPE's modes, outputs and chunks, and
    GEMMs too large for a buffer."""
    R, W = rows, ways
    rng = np.random.default_rng(9)

    def g(M, K, N, mode="fp8seb", **kw):
        return EngineGemm(seb_codes(rng, (M, K)), seb_codes(rng, (K, N)), None, R, mode,
                          ways=W, **kw)

    return [g(2, W, R, mode="fp8", name="mode fp8"),
            g(2, W, R, mode="int4", name="mode int4"),
            g(2, W, R, out="e4m3", name="out e4m3"),
            g(2, W, R, chunk=1, name="a chunk"),
            g(acc_words + 1, 1, 1, name="M past ACC"),
            g(1, (b_words + 1) * W, 1, name="K past B"),
            g(2, 2 * R * W, R, out="fp8seb", a_base=0, out_base=3, name="out over A")]
