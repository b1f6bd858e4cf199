"""Small async helpers that drive a unit's ports from numpy arrays, shared by the
regression testbenches and the vector-file runner (``python -m sim run``)."""

from __future__ import annotations

import numpy as np
from cocotb.triggers import Timer

from hw.units.fp8_to_fp9 import SourceFormat

SETTLE_NS = 1


async def settle():
    """Let combinational logic settle after inputs change."""
    await Timer(SETTLE_NS, unit="ns")


def read_unsigned(handle) -> int:
    return handle.value.to_unsigned()


async def drive_convert(dut, a: np.ndarray, fmt: str, outputs=("y",)) -> dict[str, np.ndarray]:
    """Apply each code of ``a`` to the converter (combinational) and read ``outputs``."""
    dut.fmt.value = SourceFormat[fmt.upper()].value
    got = {name: np.zeros(len(a), dtype=object) for name in outputs}
    handles = {name: getattr(dut, name) for name in outputs}
    for i, code in enumerate(a.tolist()):
        dut.a.value = code
        await settle()
        for name, h in handles.items():
            got[name][i] = read_unsigned(h)
    return got


async def vectors_convert(dut, inputs: dict, params: dict) -> dict[str, np.ndarray]:
    got = await drive_convert(dut, inputs["a"], params["fmt"])
    return {"y": got["y"].astype(np.uint16)}


# Unit name -> async (dut, inputs, runtime params) -> outputs, for vector files.
VECTOR_DRIVERS = {
    "convert": vectors_convert,
}
