"""The GEMM engine's buffers: ``lib.memory`` memories of words, each with a host byte
port and an engine word port (one read and one write port, shared).

A word is ``items`` values of ``item_bytes`` bytes (little-endian). The host sees bytes
at 32-bit byte addresses: byte address ``a`` is byte ``a % stride`` of word
``a // stride``, ``stride`` = ``hw.schedule.word_stride(items * item_bytes)`` (a power of
2); the bytes of a stride past the word read 0 and ignore writes, as do words past the
depth. The engine reads and writes whole words, or some of their bytes (byte enables).

Who drives the memory ports is chosen by ``host_owns``: high, the host byte port drives
them (the engine's are ignored); low, the engine's do (host writes are ignored, and host
reads return garbage). The engine raises it exactly while it is idle.

A ``single_port`` buffer does one access a cycle, a read or a write (a write wins; the read
port's data is then undefined until its next read): the iCE40 UP5K's SPRAM
(``SB_SPRAM256KA``, 16K x 16 bits each), which it becomes on that device (128 KB that
Yosys cannot infer, since Amaranth gives every memory initial contents); elsewhere, and
in simulation, a ``lib.memory`` that reads only when it does not write.
"""

from __future__ import annotations

import enum

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.schedule import word_stride

ADDRESS_BITS = 32
# A host read's cycles: the block RAM's, then a register after the byte select (a word of
# 72 bytes is a wide multiplexer over block RAMs spread across the ECP5's die).
HOST_READ_LATENCY = 2
MAX_DEPTH = 1 << 16
SPRAM_DEPTH = 1 << 14          # words of 16 bits in one SB_SPRAM256KA
SPRAM_WIDTH = 16


