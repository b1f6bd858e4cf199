"""Test-only tops that put several configurations of a unit in one simulation build."""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fp8hw.enums import SourceFormat
from golden.formats import E4M3, FP9
from hw.units.fp8_to_fp9 import Fp8ToFp9


def sweep_output_name(bias: int) -> str:
    return f"y_bias{bias}"


class ConvertBiasSweep(wiring.Component):
    """One ``Fp8ToFp9`` per e4m3 bias, sharing ``fmt`` and ``a``; output ``y_biasB``."""

    def __init__(self, biases=range(E4M3.bias_range[0], E4M3.bias_range[1] + 1)):
        self.biases = list(biases)
        super().__init__({
            "fmt": In(SourceFormat),
            "a": In(8),
            **{sweep_output_name(b): Out(FP9.width) for b in self.biases},
        })

    def elaborate(self, platform):
        m = Module()
        for b in self.biases:
            conv = m.submodules[f"convert_bias{b}"] = Fp8ToFp9(bias=b)
            m.d.comb += [conv.fmt.eq(self.fmt), conv.a.eq(self.a),
                         getattr(self, sweep_output_name(b)).eq(conv.y)]
        return m


class UartEcho(wiring.Component):
    """``UartRx`` into ``UartTx``: every byte received on ``rx`` is sent back on ``tx``;
    ``frame_error`` and ``overrun`` pulses are counted."""

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "frame_errors": Out(8), "overruns": Out(8)})

    def elaborate(self, platform):
        from hw.soc.uart import UartRx, UartTx
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.d.comb += rx.rx.eq(self.rx)
        wiring.connect(m, rx.data, tx.data)
        m.d.comb += self.tx.eq(tx.tx)
        with m.If(rx.frame_error):
            m.d.sync += self.frame_errors.eq(self.frame_errors + 1)
        with m.If(rx.overrun):
            m.d.sync += self.overruns.eq(self.overruns + 1)
        return m


class FrameEcho(wiring.Component):
    """UART, ``FrameReceiver`` and ``FrameSender`` answering every good frame with ACK and
    a payload of its command followed by its payload, and every refused one with NAK and
    the reason: a test of the host link's framing without the rest of the system."""

    def __init__(self, divisor: int, timeout: int):
        self.divisor, self.timeout = divisor, timeout
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        from hw.soc.frames import FrameReceiver, FrameSender
        from hw.soc.protocol import ACK, NAK
        from hw.soc.uart import UartRx, UartTx
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(self.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self.divisor)
        m.submodules.receiver = receiver = FrameReceiver(self.timeout)
        m.submodules.sender = sender = FrameSender()
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.data, receiver.bytes)
        wiring.connect(m, sender.bytes, uart_tx.data)
        got = receiver.received.payload
        fetched_first = Signal()
        m.d.sync += fetched_first.eq(sender.fetch_addr == 0)
        m.d.comb += [receiver.read_addr.eq(sender.fetch_addr - 1),
                     sender.fetch_data.eq(Mux(~got.ok, got.reason,
                                              Mux(fetched_first, got.command,
                                                  receiver.read_data)))]
        m.d.comb += [sender.send.payload.command.eq(Mux(got.ok, ACK, NAK)),
                     sender.send.payload.length.eq(Mux(got.ok, got.length + 1, 1))]
        with m.FSM() as fsm:
            m.d.comb += [sender.send.valid.eq(fsm.ongoing("REQUEST")),
                         receiver.received.ready.eq(fsm.ongoing("SENDING")
                                                    & sender.send.ready)]
            with m.State("WAIT"):
                with m.If(receiver.received.valid):
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                with m.If(sender.send.ready):
                    m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(sender.send.ready):            # idle again: all bytes handed over
                    m.next = "WAIT"
        return m
