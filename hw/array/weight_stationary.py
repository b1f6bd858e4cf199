"""Weight-stationary array: every PE holds weights of B while rows of A stream by. One
generator for both processing elements (``hw.array.elements``): the MPE and the FP8-SEB
FMA tree."""

from __future__ import annotations

from amaranth import Cat, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.arrays import COLS, ROWS
from golden.params import BIAS, WAYS
from hw.array.common import SteppedCore, countdown, delay
from hw.array.elements import MpeElement, TreeElement
from hw.units.fma_tree import PIPELINE as TREE_PIPELINE
from hw.units.mpe import PIPELINE


class WeightStationaryArray(wiring.Component):
    """A ``rows`` x ``cols`` weight-stationary array of processing elements: MPEs
    (``hw.units.mpe``, the default, with ``bias`` and ``pipeline``) or another
    ``element`` (``hw.array.elements``; ``SebArray`` builds one of FMA trees).

    An element takes ``codes`` codes of A and of B a cycle (the MPE 1, an N-way tree N)
    and has sums of ``sum_width`` bits (32, or 30 for ``fp30``). PE (r, j) holds the codes
    B[k0 + r*codes .. k0 + (r+1)*codes - 1, n0 + j] of a *weight tile* (``rows`` x
    ``codes`` values of k, ``cols`` of n). A row i of A enters as ``rows`` x ``codes``
    codes A[i, k0 ..] together with ``cols`` partial sums C[i, n0 ..] and leaves as
    ``cols`` sums: the partial sum of column j falls through the column and each PE
    applies its codes in ascending k (the MPE: ``acc <- mpe(acc, A[i, k], B[k, n])``; the
    tree: ``acc <- fmatree(acc, chunk of A, chunk of B)``), so a K longer than a tile is
    several passes whose results are the next pass's partial sums.

    Run-time settings (the element's: ``mode``, ``fmt_a``, ``fmt_b`` for the MPE,
    ``bias_a``, ``bias_b`` for the tree) are taken with each row of A and travel with
    it; change them only while ``idle`` is high all the same, as the output-stationary
    array requires.

    Streams (``amaranth.lib.stream``, with backpressure):

    * ``weights``: ``rows`` beats per weight tile, r = 0 first: ``b`` (``cols`` x
      ``codes`` codes: those of PE row r) and ``active``; a PE row that is not active
      (past the end of K) passes the sums through unchanged.
    * ``operands``: one beat per row of A: ``a`` (``rows`` x ``codes`` codes), ``c``
      (``cols`` sums in), ``first`` on the first row that uses a newly loaded weight tile.
    * ``results``: one beat per row, in order: ``c`` (``cols`` sums).

    Load, compute, drain: the weights shift up the columns into shadow registers while
    the previous tile computes; a ``first`` row waits until all ``rows`` are loaded, and
    switches each PE to the new tile as it passes (the switch moves with the row's
    skew). The next tile's weights may start loading ``(rows - 1) * L + cols - 1``
    cycles after that (``L`` = the element's latency, at least 1). Skewing is inside:
    the codes of PE row r enter ``r * L`` cycles late and move east one PE per cycle, sum
    j enters ``j`` late and moves south; results are deskewed into one beat.

    Throughput: one row per cycle (``rows * cols * codes`` MACs per cycle). An operand
    beat goes straight into the array (no buffer): ``operands.ready`` is low only while
    the array is stalled or a ``first`` row waits for its weights. Latency from a row's
    acceptance to its result beat: ``rows * L + cols - 1`` cycles (``result_latency``);
    the result beat is the last PE row's output registers, deskewed, held by stalling the
    array.

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
                 gate_clock: bool = False, *, element=None):
        owner = type(self).__name__
        self.rows = ROWS.check(rows, owner)
        self.cols = COLS.check(cols, owner)
        self.element = element if element is not None else MpeElement(bias, pipeline, owner)
        if isinstance(self.element, MpeElement):
            self.bias, self.pipeline = self.element.bias, self.element.pipeline
        self.gate_clock = bool(gate_clock)
        self.cell_latency = self.element.latency
        self.swap_time = (rows - 1) * self.cell_latency + cols - 1
        self.result_latency = rows * self.cell_latency + cols - 1
        codes = self.element.code_shape
        self.weight_layout = data.StructLayout({"b": data.ArrayLayout(codes, cols),
                                                "active": 1})
        self.operand_layout = data.StructLayout({
            "a": data.ArrayLayout(codes, rows),
            "c": data.ArrayLayout(self.element.sum_width, cols), "first": 1})
        self.result_layout = data.StructLayout({
            "c": data.ArrayLayout(self.element.sum_width, cols)})
        settings = {name: In(field.shape) for name, field in self.element.settings}
        super().__init__({
            **settings,
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
        # Each PE row's codes of A travel east with the row's flags and the run-time
        # settings, so that every PE reads the settings from a register next to it (a
        # settings net that fans out to every PE limits the clock of a large array). A
        # bubble (no row) has garbage codes and sums: its ``mac`` flag is low, and the PE
        # passes the sum through.
        element = self.element
        code_bits = 8 * element.codes
        sum_bits = element.sum_width
        settings = Cat(*(getattr(self, name) for name, _ in element.settings))
        west = [delay(m, Cat(issue.a[r], issuing, issuing & issue.first, settings), r * L,
                      f"west{r}") for r in range(R)]
        north = [delay(m, Cat(issue.c[j], issuing), j, f"north{j}") for j in range(C)]
        # Shadow weights shift up the columns: the bottom row takes the beat.
        shadows = [[Signal(code_bits + 1, name=f"shadow{r}_{j}") for j in range(C)]
                   for r in range(R)]
        with m.If(shift):
            for j in range(C):
                m.d.sync += shadows[R - 1][j].eq(Cat(self.weights.payload.b[j],
                                                     self.weights.payload.active))
                for r in range(R - 1):
                    m.d.sync += shadows[r][j].eq(shadows[r + 1][j])

        for r in range(R):
            a_flags = west[r]
            for j in range(C):
                a_here, mac, swap = (a_flags[:code_bits], a_flags[code_bits],
                                     a_flags[code_bits + 1])
                here = data.View(element.settings, a_flags[code_bits + 2:])
                weight = Signal(code_bits + 1, name=f"weight{r}_{j}")
                use = Signal(code_bits + 1, name=f"use{r}_{j}")
                m.d.comb += use.eq(Mux(swap, shadows[r][j], weight))
                m.d.sync += weight.eq(use)
                active = use[code_bits]
                sum_in = north[j]
                sum_out, tag_out = element.build(m, f"pe{r}_{j}", here, a_here,
                                                 use[:code_bits], sum_in[:sum_bits],
                                                 sum_in[sum_bits], mac & active)
                north[j] = Cat(sum_out, tag_out)
                if j < C - 1:
                    a_flags = delay(m, a_flags, 1, f"a{r}_{j}")

        # Deskew: column j leaves j cycles after column 0.
        bottom = [delay(m, north[j], C - 1 - j, f"deskew{j}") for j in range(C)]
        complete = bottom[0][sum_bits]
        payload = Signal(self.result_layout)
        m.d.comb += [payload.c[j].eq(bottom[j][:sum_bits]) for j in range(C)]

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


class SebArray(WeightStationaryArray):
    """The FP8-SEB GEMM array: a ``rows`` x ``cols`` weight-stationary array of ``ways``-way
    FMA trees (``hw.units.fma_tree``, at ``pipeline``). PE (r, j) holds chunk r of the
    weight tile's ``rows`` chunks of ``ways`` consecutive k of column j; each row of A
    brings ``rows`` chunks, and each column's ``fp30`` partial sum falls through the
    column, every PE applying ``fmatree`` to it, so every output meets its chunks in
    ascending k, as ``golden.seb_matmul`` does. Settings ``bias_a`` and ``bias_b``."""

    parameters = (ROWS, COLS) + TreeElement.parameters

    def __init__(self, rows: int = ROWS.default, cols: int = COLS.default,
                 ways: int = WAYS.default, pipeline: int = TREE_PIPELINE.default,
                 gate_clock: bool = False):
        element = TreeElement(ways, pipeline, owner=type(self).__name__)
        super().__init__(rows, cols, gate_clock=gate_clock, element=element)
        self.ways, self.pipeline = element.ways, element.pipeline
