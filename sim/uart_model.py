"""A UART at the other end of a simulated line: send and receive 8N1 bytes in cocotb,
counting clock cycles (``divisor`` a bit)."""

from __future__ import annotations

from cocotb.triggers import RisingEdge

from hw.soc.protocol import MAX_PAYLOAD, next_frame


async def send_bytes(clk, line, data: bytes, divisor: int, *, stop_bit: int = 1,
                     bit_cycles=None, idle_cycles: int = 0) -> None:
    """Drive ``line`` with ``data``; ``bit_cycles(i)`` may vary each bit's length (jitter),
    ``idle_cycles`` of idle line follow each byte."""
    for byte in data:
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [stop_bit]
        for i, bit in enumerate(bits):
            line.value = bit
            for _ in range(bit_cycles(i) if bit_cycles else divisor):
                await RisingEdge(clk)
        line.value = 1
        for _ in range(idle_cycles):
            await RisingEdge(clk)
        if stop_bit == 0:                       # let the receiver see an idle line again
            for _ in range(2 * divisor):
                await RisingEdge(clk)


class LineReceiver:
    """Collects the bytes sent on ``line`` (sampled each clock) into ``self.data``."""

    def __init__(self, clk, line, divisor: int):
        self.clk, self.line, self.divisor = clk, line, divisor
        self.data = bytearray()
        self.framing_errors = 0

    async def next_frame(self, max_bytes: int = MAX_PAYLOAD + 16):
        """The next good frame received, (seq, code, payload), taken out of ``data`` (bad
        frames before it are dropped); waits as long as ``max_bytes`` bytes take on the
        line."""
        for _ in range((max_bytes + 4) * 12 * self.divisor):
            frame, rest = next_frame(bytes(self.data))
            if frame is None:
                await RisingEdge(self.clk)
                continue
            self.data[:] = rest
            return frame
        raise AssertionError(f"no answer; line holds {bytes(self.data)[:40]!r}")

    async def run(self):
        while True:
            await RisingEdge(self.clk)
            if int(self.line.value):
                continue
            for _ in range(self.divisor // 2):  # to the middle of the start bit
                await RisingEdge(self.clk)
            if int(self.line.value):
                continue
            byte = 0
            for i in range(8):
                for _ in range(self.divisor):
                    await RisingEdge(self.clk)
                byte |= int(self.line.value) << i
            for _ in range(self.divisor):
                await RisingEdge(self.clk)
            if int(self.line.value):
                self.data.append(byte)
            else:
                self.framing_errors += 1
