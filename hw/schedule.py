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
        """``b`` uint8 [rows, cols] (beat r is row k0 + r of B) and ``active`` bool [rows]."""
        b = np.zeros((self.rows, self.cols), np.uint8)
        b[:tile.k1 - tile.k0, :tile.n1 - tile.n0] = np.asarray(B)[tile.k0:tile.k1,
                                                                  tile.n0:tile.n1]
        active = np.arange(self.rows) < tile.k1 - tile.k0
        return b, active

    def ws_operands(self, tile: Tile, A, C):
        """``a`` uint8 [M, rows] and ``c`` uint32 [M, cols] (the sums so far); row 0 is first."""
        a = np.zeros((self.M, self.rows), np.uint8)
        c = np.zeros((self.M, self.cols), np.uint32)
        a[:, :tile.k1 - tile.k0] = np.asarray(A)[:, tile.k0:tile.k1]
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
