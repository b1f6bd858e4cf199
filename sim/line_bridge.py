"""Edge-driven ends of a UART line (8N1), for simulations that run long stretches of RTL
between bytes (the simulated board): Python wakes once a level change for a byte it
sends and once a bit for a byte it receives, never once a clock, so the clock (cocotb's
``Clock``, driven by the simulator) and the design run at the simulator's own speed.

Bit lengths are simulated time (``bit_ns``: the divisor times the clock period), not
counted clock edges: a ``Timer`` is one callback where ``ClockCycles`` is one a clock.
``sim.uart_model`` keeps the per-clock helpers that vary bit lengths (jitter, framing
errors) for the UART and frame tests.
"""

from __future__ import annotations

from cocotb.triggers import FallingEdge, Timer


def line_levels(data: bytes) -> list[tuple[int, int]]:
    """The 8N1 waveform of ``data`` as (level, length in bits), equal neighbours merged."""
    runs: list[list[int]] = []
    for byte in data:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            if runs and runs[-1][0] == bit:
                runs[-1][1] += 1
            else:
                runs.append([bit, 1])
    return [(level, length) for level, length in runs]


async def drive_line(line, data: bytes, bit_ns: int) -> None:
    """Send ``data`` on ``line``; returns at the end of the last stop bit (line idle)."""
    for level, length in line_levels(data):
        line.value = level
        await Timer(length * bit_ns, unit="ns")


class EdgeReceiver:
    """Receives the bytes sent on ``line``: wakes on the start bit's falling edge, then
    samples each bit in its middle. ``on_byte(byte)`` is called for each byte whose stop
    bit is high; the others count in ``framing_errors``."""

    def __init__(self, line, bit_ns: int, on_byte):
        if bit_ns % 2:
            raise ValueError(f"bit_ns must be even (sampled at half a bit), got {bit_ns}")
        self.line, self.bit_ns, self.on_byte = line, bit_ns, on_byte
        self.framing_errors = 0

    async def run(self) -> None:
        line, bit = self.line, Timer(self.bit_ns, unit="ns")
        half = Timer(self.bit_ns // 2, unit="ns")
        while True:
            await FallingEdge(line)
            await half
            if int(line.value):
                continue                        # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await bit
                byte |= int(line.value) << i
            await bit
            if int(line.value):
                self.on_byte(byte)
            else:
                self.framing_errors += 1
