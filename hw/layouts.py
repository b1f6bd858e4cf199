"""``lib.data`` layouts of the packed formats, derived from ``golden.formats``.

The field widths come from the one format definition shared with the golden model, so
``a.exponent`` in the hardware and ``E4M3.exp_bits`` in the model cannot disagree.
"""

from amaranth.lib import data

from golden.formats import E4M3, FloatFormat, FormatError, check_bias


def float_layout(fmt: FloatFormat) -> data.StructLayout:
    """Mantissa in the LSBs, then exponent, then sign: the code's bit order."""
    return data.StructLayout({
        "mantissa": fmt.man_bits,
        "exponent": fmt.exp_bits,
        "sign": 1,
    })


def e4m3_bias_parameter(bias) -> int:
    """Check a unit's ``bias`` generator parameter; a ValueError names the allowed range."""
    try:
        check_bias(E4M3, bias)
    except FormatError:
        lo, hi = E4M3.bias_range
        raise ValueError(f"bias must be an integer in {lo}..{hi}, got {bias!r}") from None
    return int(bias)
