"""Output-stationary MPE array: every PE keeps its own outputs and sees A and B stream by."""

from __future__ import annotations

from amaranth import Cat, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Mode, SourceFormat
from fp8hw.arrays import COLS, ROWS
from golden.params import BIAS
from hw.array.common import MacCell, SteppedCore, countdown, delay
from hw.units.mpe import PIPELINE


class OutputStationaryArray(wiring.Component):
    """A ``rows`` x ``cols`` output-stationary array of MPEs (``hw.units.mpe``).

    Each PE keeps ``L = max(pipeline, 1)`` accumulations in flight, one per *slot*: its
    MPE's own pipeline is the accumulator loop, so a MAC per cycle needs L independent
    outputs, and each still sees its products in ascending k. A *tile* is
    therefore ``L * rows`` x ``cols`` outputs: slot s of PE (i, j) holds output row
    ``s * rows + i``, column ``j``.

    Run-time settings ``mode``, ``fmt_a``, ``fmt_b`` (as for the MPE) must only change
    while ``idle`` is high.

    Streams (``amaranth.lib.stream``, with backpressure):

    * ``operands``: one beat per k of a tile: ``a`` (``L * rows`` codes: column k of the
      tile's rows of A), ``b`` (``cols`` codes: row k of the tile's columns of B),
      ``first`` (k = 0) and ``last`` (k = K - 1; both for K = 1). K is any length >= 1
      and may differ from tile to tile.
    * ``inits``: the tile's initial C, one beat per column j = 0 .. cols - 1, each the
      ``L * rows`` 32-bit values of that column. A tile takes its first init beat when its
      first operand beat starts, and then one every ``D + 1`` cycles
      (``D = max(L - 1, 1)``); the array stalls while an init it needs is missing.
    * ``results``: the finished tile, one beat per column, in the layout of ``inits``, with
      ``last`` on the last column.

    Load, compute, drain: skewing is inside. Row i of A enters ``i`` cycles late and
    moves east one PE per cycle; column j of B enters ``j`` late and moves south; so PE
    (i, j) sees k at cycle ``n + i + j``. On its first k a PE takes its initial value from
    a chain that carries the inits *westwards*, ``D`` registers per PE, against the
    skew, so that the inits of a tile enter at the east edge while its first operands
    travel east (the operands wait ``D * cols`` cycles at the edge for this). On its last
    k the PE puts its result into a second westward chain, which delivers the tile's
    results at the west edge, one column every ``D + 1`` cycles; a deskew makes each a
    beat. Both chains overlap the next tile's computation.

    Throughput: a beat every L cycles (``rows * cols`` MACs per cycle: every PE busy) as
    long as tiles are at least ``spacing = L + (D + 1) * (cols - 1)`` cycles apart (that is
    K >= cols for L = 2); a shorter tile waits for the chains. Latency from the issue of a
    tile's last beat to its first result beat: ``D * cols + L + rows + D + L - 1``
    cycles (``result_latency``).
    """

    parameters = (ROWS, COLS, BIAS, PIPELINE)

    def __init__(self, rows: int = ROWS.default, cols: int = COLS.default,
                 bias: int = BIAS.default, pipeline: int = PIPELINE.default):
        self.rows = ROWS.check(rows, "OutputStationaryArray")
        self.cols = COLS.check(cols, "OutputStationaryArray")
        self.bias = BIAS.check(bias, "OutputStationaryArray")
        self.pipeline = PIPELINE.check(pipeline, "OutputStationaryArray")
        self.slots = max(pipeline, 1)
        self.hop = max(self.slots - 1, 1)
        self.spacing = self.slots + (self.hop + 1) * (cols - 1)
        self.result_latency = (self.hop * cols + self.slots + rows + self.hop
                               + self.slots - 1)
        lanes = self.slots * rows
        self.operand_layout = data.StructLayout({
            "a": data.ArrayLayout(8, lanes), "b": data.ArrayLayout(8, cols),
            "first": 1, "last": 1})
        self.init_layout = data.ArrayLayout(32, lanes)
        self.result_layout = data.StructLayout({"c": data.ArrayLayout(32, lanes), "last": 1})
        super().__init__({
            "mode": In(Mode),
            "fmt_a": In(SourceFormat),
            "fmt_b": In(SourceFormat),
            "operands": In(stream.Signature(self.operand_layout)),
            "inits": In(stream.Signature(self.init_layout)),
            "results": Out(stream.Signature(self.result_layout)),
            "idle": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from the cycle a tile's last operand beat is taken to the cycle its first
        result beat is valid, with no stall, when the beat is issued at once (it follows
        the tile's previous beat without a gap): a cycle in the issue register, then
        ``result_latency``. Each further result beat follows ``hop + 1`` cycles later."""
        return self.result_latency + 1

    def elaborate(self, platform):
        R, C, L, D = self.rows, self.cols, self.slots, self.hop
        sc = SteppedCore()
        m, step = sc.core, sc.step

        # Issue: a held beat goes out over L cycles, slot s on ring position s. ---------
        ring = Signal(range(L))
        if L > 1:
            m.d.sync += ring.eq(Mux(ring == L - 1, 0, ring + 1))
        hold = Signal(self.operand_layout)
        hold_valid = Signal()
        gap_first = countdown(m, "gap_first", self.spacing)
        gap_last = countdown(m, "gap_last", self.spacing)
        start = Signal()
        m.d.comb += start.eq(hold_valid & (ring == 0)
                             & (~hold.first | (gap_first == 0))
                             & (~hold.last | (gap_last == 0)))
        issuing = Signal()
        if L > 1:
            later_slots = Signal()
            with m.If(start):
                m.d.sync += later_slots.eq(1)
            with m.If(ring == L - 1):
                m.d.sync += later_slots.eq(0)
            m.d.comb += issuing.eq(start | later_slots)
        else:
            m.d.comb += issuing.eq(start)
        release = issuing & (ring == L - 1)
        with m.If(start & hold.first):
            m.d.sync += gap_first.eq(self.spacing - 1)
        with m.If(start & hold.last):
            m.d.sync += gap_last.eq(self.spacing - 1)

        m.d.comb += self.operands.ready.eq(step & (~hold_valid | release))
        with m.If(self.operands.valid & self.operands.ready):
            m.d.sync += [hold.eq(self.operands.payload), hold_valid.eq(1)]
        with m.Elif(release):
            m.d.sync += hold_valid.eq(0)

        issue_a = [Signal(8, name=f"issue_a{i}") for i in range(R)]
        issue_b = Signal(8 * C)
        issue_mac, issue_first, issue_last = Signal(), Signal(), Signal()
        with m.If(issuing):
            m.d.comb += [issue_mac.eq(1), issue_first.eq(hold.first),
                         issue_last.eq(hold.last), issue_b.eq(hold.b)]
            with m.Switch(ring):
                for s in range(L):
                    with m.Case(s):
                        m.d.comb += [issue_a[i].eq(hold.a[s * R + i]) for i in range(R)]

        # Inits: column j of a starting tile is taken (D + 1) * j cycles after its start.
        need = Signal()
        seq_running = Signal()
        seq_wait = countdown(m, "seq_wait", D)
        seq_col = Signal(range(C + 1))
        start_tile = start & hold.first
        m.d.comb += need.eq(start_tile | (seq_running & (seq_wait == 0)))
        with m.If(start_tile):
            m.d.sync += [seq_running.eq(C > 1), seq_col.eq(1), seq_wait.eq(D)]
        with m.Elif(seq_running & (seq_wait == 0)):
            m.d.sync += [seq_col.eq(seq_col + 1), seq_wait.eq(D)]
            with m.If(seq_col == C - 1):
                m.d.sync += seq_running.eq(0)
        m.d.comb += self.inits.ready.eq(step & need)

        inject = [Signal(32, name=f"inject{i}") for i in range(R)]
        init_hold = Signal(self.init_layout)
        inj_slot = Signal(range(L))
        inj_pending = Signal()
        with m.If(need):
            m.d.comb += [inject[i].eq(self.inits.payload[i]) for i in range(R)]
            m.d.sync += init_hold.eq(self.inits.payload)
            if L > 1:
                m.d.sync += [inj_slot.eq(1), inj_pending.eq(1)]
        with m.Elif(inj_pending):
            with m.Switch(inj_slot):
                for s in range(1, L):
                    with m.Case(s):
                        m.d.comb += [inject[i].eq(init_hold[s * R + i]) for i in range(R)]
            m.d.sync += inj_slot.eq(inj_slot + 1)
            with m.If(inj_slot == L - 1):
                m.d.sync += inj_pending.eq(0)

        # The array: operands wait D * C cycles, then enter skewed. ---------------------
        wait = D * C
        west = [delay(m, Cat(issue_a[i], issue_mac, issue_first, issue_last), wait + i,
                      f"west{i}") for i in range(R)]
        north = [delay(m, issue_b[8 * j:8 * j + 8], wait + j, f"north{j}") for j in range(C)]
        results = []
        for i in range(R):
            init_chain = delay(m, inject[i], i + D, f"init{i}_east")
            result_chain = Signal(33, name=f"result{i}_east")    # nothing enters east
            cells = []
            for j in reversed(range(C)):
                cells.append((j, init_chain))
                if j:
                    init_chain = delay(m, init_chain, D, f"init{i}_{j}")
            # Walk west to east for operands, then build the result chain east to west.
            inputs = {}
            a_flags = west[i]
            for j in range(C):
                inputs[j] = a_flags
                if j < C - 1:
                    a_flags = delay(m, a_flags, 1, f"a{i}_{j}")
            outs = {}
            for j, init_here in cells:
                a_here, mac, first, last = (inputs[j][:8], inputs[j][8], inputs[j][9],
                                            inputs[j][10])
                b_here = north[j]
                if i < R - 1:
                    north[j] = delay(m, b_here, 1, f"b{i}_{j}")
                cell = MacCell(m, f"pe{i}_{j}", self.bias, self.pipeline,
                               self.mode, self.fmt_a, self.fmt_b)
                m.d.comb += [cell.a.eq(a_here), cell.b.eq(b_here), cell.mac.eq(mac),
                             cell.tag.eq(mac & last),
                             cell.acc_in.eq(Mux(first, init_here, cell.acc_out))]
                outs[j] = cell
            for j in reversed(range(C)):
                cell = outs[j]
                leaving = Mux(cell.tag_out, Cat(cell.acc_out, 1), result_chain)
                result_chain = delay(m, leaving, D, f"result{i}_{j}")
            results.append(delay(m, result_chain, R - 1 - i, f"deskew{i}"))

        # Collect the slots of a column into a result beat. -----------------------------
        arrived = results[0][32]
        res_slot = Signal(range(L))
        res_col = Signal(range(C))
        collected = Signal(self.init_layout)
        complete = arrived & (res_slot == L - 1)
        payload = Signal(self.result_layout)
        with m.If(arrived):
            with m.Switch(res_slot):
                for s in range(L - 1):
                    with m.Case(s):
                        m.d.sync += [collected[s * R + i].eq(results[i][:32])
                                     for i in range(R)]
            if L > 1:
                m.d.sync += res_slot.eq(Mux(res_slot == L - 1, 0, res_slot + 1))
            with m.If(complete):
                m.d.sync += res_col.eq(Mux(res_col == C - 1, 0, res_col + 1))
        m.d.comb += payload.last.eq(res_col == C - 1)
        for s in range(L):
            m.d.comb += [payload.c[s * R + i].eq(collected[s * R + i] if s < L - 1
                                                 else results[i][:32]) for i in range(R)]

        top = sc.finish(self.results, complete, payload, ~(need & ~self.inits.valid))
        # Tiles accepted and not yet fully delivered.
        outstanding = Signal(16)
        took = self.operands.valid & self.operands.ready & self.operands.payload.first
        gave = self.results.valid & self.results.ready & self.results.payload.last
        top.d.sync += outstanding.eq(outstanding + took - gave)
        top.d.comb += self.idle.eq(outstanding == 0)
        return top
