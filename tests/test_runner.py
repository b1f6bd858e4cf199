"""The simulation runner's Verilator builds link one compiled copy of Verilator's runtime
library, kept in the simulation cache, instead of compiling it for every design."""

import os

import numpy as np

from conftest import run_cli


def test_verilator_runtime_compiled_once(tmp_path):
    env = {**os.environ, "FP8HW_SIM_CACHE": str(tmp_path / "cache")}
    np.savez(tmp_path / "in.npz", a=np.arange(256, dtype=np.uint8))
    logs = []
    for bias in (3, 4):             # two designs, so the second is built from scratch too
        keep = tmp_path / f"keep{bias}"
        proc = run_cli("sim", "run", "convert", tmp_path / "in.npz", tmp_path / f"o{bias}.npz",
                       "--sim", "verilator", "--param", f"bias={bias}", "--keep", keep,
                       env=env)
        assert proc.returncode == 0, proc.stderr
        logs.append((keep / "build.log").read_text())
        gold = run_cli("golden", "eval", "convert", tmp_path / "in.npz",
                       tmp_path / f"g{bias}.npz", "--param", f"bias={bias}")
        assert gold.returncode == 0, gold.stderr
        assert (tmp_path / f"o{bias}.npz").read_bytes() == (tmp_path / f"g{bias}.npz").read_bytes()
    archives = list((tmp_path / "cache" / "verilator-runtime").glob("libverilated-*.a"))
    assert len(archives) == 1
    assert "verilated_vpi.cpp" in logs[0]            # the first build compiles the runtime
    assert "verilated_vpi.cpp" not in logs[1]        # the second links the archive
    assert str(archives[0]) in logs[1]
