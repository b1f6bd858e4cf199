"""The benchmark's Markdown: the table of results, the harness-only table, and the text
around them (how it was measured, the tools, the source revision, the time it took)."""

from __future__ import annotations

from hw.bench.measure import DEVICES, Result

COLUMNS = ("unit", "configuration", "device", "LUT4", "FF", "DSP", "BRAM", "Fmax MHz",
           "peak throughput", "P&R time (s)")


def _amount(pair: tuple[int, int] | None) -> str:
    if pair is None:
        return "-"
    used, total = pair
    return f"{used} ({100 * used / total:.1f}%)" if total else str(used)


def _zero_or_amount(result: Result, kind: str) -> str:
    pair = result.resource(kind)
    if pair is None and result.usage and result.fmax is not None:
        return "0"          # routed, and nextpnr lists no such cell
    return _amount(pair)


def table_row(result: Result) -> list[str]:
    if result.error:
        fmax = result.error
    elif result.fmax is None:
        fmax = "-"
    elif len(result.fmax_seeds) > 1:
        fmax = (f"{result.fmax:.1f} (median of {len(result.fmax_seeds)}: "
                f"{min(result.fmax_seeds):.1f}-{max(result.fmax_seeds):.1f})")
    else:
        fmax = f"{result.fmax:.1f}"
    pnr = f"{result.pnr_time:.0f}" if result.pnr_time is not None else "-"
    return [f"`{result.unit}`" if result.unit != "harness only" else result.unit,
            result.config, result.device.name, _amount(result.resource("lut")),
            _amount(result.resource("ff")), _zero_or_amount(result, "dsp"),
            _zero_or_amount(result, "bram"), fmax, result.throughput(), pnr]


def format_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for result in results:
        lines.append("| " + " | ".join(table_row(result)) + " |")
    return "\n".join(lines)


def format_report(unit_results: list[Result], harness_results: list[Result], *,
                  seeds: int, versions: dict[str, str], seconds: float,
                  revision: str = "unknown") -> str:
    constraint = ", ".join(f"{d.name} {d.freq_mhz:g} MHz" for d in DEVICES.values())
    seed_text = "seed 1" if seeds == 1 else f"median over seeds 1..{seeds}"
    parts = [
        "Units in the measurement harness (`python -m hw.bench`): every input from a "
        "register of a serial shift chain, every output into a register, XOR-folded to a "
        "pin by a registered tree, so Fmax is register to register through the unit; Yosys "
        "maps the unit alone and joins it to the harness without optimizing across. The "
        "figures include the harness; the second table is the harness alone (around wires "
        "of the same port widths), to subtract.",
        f"nextpnr: {seed_text}, `--timing-allow-fail`, clock constraint {constraint}; "
        "LUT4 = TRELLIS_COMB (ECP5) or ICESTORM_LC logic cells (iCE40, including "
        "flip-flop-only cells); FF = TRELLIS_FF (ECP5) or Yosys's SB_DFF* cells as a share "
        "of the logic cells (iCE40); DSP = MULT18X18D / ICESTORM_DSP (SB_MAC16); BRAM = "
        "DP16KD / ICESTORM_RAM; P&R time = nextpnr wall clock"
        f"{' (median)' if seeds > 1 else ''}.",
        "Tools: " + ", ".join(f"{v} (`{k}`)" for k, v in versions.items()) + "; source: git "
        + revision + ".",
        "",
        format_table(unit_results),
    ]
    if harness_results:
        parts += ["", "Harness alone (the overhead included above):", "",
                  format_table(harness_results)]
    everything = unit_results + harness_results
    tools = sum(r.tool_seconds for r in everything)
    reused = sum(r.reused for r in everything)
    total = f"Total run time: {duration(seconds)}; Yosys and nextpnr, summed over the designs: "
    total += f"{duration(tools)}"
    if reused:
        total += (f" ({reused} of {len(everything)} designs reused from an earlier run with "
                  f"--reuse, with that run's times)")
    parts += ["", total + "."]
    return "\n".join(parts) + "\n"


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
