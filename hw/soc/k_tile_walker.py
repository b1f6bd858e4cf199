"""The K tiles of a GEMM in hardware, one a step, exactly as ``hw.schedule.k_tiles``."""

from __future__ import annotations

from amaranth import Module, Mux, Signal


class KTileWalker:
    """Registers that walk the K tiles of ``k`` with chunk length ``chunk`` (0: all of K
    one chunk) on an array of ``rows`` rows; ``k`` and ``chunk`` must hold still while it
    walks. ``restart(m)`` goes to the first tile and ``advance(m)`` to the next one, at
    the clock edge. For the current tile: ``k0``, ``length``, ``first_of_chunk``,
    ``last_of_chunk``, ``first_chunk`` (it is in chunk 0) and ``last`` (the last tile)."""

    def __init__(self, m: Module, name: str, rows: int, k, chunk):
        self.rows, self.k = rows, k
        self.span = Signal(17, name=f"{name}_span")
        m.d.comb += self.span.eq(Mux(chunk == 0, k, chunk))
        self.k0 = Signal(17, name=f"{name}_k0")
        self.chunk_start = Signal(17, name=f"{name}_chunk_start")
        self.chunk_end = Signal(17, name=f"{name}_chunk_end")
        self.length = Signal(range(rows + 1), name=f"{name}_length")
        remaining = self.chunk_end - self.k0
        m.d.comb += self.length.eq(Mux(remaining > rows, rows, remaining))
        self.first_of_chunk = Signal(name=f"{name}_first_of_chunk")
        self.last_of_chunk = Signal(name=f"{name}_last_of_chunk")
        self.first_chunk = Signal(name=f"{name}_first_chunk")
        self.last = Signal(name=f"{name}_last")
        m.d.comb += [self.first_of_chunk.eq(self.k0 == self.chunk_start),
                     self.last_of_chunk.eq(self.k0 + rows >= self.chunk_end),
                     self.first_chunk.eq(self.chunk_start == 0),
                     self.last.eq(self.last_of_chunk & (self.chunk_end == k))]

    def _end_after(self, start):
        end = start + self.span
        return Mux(end > self.k, self.k, end)

    def restart(self, m: Module) -> None:
        m.d.sync += [self.k0.eq(0), self.chunk_start.eq(0),
                     self.chunk_end.eq(self._end_after(0))]

    def advance(self, m: Module) -> None:
        with m.If(self.last_of_chunk):
            m.d.sync += [self.k0.eq(self.chunk_end), self.chunk_start.eq(self.chunk_end),
                         self.chunk_end.eq(self._end_after(self.chunk_end))]
        with m.Else():
            m.d.sync += self.k0.eq(self.k0 + self.rows)
