"""Synthesizable Amaranth hardware: arithmetic units (``hw.units``), the unit registry and
the Verilog generator (``python -m hw.build``), and the on-chip system (``hw.soc``)."""
