"""Bit-exact numpy model of every format and unit: the reference the hardware is judged by,
and an emulator for real tensors (docs/numerics.md is the contract it implements).

Every function is vectorized over numpy arrays; there is no Python loop per element::

    from golden import matmul, mpe, E4M3, decode
"""

from .formats import (DLFLOAT16, E4M3, E5M2, FLOAT_FORMATS, FORMATS, FP8SEB, FP9, FP30,
                      INT2, INT4, INT_FORMATS, FloatFormat, FormatError, IntFormat,
                      get_format)
from .codec import (decode, encode, is_nan_code, pack_lanes, round_exact, unpack_lanes)
from .convert import convert
from .dladd import dladd
from .fmatree import dot, fmatree
from .matmul import matmul
from .mpe import mpe
from .quant16 import quant16
from .quant30 import max_exponent, next_bias, quant30
from .seb_matmul import SebMatmul, seb_matmul

__all__ = [
    "DLFLOAT16", "E4M3", "E5M2", "FLOAT_FORMATS", "FORMATS", "FP8SEB", "FP9", "FP30",
    "INT2", "INT4", "INT_FORMATS", "FloatFormat", "FormatError", "IntFormat", "get_format",
    "decode", "encode", "is_nan_code", "pack_lanes", "round_exact", "unpack_lanes",
    "convert", "dladd", "dot", "fmatree", "matmul", "max_exponent", "mpe", "next_bias", "quant16",
    "quant30", "SebMatmul", "seb_matmul",
]
