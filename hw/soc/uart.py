"""UART transmitter and receiver, 8N1, one bit every ``divisor`` clock cycles."""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fp8hw.uart import check_divisor


class UartTx(wiring.Component):
    """Sends each byte of ``data`` on ``tx``: a start bit (0), 8 data bits LSB first, a stop
    bit (1), each ``divisor`` cycles long. ``tx`` idles high."""

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)         # bits still to send, LSB next
        left = Signal(range(11))               # bits left in this byte
        timer = Signal(range(self.divisor))
        # The next byte may start right after the last cycle of a stop bit.
        m.d.comb += [self.tx.eq(shift[0]),
                     self.data.ready.eq((left == 0) | ((left == 1) & (timer == 0)))]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shift.eq(Cat(0, self.data.payload, 1)), left.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Receives bytes from ``rx`` (8N1, ``divisor`` cycles a bit) into the ``data`` stream.

    The line goes through two flip-flops; a start bit is confirmed at its middle, and
    every bit is sampled at its middle. A byte whose stop bit is 0 is dropped and pulses
    ``frame_error``; a byte that arrives while the previous one has not been taken
    replaces it and pulses ``overrun``.
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                          "frame_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        shift = Signal(8)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.comb += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):                   # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bits.eq(bits + 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                    with m.Else():
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.If(line):
                        m.next = "IDLE"
            with m.State("BREAK"):                   # wait for the line to go idle
                with m.If(line):
                    m.next = "IDLE"
        return m
