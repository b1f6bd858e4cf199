"""Weight-stationary MPE array: every PE holds one code of B while rows of A stream by."""

from __future__ import annotations

from amaranth import Cat, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Mode, SourceFormat
from fp8hw.arrays import COLS, ROWS
from golden.params import BIAS
from hw.array.common import MacCell, SteppedCore, countdown, delay
from hw.units.mpe import PIPELINE


class WeightStationaryArray(wiring.Component):
    """A ``rows`` x ``cols`` weight-stationary array of MPEs (``hw.units.mpe``).

    PE (r, j) holds B[k0 + r, n0 + j] of a *weight tile* (``rows`` values of k, ``cols``
    of n). A row i of A enters as ``rows`` codes A[i, k0 .. k0 + rows - 1] together with
    ``cols`` partial sums C[i, n0 ..] and leaves as ``cols`` sums: the partial sum of
    column j falls through the column and each PE applies its k in ascending order,
    ``acc <- mpe(acc, A[i, k], B[k, n])``, so a K longer than ``rows`` is several passes
    whose results are the next pass's partial sums.

    Run-time settings ``mode``, ``fmt_a``, ``fmt_b`` (as for the MPE) are taken with each
    row of A and travel with it; change them only while ``idle`` is high all the same, as
    the output-stationary array requires.

    Streams (``amaranth.lib.stream``, with backpressure):

    * ``weights``: ``rows`` beats per weight tile, r = 0 first: ``b`` (``cols`` codes of
      row k0 + r of B) and ``active``; a PE row that is not active (past the end of K)
      passes the sums through unchanged.
    * ``operands``: one beat per row of A: ``a`` (``rows`` codes), ``c`` (``cols``
      32-bit sums in), ``first`` on the first row that uses a newly loaded weight tile.
    * ``results``: one beat per row, in order: ``c`` (``cols`` 32-bit sums).

    Load, compute, drain: the weights shift up the columns into shadow registers while
    the previous tile computes; a ``first`` row waits until all ``rows`` are loaded, and
    switches each PE to the new tile as it passes (the switch moves with the row's
    skew). The next tile's weights may start loading ``(rows - 1) * L + cols - 1``
    cycles after that (``L = max(pipeline, 1)``, each PE's latency). Skewing is inside:
    code r of a row enters ``r * L`` cycles late and moves east one PE per cycle, sum j
    enters ``j`` late and moves south; results are deskewed into one beat.

    Throughput: one row per cycle (``rows * cols`` MACs per cycle). An operand beat goes
    straight into the array (no buffer): ``operands.ready`` is low only while the array
    is stalled or a ``first`` row waits for its weights. Latency from a row's acceptance
    to its result beat: ``rows * L + cols - 1`` cycles (``result_latency``); the result
    beat is the last PE row's output registers, deskewed, held by stalling the array.

    An idle array sleeps: it steps only while it holds a row, a weight switch is under way
    or a beat is offered (registered, so a beat offered to a sleeping array is taken a
    cycle later). ``gate_clock`` (simulation only, never on a board): the core's registers
    also run on the clock gated by ``step`` (``SteppedCore.finish_direct``), so that a
    simulator skips the array while it sleeps; the same registers change on the same
    cycles.
    """

    parameters = (ROWS, COLS, BIAS, PIPELINE)

    def __init__(self, rows: int = ROWS.default, cols: int = COLS.default,
                 bias: int = BIAS.default, pipeline: int = PIPELINE.default,
                 gate_clock: bool = False):
        self.rows = ROWS.check(rows, "WeightStationaryArray")
        self.cols = COLS.check(cols, "WeightStationaryArray")
        self.bias = BIAS.check(bias, "WeightStationaryArray")
        self.pipeline = PIPELINE.check(pipeline, "WeightStationaryArray")
        self.gate_clock = bool(gate_clock)
        self.cell_latency = max(pipeline, 1)
        self.swap_time = (rows - 1) * self.cell_latency + cols - 1
        self.result_latency = rows * self.cell_latency + cols - 1
        self.weight_layout = data.StructLayout({"b": data.ArrayLayout(8, cols), "active": 1})
        self.operand_layout = data.StructLayout({
            "a": data.ArrayLayout(8, rows), "c": data.ArrayLayout(32, cols), "first": 1})
        self.result_layout = data.StructLayout({"c": data.ArrayLayout(32, cols)})
        super().__init__({
            "mode": In(Mode),
            "fmt_a": In(SourceFormat),
            "fmt_b": In(SourceFormat),
            "weights": In(stream.Signature(self.weight_layout)),
            "operands": In(stream.Signature(self.operand_layout)),
            "results": Out(stream.Signature(self.result_layout)),
            "idle": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from the cycle an operand row is taken to the cycle its result beat is
        valid, with no stall: ``result_latency``."""
        return self.result_latency

    def elaborate(self, platform):
        R, C, L = self.rows, self.cols, self.cell_latency
        sc = SteppedCore()
        m, step = sc.core, sc.step

        # Inside the core, a beat is taken when it is valid and may go in: ``step`` is not
        # in these conditions, as no register of the core changes without it anyway (so
        # the stall signal reaches only the enables, never the data paths of the PEs).
        # Weights: count the shadow rows loaded; no shift while a switch is under way.
        loaded = Signal(range(R + 1))
        swapping = countdown(m, "swapping", self.swap_time)
        shift = Signal()
        may_shift = (loaded != R) & (swapping == 0)
        m.d.comb += [self.weights.ready.eq(step & may_shift),
                     shift.eq(self.weights.valid & may_shift)]

        # Operands go straight into the array; a first row waits for a full shadow tile.
        issue = self.operands.payload
        issuing = Signal()
        may_issue = ~issue.first | (loaded == R)
        m.d.comb += [self.operands.ready.eq(step & may_issue),
                     issuing.eq(self.operands.valid & may_issue)]
        with m.If(issuing & issue.first):
            m.d.sync += [loaded.eq(0), swapping.eq(max(self.swap_time - 1, 0))]
        with m.Elif(shift):
            m.d.sync += loaded.eq(loaded + 1)

        # The array. ----------------------------------------------------------------------
        # Each code of A travels east with its row's flags and the run-time settings, so
        # that every PE reads the settings from a register next to it (a settings net that
        # fans out to every PE limits the clock of a large array). A bubble (no row) has
        # garbage codes and sums: its ``mac`` flag is low, which zeroes ``b``.
        settings = Cat(self.mode, self.fmt_a, self.fmt_b)
        west = [delay(m, Cat(issue.a[r], issuing, issuing & issue.first, settings), r * L,
                      f"west{r}") for r in range(R)]
        north = [delay(m, Cat(issue.c[j], issuing), j, f"north{j}") for j in range(C)]
        # Shadow weights shift up the columns: the bottom row takes the beat.
        shadows = [[Signal(9, name=f"shadow{r}_{j}") for j in range(C)] for r in range(R)]
        with m.If(shift):
            for j in range(C):
                m.d.sync += shadows[R - 1][j].eq(Cat(self.weights.payload.b[j],
                                                     self.weights.payload.active))
                for r in range(R - 1):
                    m.d.sync += shadows[r][j].eq(shadows[r + 1][j])

        for r in range(R):
            a_flags = west[r]
            for j in range(C):
                a_here, mac, swap = a_flags[:8], a_flags[8], a_flags[9]
                mode, fmt_a, fmt_b = a_flags[10:12], a_flags[12], a_flags[13]
                weight = Signal(9, name=f"weight{r}_{j}")
                use = Signal(9, name=f"use{r}_{j}")
                m.d.comb += use.eq(Mux(swap, shadows[r][j], weight))
                m.d.sync += weight.eq(use)
                active = use[8]
                cell = MacCell(m, f"pe{r}_{j}", self.bias, self.pipeline, mode, fmt_a, fmt_b)
                sum_in = north[j]
                m.d.comb += [cell.a.eq(a_here), cell.b.eq(Mux(active & mac, use[:8], 0)),
                             cell.mac.eq(mac & active), cell.tag.eq(sum_in[32]),
                             cell.acc_in.eq(sum_in[:32])]
                north[j] = Cat(cell.acc_out, cell.tag_out)
                if j < C - 1:
                    a_flags = delay(m, a_flags, 1, f"a{r}_{j}")

        # Deskew: column j leaves j cycles after column 0.
        bottom = [delay(m, north[j], C - 1 - j, f"deskew{j}") for j in range(C)]
        complete = bottom[0][32]
        payload = Signal(self.result_layout)
        m.d.comb += [payload.c[j].eq(bottom[j][:32]) for j in range(C)]

        # The array steps only while it holds a row, a weight switch is under way or a beat
        # is offered (a register: a beat offered to a sleeping array waits one cycle), so
        # an idle array's registers hold still (a clock enable: power, and a simulator
        # with ``gate_clock`` skips the array while it sleeps).
        awake = Signal(init=1)
        top = sc.finish_direct(self.results, complete, payload, awake, self.gate_clock)
        # Rows accepted and not yet delivered: at most one per register stage.
        in_flight = Signal(range(self.result_latency + 1))
        took = self.operands.valid & self.operands.ready
        gave = self.results.valid & self.results.ready
        top.d.sync += in_flight.eq(in_flight + took - gave)
        top.d.sync += awake.eq((in_flight != 0) | (swapping != 0) | self.operands.valid
                               | self.weights.valid)
        top.d.comb += self.idle.eq(in_flight == 0)
        return top
