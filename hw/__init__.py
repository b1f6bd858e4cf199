"""Synthesizable Amaranth hardware: the arithmetic units (``hw.units``), the systolic array
generator (``hw.array``), the system a board runs (``hw.soc``), and the commands that turn
them into Verilog (``python -m hw.build``), check their synthesis (``python -m hw.synth``)
and place and route them (``python -m hw.bench``). Formats and parameters come from
``golden`` and ``fp8hw``; bitstreams are built with the tool flow in ``boards``."""
