"""``python -m sim run UNIT IN.npz OUT.npz [--sim icarus|verilator] [--param NAME=VALUE ...]``

Runs a vector file through the unit's RTL in a cocotb simulation (docs/numerics.md,
Vector files); the output file is the same as ``python -m golden eval`` gives for the same
input. Bad input ends with a one-line error and exit status 2, and writes no output file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from fp8hw.cli import ArgumentParser, parse_assignments, run_command
from fp8hw.files import check_output_path
from golden.params import SEB_MODE
from golden.vectors import VectorError, get_vector_unit, load_inputs, load_npz, save_npz
from hw.registry import get_unit
from sim.lanes import LaneArray
from sim.runner import SIMULATORS, SimError, build_name, default_cache_dir, run_cocotb


def _parser(prog="python -m sim"):
    p = ArgumentParser(prog=prog, description="RTL simulation of every unit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    run = sub.add_parser("run", help="run a vector file through a unit's RTL")
    run.add_argument("unit")
    run.add_argument("input")
    run.add_argument("output")
    run.add_argument("--sim", default="icarus", choices=SIMULATORS)
    run.add_argument("--param", action="append", metavar="NAME=VALUE")
    run.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (logs, Verilog)")
    run.add_argument("--waves", action="store_true",
                     help="write the waveforms into the --keep folder (Icarus: FST, "
                     "Verilator: VCD)")
    return p


# Copies of the unit simulated side by side; rows go through them a group per cycle.
LANES = 8
LANES_BY_UNIT = {"fmatree": 2}       # a 24-way tree is large: fewer copies build faster


def split_params(unit_name: str, overrides: dict) -> tuple[dict, dict]:
    """Vector-file parameters (checked and completed with defaults) and generator
    parameters; the latter may also name generator-only parameters such as ``pipeline``.
    A ``matmul`` in fp8seb mode runs on the FP8-SEB array (``seb_array``), which is
    weight-stationary."""
    vunit = get_vector_unit(unit_name)
    vector_names = {p.name for p in vunit.params}
    hw_names = {p.name for u in _hw_units(unit_name) for p in get_unit(u).params}
    hw_only = {k: v for k, v in overrides.items() if k not in vector_names and k in hw_names}
    params = vunit.resolve_params({k: v for k, v in overrides.items() if k not in hw_only})
    hw = get_unit(_hw_unit(unit_name, params))
    if hw.name == "seb_array" and overrides.get("dataflow", "ws") != "ws":
        raise VectorError("matmul: mode fp8seb runs on the FP8-SEB array, which is "
                          "weight-stationary (dataflow=ws)")
    hw_params = hw.resolve({**{p.name: params[p.name] for p in hw.params
                               if p.name in params}, **hw_only})
    return params, hw_params


def _hw_units(unit_name: str) -> tuple[str, ...]:
    return ("matmul", "seb_array") if unit_name == "matmul" else (unit_name,)


def _hw_unit(unit_name: str, params: dict) -> str:
    """The registry unit that runs a vector file with these parameters."""
    if unit_name == "matmul" and params["mode"] == SEB_MODE:
        return "seb_array"
    return unit_name


def simulate(unit_name: str, inputs: dict, params: dict, hw_params: dict, sim: str,
             build_dir, lanes: int | None = None, waves: bool = False) -> dict:
    """Run validated ``inputs`` through the RTL; returns the output arrays. With ``waves``,
    the waveforms go into ``build_dir``."""
    vunit = get_vector_unit(unit_name)
    hw = get_unit(_hw_unit(unit_name, params))
    if hw.name == "seb_array":
        return _simulate_seb(inputs, params, hw_params, sim, build_dir, waves)
    if unit_name == "matmul" and (params["chunk"] or params["out"] != "none"):
        return _simulate_engine(inputs, params, hw_params, sim, build_dir, waves)
    if unit_name == "matmul":                     # one GEMM, tiled onto the array
        from sim.matmul import MatmulJob, simulate_matmul
        job = MatmulJob(inputs["A"], inputs["B"], inputs.get("C"), params["mode"],
                        params["fmt_a"], params["fmt_b"])
        result = simulate_matmul([job], hw_params, sim, build_dir, waves=waves)[0]
        outputs = {"C": result.C.astype(np.uint32)}
        vunit.check_arrays(outputs, vunit.outputs, "simulation output")
        return outputs
    lanes = lanes or LANES_BY_UNIT.get(unit_name, LANES)
    top = LaneArray(lambda: hw.elaborate(hw_params), lanes)
    return _run_vectors(
        unit_name, top, f"{hw.module_name(hw_params)}_x{lanes}", "sim.tb.vectors_tb", inputs,
        sim, build_dir, waves, "the vector run",
        {"FP8HW_UNIT": unit_name, "FP8HW_PARAMS": params, "FP8HW_HW_PARAMS": hw_params,
         "FP8HW_LANES": str(lanes)})


def _simulate_seb(inputs: dict, params: dict, hw_params: dict, sim: str, build_dir,
                  waves: bool) -> dict:
    """A GEMM in fp8seb mode on the FP8-SEB array, tiled by the scheduler."""
    from sim.matmul import MatmulJob, simulate_matmul
    if params["out_bias"] is not None:           # quant30 and the tracker: the engine's
        return _simulate_engine(inputs, params, hw_params, sim, build_dir, waves)
    job = MatmulJob(inputs["A"], inputs["B"], inputs.get("C"), SEB_MODE,
                    bias_a=params["bias_a"], bias_b=params["bias_b"])
    result = simulate_matmul([job], hw_params, sim, build_dir, waves=waves,
                             unit="seb_array")[0]
    outputs = {"C": result.C.astype(np.uint32)}
    vunit = get_vector_unit("matmul")
    vunit.check_arrays(outputs, vunit.outputs, "simulation output")
    return outputs


def _run_vectors(unit_name: str, top, name: str, testbench: str, inputs: dict, sim: str,
                 build_dir, waves: bool, what: str, env: dict) -> dict:
    """Hand ``inputs`` to ``testbench`` running ``top`` through a vector file, and return
    the output arrays it writes, checked against the unit's outputs."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    vin, vout = build_dir / "vectors_in.npz", build_dir / "vectors_out.npz"
    save_npz(vin, inputs)
    if vout.exists():
        vout.unlink()
    result = run_cocotb(top, name, sim, testbench, build_dir, quiet=True,
                        cache_dir=default_cache_dir(), waves=waves,
                        env={**env, "FP8HW_VECTORS_IN": str(vin.resolve()),
                             "FP8HW_VECTORS_OUT": str(vout.resolve())})
    if not result.ok or not vout.is_file():
        raise SimError(f"{sim}: {what} failed", result.log)
    outputs = load_npz(vout)
    vunit = get_vector_unit(unit_name)
    vunit.check_arrays(outputs, vunit.outputs, "simulation output")
    return outputs


