"""The package installs like any other: a normal (non-editable) ``pip install`` of the
repository into a fresh virtual environment gives the ``fp8hw`` command and every
``python -m`` entry point, run from any folder, and nothing is written into the installed
package. The extras bring the simulators and the FPGA tools; without them the commands
that need them say so in one line."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, assert_one_line_error

KEEP_OUT = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info",
                                  ".pytest_cache")


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_pip_install_and_run_elsewhere(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=KEEP_OUT)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", source],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args):
        return subprocess.run(list(args), cwd=work, capture_output=True, text=True, env=env)

    where = run(python, "-c", "import hw, os; print(os.path.dirname(os.path.dirname("
                "hw.__file__)))")
    site = Path(where.stdout.strip())
    assert site != ROOT and (site / "hw" / "build.py").is_file(), where
    installed = _files(site)

    proc = run(python, "-m", "hw.build", "--unit", "mpe")
    assert proc.returncode == 0, proc.stderr
    verilog = list((work / "build" / "verilog").glob("mpe_*.v"))
    assert len(verilog) == 1 and "module mpe_" in verilog[0].read_text()

    proc = run(venv / "bin" / "fp8hw", "--help")
    assert proc.returncode == 0
    for subcommand in ("build", "synth", "bench", "golden", "bench-golden", "sim", "bench-array",
                       "host", "lab"):
        assert f"  {subcommand} " in proc.stdout
    proc = run(venv / "bin" / "fp8hw", "build", "--unit", "convert", "--out", "v")
    assert proc.returncode == 0 and (work / "v" / "convert_bias11.v").is_file(), proc.stderr

    import numpy as np
    np.savez(work / "in.npz", a=np.arange(256, dtype=np.uint8))
    proc = run(python, "-m", "golden", "eval", "convert", "in.npz", "out.npz")
    assert proc.returncode == 0 and (work / "out.npz").is_file(), proc.stderr
    # The base install has no simulator: one line says which extra brings it.
    assert_one_line_error(run(python, "-m", "sim", "run", "convert", "in.npz", "o.npz"),
                          "pip install 'fp8hw[sim]'")
    assert not (work / "o.npz").exists()

    assert _files(site) == installed, "the commands wrote into site-packages"
