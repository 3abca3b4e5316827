"""Figures of the discrete training experiments (chapter 5): loss curves, learning-signal diagnostics, toy example.

Object-oriented matplotlib only (no pyplot state); every function writes a PNG and returns its path.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure

from tpdynamics.training import ExperimentResult, TrainingResult, toy_loss_surface

from .plotting import save


def _results(result) -> dict:
    if isinstance(result, ExperimentResult):
        return result.results
    if isinstance(result, TrainingResult):
        return {result.method: result}
    if isinstance(result, dict):
        return result
    raise TypeError(f"expected an ExperimentResult, a TrainingResult or a dict of them, got {type(result).__name__}.")


def _band(ax, epochs, mean, interval, label, color, floor=None):
    """Mean line and its 95% interval; on a log axis the interval is clipped at ``floor`` (it can reach below 0)."""
    ax.plot(epochs, mean, label=label, color=color, lw=1.5)
    lows = [m if lo is None or math.isnan(lo) else lo for (lo, _), m in zip(interval, mean)]
    highs = [m if hi is None or math.isnan(hi) else hi for (_, hi), m in zip(interval, mean)]
    if floor is not None:
        lows = [max(lo, floor) for lo in lows]
    ax.fill_between(epochs, lows, highs, color=color, alpha=0.12, lw=0)


def _colors(count: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(count)]


def plot_loss_curves(result, path, *, title: str | None = None, log: bool = True) -> Path:
    """Train and test MSE per epoch for each method: mean over seeds with its 95% interval (figs 5.7, 5.13-5.15).

    Parameters
    ----------
    result : ExperimentResult, TrainingResult or dict of name -> TrainingResult
    path : str or Path
        PNG file to write.
    log : bool
        Logarithmic loss axis.
    """
    results = _results(result)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    finite = [v for r in results.values() for v in r.train_loss + r.test_loss if v > 0 and math.isfinite(v)]
    floor = 0.3 * min(finite) if log and finite else None  # intervals reaching below 0 are clipped here
    for (name, r), color in zip(results.items(), _colors(len(results))):
        epochs = list(range(r.epochs + 1))
        label = name if r.n_diverged == 0 else f"{name} ({r.n_diverged} of {len(r.runs)} stopped)"
        _band(axes[0], epochs, r.train_loss, r.train_loss_ci, label, color, floor)
        _band(axes[1], epochs, r.test_loss, r.test_loss_ci, label, color, floor)
    for ax, which in zip(axes, ("train", "test")):
        ax.set_xlabel("epoch")
        ax.set_title(f"{which} loss (mean and 95% interval over seeds)")
        if log:
            ax.set_yscale("log")
    axes[0].set_ylabel(r"MSE  $\langle\|h_L - y\|^2\rangle$")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title)
    return save(fig, path)


def plot_learning_signals(result, path, *, layer: int = 1, title: str | None = None) -> Path:
    """Diagnostics of layer ``layer`` per epoch (figs 5.8, 5.16-5.17): ``||e_approx||`` and the cosines
    of ``hat h_i - h_i`` with ``e_TP``, ``e_GN`` and ``e_BP``, mean over seeds, one line per method.

    Requires a run with ``diagnostics=True``.

    Parameters
    ----------
    result : ExperimentResult, TrainingResult or dict of name -> TrainingResult
    path : str or Path
        PNG file to write.
    layer : int
        Layer ``i`` (1-based) whose diagnostics are drawn.

    Raises
    ------
    ValueError
        If the result has no learning-signal diagnostics.
    """
    results = _results(result)
    panels = (("e_approx_norm", r"$\|e^{approx}_%d\|$" % layer, True),
              ("cos_signal_tp", r"$\cos(\hat h - h, e^{TP})$", False),
              ("cos_signal_gn", r"$\cos(\hat h - h, e^{GN})$", False),
              ("cos_signal_bp", r"$\cos(\hat h - h, e^{BP})$", False))
    fig = Figure(figsize=(12, 3.2))
    axes = fig.subplots(1, len(panels))
    plotted = False
    for name, r in results.items():
        diagnostics = r.diagnostics_mean()
        for ax, (key, label, log) in zip(axes, panels):
            series = diagnostics.get(key)
            if not series:
                continue
            values = [math.nan if v is None or len(v) < layer else v[layer - 1] for v in series]
            ax.plot(range(1, len(values) + 1), values, label=name)
            ax.set_title(label)
            ax.set_xlabel("epoch")
            if log:
                ax.set_yscale("log")
            plotted = True
    if not plotted:
        raise ValueError("the result has no learning-signal diagnostics; train with diagnostics=True "
                         "(CLI: --diagnostics) and a target-propagation method.")
    axes[-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def plot_toy_trajectories(result, problem, path, *, grid: int = 80, title: str | None = None) -> Path:
    """Loss contours over the two hidden weights ``W_1`` of the toy example and each method's path (figs 5.2-5.4).

    Parameters
    ----------
    result : ExperimentResult or TrainingResult
        Runs on the task ``toy-linear`` or ``toy-leaky-relu`` (they record ``W_1`` per epoch).
    problem : StudentTeacherProblem
        The toy problem of the same seed (:func:`tpdynamics.training.toy_example`).
    path : str or Path
        PNG file to write.
    grid : int
        Points per axis of the loss contours.
    """
    results = _results(result)
    paths = {name: torch.tensor(r.runs[0].trajectory) for name, r in results.items() if r.runs[0].trajectory}
    if not paths:
        raise ValueError("no W_1 trajectory recorded: train on task 'toy-linear' or 'toy-leaky-relu'.")
    points = torch.cat(list(paths.values()) + [problem.teacher.layer(1).weight.detach().reshape(1, 2)])
    low, high = points.min(0).values, points.max(0).values
    margin = 0.25 * (high - low).clamp(min=0.5)
    a = torch.linspace(float(low[0] - margin[0]), float(high[0] + margin[0]), grid, dtype=torch.float64)
    b = torch.linspace(float(low[1] - margin[1]), float(high[1] + margin[1]), grid, dtype=torch.float64)
    aa, bb = torch.meshgrid(a, b, indexing="ij")
    loss = toy_loss_surface(problem, torch.stack([aa.flatten(), bb.flatten()], -1)).reshape(grid, grid)
    fig = Figure(figsize=(5.5 * len(paths), 4.5))
    axes = fig.subplots(1, len(paths), squeeze=False)[0]
    fig.subplots_adjust(wspace=0.3)
    optimum = problem.teacher.layer(1).weight.detach().flatten()
    for ax, (name, trajectory) in zip(axes, paths.items()):
        ax.contour(aa.numpy(), bb.numpy(), loss.log10().numpy(), levels=20, cmap="Blues")
        ax.plot(trajectory[:, 0].numpy(), trajectory[:, 1].numpy(), "r*-", ms=6, lw=1)
        ax.plot(float(optimum[0]), float(optimum[1]), "kx", ms=9)
        ax.set_title(name)
        ax.set_xlabel(r"$W_1^{(1)}$")
        ax.set_ylabel(r"$W_1^{(2)}$")
    if title:
        fig.suptitle(title)
    return save(fig, path)
