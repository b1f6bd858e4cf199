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
"""

from __future__ import annotations

import enum

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.schedule import word_stride

ADDRESS_BITS = 32
MAX_DEPTH = 1 << 16


class BufferId(enum.IntEnum):
    """The engine's buffers, by the number the host byte port selects them with."""
    A = 0       # operand A, and quantized results
    B = 1       # operand B (the weights)
    ACC = 2     # 32-bit sums: the initial C in, the result out


class HostByteSignature(wiring.Signature):
    """A byte port into buffers, from the initiator's side (the command executor):
    ``addr`` (byte address), ``write`` with ``data`` (one byte written at the clock edge),
    ``read_data``: the byte at the ``addr`` of the previous cycle. ``buffer`` selects the
    buffer where there are several (``BufferId``)."""

    def __init__(self, buffers: int = 1):
        members = {"addr": Out(ADDRESS_BITS), "write": Out(1), "data": Out(8),
                   "read_data": In(8)}
        if buffers > 1:
            members["buffer"] = Out(range(buffers))
        super().__init__(members)


class WordBuffer(wiring.Component):
    """``depth`` words of ``items`` x ``item_bytes`` bytes (a ``lib.memory.Memory``).

    Ports: ``host`` (``HostByteSignature``: byte reads a cycle late, byte writes),
    ``host_owns``, and the engine's ``read`` (``lib.memory.ReadPort`` signature: data a
    cycle after ``addr``, held while ``en`` is low) and ``write`` (byte enables). The two
    engine ports never address one word in the same cycle: ``no_rw_check`` spares Yosys
    the bypass logic that would make it safe (the memory returns the old word in
    simulation).
    """

    def __init__(self, items: int, item_bytes: int, depth: int):
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"WordBuffer: depth must be 1..{MAX_DEPTH} words, got {depth}")
        self.items, self.item_bytes, self.depth = items, item_bytes, depth
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
        m.submodules.memory = mem = memory.Memory(
            shape=8 * self.word_bytes, depth=self.depth, init=[],
            attrs={"no_rw_check": 1})
        read, write = mem.read_port(), mem.write_port(granularity=8)
        host = self.host
        word = host.addr[self.stride_bits:]
        byte = host.addr[:self.stride_bits]
        in_word = (byte < self.word_bytes) & (word < self.depth)
        read_byte = Signal(range(self.stride), name="read_byte")
        m.d.sync += read_byte.eq(byte)
        with m.If(self.host_owns):
            m.d.comb += [read.addr.eq(word), read.en.eq(1),
                         write.addr.eq(word), write.data.eq(host.data.replicate(self.word_bytes))]
            with m.If(host.write & in_word):
                m.d.comb += write.en.eq(1 << byte)
        with m.Else():
            m.d.comb += [read.addr.eq(self.read.addr), read.en.eq(self.read.en),
                         write.addr.eq(self.write.addr), write.data.eq(self.write.data),
                         write.en.eq(self.write.en)]
        m.d.comb += self.read.data.eq(read.data)
        if self.stride_bits:
            m.d.comb += host.read_data.eq(Mux(read_byte < self.word_bytes,
                                              read.data.word_select(read_byte, 8), 0))
        else:
            m.d.comb += host.read_data.eq(read.data)
        return m
