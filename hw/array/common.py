"""Pieces shared by both systolic arrays: the processing element's MAC, delay lines, the
stall logic and the result register.

Both arrays run in *wave time*: every register of the array advances together, on the
cycles where ``step`` is high, so a stall (the result stream not taking a result, or an
operand stream not delivering one the array cannot do without) freezes the whole array
and changes no result bit. A cycle with no operand is a *bubble*: it enters the array
like an operand, but each MAC that sees it adds 0 x 0 in INT2 mode, which passes its
accumulator through unchanged (all 32 bits), so bubbles may fall anywhere, even in the
middle of an accumulation.
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Module, ResetSignal, Signal, Value
from amaranth.hdl import DomainRenamer, EnableInserter

from fp8hw.enums import Mode
from hw.units.mpe import MPE, MULTIPLIER


def delay(m: Module, value, steps: int, name: str) -> Value:
    """``value`` delayed by ``steps`` register stages (``m.d.sync``)."""
    value = Value.cast(value)
    for k in range(steps):
        reg = Signal(len(value), name=f"{name}_d{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class MacCell:
    """One MPE of an array, with its loop latency ``max(pipeline, 1)``.

    ``mac`` low makes the MPE add 0 x 0 in INT2 mode (``a`` and ``b`` must then be 0, or
    ``zero_b`` high), which returns ``acc_in`` unchanged; ``tag`` travels with the sum and
    comes out as ``tag_out`` with ``acc_out``. With ``pipeline`` 0 the MPE is
    combinational and a register follows it, so the latency is never 0.
    """

    def __init__(self, m: Module, name: str, bias: int, pipeline: int, mode, fmt_a, fmt_b,
                 multiplier: str = MULTIPLIER.default):
        self.mpe = MPE(bias=bias, pipeline=pipeline, multiplier=multiplier)
        m.submodules[name] = self.mpe
        self.latency = max(pipeline, 1)
        self.mac = Signal(name=f"{name}_mac")
        mpe = self.mpe
        with m.If(self.mac):
            m.d.comb += mpe.mode.eq(mode)
        with m.Else():
            m.d.comb += mpe.mode.eq(Mode.INT2)
        m.d.comb += [mpe.fmt_a.eq(fmt_a), mpe.fmt_b.eq(fmt_b)]
        self.a, self.b, self.acc_in, self.tag = mpe.a, mpe.b, mpe.acc_in, mpe.valid_in
        if pipeline == 0:
            self.acc_out = Signal(32, name=f"{name}_acc")
            self.tag_out = Signal(name=f"{name}_tag")
            m.d.sync += [self.acc_out.eq(mpe.acc_out), self.tag_out.eq(mpe.valid_out)]
        else:
            self.acc_out, self.tag_out = mpe.acc_out, mpe.valid_out


class SteppedCore:
    """Builds the array's registers in ``core`` (every one enabled by ``step``) and the
    result register outside it, which must also empty on a cycle with no step (or, with
    ``finish_direct``, no result register).

    ``finish(results, complete, payload, extra_ok)``: ``step`` is high unless the result
    register is full and not being taken, or ``extra_ok`` is low; on a step with
    ``complete`` high, ``payload`` is loaded into the result register.
    """

    def __init__(self):
        self.core = Module()
        self.step = Signal()

    def finish(self, results, complete, payload, extra_ok=1) -> Module:
        m = Module()
        m.submodules.core = EnableInserter(self.step)(self.core)
        m.d.comb += self.step.eq(~(results.valid & ~results.ready) & extra_ok)
        with m.If(results.valid & results.ready):
            m.d.sync += results.valid.eq(0)
        with m.If(self.step & complete):
            m.d.sync += [results.valid.eq(1), results.payload.eq(payload)]
        return m

    def finish_direct(self, results, complete, payload, awake=1,
                      gate_clock: bool = False) -> Module:
        """Like ``finish``, but with no result register: the core's last registers are the
        result (``valid`` is ``complete``), held by stalling the core until it is taken.
        ``step`` is also low while ``awake`` is (an array with nothing to do holds still).

        ``gate_clock`` (for simulation): the core's registers run on the clock gated by
        ``step`` (latched on the falling edge) as well as enabled by it, so they change on
        exactly the same cycles, and a simulator such as Verilator evaluates the core's
        logic only on the cycles it steps."""
        m = Module()
        m.d.comb += [self.step.eq(~(complete & ~results.ready) & awake),
                     results.valid.eq(complete), results.payload.eq(payload)]
        core = EnableInserter(self.step)(self.core)
        if gate_clock:
            enable = Signal(init=1, name="core_clock_enable")
            m.domains.core_gate = ClockDomain("core_gate", clk_edge="neg", local=True)
            m.domains.core = ClockDomain("core", local=True)
            m.d.comb += [ClockSignal("core_gate").eq(ClockSignal()),
                         ResetSignal("core_gate").eq(ResetSignal()),
                         ClockSignal("core").eq(ClockSignal() & enable),
                         ResetSignal("core").eq(ResetSignal())]
            m.d.core_gate += enable.eq(self.step)
            core = DomainRenamer("core")(core)
        m.submodules.core = core
        return m


def countdown(m: Module, name: str, most: int) -> Signal:
    """A counter of ``range(most + 1)`` that counts down to 0 and stays there; a later
    ``m.d.sync += counter.eq(n)`` reloads it."""
    counter = Signal(range(max(most, 1) + 1), name=name)
    with m.If(counter != 0):
        m.d.sync += counter.eq(counter - 1)
    return counter
