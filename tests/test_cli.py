"""The command lines: Verilog generation, golden eval, sim run, and their bad-input errors."""

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli, sweep_simulators
from hw.registry import UNITS

ALL_CODES = np.arange(256, dtype=np.uint8)


# python -m hw.build --------------------------------------------------------------------

def test_build_every_unit(tmp_path):
    proc = run_cli("hw.build", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for spec in UNITS.values():
        params = spec.resolve()
        path = tmp_path / f"{spec.module_name(params)}.v"
        text = path.read_text()
        assert f"module {spec.module_name(params)}(" in text
        assert f"unit {spec.name}" in text.splitlines()[0]
        assert spec.name in proc.stdout


def test_build_one_unit_with_param(tmp_path):
    proc = run_cli("hw.build", "--unit", "convert", "--param", "bias=0", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "bias=0" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["convert_bias0.v"]
    assert "module convert_bias0(" in (tmp_path / "convert_bias0.v").read_text()


def test_build_list():
    proc = run_cli("hw.build", "--list")
    assert proc.returncode == 0
    assert "convert" in proc.stdout and "bias = 11" in proc.stdout and "0..15" in proc.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--unit", "nope"], "unknown unit 'nope'"),
    (["--unit", "convert", "--param", "bias=16"], "outside the allowed range 0..15"),
    (["--unit", "convert", "--param", "bias=-1"], "outside the allowed range 0..15"),
    (["--unit", "convert", "--param", "bias=x"], "must be an integer"),
    (["--unit", "convert", "--param", "width=3"], "unknown parameter 'width'"),
    (["--unit", "convert", "--param", "bias"], "NAME=VALUE"),
    (["--param", "bias=3"], "--param needs --unit"),
    (["--unit", "matmul", "--param", "rows=0"], "rows=0 is outside the allowed range 1..64"),
    (["--unit", "matmul", "--param", "dataflow=xs"], "dataflow must be one of os, ws"),
    (["--bogus"], "unrecognized arguments"),
])
def test_build_errors(tmp_path, args, fragment):
    proc = run_cli("hw.build", *args, "--out", tmp_path)
    assert_one_line_error(proc, fragment)
    assert list(tmp_path.iterdir()) == []


# python -m golden eval / python -m sim run ---------------------------------------------

CONFIGS = [["fmt=e4m3", "bias=11"], ["fmt=e4m3", "bias=0"], ["fmt=e5m2"]]


@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: "-".join(p))
def test_sim_run_equals_golden_eval(sim, tmp_path, params):
    vin = tmp_path / "in.npz"
    np.savez(vin, a=ALL_CODES)
    flags = [x for p in params for x in ("--param", p)]
    gold = run_cli("golden", "eval", "convert", vin, tmp_path / "golden.npz", *flags)
    assert gold.returncode == 0, gold.stderr
    rtl = run_cli("sim", "run", "convert", vin, tmp_path / "rtl.npz", "--sim", sim, *flags)
    assert rtl.returncode == 0, rtl.stderr
    assert (tmp_path / "golden.npz").read_bytes() == (tmp_path / "rtl.npz").read_bytes()
    with np.load(tmp_path / "rtl.npz") as f:
        assert f.files == ["y"] and f["y"].dtype == np.uint16 and f["y"].shape == (256,)


