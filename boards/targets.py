"""The board table: every FPGA board this project builds a bitstream for, and the
``ArraySystem`` configuration and clock it runs there. Change a board's configuration
here, in its one line of ``BOARDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from fp8hw.errors import Fp8hwError
from fp8hw.uart import divisor_for, fastest_baud

UART_BAUD = 115200                # the classic rate, always selectable with --baud
FT231X_MAX_BAUD = 3_000_000       # ULX3S's USB UART
FT2232H_MAX_BAUD = 12_000_000     # iCEBreaker's USB UART


@dataclass(frozen=True)
class BoardTarget:
    """One board: its amaranth-boards platform, the array system's parameters and the
    system clock the PLL makes from the board's oscillator.

    ``clock_mhz`` is the PLL output, which clocks the whole system; it is also nextpnr's
    clock constraint and the Fmax a build must reach. ``program_board`` is the board name
    openFPGALoader knows it by (``-b``). ``uart_max_baud`` is the fastest rate of the
    board's USB UART; ``baud`` the host link's rate (None: the fastest standard rate up to
    that which the clock divides to within 1%, ``fp8hw.uart.fastest_baud``).
    """
    name: str
    platform: type
    rows: int
    cols: int
    pipeline: int
    clock_mhz: float
    program_board: str
    description: str
    uart_max_baud: int
    a_words: int = 256
    b_words: int = 256
    acc_words: int = 256
    chunking: int = 1
    spram: int = 0
    bias: int = 11
    baud: int | None = None
    engine: str = "mpe"           # or "seb": the FP8-SEB engine, ``ways``-way trees
    multiplier: str = "lut"       # the MPE's products: "lut", or "dsp" (ECP5)
    ways: int = 24
    room: int = 1

    @property
    def family(self) -> str:
        """``ice40`` or ``ecp5``."""
        return self.platform().family.lower()

    @property
    def oscillator_mhz(self) -> float:
        return self.platform().default_clk_frequency / 1e6

    @property
    def uart_baud(self) -> int:
        return self.baud or fastest_baud(self.clock_mhz * 1e6, self.uart_max_baud)

    @property
    def uart_divisor(self) -> int:
        """Clock cycles per UART bit at ``uart_baud``."""
        return divisor_for(self.clock_mhz * 1e6, self.uart_baud, self.uart_max_baud)

    def with_baud(self, baud: int) -> "BoardTarget":
        """This board with its link at ``baud``; BoardError saying why if it cannot be."""
        try:
            divisor_for(self.clock_mhz * 1e6, baud, self.uart_max_baud)
        except ValueError as e:
            raise BoardError(f"{self.name}: {e}") from None
        return replace(self, baud=baud)

    @property
    def build_name(self) -> str:
        """The build folder's name: the board's, with ``-seb`` for the FP8-SEB engine."""
        return self.name if self.engine == "mpe" else f"{self.name}-{self.engine}"

    def summary(self) -> str:
        engine = (f"chunking {self.chunking}, MPE pipeline {self.pipeline}, bias {self.bias}, "
                  f"{self.multiplier} products"
                  if self.engine == "mpe" else
                  f"FP8-SEB {self.ways}-way trees, tree pipeline {self.pipeline}, room "
                  f"{self.room}")
        return (f"{self.name}: {self.description}; ArraySystem {self.rows}x{self.cols} ws, "
                f"buffers {self.a_words}/{self.b_words}/{self.acc_words} words, {engine}; "
                f"{self.clock_mhz:g} MHz from the {self.oscillator_mhz:g} MHz oscillator, "
                f"UART {self.uart_baud} baud (divisor {self.uart_divisor}; the USB UART "
                f"takes up to {self.uart_max_baud})")


# Each board's shipped configuration: the largest array measured to fit and to meet the
# clock (the README's "FPGA boards" has the figures, from ``python -m hw.build --board``).
BOARDS: dict[str, BoardTarget] = {b.name: b for b in (
    BoardTarget("icebreaker", ICEBreakerPlatform, rows=1, cols=1, pipeline=7,
                clock_mhz=24, a_words=32768, b_words=32768, acc_words=2048, chunking=1,
                spram=1, program_board="ice40_generic",
                description="iCEBreaker, iCE40UP5K-SG48", uart_max_baud=FT2232H_MAX_BAUD),
    BoardTarget("ulx3s", ULX3S_85F_Platform, rows=8, cols=8, pipeline=8, multiplier="dsp",
                clock_mhz=60, a_words=8192, b_words=8192, acc_words=4096, program_board="ulx3s",
                description="ULX3S 85F, ECP5 LFE5U-85F-6BG381C", uart_max_baud=FT231X_MAX_BAUD),
)}


# Each board's FP8-SEB build (``python -m hw.build --board NAME --engine seb``).
SEB_BOARDS: dict[str, BoardTarget] = {b.name: b for b in (
    replace(BOARDS["icebreaker"], engine="seb", ways=1, pipeline=6, chunking=0,
            acc_words=2048, clock_mhz=21),
    replace(BOARDS["ulx3s"], engine="seb", ways=24, rows=2, cols=2, pipeline=12, chunking=0,
            a_words=2048, b_words=2048, acc_words=4096, clock_mhz=45),
)}
ENGINES = {"mpe": BOARDS, "seb": SEB_BOARDS}


class BoardError(Fp8hwError):
    """A board build or programming that cannot go on; the message says why, in one line."""


def get_board(name: str, engine: str = "mpe") -> BoardTarget:
    """The board ``name`` with the ``engine`` (``mpe`` or ``seb``) build."""
    if engine not in ENGINES:
        raise BoardError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    try:
        return ENGINES[engine][name]
    except KeyError:
        raise BoardError(f"unknown board {name!r} (boards: {', '.join(BOARDS)})") from None
