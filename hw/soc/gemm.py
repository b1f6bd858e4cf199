"""The GEMM engine: a whole GEMM on chip, from operands in buffers to results in buffers.

``GemmEngine`` holds a square ``rows`` x ``rows`` ``WeightStationaryArray`` (R = rows),
three buffers (``hw.soc.buffers``) and the controller that runs a GEMM's every K tile and
N tile through the array, partial sums staying in the ACC buffer, the next tile's weights
loading (into the array's shadow registers) while the current tile computes. It is a
part of the board system: the command executor writes the operands through the host byte
port, starts a GEMM with the ``start`` stream and reads the results after ``done``; it
may reach the buffers a GEMM does not use while it runs, pausing the engine.

Buffers (``BufferId``; words, offsets in words; ``hw.schedule.EngineLayout`` makes and
reads these layouts; tiles as ``hw.schedule.k_tiles(K, R, chunk)``, chunk 0 in the
integer modes):

* A, ``a_words`` words of R codes: tile t of A at word ``a_base + t*M + i``, lane r =
  A[i, k0_t + r] (lanes r >= length_t are ignored).
* B, ``b_words`` words of R codes: B[k, n] at word ``b_base + (n // R) * K + k``, lane
  ``n % R`` (the columns n0.. of a wider B laid out so, with ``b_base`` at column n0).
* ACC, ``acc_words`` words of R 32-bit values: C[i, j] at word
  ``acc_base + (j // R) * M + i``, lane
  ``j % R``: the initial C (``accumulate``) in, the result out. fp8 values are
  ``dlfloat16`` codes in the low 16 bits (the high 16 bits are 0 in the result).
* Quantized output (``out`` e4m3 / e5m2, fp8 mode): C[i, j] as an FP8 code (``quant16``,
  rne, sat, e4m3 with the engine's ``bias``) in the A buffer, word
  ``out_base + (j // R) * M + i``, lane ``j % R``: the A layout, with K = this N and chunk
  0 (or a multiple of R), of a next GEMM, which can take it as its A (``a_base`` =
  ``out_base``). The ACC buffer holds the unquantized result as well.

The schedule: for each N tile nt, for each K tile t: R weight beats (rows past the tile's
length inactive), then M operand rows (``first`` on row 0), each with the A word and its
sums in: 0 (the first tile without ``accumulate``; the first tile of a chunk), the ACC
word (later tiles; the first with ``accumulate``), or its high halves (a later tile of a
chunk); the results overwrite the ACC word, or only its high halves with ``chunk``. Row i
of a tile that reads sums waits until row i of the previous tile has been written (a
scoreboard: rows in flight < M), so small M stalls instead of reading a stale word.
``chunk`` > 0 in fp8 mode (chunk-based accumulation): after a chunk's last tile, the
array is drained and a FOLD sweep over the M words of the N tile sets each low half S to
``dladd(S, P)`` (S = 0 for the first chunk without ``accumulate``; P = the chunk's sum,
the high half) and the high half to 0. ``out``: after an N tile's last tile (and fold),
a QUANT sweep writes its M quantized words. A sweep does one word a cycle.

Host port rule: the host byte port (``host``, ``HostByteSignature`` with a ``buffer``
number) reaches the buffers while the engine is idle (``busy`` low), or while ``paused``:
``pause`` asks the engine to stop using the ports of buffer ``host.buffer`` (for A and
ACC the rows and sweeps stop and the array drains, for B the weights stop; from the
cycle after it rises), ``paused`` says it has, and holds while ``pause`` does (the GEMM
goes on when it drops). The buffers do a host access in the cycle after it is offered
(``HOST_READ_LATENCY``), so the engine must still be idle or paused then: the pause is
held a cycle past the last access. Otherwise host writes are ignored and host reads
return garbage. ``uses`` (bit 2n: the lower half of buffer n, words below
``half_words[n]``; bit 2n + 1 the upper half) tells the halves the running GEMM reads or
writes, from its acceptance to its end: the executor lets the host touch only the others
while it runs. The executor checks byte addresses against ``sizes`` (bytes each buffer
spans), but writes past a buffer change nothing.

``start`` (a stream of ``GEMM_SETTINGS``) is taken only while idle. The engine first
checks the settings (about T + N/R cycles, T the number of K tiles): a mode, format or
``out`` code out of range, ``out`` in an integer mode, M, K or N of 0, ``chunk`` without
the ``chunking`` hardware, a GEMM that does not fit its buffers, or a quantized output
that overlaps the A tiles it is computed from refuses the GEMM: ``done`` with
``refused`` high, and no buffer changed; settings that pass raise ``accepted`` for a
cycle. ``done`` is high for one cycle, the last with
``busy`` high; ``refused`` holds until the next start. ``cycles`` counts the clock cycles
with ``busy`` high since reset (32 bits, wrapping).

Throughput: one operand row a cycle while M covers the array's latency and a tile's
weight load (``ideal_cycles`` is the bound measured against).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.arrays import COLS, ROWS
from fp8hw.enums import GemmMode, Mode, OutFormat, Overflow, SourceFormat
from fp8hw.params import Param, ParameterError
from golden.formats import FP30
from golden.params import BIAS, ROOM, WAYS
from hw.array import WeightStationaryArray
from hw.array.elements import MpeElement, TreeElement
from hw.schedule import EngineLayout
from hw.soc.buffers import HOST_READ_LATENCY as BUFFER_READ_LATENCY
from hw.soc.buffers import MAX_DEPTH, BufferId, HostByteSignature, WordBuffer
from hw.soc.k_tile_walker import KTileWalker
from hw.units.mpe import MULTIPLIER as MPE_MULTIPLIER
from hw.units.mpe import PIPELINE
from hw.units.quant16 import Quant16
from hw.units.quant30 import BIAS_SHAPE, EXP_SHAPE, fp30_exponent, next_bias_logic, \
    quantize_fp30

A_WORDS = Param("a_words", 256, "words of the A buffer (rows codes each)", lo=1, hi=MAX_DEPTH)
B_WORDS = Param("b_words", 256, "words of the B buffer (rows codes each)", lo=1, hi=MAX_DEPTH)
ACC_WORDS = Param("acc_words", 256, "words of the ACC buffer (rows 32-bit sums each)", lo=1,
                  hi=MAX_DEPTH)
CHUNKING = Param("chunking", 1, "chunk-based accumulation hardware (rows dladd units)",
                 lo=0, hi=1)
SPRAM = Param("spram", 0, "single-port A and B buffers (SPRAM on an iCE40 UP5K)", lo=0,
              hi=1)
ENGINE = Param("engine", "mpe", "the processing element: mpe (HFP8) or seb (FP8-SEB trees)",
               choices=("mpe", "seb"))

# The settings of one GEMM, the payload of ``start``. Sizes and offsets are 16-bit.
GEMM_SETTINGS = data.StructLayout({
    "mode": GemmMode,
    "fmt_a": SourceFormat,
    "fmt_b": SourceFormat,
    "out": OutFormat,
    "accumulate": 1,      # 1: ACC holds an initial C; 0: start from zero (ACC not read)
    "m": 16,
    "k": 16,
    "n": 16,
    "chunk": 16,          # chunk length CL (0: none); ignored in the integer modes
    "a_base": 16,         # word offset of A in the A buffer
    "out_base": 16,       # word offset of the quantized output in the A buffer
    "acc_base": 16,       # word offset of C (the initial C and the result) in ACC
    "b_base": 16,         # word offset of B in the B buffer
    # The FP8-SEB engine's (0 for the MPE engine): the shared biases of A, B and the
    # quantized output, and ``track`` (1: the output tensor goes on from the previous
    # GEMM's, for its tracker; 0: a new tensor, the tracker starts afresh).
    "bias_a": BIAS_SHAPE,
    "bias_b": BIAS_SHAPE,
    "out_bias": BIAS_SHAPE,
    "track": 1,
})

# The fold's adder: 4 cuts after the operands' swap and the normalization too (the
# iCEBreaker at 24 MHz).
DLADD_PIPELINE = 4
QUANT_PIPELINE = 1
# The engine's host port: a register (nothing but registers drive the buffers from the
# host side: the link's payload had reached the iCE40's SPRAM chip select through 15
# levels, and the ECP5's buffers spread over the die), then the buffers' read.
HOST_READ_LATENCY = BUFFER_READ_LATENCY + 1


class GemmEngine(wiring.Component):
    """See the module docstring. Ports: ``start`` (stream of ``GEMM_SETTINGS``),
    ``busy``, ``done``, ``refused``, ``cycles``, ``host`` (byte port into the buffers,
    ``buffer`` a ``BufferId``)."""

    parameters = (ROWS, COLS, BIAS, PIPELINE, A_WORDS, B_WORDS, ACC_WORDS, CHUNKING,
                  SPRAM, ENGINE, WAYS, ROOM)

    def __init__(self, rows: int = ROWS.default, cols: int = COLS.default,
                 bias: int = BIAS.default, pipeline: int = PIPELINE.default,
                 a_words: int = A_WORDS.default, b_words: int = B_WORDS.default,
                 acc_words: int = ACC_WORDS.default, chunking: int = CHUNKING.default,
                 spram: int = SPRAM.default, engine: str = ENGINE.default,
                 ways: int = WAYS.default, room: int = ROOM.default,
                 gate_clock: bool = False, multiplier: str = MPE_MULTIPLIER.default):
        self.rows = ROWS.check(rows, "GemmEngine")
        self.cols = COLS.check(cols, "GemmEngine")
        if self.cols != self.rows:
            raise ParameterError(
                f"GemmEngine: parameter cols={cols} must equal rows={rows}: a result word "
                f"of cols codes becomes an A word of rows codes (resident operands)")
        self.bias = BIAS.check(bias, "GemmEngine")
        self.a_words = A_WORDS.check(a_words, "GemmEngine")
        self.b_words = B_WORDS.check(b_words, "GemmEngine")
        self.acc_words = ACC_WORDS.check(acc_words, "GemmEngine")
        self.chunking = CHUNKING.check(chunking, "GemmEngine")
        self.spram = SPRAM.check(spram, "GemmEngine")
        self.engine = ENGINE.check(engine, "GemmEngine")
        self.room = ROOM.check(room, "GemmEngine")
        self.seb = self.engine == "seb"
        if self.seb:
            # The FP8-SEB engine: a GEMM's "k" counts chunks of ``ways`` codes.
            if self.chunking:
                raise ParameterError("GemmEngine: parameter chunking=1 is for the MPE engine "
                                     "(chunk-based accumulation of dlfloat16 sums); the seb "
                                     "engine takes chunking=0")
            element = TreeElement(ways, pipeline, owner="GemmEngine")
        else:
            element = MpeElement(bias, pipeline, owner="GemmEngine", multiplier=multiplier)
        self.element = element
        self.pipeline = element.pipeline
        self.ways = element.codes            # codes a PE takes a cycle: 1 for the MPE
        # gate_clock: the array's core on a gated clock, for a faster simulation
        # (``SteppedCore.finish_direct``); never on a board.
        self.array = WeightStationaryArray(rows, rows, gate_clock=gate_clock, element=element)
        R, W = self.rows, self.ways
        self.buffers = {BufferId.A: WordBuffer(R * W, 1, self.a_words, self.spram),
                        BufferId.B: WordBuffer(R * W, 1, self.b_words, self.spram),
                        BufferId.ACC: WordBuffer(R, 4, self.acc_words)}
        self.sizes = {n: b.size for n, b in self.buffers.items()}
        # A buffer's upper half begins at this word (its lower half may be the smaller).
        self.half_words = {n: b.depth // 2 for n, b in self.buffers.items()}
        super().__init__({
            "start": In(stream.Signature(GEMM_SETTINGS)),
            "busy": Out(1),
            "done": Out(1),
            "refused": Out(1),
            "cycles": Out(32),
            "accepted": Out(1),
            "uses": Out(2 * len(BufferId)),
            "pause": In(1),
            "paused": Out(1),
            "host": In(HostByteSignature(len(BufferId))),
            # The FP8-SEB engine's output tracker (0 on the MPE engine): ``max_exp`` and
            # ``seen`` over the quantized outputs since a GEMM with ``track`` 0 began,
            # ``next_bias`` the bias rule applied to the last GEMM's ``out_bias``.
            "max_exp": Out(EXP_SHAPE),
            "seen": Out(1),
            "next_bias": Out(BIAS_SHAPE),
        })

    @property
    def latency(self) -> int:
        """The array's latency, from an operand row to its result (a GEMM's latency depends
        on its shape: see ``ideal_cycles``)."""
        return self.array.latency

    def ideal_cycles(self, M: int, K: int, N: int, chunk: int = 0, out: bool = False) -> int:
        """A bound no schedule beats: a row a cycle for every tile's M rows, plus the first
        tile's weight load and one drain of the array; each sweep (a fold a chunk and N
        tile, a quantization an N tile) adds M cycles and a drain."""
        layout = EngineLayout(M, K, N, self.rows, chunk)
        tiles = layout.tiles
        sweeps = layout.n_tiles * (sum(last for *_, last in tiles) if chunk else 0)
        sweeps += layout.n_tiles if out else 0
        drain = self.array.result_latency
        return (len(tiles) * layout.n_tiles * M + self.rows + drain
                + sweeps * (M + drain))

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = self.array
        for n, buf in self.buffers.items():
            m.submodules[f"buffer_{n.name.lower()}"] = buf
        s = Signal(GEMM_SETTINGS, name="settings")
        fsm_idle = Signal()
        self._host_port(m, fsm_idle)
        if self.seb:
            m.d.comb += [self.array.bias_a.eq(s.bias_a), self.array.bias_b.eq(s.bias_b)]
        else:
            # GemmMode's codes for the MPE's modes are Mode's.
            m.d.comb += [self.array.mode.eq(s.mode), self.array.fmt_a.eq(s.fmt_a),
                         self.array.fmt_b.eq(s.fmt_b)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        _Controller(self, m, s, fsm_idle).build()
        return m

    def _host_port(self, m, idle):
        # The access offered, registered: the buffers see it a cycle later. (Registers
        # inside each buffer instead made Yosys 0.70's abc9 fail an assertion on the
        # FP8-SEB ULX3S design.)
        host = HostByteSignature(len(BufferId)).flip().create(path=("host_taken",))
        m.d.sync += [host.addr.eq(self.host.addr), host.data.eq(self.host.data),
                     host.write.eq(self.host.write), host.buffer.eq(self.host.buffer)]
        m.d.comb += self.host.read_data.eq(host.read_data)
        read_from = host.buffer
        for stage in range(BUFFER_READ_LATENCY):   # the buffer each read_data comes from
            delayed = Signal(range(len(BufferId)), name=f"host_read_from{stage}")
            m.d.sync += delayed.eq(read_from)
            read_from = delayed
        read_data = Const(0, 8)
        for n, buf in self.buffers.items():
            owns = idle | (self.paused & (host.buffer == n))
            m.d.comb += [buf.host_owns.eq(owns), buf.host.addr.eq(host.addr),
                         buf.host.data.eq(host.data),
                         buf.host.write.eq(host.write & (host.buffer == n))]
            read_data = Mux(read_from == n, buf.host.read_data, read_data)
        m.d.comb += host.read_data.eq(read_data)


class _Controller:
    """The engine's control, built into ``m``: the settings check, the weight stream, the
    operand rows with their scoreboard, the result writes and the sweeps."""

    def __init__(self, engine: GemmEngine, m: Module, s, idle):
        self.e, self.m, self.s, self.idle = engine, m, s, idle
        self.R = R = engine.rows
        self.array = engine.array
        # Counters only as wide as the buffers need: the settings are checked against the
        # depths as they arrive (``oversize``), so past the check every size and offset
        # fits these widths and the high bits of the 16-bit settings are never read.
        self.wa = engine.a_words.bit_length()            # word offsets into A (and a_words)
        self.wb = engine.b_words.bit_length()            # K, chunk, offsets into B
        self.wc = engine.acc_words.bit_length()          # offsets into ACC
        self.wm = min(engine.a_words, engine.acc_words).bit_length()     # M
        self.wn = (R * engine.acc_words + R).bit_length()                # N and n0
        self.a, self.b, self.acc = (engine.buffers[n] for n in BufferId)
        # Loaded with the settings (a register: it steers the rows' reads of ACC).
        self.chunked = Signal(name="chunked")
        self.chunk = Signal(self.wb, name="chunk_used")  # 0 unless chunked
        self.quantize = Signal(name="quantize")
        m.d.comb += [self.chunk.eq(Mux(self.chunked, s.chunk[:self.wb], 0)),
                     self.quantize.eq(s.out != OutFormat.NONE)]
        # The FP8-SEB engine's quantized outputs: an N tile's R codes are R of the R x W
        # codes of an A word (``group`` of W), so an A word takes W N tiles.
        self.W = engine.ways
        self.group = Signal(range(self.W), name="out_group")
        # Rows read for the array and not yet written back as results.
        self.pending = Signal(range(self.array.result_latency + 4), name="pending")
        self.issued = Signal(name="row_issued")
        self.wrote = Signal(name="result_written")
        pending_next = self.pending + self.issued - self.wrote
        m.d.sync += self.pending.eq(pending_next)
        self.drained = self.pending == 0
        # T - 1 (T the K tiles, at most K), counted by the check from all ones.
        self.tiles_last = Signal(self.wb, name="k_tiles_last")
        # Narrow views of the settings (exact once ``oversize`` is clear).
        self.M, self.K, self.N = s.m[:self.wm], s.k[:self.wb], s.n[:self.wn]
        # M - 1 in a register (the settings hold still while it is read): no subtraction
        # before the row counters' comparisons.
        self.m_last = Signal(self.wm, name="m_last")
        m.d.sync += self.m_last.eq(self.M - 1)
        # pending < M, registered (M holds still from the settings' load on).
        self.below_m = Signal(name="pending_below_m")
        m.d.sync += self.below_m.eq(pending_next < self.M)
        self.a_base, self.out_base = s.a_base[:self.wa], s.out_base[:self.wa]
        self.acc_base = s.acc_base[:self.wc]
        self.b_base = s.b_base[:self.wb]
        # A pause for the host: rows and sweeps stop for A and ACC, weights for B.
        self.pause_rows = Signal(name="pause_rows")
        self.pause_weights = Signal(name="pause_weights")
        # ``pause`` is taken into a register first: the executor's decision to pause
        # (from the link's frame and its checks) is not in series with the row issue.
        self.pause = Signal(name="pause_taken")
        m.d.sync += self.pause.eq(engine.pause)
        m.d.comb += [self.pause_rows.eq(self.pause & (engine.host.buffer != BufferId.B)),
                     self.pause_weights.eq(self.pause & (engine.host.buffer == BufferId.B))]
        self.begin = Signal(name="begin")              # the settings passed: rows next

    def build(self):
        m, s, e = self.m, self.s, self.e
        R = self.R
        M, K, N = self.M, self.K, self.N
        rw = self.rows_walker = KTileWalker(m, "row_tile", R, K, self.chunk, self.wb,
                                            e.chunking)
        ww = self.weight_walker = KTileWalker(m, "weight_tile", R, K, self.chunk, self.wb,
                                              e.chunking)
        # Per-GEMM registers of the row side.
        a_ptr = Signal(self.wa, name="a_ptr")            # a_base + t*M + row
        acc_nt = Signal(self.wc, name="acc_nt")          # nt*M
        out_nt = Signal(self.wa, name="out_nt")          # out_base + nt*M
        n0 = Signal(self.wn, name="n0")                  # nt*R
        self.sweep_n0 = n0                               # still the swept tile's in a sweep
        row = Signal(self.wm, name="row")
        # n0 + R >= N (the last N tile), kept in a register beside n0: set with it.
        last_nt = Signal(name="last_n_tile")

        def n0_first():
            m.d.sync += [n0.eq(0), last_nt.eq(R >= N)]

        def n0_next():
            m.d.sync += [n0.eq(n0 + R), last_nt.eq(n0 + 2 * R >= N)]
        pend_fold, pend_quant, pend_nt = (Signal(name=n) for n in
                                          ("pend_fold", "pend_quant", "pend_next_nt"))
        fold_first = Signal(name="fold_first_chunk")
        self.acc_nt, self.out_nt, self.fold_first = acc_nt, out_nt, fold_first

        weights_go = Signal(name="weights_go")
        weight_valid = self._weights(ww, weights_go)
        self._results()
        sweep = self._sweep()

        # Settings check: the sizes against the depths as they arrive (``oversize``), then T
        # tiles and N tiles, a cycle each, adding up the words each buffer needs; an end
        # that would pass its buffer stops growing and sets ``overflow`` (so no end needs
        # more than one bit past its buffer's offsets).
        start = e.start.payload
        oversize, overflow = Signal(name="oversize"), Signal(name="overflow")
        a_end, o_end = Signal(self.wa + 1, name="a_end"), Signal(self.wa + 1, name="out_end")
        b_end = Signal(self.wb + 1, name="b_end")
        acc_end = Signal(self.wc + 1, name="acc_end")

        def grow(end, step, limit):
            with m.If(end + step > limit):
                m.d.sync += overflow.eq(1)
            with m.Else():
                m.d.sync += end.eq(end + step)

        bad = Signal(name="bad_settings")
        bad_taken = Signal(name="bad_settings_taken")    # a cycle later, for CHECK_END
        m.d.sync += bad_taken.eq(bad)
        if e.seb:
            bad_mode = ((s.mode != GemmMode.FP8SEB) | (s.chunk != 0)
                        | (self.quantize & (s.out != OutFormat.FP8SEB)))
        else:
            bad_mode = ((s.mode > max(Mode)) | (s.out > OutFormat.E5M2)
                        | (self.quantize & (s.mode != GemmMode.FP8)))
        m.d.comb += bad.eq(
            bad_mode
            | (M == 0) | (K == 0) | (N == 0)          # exact unless oversize
            | (self.chunked & (e.chunking == 0))
            | oversize | overflow
            | (self.quantize & (self.out_base < a_end) & (self.a_base < o_end)))

        def next_nt():
            rw.restart(m)
            m.d.sync += [a_ptr.eq(self.a_base), acc_nt.eq(acc_nt + M)]
            n0_next()
            self._next_group(out_nt)

        # The operand stage: a row's A and ACC words sit on the read ports until taken.
        op = self.array.operands
        op_valid = Signal(name="op_valid")
        op_first = Signal(name="op_first")
        op_sums = Signal(2, name="op_sums")              # 0: zero, 1: word, 2: high halves
        advance = ~op_valid | op.ready
        sums = self.acc.read.data
        m.d.comb += [op.valid.eq(op_valid), op.payload.a.eq(self.a.read.data),
                     op.payload.first.eq(op_first), self.a.read.en.eq(advance)]
        for j in range(R):
            lane = sums[32 * j:32 * j + 32]
            if e.seb:                                    # fp30 codes in the low 30 bits
                m.d.comb += op.payload.c[j].eq(Mux(op_sums == 0, 0, lane[:FP30.width]))
            else:
                m.d.comb += op.payload.c[j].eq(Mux(op_sums == 0, 0,
                                                   Mux(op_sums == 1, lane, lane[16:])))
        with m.If(advance):
            m.d.sync += op_valid.eq(self.issued)

        # What the current tile's rows take as sums, and whether they must wait.
        sums_kind = Signal(2, name="sums_kind")
        reads_previous = Signal(name="reads_previous")
        m.d.comb += [
            sums_kind.eq(Mux(self.chunked, Mux(rw.first_of_chunk, 0, 2),
                             Mux((rw.k0 == 0) & ~s.accumulate, 0, 1))),
            reads_previous.eq(Mux(self.chunked, ~rw.first_of_chunk, rw.k0 != 0))]
        may_read = ~reads_previous | self.below_m
        # One unconditional assignment (a Verilog ``assign``, which simulators evaluate
        # from time 0, unlike a process that waits for its inputs to change).
        in_rows = Signal(name="in_rows")
        m.d.comb += self.issued.eq(in_rows & advance & may_read & ~self.pause_rows)

        # The halves of each buffer this GEMM uses (``uses``: bit 2n the lower half of
        # buffer n, 2n+1 the upper), from the regions the check measured: [start, end)
        # touches the lower half if start < H, the upper if end > H.
        uses = Signal(2 * len(BufferId), name="uses_halves")
        half = {n: Const(h, 17) for n, h in e.half_words.items()}
        a_lower = (self.a_base < half[BufferId.A]) | (
            self.quantize & (self.out_base < half[BufferId.A]))
        a_upper = (a_end > half[BufferId.A]) | (self.quantize & (o_end > half[BufferId.A]))
        uses_now = Cat(a_lower, a_upper,
                       self.b_base < half[BufferId.B], b_end > half[BufferId.B],
                       self.acc_base < half[BufferId.ACC], acc_end > half[BufferId.ACC])
        m.d.comb += e.uses.eq(uses)

        with m.FSM(name="engine") as fsm:
            in_sweep = fsm.ongoing("SWEEP")
            quiet = Mux(e.host.buffer == BufferId.A, ~op_valid & ~in_sweep,
                        Mux(e.host.buffer == BufferId.B, ~weight_valid,
                            self.drained & ~in_sweep))
            m.d.comb += [self.idle.eq(fsm.ongoing("IDLE")), in_rows.eq(fsm.ongoing("ROWS")),
                         e.paused.eq(self.pause & quiet),
                         self.e.busy.eq(~fsm.ongoing("IDLE")),
                         self.e.start.ready.eq(fsm.ongoing("IDLE")),
                         self.e.done.eq(fsm.ongoing("DONE"))]
            with m.State("IDLE"):
                with m.If(self.e.start.valid):
                    quantize = start.out != OutFormat.NONE
                    if not e.seb:                # the FP8-SEB engine has no chunks
                        m.d.sync += self.chunked.eq((start.mode == GemmMode.FP8)
                                                    & (start.chunk != 0) & (start.k != 0))
                    m.d.sync += [
                        s.eq(start), self.e.refused.eq(0), overflow.eq(0),
                        # A chunk past K is one chunk of all of K: K is what it means.
                        s.chunk.eq(Mux(start.chunk > start.k, start.k, start.chunk)),
                        # Each needs at least this of its buffer (T, M and N/R >= 1).
                        oversize.eq((start.m > min(e.a_words, e.acc_words))
                                    | (start.k > e.b_words)
                                    | (start.n > R * e.acc_words)
                                    | (start.a_base >= e.a_words)
                                    | (start.acc_base >= e.acc_words)
                                    | (start.b_base >= e.b_words)
                                    | (quantize & (start.out_base >= e.a_words)))]
                    m.next = "CHECK_START"
            with m.State("CHECK_START"):
                rw.restart(m)
                n0_first()
                m.d.sync += [a_end.eq(self.a_base), b_end.eq(self.b_base),
                             acc_end.eq(self.acc_base), o_end.eq(self.out_base),
                             self.tiles_last.eq(-1),
                             self.group.eq(0)]
                with m.If(oversize):
                    m.next = "CHECK_SETTLE"
                with m.Else():
                    m.next = "CHECK_K"
            with m.State("CHECK_K"):                     # a cycle a K tile
                grow(a_end, M, e.a_words)
                m.d.sync += self.tiles_last.eq(self.tiles_last + 1)
                rw.advance(m)
                with m.If(rw.last | (K == 0) | overflow):
                    m.next = "CHECK_N"
            with m.State("CHECK_N"):                     # a cycle an N tile
                grow(b_end, K, e.b_words)
                grow(acc_end, M, e.acc_words)
                with m.If(self.quantize & (self.group == 0)):   # a new A word of outputs
                    grow(o_end, M, e.a_words)
                n0_next()
                self._next_group(None)
                with m.If(last_nt | overflow):
                    m.next = "CHECK_SETTLE"
            with m.State("CHECK_SETTLE"):                # the ends final; bad_taken next
                m.next = "CHECK_END"
            with m.State("CHECK_END"):
                with m.If(bad_taken):
                    m.d.sync += self.e.refused.eq(1)
                    m.next = "DONE"
                with m.Else():
                    rw.restart(m)
                    n0_first()
                    m.d.comb += [e.accepted.eq(1), self.begin.eq(1)]
                    m.d.sync += uses.eq(uses_now)
                    m.d.sync += [a_ptr.eq(self.a_base), acc_nt.eq(self.acc_base),
                                 out_nt.eq(self.out_base), self.group.eq(0),
                                 row.eq(0), pend_fold.eq(0), pend_quant.eq(0),
                                 pend_nt.eq(0)]
                    m.d.comb += weights_go.eq(1)
                    m.next = "ROWS"
            with m.State("ROWS"):
                with m.If(self.issued):
                    m.d.comb += [self.a.read.addr.eq(a_ptr),
                                 self.acc.read.addr.eq(acc_nt + row)]
                    m.d.sync += [op_first.eq(row == 0), op_sums.eq(sums_kind),
                                 row.eq(row + 1), a_ptr.eq(a_ptr + 1)]
                    with m.If(row == self.m_last):       # the tile's last row
                        m.d.sync += row.eq(0)
                        fold = self.chunked & rw.last_of_chunk
                        stop = fold | (rw.last & (self.quantize | last_nt))
                        m.d.sync += [pend_fold.eq(fold), fold_first.eq(rw.first_chunk),
                                     pend_quant.eq(rw.last & self.quantize),
                                     pend_nt.eq(rw.last)]
                        with m.If(rw.last & ~stop):
                            next_nt()
                        with m.Else():
                            rw.advance(m)
                        with m.If(stop):
                            m.next = "AFTER_TILE"
            with m.State("AFTER_TILE"):
                with m.If(pend_fold | pend_quant):
                    with m.If(self.drained & ~self.pause_rows):
                        m.d.comb += sweep.go.eq(1)
                        m.d.comb += sweep.fold.eq(pend_fold)
                        m.next = "SWEEP"
                with m.Elif(pend_nt & last_nt):
                    m.next = "FINISH"
                with m.Else():
                    with m.If(pend_nt):
                        next_nt()
                        m.d.sync += pend_nt.eq(0)
                    m.next = "ROWS"
            with m.State("SWEEP"):
                m.d.comb += sweep.running.eq(1)
                with m.If(sweep.finished):
                    with m.If(pend_fold):
                        m.d.sync += pend_fold.eq(0)
                    with m.Else():
                        m.d.sync += pend_quant.eq(0)
                    m.next = "AFTER_TILE"
            with m.State("FINISH"):
                with m.If(self.drained):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += uses.eq(0)
                m.next = "IDLE"

    def _next_group(self, out_nt):
        """The next N tile's place among the W N tiles of an A word of outputs; past the
        last, the next word (``out_nt``, if given, steps by M)."""
        m, W = self.m, self.W
        if W == 1:
            if out_nt is not None:
                m.d.sync += out_nt.eq(out_nt + self.M)
            return
        with m.If(self.group == W - 1):
            m.d.sync += self.group.eq(0)
            if out_nt is not None:
                m.d.sync += out_nt.eq(out_nt + self.M)
        with m.Else():
            m.d.sync += self.group.eq(self.group + 1)

    # -- the weights: R beats a tile, one tile ahead of the rows at most (the array's
    # shadow registers hold one tile), every tile of every N tile in order.
    def _weights(self, ww: KTileWalker, go):
        m, s, R = self.m, self.s, self.R
        w = self.array.weights
        running = Signal(name="weights_running")
        valid = Signal(name="weight_valid")
        active = Signal(name="weight_active")
        r = Signal(range(R), name="weight_row")
        # The active beats read B's words in order (nt*K + k0 + r): one pointer.
        b_ptr = Signal(self.wb, name="b_ptr")
        n0 = Signal(self.wn, name="weight_n0")
        advance = ~valid | w.ready
        m.d.comb += [w.valid.eq(valid), w.payload.b.eq(self.b.read.data),
                     w.payload.active.eq(active), self.b.read.en.eq(advance),
                     self.b.read.addr.eq(b_ptr)]
        # A pause for the host's B access lets the beat out and reads no next one.
        beat = running & ~self.pause_weights
        with m.If(go):
            ww.restart(m)
            m.d.sync += [running.eq(1), r.eq(0), b_ptr.eq(self.b_base), n0.eq(0)]
        with m.Elif(advance):
            m.d.sync += [valid.eq(beat), active.eq(r < ww.length)]
            with m.If(beat):
                m.d.sync += r.eq(r + 1)
                with m.If(r < ww.length):
                    m.d.sync += b_ptr.eq(b_ptr + 1)
                with m.If(r == R - 1):
                    m.d.sync += r.eq(0)
                    with m.If(~ww.last):
                        ww.advance(m)
                    with m.Elif(n0 + R >= self.N):
                        m.d.sync += running.eq(0)
                    with m.Else():
                        ww.restart(m)
                        m.d.sync += n0.eq(n0 + R)
        return valid

    # -- the results: in order, row i of each tile into ACC word nt*M + i.
    def _results(self):
        m, s, R = self.m, self.s, self.R
        res = self.array.results
        i = Signal(self.wm, name="result_row")
        t = Signal(self.wb, name="result_tile")
        base = Signal(self.wc, name="result_nt")
        m.d.comb += res.ready.eq(1)
        self.result_write = Signal(name="result_write")
        m.d.comb += [self.result_write.eq(res.valid), self.wrote.eq(res.valid)]
        # With chunks, a tile's sum P goes into the high halves (the low ones hold S).
        self.result_data = Signal(32 * R, name="result_data")
        self.result_en = Signal(4 * R, name="result_en")
        high_halves = Cat(*(Cat(Const(0, 16), res.payload.c[j][:16]) for j in range(R)))
        # Each sum in its 32-bit lane (fp30 codes: 0 above them).
        lanes = Cat(*(Cat(res.payload.c[j], Const(0, 32 - len(res.payload.c[j])))
                      for j in range(R)))
        m.d.comb += [
            self.result_data.eq(Mux(self.chunked, high_halves, lanes)),
            self.result_en.eq(Mux(self.chunked, int("1100" * R, 2), (1 << 4 * R) - 1))]
        self.result_addr = base + i
        with m.If(self.begin):
            m.d.sync += [i.eq(0), t.eq(0), base.eq(self.acc_base)]
        with m.Elif(res.valid):
            m.d.sync += i.eq(i + 1)
            with m.If(i == self.m_last):
                m.d.sync += [i.eq(0), t.eq(t + 1)]
                with m.If(t == self.tiles_last):
                    m.d.sync += [t.eq(0), base.eq(base + self.M)]

    # -- the sweeps over an N tile's M ACC words: FOLD (S <- dladd(S, P), into ACC) or
    # QUANT (quant16 of S, into the A buffer), a word a cycle. ACC's write port is the
    # results' outside sweeps (the array is drained before one starts).
    def _sweep(self):
        m, s, R, e = self.m, self.s, self.R, self.e
        sw = _SweepPorts()
        kind_fold = Signal(name="sweep_fold")
        read_i = Signal(self.wm, name="sweep_read")
        write_i = Signal(self.wm, name="sweep_write")
        read_valid = Signal(name="sweep_read_valid")
        with m.If(sw.go):
            m.d.sync += [kind_fold.eq(sw.fold), read_i.eq(0), write_i.eq(0)]
        m.d.comb += sw.finished.eq(write_i == self.M)
        reading = sw.running & (read_i != self.M)
        m.d.sync += read_valid.eq(reading)
        with m.If(reading):
            m.d.sync += read_i.eq(read_i + 1)
        # Outside sweeps, the operand stage's word stays while it waits for the array.
        m.d.comb += self.acc.read.en.eq(sw.running | self.issued)
        # The word read is registered before the dladd and quant16 units: a block RAM's
        # output in series with either would not meet the boards' clocks.
        words = Signal(32 * R, name="sweep_word")
        word_valid = Signal(name="sweep_word_valid")
        m.d.sync += [words.eq(self.acc.read.data), word_valid.eq(read_valid)]
        with m.If(sw.running):
            m.d.comb += self.acc.read.addr.eq(self.acc_nt + read_i)

        fold_write = Signal(name="fold_write")
        fold_data = Signal(32 * R, name="fold_data")
        if e.chunking:
            from hw.units.dl_add import DlAdd
            for j in range(R):
                add = m.submodules[f"dladd{j}"] = DlAdd(pipeline=DLADD_PIPELINE)
                low, high = words[32 * j:32 * j + 16], words[32 * j + 16:32 * j + 32]
                m.d.comb += [add.a.eq(Mux(self.fold_first & ~s.accumulate, 0, low)),
                             add.b.eq(high), add.valid_in.eq(word_valid & kind_fold),
                             fold_data[32 * j:32 * j + 32].eq(add.y)]
                if j == 0:
                    m.d.comb += fold_write.eq(add.valid_out)

        quant_valid = Signal(name="quant_valid")
        quant_data = Signal(8 * R, name="quant_data")
        if e.seb:
            self._seb_quant(words, word_valid & ~kind_fold, quant_valid, quant_data)
        else:
            # quant16's latency, then the register of quant_data.
            quant_in = word_valid & ~kind_fold
            for stage in range(QUANT_PIPELINE):
                delayed = Signal(name=f"quant_valid_{stage}")
                m.d.sync += delayed.eq(quant_in)
                quant_in = delayed
            m.d.sync += quant_valid.eq(quant_in)
            for j in range(R):
                q = m.submodules[f"quant{j}"] = Quant16(bias=e.bias, pipeline=QUANT_PIPELINE)
                m.d.comb += [q.x.eq(words[32 * j:32 * j + 16]),
                             q.fmt.eq(Mux(s.out == OutFormat.E5M2, SourceFormat.E5M2,
                                          SourceFormat.E4M3)),
                             q.overflow.eq(Overflow.SAT)]
                m.d.sync += quant_data[8 * j:8 * j + 8].eq(q.y)

        # Memory ports driven by Muxes, not processes: Icarus never runs a process whose
        # inputs keep their initial values (chunked, say), which would leave it X.
        m.d.comb += [
            self.acc.write.addr.eq(Mux(fold_write, self.acc_nt + write_i, self.result_addr)),
            self.acc.write.data.eq(Mux(fold_write, fold_data, self.result_data)),
            self.acc.write.en.eq(Mux(fold_write, (1 << 4 * R) - 1,
                                     Mux(self.result_write, self.result_en, 0))),
            self.a.write.addr.eq(self.out_nt + write_i),
            # The R codes go to their group of the word's W x R (the MPE: W = 1).
            self.a.write.data.eq(quant_data.replicate(self.W)),
            self.a.write.en.eq(Cat(*((quant_valid & (self.group == g)).replicate(R)
                                     for g in range(self.W))))]
        with m.If(fold_write | quant_valid):
            m.d.sync += write_i.eq(write_i + 1)
        return sw

    def _seb_quant(self, words, valid_in, quant_valid, quant_data):
        """The FP8-SEB quantization of a word of R ``fp30`` sums (``quant30`` at
        ``out_bias``, in two stages), and the tracker over the output tensor: the largest
        floor(log2|x|) of the nonzero, non-NaN sums of columns below N, kept from a GEMM
        with ``track`` 0 on; ``next_bias`` applies the bias rule to ``out_bias``."""
        m, s, R, e = self.m, self.s, self.R, self.e
        # Two cycles: quant30's inner register, then quant_data's.
        halfway = Signal(name="quant_valid_0")
        m.d.sync += [halfway.eq(valid_in), quant_valid.eq(halfway)]
        best, found = None, None
        for j in range(R):
            lane = words[32 * j:32 * j + FP30.width]
            m.d.sync += quant_data[8 * j:8 * j + 8].eq(
                quantize_fp30(m, lane, s.out_bias, name=f"quant{j}", split=True))
            exp, counts = fp30_exponent(lane)
            here = Signal(name=f"track{j}")
            value = Signal(EXP_SHAPE, name=f"track{j}_exp")
            # Columns past N hold whatever the ACC word held: not part of the tensor.
            m.d.comb += [here.eq(valid_in & counts & (self.sweep_n0 + j < self.N)),
                         value.eq(exp)]
            if best is None:
                best, found = value, here
            else:
                take = here & (~found | (value > best))
                merged = Signal(EXP_SHAPE, name=f"track_max{j}")
                seen = Signal(name=f"track_seen{j}")
                m.d.comb += [merged.eq(Mux(take, value, best)), seen.eq(found | here)]
                best, found = merged, seen
        # A register between the lanes' maximum and the tracker (the clock of a board).
        word_max = Signal(EXP_SHAPE, name="track_word_max")
        word_seen = Signal(name="track_word_seen")
        m.d.sync += [word_max.eq(best), word_seen.eq(found)]
        with m.If(self.begin & ~s.track):
            m.d.sync += e.seen.eq(0)
        with m.Elif(word_seen & (~e.seen | (word_max > e.max_exp))):
            m.d.sync += [e.seen.eq(1), e.max_exp.eq(word_max)]
        m.d.comb += e.next_bias.eq(next_bias_logic(m, s.out_bias, e.max_exp, e.seen,
                                                   e.room))



class _SweepPorts:
    """The controller's handshake with the sweep: ``go`` (one cycle, with ``fold`` to pick
    the kind), ``running`` while in the sweep state, ``finished`` when every word is
    written."""

    def __init__(self):
        self.go = Signal(name="sweep_go")
        self.fold = Signal(name="sweep_fold_go")
        self.running = Signal(name="sweep_running")
        self.finished = Signal(name="sweep_finished")
