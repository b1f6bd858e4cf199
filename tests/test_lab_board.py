"""A trained network's inference on the simulated board (Verilator), through the host
driver with the hidden layer kept on chip, gives exactly the golden model's bits and the
lab's own predictions: hfp8 on the MPE engine, fp8seb on the FP8-SEB engine; and
``python -m lab board`` on both."""

import json

from conftest import run_cli
from lab import TrainConfig, load_digits, train
from lab.board import on_simulated_board, seb_biases


def test_trained_network_on_simulated_board(tmp_path):
    data = load_digits()
    config = TrainConfig(recipe="hfp8", hidden=(64,), epochs=4, chunk=16)
    result = train(config, data)
    images, labels = data.x_test[:5], data.y_test[:5]
    run = on_simulated_board("verilator", result.model, images, labels, config.chunk)
    assert run.bit_exact and run.layers_equal == [True, True]
    assert run.per_batch < run.images          # the A buffer holds fewer: several batches
    predicted = result.model.predict(config.make_recipe(), images)
    assert run.predictions == predicted.tolist()
    assert len(set(run.predictions)) > 1

    proc = run_cli("lab", "board", "--sim", "verilator", "--hidden", "8", "--epochs", "2",
                   "--images", "3", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "board.json").read_text())
    assert saved["bit_exact"] and saved["network"] == "64-8-10" and saved["images"] == 3
    assert (tmp_path / "runs" / "hfp8-seed0.json").is_file()


def test_trained_fp8seb_network_on_simulated_seb_board(tmp_path):
    """``python -m lab board --recipe fp8seb`` on the FP8-SEB engine of 5-way trees (the
    driver tests' simulated board): each tensor at the shared bias its last training step
    used, the hidden layer quantized on chip at its own; every layer the golden codes."""
    proc = run_cli("lab", "board", "--recipe", "fp8seb", "--ways", "5", "--sim",
                   "verilator", "--hidden", "32", "--epochs", "3", "--images", "6",
                   "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "board-fp8seb.json").read_text())
    assert saved["bit_exact"] and saved["layers_equal"] == [True, True]
    assert (saved["recipe"], saved["ways"], saved["images"]) == ("fp8seb", 5, 6)
    trained = json.loads((tmp_path / "runs" / "fp8seb-seed0.json").read_text())
    assert saved["biases"] == seb_biases(trained["biases"])
    assert len(set(saved["predictions"])) > 1
    assert sum(p == y for p, y in zip(saved["predictions"], saved["labels"])) >= 4
