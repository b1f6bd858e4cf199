"""FPGA board targets (reserved; see the README)."""
