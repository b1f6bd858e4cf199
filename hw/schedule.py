"""Tiling scheduler: any M x K x N GEMM on a ``rows`` x ``cols`` array, either dataflow.

Pure Python and numpy (no hardware import), shared by the simulation driver
(``python -m sim run matmul``) and a host driver. A ``GemmSchedule`` cuts the GEMM into
the array's units of work and makes the beats of each, padded where the GEMM is not a
multiple of the array; ``store`` puts the array's result beats back into C.

* ``os`` (output-stationary): a *tile* is ``lanes = L * rows`` rows of C by ``cols``
  columns (``L = max(pipeline, 1)``), all of K in one go; its initial values are the
  initial C, so tiles are independent. Padding rows and columns compute values that are
  dropped.
* ``ws`` (weight-stationary): a *pass* is ``rows`` values of k by ``cols`` columns of
  weights, with all M rows of A streaming through; passes over k run in ascending
  order, each taking the previous pass's results as its partial sums (``depends_on``).
  Padding k rows are marked inactive and leave the sums untouched, so padding changes
  no bit.

The GEMM engine (``hw.soc.gemm``), which runs a whole GEMM on chip, takes its K tiles from
``k_tiles`` and its buffer layouts from ``EngineLayout``: the one definition that the
engine's testbenches and the host driver lay data out with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fp8hw.arrays import DATAFLOW


@dataclass(frozen=True)
class Tile:
    """Rows m0:m1 and columns n0:n1 of C, over k0:k1 (all of K for ``os``)."""
    index: int
    m0: int
    m1: int
    n0: int
    n1: int
    k0: int
    k1: int
    depends_on: int | None = None     # ws: the pass whose results are this one's sums


class GemmSchedule:
    def __init__(self, M: int, K: int, N: int, rows: int, cols: int,
                 dataflow: str = DATAFLOW.default,
                 pipeline: int = 2):
        for name, value in (("M", M), ("K", K), ("N", N), ("rows", rows), ("cols", cols)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        DATAFLOW.check(dataflow, "GemmSchedule")
        self.M, self.K, self.N = M, K, N
        self.rows, self.cols, self.dataflow = rows, cols, dataflow
        self.slots = max(pipeline, 1) if dataflow == "os" else 1
        self.lanes = self.slots * rows          # os: C rows per tile
        self.tiles: list[Tile] = []
        if dataflow == "os":
            for m0 in range(0, M, self.lanes):
                for n0 in range(0, N, cols):
                    self.tiles.append(Tile(len(self.tiles), m0, min(m0 + self.lanes, M),
                                           n0, min(n0 + cols, N), 0, K))
        else:
            last = {}
            for k0 in range(0, K, rows):        # k outermost: a pass's predecessor is
                for n0 in range(0, N, cols):    # a whole row of passes earlier
                    self.tiles.append(Tile(len(self.tiles), 0, M, n0, min(n0 + cols, N),
                                           k0, min(k0 + rows, K), last.get(n0)))
                    last[n0] = len(self.tiles) - 1

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N

    # -- output-stationary ---------------------------------------------------------------
    def os_operands(self, tile: Tile, A, B):
        """``a`` uint8 [K, lanes], ``b`` uint8 [K, cols]; beat k is first at 0, last at K-1."""
        a = np.zeros((self.K, self.lanes), np.uint8)
        b = np.zeros((self.K, self.cols), np.uint8)
        a[:, :tile.m1 - tile.m0] = np.asarray(A)[tile.m0:tile.m1, :].T
        b[:, :tile.n1 - tile.n0] = np.asarray(B)[:, tile.n0:tile.n1]
        return a, b

    def os_inits(self, tile: Tile, C):
        """uint32 [cols, lanes]: beat j is column j of the tile's initial C."""
        c = np.zeros((self.cols, self.lanes), np.uint32)
        c[:tile.n1 - tile.n0, :tile.m1 - tile.m0] = np.asarray(C)[tile.m0:tile.m1,
                                                                  tile.n0:tile.n1].T
        return c

    # -- weight-stationary ---------------------------------------------------------------
    def ws_weights(self, tile: Tile, B):
        """``b`` [rows, cols] (beat r is row k0 + r of B) and ``active`` bool [rows]. B's
        items may be arrays themselves (a chunk of codes a PE: ``chunk_operands``)."""
        B = np.asarray(B)
        b = np.zeros((self.rows, self.cols) + B.shape[2:], B.dtype)
        b[:tile.k1 - tile.k0, :tile.n1 - tile.n0] = B[tile.k0:tile.k1, tile.n0:tile.n1]
        active = np.arange(self.rows) < tile.k1 - tile.k0
        return b, active

    def ws_operands(self, tile: Tile, A, C):
        """``a`` [M, rows] (A's items, as for ``ws_weights``) and ``c`` uint32 [M, cols] (the
        sums so far); row 0 is first."""
        A = np.asarray(A)
        a = np.zeros((self.M, self.rows) + A.shape[2:], A.dtype)
        c = np.zeros((self.M, self.cols), np.uint32)
        a[:, :tile.k1 - tile.k0] = A[:, tile.k0:tile.k1]
        c[:, :tile.n1 - tile.n0] = np.asarray(C)[:, tile.n0:tile.n1]
        return a, c

    # -- results -------------------------------------------------------------------------
    def store(self, tile: Tile, C, results) -> None:
        """Write a tile's result beats (os: [cols, lanes]; ws: [M, cols]) into C."""
        results = np.asarray(results, np.uint32)
        if self.dataflow == "os":
            C[tile.m0:tile.m1, tile.n0:tile.n1] = \
                results[:tile.n1 - tile.n0, :tile.m1 - tile.m0].T
        else:
            C[:, tile.n0:tile.n1] = results[:, :tile.n1 - tile.n0]

    def run(self, A, B, C, tile_fn):
        """Run every tile in order with ``tile_fn(tile, beats...) -> result beats`` (os:
        ``tile_fn(tile, a, b, inits)``; ws: ``tile_fn(tile, b, active, a, c)``); returns C."""
        C = np.array(np.zeros((self.M, self.N), np.uint32) if C is None else C, np.uint32)
        for tile in self.tiles:
            if self.dataflow == "os":
                a, b = self.os_operands(tile, A, B)
                result = tile_fn(tile, a, b, self.os_inits(tile, C))
            else:
                b, active = self.ws_weights(tile, B)
                a, c = self.ws_operands(tile, A, C)
                result = tile_fn(tile, b, active, a, c)
            self.store(tile, C, result)
        return C


