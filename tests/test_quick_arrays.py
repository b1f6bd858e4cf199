"""Quick tier: the output- and weight-stationary MPE arrays in Amaranth's simulator, on
small shapes: GEMMs tiled by ``hw.schedule.GemmSchedule`` in fp8 and integer modes, with
random idle input cycles and result stalls, against ``golden.matmul``; without stalls
each result must arrive exactly the array's ``latency`` after its operands."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from fp8hw.enums import Mode, SourceFormat
from golden.matmul import matmul
from hw.array import OutputStationaryArray, systolic_array
from hw.schedule import GemmSchedule
from sim.pysim import check, get, idle, put, simulate

pytestmark = pytest.mark.quick


@dataclass
class Gemm:
    """One GEMM of a run: its operands and settings, how often its input streams idle
    and its result stream stalls, and what came out: ``C``, and the clock edge (counted
    from the start of the simulation) at which each operand and result beat was taken."""
    A: np.ndarray
    B: np.ndarray
    C0: np.ndarray
    mode: str = "fp8"
    fmt_a: str = "e4m3"
    fmt_b: str = "e4m3"
    idle_in: float = 0.0
    busy_out: float = 0.0
    settings: dict | None = None                # the array's settings, if not the MPE's
    garbage: bool = False       # ws: random codes in the inactive PE rows' A and B
    C: np.ndarray = None
    accepted: dict = field(default_factory=dict)
    arrived: list = field(default_factory=list)
    done: set = field(default_factory=set)      # ws: (pass, row) whose result is in C


class GemmRun:
    """Runs GEMMs one after the other through one array (one simulation, so the array is
    built once): a testbench per input stream and one taking the results, which it puts
    back into each GEMM's C. Between GEMMs the result taker waits for ``idle`` and sets
    the next GEMM's mode and formats; the feeders wait for it."""

    def __init__(self, array, gemms: list[Gemm], rng):
        self.array, self.gemms, self.rng = array, gemms, rng
        dataflow = "os" if isinstance(array, OutputStationaryArray) else "ws"
        self.schedules = [GemmSchedule(*g.A.shape[:2], g.B.shape[1], array.rows, array.cols,
                                       dataflow, array.pipeline) for g in gemms]
        self.names = ("operands", "inits") if dataflow == "os" else ("weights", "operands")
        self.started = -1                 # the GEMM whose settings are in place

    def _beats(self, g: Gemm, s: GemmSchedule, name: str) -> list:
        """The beats of stream ``name`` (payloads, or callables that give None while a ws
        row waits for the previous pass's result)."""
        beats = []
        for t in s.tiles:
            if name == "operands" and s.dataflow == "os":
                a, b = s.os_operands(t, g.A, g.B)
                beats += [{"a": a[k].tolist(), "b": b[k].tolist(), "first": int(k == 0),
                           "last": int(k == s.K - 1)} for k in range(s.K)]
            elif name == "inits":
                beats += [col.tolist() for col in s.os_inits(t, g.C)]
            elif name == "weights":
                b, active = s.ws_weights(t, g.B)
                if g.garbage:
                    b[~active] = self.rng.integers(0, 256, b[~active].shape)
                beats += [{"b": b[r].tolist(), "active": int(active[r])}
                          for r in range(s.rows)]
            else:
                beats += [self._ws_row(g, s, t, i) for i in range(s.M)]
        return beats

    def _ws_row(self, g, s, t, i):
        def payload():
            if t.depends_on is not None and (t.depends_on, i) not in g.done:
                return None
            a, c = s.ws_operands(t, g.A, g.C)
            if g.garbage:
                a[:, t.k1 - t.k0:] = self.rng.integers(0, 256, a[:, t.k1 - t.k0:].shape)
            return {"a": a[i].tolist(), "c": c[i].tolist(), "first": int(i == 0)}
        return payload

    def _feed(self, name):
        stream = getattr(self.array, name)

        async def testbench(ctx):
            edge = 0
            for n, (g, s) in enumerate(zip(self.gemms, self.schedules)):
                while self.started < n:
                    await ctx.tick()
                    edge += 1
                g.accepted[name] = []
                for beat in self._beats(g, s, name):
                    edge += await idle(ctx, self.rng, g.idle_in)
                    payload = beat() if callable(beat) else beat
                    while payload is None:
                        await ctx.tick()
                        edge += 1
                        payload = beat()
                    edge += await put(ctx, stream, payload)
                    g.accepted[name].append(edge)
        return testbench

    async def _collect(self, ctx):
        array = self.array
        edge = 0
        for n, (g, s) in enumerate(zip(self.gemms, self.schedules)):
            assert ctx.get(array.idle), f"GEMM {n}: the array is not idle"
            settings = g.settings or {"mode": Mode[g.mode.upper()],
                                      "fmt_a": SourceFormat[g.fmt_a.upper()],
                                      "fmt_b": SourceFormat[g.fmt_b.upper()]}
            for name, value in settings.items():
                ctx.set(getattr(array, name), value)
            g.C, columns = np.array(g.C0, np.uint32), {}
            self.started = n
            for t in s.tiles:
                for index in range(s.M if s.dataflow == "ws" else s.cols):
                    edge += await idle(ctx, self.rng, g.busy_out)
                    payload, waited = await get(ctx, array.results)
                    edge += waited
                    g.arrived.append(edge)
                    values = np.array(list(payload.c), np.uint32)
                    if s.dataflow == "ws":
                        g.C[index, t.n0:t.n1] = values[:t.n1 - t.n0]
                        g.done.add((t.index, index))
                        continue
                    assert payload.last == (index == s.cols - 1), f"tile {t.index} beat {index}"
                    columns.setdefault(t.index, []).append(values)
                    if index == s.cols - 1:
                        s.store(t, g.C, np.array(columns.pop(t.index)))
            await ctx.tick()
            edge += 1

    def run(self) -> None:
        simulate(self.array, self._collect, *(self._feed(name) for name in self.names),
                 max_cycles=50_000)


