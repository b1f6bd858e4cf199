"""Training a recipe on the digits: ``train(TrainConfig(recipe="hfp8"))``.

Seeded and deterministic: the seed draws the initial weights and the order of the
minibatches; the golden model has no randomness. The results (per epoch: mean training
loss, test accuracy; per step for ``fp8seb``: every tensor's shared bias) go to
``runs/RECIPE-seedSEED.json`` in an output folder and the trained network to ``.npz``
beside it (``save_result``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fp8hw.files import write_atomic, write_text_atomic
from lab.data import Digits, load_digits
from lab.errors import LabError
from lab.mlp import Mlp, softmax_cross_entropy
from lab.recipes import RECIPES, make_recipe


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``chunk`` and ``loss_scale`` apply to ``hfp8`` (``loss_scale``
    None: the recipe's own, 1024 for ``hfp8`` and 1 for the others), ``ways``, ``room`` and
    ``initial_bias`` to ``fp8seb``."""
    recipe: str = "hfp8"
    hidden: tuple[int, ...] = (128,)
    epochs: int = 30
    batch: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    chunk: int = 64
    loss_scale: float | None = None
    ways: int = 24
    room: int = 1
    initial_bias: int | None = None

    def check(self) -> "TrainConfig":
        """LabError naming the first setting out of range."""
        def need(ok, what):
            if not ok:
                raise LabError(what)
        need(self.recipe in RECIPES, f"unknown recipe {self.recipe!r} (known: "
             f"{', '.join(RECIPES)})")
        need(len(self.hidden) >= 1 and all(1 <= h <= 4096 for h in self.hidden),
             f"hidden sizes must be 1..4096, at least one, got {list(self.hidden)}")
        need(1 <= self.epochs <= 10000, f"epochs must be 1..10000, got {self.epochs}")
        need(1 <= self.batch <= 4096, f"batch must be 1..4096, got {self.batch}")
        need(math.isfinite(self.lr) and self.lr > 0, f"lr must be positive, got {self.lr}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.seed >= 0, f"seed must be at least 0, got {self.seed}")
        need(0 <= self.chunk <= 65535, f"chunk must be 0..65535, got {self.chunk}")
        need(self.loss_scale is None or (math.isfinite(self.loss_scale)
                                         and self.loss_scale > 0),
             f"loss_scale must be positive, got {self.loss_scale}")
        need(1 <= self.ways <= 1024, f"ways must be 1..1024, got {self.ways}")
        need(0 <= self.room <= 15, f"room must be 0..15, got {self.room}")
        need(self.initial_bias is None or -32 <= self.initial_bias <= 31,
             f"initial_bias must be -32..31, got {self.initial_bias}")
        return self

    def make_recipe(self):
        settings = {"hfp8": dict(chunk=self.chunk),
                    "fp8seb": dict(ways=self.ways, room=self.room,
                                   initial_bias=self.initial_bias)}.get(self.recipe, {})
        recipe = make_recipe(self.recipe, **settings)
        if self.loss_scale is not None:
            recipe.loss_scale = float(self.loss_scale)
        return recipe

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{**d, "hidden": tuple(d["hidden"])})


@dataclass
class TrainResult:
    config: TrainConfig
    model: Mlp
    recipe: dict                                   # the recipe's settings
    train_loss: list[float] = field(default_factory=list)      # per epoch
    test_accuracy: list[float] = field(default_factory=list)   # per epoch, after it
    initial_accuracy: float = 0.0                  # before the first step
    seconds: float = 0.0
    steps_per_epoch: int = 0
    biases: dict[str, list[int]] = field(default_factory=dict)  # fp8seb: per step
    largest: dict[str, list] = field(default_factory=dict)      # and max exponents
    quantization: dict = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracy[-1]

    def to_json(self) -> dict:
        return {"config": self.config.to_dict(), "recipe": self.recipe,
                "train_loss": self.train_loss, "test_accuracy": self.test_accuracy,
                "initial_accuracy": self.initial_accuracy, "seconds": self.seconds,
                "steps_per_epoch": self.steps_per_epoch, "biases": self.biases,
                "largest": self.largest, "quantization": self.quantization}


