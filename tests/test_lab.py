"""The numerics lab (lab/): the recipes' quantization and shared biases, seeded training in
every recipe, the swamping experiment's ordering, the report's files, the board path's
golden reference against the training forward pass, and one-line errors."""

import json

import numpy as np
import pytest

import golden
from conftest import assert_one_line_error, run_cli
from lab import TrainConfig, load_digits, load_result, make_recipe, save_result, train
from lab.__main__ import main as lab_main
from lab.board import golden_forward, relu_codes, seb_golden_forward
from lab.fp8seb import settled_bias
from lab.mlp import Mlp
from lab.report import report
from lab.swamping import SEQUENTIAL, TARGET, chunk_name, swamping, tree_name

TINY = dict(hidden=(16,), epochs=3, batch=64)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.quick
def test_digits_split_is_fixed_and_stratified(digits):
    again = load_digits()
    assert np.array_equal(digits.x_test, again.x_test)
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert len(digits.y_test) == 359
    # every class is held out in proportion (20%, rounded)
    counts = np.bincount(digits.y_test, minlength=10)
    totals = counts + np.bincount(digits.y_train, minlength=10)
    assert np.all(np.abs(counts - 0.2 * totals) <= 0.5)
    # pixels k/16: exact in e4m3 at bias 11
    codes = golden.encode(digits.x_train, "e4m3", bias=11)
    assert np.array_equal(golden.decode(codes, "e4m3", bias=11), digits.x_train)


@pytest.mark.quick
def test_hfp8_quantizes_forward_e4m3_backward_e5m2():
    r = make_recipe("hfp8")
    x = np.array([[0.1, -3.0, 100.0, 2e-5]])
    a = r.quantize("activation", "x0", x)
    e = r.quantize("error", "e0", x)
    assert (a.fmt, a.bias, e.fmt) == ("e4m3", 11, "e5m2")
    assert a.values[0, 2] == 28.0                  # saturates at e4m3's largest (bias 11)
    assert e.values[0, 2] == 96.0                  # e5m2 has the range
    assert a.values[0, 3] == 0 and e.values[0, 3] != 0   # 2e-5: below e4m3 at bias 11
    assert r.stats.saturated["activation"] == 1 and r.stats.flushed["activation"] == 1
    # a GEMM with a bias row: the bias is the DLFloat16 initial C
    w = r.quantize("weight", "w0", np.array([[0.5], [0.25], [0.0], [1.0]]))
    z = r.gemm(a, w, np.array([1.0]))
    assert z[0, 0] == pytest.approx(1 + 0.1015625 * 0.5 - 3 * 0.25, abs=2 ** -9)


@pytest.mark.quick
def test_shared_bias_follows_a_growing_tensor():
    r = make_recipe("fp8seb")
    x = np.full((4, 4), 0.75)                       # largest exponent -1
    biases = []
    for step in range(8):
        q = r.quantize("activation", "x0", x * 2.0 ** step)
        biases.append(q.bias)
        assert np.all(q.values == x * 2.0 ** step)  # exact: the bias keeps it in range
    # Settled at the first value (15 - room - (-1) = 15), then one step behind the tensor,
    # which doubles every step: a tensor is quantized with the bias its predecessor set.
    assert biases == [15, 15, 14, 13, 12, 11, 10, 9]
    assert r.history["x0"] == biases and r.largest["x0"] == list(range(-1, 7))
    # Evaluation reads the biases and moves none of them.
    r.quantize("activation", "x0", x * 1e3, track=False)
    assert r.bias["x0"] == 8 and len(r.history["x0"]) == 8
    assert settled_bias(None, 1) == 0 and settled_bias(-100, 1) == 31


@pytest.mark.quick
def test_board_reference_is_the_training_forward_pass(digits):
    """The board path (bias as initial C, on-chip e4m3 quantization, ReLU on codes) gives
    exactly the logits of the hfp8 recipe's forward pass."""
    model = Mlp.create((64, 24, 10), np.random.default_rng(3))
    model.biases[0][:] = np.linspace(-0.5, 0.5, 24)
    recipe = make_recipe("hfp8", chunk=16)
    logits, layers = model.forward(recipe, digits.x_test[:20], track=False)
    outputs = golden_forward(model, digits.x_test[:20], chunk=16)
    assert np.array_equal(golden.decode(outputs[-1] & 0xFFFF, golden.DLFLOAT16), logits)
    hidden = relu_codes(outputs[0])
    assert np.any(outputs[0] & 0x80) and not np.any(hidden & 0x80)
    # ReLU on the quantized codes = the codes of the ReLU'd sums (what training feeds on)
    assert np.array_equal(hidden, golden.encode(np.maximum(layers[0].z, 0), "e4m3", bias=11))


@pytest.mark.quick
def test_seb_board_reference_is_the_training_forward_pass(digits):
    """The fp8seb board path (bias row as fp30 initial C, on-chip quant30 at the hidden
    activation's shared bias, ReLU on codes) gives exactly the logits of the fp8seb
    recipe's forward pass with the same shared biases."""
    model = Mlp.create((64, 24, 10), np.random.default_rng(4))
    model.biases[0][:] = np.linspace(-0.5, 0.5, 24)
    recipe = make_recipe("fp8seb", ways=5)
    x = digits.x_test[:20]
    model.forward(recipe, x)                    # settles each tensor's first bias
    biases = dict(recipe.bias)
    recipe.bias = dict(biases)
    logits, layers = model.forward(recipe, x, track=False)
    outputs = seb_golden_forward(model, biases, x, ways=5)
    assert np.array_equal(golden.decode(outputs[-1], golden.FP30), logits)
    hidden = relu_codes(outputs[0])
    assert np.any(outputs[0] & 0x80) and not np.any(hidden & 0x80)
    assert np.array_equal(hidden, golden.encode(np.maximum(layers[0].z, 0), golden.FP8SEB,
                                                bias=biases["x1"]))


