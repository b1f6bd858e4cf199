"""RTL simulation: a cocotb runner for Icarus Verilog and Verilator, shared async drivers,
testbenches (``sim.tb``), and ``python -m sim run`` for vector files."""
