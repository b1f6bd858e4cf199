"""FPGA boards: the board table (``targets``), PLL settings (``pll``), the FPGA tools and
the reading of their results (``toolchain``), bitstream builds and programming (``flow``)
and a build's progress lines (``progress``). The designs built here come from the caller
(``hw.soc.board_top``); this package does not import ``hw``."""
