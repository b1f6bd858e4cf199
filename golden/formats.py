"""Number formats: the single definition of every format's parameters.

Both the golden model (``golden/``) and the hardware (``hw/``) take field widths, biases,
encoding styles and bias ranges from here, so a format cannot mean two things.

A float code has fields sign (1 bit), exponent (E bits), mantissa (M bits), MSB first.
Encoding styles (docs/numerics.md, Styles):

``ieee``
    signed zero, subnormals, exponent all ones: m=0 is +-inf, m!=0 is NaN.
``fn``
    as ``ieee``, but only exponent and mantissa all ones is NaN; no inf.
``dl``
    no subnormals (e=0, m!=0 is normal with exponent -bias); the only zero is e=0, m=0
    (sign ignored); only e and m all ones is NaN/Inf (one merged code, sign ignored).
``finite``
    as ``ieee`` below the top binade, and every code is a finite number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fp8hw.enums import Overflow
from fp8hw.errors import Fp8hwError

STYLES = ("ieee", "fn", "dl", "finite")
ROUNDINGS = ("rne", "rnu")
OVERFLOWS = Overflow.labels()


class FormatError(Fp8hwError, ValueError):
    """A format, bias, rounding mode or overflow action that does not exist."""


@dataclass(frozen=True)
class FloatFormat:
    """A (1-E-M) floating-point format.

    ``bias`` is the format's bias; ``bias_range`` is the inclusive range of biases the
    format admits (a generator parameter for ``e4m3``, a run-time value for ``fp8seb``).
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    style: str
    bias_range: tuple[int, int]
    bias_is_runtime: bool = False
    use: str = ""

    def __post_init__(self):
        if self.style not in STYLES:
            raise FormatError(f"format {self.name}: unknown style {self.style!r}")
        lo, hi = self.bias_range
        if not lo <= self.bias <= hi:
            raise FormatError(f"format {self.name}: bias {self.bias} outside {lo}..{hi}")

    # Field geometry -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def man_all_ones(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def sign_shift(self) -> int:
        return self.exp_bits + self.man_bits

    # Special codes --------------------------------------------------------------------
    @property
    def has_nan(self) -> bool:
        return self.style != "finite"

    @property
    def has_inf(self) -> bool:
        return self.style == "ieee"

    @property
    def has_subnormals(self) -> bool:
        return self.style != "dl"

    @property
    def canonical_nan(self) -> int | None:
        """Positive sign, exponent and mantissa all ones (0x7F, 0x7FFF, 0x1FFFFFFF...)."""
        if not self.has_nan:
            return None
        return (self.exp_all_ones << self.man_bits) | self.man_all_ones

    def inf_code(self, negative: bool = False) -> int:
        if not self.has_inf:
            raise FormatError(f"format {self.name} has no infinity")
        return (int(negative) << self.sign_shift) | (self.exp_all_ones << self.man_bits)

    # Largest finite code: its exponent and mantissa fields ------------------------------
    @property
    def max_fields(self) -> tuple[int, int]:
        if self.style == "ieee":
            return self.exp_all_ones - 1, self.man_all_ones
        if self.style in ("fn", "dl"):
            return self.exp_all_ones, self.man_all_ones - 1
        return self.exp_all_ones, self.man_all_ones

    @property
    def max_code(self) -> int:
        e, m = self.max_fields
        return (e << self.man_bits) | m

    # Exponent range, for a given bias -----------------------------------------------
    def emin(self, bias: int | None = None) -> int:
        """Unbiased exponent of the lowest binade that has the full quantum.

        For formats with subnormals it is ``1 - bias`` (subnormals share its quantum);
        for ``dl`` formats the e=0 binade is normal, so it is ``-bias``.
        """
        b = self.bias if bias is None else bias
        return (1 - b) if self.has_subnormals else -b

    def max_finite(self, bias: int | None = None) -> float:
        b = self.bias if bias is None else bias
        e, m = self.max_fields
        return float(2.0 ** (e - b) * (1 + m / (1 << self.man_bits)))

    def min_positive(self, bias: int | None = None) -> float:
        b = self.bias if bias is None else bias
        if self.has_subnormals:
            return float(2.0 ** (1 - b - self.man_bits))
        return float(2.0 ** (-b) * (1 + 1 / (1 << self.man_bits)))

    def with_bias(self, bias: int) -> "FloatFormat":
        """The same format with another bias, checked against ``bias_range``."""
        check_bias(self, bias)
        return dataclasses.replace(self, bias=int(bias))

    def __str__(self):
        return f"{self.name}(1-{self.exp_bits}-{self.man_bits}, bias {self.bias}, {self.style})"


@dataclass(frozen=True)
class IntFormat:
    """A two's complement integer lane format, packed several to a byte, lane 0 in the LSBs."""

    name: str
    bits: int
    use: str = ""

    @property
    def lanes_per_byte(self) -> int:
        return 8 // self.bits

    @property
    def min_value(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def max_value(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def width(self) -> int:
        return self.bits


E4M3 = FloatFormat("e4m3", 4, 3, 11, "fn", (0, 15),
                   use="HFP8 forward (weights, activations); bias is a generator parameter")
E5M2 = FloatFormat("e5m2", 5, 2, 15, "ieee", (15, 15),
                   use="HFP8 backward (errors); same as OCP E5M2")
FP9 = FloatFormat("fp9", 5, 3, 15, "ieee", (15, 15), use="MPE internal unified format")
DLFLOAT16 = FloatFormat("dlfloat16", 6, 9, 31, "dl", (31, 31), use="MPE accumulator")
FP30 = FloatFormat("fp30", 6, 23, 31, "dl", (31, 31), use="FMA-tree second-stage accumulator")
FP8SEB = FloatFormat("fp8seb", 4, 3, 0, "finite", (-32, 31), bias_is_runtime=True,
                     use="FP8 with a per-tensor shared exponent bias (run time)")
INT4 = IntFormat("int4", 4, use="MPE integer mode, 2 lanes per byte")
INT2 = IntFormat("int2", 2, use="MPE integer mode, 4 lanes per byte")

FLOAT_FORMATS: dict[str, FloatFormat] = {
    f.name: f for f in (E4M3, E5M2, FP9, DLFLOAT16, FP30, FP8SEB)
}
INT_FORMATS: dict[str, IntFormat] = {f.name: f for f in (INT4, INT2)}
FORMATS: dict[str, FloatFormat | IntFormat] = {**FLOAT_FORMATS, **INT_FORMATS}


def get_format(fmt) -> FloatFormat | IntFormat:
    """A format object from itself or its name."""
    if isinstance(fmt, (FloatFormat, IntFormat)):
        return fmt
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise FormatError(
            f"unknown format {fmt!r} (known: {', '.join(FORMATS)})") from None


def check_bias(fmt: FloatFormat, bias) -> None:
    """Raise FormatError unless every bias value is in the format's range."""
    import numpy as np

    lo, hi = fmt.bias_range
    b = np.asarray(bias)
    if b.dtype.kind not in "iu" and not (b.dtype.kind == "f" and np.all(b == np.round(b))):
        raise FormatError(f"{fmt.name}: bias must be an integer, got {bias!r}")
    if b.size and (b.min() < lo or b.max() > hi):
        bad = b.min() if b.min() < lo else b.max()
        raise FormatError(f"{fmt.name}: bias {int(bad)} is outside the allowed range {lo}..{hi}")