def spram_count(word_bits: int, depth: int) -> int:
    """SB_SPRAM256KA blocks a single-port buffer of ``depth`` words of ``word_bits`` takes."""
    return -(-word_bits // SPRAM_WIDTH) * -(-depth // SPRAM_DEPTH)


def has_spram(platform) -> bool:
    """The platform is an iCE40 UP device (its single-port RAMs are SB_SPRAM256KA)."""
    return str(getattr(platform, "device", "")).upper().startswith("ICE40UP")


class BufferId(enum.IntEnum):
    """The engine's buffers, by the number the host byte port selects them with."""
    A = 0       # operand A, and quantized results
    B = 1       # operand B (the weights)
    ACC = 2     # 32-bit sums: the initial C in, the result out


class HostByteSignature(wiring.Signature):
    """A byte port into buffers, from the initiator's side (the command executor):
    ``addr`` (byte address), ``write`` with ``data`` (one byte written at the clock edge),
    ``read_data``: the byte at the ``addr`` of ``HOST_READ_LATENCY`` cycles before (a read
    a cycle). ``buffer`` selects the buffer where there are several (``BufferId``)."""

    def __init__(self, buffers: int = 1):
        members = {"addr": Out(ADDRESS_BITS), "write": Out(1), "data": Out(8),
                   "read_data": In(8)}
        if buffers > 1:
            members["buffer"] = Out(range(buffers))
        super().__init__(members)


class WordBuffer(wiring.Component):
    """``depth`` words of ``items`` x ``item_bytes`` bytes (a ``lib.memory.Memory``).

    Ports: ``host`` (``HostByteSignature``: byte reads two cycles late, byte writes),
    ``host_owns``, and the engine's ``read`` (``lib.memory.ReadPort`` signature: data a
    cycle after ``addr``, held while ``en`` is low) and ``write`` (byte enables). The two
    engine ports never address one word in the same cycle: ``no_rw_check`` spares Yosys
    the bypass logic that would make it safe (the memory returns the old word in
    simulation). ``single_port``: see the module docstring (a host write, too, leaves the
    host read data undefined for the next cycle).
    """

    def __init__(self, items: int, item_bytes: int, depth: int, single_port: bool = False):
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"WordBuffer: depth must be 1..{MAX_DEPTH} words, got {depth}")
        self.items, self.item_bytes, self.depth = items, item_bytes, depth
        self.single_port = bool(single_port)
        self.word_bytes = items * item_bytes
        self.stride = word_stride(self.word_bytes)
        self.size = depth * self.stride          # host bytes, padding included
        self.stride_bits = self.stride.bit_length() - 1
        self.addr_width = max(depth - 1, 0).bit_length()
        width = 8 * self.word_bytes
        super().__init__({
            "host": In(HostByteSignature()),
            "host_owns": In(1),
            "read": Out(memory.ReadPort.Signature(addr_width=self.addr_width, shape=width)),
            "write": Out(memory.WritePort.Signature(addr_width=self.addr_width, shape=width,
                                                    granularity=8)),
        })

    def elaborate(self, platform):
        m = Module()
        width = 8 * self.word_bytes
        if self.single_port and has_spram(platform):
            read, write = self._spram(m)
        else:
            m.submodules.memory = mem = memory.Memory(
                shape=width, depth=self.depth, init=[], attrs={"no_rw_check": 1})
            read, write = mem.read_port(), mem.write_port(granularity=8)
            if self.single_port:
                # The memory's ports, seen through one: a write cycle does not read.
                outer = memory.ReadPort.Signature(addr_width=self.addr_width,
                                                  shape=width).create(path=("single",))
                m.d.comb += [read.addr.eq(outer.addr), outer.data.eq(read.data),
                             read.en.eq(outer.en & (write.en == 0))]
                read = outer
        host = self.host
        word = host.addr[self.stride_bits:]
        byte = host.addr[:self.stride_bits]
        in_word = (byte < self.word_bytes) & (word < self.depth)
        read_byte = Signal(range(self.stride), name="read_byte")
        m.d.sync += read_byte.eq(byte)
        # Muxes, not processes: Icarus never runs a process whose inputs keep their
        # initial values, which would leave the ports X.
        owns = self.host_owns
        host_en = Mux(host.write & in_word, 1 << byte, 0)
        m.d.comb += [
            read.addr.eq(Mux(owns, word, self.read.addr)),
            read.en.eq(owns | self.read.en),
            write.addr.eq(Mux(owns, word, self.write.addr)),
            write.data.eq(Mux(owns, host.data.replicate(self.word_bytes), self.write.data)),
            write.en.eq(Mux(owns, host_en, self.write.en))]
        m.d.comb += self.read.data.eq(read.data)
        if self.stride_bits:
            m.d.sync += host.read_data.eq(Mux(read_byte < self.word_bytes,
                                              read.data.word_select(read_byte, 8), 0))
        else:
            m.d.sync += host.read_data.eq(read.data)
        return m

    def _spram(self, m):
        """Read and write ports onto SB_SPRAM256KA blocks: 16-bit lanes side by side, banks
        of 16K words in depth (the bank of the last read picks the data out)."""
        width = 8 * self.word_bytes
        read = memory.ReadPort.Signature(addr_width=self.addr_width,
                                         shape=width).create(path=("spram_read",))
        write = memory.WritePort.Signature(addr_width=self.addr_width, shape=width,
                                           granularity=8).create(path=("spram_write",))
        lanes = -(-width // SPRAM_WIDTH)
        banks = -(-self.depth // SPRAM_DEPTH)
        writing = write.en != 0
        addr = Mux(writing, write.addr, read.addr)
        bank = addr[14:] if banks > 1 else 0
        read_bank = Signal(range(banks), name="read_bank")
        with m.If(read.en & ~writing):
            m.d.sync += read_bank.eq(bank)
        data_in = Cat(write.data, Signal(lanes * SPRAM_WIDTH - width))
        byte_en = Cat(write.en, Signal(lanes * 2 - self.word_bytes))
        outs = []
        for b in range(banks):
            out = Signal(lanes * SPRAM_WIDTH, name=f"spram_out{b}")
            select = (bank == b) if banks > 1 else 1
            for j in range(lanes):
                mask = Cat(byte_en[2 * j].replicate(2), byte_en[2 * j + 1].replicate(2))
                m.submodules[f"spram_{b}_{j}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=Cat(addr, Const(0, 14))[:14], i_DATAIN=data_in[16 * j:16 * j + 16],
                    i_MASKWREN=mask, i_WREN=writing,
                    i_CHIPSELECT=select & (writing | read.en), i_CLOCK=ClockSignal(),
                    i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=out[16 * j:16 * j + 16])
            outs.append(out)
        data = outs[0]
        for b in range(1, banks):
            data = Mux(read_bank == b, outs[b], data)
        m.d.comb += read.data.eq(data[:width])
        return read, write
