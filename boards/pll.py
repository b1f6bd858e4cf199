"""PLL settings for the board clocks: the same searches as ``icepll`` (iCE40) and
``ecppll`` (ECP5), done in Python so a board's clock is one number in the board table.

Check a result against the vendor-independent tools with ``yowasp-icepll -i 12 -o 24``
or ``yowasp-ecppll -i 25 -o 60``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


class PllError(ValueError):
    """No PLL setting reaches the requested frequency; the message says why."""


@dataclass(frozen=True)
class Ice40Pll:
    """``SB_PLL40_*`` settings in ``SIMPLE`` feedback mode:
    f_out = f_in x (DIVF + 1) / ((DIVR + 1) x 2^DIVQ)."""
    f_in_mhz: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_pfd_mhz(self) -> float:
        return self.f_in_mhz / (self.divr + 1)

    @property
    def f_vco_mhz(self) -> float:
        return self.f_pfd_mhz * (self.divf + 1)

    @property
    def f_out_mhz(self) -> float:
        return self.f_vco_mhz / 2 ** self.divq


@dataclass(frozen=True)
class Ecp5Pll:
    """``EHXPLLL`` settings with ``CLKOP`` fed back:
    f_out = f_in x CLKFB_DIV / CLKI_DIV, f_vco = f_out x CLKOP_DIV."""
    f_in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out_mhz(self) -> float:
        return self.f_in_mhz * self.clkfb_div / self.clki_div

    @property
    def f_vco_mhz(self) -> float:
        return self.f_out_mhz * self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        """Coarse phase of ``CLKOP`` in VCO cycles, as ``ecppll`` writes it (about half an
        output period; with ``CLKOP`` as the feedback it does not move the output)."""
        return (self.clkop_div - 1) // 2


def _check_close(family: str, f_in: float, f_out: float, got: float):
    if abs(got - f_out) > 1e-6 * f_out:
        raise PllError(f"{family} PLL cannot make exactly {f_out:g} MHz from {f_in:g} MHz "
                       f"(nearest {got:.4f} MHz)")


def ice40_pll(f_in_mhz: float, f_out_mhz: float) -> Ice40Pll:
    """The iCE40 setting that makes exactly ``f_out_mhz`` (PFD 10..133 MHz, VCO 533..1066
    MHz, output 16..275 MHz), as ``icepll`` would choose it."""
    f_in, best = Fraction(f_in_mhz), None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2 ** divq
                if not 16 <= f_out <= 275:
                    continue
                error = abs(f_out - Fraction(f_out_mhz))
                if best is None or error < best[0]:
                    best = (error, divr, divf, divq, f_pfd)
    if best is None:
        raise PllError(f"iCE40 PLL cannot take a {f_in_mhz:g} MHz input")
    _, divr, divf, divq, f_pfd = best
    filter_range = next(i + 1 for i, top in enumerate((17, 26, 44, 66, 101, 10 ** 9))
                        if f_pfd < top)
    pll = Ice40Pll(f_in_mhz, divr, divf, divq, filter_range)
    _check_close("iCE40", f_in_mhz, f_out_mhz, pll.f_out_mhz)
    return pll


def ecp5_pll(f_in_mhz: float, f_out_mhz: float) -> Ecp5Pll:
    """The ECP5 setting that makes exactly ``f_out_mhz`` (PFD 3.125..400 MHz, VCO 400..800
    MHz), the VCO nearest 600 MHz among equals, as ``ecppll`` would choose it."""
    f_in, target, best = Fraction(f_in_mhz), Fraction(f_out_mhz), None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not Fraction(3125, 1000) <= f_pfd <= 400:
            continue
        for clkfb_div in range(1, 81):
            f_out = f_pfd * clkfb_div
            for clkop_div in range(1, 129):
                f_vco = f_out * clkop_div
                if not 400 <= f_vco <= 800:
                    continue
                key = (abs(f_out - target), abs(f_vco - 600))
                if best is None or key < best[0]:
                    best = (key, clki_div, clkfb_div, clkop_div)
    if best is None:
        raise PllError(f"ECP5 PLL cannot take a {f_in_mhz:g} MHz input")
    pll = Ecp5Pll(f_in_mhz, *best[1:])
    _check_close("ECP5", f_in_mhz, f_out_mhz, pll.f_out_mhz)
    return pll
