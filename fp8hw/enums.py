"""Run-time choices and their codes: one definition for the golden model, the hardware
ports, the host protocol and the testbenches.

Each is a standard ``enum.IntEnum``, so a member is its port code (Amaranth takes the
class as a port shape, as wide as its largest value) and its lower-case name is what the
command lines and vector files call it (``Mode.INT4.label == "int4"``).
"""

from __future__ import annotations

import enum


class Choice(enum.IntEnum):
    """A run-time choice: a code and a lower-case label."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return tuple(member.label for member in cls)

    @classmethod
    def from_label(cls, label: str) -> "Choice":
        """The member called ``label``; ValueError names the allowed labels."""
        for member in cls:
            if member.label == label:
                return member
        raise ValueError(f"{cls.__name__} must be one of {', '.join(cls.labels())}, "
                         f"got {label!r}")


class Mode(Choice):
    """The MPE's mode, per row: one FP8 MAC, two INT4 MACs or four INT2 MACs."""
    FP8 = 0
    INT4 = 1
    INT2 = 2


class SourceFormat(Choice):
    """An 8-bit HFP8 operand's format, per operand at run time."""
    E4M3 = 0
    E5M2 = 1


class Overflow(Choice):
    """What a rounded magnitude above the largest finite value becomes."""
    SAT = 0     # +-max finite
    NAN = 1     # the NaN code (+-inf in ``ieee`` formats)


class Dataflow(Choice):
    """How a systolic array keeps its operands: output- or weight-stationary."""
    OS = 0
    WS = 1


class GemmMode(Choice):
    """A GEMM's mode: the MPE's three (same codes as ``Mode``), or the FP8-SEB GEMM (on
    the FMA-tree engine)."""
    FP8 = 0
    INT4 = 1
    INT2 = 2
    FP8SEB = 3


class OutFormat(Choice):
    """What a GEMM's results become: its sums as they are (``none``), FP8 codes quantized
    by ``quant16`` (``e4m3``, ``e5m2``: fp8 mode only), or ``fp8seb`` codes quantized by
    ``quant30`` at the output bias, the output tensor tracked (fp8seb mode only)."""
    NONE = 0
    E4M3 = 1
    E5M2 = 2
    FP8SEB = 3
