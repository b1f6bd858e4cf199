"""Async helpers that drive units' ports from numpy arrays, shared by the regression
testbenches and the vector-file runner (``python -m sim run``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from cocotb.triggers import Timer

from fp8hw.enums import Mode, Overflow, SourceFormat

SETTLE_NS = 1


async def settle():
    """Let combinational logic settle after inputs change."""
    await Timer(SETTLE_NS, unit="ns")


def read_unsigned(handle) -> int:
    return handle.value.to_unsigned()


async def drive_convert(dut, a: np.ndarray, fmt: str, outputs=("y",)) -> dict[str, np.ndarray]:
    """Apply each code of ``a`` to a converter top (combinational) and read ``outputs``."""
    dut.fmt.value = SourceFormat.from_label(fmt)
    got = {name: np.zeros(len(a), dtype=object) for name in outputs}
    handles = {name: getattr(dut, name) for name in outputs}
    for i, code in enumerate(a.tolist()):
        dut.a.value = code
        await settle()
        for name, h in handles.items():
            got[name][i] = read_unsigned(h)
    return got


def enum_code(enum_cls, name: str) -> int:
    """The port value of a run-time choice such as ``fmt=e4m3`` or ``mode=int4``."""
    return int(enum_cls.from_label(name))


@dataclass(frozen=True)
class VectorPorts:
    """How a vector file's arrays and run-time parameters map onto a unit's ports."""
    inputs: Callable[[dict, dict], dict]         # (arrays, params) -> port -> values
    outputs: dict[str, tuple[str, type]]         # port -> (output array, dtype)


def _const(value, like):
    return np.full(len(like), value, dtype=np.uint64)


VECTOR_PORTS: dict[str, VectorPorts] = {
    "convert": VectorPorts(
        lambda v, p: {"a": v["a"], "fmt": _const(enum_code(SourceFormat, p["fmt"]), v["a"])},
        {"y": ("y", np.uint16)}),
    "mpe": VectorPorts(
        lambda v, p: {"acc_in": v["acc"], "a": v["a"], "b": v["b"],
                      "mode": _const(enum_code(Mode, p["mode"]), v["a"]),
                      "fmt_a": _const(enum_code(SourceFormat, p["fmt_a"]), v["a"]),
                      "fmt_b": _const(enum_code(SourceFormat, p["fmt_b"]), v["a"])},
        {"acc_out": ("acc", np.uint32)}),
    "dladd": VectorPorts(
        lambda v, p: {"a": v["x"], "b": v["y"]},
        {"y": ("z", np.uint16)}),
    "fmatree": VectorPorts(
        lambda v, p: {"a": v["a"], "b": v["b"], "bias_a": v["bias_a"], "bias_b": v["bias_b"],
                      "acc_in": v["acc"], "skip": _const(0, v["acc"])},
        {"acc_out": ("acc", np.uint32)}),
    "quant30": VectorPorts(
        lambda v, p: {"x": v["x"], "bias": v["bias"]},
        {"y": ("y", np.uint8)}),
    "quant16": VectorPorts(
        lambda v, p: {"x": v["x"], "fmt": _const(enum_code(SourceFormat, p["fmt"]), v["x"]),
                      "overflow": _const(enum_code(Overflow, p["overflow"]), v["x"])},
        {"y": ("y", np.uint8)}),
}
