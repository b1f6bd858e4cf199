"""cocotb testbench modules (run inside the simulator by ``sim.runner``)."""
