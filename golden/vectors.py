"""Vector files (NUMERICS.md section 4): per-unit parameters, arrays and validation.

``python -m golden eval`` and ``python -m sim run`` both load and check their input
through here, so a file the golden model accepts is exactly a file the RTL run accepts,
and every malformed file is refused with the same one-line message.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .convert import SOURCE_FORMATS, convert
from .fmatree import DEFAULT_WAYS, fmatree
from .formats import E4M3, FP8SEB, FP30, OVERFLOWS
from .matmul import DATAFLOWS, matmul
from .mpe import MODES, mpe
from .quant16 import quant16
from .quant30 import quant30

# The largest tree a vector file may describe (the generator itself takes any N >= 1).
MAX_VECTOR_WAYS = 1024


class VectorError(ValueError):
    """A malformed vector file or a bad parameter; the message is one line."""


@dataclass(frozen=True)
class VParam:
    """A unit parameter: a choice among names, or an integer in lo..hi."""
    name: str
    default: object
    choices: tuple[str, ...] | None = None
    lo: int | None = None
    hi: int | None = None

    def parse(self, unit: str, text) -> object:
        if self.choices is not None:
            if text not in self.choices:
                raise VectorError(f"{unit}: parameter {self.name} must be one of "
                                  f"{', '.join(self.choices)}, got {text!r}")
            return text
        try:
            value = int(str(text), 0)
        except ValueError:
            raise VectorError(f"{unit}: parameter {self.name} must be an integer, "
                              f"got {text!r}") from None
        if not self.lo <= value <= self.hi:
            raise VectorError(f"{unit}: parameter {self.name}={value} is outside "
                              f"{self.lo}..{self.hi}")
        return value

    def describe(self) -> str:
        allowed = "|".join(self.choices) if self.choices else f"{self.lo}..{self.hi}"
        return f"{self.name}={allowed} (default {self.default})"


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
    params: tuple[VParam, ...]
    inputs: tuple[VArray, ...]
    outputs: tuple[VArray, ...]
    evaluate: Callable[[dict, dict], dict] = field(repr=False)
    nonempty: bool = False          # every input dimension must be at least 1

    def resolve_params(self, overrides: dict | None = None) -> dict:
        overrides = dict(overrides or {})
        known = {p.name: p for p in self.params}
        for name in overrides:
            if name not in known:
                allowed = ", ".join(known) or "none"
                raise VectorError(f"{self.name}: unknown parameter {name!r} "
                                  f"(parameters: {allowed})")
        return {p.name: (p.parse(self.name, overrides[p.name]) if p.name in overrides
                         else p.default) for p in self.params}

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
            return {name: f[name] for name in f.files}
    except VectorError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VectorError(f"{path}: not a readable .npz file ({detail})") from None


def save_npz(path, arrays: dict) -> None:
    """Write atomically: the file appears complete or not at all."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VectorError(f"{path}: folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Units --------------------------------------------------------------------------------

def _eval_convert(inputs: dict, params: dict) -> dict:
    return {"y": convert(inputs["a"], params["fmt"], params["bias"])}


def _eval_mpe(inputs: dict, params: dict) -> dict:
    return {"acc": mpe(inputs["acc"], inputs["a"], inputs["b"], params["mode"],
                       params["fmt_a"], params["fmt_b"], params["bias"])}


def _eval_quant16(inputs: dict, params: dict) -> dict:
    return {"y": quant16(inputs["x"], params["fmt"], params["bias"], params["overflow"])}


_BIAS = VParam("bias", E4M3.bias, lo=E4M3.bias_range[0], hi=E4M3.bias_range[1])

def _eval_fmatree(inputs: dict, params: dict) -> dict:
    return {"acc": fmatree(inputs["acc"], inputs["a"], inputs["b"], inputs["bias_a"],
                           inputs["bias_b"])}


def _eval_quant30(inputs: dict, params: dict) -> dict:
    return {"y": quant30(inputs["x"], inputs["bias"])}


def _eval_matmul(inputs: dict, params: dict) -> dict:
    return {"C": matmul(inputs["A"], inputs["B"], inputs.get("C"), params["mode"],
                        params["fmt_a"], params["fmt_b"], params["bias"])}


# The array shapes and dataflows ``python -m sim run matmul`` builds; every one gives the
# same C, so the golden model checks them and otherwise ignores them.
MAX_ARRAY_SIDE = 64

_FP30_CODES = {"lo": 0, "hi": (1 << FP30.width) - 1}
_SHARED_BIAS = {"lo": FP8SEB.bias_range[0], "hi": FP8SEB.bias_range[1]}

VECTOR_UNITS: dict[str, VectorUnit] = {
    "convert": VectorUnit(
        "convert",
        params=(VParam("fmt", "e4m3", choices=SOURCE_FORMATS), _BIAS),
        inputs=(VArray("a", "uint8", ("n",)),),
        outputs=(VArray("y", "uint16", ("n",)),),
        evaluate=_eval_convert),
    "mpe": VectorUnit(
        "mpe",
        params=(VParam("mode", "fp8", choices=MODES),
                VParam("fmt_a", "e4m3", choices=SOURCE_FORMATS),
                VParam("fmt_b", "e4m3", choices=SOURCE_FORMATS), _BIAS),
        inputs=(VArray("acc", "uint32", ("n",)), VArray("a", "uint8", ("n",)),
                VArray("b", "uint8", ("n",))),
        outputs=(VArray("acc", "uint32", ("n",)),),
        evaluate=_eval_mpe),
    "quant16": VectorUnit(
        "quant16",
        params=(VParam("fmt", "e4m3", choices=SOURCE_FORMATS), _BIAS,
                VParam("overflow", "sat", choices=OVERFLOWS)),
        inputs=(VArray("x", "uint16", ("n",)),),
        outputs=(VArray("y", "uint8", ("n",)),),
        evaluate=_eval_quant16),
    "fmatree": VectorUnit(
        "fmatree",
        params=(VParam("ways", DEFAULT_WAYS, lo=1, hi=MAX_VECTOR_WAYS),),
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
        params=(VParam("mode", "fp8", choices=MODES),
                VParam("fmt_a", "e4m3", choices=SOURCE_FORMATS),
                VParam("fmt_b", "e4m3", choices=SOURCE_FORMATS), _BIAS,
                VParam("rows", 4, lo=1, hi=MAX_ARRAY_SIDE),
                VParam("cols", 4, lo=1, hi=MAX_ARRAY_SIDE),
                VParam("dataflow", "os", choices=DATAFLOWS)),
        inputs=(VArray("A", "uint8", ("M", "K")), VArray("B", "uint8", ("K", "N")),
                VArray("C", "uint32", ("M", "N"), optional=True)),
        outputs=(VArray("C", "uint32", ("M", "N")),),
        evaluate=_eval_matmul, nonempty=True),
}


def get_vector_unit(name: str) -> VectorUnit:
    try:
        return VECTOR_UNITS[name]
    except KeyError:
        raise VectorError(f"unknown unit {name!r} (units: {', '.join(VECTOR_UNITS)})") from None


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` to a dict; a malformed item is a VectorError."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise VectorError(f"--param needs NAME=VALUE, got {item!r}")
        if name in out:
            raise VectorError(f"parameter {name!r} given twice")
        out[name] = value
    return out


def load_inputs(unit: VectorUnit, path, params: dict) -> dict[str, np.ndarray]:
    arrays = load_npz(path)
    unit.check_inputs(arrays, params, str(path))
    return arrays
