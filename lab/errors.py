"""The lab's one-line errors: a bad setting or a missing extra, never a bug."""

from fp8hw.errors import Fp8hwError


DISTRIBUTIONS = {"sklearn": "scikit-learn"}     # import name: what pip installs


class LabError(Fp8hwError):
    """A lab setting out of range, a missing results file, a missing extra."""


def require(module: str):
    """Import ``module`` of the ``lab`` extra, or say in one line how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        package = DISTRIBUTIONS.get(module.split(".")[0], module.split(".")[0])
        raise LabError(f"{package} is not installed (pip install 'fp8hw[lab]')") from None
