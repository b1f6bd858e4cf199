"""Waveforms on demand: ``python -m sim run ... --waves --keep DIR`` writes them into DIR
(Icarus: FST, Verilator: VCD), whether or not the simulator build was cached, and a run
without ``--waves`` writes none."""

import numpy as np

from conftest import assert_one_line_error, run_cli
from sim.runner import WAVE_FORMATS


def test_waves_into_keep_folder(sim, tmp_path):
    np.savez(tmp_path / "in.npz", a=np.arange(256, dtype=np.uint8))
    suffix = WAVE_FORMATS[sim]
    for attempt in ("cold or warm cache", "warm cache"):
        keep = tmp_path / f"keep-{len(attempt)}"
        proc = run_cli("sim", "run", "convert", tmp_path / "in.npz", tmp_path / "o.npz",
                       "--sim", sim, "--keep", keep, "--waves")
        assert proc.returncode == 0, proc.stderr
        waves = list(keep.glob(f"*.{suffix}"))
        assert len(waves) == 1 and waves[0].stat().st_size > 1000, (attempt, list(keep.iterdir()))
    keep = tmp_path / "no-waves"
    proc = run_cli("sim", "run", "convert", tmp_path / "in.npz", tmp_path / "o2.npz",
                   "--sim", sim, "--keep", keep)
    assert proc.returncode == 0, proc.stderr
    assert not list(keep.glob("*.fst")) and not list(keep.glob("*.vcd"))
    assert (tmp_path / "o.npz").read_bytes() == (tmp_path / "o2.npz").read_bytes()


def test_waves_need_keep(tmp_path):
    np.savez(tmp_path / "in.npz", a=np.arange(4, dtype=np.uint8))
    proc = run_cli("sim", "run", "convert", tmp_path / "in.npz", tmp_path / "o.npz", "--waves")
    assert_one_line_error(proc, "--waves needs --keep DIR")
    assert not (tmp_path / "o.npz").exists()
