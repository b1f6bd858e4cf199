"""The on-chip system a board runs, in three parts with one job each: the host link
(``hw/soc/link.py``: UART, framing, sequence numbers, repeats), the command executor
(here) and the GEMM engine (``hw/soc/gemm.py``: the buffers, the array and the controller
that runs a whole GEMM)."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Dataflow
from golden.formats import E4M3
from golden.params import ROOM, WAYS
from hw.soc.buffers import BufferId
from hw.soc.gemm import (A_WORDS, ACC_WORDS, B_WORDS, CHUNKING, ENGINE, GEMM_SETTINGS, SPRAM,
                         GemmEngine)
from hw.soc.link import HostLink
from hw.soc.protocol import (ACK, ANSWER_OVERHEAD, CYCLES_BYTES, ENGINES, GEMM_BYTES,
                             HISTORY, MAX_PAYLOAD, NAK,
                             READ_ARGUMENTS, RECEIVE_BANKS, STATUS_BYTES, STATUS_COUNTERS,
                             VERSION, WRITE_HEADER, Command, Nak, ReadView, pack_identity)
from hw.units.mpe import MULTIPLIER as MPE_MULTIPLIER

SETTING_LIMIT = (1 << 16) - 1       # M, K, N and offsets are 16-bit settings


def largest_dimensions(rows: int, a_words: int, b_words: int, acc_words: int,
                       ways: int = 1):
    """The largest M, K and N of a GEMM on chip (each with the other two at their
    smallest), as ``hw.schedule.EngineLayout`` counts the words: M rows take a word of A
    and of ACC each; K takes a word of B a k (a chunk of ``ways`` k on the FP8-SEB engine)
    and a word of A a tile of R; N takes a word of B and of ACC a tile of R."""
    max_m = min(a_words, acc_words)
    max_k = ways * min(b_words, rows * a_words, SETTING_LIMIT)
    max_n = rows * min(b_words, acc_words)
    return tuple(min(x, SETTING_LIMIT) for x in (max_m, max_k, max_n))


class ArraySystem(wiring.Component):
    """``rx`` / ``tx``: the UART pins (8N1, ``divisor`` clock cycles a bit). ``clock_khz``
    is only reported by IDENTIFY (with the divisor it gives the baud rate; 0: unknown, as
    in simulation). The array is ``rows`` x ``cols`` (square: a result word becomes an A
    word), the buffers ``a_words``, ``b_words``, ``acc_words`` words; ``chunking`` builds
    the chunk-based accumulation hardware; ``spram`` makes A and B single-ported (the
    iCE40 UP5K's SPRAM).

    Commands (``hw/soc/protocol.py``; the README lists every payload): WRITE and READ
    reach the engine's buffers by byte address (READ with ``ReadView.LOW16`` sends only
    the low 2 bytes of each 4-byte value: fp8 results as 16-bit codes); GEMM hands its
    settings to the engine and answers once the engine has accepted them (NAK ARGUMENT
    if it refused them), after the previous GEMM has ended; the GEMM runs on while the
    next WRITE and READ are executed beside it, pausing the engine, unless they touch a
    half of a buffer it uses (``GemmEngine.uses``): those wait for it to end, so every
    request sees the buffers as if the ones before it had ended. STATUS adds the
    engine's busy cycles to the counters. ``gate_clock``: for simulation only
    (``WeightStationaryArray``).
    """

    def __init__(self, rows: int, cols: int, *, pipeline: int = 2, bias: int = E4M3.bias,
                 divisor: int = 104, timeout_bits: int = 100, clock_khz: int = 0,
                 a_words: int = A_WORDS.default, b_words: int = B_WORDS.default,
                 acc_words: int = ACC_WORDS.default, chunking: int = CHUNKING.default,
                 spram: int = SPRAM.default, engine: str = ENGINE.default,
                 ways: int = WAYS.default, room: int = ROOM.default,
                 gate_clock: bool = False, multiplier: str = MPE_MULTIPLIER.default):
        self.engine = GemmEngine(rows, cols, bias=bias, pipeline=pipeline, a_words=a_words,
                                 b_words=b_words, acc_words=acc_words, chunking=chunking,
                                 spram=spram, engine=engine, ways=ways, room=room,
                                 gate_clock=gate_clock, multiplier=multiplier)
        seb = self.engine.seb
        if seb:
            bias = 0                          # no e4m3 on the FP8-SEB engine
        self.rows, self.cols, self.pipeline, self.bias = rows, cols, pipeline, bias
        self.divisor, self.timeout = divisor, timeout_bits * divisor
        self.sizes = tuple(self.engine.sizes[n] for n in BufferId)
        if not isinstance(clock_khz, int) or not 0 <= clock_khz < 1 << 32:
            raise ValueError(f"clock_khz must be an integer in 0..{(1 << 32) - 1}, "
                             f"got {clock_khz!r}")
        max_m, max_k, max_n = largest_dimensions(rows, a_words, b_words, acc_words,
                                                 self.engine.ways)
        self.identity = pack_identity(
            version=VERSION, rows=rows, cols=cols, dataflow=Dataflow.WS, pipeline=pipeline,
            bias=bias, a_words=a_words, b_words=b_words, acc_words=acc_words, max_m=max_m,
            max_k=min(max_k, SETTING_LIMIT), max_n=max_n, chunking=chunking,
            divisor=divisor, clock_khz=clock_khz, banks=RECEIVE_BANKS, history=HISTORY,
            max_payload=MAX_PAYLOAD, engine=ENGINES.index(self.engine.engine),
            ways=self.engine.ways if seb else 0, room=self.engine.room if seb else 0)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = HostLink(self.divisor, self.timeout)
        m.submodules.engine = engine = self.engine
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
        self._executor(m, link, engine)
        return m

    def _executor(self, m, link, engine):
        got = link.received.payload
        n_args = max(GEMM_BYTES, READ_ARGUMENTS, WRITE_HEADER)
        args = Signal(8 * n_args)
        arg_index = Signal(range(n_args + 1))
        buffer_no = args[:8]
        # Byte addresses are 4 bytes on the wire; the logic is only as wide as the largest
        # buffer needs (an address past that is refused by ``address_high``).
        abits = max(self.sizes).bit_length()
        address = args[8:8 + abits]
        address_high = args[8 + abits:40].any()
        count = args[40:56]
        view = args[56:64]
        data_length = Signal(range(MAX_PAYLOAD + 1))
        m.d.comb += data_length.eq(got.length - WRITE_HEADER)
        # COPY's last index, registered (the frame holds still while it executes): no
        # subtraction before COPY's end.
        copy_end = Signal(range(MAX_PAYLOAD + 2), name="copy_end")
        m.d.sync += copy_end.eq(data_length + 1)

        answer_command = Signal(8)           # ACK or NAK
        answer_length = Signal(range(MAX_PAYLOAD + 1))
        answer_reason = Signal(8)

        # Counters reported by STATUS, 16 bits each; bump() raises one's flag.
        counters = {n: Signal(16, name=f"count_{n}") for n in STATUS_COUNTERS}
        bumped = {n: Signal(name=f"bump_{n}") for n in STATUS_COUNTERS}
        for name, counter in counters.items():
            with m.If(bumped[name]):
                m.d.sync += counter.eq(counter + 1)

        def bump(name):
            m.d.comb += bumped[name].eq(1)

        for event, counter in (("crc_error", "crc_errors"), ("timeout", "timeouts"),
                               ("uart_error", "uart_errors"), ("overrun", "overruns"),
                               ("replayed", "replayed"), ("sequence", "sequence")):
            with m.If(getattr(link.events, event)):
                bump(counter)

        # Answer payload bytes: index 0 is the command answered, then the data.
        fetch = link.fetch_addr
        fetch_first = Signal()
        fetch_index = Signal(range(MAX_PAYLOAD))
        m.d.sync += [fetch_first.eq(fetch == 0), fetch_index.eq(fetch - 1)]
        identity = Signal(8 * len(self.identity))
        m.d.comb += identity.eq(int.from_bytes(self.identity, "little"))
        # The tracker's bytes (``TRACKER_FIELDS``): signed ones sign-extended to 8 bits.
        tracker = Cat(engine.max_exp, engine.max_exp[-1].replicate(8 - len(engine.max_exp)),
                      engine.seen, Const(0, 7),
                      engine.next_bias, engine.next_bias[-1].replicate(8 - len(engine.next_bias)))
        status = Cat(*counters.values(), engine.cycles, tracker)
        assert len(status) == 8 * STATUS_BYTES and len(engine.cycles) == 8 * CYCLES_BYTES
        table = Signal(8)
        m.d.comb += table.eq(Mux(got.command == Command.IDENTIFY,
                                 identity.word_select(fetch_index, 8),
                                 status.word_select(fetch_index, 8)))
        # Registered: a block RAM's output, the buffer multiplexer and the sender's CRC
        # would not fit in one cycle on the ULX3S (the link takes the byte four cycles late:
        # the buffer's input register, the block RAM, the buffer's byte register, this one).
        m.d.sync += link.fetch_data.eq(
            Mux(fetch_first, got.command,
                Mux(answer_command == NAK, answer_reason,
                    Mux(got.command == Command.READ, engine.host.read_data, table))))
        m.d.comb += [link.send.payload.command.eq(answer_command),
                     link.send.payload.length.eq(answer_length)]

        # The engine's host byte port: WRITE drives it in COPY, READ while its answer's
        # bytes are fetched (index f + 1 is read at f). Both only while the engine is idle
        # or paused; the buffers do an access a cycle after it is offered, and COPY's last
        # cycle (no write offered) keeps the pause for the last write.
        host = engine.host
        host_index = Signal(range(MAX_PAYLOAD + 1))
        copy_valid = Signal()
        m.d.comb += host.buffer.eq(buffer_no)
        # No adder between the link's fetch address and the block RAMs (on the ULX3S the
        # buffers spread over the ECP5's die): the link fetches bytes in order and holds
        # each address for at least 3 cycles, so ``next_read`` (registered: the buffer
        # address of fetch index f + 1 while f is fetched) is the address in the first
        # cycle of a new index, and ``held_read`` keeps it after that.
        view_next = Signal(abits)
        m.d.comb += view_next.eq(address + fetch)
        next_read = Signal(abits + 1)
        m.d.sync += next_read.eq(Mux(view == ReadView.LOW16,
                                     Cat(view_next[0], Const(0, 1), view_next[1:]), view_next))
        fetch_seen = Signal.like(fetch)
        m.d.sync += fetch_seen.eq(fetch)
        held_read = Signal(abits + 1)
        read_address = Signal(abits + 1)
        m.d.comb += read_address.eq(Mux(fetch != fetch_seen, next_read, held_read))
        m.d.sync += held_read.eq(read_address)
        write_address = Signal(abits)                # WRITE's next byte, counted up

        # Argument checks, registered from CHECK to DISPATCH so that none is in series
        # with the decisions there. The end of a WRITE or READ is checked on the bytes it
        # touches: ``view_end`` in READ's LOW16 view is half the buffer's bytes.
        sizes = [Const(size, abits + 1) for size in self.sizes]
        size_of = Mux(buffer_no == BufferId.A, sizes[BufferId.A],
                      Mux(buffer_no == BufferId.B, sizes[BufferId.B], sizes[BufferId.ACC]))
        is_read = got.command == Command.READ
        low16 = is_read & (view == ReadView.LOW16)
        limit = Mux(low16, size_of >> 1, size_of)
        past_end = Signal()
        m.d.sync += past_end.eq(address_high
                                | ((address + Mux(is_read, count, data_length)) > limit))
        bad_read = Signal()
        m.d.sync += bad_read.eq((got.length != READ_ARGUMENTS) | (buffer_no > max(BufferId))
                                | (count == 0) | (count > MAX_PAYLOAD - 1)
                                | (view > max(ReadView))
                                | ((view == ReadView.LOW16) & (buffer_no != BufferId.ACC)))
        bad_write = Signal()
        m.d.sync += bad_write.eq((got.length <= WRITE_HEADER) | (buffer_no > max(BufferId)))
        # The halves of its buffer a WRITE or READ touches (the engine's ``half_words``
        # in bytes; half that in the LOW16 view): with the halves a running GEMM uses, it
        # says whether the access must wait for the GEMM or may run beside it.
        halves = {n: Const(engine.half_words[n] * engine.buffers[n].stride, abits + 1)
                  for n in BufferId}
        half_of = Mux(buffer_no == BufferId.A, halves[BufferId.A],
                      Mux(buffer_no == BufferId.B, halves[BufferId.B], halves[BufferId.ACC]))
        half_at = Mux(low16, half_of >> 1, half_of)
        touch_lower, touch_upper = Signal(), Signal()
        m.d.sync += [touch_lower.eq(address < half_at),
                     touch_upper.eq(address + Mux(is_read, count, data_length) > half_at)]
        used = engine.uses.word_select(buffer_no[:2], 2)
        conflict = (touch_lower & used[0]) | (touch_upper & used[1])
        access_read = Signal()       # GRANT: for a READ (else a WRITE)
        # A READ beside a GEMM pauses the engine only once the sender can take its whole
        # answer at once (else the pause would last until the line had sent the rest).
        room = Signal()
        m.d.sync += room.eq(link.send_room >= count + ANSWER_OVERHEAD)
        may_pause = ~conflict & (room | ~access_read)

        settings = Signal(GEMM_SETTINGS)
        m.d.comb += [settings.eq(args[:GEMM_SETTINGS.size]),
                     engine.start.payload.eq(settings)]

        with m.FSM() as fsm:
            # The engine pauses while a WRITE copies or a READ's answer is fetched beside a
            # running GEMM (it only matters while the engine is busy).
            reading = (got.command == Command.READ) & (fsm.ongoing("ANSWER")
                                                        | fsm.ongoing("SENDING"))
            m.d.comb += [
                link.send.valid.eq(fsm.ongoing("ANSWER")),
                link.received.ready.eq(fsm.ongoing("SENDING") & link.send.ready),
                engine.start.valid.eq(fsm.ongoing("START")),
                engine.pause.eq((fsm.ongoing("GRANT") & may_pause) | fsm.ongoing("COPY")
                                | reading),
            ]
            with m.State("WAIT"):
                with m.If(link.received.valid):
                    m.d.sync += arg_index.eq(0)
                    m.next = "ARGS"
            with m.State("ARGS"):                    # payload bytes 0..n_args-1 into args
                m.d.comb += link.read_addr.eq(arg_index)
                m.next = "ARG"
            with m.State("ARG"):
                # Shifted in from the top: after n_args bytes, byte i is at bits 8i.
                m.d.sync += args.eq(Cat(args[8:], Mux(arg_index < got.length,
                                                      link.read_data, 0)))
                m.d.sync += arg_index.eq(arg_index + 1)
                with m.If(arg_index == n_args - 1):
                    m.next = "CHECK"
                with m.Else():
                    m.next = "ARGS"

            def refuse(reason):
                m.d.sync += [answer_command.eq(NAK), answer_length.eq(2),
                             answer_reason.eq(reason)]
                bump("refused")
                m.next = "ANSWER"

            def accept(length=1):
                m.d.sync += [answer_command.eq(ACK), answer_length.eq(length)]
                bump("frames")
                m.next = "ANSWER"

            with m.State("CHECK"):
                m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.Switch(got.command):
                    with m.Case(Command.IDENTIFY, Command.STATUS):
                        with m.If(got.length != 0):
                            refuse(Nak.ARGUMENT)
                        with m.Elif(got.command == Command.IDENTIFY):
                            accept(1 + len(self.identity))
                        with m.Else():
                            accept(1 + STATUS_BYTES)
                    with m.Case(Command.WRITE):
                        with m.If(bad_write | past_end):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.d.sync += access_read.eq(0)
                            m.next = "GRANT"
                    with m.Case(Command.READ):
                        with m.If(bad_read | past_end):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.d.sync += access_read.eq(1)
                            m.next = "GRANT"
                    with m.Case(Command.GEMM):
                        with m.If(got.length != GEMM_BYTES):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.next = "START"
                    with m.Default():
                        refuse(Nak.COMMAND)

            # WRITE and READ beside a running GEMM: one that touches a half of its buffer
            # the GEMM uses waits for the GEMM to end; any other pauses the engine (which
            # stops using that buffer's ports) and goes on once it has.
            with m.State("GRANT"):
                with m.If(~engine.busy | (may_pause & engine.paused)):
                    with m.If(access_read):
                        accept(1 + count)
                    with m.Else():
                        m.d.sync += [host_index.eq(0), write_address.eq(address)]
                        m.next = "COPY"

            # WRITE: payload bytes WRITE_HEADER.. into the buffer, one a cycle after its
            # read.
            with m.State("COPY"):
                m.d.comb += link.read_addr.eq(host_index + WRITE_HEADER)
                m.d.sync += [copy_valid.eq(host_index < data_length),
                             host_index.eq(host_index + 1)]
                with m.If(copy_valid):
                    m.d.sync += write_address.eq(write_address + 1)
                    m.d.comb += [host.addr.eq(write_address), host.write.eq(1),
                                 host.data.eq(link.read_data)]
                with m.If(host_index == copy_end):
                    m.d.sync += copy_valid.eq(0)
                    accept()

            # GEMM: it starts once the previous one has ended; the engine checks the
            # settings itself and refuses what it cannot run. The answer comes as soon as
            # the engine has accepted them: the GEMM runs on while the next requests are
            # executed.
            with m.State("START"):
                with m.If(engine.start.ready):
                    bump("runs")
                    m.next = "CHECKING"
            with m.State("CHECKING"):
                with m.If(engine.accepted):
                    accept()
                with m.Elif(engine.done):
                    refuse(Nak.ARGUMENT)

            # Answer, then let the receiver take the next frame.
            with m.State("ANSWER"):
                with m.If(link.send.ready):
                    m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(link.send.ready):
                    m.next = "WAIT"

        with m.If(~fsm.ongoing("COPY")):
            m.d.comb += host.addr.eq(read_address)
