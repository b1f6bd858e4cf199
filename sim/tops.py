"""Test-only tops that put several configurations of a unit in one simulation build."""

from amaranth import ClockDomain, ClockSignal, Module, Mux, ResetSignal, Signal
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


REFUSED = 0x7E          # the command ``LinkEcho`` refuses (NAK ARGUMENT)


class LinkEcho(wiring.Component):
    """``HostLink`` with an executor that answers each request with ACK and a payload of
    its command followed by its payload (the command ``REFUSED``: NAK ARGUMENT): a test of
    the host link (framing, sequence numbers, repeats) without the rest of the system.
    ``executed`` counts the requests that reached the executor."""

    def __init__(self, divisor: int, timeout: int):
        self.divisor, self.timeout = divisor, timeout
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "executed": Out(16)})

    def elaborate(self, platform):
        from hw.soc.link import HostLink
        from hw.soc.protocol import ACK, NAK, Nak
        m = Module()
        m.submodules.link = link = HostLink(self.divisor, self.timeout)
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
        got = link.received.payload
        refuse = got.command == REFUSED
        fetched_first = Signal()
        m.d.sync += fetched_first.eq(link.fetch_addr == 0)
        m.d.comb += link.read_addr.eq(link.fetch_addr - 1)
        m.d.sync += link.fetch_data.eq(Mux(fetched_first, got.command,
                                           Mux(refuse, Nak.ARGUMENT, link.read_data)))
        m.d.comb += [link.send.payload.command.eq(Mux(refuse, NAK, ACK)),
                     link.send.payload.length.eq(Mux(refuse, 2, got.length + 1))]
        with m.FSM() as fsm:
            m.d.comb += [link.send.valid.eq(fsm.ongoing("REQUEST")),
                         link.received.ready.eq(fsm.ongoing("SENDING") & link.send.ready)]
            with m.State("WAIT"):
                with m.If(link.received.valid):
                    m.d.sync += self.executed.eq(self.executed + 1)
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                with m.If(link.send.ready):
                    m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(link.send.ready):            # idle again: all bytes handed over
                    m.next = "WAIT"
        return m


class PoweredBoard(wiring.Component):
    """A board system as the simulated board runs it: ``rx`` / ``tx`` as its own, the clock
    the only other port, and a reset of 3 cycles at power-on from a register (as on a
    board, whose platform makes its reset), not from a port. Verilator evaluates logic
    that reads a port on every change of any port, the clock's included: with ``rst`` a
    port, every register's next-state logic would run twice a cycle."""

    def __init__(self, system):
        self.system = system
        super().__init__({"clk": In(1), "rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.system = self.system
        m.domains.sync = ClockDomain("sync")
        m.domains.power_on = ClockDomain("power_on", reset_less=True)
        count = Signal(2, init=3)
        m.d.comb += [ClockSignal("sync").eq(self.clk),
                     ClockSignal("power_on").eq(self.clk),
                     ResetSignal("sync").eq(count != 0),
                     self.system.rx.eq(self.rx), self.tx.eq(self.system.tx)]
        with m.If(count != 0):
            m.d.power_on += count.eq(count - 1)
        return m
