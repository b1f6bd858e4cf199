"""On-chip system for FPGA boards (host link, buffers, controller); see the README's roadmap."""
