"""Frame receiver and frame sender of the host link: COBS and CRC-32 in hardware (format:
``hw/soc/protocol.py``). The sequence numbers are the link's business (``hw/soc/link.py``);
here a frame is seq, code and payload."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.soc.protocol import (CRC_BYTES, CRC_INIT, CRC_POLY, CRC_RESIDUE, DELIMITER,
                             HEADER_BYTES, MAX_BODY, MAX_PAYLOAD, RECEIVE_BANKS)

ADDRESS_BITS = (MAX_PAYLOAD - 1).bit_length()
assert 1 << ADDRESS_BITS == MAX_PAYLOAD
FRAME = data.StructLayout({"seq": 8, "code": 8, "length": range(MAX_PAYLOAD + 1)})


def crc32_byte(m, crc, byte, name="crc"):
    """The CRC-32 register after one more byte, as logic (``protocol.crc32_byte``); each
    of the 8 steps is a named signal, so the expression stays small."""
    value = Signal(32, name=f"{name}_in")
    m.d.comb += value.eq(crc ^ byte)
    for step in range(8):
        following = Signal(32, name=f"{name}_step{step}")
        m.d.comb += following.eq((value >> 1) ^ (Const(CRC_POLY, 32) & value[0].replicate(32)))
        value = following
    return value


def check_timeout(timeout) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be at least 1 cycle, got {timeout!r}")
    return timeout


class FrameReceiver(wiring.Component):
    """Turns bytes into checked frames, held in ``RECEIVE_BANKS`` banks.

    ``bytes`` in (always taken: a frame that finds no free bank is read to its end and
    dropped, pulsing ``overrun``). The COBS blocks are decoded a byte a cycle, the CRC-32
    runs over the decoded bytes, and the last 4 decoded bytes wait in a delay line, so
    that only payload bytes (not the CRC) reach the bank. At the delimiter a frame whose
    CRC residue, COBS blocks and size are good fills its bank; a bad one pulses
    ``crc_error``. A gap of ``timeout`` cycles inside a frame drops it (``timeout``).

    ``frame`` offers the oldest full bank (seq, code, payload length); its payload is read
    through ``read_addr`` / ``read_data`` (one cycle of latency) until ``frame`` is taken,
    which frees the bank. Meanwhile the next frame is received into the other bank.
    """

    def __init__(self, timeout: int):
        self.timeout = check_timeout(timeout)
        super().__init__({
            "bytes": In(stream.Signature(8)),
            "frame": Out(stream.Signature(FRAME)),
            "read_addr": In(range(MAX_PAYLOAD)),
            "read_data": Out(8),
            "crc_error": Out(1),
            "timed_out": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        assert RECEIVE_BANKS == 2                      # one bank bit
        # The banks written and read are never the same one (a bank is written only
        # while it is free, and read only while it is full).
        m.submodules.buffer = buffer = memory.Memory(
            shape=8, depth=RECEIVE_BANKS * MAX_PAYLOAD, init=[], attrs={"no_rw_check": 1})
        write = buffer.write_port()
        read = buffer.read_port()

        full = Signal(RECEIVE_BANKS)
        write_bank = Signal()
        read_bank = Signal()
        held = [Signal(FRAME, name=f"held{i}") for i in range(RECEIVE_BANKS)]
        m.d.comb += [read.addr.eq(Cat(self.read_addr, read_bank)),
                     self.read_data.eq(read.data),
                     self.frame.valid.eq(full.bit_select(read_bank, 1)),
                     self.frame.payload.eq(Mux(read_bank, held[1].as_value(),
                                               held[0].as_value()))]
        release = Signal(RECEIVE_BANKS)
        with m.If(self.frame.valid & self.frame.ready):
            m.d.sync += read_bank.eq(~read_bank)
            m.d.comb += release.eq(1 << read_bank)

        byte = self.bytes.payload
        took = self.bytes.valid
        m.d.comb += self.bytes.ready.eq(1)

        in_frame = Signal()             # bytes came since the last delimiter
        room = Signal()                 # the frame has a bank to go to
        remaining = Signal(8)           # data bytes left in this COBS block
        zero_after = Signal()           # this block ends with an implied 0x00
        count = Signal(range(MAX_BODY + 1))
        too_long = Signal()
        delay = Signal(8 * CRC_BYTES)   # the last 4 decoded bytes, oldest in the low byte
        seq = Signal(8)
        code = Signal(8)
        crc = Signal(32, init=CRC_INIT)
        idle = Signal(range(self.timeout))

        decoded = Signal(8)
        push = Signal()
        crc_next = crc32_byte(m, crc, decoded)
        with m.If(push):
            m.d.sync += [crc.eq(crc_next), delay.eq(Cat(delay[8:], decoded))]
            with m.If(count == MAX_BODY):
                m.d.sync += too_long.eq(1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
                leaving = delay[:8]             # decoded byte number count - 4
                with m.If(count == CRC_BYTES):
                    m.d.sync += seq.eq(leaving)
                with m.If(count == CRC_BYTES + 1):
                    m.d.sync += code.eq(leaving)
                offset = (count - (CRC_BYTES + HEADER_BYTES))[:ADDRESS_BITS]
                m.d.comb += [write.addr.eq(Cat(offset, write_bank)),
                             write.data.eq(leaving),
                             write.en.eq(room & (count >= CRC_BYTES + HEADER_BYTES))]

        restart = Signal()
        with m.If(restart):
            m.d.sync += [in_frame.eq(0), remaining.eq(0), zero_after.eq(0), count.eq(0),
                         too_long.eq(0), crc.eq(CRC_INIT), idle.eq(0)]

        filled = Signal(RECEIVE_BANKS)
        m.d.sync += full.eq((full | filled) & ~release)
        with m.If(took):
            m.d.sync += idle.eq(0)
            with m.If(byte == DELIMITER):
                m.d.comb += restart.eq(1)
                with m.If(in_frame):
                    good = ((remaining == 0) & ~too_long & (count >= CRC_BYTES + HEADER_BYTES)
                            & (crc == CRC_RESIDUE))
                    with m.If(good & room):
                        m.d.comb += filled.eq(1 << write_bank)
                        m.d.sync += write_bank.eq(~write_bank)
                        for bank, frame in enumerate(held):
                            with m.If(write_bank == bank):
                                m.d.sync += [frame.seq.eq(seq), frame.code.eq(code),
                                             frame.length.eq(
                                                 count - (CRC_BYTES + HEADER_BYTES))]
                    with m.Elif(good):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.comb += self.crc_error.eq(1)
            with m.Elif(remaining == 0):               # a COBS code byte
                m.d.sync += [in_frame.eq(1), remaining.eq(byte - 1),
                             zero_after.eq(byte != 0xFF)]
                with m.If(~in_frame):
                    m.d.sync += room.eq(~full.bit_select(write_bank, 1))
                m.d.comb += [decoded.eq(0), push.eq(zero_after)]
            with m.Else():
                m.d.sync += remaining.eq(remaining - 1)
                m.d.comb += [decoded.eq(byte), push.eq(1)]
        with m.Elif(in_frame):
            with m.If(idle == self.timeout - 1):
                m.d.comb += [restart.eq(1), self.timed_out.eq(1)]
            with m.Else():
                m.d.sync += idle.eq(idle + 1)
        return m


SEND = data.StructLayout({"seq": 8, "code": 8, "length": range(MAX_PAYLOAD + 1)})


class FrameSender(wiring.Component):
    """Sends one frame per ``send`` request: seq, code, a payload of ``length`` bytes
    fetched through ``fetch_addr`` / ``fetch_data``, and the CRC-32, COBS-encoded and
    ended by the delimiter, on ``bytes``.

    ``fetch_data`` is taken two cycles after ``fetch_addr`` changes (so a source may
    register its read, or its read and a multiplexer after it) and must hold while
    ``fetch_addr`` does; a source must give the same byte each time it is asked (COBS
    needs to know how far the next 0x00 is before a block goes out, so the sender first
    scans a block, computing the CRC on the way, then fetches it again to send it: no
    block buffer). ``seen`` pulses once for each body byte in order as it is scanned
    (``seen_pos``: its place in the body, ``seen_byte``). About 8 cycles a byte, far
    below a UART's 10 bits.
    """

    def __init__(self):
        super().__init__({
            "send": In(stream.Signature(SEND)),
            "fetch_addr": Out(range(MAX_PAYLOAD)),
            "fetch_data": In(8),
            "bytes": Out(stream.Signature(8)),
            "seen": Out(1),
            "seen_pos": Out(range(MAX_BODY)),
            "seen_byte": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        seq = Signal(8)
        code = Signal(8)
        length = Signal(range(MAX_PAYLOAD + 1))
        crc = Signal(32)
        at = Signal(range(MAX_BODY + 1))        # the body byte being fetched
        start = Signal(range(MAX_BODY + 1))     # the first byte of this COBS block
        n = Signal(8)                           # its data bytes
        ended_zero = Signal()                   # the block ends at a 0x00 (skipped)
        byte = Signal(8)
        out = Signal(8)
        out_valid = Signal()
        m.d.comb += [self.bytes.payload.eq(out), self.bytes.valid.eq(out_valid)]
        sent = out_valid & self.bytes.ready
        with m.If(sent):
            m.d.sync += out_valid.eq(0)
        free = ~out_valid | sent

        payload_end = Signal(range(MAX_BODY + 1))
        body_end = Signal(range(MAX_BODY + 1))
        m.d.comb += [payload_end.eq(length + HEADER_BYTES),
                     body_end.eq(length + HEADER_BYTES + CRC_BYTES),
                     self.fetch_addr.eq(at - HEADER_BYTES)]
        crc_byte = (~crc).word_select((at - payload_end)[:2], 8)
        body_byte = Mux(at == 0, seq, Mux(at == 1, code,
                                          Mux(at < payload_end, self.fetch_data, crc_byte)))
        crc_next = crc32_byte(m, crc, byte)
        m.d.comb += [self.seen_pos.eq(at), self.seen_byte.eq(byte)]

        def emit(value):
            m.d.sync += [out.eq(value), out_valid.eq(1)]

        with m.FSM() as fsm:
            m.d.comb += self.send.ready.eq(fsm.ongoing("IDLE"))
            with m.State("IDLE"):
                with m.If(self.send.valid):
                    m.d.sync += [seq.eq(self.send.payload.seq), code.eq(self.send.payload.code),
                                 length.eq(self.send.payload.length), at.eq(0),
                                 crc.eq(CRC_INIT)]
                    m.next = "BLOCK"
            with m.State("BLOCK"):
                m.d.sync += [start.eq(at), n.eq(0)]
                m.next = "SCAN"
            # Scan: fetch, wait, latch, look. Each body byte is scanned once.
            with m.State("SCAN"):
                with m.If(at == body_end):
                    m.d.sync += ended_zero.eq(0)
                    m.next = "CODE"
                with m.Else():
                    m.next = "SCAN_WAIT"
            with m.State("SCAN_WAIT"):
                m.next = "SCAN_LATCH"
            with m.State("SCAN_LATCH"):
                m.d.sync += byte.eq(body_byte)
                m.next = "SCAN_LOOK"
            with m.State("SCAN_LOOK"):
                m.d.comb += self.seen.eq(1)
                with m.If(at < payload_end):
                    m.d.sync += crc.eq(crc_next)
                with m.If(byte == 0):
                    m.d.sync += ended_zero.eq(1)
                    m.next = "CODE"
                with m.Else():
                    m.d.sync += [n.eq(n + 1), at.eq(at + 1), ended_zero.eq(0)]
                    with m.If(n == 253):               # 254 bytes: a full block
                        m.next = "CODE"
                    with m.Else():
                        m.next = "SCAN"
            with m.State("CODE"):
                with m.If(free):
                    emit(n + 1)
                    m.d.sync += at.eq(start)
                    m.next = "SEND"
            # Send the block's bytes again: fetch, wait, latch, out.
            with m.State("SEND"):
                with m.If(at == start + n):
                    m.next = "NEXT"
                with m.Else():
                    m.next = "SEND_WAIT"
            with m.State("SEND_WAIT"):
                m.next = "SEND_LATCH"
            with m.State("SEND_LATCH"):
                m.d.sync += byte.eq(body_byte)
                m.next = "SEND_OUT"
            with m.State("SEND_OUT"):
                with m.If(free):
                    emit(byte)
                    m.d.sync += at.eq(at + 1)
                    m.next = "SEND"
            with m.State("NEXT"):
                with m.If(ended_zero):
                    m.d.sync += at.eq(at + 1)          # past the 0x00 the code stands for
                    m.next = "BLOCK"
                with m.Elif(n == 254):                 # a full block: another one follows,
                    m.next = "BLOCK"                   # if only an empty one at the end
                with m.Else():
                    m.next = "DELIMIT"
            with m.State("DELIMIT"):
                with m.If(free):
                    emit(DELIMITER)
                    m.next = "IDLE"
        return m
