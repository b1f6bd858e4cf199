"""Runs a whole GEMM through a systolic array top in cocotb, with the tiling scheduler.

``run_gemm`` drives the array's streams cycle by cycle from a ``GemmSchedule``: operand,
init and weight beats go in as soon as the array takes them (or with random idle cycles),
result beats are taken with ``ready`` toggled at random if asked, and each result beat is
put back into C. For ``ws`` a pass's row waits for the previous pass's result of the same
row, so passes over k overlap in the array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cocotb.triggers import RisingEdge, Timer

from fp8hw.enums import Mode, SourceFormat
from hw.schedule import GemmSchedule
from sim.lanes import start_clock


def _codes(values, nbytes_each: int) -> int:
    """Unsigned values (any shape, row-major: the first is the lowest) packed
    little-endian, ``nbytes_each`` bytes per value."""
    dtype = {1: "<u1", 4: "<u4"}[nbytes_each]
    return int.from_bytes(np.asarray(values).astype(dtype).tobytes(), "little")


def _sums(values, width: int) -> int:
    """Sums packed ``width`` bits each, the first lowest (32: whole words)."""
    if width == 32:
        return _codes(values, 4)
    packed = 0
    for n, v in enumerate(values):
        packed |= int(v) << (width * n)
    return packed


def _unpack(value: int, count: int, width: int = 32) -> np.ndarray:
    """The low ``count`` fields of ``width`` bits of ``value`` (flags above them are
    dropped)."""
    if width == 32:
        value &= (1 << 32 * count) - 1
        return np.frombuffer(value.to_bytes(4 * count, "little"), "<u4").copy()
    mask = (1 << width) - 1
    return np.array([(value >> (width * n)) & mask for n in range(count)], np.uint32)


@dataclass
class GemmStats:
    cycles: int          # first operand taken to last result taken
    stall_cycles: int    # cycles the result stream was not ready while it had a result
    macs: int            # M * K * N


class _Stream:
    def __init__(self, dut, name):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")


async def reset_array(dut, settings: dict | None = None):
    """Drive every input to idle values, start the clock and reset; ``settings`` as for
    ``set_settings``."""
    for name in ("operands", "inits", "weights"):
        if hasattr(dut, f"{name}__valid"):
            getattr(dut, f"{name}__valid").value = 0
            getattr(dut, f"{name}__payload").value = 0
    dut.results__ready.value = 0
    set_settings(dut, settings)
    await start_clock(dut)


def mpe_settings(mode="fp8", fmt_a="e4m3", fmt_b="e4m3") -> dict:
    """The MPE array's settings ports for a GEMM."""
    return {"mode": int(Mode.from_label(mode)), "fmt_a": int(SourceFormat.from_label(fmt_a)),
            "fmt_b": int(SourceFormat.from_label(fmt_b))}


def set_settings(dut, settings: dict | None = None):
    """Set the array's run-time settings ports (default: the MPE's, fp8 e4m3 x e4m3)."""
    for name, value in (settings or mpe_settings()).items():
        handle = getattr(dut, name)
        handle.value = int(value) & ((1 << len(handle)) - 1)    # signed: two's complement


