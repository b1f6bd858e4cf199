"""The UART's limits, shared by the hardware (``hw/soc/uart.py``), the board table
(``boards/targets.py``) and the host: the divisor (clock cycles a bit) the UART takes, the
standard baud rates, and the rate error the link tolerates.

A receiver samples each bit in its middle, a start bit found to within a clock cycle: over
the 10 bits of a byte, a rate off by ``MAX_BAUD_ERROR`` (1%) moves the last sample by 0.1
of a bit, far inside the half bit it may move. A divisor of at least 4 leaves the
receiver's two-flip-flop synchronizer and its middle-of-bit sampling a whole cycle each.
"""

from __future__ import annotations

MIN_DIVISOR = 4
MAX_DIVISOR = (1 << 16) - 1
MAX_BAUD_ERROR = 0.01
# The rates USB serial adapters (FTDI's included) and their drivers offer.
STANDARD_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 921600,
                  1_000_000, 1_500_000, 2_000_000, 3_000_000, 4_000_000, 6_000_000,
                  12_000_000)


def check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or not \
            MIN_DIVISOR <= divisor <= MAX_DIVISOR:
        raise ValueError(f"the UART divisor (clock cycles per bit) must be an integer "
                         f">= {MIN_DIVISOR} and <= {MAX_DIVISOR}, got {divisor!r}")
    return divisor


def baud_error(clock_hz: float, baud: int) -> tuple[int, float]:
    """The divisor nearest ``clock_hz / baud`` and the relative error of the rate it makes."""
    divisor = max(1, round(clock_hz / baud))
    return divisor, abs(clock_hz / divisor - baud) / baud


def divisor_for(clock_hz: float, baud: int, adapter_max: int | None = None) -> int:
    """The divisor for ``baud`` at ``clock_hz``; ValueError saying why it cannot be."""
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"the baud rate must be a positive integer, got {baud!r}")
    if adapter_max is not None and baud > adapter_max:
        raise ValueError(f"{baud} baud is over the USB UART's {adapter_max}")
    divisor, error = baud_error(clock_hz, baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{baud} baud at {clock_hz / 1e6:g} MHz needs a divisor of "
                         f"{clock_hz / baud:.2f}, under the UART's minimum {MIN_DIVISOR}")
    if divisor > MAX_DIVISOR:
        raise ValueError(f"{baud} baud at {clock_hz / 1e6:g} MHz needs a divisor over "
                         f"{MAX_DIVISOR}")
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"{baud} baud at {clock_hz / 1e6:g} MHz: the nearest divisor "
                         f"{divisor} makes {clock_hz / divisor:.0f} baud, {100 * error:.2f}% "
                         f"off (at most {100 * MAX_BAUD_ERROR:g}%)")
    return divisor


def fastest_baud(clock_hz: float, adapter_max: int) -> int:
    """The fastest standard rate up to ``adapter_max`` that ``clock_hz`` divides to within
    ``MAX_BAUD_ERROR`` with a divisor the UART takes."""
    for baud in sorted(STANDARD_BAUDS, reverse=True):
        try:
            divisor_for(clock_hz, baud, adapter_max)
            return baud
        except ValueError:
            continue
    raise ValueError(f"no standard baud rate fits a {clock_hz / 1e6:g} MHz clock")