def random_gemm(rng, M, K, N, mode="fp8", fmt_a="e4m3", fmt_b="e4m3", **stalls) -> Gemm:
    """Codes of every kind and a random initial C (in fp8 mode a dlfloat16 code in the
    low 16 bits, whose upper bits the array ignores; in integer modes any value)."""
    A = rng.integers(0, 256, (M, K)).astype(np.uint8)
    B = rng.integers(0, 256, (K, N)).astype(np.uint8)
    C0 = rng.integers(0, 1 << 32, (M, N), dtype=np.uint64).astype(np.uint32)
    return Gemm(A, B, C0, mode, fmt_a, fmt_b, **stalls)


def check_result(array, g: Gemm) -> None:
    want = matmul(g.A, g.B, g.C0, g.mode, g.fmt_a, g.fmt_b, array.bias)
    (M, K), N = g.A.shape, g.B.shape[1]

    def describe(flat):
        i, j = divmod(flat, N)
        return (f"{type(array).__name__} {array.rows}x{array.cols} pipeline "
                f"{array.pipeline}, {g.mode} {g.fmt_a}x{g.fmt_b} GEMM {M}x{K}x{N}: C[{i},{j}] "
                f"A[{i},:]={[hex(v) for v in g.A[i]]} B[:,{j}]={[hex(v) for v in g.B[:, j]]} "
                f"C0=0x{g.C0[i, j]:08x} rtl=0x{g.C[i, j]:08x} golden=0x{want[i, j]:08x}")

    check(f"GEMM {M}x{K}x{N} {g.mode}", g.C.ravel(), want.ravel(), describe)


def check_latency(array, g: Gemm, s: GemmSchedule) -> None:
    """With no stall, results come exactly ``array.latency`` cycles after their operands:
    ws, each row's result after the row; os, each tile's first result beat after its
    last operand beat, and the tile's other beats ``hop + 1`` cycles apart."""
    taken = g.accepted["operands"]
    if s.dataflow == "ws":
        delays = np.array(g.arrived) - np.array(taken)
    else:
        arrived = np.array(g.arrived).reshape(len(s.tiles), s.cols)
        delays = arrived[:, 0] - np.array(taken[s.K - 1::s.K])
        spacing = np.diff(arrived, axis=1)
        assert np.all(spacing == array.hop + 1), f"result beats {spacing} cycles apart"
    assert np.all(delays == array.latency), (
        f"results {delays.tolist()} cycles after their operands, latency {array.latency}")


# (dataflow, rows, cols, pipeline): both small shapes, the MPE at depths 0, 2 and 5.
ARRAYS = [("os", 2, 2, 2), ("os", 2, 3, 0), ("ws", 2, 2, 2), ("ws", 2, 3, 5)]


@pytest.mark.parametrize("dataflow,rows,cols,pipeline", ARRAYS)
def test_gemms(dataflow, rows, cols, pipeline):
    """One GEMM with no stall (the latency check), then GEMMs in fp8 with both format
    pairs, int4 and int2 with random idle inputs and stalled results; partial tiles in
    every dimension."""
    array = systolic_array(rows, cols, dataflow, pipeline=pipeline)
    rng = np.random.default_rng(pipeline)
    stalls = {"idle_in": 0.3, "busy_out": 0.3, "garbage": True}   # inactive rows: random
    gemms = [random_gemm(rng, 5, 3, 4),
             random_gemm(rng, 3, 7, 2, "int4", **stalls),
             random_gemm(rng, 2, 5, 3, "fp8", "e5m2", "e4m3", **stalls),
             random_gemm(rng, 4, 4, 5, "int2", **stalls),
             random_gemm(rng, 5, 2, 3, "fp8", "e4m3", "e5m2", **stalls)]
    run = GemmRun(array, gemms, rng)
    run.run()
    for g in gemms:
        check_result(array, g)
    check_latency(array, gemms[0], run.schedules[0])
