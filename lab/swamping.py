"""Swamping: the error of long dot products of real activations, by accumulator.

Two workloads from a trained network and every digit image (K = 64 .. 1797 images, in a
seeded order, each K a prefix of it):

- ``activation sums``: for each hidden unit, the sum over K images of its post-ReLU
  activation (A = H^T [units, K], B = a column of ones): positive terms, so a long sum
  grows until the terms fall below half of its last place and vanish one by one.
- ``weight gradients``: the output layer's weight gradient over a batch of K images,
  H^T E (E: the softmax errors p - onehot), signed terms.

Each runs through every accumulator: the MPE's sequential DLFloat16 fold
(``golden.matmul``, chunk 0), chunk-based accumulation at several chunk lengths (Wang et
al., NeurIPS 2018), both on ``e4m3`` activations and ``e5m2`` errors as in ``hfp8``; and
the FP8-SEB ``ways``-way tree with its ``fp30`` accumulator (``golden.seb_matmul``) on
``fp8seb`` codes (each tensor at the shared bias the ``next_bias`` rule settles on). The
error is normwise, ||C - S|| / ||S|| over all outputs of the GEMM, against S, the exact sum
of the same quantized products (each product of two FP8 values is exact in float64;
``math.fsum`` adds them with one rounding, at 2^-53).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import golden
from lab.data import Digits
from lab.fp8seb import largest_exponent, settled_bias
from lab.hfp8 import E4M3_BIAS
from lab.mlp import Mlp
from lab.quantized import Quantized

KS = (64, 128, 256, 512, 1024, 1797)
CHUNKS = (16, 32, 64, 128, 256)
WORKLOADS = ("activation sums", "weight gradients")
SEQUENTIAL = "sequential"
ORDER_SEED = 0
TARGET = 0.01           # the target for chunk-based accumulation: under 1%


def tree_name(ways: int) -> str:
    return f"fp30 tree ({ways}-way)"


def chunk_name(chunk: int) -> str:
    return f"chunk {chunk}"


@dataclass
class SwampingResult:
    ks: list[int]
    ways: int
    # errors[workload][accumulator] = relative error for each K
    errors: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"ks": self.ks, "ways": self.ways, "errors": self.errors}

    @classmethod
    def from_json(cls, d: dict) -> "SwampingResult":
        return cls(d["ks"], d["ways"], d["errors"])


def hidden_and_errors(model: Mlp, images: np.ndarray, labels: np.ndarray):
    """The first hidden layer's post-ReLU activations H [K, units] and the softmax errors E
    [K, classes] of a one-hidden-layer network, in float32 (the real data)."""
    if len(model.weights) != 2:
        raise ValueError("the swamping workloads take a network with one hidden layer")
    h = np.maximum(images @ model.weights[0] + model.biases[0], 0)
    logits = h @ model.weights[1] + model.biases[1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return h, p


def exact_sums(a: Quantized, b: Quantized) -> np.ndarray:
    """The exact A x B of the quantized values: exact products, summed by ``math.fsum``."""
    products = a.values[:, :, None] * b.values[None, :, :]
    out = np.empty((a.values.shape[0], b.values.shape[1]))
    for i, j in np.ndindex(out.shape):
        out[i, j] = math.fsum(products[i, :, j])
    return out


def relative_error(c: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(c - exact) / np.linalg.norm(exact))


def _hfp8(x, fmt) -> Quantized:
    bias = E4M3_BIAS if fmt == "e4m3" else None
    codes = golden.encode(np.asarray(x, np.float64), fmt, bias=bias)
    return Quantized(golden.decode(codes, fmt, bias=bias), codes, fmt, bias)


def _seb(x) -> Quantized:
    bias = settled_bias(largest_exponent(x), 1)
    codes = golden.encode(np.asarray(x, np.float64), golden.FP8SEB, bias=bias)
    return Quantized(golden.decode(codes, golden.FP8SEB, bias=bias), codes, "fp8seb", bias)


def measure(a_hfp8: Quantized, b_hfp8: Quantized, a_seb: Quantized, b_seb: Quantized,
            chunks, ways) -> dict[str, float]:
    """Each accumulator's relative error on one GEMM (given in both quantizations)."""
    exact = exact_sums(a_hfp8, b_hfp8)
    out = {}
    for chunk in (0, *chunks):
        c = golden.matmul(a_hfp8.codes, b_hfp8.codes, mode="fp8", fmt_a=a_hfp8.fmt,
                          fmt_b=b_hfp8.fmt, bias=E4M3_BIAS, chunk=chunk)
        out[chunk_name(chunk) if chunk else SEQUENTIAL] = relative_error(
            golden.decode(c & 0xFFFF, golden.DLFLOAT16), exact)
    tree = golden.seb_matmul(a_seb.codes, b_seb.codes, bias_a=a_seb.bias,
                             bias_b=b_seb.bias, ways=ways)
    out[tree_name(ways)] = relative_error(golden.decode(tree.C, golden.FP30),
                                          exact_sums(a_seb, b_seb))
    return out


def swamping(model: Mlp, data: Digits, ks=KS, chunks=CHUNKS, ways: int = 24,
             log=None) -> SwampingResult:
    """The two workloads at every K of ``ks`` through every accumulator."""
    images, labels = data.all_images(), data.all_labels()
    order = np.random.default_rng(ORDER_SEED).permutation(len(labels))
    if max(ks) > len(order):
        raise ValueError(f"K at most {len(order)} (the digit images), got {max(ks)}")
    h, e = hidden_and_errors(model, images[order], labels[order])
    result = SwampingResult(list(ks), ways)
    for workload in WORKLOADS:
        rows = result.errors.setdefault(workload, {})
        for k in ks:
            a = h[:k].T
            b = np.ones((k, 1)) if workload == "activation sums" else e[:k]
            errors = measure(_hfp8(a, "e4m3"), _hfp8(b, "e4m3" if workload == "activation sums"
                                                       else "e5m2"),
                             _seb(a), _seb(b), chunks, ways)
            for name, err in errors.items():
                rows.setdefault(name, []).append(err)
            if log:
                log(f"swamping, {workload}, K={k}: " + ", ".join(
                    f"{name} {100 * err:.3g}%" for name, err in errors.items()))
    return result