RUNS = "runs"           # the folder of the runs' files, inside an output folder


def run_name(config: TrainConfig) -> str:
    return f"{config.recipe}-seed{config.seed}"


def results_paths(folder, name: str) -> tuple[Path, Path]:
    runs = Path(folder) / RUNS
    return runs / f"{name}.json", runs / f"{name}.npz"


def save_result(result: TrainResult, folder, name: str | None = None) -> tuple[Path, Path]:
    """The results file and the trained network, ``FOLDER/runs/NAME.json`` and ``.npz``
    (NAME: ``RECIPE-seedSEED`` by default), each written whole or not at all."""
    json_path, npz_path = results_paths(folder, name or run_name(result.config))
    buffer = io.BytesIO()
    arrays = {f"w{i}": w for i, w in enumerate(result.model.weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(result.model.biases)})
    np.savez(buffer, **arrays)
    write_atomic(npz_path, lambda f: f.write(buffer.getvalue()))
    write_text_atomic(json_path, json.dumps(result.to_json(), indent=1) + "\n")
    return json_path, npz_path


def load_result(folder, name: str) -> TrainResult:
    """A saved run (``save_result``); LabError if it is missing or unreadable."""
    json_path, npz_path = results_paths(folder, name)
    try:
        d = json.loads(json_path.read_text())
        with np.load(npz_path) as z:
            layers = len(d["config"]["hidden"]) + 1
            model = Mlp([z[f"w{i}"] for i in range(layers)],
                        [z[f"b{i}"] for i in range(layers)])
        config = TrainConfig.from_dict(d.pop("config"))
        return TrainResult(config=config, model=model, **d)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LabError(f"cannot read the run {name} in {folder}: {e}") from None


def train(config: TrainConfig, data: Digits | None = None, log=None) -> TrainResult:
    """Train ``config``'s network on the digits; ``log(line)`` hears of every epoch."""
    config.check()
    data = data or load_digits()
    recipe = config.make_recipe()
    rng = np.random.default_rng(config.seed)
    model = Mlp.create((data.features, *config.hidden, data.classes), rng)
    velocity = [(np.zeros_like(w), np.zeros_like(b))
                for w, b in zip(model.weights, model.biases)]
    scale = recipe.loss_scale
    n = len(data.y_train)
    result = TrainResult(config, model, recipe.describe(),
                         steps_per_epoch=-(-n // config.batch))
    result.initial_accuracy = accuracy(model, recipe, data)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(n)
        losses = []
        for s in range(0, n, config.batch):
            batch = order[s:s + config.batch]
            logits, layers = model.forward(recipe, data.x_train[batch])
            loss, dlogits = softmax_cross_entropy(logits, data.y_train[batch])
            losses.append(loss)
            grads = model.backward(recipe, layers, dlogits * scale)
            for i, ((dw, db), (vw, vb)) in enumerate(zip(grads, velocity)):
                # SGD with momentum on the FP32 master copy, the gradients unscaled first.
                vw *= config.momentum
                vw += (dw / scale).astype(np.float32)
                vb *= config.momentum
                vb += (db / scale).astype(np.float32)
                model.weights[i] -= np.float32(config.lr) * vw
                model.biases[i] -= np.float32(config.lr) * vb
        result.train_loss.append(float(np.mean(losses)))
        result.test_accuracy.append(accuracy(model, recipe, data))
        if log:
            log(f"{config.recipe} epoch {epoch + 1}/{config.epochs}: train loss "
                f"{result.train_loss[-1]:.4f}, test accuracy "
                f"{100 * result.test_accuracy[-1]:.2f}%")
    result.seconds = time.perf_counter() - start
    result.biases = dict(getattr(recipe, "history", {}))
    result.largest = dict(getattr(recipe, "largest", {}))
    result.quantization = recipe.stats.fractions()
    return result


def accuracy(model: Mlp, recipe, data: Digits) -> float:
    """Test accuracy in the recipe's own arithmetic."""
    return float(np.mean(model.predict(recipe, data.x_test) == data.y_test))
