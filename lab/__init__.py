"""The numerics lab: FP8 training on real data (scikit-learn's bundled digits) with every
GEMM in the golden model, in three recipes (``fp32``, IBM's ``hfp8``, SNU's ``fp8seb``),
and the experiments that reproduce the formats' authors' claims (docs/lab.md)::

    from lab import TrainConfig, train
    result = train(TrainConfig(recipe="hfp8", epochs=30))

``python -m lab train|report|board`` runs them from the command line.
"""

from lab.data import Digits, load_digits
from lab.errors import LabError
from lab.mlp import Mlp
from lab.recipes import RECIPES, make_recipe
from lab.train import TrainConfig, TrainResult, load_result, save_result, train

__all__ = ["Digits", "LabError", "Mlp", "RECIPES", "TrainConfig", "TrainResult",
           "load_digits", "load_result", "make_recipe", "save_result", "train"]
