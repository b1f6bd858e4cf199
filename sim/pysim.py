"""Testbench helpers for Amaranth's own simulator (``amaranth.sim``), the quick test tier.

Small async functions shared by the ``tests/test_quick_*.py`` files instead of copied:

* ``simulate`` runs a component with a clock, critical testbenches and a watchdog;
* ``stream_rows`` pushes rows through a pipelined unit one a cycle and collects each
  row's outputs exactly ``latency`` cycles later, checking ``valid_out`` on every cycle,
  so a unit whose ``latency`` property is wrong fails;
* ``put`` and ``get`` move one beat through an ``amaranth.lib.stream`` interface;
* ``send_line`` and ``receive_line`` are the far end of a UART line (8N1);
* ``check`` compares with the golden model like the cocotb tier (``sim.checks``): the
  first mismatches are printed with their inputs in hex and decoded;
* ``PlantedBug`` wraps a unit with a one-bit error, to show that a check catches it.

Testbenches see settled values: after ``ctx.set`` a ``ctx.get`` of a combinational output
already reflects the new inputs, and after ``await ctx.tick()`` the registers hold what
the clock edge loaded.
"""

from __future__ import annotations

import logging
import random

import numpy as np
from amaranth import Module
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from sim.checks import compare, hex_and_value

__all__ = ["PlantedBug", "check", "get", "hex_and_value", "idle", "put", "receive_line",
           "send_line", "simulate", "stream_rows"]

LOG = logging.getLogger("sim.pysim")
CLOCK_PERIOD = 1e-8


def simulate(dut, *testbenches, background=(), max_cycles: int = 50_000) -> None:
    """Run ``dut`` until every testbench (``async def tb(ctx)``) returns; ``background``
    testbenches (models of the unit's surroundings, endless loops) stop with them. A clock
    drives the ``sync`` domain if the design has one; a watchdog fails the run after
    ``max_cycles`` clock cycles, so a handshake that never completes is an error, not a
    hang."""
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD, if_exists=True)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    for testbench in background:
        sim.add_testbench(testbench, background=True)

    async def watchdog(ctx):
        await ctx.delay(max_cycles * CLOCK_PERIOD)
        raise AssertionError(f"the simulation ran {max_cycles} cycles without finishing")

    sim.add_testbench(watchdog, background=True)
    sim.run()


def port_values(values) -> list[int]:
    """Row values for one port as Python integers: integers as they are (negative ones
    for signed ports), or rows of uint8 codes packed little-endian (way i in bits 8i..)."""
    values = np.asarray(values)
    if values.ndim == 2:
        return [int.from_bytes(row.astype(np.uint8).tobytes(), "little") for row in values]
    return [int(v) for v in values]


def _junk(port: Value, rng: random.Random) -> int:
    width = len(port)
    value = rng.getrandbits(width)
    if port.shape().signed and value >> (width - 1):
        value -= 1 << width
    return value


async def stream_rows(ctx, unit, inputs: dict, outputs: list[str], *, latency: int,
                      gaps=None, seed: int = 0, expect=None, valid_in: str = "valid_in",
                      valid_out: str = "valid_out") -> dict[str, np.ndarray]:
    """Apply row i of ``inputs`` (port name -> one value per row, see ``port_values``) on
    its own cycle, ``gaps[i]`` idle cycles before it (``valid_in`` low, random junk on the
    other inputs), and return each row's ``outputs`` as they are ``latency`` cycles later
    (object arrays of Python integers, one entry per row).

    ``valid_out``, where the unit has one, is checked on every cycle: high exactly
    ``latency`` cycles after a row entered (only for the rows where ``expect`` is true, if
    given; the other rows' outputs are left 0). With ``latency`` 0 the outputs are read
    right after the inputs are set, and no clock edge is needed (so without ``gaps``).
    """
    members = unit.signature.members
    columns = [(Value.cast(getattr(unit, name)), port_values(v)) for name, v in inputs.items()]
    rows = len(columns[0][1])
    vin = Value.cast(getattr(unit, valid_in)) if valid_in in members else None
    vout = Value.cast(getattr(unit, valid_out)) if valid_out in members else None
    outs = {name: Value.cast(getattr(unit, name)) for name in outputs}
    got = {name: np.zeros(rows, object) for name in outputs}
    expect = np.ones(rows, bool) if expect is None else np.asarray(expect, bool)
    if latency == 0 and gaps is not None and np.any(gaps):
        raise ValueError("idle cycles need a clocked unit (latency > 0)")
    rng = random.Random(seed)

    cycle_rows = []                       # the row entering on each cycle, None when idle
    for i in range(rows):
        cycle_rows += [None] * (int(gaps[i]) if gaps is not None else 0) + [i]
    cycle_rows += [None] * latency        # drain
    for cycle, row in enumerate(cycle_rows):
        for port, values in columns:
            ctx.set(port, values[row] if row is not None else _junk(port, rng))
        if vin is not None:
            ctx.set(vin, row is not None)
        source = cycle_rows[cycle - latency] if cycle >= latency else None
        want_valid = source is not None and bool(expect[source])
        if vout is not None and ctx.get(vout) != want_valid:
            raise AssertionError(
                f"cycle {cycle}: valid_out is {ctx.get(vout)}, expected {int(want_valid)}: "
                f"{'row ' + str(source) if source is not None else 'no row'} entered "
                f"latency = {latency} cycles earlier")
        if want_valid:
            for name, port in outs.items():
                got[name][source] = ctx.get(port)
        if latency:
            await ctx.tick()
    return got


