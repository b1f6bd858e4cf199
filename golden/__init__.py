"""Bit-exact numpy model of every format and unit: the reference the hardware is judged by.

Every function is vectorized over numpy arrays; there is no Python loop per element.
"""

from .formats import (DLFLOAT16, E4M3, E5M2, FLOAT_FORMATS, FORMATS, FP8SEB, FP9, FP30,
                      INT2, INT4, INT_FORMATS, FloatFormat, FormatError, IntFormat,
                      get_format)
from .codec import (decode, encode, is_nan_code, pack_lanes, round_exact, unpack_lanes)
from .convert import convert

__all__ = [
    "DLFLOAT16", "E4M3", "E5M2", "FLOAT_FORMATS", "FORMATS", "FP8SEB", "FP9", "FP30",
    "INT2", "INT4", "INT_FORMATS", "FloatFormat", "FormatError", "IntFormat", "get_format",
    "decode", "encode", "is_nan_code", "pack_lanes", "round_exact", "unpack_lanes", "convert",
]
