"""The board flow (``boards.flow.build``) on a design of a few cells, so that it can be
built more than once: the stages it shows, the tools' output with verbose, and the reuse
of the last bitstream (the same build reuses it; ``force``, another seed, another design
or a changed bitstream build again)."""

import io
import re
from dataclasses import replace

import pytest
from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import io as amaranth_io

from boards import flow, toolchain
from boards.progress import Progress
from boards.targets import BoardError, get_board


class Counter(Elaboratable):
    """A counter on the iCEBreaker's 12 MHz clock, its top bit on a LED."""

    def __init__(self, width: int = 20):
        self.width = width

    def elaborate(self, platform):
        m = Module()
        counter = Signal(self.width)
        m.d.sync += counter.eq(counter + 1)
        m.submodules.led = led = amaranth_io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(counter[-1])
        return m


class Scrambler(Elaboratable):
    """``width`` flip-flops, each the XOR of its neighbours and the button: a logic cell
    each, with no carry chain."""

    def __init__(self, width: int):
        self.width = width

    def elaborate(self, platform):
        m = Module()
        m.submodules.button = button = amaranth_io.Buffer(
            "i", platform.request("button", 0, dir="-"))
        m.submodules.led = led = amaranth_io.Buffer("o", platform.request("led", 0, dir="-"))
        bits = Signal(self.width)
        m.d.sync += bits.eq(Cat(button.i, bits[:-1]) ^ Cat(bits[1:], bits[0]))
        m.d.comb += led.o.eq(bits[-1])
        return m


# The iCEBreaker at its oscillator's frequency: the counter's clock is the one checked.
TARGET = replace(get_board("icebreaker"), clock_mhz=12)


class RebuildAttempted(Exception):
    pass


def refuse_to_run(*args, **kwargs):
    raise RebuildAttempted


def test_build_shows_stages_and_reuses(tmp_path, monkeypatch):
    out = io.StringIO()
    first = flow.build(TARGET, Counter(), tmp_path, progress=Progress(stream=out, verbose=True))
    lines = out.getvalue().splitlines()
    stages = [m[1] for ln in lines if (m := re.match(r"^\[build \d+:\d\d\] (.*)$", ln))]
    assert stages[:3] == ["elaboration", "yosys: synthesis", "nextpnr: reading the netlist"]
    assert stages[-2:] == ["icepack: bitstream", "done"]
    assert {"nextpnr: placement", "nextpnr: routing"} <= set(stages)
    assert "Info: Routing.." in lines
    assert any(ln.startswith("Info: Max frequency") for ln in lines)
    assert not first.reused and first.timing_met and first.bitstream.stat().st_size > 0
    assert first.critical_path is not None and first.critical_path.logic_levels > 0
    built = first.bitstream.stat().st_mtime_ns

    # The same design, tools and seed: the bitstream and the report of the last build.
    monkeypatch.setattr(toolchain, "run_tool", refuse_to_run)
    out = io.StringIO()
    again = flow.build(TARGET, Counter(), tmp_path, progress=Progress(stream=out))
    assert again.reused and "reused the last build" in again.report()
    assert (again.fmax, again.utilization, again.ffs, again.critical_path, again.seconds) == \
        (first.fmax, first.utilization, first.ffs, first.critical_path, first.seconds)
    assert again.report().split("\n", 1)[1].replace("time (of that build)", "time") == \
        first.report()
    assert again.bitstream.stat().st_mtime_ns == built
    assert out.getvalue().splitlines()[-1].endswith(f"reused {first.bitstream}")

    # Anything else builds again (the tools are refused here, so trying is the proof).
    for change in (dict(force=True), dict(seed=2)):
        with pytest.raises(RebuildAttempted):
            flow.build(TARGET, Counter(), tmp_path, progress=Progress(stream=io.StringIO()),
                       **change)
    monkeypatch.undo()
    forced = flow.build(TARGET, Counter(), tmp_path, force=True,
                        progress=Progress(stream=io.StringIO()))
    assert not forced.reused and forced.bitstream.stat().st_mtime_ns != built
    assert forced.fmax == first.fmax             # nextpnr is deterministic for a seed

    monkeypatch.setattr(toolchain, "run_tool", refuse_to_run)
    with pytest.raises(RebuildAttempted):
        flow.build(TARGET, Counter(width=21), tmp_path, progress=Progress(stream=io.StringIO()))


def test_changed_bitstream_is_not_reused(tmp_path, monkeypatch):
    """A stamp belongs to the bitstream it was written for."""
    result = flow.build(TARGET, Counter(), tmp_path, progress=Progress(stream=io.StringIO()))
    key = (tmp_path / "fp8hw_icebreaker.stamp.json").read_text()
    assert '"seed": 1' in key and result.bitstream.name in {p.name for p in tmp_path.iterdir()}
    data = result.bitstream.read_bytes()
    result.bitstream.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    monkeypatch.setattr(toolchain, "run_tool", refuse_to_run)
    with pytest.raises(RebuildAttempted):
        flow.build(TARGET, Counter(), tmp_path, progress=Progress(stream=io.StringIO()))


def test_key_names_what_a_bitstream_depends_on():
    """Seed, options, tools and the plan each change the key; the same build does not."""
    def plan(width=20):
        return TARGET.platform().prepare(Counter(width), "fp8hw_icebreaker")

    tools = {"yosys": "Yosys 0.70", "nextpnr-ice40": "nextpnr-0.11.1"}
    key = flow.build_key(plan(), tools, 1, "--seed 1")
    assert key == flow.build_key(plan(), dict(tools), 1, "--seed 1")
    assert key["plan"] != flow.build_key(plan(21), tools, 1, "--seed 1")["plan"]
    for other in (flow.build_key(plan(), tools, 2, "--seed 1"),
                  flow.build_key(plan(), tools, 1, "--seed 2"),
                  flow.build_key(plan(), {**tools, "yosys": "Yosys 0.71"}, 1, "--seed 1")):
        assert other != key


def test_design_that_does_not_fit(tmp_path):
    """nextpnr's failure, read from its log: the resource, in one line, and no stamp."""
    with pytest.raises(BoardError) as e:
        flow.build(TARGET, Scrambler(6000), tmp_path,
                   progress=Progress(stream=io.StringIO()))
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("design does not fit the iCE40UP5K: ICESTORM_LC "), message
    assert not (tmp_path / "fp8hw_icebreaker.stamp.json").exists()
