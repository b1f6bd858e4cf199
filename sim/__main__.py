"""``python -m sim run UNIT IN.npz OUT.npz [--sim icarus|verilator] [--param NAME=VALUE ...]``

Runs a vector file through the unit's RTL in a cocotb simulation (NUMERICS.md section 4);
the output file is the same as ``python -m golden eval`` gives for the same input. Bad
input ends with a one-line error and exit status 2, and writes no output file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from golden.formats import FormatError
from golden.vectors import (VectorError, get_vector_unit, load_inputs, load_npz,
                            parse_params, save_npz)
from hw.registry import BuildError, get_unit
from sim.lanes import LaneArray
from sim.runner import SIMULATORS, SimError, default_cache_dir, run_cocotb


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise VectorError(message)


def _parser():
    p = _Parser(prog="python -m sim", description="RTL simulation of every unit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a vector file through a unit's RTL")
    run.add_argument("unit")
    run.add_argument("input")
    run.add_argument("output")
    run.add_argument("--sim", default="icarus", choices=SIMULATORS)
    run.add_argument("--param", action="append", metavar="NAME=VALUE")
    run.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (logs, Verilog)")
    return p


# Copies of the unit simulated side by side; rows go through them a group per cycle.
LANES = 8
LANES_BY_UNIT = {"fmatree": 2}       # a 24-way tree is large: fewer copies build faster


def split_params(unit_name: str, overrides: dict) -> tuple[dict, dict]:
    """Vector-file parameters (checked and completed with defaults) and generator
    parameters; the latter may also name generator-only parameters such as ``pipeline``."""
    vunit, hw = get_vector_unit(unit_name), get_unit(unit_name)
    vector_names = {p.name for p in vunit.params}
    hw_only = {k: v for k, v in overrides.items()
               if k not in vector_names and k in {p.name for p in hw.params}}
    params = vunit.resolve_params({k: v for k, v in overrides.items() if k not in hw_only})
    hw_params = hw.resolve({**{p.name: params[p.name] for p in hw.params
                               if p.name in params}, **hw_only})
    return params, hw_params


def simulate(unit_name: str, inputs: dict, params: dict, hw_params: dict, sim: str,
             build_dir, lanes: int | None = None) -> dict:
    """Run validated ``inputs`` through the RTL; returns the output arrays."""
    vunit = get_vector_unit(unit_name)
    hw = get_unit(unit_name)
    if unit_name == "matmul":                     # one GEMM, tiled onto the array
        from sim.matmul import MatmulJob, simulate_matmul
        job = MatmulJob(inputs["A"], inputs["B"], inputs.get("C"), params["mode"],
                        params["fmt_a"], params["fmt_b"])
        result = simulate_matmul([job], hw_params, sim, build_dir)[0]
        outputs = {"C": result.C.astype(np.uint32)}
        vunit.check_arrays(outputs, vunit.outputs, "simulation output")
        return outputs
    lanes = lanes or LANES_BY_UNIT.get(unit_name, LANES)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    vin, vout = build_dir / "vectors_in.npz", build_dir / "vectors_out.npz"
    save_npz(vin, inputs)
    if vout.exists():
        vout.unlink()
    top = LaneArray(lambda: hw.elaborate(hw_params), lanes)
    result = run_cocotb(
        top, f"{hw.module_name(hw_params)}_x{lanes}", sim, "sim.tb.vectors_tb",
        build_dir, quiet=True, cache_dir=default_cache_dir(),
        env={"FP8HW_UNIT": unit_name, "FP8HW_PARAMS": params, "FP8HW_HW_PARAMS": hw_params,
             "FP8HW_LANES": str(lanes),
             "FP8HW_VECTORS_IN": str(vin.resolve()), "FP8HW_VECTORS_OUT": str(vout.resolve())})
    if not result.ok or not vout.is_file():
        raise SimError(f"{sim}: the vector run failed; see {result.log}")
    outputs = load_npz(vout)
    vunit.check_arrays(outputs, vunit.outputs, "simulation output")
    return outputs


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        unit = get_vector_unit(args.unit)
        params, hw_params = split_params(args.unit, parse_params(args.param))
        inputs = load_inputs(unit, args.input, params)
        out_dir = Path(args.output).parent
        if not out_dir.is_dir():
            raise VectorError(f"{args.output}: folder {out_dir} does not exist")
        if args.keep:
            outputs = simulate(args.unit, inputs, params, hw_params, args.sim, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="fp8hw-sim-") as tmp:
                try:
                    outputs = simulate(args.unit, inputs, params, hw_params, args.sim, tmp)
                except SimError as e:
                    raise SimError(f"{e} (rerun with --keep DIR to keep the logs)") from None
        save_npz(args.output, outputs)
        what = (f"{'x'.join(map(str, inputs['A'].shape))} x {inputs['B'].shape[1]} GEMM on a "
                f"{hw_params['rows']}x{hw_params['cols']} {hw_params['dataflow']} array"
                if args.unit == "matmul" else f"{len(next(iter(inputs.values())))} rows")
        print(f"{args.unit} on {args.sim}: {what} -> {args.output}")
        return 0
    except (VectorError, FormatError, BuildError, SimError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