def chunk_operands(A, B, ways: int) -> tuple[np.ndarray, np.ndarray]:
    """An FP8-SEB GEMM as the tree array sees it: A [M, K] and B [K, N] cut along k into
    chunks of ``ways`` codes (the last padded with zero codes): uint8 A' [M, K', ways] and
    B' [K', N, ways], K' = ceil(K / ways). A GemmSchedule of K' "values of k" then places
    chunk r of a tile in PE row r, as ``hw.array.SebArray`` takes it."""
    A, B = np.asarray(A, np.uint8), np.asarray(B, np.uint8)
    (M, K), N = A.shape, B.shape[1]
    chunks = -(-K // ways)
    pad = chunks * ways - K
    A = np.pad(A, ((0, 0), (0, pad))).reshape(M, chunks, ways)
    B = np.pad(B, ((0, pad), (0, 0))).reshape(chunks, ways, N).transpose(0, 2, 1)
    return A, np.ascontiguousarray(B)


# -- the GEMM engine's buffers (hw/soc/gemm.py) ------------------------------------------
# One source of truth for how a whole GEMM lies in the engine's buffers, used by the
# engine's testbenches and the host driver. The engine's array is square (R = rows = cols).

def k_tiles(K: int, rows: int, chunk: int = 0) -> list[tuple[int, int, bool, bool]]:
    """The K tiles of a GEMM, in the order the engine runs them: ``(k0, length,
    first_of_chunk, last_of_chunk)``. ``chunk`` 0: tiles [0, R), [R, 2R), ... (the last may
    be short), the whole of K one chunk. ``chunk`` CL > 0: each chunk [q*CL, min((q+1)*CL,
    K)) is split into tiles of at most R, so a tile never straddles a chunk boundary."""
    for name, value in (("K", K), ("rows", rows)):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if int(chunk) < 0:
        raise ValueError(f"chunk must be at least 0, got {chunk}")
    span = chunk or K
    tiles = []
    for c0 in range(0, K, span):
        c1 = min(c0 + span, K)
        for k0 in range(c0, c1, rows):
            length = min(rows, c1 - k0)
            tiles.append((k0, length, k0 == c0, k0 + length == c1))
    return tiles


def engine_chunk(mode: str, chunk: int) -> int:
    """The chunk length the engine tiles K with: ``chunk`` in fp8 mode, 0 in the integer
    modes (where chunking changes no bit, so the engine ignores it)."""
    return int(chunk) if mode == "fp8" else 0


def word_stride(word_bytes: int) -> int:
    """Host bytes from one buffer word to the next, for words of ``word_bytes`` bytes: the
    next power of 2 (byte address a is byte a % stride of word a // stride; bytes past
    ``word_bytes`` in a stride read 0 and ignore writes)."""
    return 1 << max(word_bytes - 1, 0).bit_length()


def words_image(words, dtype: str) -> bytes:
    """The host bytes of buffer words (a 2-D array, one word a row, its items ``dtype``
    ``"u1"`` or ``"<u4"``, little-endian), each padded with zeros to ``word_stride``."""
    words = np.asarray(words)
    itemsize = np.dtype(dtype).itemsize
    stride = word_stride(words.shape[1] * itemsize) // itemsize
    out = np.zeros((words.shape[0], stride), dtype)
    out[:, :words.shape[1]] = words
    return out.tobytes()


def image_words(data: bytes, items: int, dtype: str) -> np.ndarray:
    """``words_image`` undone: the words of ``items`` items in host bytes ``data``."""
    itemsize = np.dtype(dtype).itemsize
    stride = word_stride(items * itemsize) // itemsize
    return np.frombuffer(data, dtype).reshape(-1, stride)[:, :items]


@dataclass(frozen=True)
class EngineLayout:
    """Where an M x K x N GEMM's operands and results lie in the engine's buffers, for an
    R x R array and chunk length ``chunk`` (after ``engine_chunk``). Offsets and counts are
    in words; tile t and N tile nt are as the engine runs them.

    On the FP8-SEB engine (``ways`` = W > 1, or 1 for a 1-way tree), a "k" of the engine
    is a chunk of W consecutive codes of K (``k_chunks`` of them, the last padded with zero
    codes: a zero code of B makes a zero product whatever A holds), a lane holds a chunk,
    and a word of A or B holds R chunks (R x W bytes). With W = 1 (the MPE) a chunk is one
    code:

    * A (words of R chunks): tile t of A at ``a_base + t*M + i``, lane r = A's chunk
      ``k0_t + r`` of row i (r < length_t; other lanes ignored).
    * B (words of R chunks): B's chunk k of column n at word ``(n // R) * k_chunks + k``,
      lane ``n % R``.
    * ACC (words of R 32-bit values): acc[i, j] at word ``(j // R) * M + i``, lane
      ``j % R``.
    * quantized output (in the A buffer): C[i, j] at word
      ``out_base + (j // (R*W)) * M + i``, byte ``j % (R*W)``: the A layout, for chunk 0
      or a multiple of R, of a next GEMM whose K is this N (``out_words`` words).
    """
    M: int
    K: int
    N: int
    rows: int
    chunk: int = 0
    ways: int = 1

    def __post_init__(self):
        if int(self.ways) < 1:
            raise ValueError(f"ways must be at least 1, got {self.ways}")
        k_tiles(self.k_chunks, self.rows, self.chunk)     # checks K, rows, chunk
        for name in ("M", "N"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def k_chunks(self) -> int:
        """The engine's K (its ``k`` setting): chunks of ``ways`` codes."""
        return -(-self.K // self.ways) if self.K > 0 else self.K

    @property
    def tiles(self) -> list[tuple[int, int, bool, bool]]:
        return k_tiles(self.k_chunks, self.rows, self.chunk)

    @property
    def n_tiles(self) -> int:
        return -(-self.N // self.rows)

    @property
    def word_items(self) -> int:
        """Bytes of an A or B word: R chunks of ``ways`` codes."""
        return self.rows * self.ways

    @property
    def a_words(self) -> int:
        """Words of A (from ``a_base``)."""
        return len(self.tiles) * self.M

    @property
    def b_words(self) -> int:
        return self.n_tiles * self.k_chunks

    @property
    def acc_words(self) -> int:
        """Words of ACC (from ``acc_base``)."""
        return self.n_tiles * self.M

    @property
    def out_words(self) -> int:
        """Words of the quantized output (from ``out_base``)."""
        return -(-self.N // self.word_items) * self.M

    def _chunked_a(self, A) -> np.ndarray:
        A = np.asarray(A, np.uint8)
        pad = self.k_chunks * self.ways - A.shape[1]
        return np.pad(A, ((0, 0), (0, pad))).reshape(self.M, self.k_chunks, self.ways)

    def a(self, A) -> np.ndarray:
        """uint8 [a_words, R x W]: the A buffer's words from ``a_base`` on."""
        chunks = self._chunked_a(A)
        R, M, W = self.rows, self.M, self.ways
        words = np.zeros((self.a_words, R, W), np.uint8)
        for t, (k0, length, _, _) in enumerate(self.tiles):
            words[t * M:(t + 1) * M, :length] = chunks[:, k0:k0 + length]
        return words.reshape(self.a_words, R * W)

    def b(self, B) -> np.ndarray:
        """uint8 [b_words, R x W]: the B buffer's words (columns past N and codes past K
        are zero)."""
        B = np.asarray(B, np.uint8)
        R, KC, W = self.rows, self.k_chunks, self.ways
        padded = np.zeros((KC * W, self.n_tiles * R), np.uint8)
        padded[:B.shape[0], :self.N] = B
        # [chunk, code, tile, lane] -> [tile, chunk, lane, code]
        return padded.reshape(KC, W, self.n_tiles, R).transpose(2, 0, 3, 1).reshape(-1, R * W)

    def acc(self, C) -> np.ndarray:
        """uint32 [acc_words, R]: ACC's words holding ``C`` [M, N] (columns past N zero)."""
        return self._by_column_tiles(np.asarray(C, np.uint32), np.uint32, self.rows)

    def acc_result(self, words) -> np.ndarray:
        """``acc`` undone: uint32 [M, N] from ACC's first ``acc_words`` words."""
        return self._from_column_tiles(np.asarray(words, np.uint32), self.rows)

    def out(self, C8) -> np.ndarray:
        """uint8 [out_words, R x W]: the A buffer's words from ``out_base`` holding ``C8``."""
        return self._by_column_tiles(np.asarray(C8, np.uint8), np.uint8, self.word_items)

    def out_result(self, words) -> np.ndarray:
        """``out`` undone: uint8 [M, N] from the A buffer's words at ``out_base``."""
        return self._from_column_tiles(np.asarray(words, np.uint8), self.word_items)

    def _by_column_tiles(self, X, dtype, width):
        M, tiles = self.M, -(-self.N // width)
        padded = np.zeros((M, tiles * width), dtype)
        padded[:, :self.N] = X
        return padded.reshape(M, tiles, width).transpose(1, 0, 2).reshape(-1, width)

    def _from_column_tiles(self, words, width):
        M, tiles = self.M, -(-self.N // width)
        words = words[:tiles * M].reshape(tiles, M, width)
        return words.transpose(1, 0, 2).reshape(M, -1)[:, :self.N]
