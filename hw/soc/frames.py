"""Frame receiver and frame sender of the host link (format: ``hw/soc/protocol.py``)."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.soc.protocol import CRC_INIT, CRC_POLY, MAX_PAYLOAD, SOF, Nak


def crc16_byte(m, crc, byte, name="crc"):
    """CRC-16/CCITT-FALSE of one more byte, as logic (matches ``protocol.crc16_byte``);
    each of the 8 steps is a named signal, so the expression stays small."""
    value = Signal(16, name=f"{name}_in")
    m.d.comb += value.eq(crc ^ Cat(Const(0, 8), byte))
    for step in range(8):
        following = Signal(16, name=f"{name}_step{step}")
        m.d.comb += following.eq(Cat(Const(0, 1), value[:15])
                                 ^ (Const(CRC_POLY, 16) & value[15].replicate(16)))
        value = following
    return value


RECEIVED = data.StructLayout({
    "ok": 1,            # a good frame (else ``reason`` says why it was refused)
    "command": 8,
    "length": range(MAX_PAYLOAD + 1),
    "reason": 8,        # a ``Nak`` when not ok
})


class FrameReceiver(wiring.Component):
    """Turns bytes into checked frames.

    ``bytes`` in; each frame (or each refused one) comes out on ``received``; a good
    frame's payload is in a buffer read through ``read_addr`` / ``read_data`` (one cycle
    of latency) until ``received`` is taken. No byte is taken meanwhile. A gap of
    ``timeout`` cycles inside a frame ends it with ``Nak.TIMEOUT``; a length over
    ``MAX_PAYLOAD`` ends it at once with ``Nak.ARGUMENT``; then the receiver hunts for the
    next start byte.
    """

    def __init__(self, timeout: int):
        if timeout < 1:
            raise ValueError(f"timeout must be at least 1 cycle, got {timeout}")
        self.timeout = timeout
        super().__init__({
            "bytes": In(stream.Signature(8)),
            "received": Out(stream.Signature(RECEIVED)),
            "read_addr": In(range(MAX_PAYLOAD)),
            "read_data": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        # Never read and written in one cycle (no byte is taken while a frame is out).
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=MAX_PAYLOAD, init=[],
                                                     attrs={"no_rw_check": 1})
        write = buffer.write_port()
        read = buffer.read_port()
        m.d.comb += [read.addr.eq(self.read_addr), self.read_data.eq(read.data)]

        byte = self.bytes.payload
        took = self.bytes.valid & self.bytes.ready
        m.d.comb += self.bytes.ready.eq(~self.received.valid)
        with m.If(self.received.valid & self.received.ready):
            m.d.sync += self.received.valid.eq(0)

        crc = Signal(16, init=CRC_INIT)
        crc_next = crc16_byte(m, crc, byte)
        command = Signal(8)
        length = Signal(range(MAX_PAYLOAD + 1))
        count = Signal(range(MAX_PAYLOAD + 1))
        crc_low = Signal(8)
        idle = Signal(range(self.timeout + 1))

        def finish(ok, reason=0):
            m.d.sync += [self.received.valid.eq(1), self.received.payload.ok.eq(ok),
                         self.received.payload.command.eq(command),
                         self.received.payload.length.eq(length),
                         self.received.payload.reason.eq(reason)]
            m.next = "HUNT"

        with m.FSM():
            with m.State("HUNT"):
                with m.If(took & (byte == SOF)):
                    m.d.sync += [crc.eq(CRC_INIT), idle.eq(0)]
                    m.next = "COMMAND"
            for state, action in (("COMMAND", "command"), ("LENGTH0", "length0"),
                                  ("LENGTH1", "length1"), ("PAYLOAD", "payload"),
                                  ("CRC0", "crc0"), ("CRC1", "crc1")):
                with m.State(state):
                    with m.If(took):
                        m.d.sync += idle.eq(0)
                        if action == "command":
                            m.d.sync += [command.eq(byte), crc.eq(crc_next)]
                            m.next = "LENGTH0"
                        elif action == "length0":
                            m.d.sync += [length.eq(byte), crc.eq(crc_next)]
                            m.next = "LENGTH1"
                        elif action == "length1":
                            full = Cat(length[:8], byte)
                            m.d.sync += [crc.eq(crc_next), count.eq(0)]
                            with m.If(full > MAX_PAYLOAD):
                                finish(0, Nak.ARGUMENT)
                            with m.Else():
                                m.d.sync += length.eq(full)
                                with m.If(full == 0):
                                    m.next = "CRC0"
                                with m.Else():
                                    m.next = "PAYLOAD"
                        elif action == "payload":
                            m.d.comb += [write.addr.eq(count), write.data.eq(byte),
                                         write.en.eq(1)]
                            m.d.sync += [crc.eq(crc_next), count.eq(count + 1)]
                            with m.If(count + 1 == length):
                                m.next = "CRC0"
                        elif action == "crc0":
                            m.d.sync += crc_low.eq(byte)
                            m.next = "CRC1"
                        else:
                            with m.If(Cat(crc_low, byte) == crc):
                                finish(1)
                            with m.Else():
                                finish(0, Nak.CRC)
                    with m.Elif(idle == self.timeout - 1):
                        finish(0, Nak.TIMEOUT)
                    with m.Else():
                        m.d.sync += idle.eq(idle + 1)
        return m


class FrameSender(wiring.Component):
    """Sends one answer frame per ``send`` request: ``command`` and a payload of ``length``
    bytes, fetched one at a time through ``fetch_addr`` / ``fetch_data``, then the CRC.
    ``fetch_data`` is taken two cycles after ``fetch_addr`` changes (so a source may
    register its read, or its read and a multiplexer after it) and must hold while
    ``fetch_addr`` does. Bytes go out on ``bytes``."""

    def __init__(self):
        super().__init__({
            "send": In(stream.Signature(data.StructLayout({
                "command": 8, "length": range(MAX_PAYLOAD + 1)}))),
            "fetch_addr": Out(range(MAX_PAYLOAD)),
            "fetch_data": In(8),
            "bytes": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        command = Signal(8)
        length = Signal(range(MAX_PAYLOAD + 1))
        count = Signal(range(MAX_PAYLOAD + 1))
        crc = Signal(16)
        out = Signal(8)
        out_valid = Signal()
        m.d.comb += [self.bytes.payload.eq(out), self.bytes.valid.eq(out_valid)]
        sent = out_valid & self.bytes.ready
        with m.If(sent):
            m.d.sync += out_valid.eq(0)

        next_byte = Signal(8)
        crc_next = crc16_byte(m, crc, next_byte)

        def emit(value, into_crc=True):
            m.d.comb += next_byte.eq(value)
            m.d.sync += [out.eq(value), out_valid.eq(1)]
            if into_crc:
                m.d.sync += crc.eq(crc_next)

        m.d.comb += self.fetch_addr.eq(count)
        with m.FSM() as fsm:
            # ready as a plain function of the state, not set inside it: Icarus leaves a
            # value set in a state's block X until the state first changes.
            m.d.comb += self.send.ready.eq(fsm.ongoing("IDLE"))
            with m.State("IDLE"):
                with m.If(self.send.valid):
                    m.d.sync += [command.eq(self.send.payload.command),
                                 length.eq(self.send.payload.length), count.eq(0),
                                 crc.eq(CRC_INIT)]
                    m.next = "SOF"
            with m.State("SOF"):
                with m.If(~out_valid | sent):
                    emit(SOF, into_crc=False)
                    m.next = "COMMAND"
            for state, value, nxt in (("COMMAND", command, "LENGTH0"),
                                      ("LENGTH0", length[:8], "LENGTH1"),
                                      ("LENGTH1", length[8:], "FETCH")):
                with m.State(state):
                    with m.If(~out_valid | sent):
                        emit(value)
                        m.next = nxt
            with m.State("FETCH"):                 # fetch_data is valid two cycles later
                with m.If(count == length):
                    m.next = "CRC0"
                with m.Else():
                    m.next = "FETCH_WAIT"
            with m.State("FETCH_WAIT"):
                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(~out_valid | sent):
                    emit(self.fetch_data)
                    m.d.sync += count.eq(count + 1)
                    m.next = "FETCH"
            with m.State("CRC0"):
                with m.If(~out_valid | sent):
                    emit(crc[:8], into_crc=False)
                    m.next = "CRC1"
            with m.State("CRC1"):
                with m.If(~out_valid | sent):
                    emit(crc[8:], into_crc=False)
                    m.next = "IDLE"
        return m