@pytest.mark.quick
def test_cli_bad_input_is_one_line(tmp_path, capsys):
    not_a_folder = tmp_path / "f"
    not_a_folder.write_text("x")
    for argv, fragment in ((["train", "--epochs", "0"], "epochs"),
                           (["train", "--recipe", "fp16"], "invalid choice"),
                           (["train", "--hidden", "8,x"], "--hidden"),
                           (["train", "--lr", "nan"], "lr"),
                           (["report", "--seeds", "0", "--out", str(tmp_path)], "seeds"),
                           (["report", "--out", str(not_a_folder)], "is a file"),
                           (["board", "--images", "2"], "--sim"),
                           ([], "command")):
        assert lab_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert list(tmp_path.iterdir()) == [not_a_folder]     # nothing written
    assert_one_line_error(run_cli("lab", "train", "--batch", "0"), "batch")


@pytest.mark.quick
def test_training_is_seeded_and_every_recipe_learns(digits, tmp_path):
    results = {}
    for recipe in ("fp32", "hfp8", "fp8seb"):
        config = TrainConfig(recipe=recipe, **TINY)
        first, again = train(config, digits), train(config, digits)
        assert first.train_loss == again.train_loss
        assert first.test_accuracy == again.test_accuracy
        assert first.biases == again.biases
        assert all(np.array_equal(a, b) for a, b in zip(first.model.weights,
                                                         again.model.weights))
        assert first.train_loss[-1] < 0.5 * first.train_loss[0]
        results[recipe] = first
    base = results["fp32"].final_accuracy
    assert base > 0.85
    for recipe in ("hfp8", "fp8seb"):
        assert results[recipe].final_accuracy > base - 0.05, recipe
        # the FP8 recipes really are not FP32: their weights differ
        assert not np.array_equal(results[recipe].model.weights[0],
                                  results["fp32"].model.weights[0])
    assert set(results["fp8seb"].biases) == {"x0", "w0", "x1", "w1", "e1", "e0"}
    steps = TINY["epochs"] * results["fp8seb"].steps_per_epoch
    assert all(len(h) == steps for h in results["fp8seb"].biases.values())
    # another seed is another run
    assert train(TrainConfig(recipe="hfp8", seed=1, **TINY), digits).train_loss != \
        results["hfp8"].train_loss
    # a saved run loads back whole
    save_result(results["fp8seb"], tmp_path)
    loaded = load_result(tmp_path, "fp8seb-seed0")
    assert loaded.config == results["fp8seb"].config
    assert loaded.biases == results["fp8seb"].biases
    assert np.array_equal(loaded.model.weights[1], results["fp8seb"].model.weights[1])


@pytest.mark.quick
def test_swamping_is_cured_by_chunks_and_the_tree(digits):
    model = train(TrainConfig(recipe="fp32", hidden=(32,), epochs=5), digits).model
    result = swamping(model, digits, ks=(64, 512, 1797), chunks=(32, 64, 256))
    for workload, rows in result.errors.items():
        seq, c64 = rows[SEQUENTIAL], rows[chunk_name(64)]
        tree = rows[tree_name(24)]
        # sequential DLFloat16 gets worse with K; chunks of 64 keep it under 1%
        assert seq[-1] > seq[0] and seq[-1] > TARGET, workload
        assert max(c64) < TARGET and c64[-1] < seq[-1], workload
        # the 24-way exact tree with fp30 is orders of magnitude better still
        assert max(tree) < 1e-4 * TARGET, workload
    sums = result.errors["activation sums"]
    assert sums[chunk_name(256)][-1] > sums[chunk_name(32)][-1]


def test_report_writes_its_files_and_reuses_runs(tmp_path, digits):
    config = TrainConfig(hidden=(16,), epochs=2)
    lines = []
    path = report(tmp_path, config, seeds=2, ablations=False, log=lines.append)
    text = path.read_text()
    for needle in ("| fp32 |", "| hfp8 |", "| fp8seb |", "| sequential |", "| chunk 64 |",
                   "fp30 tree (24-way)", "e1: output errors", "loss.png"):
        assert needle in text, needle
    for png in ("loss.png", "swamping.png", "shared_bias.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["label"]: r for r in results["accuracy"]}
    assert set(rows) == {"fp32", "hfp8", "fp8seb"} and len(rows["hfp8"]["accuracies"]) == 2
    assert rows["fp32"]["diff_pp"] == 0
    assert rows["hfp8"]["met"] == (abs(rows["hfp8"]["diff_pp"]) <= 1)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        f"{r}-seed{s}.{ext}" for r in ("fp32", "hfp8", "fp8seb") for s in (0, 1)
        for ext in ("json", "npz"))
    assert not [ln for ln in lines if "reusing" in ln]
    # Again: every run is reused, the report is the same but for its time.
    lines.clear()
    report(tmp_path, config, seeds=2, ablations=False, log=lines.append)
    assert len([ln for ln in lines if "reusing" in ln]) == 6
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["accuracy"] == results["accuracy"]
    assert again["swamping"] == results["swamping"]


@pytest.mark.quick
def test_a_missing_extra_is_one_line():
    from lab.errors import LabError, require
    with pytest.raises(LabError, match=r"^no_such_module is not installed \(pip install "
                       r"'fp8hw\[lab\]'\)$"):
        require("no_such_module.datasets")
