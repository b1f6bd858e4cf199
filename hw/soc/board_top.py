"""The top level of a board's bitstream: the PLL, the reset, the UART pins and the
``ArraySystem``, and the Yosys commands this design needs (``BoardTop.yosys_after_read``).
``python -m hw.build --board NAME`` hands both to ``boards.flow.build``."""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from boards.pll import ecp5_pll, ice40_pll
from boards.targets import BoardTarget
from hw.soc.system import ArraySystem

# Reset held this long after the PLL locks. iCE40 block RAMs read as zero for about 3 us
# after configuration (the same reason Amaranth's own iCE40 reset waits 15 us).
POWER_ON_DELAY_US = 15


class BoardTop(Elaboratable):
    """A board running ``target``'s ``ArraySystem`` on its UART pins.

    The ``sync`` domain is the PLL output (``target.clock_mhz``, which is also the clock
    constraint nextpnr checks); it is held in reset until the PLL has locked and then for
    ``POWER_ON_DELAY_US`` more, and again whenever the PLL loses lock.
    """

    def __init__(self, target: BoardTarget):
        self.target = target

    @staticmethod
    def yosys_after_read(name: str) -> str:
        """Yosys commands that let the system's buffers be plain block RAMs, for the
        design named ``name`` (its top module).

        Their memories carry ``no_rw_check`` (no port ever reads a row written in the same
        cycle), but Yosys applies that attribute only in its Verilog frontend; read as
        RTLIL, each read port keeps "old data on collision" and becomes a block RAM plus a
        bypass register and a multiplexer a bit. Marking the collisions undefined on those
        read ports (the modules of ``ArraySystem`` and its link's frame receiver) has the same
        effect.
        """
        return " ".join(["setparam -set COLLISION_X_MASK 1"]
                        + [f"{name}.{module}/t:$memrd_v2"
                           for module in ("system", "system.link.receiver")])

    def elaborate(self, platform):
        t = self.target
        m = Module()
        # The PLL output has a signal of its own in this module, so that the clock
        # constraint names a net of the top level (the domain's clock signal reaches every
        # submodule, and Amaranth may name it after any of them). ``keep`` makes Yosys keep
        # this name for the net, which nextpnr looks the constraint up by.
        pll_clk = Signal(attrs={"keep": 1})
        locked = Signal()
        family = platform.family.lower()
        if family == "ice40":
            self._ice40_pll(m, platform, pll_clk, locked)
        elif family == "ecp5":
            self._ecp5_pll(m, platform, pll_clk, locked)
        else:
            raise ValueError(f"no PLL for the {platform.family} family")
        platform.add_clock_constraint(pll_clk, t.clock_mhz * 1e6)
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(pll_clk)

        # Power-on delay, counted on the PLL clock from the moment it locks.
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(pll_clk)
        delay = round(POWER_ON_DELAY_US * t.clock_mhz)
        timer = Signal(range(delay + 1))
        with m.If(~locked):
            m.d.por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.por += timer.eq(timer + 1)
        m.submodules.reset_sync = ResetSynchronizer(timer != delay, domain="sync")

        m.submodules.system = system = ArraySystem(
            t.rows, t.cols, pipeline=t.pipeline, bias=t.bias, divisor=t.uart_divisor,
            clock_khz=round(t.clock_mhz * 1000), a_words=t.a_words, b_words=t.b_words,
            acc_words=t.acc_words, chunking=t.chunking, spram=t.spram, engine=t.engine,
            ways=t.ways, room=t.room, multiplier=t.multiplier)
        uart = platform.request("uart", 0)
        m.d.comb += [system.rx.eq(uart.rx.i), uart.tx.o.eq(system.tx)]
        return m

    def _ice40_pll(self, m, platform, clk_out, locked):
        pll = ice40_pll(platform.default_clk_frequency / 1e6, self.target.clock_mhz)
        # SB_PLL40_PAD takes the oscillator straight from its pad (pin 35 on the UP5K).
        clk_pin = platform.request(platform.default_clk, dir="-")
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=pll.divr, p_DIVF=pll.divf, p_DIVQ=pll.divq,
            p_FILTER_RANGE=pll.filter_range,
            i_PACKAGEPIN=clk_pin.io,
            i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk_out, o_LOCK=locked)

    def _ecp5_pll(self, m, platform, clk_out, locked):
        f_in = platform.default_clk_frequency / 1e6
        pll = ecp5_pll(f_in, self.target.clock_mhz)
        m.submodules.clk_buf = clk_buf = io.Buffer("i", platform.request(platform.default_clk,
                                                                         dir="-"))
        m.submodules.pll = Instance(
            "EHXPLLL",
            # Loop filter settings as ecppll writes them.
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            a_FREQUENCY_PIN_CLKI=f"{f_in:g}", a_FREQUENCY_PIN_CLKOP=f"{pll.f_out_mhz:g}",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=pll.clki_div, p_CLKFB_DIV=pll.clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll.clkop_div,
            p_CLKOP_CPHASE=pll.clkop_cphase, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_buf.i, i_CLKFB=clk_out, i_RST=0, i_STDBY=0,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk_out, o_LOCK=locked)
