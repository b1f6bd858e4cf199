"""The on-chip system a board runs: UART host link, byte buffers, and a weight-stationary
MPE array with the controller that runs one pass of it per ``RUN`` command."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import Dataflow, Mode, SourceFormat
from golden.formats import E4M3
from hw.array import WeightStationaryArray
from hw.soc.link import HostLink
from hw.soc.protocol import (ACK, HISTORY, MAX_PAYLOAD, NAK, RECEIVE_BANKS, STATUS_COUNTERS,
                             VERSION, Buffer, Command, Nak, pack_identity, row_stride)


class RowBuffer:
    """A ``lib.memory`` buffer of rows, ``lanes`` bytes each (a power of 2), with one read
    and one write port, each shared between the host link and the controller (never at
    the same time for one port). The host sees bytes: byte address ``a`` is lane
    ``a % lanes`` of row ``a // lanes``; the controller reads or writes a whole row a
    cycle."""

    def __init__(self, m, name, lanes, depth):
        assert lanes == row_stride(lanes)
        self.lanes, self.lane_bits = lanes, lanes.bit_length() - 1
        # The ports never touch one row in the same cycle: no_rw_check spares Yosys the
        # bypass logic (registers and a comparator a bit) that would make it safe.
        m.submodules[f"buffer_{name}"] = mem = memory.Memory(
            shape=8 * lanes, depth=depth, init=[], attrs={"no_rw_check": 1})
        self.read = mem.read_port()
        self.write = mem.write_port(granularity=8)
        self.lane_read = Signal(range(lanes), name=f"lane_read_{name}")

    def host_write(self, m, address, byte):
        """Write one byte at a byte address (comb assignments, for this cycle)."""
        lane = address[:self.lane_bits] if self.lane_bits else 0
        m.d.comb += [self.write.addr.eq(address >> self.lane_bits),
                     self.write.data.eq(byte.replicate(self.lanes)),
                     self.write.en.eq(1 << lane)]

    def host_read(self, m, address):
        """Read the byte at a byte address; it is ``host_data`` a cycle later."""
        m.d.comb += self.read.addr.eq(address >> self.lane_bits)
        if self.lane_bits:
            m.d.sync += self.lane_read.eq(address[:self.lane_bits])

    @property
    def host_data(self):
        if self.lanes == 1:
            return self.read.data
        return self.read.data.word_select(self.lane_read, 8)


class ArraySystem(wiring.Component):
    """``rx`` / ``tx``: the UART pins (8N1, ``divisor`` clock cycles a bit), through the
    host link (``hw/soc/link.py``: framing, sequence numbers, repeats) to the command
    executor here. ``clock_khz`` is only reported by IDENTIFY (with the divisor it gives
    the baud rate; 0: not known, as in simulation).

    Buffers (byte addresses, little-endian words), for a ``rows`` x ``cols`` array, each
    row padded to a power of 2 of bytes (``protocol.row_stride``): ``A`` holds ``max_m``
    rows of ``rows`` codes (row i at ``i * row_stride(rows)``); ``B`` the weight tile,
    ``rows`` rows of ``cols`` codes (row k at ``k * row_stride(cols)``); ``C`` ``max_m``
    rows of ``cols`` 32-bit sums (row i at ``i * 4 * row_stride(cols)``). ``RUN``
    (payload: mode, fmt_a, fmt_b, active rows, M as 2 bytes) loads B as the weights (rows
    past ``active`` pass the sums through), streams rows 0..M-1 of A with the sums in C
    through the array, a row a buffer read, and writes the results back into C, a row a
    cycle, then answers. See ``hw/soc/protocol.py`` for the frames and the README for
    every command's payload.
    """

    def __init__(self, rows: int, cols: int, *, max_m: int = 64, pipeline: int = 2,
                 bias: int = E4M3.bias, divisor: int = 104, timeout_bits: int = 100,
                 clock_khz: int = 0):
        self.rows, self.cols, self.max_m = rows, cols, max_m
        self.pipeline, self.bias, self.divisor = pipeline, bias, divisor
        self.timeout = timeout_bits * divisor
        self.lanes = (row_stride(rows), row_stride(cols), 4 * row_stride(cols))
        self.depths = (max_m, rows, max_m)
        self.sizes = tuple(lanes * depth for lanes, depth in zip(self.lanes, self.depths))
        if max(self.sizes) > 1 << 16:
            raise ValueError(f"buffers of {max(self.sizes)} bytes do not fit 16-bit addresses")
        if not isinstance(clock_khz, int) or not 0 <= clock_khz < 1 << 16:
            raise ValueError(f"clock_khz must be an integer in 0..65535, got {clock_khz!r}")
        self.identity = pack_identity(
            version=VERSION, rows=rows, cols=cols, dataflow=Dataflow.WS, pipeline=pipeline,
            bias=bias, max_m=max_m, size_a=self.sizes[0], size_b=self.sizes[1],
            size_c=self.sizes[2], divisor=divisor, clock_khz=clock_khz, banks=RECEIVE_BANKS,
            history=HISTORY, max_payload=MAX_PAYLOAD)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        m.submodules.link = link = HostLink(self.divisor, self.timeout)
        m.submodules.array = array = WeightStationaryArray(R, C, bias=self.bias,
                                                           pipeline=self.pipeline)
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
        buffers = [RowBuffer(m, name, lanes, depth)
                   for name, lanes, depth in zip((b.name for b in Buffer), self.lanes,
                                                   self.depths)]
        return self._executor(m, link, array, buffers)

    def _executor(self, m, link, array, buffers):
        R, C = self.rows, self.cols
        got = link.received.payload
        args = [Signal(8, name=f"arg{i}") for i in range(6)]
        arg_index = Signal(range(7))
        buffer_no = args[0]
        address = Cat(args[1], args[2])
        count = Cat(args[3], args[4])
        data_length = Signal(range(MAX_PAYLOAD + 1))
        m.d.comb += data_length.eq(got.length - 3)

        answer_command = Signal(8)           # ACK or NAK
        answer_length = Signal(range(MAX_PAYLOAD + 1))
        answer_reason = Signal(8)

        # Counters reported by STATUS, 16 bits each.
        counters = {n: Signal(16, name=f"count_{n}") for n in STATUS_COUNTERS}

        # One incrementer a counter: bump() raises its flag wherever the event happens.
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
        status = Cat(*counters.values())
        table = Signal(8)
        m.d.comb += table.eq(Mux(got.command == Command.IDENTIFY,
                                 identity.word_select(fetch_index, 8),
                                 status.word_select(fetch_index, 8)))
        read_data = Signal(8)
        reading = Signal(range(len(buffers)))
        m.d.comb += read_data.eq(Mux(reading == 0, buffers[0].host_data,
                                     Mux(reading == 1, buffers[1].host_data,
                                         buffers[2].host_data)))
        # Registered: a block RAM's output, a byte lane multiplexer and the sender's CRC
        # would not fit in one cycle at 60 MHz (the sender waits two cycles for the byte).
        m.d.sync += link.fetch_data.eq(
            Mux(fetch_first, got.command,
                Mux(answer_command == NAK, answer_reason,
                    Mux(got.command == Command.READ, read_data, table))))
        m.d.comb += [link.send.payload.command.eq(answer_command),
                     link.send.payload.length.eq(answer_length)]

        # RUN: the controller around the array. ------------------------------------------
        max_m = self.max_m
        run_m = Signal(range(max_m + 1))
        active_rows = Signal(range(R + 1))
        run_mode = Signal(2)
        run_fmt_a = Signal(1)
        run_fmt_b = Signal(1)
        m.d.comb += [array.mode.eq(run_mode), array.fmt_a.eq(run_fmt_a),
                     array.fmt_b.eq(run_fmt_b)]
        weight_row = Signal(range(R + 1))
        row_in = Signal(range(max_m + 1))          # rows of A sent
        row_out = Signal(range(max_m + 1))         # result rows written back

        # Results into C, a row a cycle, straight from the array's result registers.
        results = array.results
        m.d.comb += results.ready.eq(1)
        with m.If(results.valid):
            m.d.comb += [buffers[2].write.addr.eq(row_out),
                         buffers[2].write.data.eq(results.payload.as_value()),
                         buffers[2].write.en.eq((1 << (4 * C)) - 1)]
            m.d.sync += row_out.eq(row_out + 1)

        host_index = Signal(range(MAX_PAYLOAD))
        copy_valid = Signal()

        with m.FSM() as fsm:
            m.d.comb += [
                array.weights.valid.eq(fsm.ongoing("WEIGHT_SEND")),
                array.weights.payload.b.eq(buffers[1].read.data),
                array.weights.payload.active.eq(weight_row < active_rows),
                array.operands.valid.eq(fsm.ongoing("ROW_SEND")),
                array.operands.payload.a.eq(buffers[0].read.data),
                array.operands.payload.c.eq(buffers[2].read.data),
                array.operands.payload.first.eq(row_in == 0),
                # A beat's row stays on the read ports until the beat is taken.
                buffers[0].read.en.eq(~fsm.ongoing("ROW_SEND")),
                buffers[1].read.en.eq(~fsm.ongoing("WEIGHT_SEND")),
                buffers[2].read.en.eq(~fsm.ongoing("ROW_SEND")),
                link.send.valid.eq(fsm.ongoing("ANSWER")),
                link.received.ready.eq(fsm.ongoing("SENDING") & link.send.ready),
            ]
            with m.State("WAIT"):
                with m.If(link.received.valid):
                    m.d.sync += arg_index.eq(0)
                    m.next = "ARGS"
            with m.State("ARGS"):                        # payload bytes 0..5 into args
                m.d.comb += link.read_addr.eq(arg_index)
                m.next = "ARG"
            with m.State("ARG"):
                with m.Switch(arg_index):
                    for i in range(6):
                        with m.Case(i):
                            m.d.sync += args[i].eq(link.read_data)
                m.d.sync += arg_index.eq(arg_index + 1)
                with m.If(arg_index == 5):
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

            sizes = [Const(size, 17) for size in self.sizes]
            size_of = Mux(buffer_no == Buffer.A, sizes[Buffer.A],
                          Mux(buffer_no == Buffer.B, sizes[Buffer.B], sizes[Buffer.C]))
            # The end of the bytes a WRITE or READ touches (one adder for both).
            # The argument checks are registered (from CHECK to DISPATCH), so that none of
            # them is in series with the decisions of DISPATCH.
            past_end = Signal()
            m.d.sync += past_end.eq(
                address + Mux(got.command == Command.READ, count, data_length) > size_of)
            run_rows = Cat(args[4], args[5])
            bad_run = Signal()
            m.d.sync += bad_run.eq((got.length != 6) | (args[0] > max(Mode))
                                   | (args[1] > max(SourceFormat)) | (args[2] > max(SourceFormat))
                                   | (args[3] > R) | (run_rows == 0)
                                   | (run_rows > self.max_m))
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
                            accept(1 + 2 * len(STATUS_COUNTERS))
                    with m.Case(Command.WRITE):
                        with m.If((got.length < 3) | (buffer_no > max(Buffer)) | past_end):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.d.sync += [host_index.eq(0), reading.eq(buffer_no)]
                            m.next = "COPY"
                    with m.Case(Command.READ):
                        with m.If((got.length != 5) | (buffer_no > max(Buffer))
                                  | (count > MAX_PAYLOAD - 1) | past_end):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.d.sync += reading.eq(buffer_no)
                            accept(1 + count)
                    with m.Case(Command.RUN):
                        with m.If(bad_run):
                            refuse(Nak.ARGUMENT)
                        with m.Else():
                            m.d.sync += [run_mode.eq(args[0]), run_fmt_a.eq(args[1]),
                                         run_fmt_b.eq(args[2]), active_rows.eq(args[3]),
                                         run_m.eq(run_rows), weight_row.eq(0),
                                         row_in.eq(0), row_out.eq(0)]
                            bump("runs")
                            m.next = "WEIGHT_READ"
                    with m.Default():
                        m.d.sync += [answer_command.eq(NAK), answer_length.eq(2),
                                     answer_reason.eq(Nak.COMMAND)]
                        bump("refused")
                        m.next = "ANSWER"

            # WRITE: frame bytes 3.. into the buffer, one a cycle after its read.
            with m.State("COPY"):
                m.d.comb += link.read_addr.eq(host_index + 3)
                m.d.sync += [copy_valid.eq(host_index < data_length),
                             host_index.eq(host_index + 1)]
                with m.If(copy_valid):
                    for n, buf in enumerate(buffers):
                        with m.If(buffer_no == n):
                            buf.host_write(m, address + host_index - 1, link.read_data)
                with m.If(host_index == data_length + 1):
                    m.d.sync += copy_valid.eq(0)
                    accept()

            # RUN: row r of B is weight beat r; row i of A and of C is operand beat i. Each
            # buffer row is read once (its read port holds it until the beat is taken).
            with m.State("WEIGHT_READ"):
                m.d.comb += buffers[1].read.addr.eq(weight_row)
                m.next = "WEIGHT_SEND"
            with m.State("WEIGHT_SEND"):
                with m.If(array.weights.ready):
                    m.d.sync += weight_row.eq(weight_row + 1)
                    with m.If(weight_row == R - 1):
                        m.next = "ROW_READ"
                    with m.Else():
                        m.next = "WEIGHT_READ"
            with m.State("ROW_READ"):
                m.d.comb += [buffers[0].read.addr.eq(row_in), buffers[2].read.addr.eq(row_in)]
                m.next = "ROW_SEND"
            with m.State("ROW_SEND"):
                with m.If(array.operands.ready):
                    m.d.sync += row_in.eq(row_in + 1)
                    with m.If(row_in == run_m - 1):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "ROW_READ"
            with m.State("DRAIN"):
                with m.If(row_out == run_m):
                    accept()

            # Answer, then let the receiver take the next frame.
            with m.State("ANSWER"):
                with m.If(link.send.ready):
                    m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(link.send.ready):
                    m.next = "WAIT"

        # READ answers fetch from the buffer: the byte for fetch index f + 1 is read at f.
        for n, buf in enumerate(buffers):
            with m.If((got.command == Command.READ) & (reading == n)):
                buf.host_read(m, address + fetch - 1)
        return m
