"""The recipes by name: ``make_recipe("hfp8", chunk=64)``."""

from __future__ import annotations

from lab.errors import LabError
from lab.fp8seb import SebRecipe
from lab.fp32 import Fp32Recipe
from lab.hfp8 import Hfp8Recipe
from lab.recipe import Recipe

RECIPES = {"fp32": Fp32Recipe, "hfp8": Hfp8Recipe, "fp8seb": SebRecipe}


def make_recipe(name: str, **settings) -> Recipe:
    """A fresh recipe (its shared biases, if any, not yet set)."""
    try:
        return RECIPES[name](**settings)
    except KeyError:
        raise LabError(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})") from None