async def run_gemm(dut, schedule: GemmSchedule, A, B, C=None, *, settings=None,
                   sum_width=32, rng=None, idle_in=0.0, busy_out=0.0,
                   max_cycles=None) -> tuple[np.ndarray, GemmStats]:
    """Run ``A @ B (+ C)`` on the array with its ``settings`` (``mpe_settings`` by
    default); returns C and the cycle counts. A and B may hold chunks of codes
    (``hw.schedule.chunk_operands``, for the FP8-SEB array, whose sums are
    ``sum_width`` = 30 bits). ``rng`` with ``idle_in`` (chance an input stream holds back
    a beat) and ``busy_out`` (chance the result stream is not ready) makes the
    handshakes random. Call with the array idle."""
    s = schedule
    assert int(dut.idle.value), "the array must be idle to change mode or start a GEMM"
    set_settings(dut, settings)
    C = np.zeros((s.M, s.N), np.uint32) if C is None else np.array(C, np.uint32)
    R, Cn, lanes = s.rows, s.cols, s.lanes
    codes = int(np.prod(np.shape(A)[2:], dtype=int))      # codes of A a PE takes
    results = _Stream(dut, "results")

    # Beat sources: lists of (payload int) or callables producing one when possible.
    operand_beats, init_beats, weight_beats = [], [], []
    expect = []                        # (tile, index of beat) per result beat, in order
    if s.dataflow == "os":
        for t in s.tiles:
            a, b = s.os_operands(t, A, B)
            flags_at = 8 * (lanes + Cn)
            for k in range(s.K):
                operand_beats.append(_codes(a[k], 1) | (_codes(b[k], 1) << 8 * lanes)
                                     | (int(k == 0) << flags_at) | (int(k == s.K - 1)
                                                                    << flags_at + 1))
            init_beats += [_codes(col, 4) for col in s.os_inits(t, C)]
            expect += [(t, j) for j in range(Cn)]
        result_count = lanes
    else:
        ws_rows = {}
        for t in s.tiles:
            b, active = s.ws_weights(t, B)
            weight_beats += [_codes(b[r], 1) | (int(active[r]) << 8 * codes * Cn)
                             for r in range(R)]
            a, _ = s.ws_operands(t, A, C)
            ws_rows[t.index] = a
            operand_beats += [(t, i) for i in range(s.M)]
            expect += [(t, i) for i in range(s.M)]
        result_count = Cn
    done = set()                       # (tile index, beat index) of results received
    out_beats: dict[int, list] = {t.index: [] for t in s.tiles}

    def operand_payload(n):
        beat = operand_beats[n]
        if s.dataflow == "os":
            return beat
        t, i = beat
        if t.depends_on is not None and (t.depends_on, i) not in done:
            return None                # its sums are still in the array
        c = np.zeros(Cn, np.uint32)
        c[:t.n1 - t.n0] = C[i, t.n0:t.n1]
        return (_codes(ws_rows[t.index][i], 1) | (_sums(c, sum_width) << 8 * codes * R)
                | (int(i == 0) << 8 * codes * R + sum_width * Cn))

    feeds = [(_Stream(dut, "operands"), operand_beats, operand_payload)]
    if init_beats:
        feeds.append((_Stream(dut, "inits"), init_beats, lambda n: init_beats[n]))
    if weight_beats:
        feeds.append((_Stream(dut, "weights"), weight_beats, lambda n: weight_beats[n]))
    sent = [0] * len(feeds)
    got = 0
    cycle = 0
    started = ended = None
    stalls = 0
    limit = max_cycles or 50 * (len(operand_beats) * max(s.slots, 1) + 4 * (R + Cn) ** 2
                                + 1000)
    while got < len(expect):
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")                  # registers have settled
        cycle += 1
        if cycle > limit:
            raise AssertionError(f"the array stopped: {got} of {len(expect)} result beats "
                                 f"after {cycle} cycles, beats sent {sent}")
        offered = []
        for f, (stream, beats, make) in enumerate(feeds):
            payload = None
            if sent[f] < len(beats) and not (rng is not None and rng.random() < idle_in):
                payload = make(sent[f])
            stream.valid.value = int(payload is not None)
            if payload is not None:
                stream.payload.value = payload
            offered.append(payload is not None)
        take = not (rng is not None and rng.random() < busy_out)
        results.ready.value = int(take)
        await Timer(1, unit="ns")                  # ready follows the inputs
        for f, (stream, _, _) in enumerate(feeds):
            if offered[f] and int(stream.ready.value):
                if f == 0 and started is None:
                    started = cycle
                sent[f] += 1
        if int(results.valid.value):
            if take:
                t, index = expect[got]
                value = _unpack(results.payload.value.to_unsigned(), result_count,
                                sum_width)
                out_beats[t.index].append(value)
                got += 1
                if s.dataflow == "ws":
                    C[index, t.n0:t.n1] = value[:t.n1 - t.n0]
                    done.add((t.index, index))
                elif len(out_beats[t.index]) == Cn:
                    s.store(t, C, np.array(out_beats[t.index]))
                ended = cycle
            else:
                stalls += 1
    await RisingEdge(dut.clk)                      # the last transfer happens here
    for stream, _, _ in feeds:
        stream.valid.value = 0
    results.ready.value = 0
    await Timer(1, unit="ns")
    assert int(dut.idle.value), "the array is not idle after its last result"
    return C, GemmStats(ended - started + 1, stalls, s.macs)