def _simulate_engine(inputs: dict, params: dict, hw_params: dict, sim: str, build_dir,
                     waves: bool) -> dict:
    """A GEMM with ``chunk`` or ``out`` (or, in fp8seb mode, ``out_bias``), through the
    board system's GEMM engine (``hw.soc.gemm``: the ws array with chunked accumulation
    and the quantizers, or the FP8-SEB array with quant30 and the output tracker), its
    buffers just large enough for it."""
    from hw.schedule import EngineLayout, engine_chunk
    from hw.soc.gemm import GemmEngine
    seb = params["mode"] == SEB_MODE
    what = "matmul with out_bias" if seb else "matmul with chunk or out"
    if hw_params["rows"] != hw_params["cols"] or hw_params.get("dataflow", "ws") != "ws":
        raise VectorError(f"{what} runs on the GEMM engine, a square ws "
                          f"array (--param dataflow=ws, rows = cols); got "
                          f"rows={hw_params['rows']}, cols={hw_params['cols']}, "
                          f"dataflow={hw_params.get('dataflow', 'ws')}")
    R = hw_params["rows"]
    (M, K), N = inputs["A"].shape, inputs["B"].shape[1]
    ways = params["ways"] if seb else 1
    quantized = params["out_bias"] is not None if seb else params["out"] != "none"
    lay = EngineLayout(M, K, N, R, 0 if seb else engine_chunk(params["mode"], params["chunk"]),
                       ways)
    words = dict(a_words=lay.a_words + (lay.out_words if quantized else 0),
                 b_words=lay.b_words, acc_words=lay.acc_words)
    if max(words.values()) > 1 << 16 or max(M, lay.k_chunks, N) >= 1 << 16:
        raise VectorError(f"matmul: {M}x{K}x{N} is too large for one GEMM on the engine")
    kind = (dict(engine="seb", ways=ways, room=params["room"], chunking=0) if seb
            else dict(chunking=1, bias=params["bias"]))
    engine_params = dict(rows=R, pipeline=hw_params["pipeline"], spram=0,
                         out_base=lay.a_words, **kind, **words)
    top = GemmEngine(R, R, pipeline=hw_params["pipeline"], **kind, **words)
    return _run_vectors("matmul", top, build_name("gemm_engine", engine_params),
                        "sim.tb.gemm_tb", inputs, sim, build_dir, waves,
                        "the GEMM engine's run",
                        {"FP8HW_HW_PARAMS": engine_params, "FP8HW_PARAMS": params})


def _main(argv=None, prog="python -m sim") -> int:
    args = _parser(prog).parse_args(argv)
    if args.waves and not args.keep:
        raise SimError("--waves needs --keep DIR (the folder the waveforms are written to)")
    unit = get_vector_unit(args.unit)
    params, hw_params = split_params(args.unit, parse_assignments(args.param))
    inputs = load_inputs(unit, args.input, params)
    check_output_path(args.output)
    dims = unit.check_inputs(inputs, params, args.input)
    if 0 in dims.values():
        outputs = unit.empty_outputs(dims)        # no rows: nothing to simulate
        what = "0 rows"
    else:
        if args.keep:
            outputs = simulate(args.unit, inputs, params, hw_params, args.sim, args.keep,
                               waves=args.waves)
        else:
            with tempfile.TemporaryDirectory(prefix="fp8hw-sim-") as tmp:
                try:
                    outputs = simulate(args.unit, inputs, params, hw_params, args.sim, tmp)
                except SimError as e:
                    # The logs go with the temporary folder: say how to keep them.
                    raise SimError(f"{e.message} (rerun with --keep DIR to keep the logs)") \
                        from None
        if args.unit == "matmul":
            array = (f"{hw_params['dataflow']} array" if "ways" not in hw_params
                     else f"FP8-SEB array of {hw_params['ways']}-way trees")
            what = (f"{'x'.join(map(str, inputs['A'].shape))} x {inputs['B'].shape[1]} GEMM "
                    f"on a {hw_params['rows']}x{hw_params['cols']} {array}")
        else:
            what = f"{len(next(iter(inputs.values())))} rows"
    save_npz(args.output, outputs)
    print(f"{args.unit} on {args.sim}: {what} -> {args.output}")
    return 0


def main(argv=None, prog="python -m sim") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
