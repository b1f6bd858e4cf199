"""The K tiles of a GEMM in hardware, one a step, exactly as ``hw.schedule.k_tiles``."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal


class KTileWalker:
    """Registers that walk the K tiles of ``k`` with chunk length ``chunk`` (0: all of K
    one chunk; at most ``k``) on an array of ``rows`` rows; ``k`` and ``chunk`` must hold
    still while it walks, and fit ``width`` bits. Without ``chunking`` (``chunk`` always
    0), the chunk registers are left out. ``restart(m)`` goes to the first tile and
    ``advance(m)`` to the next one, at the clock edge. For the current tile: ``k0``,
    ``length``, ``first_of_chunk``, ``last_of_chunk``, ``first_chunk`` (it is in chunk 0)
    and ``last`` (the last tile)."""

    def __init__(self, m: Module, name: str, rows: int, k, chunk, width: int = 16,
                 chunking: bool = True):
        self.rows, self.k, self.chunking = rows, k, chunking
        # One bit more than K: k0 + rows and chunk ends past K stay exact.
        width += 1
        self.k0 = Signal(width, name=f"{name}_k0")
        if chunking:
            self.span = Signal(width, name=f"{name}_span")
            m.d.comb += self.span.eq(Mux(chunk == 0, k, chunk))
            self.chunk_start = Signal(width, name=f"{name}_chunk_start")
            self.chunk_end = Signal(width, name=f"{name}_chunk_end")
        else:
            self.chunk_start, self.chunk_end = Const(0, width), k
        self.length = Signal(range(rows + 1), name=f"{name}_length")
        remaining = self.chunk_end - self.k0
        m.d.comb += self.length.eq(Mux(remaining > rows, rows, remaining))
        self.first_of_chunk = Signal(name=f"{name}_first_of_chunk")
        self.last_of_chunk = Signal(name=f"{name}_last_of_chunk")
        self.first_chunk = Signal(name=f"{name}_first_chunk")
        self.last = Signal(name=f"{name}_last")
        m.d.comb += [self.first_of_chunk.eq(self.k0 == self.chunk_start),
                     self.last_of_chunk.eq(self.k0 + rows >= self.chunk_end)]
        if chunking:
            m.d.comb += [self.first_chunk.eq(self.chunk_start == 0),
                         self.last.eq(self.last_of_chunk & (self.chunk_end == k))]
        else:
            m.d.comb += [self.first_chunk.eq(1), self.last.eq(self.last_of_chunk)]

    def _end_after(self, start):
        end = start + self.span
        return Mux(end > self.k, self.k, end)

    def restart(self, m: Module) -> None:
        m.d.sync += self.k0.eq(0)
        if self.chunking:
            m.d.sync += [self.chunk_start.eq(0), self.chunk_end.eq(self._end_after(0))]

    def advance(self, m: Module) -> None:
        if not self.chunking:
            m.d.sync += self.k0.eq(self.k0 + self.rows)
            return
        with m.If(self.last_of_chunk):
            m.d.sync += [self.k0.eq(self.chunk_end), self.chunk_start.eq(self.chunk_end),
                         self.chunk_end.eq(self._end_after(self.chunk_end))]
        with m.Else():
            m.d.sync += self.k0.eq(self.k0 + self.rows)
