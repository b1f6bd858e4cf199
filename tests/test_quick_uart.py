"""Quick tier: the host link's UART in Amaranth's simulator: the transmitter's waveform
bit by bit, every byte value through receiver and transmitter (``sim.tops.UartEcho``),
a bad stop bit dropped and counted, a glitch ignored."""

import numpy as np
import pytest

from hw.soc.uart import UartTx
from sim.pysim import put, receive_line, send_line, simulate
from sim.tops import UartEcho

pytestmark = pytest.mark.quick


def line_bits(data: bytes, divisor: int) -> list[int]:
    """The 8N1 waveform of ``data`` sent back to back, one entry a cycle."""
    bits = []
    for byte in data:
        bits += [b for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]
                 for b in [bit] * divisor]
    return bits


@pytest.mark.parametrize("divisor", [4, 7])
def test_transmitter_waveform(divisor):
    """Bytes offered back to back go out back to back: a start bit, 8 data bits LSB
    first and a stop bit, each exactly ``divisor`` cycles."""
    tx = UartTx(divisor)
    data = bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    trace = []

    async def feed(ctx):
        for byte in data:
            await put(ctx, tx.data, byte)

    async def record(ctx):
        for _ in range((len(data) * 10 + 4) * divisor):
            trace.append(ctx.get(tx.tx))
            await ctx.tick()

    simulate(tx, feed, record)
    start = trace.index(0)
    assert all(trace[:start]), "the idle line is high"
    want = line_bits(data, divisor)
    got = trace[start:start + len(want)]
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not wrong, f"the line differs {wrong[0]} cycles after the first start bit"
    assert all(trace[start + len(want):]), "the line goes idle after the last stop bit"


@pytest.mark.parametrize("divisor", [4, 13])
def test_every_byte_echoes(divisor):
    echo = UartEcho(divisor)
    rng = np.random.default_rng(divisor)
    data = bytes(range(256)) if divisor == 4 else bytes(rng.integers(0, 256, 24).tolist())
    got = {}

    async def host_sends(ctx):
        await send_line(ctx, echo.rx, data, divisor)

    async def host_receives(ctx):
        got["data"] = await receive_line(ctx, echo.tx, divisor, len(data))
        got["errors"] = ctx.get(echo.frame_errors), ctx.get(echo.overruns)

    simulate(echo, host_sends, host_receives)
    assert got["data"] == data
    assert got["errors"] == (0, 0), "frame errors, overruns"


def test_bad_stop_bit_and_glitch():
    """A low pulse shorter than half a bit is no start bit; a byte whose stop bit is 0 is
    dropped and counted as a frame error; the bytes after both come through."""
    divisor = 8
    echo = UartEcho(divisor)
    got = {}

    async def host_sends(ctx):
        ctx.set(echo.rx, 0)
        await ctx.tick().repeat(divisor // 4)
        ctx.set(echo.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await send_line(ctx, echo.rx, b"\x55", divisor, stop_bit=0)
        await send_line(ctx, echo.rx, b"ok", divisor)

    async def host_receives(ctx):
        got["data"] = await receive_line(ctx, echo.tx, divisor, 2)
        got["errors"] = ctx.get(echo.frame_errors), ctx.get(echo.overruns)

    simulate(echo, host_sends, host_receives)
    assert got["data"] == b"ok"
    assert got["errors"] == (1, 0), "frame errors, overruns"