def _bad_inputs(tmp_path):
    """(name, input file, extra args, message fragment) for every vector-file error
    (docs/numerics.md, Vector files)."""
    good = tmp_path / "good.npz"
    np.savez(good, a=ALL_CODES)
    cases = []

    def file(name, **arrays):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        return path

    cases.append(("missing array", file("missing", b=ALL_CODES), [], "missing array 'a'"))
    cases.append(("extra array", file("extra", a=ALL_CODES, z=ALL_CODES), [],
                  "unexpected array 'z'"))
    cases.append(("wrong dtype", file("dtype", a=ALL_CODES.astype(np.int16)), [],
                  "dtype int16, expected uint8"))
    cases.append(("wrong shape", file("shape", a=ALL_CODES.reshape(16, 16)), [],
                  "expected [n]"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    cases.append(("not npz", junk, [], "not an .npz file"))
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, ALL_CODES)
    cases.append(("npy not npz", npy, [], "not an .npz file"))
    cases.append(("no file", tmp_path / "absent.npz", [], "no such file"))
    cases.append(("bias out of range", good, ["--param", "bias=16"], "bias=16 is outside"))
    cases.append(("bad fmt", good, ["--param", "fmt=e3m4"], "must be one of e4m3, e5m2"))
    cases.append(("unknown param", good, ["--param", "mode=fp8"], "unknown parameter 'mode'"))
    cases.append(("malformed param", good, ["--param", "bias"], "NAME=VALUE"))
    return cases


@pytest.mark.parametrize("tool", ["golden", "sim"])
def test_bad_input_one_line_no_file(tmp_path, tool):
    verb = "eval" if tool == "golden" else "run"
    for name, vin, extra, fragment in _bad_inputs(tmp_path):
        out = tmp_path / f"out-{tool}.npz"
        proc = run_cli(tool, verb, "convert", vin, out, *extra)
        assert_one_line_error(proc, fragment)
        assert not out.exists(), name
    good = tmp_path / "good.npz"
    proc = run_cli(tool, verb, "nosuchunit", good, tmp_path / "o.npz")
    assert_one_line_error(proc, "unknown unit 'nosuchunit'")
    proc = run_cli(tool, verb, "convert", good, tmp_path / "no" / "dir" / "o.npz")
    assert_one_line_error(proc, "does not exist")
    assert not (tmp_path / "o.npz").exists()


def test_sim_unknown_simulator(tmp_path):
    np.savez(tmp_path / "in.npz", a=ALL_CODES)
    proc = run_cli("sim", "run", "convert", tmp_path / "in.npz", tmp_path / "o.npz",
                   "--sim", "xsim")
    assert_one_line_error(proc, "invalid choice: 'xsim'")
    assert not (tmp_path / "o.npz").exists()


def test_golden_eval_random_rows(tmp_path):
    """Rows are independent: a random file evaluates to the per-code table."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, 5000).astype(np.uint8)
    np.savez(tmp_path / "in.npz", a=a)
    proc = run_cli("golden", "eval", "convert", tmp_path / "in.npz", tmp_path / "o.npz",
                   "--param", "bias=5")
    assert proc.returncode == 0, proc.stderr
    np.savez(tmp_path / "all.npz", a=ALL_CODES)
    run_cli("golden", "eval", "convert", tmp_path / "all.npz", tmp_path / "table.npz",
            "--param", "bias=5")
    with np.load(tmp_path / "o.npz") as f, np.load(tmp_path / "table.npz") as t:
        assert np.array_equal(f["y"], t["y"][a])


# mpe and quant16: every mode through both commands ------------------------------------

def _mpe_file(path, rng, n=3000):
    np.savez(path, acc=rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32),
             a=rng.integers(0, 256, n).astype(np.uint8),
             b=rng.integers(0, 256, n).astype(np.uint8))


UNIT_CONFIGS = [
    ("mpe", ["mode=fp8", "fmt_a=e4m3", "fmt_b=e5m2"]),
    ("mpe", ["mode=fp8", "fmt_a=e5m2", "fmt_b=e4m3", "bias=0", "pipeline=0"]),
    ("mpe", ["mode=int4"]),
    ("mpe", ["mode=int2", "pipeline=3"]),
    ("quant16", ["fmt=e5m2", "overflow=nan"]),
    ("quant16", ["fmt=e4m3", "bias=15"]),
    ("fmatree", []),
    ("fmatree", ["ways=5", "pipeline=0"]),
    ("quant30", []),
    ("dladd", ["pipeline=2"]),
]


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
@pytest.mark.parametrize("unit, params", UNIT_CONFIGS, ids=lambda x: x if isinstance(x, str)
                         else "-".join(x))
def test_sim_run_equals_golden_eval_units(sim, tmp_path, unit, params):
    rng = np.random.default_rng(len(params))
    vin = tmp_path / "in.npz"
    if unit == "mpe":
        _mpe_file(vin, rng)
    elif unit == "quant16":
        np.savez(vin, x=np.arange(1 << 16, dtype=np.uint16))
    elif unit == "dladd":
        from sim.dladd_vectors import directed_pairs
        pairs = directed_pairs(seed=3, per_case=1)
        np.savez(vin, x=np.concatenate([pairs[:, 0], rng.integers(0, 1 << 16, 3000)])
                 .astype(np.uint16),
                 y=np.concatenate([pairs[:, 1], rng.integers(0, 1 << 16, 3000)])
                 .astype(np.uint16))
    elif unit == "fmatree":
        n, ways = 400, int(next((p.split("=")[1] for p in params if p.startswith("ways=")), 24))
        np.savez(vin, acc=rng.integers(0, 1 << 30, n).astype(np.uint32),
                 a=rng.integers(0, 256, (n, ways)).astype(np.uint8),
                 b=rng.integers(0, 256, (n, ways)).astype(np.uint8),
                 bias_a=rng.integers(-32, 32, n).astype(np.int8),
                 bias_b=rng.integers(-32, 32, n).astype(np.int8))
    else:
        n = 20000
        np.savez(vin, x=rng.integers(0, 1 << 30, n).astype(np.uint32),
                 bias=rng.integers(-32, 32, n).astype(np.int8))
    flags = [x for p in params for x in ("--param", p)]
    golden_flags = [x for p in params if not p.startswith("pipeline=")
                    for x in ("--param", p)]
    gold = run_cli("golden", "eval", unit, vin, tmp_path / "golden.npz", *golden_flags)
    assert gold.returncode == 0, gold.stderr
    rtl = run_cli("sim", "run", unit, vin, tmp_path / "rtl.npz", "--sim", sim, *flags)
    assert rtl.returncode == 0, rtl.stderr
    assert (tmp_path / "golden.npz").read_bytes() == (tmp_path / "rtl.npz").read_bytes()


@pytest.mark.parametrize("tool", ["golden", "sim"])
@pytest.mark.parametrize("unit, arrays, extra, fragment", [
    ("mpe", {"acc": np.zeros(4, np.uint32), "a": np.zeros(4, np.uint8)}, [],
     "missing array 'b'"),
    ("mpe", {"acc": np.zeros(4, np.uint32), "a": np.zeros(4, np.uint8),
             "b": np.zeros(5, np.uint8)}, [], "has n=5, other arrays have n=4"),
    ("mpe", {"acc": np.zeros(4, np.int32), "a": np.zeros(4, np.uint8),
             "b": np.zeros(4, np.uint8)}, [], "dtype int32, expected uint32"),
    ("mpe", {"acc": np.zeros(4, np.uint32), "a": np.zeros(4, np.uint8),
             "b": np.zeros(4, np.uint8)}, ["--param", "mode=int8"], "must be one of fp8"),
    ("quant16", {"x": np.zeros(4, np.uint16)}, ["--param", "overflow=wrap"],
     "must be one of sat, nan"),
    ("quant16", {"x": np.zeros((4, 2), np.uint16)}, [], "expected [n]"),
    ("fmatree", {"acc": np.zeros(2, np.uint32), "a": np.zeros((2, 24), np.uint8),
                 "b": np.zeros((2, 24), np.uint8), "bias_a": np.full(2, 32, np.int8),
                 "bias_b": np.zeros(2, np.int8)}, [], "'bias_a' holds 32, outside -32..31"),
    ("fmatree", {"acc": np.full(2, 1 << 30, np.uint32), "a": np.zeros((2, 24), np.uint8),
                 "b": np.zeros((2, 24), np.uint8), "bias_a": np.zeros(2, np.int8),
                 "bias_b": np.zeros(2, np.int8)}, [], "'acc' holds 1073741824"),
    ("fmatree", {"acc": np.zeros(2, np.uint32), "a": np.zeros((2, 24), np.uint8),
                 "b": np.zeros((2, 24), np.uint8), "bias_a": np.zeros(2, np.int8),
                 "bias_b": np.zeros(2, np.int8)}, ["--param", "ways=8"],
     "arrays have ways=24, but parameter ways=8"),
    ("fmatree", {"acc": np.zeros(2, np.uint32), "a": np.zeros((2, 24), np.uint8),
                 "b": np.zeros((2, 23), np.uint8), "bias_a": np.zeros(2, np.int8),
                 "bias_b": np.zeros(2, np.int8)}, [], "has ways=23, other arrays have ways=24"),
    ("quant30", {"x": np.zeros(3, np.uint32), "bias": np.zeros(3, np.int16)}, [],
     "dtype int16, expected int8"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((4, 2), np.uint8)}, [],
     "has K=4, other arrays have K=3"),
    ("matmul", {"A": np.zeros((0, 3), np.uint8), "B": np.zeros((3, 2), np.uint8)}, [],
     "dimension M is 0"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8),
                "C": np.zeros((2, 3), np.uint32)}, [], "has N=3, other arrays have N=2"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8)},
     ["--param", "dataflow=xs"], "must be one of os, ws"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8)},
     ["--param", "rows=0"], "rows=0 is outside the allowed range 1..64"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8)},
     ["--param", "chunk=-1"], "chunk=-1 is outside the allowed range 0..65535"),
    ("matmul", {"A": np.zeros((2, 3), np.uint8), "B": np.zeros((3, 2), np.uint8)},
     ["--param", "out=fp9"], "out must be one of none, e4m3, e5m2"),
    ("dladd", {"x": np.zeros(3, np.uint16), "y": np.zeros(3, np.uint8)}, [],
     "dtype uint8, expected uint16"),
    ("dladd", {"x": np.zeros(3, np.uint16)}, [], "missing array 'y'"),
])
def test_unit_bad_input(tmp_path, tool, unit, arrays, extra, fragment):
    np.savez(tmp_path / "in.npz", **arrays)
    out = tmp_path / "out.npz"
    verb = "eval" if tool == "golden" else "run"
    proc = run_cli(tool, verb, unit, tmp_path / "in.npz", out, *extra)
    assert_one_line_error(proc, fragment)
    assert not out.exists()


def test_sim_run_bad_generator_param(tmp_path):
    _mpe_file(tmp_path / "in.npz", np.random.default_rng(0), 4)
    proc = run_cli("sim", "run", "mpe", tmp_path / "in.npz", tmp_path / "o.npz",
                   "--param", "pipeline=9")
    assert_one_line_error(proc, "pipeline=9 is outside the allowed range 0..8")
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
# matmul: the array through both commands, any shape and both dataflows -------------------

@pytest.mark.parametrize("params", [
    ["rows=3", "cols=2", "dataflow=os", "fmt_a=e5m2", "pipeline=5"],
    ["rows=2", "cols=3", "dataflow=ws", "mode=int4", "pipeline=1"],
], ids=lambda p: "-".join(p))
def test_sim_run_matmul_equals_golden_eval(sim, tmp_path, params):
    rng = np.random.default_rng(len(params))
    M, K, N = 7, 11, 5
    arrays = {"A": rng.integers(0, 256, (M, K)).astype(np.uint8),
              "B": rng.integers(0, 256, (K, N)).astype(np.uint8)}
    if "mode=int4" in params:
        arrays["C"] = rng.integers(0, 1 << 32, (M, N), dtype=np.uint64).astype(np.uint32)
    np.savez(tmp_path / "in.npz", **arrays)
    flags = [x for p in params for x in ("--param", p)]
    golden_flags = [x for p in params if not p.startswith("pipeline=")
                    for x in ("--param", p)]
    gold = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "golden.npz",
                   *golden_flags)
    assert gold.returncode == 0, gold.stderr
    rtl = run_cli("sim", "run", "matmul", tmp_path / "in.npz", tmp_path / "rtl.npz",
                  "--sim", sim, *flags)
    assert rtl.returncode == 0, rtl.stderr
    assert "GEMM on a" in rtl.stdout
    assert (tmp_path / "golden.npz").read_bytes() == (tmp_path / "rtl.npz").read_bytes()


@pytest.mark.parametrize("sim", sweep_simulators("icarus"))
def test_sim_run_matmul_fp8seb_equals_golden_eval(sim, tmp_path):
    """mode fp8seb runs on the FP8-SEB array, and with out_bias on the FP8-SEB GEMM engine
    (quant30 and the output tracker at the array's edge); dataflow=os is refused in one
    line, and so is a non-square array with out_bias."""
    rng = np.random.default_rng(14)
    np.savez(tmp_path / "in.npz", A=rng.integers(0, 256, (5, 23)).astype(np.uint8),
             B=rng.integers(0, 256, (23, 4)).astype(np.uint8),
             C=rng.integers(0, 1 << 30, (5, 4)).astype(np.uint32))
    seb = ["--param", "mode=fp8seb", "--param", "bias_a=-20", "--param", "bias_b=17",
           "--param", "ways=5"]
    for extra, shape in ((["--param", "rows=2", "--param", "cols=3"], "2x3"),
                         (["--param", "out_bias=-4", "--param", "room=2", "--param",
                           "rows=2", "--param", "cols=2"], "2x2")):
        flags = seb + extra
        gold = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "g.npz",
                       *flags)
        assert gold.returncode == 0, gold.stderr
        rtl = run_cli("sim", "run", "matmul", tmp_path / "in.npz", tmp_path / "r.npz", *flags,
                      "--param", "pipeline=1", "--sim", sim)
        assert rtl.returncode == 0, rtl.stderr
        assert f"{shape} FP8-SEB array of 5-way trees" in rtl.stdout
        assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "r.npz").read_bytes()
    for extra, fragment in ((["--param", "dataflow=os"], "weight-stationary"),
                            (["--param", "out_bias=2", "--param", "rows=2", "--param",
                              "cols=3"], "rows = cols")):
        proc = run_cli("sim", "run", "matmul", tmp_path / "in.npz", tmp_path / "x.npz",
                       *seb, *extra)
        assert_one_line_error(proc, fragment)
        assert not (tmp_path / "x.npz").exists()


def test_golden_eval_matmul_chunk_and_out(tmp_path):
    """chunk and out through the vector file: C as chunked, Y its quant16; out refused in
    the integer modes. ``sim run`` gives the same file through the GEMM engine's RTL."""
    from golden.matmul import matmul
    rng = np.random.default_rng(4)
    A = rng.integers(0, 0x70, (5, 9)).astype(np.uint8)
    B = rng.integers(0, 0x70, (9, 3)).astype(np.uint8)
    np.savez(tmp_path / "in.npz", A=A, B=B)
    proc = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "o.npz",
                   "--param", "chunk=4", "--param", "out=e4m3", "--param", "bias=9")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "o.npz") as f:
        assert f.files == ["C", "Y"] and f["Y"].dtype == np.uint8
        assert np.array_equal(f["C"], matmul(A, B, bias=9, chunk=4))
        assert np.array_equal(f["Y"], matmul(A, B, bias=9, chunk=4, out="e4m3"))
    out = tmp_path / "int.npz"
    proc = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", out,
                   "--param", "mode=int4", "--param", "out=e5m2")
    assert_one_line_error(proc, "matmul: out=e5m2 needs mode fp8")
    assert not out.exists()
    proc = run_cli("sim", "run", "matmul", tmp_path / "in.npz", out, "--param", "chunk=4",
                   "--param", "dataflow=os")
    assert_one_line_error(proc, "matmul with chunk or out runs on the GEMM engine")
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--param", "chunk=4", "--param", "out=e4m3",
                                    "--param", "bias=9", "--param", "rows=3",
                                    "--param", "cols=3", "--param", "dataflow=ws"],
                                   pytest.param(["--param", "out=e5m2", "--param", "fmt_a=e5m2",
                                                 "--param", "dataflow=ws"],
                                                marks=pytest.mark.full)])
