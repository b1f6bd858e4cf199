"""The host link: UART, frame receiver and sender, and the sequence numbers with the
answer history that make a repeated request harmless (rules: ``hw/soc/protocol.py``)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.uart import check_divisor
from hw.soc.frames import FrameReceiver, FrameSender, check_timeout
from hw.soc.protocol import ACK, HISTORY, MAX_PAYLOAD, NAK, PURE, SEND_RING, Command, Nak
from hw.soc.uart import UartRx, UartTx

# What the executor gets: a request to execute (its payload through read_addr/read_data).
RECEIVED = data.StructLayout({"command": 8, "length": range(MAX_PAYLOAD + 1)})
# What the executor answers: ACK or NAK, and the payload length (the command answered
# included), the payload fetched through fetch_addr/fetch_data.
ANSWER = data.StructLayout({"command": 8, "length": range(MAX_PAYLOAD + 1)})
# One pulse per event, for the STATUS counters.
EVENTS = data.StructLayout({"crc_error": 1, "timeout": 1, "uart_error": 1, "overrun": 1,
                            "replayed": 1, "sequence": 1})
# An answer history entry: the command and how it was answered (NAK: with its reason).
ENTRY = data.StructLayout({"reason": 7, "nak": 1, "command": 8})
SYNC_ECHO = 8                      # SYNC echoes at most this many payload bytes


class HostLink(wiring.Component):
    """``rx`` / ``tx``: the UART pins (8N1, ``divisor`` clock cycles a bit); a frame with
    a gap of ``timeout`` cycles is dropped.

    The executor sees each request to execute on ``received`` (command, payload length;
    payload bytes at ``read_addr``, ``read_data`` a cycle later) and answers it on
    ``send`` (ACK or NAK, payload length), its payload fetched through ``fetch_addr`` /
    ``fetch_data`` (index 0: the command answered; the byte is taken ``FETCH_LATENCY``, 4,
    cycles after the address; the address holds until then). It takes ``received`` once
    its answer is fetched (``send`` ready again; its bytes may still be going out on the
    line); the next request is received meanwhile. Requests the link answers itself never
    reach the executor: a repeat of a state-changing request (its first answer again, from
    the history), a seq out of sequence (NAK SEQUENCE) and SYNC. ``events`` pulses for the
    STATUS counters. ``send_room``: answer bytes the sender takes now without waiting
    for the line (``FrameSender.room``).
    """

    def __init__(self, divisor: int, timeout: int):
        self.divisor, self.timeout = divisor, timeout
        check_divisor(divisor)           # now, not at elaboration
        check_timeout(timeout)
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "received": Out(stream.Signature(RECEIVED)),
            "read_addr": In(range(MAX_PAYLOAD)),
            "read_data": Out(8),
            "send": In(stream.Signature(ANSWER)),
            "fetch_addr": Out(range(MAX_PAYLOAD)),
            "fetch_data": In(8),
            "events": Out(EVENTS),
            "send_room": Out(range(SEND_RING // 2 + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(self.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self.divisor)
        m.submodules.receiver = receiver = FrameReceiver(self.timeout)
        m.submodules.sender = sender = FrameSender()
        m.d.comb += self.send_room.eq(sender.room)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.data, receiver.bytes)
        wiring.connect(m, sender.bytes, uart_tx.data)
        m.d.comb += [self.events.crc_error.eq(receiver.crc_error),
                     self.events.timeout.eq(receiver.timed_out),
                     self.events.uart_error.eq(uart_rx.frame_error),
                     self.events.overrun.eq(receiver.overrun | uart_rx.overrun)]

        # The history is indexed by seq: one block RAM, no bookkeeping of the window.
        m.submodules.history = history = memory.Memory(shape=ENTRY, depth=256, init=[])
        recall = history.read_port()
        record = history.write_port()

        head = receiver.frame.payload
        expected = Signal(8)
        behind = Signal(8)
        m.d.comb += [behind.eq(expected - head.seq), recall.addr.eq(head.seq)]
        is_pure = Signal()
        m.d.comb += is_pure.eq(0)
        for command in PURE:
            with m.If(head.code == command):
                m.d.comb += is_pure.eq(1)

        # The link's own answers: ACK/NAK, payload [command, first, then the echo (SYNC)
        # or expected (NAK SEQUENCE, the only NAK with a third byte)].
        own_nak = Signal()                   # NAK, else ACK
        own_length = Signal(range(SYNC_ECHO + 3))
        own_first = Signal(8)
        new = Signal()                       # the request executing is the expected one
        nak = Signal()                       # the executor's answer is a NAK
        first = Signal(8)                    # ... and its payload byte 1
        with m.If(sender.seen & (sender.fetch_addr == 1)):
            m.d.sync += first.eq(sender.seen_byte)

        own_byte = Signal(8)
        index = sender.fetch_addr
        m.d.sync += own_byte.eq(Mux(index == 0, head.code,
                                    Mux(index == 1, own_first,
                                        Mux(own_nak, expected, receiver.read_data))))
        m.d.comb += [sender.send.payload.seq.eq(head.seq), self.received.payload.command.eq(head.code),
                     self.received.payload.length.eq(head.length)]

        with m.FSM() as fsm:
            executing = fsm.ongoing("EXECUTE")
            m.d.comb += [
                self.received.valid.eq(executing),
                # The link's own answers read at most SYNC_ECHO bytes, from index 2.
                receiver.read_addr.eq(Mux(executing, self.read_addr,
                                          (index - 2)[:(SYNC_ECHO - 1).bit_length()])),
                self.read_data.eq(receiver.read_data),
                sender.send.valid.eq(Mux(executing, self.send.valid, fsm.ongoing("ANSWER"))),
                sender.send.payload.code.eq(Mux(executing, self.send.payload.command,
                                                Mux(own_nak, NAK, ACK))),
                sender.send.payload.length.eq(Mux(executing, self.send.payload.length,
                                                  own_length)),
                self.send.ready.eq(executing & sender.send.ready),
                sender.fetch_data.eq(Mux(executing, self.fetch_data, own_byte)),
                self.fetch_addr.eq(index),
            ]
            with m.State("IDLE"):
                with m.If(receiver.frame.valid):        # the history entry comes next cycle
                    m.next = "CLASSIFY"
            with m.State("CLASSIFY"):
                entry = recall.data
                repeat = (behind >= 1) & (behind <= HISTORY)
                m.d.sync += [new.eq(behind == 0), first.eq(0)]

                def own(nak, length, first_byte):
                    m.d.sync += [own_nak.eq(nak), own_length.eq(length),
                                 own_first.eq(first_byte)]
                    m.next = "ANSWER"

                with m.If(head.code == Command.SYNC):
                    own(0, 2 + Mux(head.length > SYNC_ECHO, SYNC_ECHO, head.length), expected)
                with m.Elif((behind == 0) | (repeat & is_pure)):
                    m.next = "EXECUTE"
                with m.Elif(repeat & (entry.command == head.code)):
                    m.d.comb += self.events.replayed.eq(1)
                    own(entry.nak, Mux(entry.nak, 2, 1), entry.reason)
                with m.Else():
                    m.d.comb += self.events.sequence.eq(1)
                    own(1, 3, Nak.SEQUENCE)
            with m.State("EXECUTE"):
                with m.If(self.send.valid & self.send.ready):
                    m.d.sync += nak.eq(self.send.payload.command == NAK)
                with m.If(self.received.ready):
                    m.d.comb += receiver.frame.ready.eq(1)
                    with m.If(new):
                        m.d.comb += [record.addr.eq(head.seq), record.en.eq(1),
                                     record.data.command.eq(head.code),
                                     record.data.nak.eq(nak), record.data.reason.eq(first)]
                        m.d.sync += expected.eq(expected + 1)
                    m.next = "IDLE"
            with m.State("ANSWER"):
                with m.If(sender.send.ready):
                    m.next = "SENT"
            with m.State("SENT"):
                with m.If(sender.send.ready):               # every byte fetched
                    m.d.comb += receiver.frame.ready.eq(1)
                    m.next = "IDLE"
        return m
