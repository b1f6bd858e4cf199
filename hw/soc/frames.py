"""Frame receiver and frame sender of the host link: COBS and CRC-32 in hardware (format:
``hw/soc/protocol.py``). The sequence numbers are the link's business (``hw/soc/link.py``);
here a frame is seq, code and payload."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.soc.protocol import (CRC_BYTES, CRC_INIT, CRC_POLY, CRC_RESIDUE, DELIMITER,
                             HEADER_BYTES, MAX_BODY, MAX_PAYLOAD, RECEIVE_BANKS, SEND_RING)
from hw.soc.protocol import crc32_byte as crc32_byte_model

ADDRESS_BITS = (MAX_PAYLOAD - 1).bit_length()
assert 1 << ADDRESS_BITS == MAX_PAYLOAD
FRAME = data.StructLayout({"seq": 8, "code": 8, "length": range(MAX_PAYLOAD + 1)})
RING = SEND_RING                   # the sender's ring: a block (255 bytes) and much more
RING_BITS = RING.bit_length() - 1
assert 1 << RING_BITS == RING and RING >= 512


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
    dropped, pulsing ``overrun``). The COBS blocks are decoded a byte a cycle and the
    CRC-32 runs over the decoded bytes; body byte ``n`` (seq and code excluded) goes to
    bank offset ``n - 2``, so a frame's CRC lands after its payload (and past the bank's
    end, not written, for the largest payload). At the delimiter a frame whose CRC
    residue, COBS blocks and size are good fills its bank; a bad one pulses
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

        # Headers: ``back`` is filled as a frame arrives, and moves to ``front`` (the frame
        # offered) as soon as that is free; so no multiplexer in front of ``frame``.
        front = Signal(FRAME)
        back = Signal(FRAME)
        front_full = Signal()
        back_full = Signal()
        front_bank = Signal()
        write_bank = Signal()               # the bank of the frame arriving
        m.d.comb += [read.addr.eq(Cat(self.read_addr, front_bank)),
                     self.read_data.eq(read.data),
                     self.frame.valid.eq(front_full), self.frame.payload.eq(front)]
        released = self.frame.valid & self.frame.ready
        with m.If(back_full & (~front_full | released)):
            m.d.sync += [front.eq(back), front_full.eq(1), front_bank.eq(~write_bank),
                         back_full.eq(0)]
        with m.Elif(released):
            m.d.sync += front_full.eq(0)

        byte = self.bytes.payload
        took = self.bytes.valid
        m.d.comb += self.bytes.ready.eq(1)

        in_frame = Signal()             # bytes came since the last delimiter
        room = Signal()                 # the frame has a bank (and ``back``) to go to
        # This COBS block's data bytes left, plus one (1: a code byte comes next), so a
        # code byte is loaded as it is, without a subtractor.
        remaining = Signal(8, init=1)
        zero_after = Signal()           # this block ends with an implied 0x00
        # Body bytes so far minus 2: the bank offset of the next one (-2, -1: seq, code).
        offset = Signal(ADDRESS_BITS + 1, init=-HEADER_BYTES % (2 * MAX_PAYLOAD))
        too_long = Signal()
        crc = Signal(32, init=CRC_INIT)
        idle = Signal(range(self.timeout))

        decoded = Signal(8)
        push = Signal()
        crc_next = crc32_byte(m, crc, decoded)
        with m.If(push):
            m.d.sync += [crc.eq(crc_next), offset.eq(offset + 1)]
            with m.If(offset == MAX_BODY - HEADER_BYTES):     # one byte too many
                m.d.sync += too_long.eq(1)
            with m.If(room & (offset == (-2 % (2 * MAX_PAYLOAD)))):
                m.d.sync += back.seq.eq(decoded)
            with m.If(room & (offset == (-1 % (2 * MAX_PAYLOAD)))):
                m.d.sync += back.code.eq(decoded)
            m.d.comb += [write.addr.eq(Cat(offset[:ADDRESS_BITS], write_bank)),
                         write.data.eq(decoded),
                         write.en.eq(room & ~offset[ADDRESS_BITS])]

        restart = Signal()
        with m.If(restart):
            m.d.sync += [in_frame.eq(0), remaining.eq(1), zero_after.eq(0),
                         offset.eq(offset.init), too_long.eq(0), crc.eq(CRC_INIT), idle.eq(0)]

        with m.If(took):
            m.d.sync += idle.eq(0)
            with m.If(byte == DELIMITER):
                m.d.comb += restart.eq(1)
                with m.If(in_frame):
                    # At least seq, code and the CRC: offset 4 to MAX_BODY - 2 (too_long
                    # past that; -2 and -1 are the only offsets with both top bits set).
                    long_enough = ((offset[CRC_BYTES.bit_length() - 1:] != 0)
                                   & ~(offset[ADDRESS_BITS] & offset[ADDRESS_BITS - 1]))
                    good = (remaining == 1) & ~too_long & long_enough & (crc == CRC_RESIDUE)
                    with m.If(good & room):
                        m.d.sync += [back.length.eq(offset - CRC_BYTES), back_full.eq(1),
                                     write_bank.eq(~write_bank)]
                    with m.Elif(good):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.comb += self.crc_error.eq(1)
            with m.Elif(remaining == 1):               # a COBS code byte
                m.d.sync += [in_frame.eq(1), remaining.eq(byte),
                             zero_after.eq(byte != 0xFF)]
                with m.If(~in_frame):
                    m.d.sync += room.eq(~(front_full & back_full))
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


def crc_byte_masks() -> list[int]:
    """What turns the low byte of the CRC register into the next CRC byte of the body.

    Fed its own CRC bytes, the register after ``j`` of them is the CRC after the payload
    shifted right by ``8 j``, XORed with a constant (all of it is linear), so CRC byte
    ``j`` is the register's low byte XOR ``masks[j]``: no byte select, and the CRC logic
    runs on every body byte."""
    masks, register = [], 0
    for _ in range(CRC_BYTES):
        masks.append(0xFF ^ (register & 0xFF))
        register = crc32_byte_model(register, 0xFF)
    return masks


# Cycles from a new fetch_addr to the sender taking fetch_data.
FETCH_LATENCY = 4


class FrameSender(wiring.Component):
    """Sends one frame per ``send`` request: seq, code, a payload of ``length`` bytes
    fetched through ``fetch_addr`` / ``fetch_data``, and the CRC-32, COBS-encoded and
    ended by the delimiter, on ``bytes``.

    ``fetch_data`` is taken ``FETCH_LATENCY`` (4) cycles after ``fetch_addr`` changes (so
    a source may have a register, a block RAM's read and two registers after it) and must
    hold while ``fetch_addr`` does; each byte is fetched once, one every 5 cycles. ``seen`` pulses
    as each payload byte is taken (``fetch_addr``: its index, ``seen_byte``: the byte).

    COBS needs to know how far the next 0x00 is before a block goes out: the encoded
    frame is written into a ``RING``-byte ring (block RAM) with a slot left for each
    block's code byte, filled in when the block ends; the bytes before the open block's
    slot go out on ``bytes`` meanwhile, so the line only waits for a frame's first block.
    ``send`` is ready again once the whole frame is in the ring (its bytes may still be
    going out): the next frame follows without a gap. ``room``: bytes a frame may put
    into the ring now without waiting for the line (half the ring, less what waits).
    """

    def __init__(self):
        super().__init__({
            "send": In(stream.Signature(SEND)),
            "fetch_addr": Out(range(MAX_PAYLOAD)),
            "fetch_data": In(8),
            "bytes": Out(stream.Signature(8)),
            "seen": Out(1),
            "seen_byte": Out(8),
            "room": Out(range(RING // 2 + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ring = ring = memory.Memory(shape=8, depth=RING, init=[],
                                                 attrs={"no_rw_check": 1})
        write = ring.write_port()
        read = ring.read_port()

        # The ring: [sent, code_at) may go out; code_at is the open block's code slot,
        # [code_at + 1, write_at) its data bytes. Between frames code_at == write_at.
        write_at = Signal(RING_BITS)
        code_at = Signal(RING_BITS)
        sent_at = Signal(RING_BITS)
        span = Signal(8)                        # the open block's code, were it closed now
        waiting = Signal(RING_BITS)
        m.d.comb += [waiting.eq(write_at - sent_at),
                     self.room.eq(Mux(waiting[-1], 0, RING // 2 - waiting))]
        # The ring may be full: write_at is three quarters of the ring ahead of sent_at's
        # quarter, so more than half the ring is waiting. More than an open block (at most 256,
        # its slot and the next one's included), so those bytes hold a closed block that
        # can go out: never a deadlock; a 2-bit subtraction, not RING_BITS.
        stall = Signal()
        quarter = slice(RING_BITS - 2, RING_BITS)
        m.d.comb += [span.eq(write_at - code_at),
                     stall.eq((write_at[quarter] - sent_at[quarter])[:2] == 3)]

        out_valid = Signal()
        load = (sent_at != code_at) & (~out_valid | self.bytes.ready)
        m.d.comb += [read.addr.eq(sent_at), read.en.eq(load),
                     self.bytes.payload.eq(read.data), self.bytes.valid.eq(out_valid)]
        with m.If(load):
            m.d.sync += [sent_at.eq(sent_at + 1), out_valid.eq(1)]
        with m.Elif(self.bytes.ready):
            m.d.sync += out_valid.eq(0)

        def put(value):
            m.d.comb += [write.addr.eq(write_at), write.data.eq(value), write.en.eq(1)]
            m.d.sync += write_at.eq(write_at + 1)

        def close():
            """Fill in the open block's code and leave a slot for the next one's."""
            m.d.comb += [write.addr.eq(code_at), write.data.eq(span), write.en.eq(1)]
            m.d.sync += [code_at.eq(write_at), write_at.eq(write_at + 1)]

        seq = Signal(8)
        code = Signal(8)
        length = Signal(range(MAX_PAYLOAD + 1))
        index = Signal(range(MAX_PAYLOAD + 1))  # the payload byte fetched
        part = Signal(range(4))                 # header, payload, CRC, done
        HEADER, PAYLOAD, CRC, DONE = range(4)
        step = Signal(2)                        # the byte within the header or the CRC
        crc = Signal(32)
        masks = crc_byte_masks()
        crc_out = crc[:8] ^ Mux(step[1], Mux(step[0], masks[3], masks[2]),
                                Mux(step[0], masks[1], masks[0]))
        byte = Signal(8)
        m.d.comb += [
            self.fetch_addr.eq(index),
            byte.eq(Mux(part == HEADER, Mux(step[0], code, seq),
                        Mux(part == PAYLOAD, self.fetch_data, crc_out))),
            self.seen_byte.eq(byte),
        ]
        crc_next = crc32_byte(m, crc, byte, name="crc")

        with m.FSM() as fsm:
            m.d.comb += self.send.ready.eq(fsm.ongoing("IDLE") & ~stall)
            with m.State("IDLE"):
                with m.If(self.send.valid & ~stall):
                    m.d.sync += [seq.eq(self.send.payload.seq), code.eq(self.send.payload.code),
                                 length.eq(self.send.payload.length), index.eq(0),
                                 part.eq(HEADER), step.eq(0), crc.eq(CRC_INIT),
                                 write_at.eq(write_at + 1)]     # the first code slot
                    m.next = "FETCH"
            # fetch_addr changed as this state began; the byte is taken FETCH_LATENCY
            # cycles later.
            with m.State("FETCH"):
                with m.If((part == PAYLOAD) & (index == length)):
                    m.d.sync += [part.eq(CRC), step.eq(0)]
                m.next = "WAIT1"
            for wait in range(1, FETCH_LATENCY):
                with m.State(f"WAIT{wait}"):
                    m.next = f"WAIT{wait + 1}" if wait + 1 < FETCH_LATENCY else "TAKE"
            with m.State("TAKE"):
                with m.If(~stall):
                    m.d.sync += crc.eq(crc_next)
                    m.d.comb += self.seen.eq(part == PAYLOAD)
                    with m.If(part == PAYLOAD):
                        m.d.sync += index.eq(index + 1)
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
                        with m.If((part == HEADER) & step[0]):
                            m.d.sync += part.eq(PAYLOAD)
                        with m.If((part == CRC) & (step == CRC_BYTES - 1)):
                            m.d.sync += part.eq(DONE)
                    last = (part == CRC) & (step == CRC_BYTES - 1)
                    with m.If(byte == 0):
                        close()
                        with m.If(last):
                            m.next = "END"
                        with m.Else():
                            m.next = "FETCH"
                    with m.Else():
                        put(byte)
                        with m.If(span == 254):        # 254 data bytes: a full block
                            m.next = "CLOSE"
                        with m.Elif(last):
                            m.next = "END"
                        with m.Else():
                            m.next = "FETCH"
            with m.State("CLOSE"):
                with m.If(~stall):
                    close()
                    with m.If(part == DONE):
                        m.next = "END"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("END"):                        # the last block, empty or not
                with m.If(~stall):
                    close()
                    m.next = "DELIMIT"
            with m.State("DELIMIT"):                    # into the slot close() left
                m.d.comb += [write.addr.eq(code_at), write.data.eq(DELIMITER), write.en.eq(1)]
                m.d.sync += code_at.eq(write_at)
                m.next = "IDLE"
        return m
