"""The measurement harness: registers around a unit, fed by a serial shift chain and
folded into one pin (see ``hw.bench``), and the wires-only unit that measures the harness
by itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from operator import xor

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal

from hw.bench import BenchError


@dataclass(frozen=True)
class Port:
    direction: str      # "input" or "output"
    width: int
    name: str


_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\S+);", re.M)


def module_ports(verilog_text: str, module: str) -> list[Port]:
    """The ports of ``module`` in Verilog as Amaranth writes it, in declaration order."""
    match = re.search(rf"^module {re.escape(module)}\s*\((.*?)^endmodule", verilog_text,
                      re.S | re.M)
    if match is None:
        raise BenchError(f"module {module} not found in its Verilog")
    ports = []
    for direction, msb, lsb, name in _PORT.findall(match[1]):
        width = abs(int(msb) - int(lsb)) + 1 if msb else 1
        ports.append(Port(direction, width, name))
    return ports


def _is_clock(port: Port) -> bool:
    return port.direction == "input" and port.name == "clk" and port.width == 1


def harness_widths(ports: list[Port]) -> tuple[int, int]:
    """Bits of the input chain and of the output registers for a unit with ``ports``."""
    w_in = sum(p.width for p in ports if p.direction == "input" and not _is_clock(p))
    w_out = sum(p.width for p in ports if p.direction == "output")
    return w_in, w_out


class Harness(Elaboratable):
    """Registers around the module ``module`` with ports ``ports``, instantiated as
    ``unit``."""

    TREE_FANIN = 4

    def __init__(self, module: str, ports: list[Port]):
        self.module = module
        self.unit_ports = list(ports)
        self.w_in, self.w_out = harness_widths(self.unit_ports)
        self.clk = Signal()
        self.sin = Signal()
        self.sout = Signal()
        self.chain_out = Signal()

    @property
    def ports(self):
        return [self.clk, self.sin, self.sout, self.chain_out]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", reset_less=True)
        m.d.comb += cd.clk.eq(self.clk)

        chain = Signal(self.w_in)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        m.d.comb += self.chain_out.eq(chain[-1])

        connections, at_in, outputs = {}, 0, []
        for port in self.unit_ports:
            if _is_clock(port):
                connections[f"i_{port.name}"] = ClockSignal("sync")
            elif port.direction == "input":
                connections[f"i_{port.name}"] = chain[at_in:at_in + port.width]
                at_in += port.width
            else:
                wire = Signal(port.width, name=f"u_{port.name}")
                connections[f"o_{port.name}"] = wire
                outputs.append(wire)
        m.submodules.unit = Instance(self.module, **connections)
        captured = Signal(self.w_out)
        m.d.sync += captured.eq(Cat(*outputs))

        level = list(captured)
        while len(level) > 1:
            folded = []
            for i in range(0, len(level), self.TREE_FANIN):
                bit = Signal(name=f"xor_{len(level)}_{i}")
                m.d.sync += bit.eq(reduce(xor, level[i:i + self.TREE_FANIN]))
                folded.append(bit)
            level = folded
        m.d.comb += self.sout.eq(level[0] if level else 0)
        return m


PASSTHROUGH = "passthrough"


def passthrough_verilog(w_in: int, w_out: int) -> str:
    """A module of wires with the harness widths: output bit j = input bit j mod w_in."""
    bits = ", ".join(f"i[{j % w_in}]" for j in reversed(range(w_out)))
    return (f"module {PASSTHROUGH}(input [{w_in - 1}:0] i, output [{w_out - 1}:0] o);\n"
            f"  assign o = {{{bits}}};\nendmodule\n")


def harness_verilog(harness: Harness, name: str = "bench_top") -> str:
    return amaranth_verilog.convert(harness, name=name, ports=harness.ports, emit_src=False)
