"""Place-and-route benchmark of the units: ``python -m hw.bench [--only NAME] [--family F]``.

For every configuration in ``CONFIGS`` and every FPGA family, wraps the unit's Verilog
(from the registry) in a measurement harness, synthesizes it with Yosys and places and
routes it with nextpnr (the tools of ``boards.toolchain``), and reports nextpnr's
utilization and Fmax and the peak throughput, as a Markdown table on stdout and in
``--out``; with ``--seeds N``, the median Fmax over nextpnr seeds 1..N and their range.

The work is jobs run as Dask tasks: Yosys once per design and family, then nextpnr once
per seed, so a sweep spreads over ``--jobs`` worker processes on this machine (a
``LocalCluster``) or over the workers of an existing Dask cluster (``--scheduler
ADDRESS``; they need this package and the tools installed, and the work directory at the
same path). Each job saves its outcome in the work directory; ``--reuse`` reads back
those whose sources, commands, tools and seed have not changed. The units are elaborated
here, one at a time, before any job is sent.

The harness (``Harness``): every unit input comes from a register of a shift chain fed by
one pin, and every unit output goes into a register, so the Fmax is register to register
through the unit (a sequential unit's ``clk`` is the harness clock and its ``rst`` one
more chain bit). The output registers are folded by a registered XOR tree (4 inputs a
level) into one pin, and the chain's last bit goes to another pin, so nothing is optimized
away and the design has four pins: ``clk``, ``sin``, ``sout``, ``chain_out``.

Yosys maps the unit by itself (as ``python -m hw.synth`` does) and the harness around it
as a black box, then joins the two netlists without optimizing across them: the unit's
cells are exactly its own synthesis, and no harness register is merged into the unit or
the chain. The main table's figures include the harness; the second table is the same
harness around wires (output bit j = input bit j), once per port-width pair, so its
overhead can be subtracted.

The package, in the order a run goes: ``configs`` (what is measured: ``CONFIGS``, and
the harness designs made from them), ``harness`` (the ``Harness`` itself), ``measure``
(the Yosys and nextpnr jobs of one design and device, their saved outcomes, and the
design's result made of them), ``cluster`` (the jobs as Dask tasks, and the progress),
``report`` (the Markdown tables) and ``__main__`` (the command).
"""

from fp8hw.errors import Fp8hwError


class BenchError(Fp8hwError):
    """Something that stops the whole run (a bad option, a module the harness cannot
    read)."""
