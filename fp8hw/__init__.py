"""fp8hw: synthesizable FP8 training arithmetic with a bit-exact numpy model.

This package holds what every layer shares (the run-time choices and their codes, the
parameter declarations' type, the errors the tools report and their one-line command-line
handling) and the ``fp8hw`` console script (``fp8hw.__main__``). The model is ``golden``,
the hardware ``hw``, the FPGA boards and tools ``boards``, the simulations ``sim`` and the
host driver ``host``; see the README for the layers.
"""

__version__ = "0.1.0"
