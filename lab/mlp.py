"""The lab's network: a multilayer perceptron with ReLU between its layers, its FP32 master
weights, and its forward and backward passes, whose every GEMM goes through a recipe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.recipe import Recipe


@dataclass
class Layer:
    """What the backward pass needs of a layer's forward pass: its quantized input and
    weights (the same codes the forward GEMM used) and its output before the ReLU."""
    x: object
    w: object
    z: np.ndarray


@dataclass
class Mlp:
    weights: list[np.ndarray]       # float32 master copies, [inputs, outputs]
    biases: list[np.ndarray]        # float32 [outputs]

    @classmethod
    def create(cls, sizes: tuple[int, ...], rng: np.random.Generator) -> "Mlp":
        """He-normal weights for ``sizes`` (inputs, hidden..., outputs), zero biases."""
        weights = [(rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32)
                   for i, o in zip(sizes[:-1], sizes[1:])]
        return cls(weights, [np.zeros(o, np.float32) for o in sizes[1:]])

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def forward(self, recipe: Recipe, x: np.ndarray, track: bool = True):
        """(logits, layers): z = x W + b for each layer, ReLU between layers."""
        layers = []
        a = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            xq = recipe.quantize("activation", f"x{i}", a, track)
            wq = recipe.quantize("weight", f"w{i}", w, track)
            z = recipe.gemm(xq, wq, b)
            layers.append(Layer(xq, wq, z))
            a = np.maximum(z, 0)
        return layers[-1].z, layers

    def backward(self, recipe: Recipe, layers: list[Layer], dz: np.ndarray):
        """Gradients [(dW, db)] per layer from dz = dLoss/dlogits (loss-scaled): the weight
        gradient x^T e and the backward data e W^T, both GEMMs of the recipe."""
        grads = [None] * len(layers)
        for i in reversed(range(len(layers))):
            e = recipe.quantize("error", f"e{i}", dz)
            grads[i] = (recipe.gemm(layers[i].x.T, e), e.values.sum(axis=0))
            if i:
                dz = recipe.gemm(e, layers[i].w.T) * (layers[i - 1].z > 0)
        return grads

    def predict(self, recipe: Recipe, x: np.ndarray) -> np.ndarray:
        """Class labels, in the recipe's arithmetic, changing none of its state."""
        logits, _ = self.forward(recipe, x, track=False)
        return np.argmax(logits, axis=1)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """(mean loss, dLoss/dlogits) in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return float(loss), grad / n
