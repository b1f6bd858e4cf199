"""Many copies of one unit in one simulation, to push millions of vectors through cocotb.

``LaneArray`` places ``lanes`` copies of a unit side by side (a test-only top: each lane
is the unit itself, unchanged); every port becomes one wide port with a whole number of
bytes per lane, so a cycle's stimulus for all lanes is one ``int.from_bytes``.
``drive_rows`` streams numpy rows through it and collects the outputs in row order.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module
from amaranth.hdl import Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

# cocotb is imported where it is used (in the simulation process), so that building a
# ``LaneArray`` does not need it.


def _field_bytes(width: int) -> int:
    return -(-width // 8)


class LaneArray(wiring.Component):
    """``lanes`` instances of ``make_unit()``; port ``p`` is ``lanes`` fields of whole bytes."""

    def __init__(self, make_unit, lanes: int):
        self.units = [make_unit() for _ in range(lanes)]
        self.lanes = lanes
        self.ports = {}                         # name -> (width, bytes per lane, flow)
        members = {}
        for name, member in self.units[0].signature.members.items():
            width = Shape.cast(member.shape).width
            nbytes = _field_bytes(width)
            self.ports[name] = (width, nbytes, member.flow)
            members[name] = (In if member.flow == In else Out)(8 * nbytes * lanes)
        super().__init__(members)

    @property
    def latency(self) -> int:
        """The unit's latency (every lane is the same unit)."""
        return self.units[0].latency

    def elaborate(self, platform):
        m = Module()
        for i, unit in enumerate(self.units):
            m.submodules[f"lane{i}"] = unit
            for name, (width, nbytes, flow) in self.ports.items():
                start = 8 * nbytes * i
                piece = getattr(self, name)[start:start + width]
                port = Value.cast(getattr(unit, name))
                if flow == In:
                    m.d.comb += port.eq(piece)
                else:
                    m.d.comb += piece.eq(port)
        return m


def field_bytes(values, nbytes: int) -> np.ndarray:
    """Row values as little-endian bytes [rows, nbytes]: integers (negative ones in two's
    complement) for fields of up to 8 bytes, or rows that already are uint8 byte arrays."""
    v = np.asarray(values)
    if v.ndim == 2:
        if v.dtype != np.uint8 or v.shape[1] > nbytes:
            raise ValueError(f"byte rows must be uint8 [rows, <= {nbytes}], got {v.dtype} {v.shape}")
        return np.pad(v, ((0, 0), (0, nbytes - v.shape[1])))
    if nbytes > 8:
        raise ValueError(f"a {nbytes}-byte field needs byte rows, not integers")
    raw = v.astype(np.int64).astype("<u8").view(np.uint8).reshape(len(v), 8)
    return raw[:, :nbytes]


def pack(rows: np.ndarray, lanes: int) -> list[int]:
    """[cycles * lanes, nbytes] bytes to one integer per cycle, lane 0 in the LSBs."""
    per_cycle = np.ascontiguousarray(rows.reshape(-1, lanes * rows.shape[1]))
    return [int.from_bytes(row.tobytes(), "little") for row in per_cycle]


def unpack(value: int, lanes: int, nbytes: int) -> np.ndarray:
    """One cycle's integer to [lanes, nbytes] bytes."""
    return np.frombuffer(value.to_bytes(lanes * nbytes, "little"), np.uint8).reshape(lanes, nbytes)


def bytes_to_ints(rows: np.ndarray) -> np.ndarray:
    """[rows, nbytes <= 8] little-endian bytes to uint64 values."""
    padded = np.zeros((len(rows), 8), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return padded.view("<u8").ravel()


async def start_clock(dut, period_ns: int = 10):
    """Start ``clk`` (if the top has one) and pulse ``rst`` for two cycles."""
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
    if not hasattr(dut, "clk"):
        return False
    Clock(dut.clk, period_ns, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    return True


async def drive_rows(dut, ports: dict, lanes: int, inputs: dict[str, np.ndarray],
                     outputs: list[str], *, latency: int, valid: str | None = "valid_in",
                     valid_out: str = "valid_out") -> dict[str, np.ndarray]:
    """Stream rows (every input array has one entry per row: an integer, or a uint8 byte
    row for ports wider than 64 bits) through a ``LaneArray``. Outputs come back as uint64
    values, or byte rows for ports wider than 64 bits.

    Rows go ``lanes`` at a time, one group per cycle; the tail group is padded and its
    padding discarded. With ``latency`` 0 the top is combinational and each group is
    read after a settle delay; otherwise outputs are taken when ``valid_out`` is high.
    """
    from cocotb.triggers import RisingEdge, Timer
    rows = len(next(iter(inputs.values())))
    cycles = -(-rows // lanes)

    def packed_rows(values, nbytes):
        data = np.zeros((cycles * lanes, nbytes), np.uint8)
        data[:rows] = field_bytes(values, nbytes)
        return pack(data, lanes)

    packed = {name: packed_rows(values, ports[name][1]) for name, values in inputs.items()}
    if valid is not None:
        packed[valid] = packed_rows(np.ones(rows, np.int64), ports[valid][1])
    handles = {name: getattr(dut, name) for name in packed}
    out_handles = {name: getattr(dut, name) for name in outputs}
    collected = {name: [] for name in outputs}

    def read_all():
        for name, h in out_handles.items():
            collected[name].append(unpack(h.value.to_unsigned(), lanes, ports[name][1]))

    if latency == 0:
        for c in range(cycles):
            for name, h in handles.items():
                h.value = packed[name][c]
            await Timer(1, unit="ns")
            read_all()
    else:
        await start_clock(dut)
        valid_handle = getattr(dut, valid_out)
        got = 0
        c = 0
        while got < cycles:
            for name, h in handles.items():
                h.value = packed[name][c] if c < cycles else 0
            c += 1
            await RisingEdge(dut.clk)
            await Timer(1, unit="ps")          # let registered outputs update
            if valid_handle.value.to_unsigned() & 1:
                read_all()
                got += 1
            if c > cycles + latency + 4:
                raise AssertionError(f"only {got} of {cycles} groups came out of the pipeline")
    out = {}
    for name, parts in collected.items():
        data = np.concatenate(parts)[:rows]
        out[name] = bytes_to_ints(data) if data.shape[1] <= 8 else data
    return out
