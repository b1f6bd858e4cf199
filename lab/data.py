"""The lab's data: scikit-learn's bundled 8x8 digits (1797 images, nothing downloaded),
split once into a stratified train and test set by a fixed seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.errors import LabError, require

PIXEL_MAX = 16          # the digits' pixels are integers 0..16
TEST_FRACTION = 0.2
SPLIT_SEED = 0          # the split never changes with the training seed


@dataclass(frozen=True)
class Digits:
    """Images as float32 [n, 64] in [0, 1] (k/16: exact in e4m3 and fp8seb) and labels."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> int:
        return 10

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    def all_images(self) -> np.ndarray:
        """Every image, train then test."""
        return np.concatenate([self.x_train, self.x_test])

    def all_labels(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_test])


def load_digits(test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> Digits:
    """The digits, ``test_fraction`` of each class held out for testing."""
    if not 0 < test_fraction < 1:
        raise LabError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    datasets = require("sklearn.datasets")
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / PIXEL_MAX).astype(np.float32)
    y = y.astype(np.int64)
    rng = np.random.default_rng(split_seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test[members[:round(test_fraction * len(members))]] = True
    return Digits(x[~test], y[~test], x[test], y[test])
