"""Vector files (docs/numerics.md, Vector files): per-unit parameters, arrays, checks.

``python -m golden eval`` and ``python -m sim run`` both load and check their input
through here, so a file the golden model accepts is exactly a file the RTL run accepts,
and every malformed file is refused with the same one-line message.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fp8hw.arrays import COLS, DATAFLOW, ROWS
from fp8hw.errors import Fp8hwError
from fp8hw.files import write_atomic
from fp8hw.params import Param, resolve_parameters

from .convert import convert
from .dladd import dladd
from .fmatree import fmatree
from .formats import FP8SEB, FP30
from .matmul import accumulate, check_output, quantize_output
from .mpe import mpe
from .params import (BIAS, BIAS_A, BIAS_B, CHUNK, FMT, FMT_A, FMT_B, MATMUL_MODE, MODE, OUT,
                     OUT_BIAS, OVERFLOW, ROOM, SEB_MODE, WAYS, check_matmul_params)
from .quant16 import quant16
from .quant30 import quant30
from .seb_matmul import seb_matmul


class VectorError(Fp8hwError, ValueError):
    """A malformed vector file or a bad parameter; the message is one line."""


@dataclass(frozen=True)
class VArray:
    """An array of a vector file: its dtype, its dimensions (names shared across arrays)
    and, where the dtype admits more, the range of its values."""
    name: str
    dtype: str
    dims: tuple[str, ...]
    optional: bool = False
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class VectorUnit:
    name: str
    params: tuple[Param, ...]
    inputs: tuple[VArray, ...]
    outputs: tuple[VArray, ...]
    evaluate: Callable[[dict, dict], dict] = field(repr=False)
    nonempty: bool = False          # every input dimension must be at least 1
    # Raises when parameters do not go together (such as one its mode does not use).
    check_params: Callable[[dict], None] | None = field(default=None, repr=False)

    def resolve_params(self, overrides: dict | None = None) -> dict:
        """The defaults with ``overrides`` (name -> command-line text) parsed over them."""
        params = resolve_parameters(self.params, overrides or {}, self.name)
        if self.check_params is not None:
            self.check_params(params)
        return params

    def check_arrays(self, arrays: dict, specs: tuple[VArray, ...], what: str) -> dict:
        """Check names, dtypes and consistent dimensions; returns the named dimensions."""
        dims: dict[str, int] = {}
        for spec in specs:
            if spec.name not in arrays:
                if spec.optional:
                    continue
                raise VectorError(f"{what}: missing array {spec.name!r} "
                                  f"({spec.dtype}[{', '.join(spec.dims)}])")
            arr = arrays[spec.name]
            if arr.dtype != np.dtype(spec.dtype):
                raise VectorError(f"{what}: array {spec.name!r} has dtype {arr.dtype}, "
                                  f"expected {spec.dtype}")
            if arr.ndim != len(spec.dims):
                raise VectorError(f"{what}: array {spec.name!r} has shape {arr.shape}, "
                                  f"expected [{', '.join(spec.dims)}]")
            for dim, size in zip(spec.dims, arr.shape):
                if dims.setdefault(dim, size) != size:
                    raise VectorError(f"{what}: array {spec.name!r} has {dim}={size}, "
                                      f"other arrays have {dim}={dims[dim]}")
            if arr.size and spec.lo is not None and (arr.min() < spec.lo or arr.max() > spec.hi):
                bad = arr.min() if arr.min() < spec.lo else arr.max()
                raise VectorError(f"{what}: array {spec.name!r} holds {int(bad)}, outside "
                                  f"{spec.lo}..{spec.hi}")
        known = {s.name for s in specs}
        for name in arrays:
            if name not in known:
                raise VectorError(f"{what}: unexpected array {name!r} for unit {self.name} "
                                  f"(arrays: {', '.join(sorted(known))})")
        return dims

    def check_inputs(self, arrays: dict, params: dict, what: str) -> dict:
        """Check the input arrays, and dimensions that a parameter fixes (``ways``)."""
        dims = self.check_arrays(arrays, self.inputs, what)
        for name, size in dims.items():
            if self.nonempty and size == 0:
                raise VectorError(f"{what}: dimension {name} is 0; {self.name} needs "
                                  f"arrays of at least one element in every dimension")
            if name in params and params[name] != size:
                raise VectorError(f"{what}: arrays have {name}={size}, but parameter "
                                  f"{name}={params[name]}")
        return dims

    def empty_outputs(self, dims: dict) -> dict:
        """The outputs of a file with no rows (a dimension of 0): empty arrays of the output
        dtypes and shapes, which is what evaluating it gives (nothing to compute)."""
        return {spec.name: np.zeros([dims[d] for d in spec.dims], spec.dtype)
                for spec in self.outputs}

    def run_golden(self, inputs: dict, params: dict) -> dict:
        outputs = self.evaluate(inputs, params)
        self.check_arrays(outputs, self.outputs, "golden output")
        return outputs


def load_npz(path) -> dict[str, np.ndarray]:
    """All arrays of an .npz file; any problem becomes a one-line VectorError."""
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise VectorError(f"{path}: not an .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise VectorError(f"{path}: not an .npz file (a single .npy array?)")
            arrays = {name: f[name] for name in f.files}
    except VectorError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VectorError(f"{path}: not a readable .npz file ({detail})") from None
    for name, value in arrays.items():
        # numpy hands back the raw bytes of a member that is not an .npy array.
        if not isinstance(value, np.ndarray):
            raise VectorError(f"{path}: member {name!r} is not a numpy array (.npy)")
    return arrays


def save_npz(path, arrays: dict) -> None:
    """Write atomically: the file appears complete or not at all."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VectorError(f"{path}: folder {parent} does not exist")
    write_atomic(path, lambda f: np.savez(f, **arrays))


