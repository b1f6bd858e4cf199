"""The lab's PNG figures, drawn with matplotlib's Agg canvas (no display, no pyplot state)
and returned as bytes, so that the caller writes each file whole."""

from __future__ import annotations

import io

import numpy as np

from lab.errors import require
from lab.swamping import TARGET, SwampingResult

RECIPE_COLORS = {"fp32": "black", "hfp8": "tab:blue", "fp8seb": "tab:red"}
DPI = 110
SWAMPING_TITLES = {
    "activation sums": "activation sums: each hidden unit's ReLU outputs over K images",
    "weight gradients": "weight gradients: output layer, H^T E over K images"}


def _figure(width, height, panels=1):
    require("matplotlib")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, panels)
    return fig, np.atleast_1d(axes)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    # No software tag: the same figure gives the same bytes whatever matplotlib made it.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def loss_curves(curves: dict[str, dict]) -> bytes:
    """``curves[label] = {"recipe", "loss": [...], "accuracy": [...]}`` (per epoch, means
    over the seeds): training loss and test accuracy of each recipe."""
    fig, (left, right) = _figure(10, 4, 2)
    variant_styles = iter([":", "-.", "--"] * 4)
    for label, c in curves.items():
        color = RECIPE_COLORS.get(c["recipe"])
        style = "-" if label == c["recipe"] else next(variant_styles)
        epochs = np.arange(1, len(c["loss"]) + 1)
        left.plot(epochs, c["loss"], style, color=color, label=label)
        right.plot(epochs, 100 * np.asarray(c["accuracy"]), style, color=color, label=label)
    left.set(yscale="log", xlabel="epoch", ylabel="training loss (mean over the epoch)",
             title="Training loss, digits MLP")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _png(fig)


def swamping_plot(result: SwampingResult) -> bytes:
    """Relative error against K for each accumulator, one panel a workload."""
    fig, axes = _figure(11, 4.2, len(result.errors))
    for ax, (workload, rows) in zip(axes, result.errors.items()):
        for name, errors in rows.items():
            errors = np.asarray(errors)
            exact = [str(k) for k, e in zip(result.ks, errors) if e == 0]
            if exact:                   # an exact sum has no place on a log scale
                name += f" (exact at K={', '.join(exact)}: drawn at 1e-7%)"
            style = "--" if name.startswith("fp30") else "-"
            ax.plot(result.ks, 100 * np.maximum(errors, 1e-9), style, marker="o", label=name)
        ax.axhline(100 * TARGET, color="gray", linestyle=":", label="1% target")
        ax.set(xscale="log", yscale="log", xlabel="K (products summed)",
               ylabel="relative error (%)", title=SWAMPING_TITLES.get(workload, workload))
        ax.set_xticks(result.ks, [str(k) for k in result.ks])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    return _png(fig)


def bias_plot(biases: dict[str, list[int]], largest: dict[str, list], room: int,
              steps_per_epoch: int, labels: dict[str, str]) -> bytes:
    """Each tensor's shared bias per training step (solid) and the bias that would hold its
    largest value ``room`` binades below the top at that step (dotted): the rule follows.
    Weights and activations above, errors (tensors ``e...``) below."""
    require("matplotlib")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    forward, backward = fig.subplots(2, 1, sharex=True)
    colors = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                   "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"] * 4)
    for name, history in biases.items():
        ax = backward if name.startswith("e") else forward
        color = next(colors)
        steps = np.arange(len(history)) / steps_per_epoch
        ax.step(steps, history, where="post", color=color, linewidth=1,
                label=labels.get(name, name))
        target = [np.nan if e is None else 15 - room - e for e in largest.get(name, [])]
        if target:
            ax.plot(steps, target, ":", color=color, linewidth=0.8, alpha=0.7)
    forward.set(ylabel="shared exponent bias",
                title="fp8seb: each tensor's shared bias over training (solid), and "
                      "15 - room - its largest exponent (dotted)")
    backward.set(xlabel="epoch", ylabel="shared exponent bias")
    for ax in (forward, backward):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", ncol=2, loc="upper left")
    return _png(fig)