async def idle(ctx, rng: np.random.Generator | None, chance: float) -> int:
    """Wait a random number of cycles (each further one with probability ``chance``);
    returns how many."""
    cycles = 0
    while rng is not None and rng.random() < chance:
        await ctx.tick()
        cycles += 1
    return cycles


async def put(ctx, stream, payload) -> int:
    """Offer ``payload`` on ``stream`` until it is taken; returns the cycles that took
    (1 when taken at the first clock edge)."""
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    cycles = 0
    while True:
        *_, ready = await ctx.tick().sample(stream.ready)
        cycles += 1
        if ready:
            break
    ctx.set(stream.valid, 0)
    return cycles


async def get(ctx, stream):
    """Take the next beat from ``stream`` (``ready`` high until it comes); returns
    (payload, cycles waited, 1 when it was there at the first clock edge)."""
    ctx.set(stream.ready, 1)
    cycles = 0
    while True:
        *_, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        cycles += 1
        if valid:
            break
    ctx.set(stream.ready, 0)
    return payload, cycles


async def send_line(ctx, line, data: bytes, divisor: int, *, stop_bit: int = 1) -> None:
    """Drive the serial ``line`` with ``data``, 8N1, ``divisor`` cycles a bit; a bad
    ``stop_bit`` (0) is followed by two idle bits, so the receiver sees the line idle."""
    for byte in data:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop_bit]:
            ctx.set(line, bit)
            await ctx.tick().repeat(divisor)
        ctx.set(line, 1)
        if stop_bit == 0:
            await ctx.tick().repeat(2 * divisor)


async def receive_line(ctx, line, divisor: int, count: int) -> bytes:
    """The next ``count`` 8N1 bytes on ``line``, each bit sampled in its middle; a stop
    bit that is not 1 fails."""
    data = bytearray()
    while len(data) < count:
        await ctx.tick().until(~line)                 # the start bit
        await ctx.tick().repeat(divisor // 2)
        assert ctx.get(line) == 0, "a start bit shorter than half a bit"
        byte = 0
        for i in range(8):
            await ctx.tick().repeat(divisor)
            byte |= ctx.get(line) << i
        await ctx.tick().repeat(divisor)
        assert ctx.get(line) == 1, f"byte {len(data)} (0x{byte:02x}) has a bad stop bit"
        data.append(byte)
    return bytes(data)


def check(what: str, got, want, describe) -> None:
    """Assert ``got == want`` row by row; the first mismatches are logged (and the first
    is in the assertion message) through ``describe(i)``, with inputs in hex and decoded."""
    compare(LOG, what, np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64),
            describe)


class PlantedBug(wiring.Component):
    """``unit`` with bit 0 of its output ``port`` inverted on the cycles where
    ``when(unit)`` (an expression of the unit's ports) is true, and otherwise the same:
    same ports, and its other attributes (``latency``, ``bias``...) read through."""

    def __init__(self, unit, port: str, when):
        self.unit, self.port, self.when = unit, port, when
        super().__init__(dict(unit.signature.members.items()))
        self.reads_through = True

    def __getattr__(self, name):
        # Only once built: the ports themselves must not be found on the unit.
        if "reads_through" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.unit, name)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self.unit
        for name, member in self.signature.members.items():
            outer, inner = Value.cast(getattr(self, name)), Value.cast(getattr(self.unit, name))
            if member.flow == In:
                m.d.comb += inner.eq(outer)
            elif name == self.port:
                m.d.comb += outer.eq(inner ^ self.when(self.unit))
            else:
                m.d.comb += outer.eq(inner)
        return m