# Units --------------------------------------------------------------------------------

def _eval_convert(inputs: dict, params: dict) -> dict:
    return {"y": convert(inputs["a"], params["fmt"], params["bias"])}


def _eval_mpe(inputs: dict, params: dict) -> dict:
    return {"acc": mpe(inputs["acc"], inputs["a"], inputs["b"], params["mode"],
                       params["fmt_a"], params["fmt_b"], params["bias"])}


def _eval_quant16(inputs: dict, params: dict) -> dict:
    return {"y": quant16(inputs["x"], params["fmt"], params["bias"], params["overflow"])}


def _eval_dladd(inputs: dict, params: dict) -> dict:
    return {"z": dladd(inputs["x"], inputs["y"])}


def _eval_fmatree(inputs: dict, params: dict) -> dict:
    return {"acc": fmatree(inputs["acc"], inputs["a"], inputs["b"], inputs["bias_a"],
                           inputs["bias_b"])}


def _eval_quant30(inputs: dict, params: dict) -> dict:
    return {"y": quant30(inputs["x"], inputs["bias"])}


# ``max_exp`` in a vector file when no result was a nonzero number (int16, out of the
# range of any fp30 exponent).
NO_MAX_EXP = -128


def _eval_matmul(inputs: dict, params: dict) -> dict:
    if params["mode"] == SEB_MODE:
        return seb_matmul_outputs(seb_matmul(
            inputs["A"], inputs["B"], inputs.get("C"), params["bias_a"], params["bias_b"],
            params["ways"], params["out_bias"], params["room"]))
    check_output(params["mode"], params["chunk"], params["out"])
    C = accumulate(inputs["A"], inputs["B"], inputs.get("C"), params["mode"],
                   params["fmt_a"], params["fmt_b"], params["bias"], params["chunk"])
    if params["out"] == "none":
        return {"C": C}
    return {"C": C, "Y": quantize_output(C, params["out"], params["bias"])}


def seb_matmul_outputs(result) -> dict:
    """A ``golden.seb_matmul`` result as a vector file's arrays: C; with an output bias,
    Y, ``max_exp`` (int16, ``NO_MAX_EXP`` when none) and ``next_bias`` (int8)."""
    if result.Y is None:
        return {"C": result.C}
    return {"C": result.C, "Y": result.Y,
            "max_exp": np.array(NO_MAX_EXP if result.max_exp is None else result.max_exp,
                                np.int16),
            "next_bias": np.array(result.next_bias, np.int8)}