def test_sim_run_matmul_chunk_and_out_equals_golden(tmp_path, flags):
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "in.npz", A=rng.integers(0, 256, (5, 9)).astype(np.uint8),
             B=rng.integers(0, 256, (9, 4)).astype(np.uint8),
             C=rng.integers(0, 1 << 16, (5, 4)).astype(np.uint32))
    gold = run_cli("golden", "eval", "matmul", tmp_path / "in.npz", tmp_path / "g.npz",
                   *flags)
    assert gold.returncode == 0, gold.stderr
    rtl = run_cli("sim", "run", "matmul", tmp_path / "in.npz", tmp_path / "r.npz", *flags,
                  "--sim", "verilator")
    assert rtl.returncode == 0, rtl.stderr
    assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "r.npz").read_bytes()


# fp8hw: one command for every entry point ------------------------------------------------

def test_fp8hw_lists_and_runs_its_subcommands(tmp_path):
    from fp8hw.__main__ import SUBCOMMANDS
    proc = run_cli("fp8hw", "--help")
    assert proc.returncode == 0
    for name, (module, _) in SUBCOMMANDS.items():
        assert f"  {name} " in proc.stdout and f"python -m {module}" in proc.stdout
    proc = run_cli("fp8hw", "build", "--unit", "convert", "--param", "bias=3", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "convert_bias3.v").is_file()
    assert run_cli("fp8hw", "golden", "--help").stdout.startswith("usage: fp8hw golden")
    assert_one_line_error(run_cli("fp8hw", "nope"), "unknown subcommand 'nope'")
    assert_one_line_error(run_cli("fp8hw", "build", "--unit", "nope"), "unknown unit 'nope'")
