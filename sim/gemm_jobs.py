"""GEMMs for the GEMM engine's testbenches (``hw.soc.gemm``): what to load into its
buffers, the settings to start it with, and the golden bits expected back.

Shared by the quick tier (Amaranth's simulator) and the cocotb testbench, so that both
lay data out with ``hw.schedule.EngineLayout`` and judge it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fp8hw.enums import Mode, OutFormat, SourceFormat
from golden import DLFLOAT16, encode, matmul, quant16
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
    bias: int = 11
    name: str = ""
    keep_a: bool = False          # A is already in the buffer (a resident operand)
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
    def layout(self) -> EngineLayout:
        return EngineLayout(self.M, self.K, self.N, self.rows, engine_chunk(self.mode, self.chunk))

    def settings(self) -> dict:
        """The ``start`` payload (``hw.soc.gemm.GEMM_SETTINGS``) as field -> integer."""
        return {"mode": int(Mode.from_label(self.mode)),
                "fmt_a": int(SourceFormat.from_label(self.fmt_a)),
                "fmt_b": int(SourceFormat.from_label(self.fmt_b)),
                "out": int(OutFormat.from_label(self.out)),
                "accumulate": int(self.C is not None),
                "m": self.M, "k": self.K, "n": self.N, "chunk": self.chunk,
                "a_base": self.a_base, "out_base": self.out_base}

    def golden(self) -> np.ndarray:
        """The expected ACC contents as uint32 [M, N] (chunk 0 only, until golden.matmul
        takes ``chunk``)."""
        if self.chunk and self.mode == "fp8":
            return matmul(self.A, self.B, self.C, self.mode, self.fmt_a, self.fmt_b,
                          self.bias, chunk=self.chunk)
        return matmul(self.A, self.B, self.C, self.mode, self.fmt_a, self.fmt_b, self.bias)

    def golden_out(self, acc) -> np.ndarray:
        """The expected quantized output from the expected ACC: quant16 of the low halves."""
        return quant16((np.asarray(acc) & 0xFFFF).astype(np.uint16), self.out, self.bias)

    def loads(self) -> list[tuple[int, int, np.ndarray]]:
        """(buffer, first word, words) to write before the GEMM: A (unless resident), B,
        and the initial C (or, without one, garbage: the engine must not read it)."""
        from hw.soc.buffers import BufferId
        lay = self.layout
        rng = np.random.default_rng(self.M * 1000 + self.K * 10 + self.N)
        loads = [] if self.keep_a else [(BufferId.A, self.a_base, lay.a(self.A))]
        loads.append((BufferId.B, 0, lay.b(self.B)))
        if self.C is not None:
            loads.append((BufferId.ACC, 0, lay.acc(self.C)))
        else:
            junk = rng.integers(0, 2**32, (lay.acc_words, self.rows), dtype=np.uint64)
            loads.append((BufferId.ACC, 0, junk.astype(np.uint32)))
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