_FP30_CODES = {"lo": 0, "hi": (1 << FP30.width) - 1}
_SHARED_BIAS = {"lo": FP8SEB.bias_range[0], "hi": FP8SEB.bias_range[1]}

VECTOR_UNITS: dict[str, VectorUnit] = {
    "convert": VectorUnit(
        "convert",
        params=(FMT, BIAS),
        inputs=(VArray("a", "uint8", ("n",)),),
        outputs=(VArray("y", "uint16", ("n",)),),
        evaluate=_eval_convert),
    "mpe": VectorUnit(
        "mpe",
        params=(MODE, FMT_A, FMT_B, BIAS),
        inputs=(VArray("acc", "uint32", ("n",)), VArray("a", "uint8", ("n",)),
                VArray("b", "uint8", ("n",))),
        outputs=(VArray("acc", "uint32", ("n",)),),
        evaluate=_eval_mpe),
    "quant16": VectorUnit(
        "quant16",
        params=(FMT, BIAS, OVERFLOW),
        inputs=(VArray("x", "uint16", ("n",)),),
        outputs=(VArray("y", "uint8", ("n",)),),
        evaluate=_eval_quant16),
    "dladd": VectorUnit(
        "dladd",
        params=(),
        inputs=(VArray("x", "uint16", ("n",)), VArray("y", "uint16", ("n",))),
        outputs=(VArray("z", "uint16", ("n",)),),
        evaluate=_eval_dladd),
    "fmatree": VectorUnit(
        "fmatree",
        params=(WAYS,),
        inputs=(VArray("acc", "uint32", ("n",), **_FP30_CODES),
                VArray("a", "uint8", ("n", "ways")), VArray("b", "uint8", ("n", "ways")),
                VArray("bias_a", "int8", ("n",), **_SHARED_BIAS),
                VArray("bias_b", "int8", ("n",), **_SHARED_BIAS)),
        outputs=(VArray("acc", "uint32", ("n",)),),
        evaluate=_eval_fmatree),
    "quant30": VectorUnit(
        "quant30",
        params=(),
        inputs=(VArray("x", "uint32", ("n",), **_FP30_CODES),
                VArray("bias", "int8", ("n",), **_SHARED_BIAS)),
        outputs=(VArray("y", "uint8", ("n",)),),
        evaluate=_eval_quant30),
    "matmul": VectorUnit(
        "matmul",
        # The array's shape and dataflow choose the array ``python -m sim run`` builds;
        # every one gives the same C, so the golden model checks them and ignores them.
        # In fp8seb mode, C holds fp30 codes (seb_matmul checks their range).
        params=(MATMUL_MODE, FMT_A, FMT_B, BIAS, ROWS, COLS, DATAFLOW, CHUNK, OUT, BIAS_A,
                BIAS_B, WAYS, OUT_BIAS, ROOM),
        inputs=(VArray("A", "uint8", ("M", "K")), VArray("B", "uint8", ("K", "N")),
                VArray("C", "uint32", ("M", "N"), optional=True)),
        # With ``out`` (or ``out_bias``): Y, the quantized C, as well; with ``out_bias``,
        # the tracker's scalars.
        outputs=(VArray("C", "uint32", ("M", "N")),
                 VArray("Y", "uint8", ("M", "N"), optional=True),
                 VArray("max_exp", "int16", (), optional=True),
                 VArray("next_bias", "int8", (), optional=True)),
        evaluate=_eval_matmul, nonempty=True, check_params=check_matmul_params),
}


def get_vector_unit(name: str) -> VectorUnit:
    try:
        return VECTOR_UNITS[name]
    except KeyError:
        raise VectorError(f"unknown unit {name!r} (units: {', '.join(VECTOR_UNITS)})") from None


def load_inputs(unit: VectorUnit, path, params: dict) -> dict[str, np.ndarray]:
    arrays = load_npz(path)
    unit.check_inputs(arrays, params, str(path))
    return arrays
