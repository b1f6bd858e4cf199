"""``lib.data`` layouts of the packed formats, derived from ``golden.formats``.

The field widths come from the one format definition shared with the golden model, so
``a.exponent`` in the hardware and ``E4M3.exp_bits`` in the model cannot disagree.
"""

from amaranth.lib import data

from golden.formats import FloatFormat


def float_layout(fmt: FloatFormat) -> data.StructLayout:
    """Mantissa in the LSBs, then exponent, then sign: the code's bit order."""
    return data.StructLayout({
        "mantissa": fmt.man_bits,
        "exponent": fmt.exp_bits,
        "sign": 1,
    })

