"""Figures of the discrete training experiments (chapter 5): loss curves, learning-signal diagnostics, toy example.

Object-oriented matplotlib only (no pyplot state); every function writes a PNG and returns its path.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from tpdynamics.training import ExperimentResult, TrainingResult, toy_loss_surface

from .plotting import legend_outside, save  # noqa: F401  (legend_outside: used by the experiments)


def _results(result) -> dict:
    if isinstance(result, ExperimentResult):
        return result.results
    if isinstance(result, TrainingResult):
        return {result.method: result}
    if isinstance(result, dict):
        return result
    raise TypeError(f"expected an ExperimentResult, a TrainingResult or a dict of them, got {type(result).__name__}.")


#: The y label of every MSE panel: the thesis's plotted MSE, the mean over samples and outputs (``nn.MSELoss``).
MSE_LABEL = r"MSE  $\langle (h_L - y)^2 \rangle$ over samples and outputs"


def band_label(interval: dict) -> str:
    """What a band shows, for a legend or a title: ``"line: geometric mean; band: 95 % log-t interval"``."""
    return (f"line: {interval['centre']}; band: {100 * interval['confidence']:g} % {interval['method']} interval "
            f"over seeds; thin lines: the seeds (up to {SHOW_RUNS_UP_TO})")


def draw_band(ax, x, centre, low, high, *, label=None, color=None, style="-", lw=1.5):
    """A curve at ``centre`` and its interval ``[low, high]`` as a translucent band (one colour).

    NaN ends (a single run at that point) leave a gap in the band, never a fake width; the band is
    drawn as given (intervals of positive quantities computed on the log scale are positive).
    """
    line, = ax.plot(x, centre, style, color=color, label=label, lw=lw)
    low = np.asarray(low, dtype=float)
    high = np.asarray(high, dtype=float)
    ok = np.isfinite(low) & np.isfinite(high)
    ax.fill_between(np.asarray(x, dtype=float), np.where(ok, low, np.nan), np.where(ok, high, np.nan),
                    color=line.get_color(), alpha=0.13, lw=0)
    return line


def log_limits(centres, lows=(), highs=(), *, top=None, extra_decades: float = 1.0) -> tuple[float, float] | None:
    """y-limits of a log axis that follow the data: the range of the central curves, widened to the bands
    by at most ``extra_decades`` decades, capped at ``top``, with a small margin.

    A band reaching further leaves the panel at its edge (with two seeds a 95 % interval spans decades:
    the panel keeps the curves readable instead of the band). ``None`` when no centre is positive.
    """
    def positive(arrays):
        values = [np.asarray(a, dtype=float).ravel() for a in arrays]
        values = np.concatenate(values) if values else np.empty(0)
        return values[np.isfinite(values) & (values > 0)]

    c = positive(centres)
    if top is not None:
        c = c[c <= top]
    if c.size == 0:
        return None
    lo, hi = float(c.min()), float(c.max())
    factor = 10.0 ** extra_decades
    band_lo, band_hi = positive(lows), positive(highs)
    if band_lo.size:
        lo = max(min(lo, float(band_lo.min())), lo / factor)
    if band_hi.size:
        hi = min(max(hi, float(band_hi.max())), hi * factor)
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    if top is not None:
        hi = min(hi, top)
        lo = min(lo, hi / 2)
    span = math.log10(hi / lo)
    margin = 10.0 ** (0.04 * span + 0.02)
    return lo / margin, hi * margin


#: Up to this many seeds the individual runs are drawn as thin lines beside the band (with 2 or 3 seeds a 95 %
#: interval is wide, t_{0.975, 1} = 12.7, and the runs say more).
SHOW_RUNS_UP_TO = 3


def loss_panel(ax, curves, *, title: str | None = None, x=None, xlabel: str = "epoch", ylabel: str = MSE_LABEL,
               log: bool = True, cap_factor: float | None = 10.0) -> None:
    """Loss curves with their bands on a log axis whose limits follow the data (:func:`log_limits`).

    Parameters
    ----------
    curves : list of dict
        Each ``{"centre", "low", "high", "label", "color", "style"}`` (``color``/``style`` optional) and
        optionally ``"runs"``, the per-seed curves: drawn as thin lines when there are at most
        :data:`SHOW_RUNS_UP_TO`, and part of the data the limits follow.
    x : sequence, optional
        Abscissae (default ``0..len-1``: epochs, index 0 before training, integer ticks).
    cap_factor : float, optional
        The axis stops at ``cap_factor`` x the largest initial centre: a curve heading to overflow (runs
        about to diverge, counted in their labels) leaves the panel at the top instead of squashing the rest.
    """
    from matplotlib.ticker import MaxNLocator

    starts = [c["centre"][0] for c in curves if len(c["centre"]) and np.isfinite(c["centre"][0])]
    top = cap_factor * max(starts) if (cap_factor and starts and log) else None
    data = []
    for c in curves:
        xs = np.arange(len(c["centre"])) if x is None else np.asarray(x)[:len(c["centre"])]
        line = draw_band(ax, xs, c["centre"], c["low"], c["high"], label=c.get("label"), color=c.get("color"),
                         style=c.get("style", "-"))
        data.append(c["centre"])
        runs = c.get("runs") or []
        if 1 < len(runs) <= SHOW_RUNS_UP_TO:
            for run in runs:
                run = np.asarray(run, dtype=float)
                xr = np.arange(len(run)) if x is None else np.asarray(x)[:len(run)]
                ax.plot(xr, run, color=line.get_color(), lw=0.6, alpha=0.6)
                data.append(run)
    if log:
        ax.set_yscale("log")
        limits = log_limits(data, [c["low"] for c in curves], [c["high"] for c in curves], top=top)
        if limits:
            ax.set_ylim(*limits)
    if x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)


def one_minus_cosine(cosines, floor: float = 1e-16) -> np.ndarray:
    """``1 - cos`` for a log axis (alignment close to 1 becomes readable), at least ``floor`` (round-off)."""
    return np.maximum(1.0 - np.asarray(cosines, dtype=float), floor)


def legend_below(fig, axes, **kwargs):
    """One legend for the whole figure, below the panels (the handles of ``axes``, duplicates merged)."""
    handles, labels = {}, []
    for ax in np.atleast_1d(axes).ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    options = {"loc": "outside lower center", "ncols": min(len(labels), 6), "fontsize": 8}
    options.update(kwargs)
    return fig.legend([handles[lab] for lab in labels], labels, **options)


def _colors(count: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(count)]


def plot_loss_curves(result, path, *, title: str | None = None, log: bool = True) -> Path:
    """Train and test MSE per epoch for each method (figs 5.7, 5.13-5.15): the curves of
    :class:`~tpdynamics.training.TrainingResult` — the geometric mean over seeds and its 95 % interval
    computed on the log scale (positive), index 0 before training.

    Parameters
    ----------
    result : ExperimentResult, TrainingResult or dict of name -> TrainingResult
    path : str or Path
        PNG file to write.
    log : bool
        Logarithmic loss axis (its limits follow the curves; a band wider than a decade beyond them is cut
        at the panel edge).
    """
    results = _results(result)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    described = next(iter(results.values())).interval
    for ax, which in zip(axes, ("train", "test")):
        curves = []
        for (name, r), color in zip(results.items(), _colors(len(results))):
            label = name if r.n_diverged == 0 else f"{name} ({r.n_diverged} of {len(r.runs)} stopped)"
            ci = getattr(r, f"{which}_loss_ci")
            curves.append({"centre": getattr(r, f"{which}_loss"), "low": [lo for lo, _ in ci],
                           "high": [hi for _, hi in ci], "label": label, "color": color,
                           "runs": [getattr(run, f"{which}_loss") for run in r.runs]})
        loss_panel(ax, curves, log=log, title=f"{which} loss", ylabel=MSE_LABEL if which == "train" else "")
    seeds = max(len(r.runs) for r in results.values())
    legend_outside(axes[1], title=f"{seeds} seed{'s' if seeds > 1 else ''}")
    fig.suptitle((f"{title}\n" if title else "") + band_label(described), fontsize=10)
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
    from matplotlib.ticker import MaxNLocator

    results = _results(result)
    panels = (("e_approx_norm", r"$\|e^{approx}_%d\|$" % layer, True),
              ("cos_signal_tp", r"$\cos(\hat h - h, e^{TP})$", False),
              ("cos_signal_gn", r"$\cos(\hat h - h, e^{GN})$", False),
              ("cos_signal_bp", r"$\cos(\hat h - h, e^{BP})$", False))
    fig = Figure(figsize=(13, 3.4), layout="constrained")
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
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if log:
                ax.set_yscale("log")
            plotted = True
    if not plotted:
        raise ValueError("the result has no learning-signal diagnostics; train with diagnostics=True "
                         "(CLI: --diagnostics) and a target-propagation method.")
    legend_outside(axes[-1], title="mean over seeds")
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
