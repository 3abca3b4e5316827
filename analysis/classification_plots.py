"""Figures of the classification runs: accuracy and loss per epoch for every method, mean and 95 % band over seeds.

Object-oriented matplotlib only; the function writes a PNG and returns its path.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plotting import save
from .training_plots import _colors, draw_band


def plot_classification_curves(result, path, *, title: str | None = None) -> Path:
    """Test accuracy, validation accuracy and training loss per epoch (index 0: before training).

    Accuracy: arithmetic mean over seeds with its 95 % t interval; loss: geometric mean with its log-t
    interval (:mod:`tpdynamics.training.classification_results`). Discrete and continuous methods side
    by side (the continuous networks dashed).

    Parameters
    ----------
    result : tpdynamics.training.ClassificationResult
    path : str or Path
    """
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("test_accuracy", "test accuracy"), ("val_accuracy", "validation accuracy"), ("train_loss", "training loss"))
    for (metric, label), ax in zip(panels, axes):
        for (name, r), color in zip(result.results.items(), _colors(len(result.results))):
            curve = r.curve(metric)
            style = "--" if "-phase" in name or name == "multiplexed" else "-"
            failed = f" ({r.n_failed} of {len(r.runs)} stopped)" if r.n_failed else ""
            draw_band(ax, list(range(len(curve))), [c["mean"] for c in curve], [c["low"] for c in curve],
                      [c["high"] for c in curve], label=name + failed, color=color, style=style)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        if metric == "train_loss":
            ax.set_yscale("log")
        else:  # a t interval of few seeds can pass 0 or 1; the panel shows the possible range
            ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    seeds = max(len(r.runs) for r in result.results.values())
    config = result.config
    fig.suptitle((f"{title}\n" if title else "") + f"{config['task']}, {config['loss']}, layers "
                 f"{'-'.join(map(str, config['layers']))}, {seeds} seeds; accuracy: mean and 95 % t interval; "
                 "loss: geometric mean and 95 % log-t interval", fontsize=10)
    return save(fig, path)
