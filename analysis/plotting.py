"""Matplotlib figures (object-oriented API, no global pyplot state; saved as PNG)."""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure


def save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_trajectory(trajectory, dynamics, path, *, sample: int = 0, title: str | None = None) -> Path:
    """Activities of every layer over time for one sample, and the residual ``||dh/dt||_inf`` (log scale).

    Parameters
    ----------
    trajectory : tpdynamics.Trajectory
        ``times`` (T,), ``states`` (T, B, N).
    dynamics : tpdynamics.NetworkDynamics
        Used for the residual and the block names.
    path : str or Path
        PNG file to write.
    """
    times = trajectory.times.numpy()
    blocks = len(trajectory.state_sizes)
    fig = Figure(figsize=(7, 1.9 * (blocks + 1)))
    axes = fig.subplots(blocks + 1, 1, sharex=True)
    for k in range(blocks):
        values = trajectory.layer(k)[:, sample, :].detach().numpy()
        axes[k].plot(times, values, lw=1)
        axes[k].set_ylabel(f"${dynamics.block_name(k)}$")
    with torch.no_grad():
        residual = torch.stack([dynamics.residual(s)[sample] for s in trajectory.states]).numpy()
    axes[-1].semilogy(times, residual, color="k")
    axes[-1].set_ylabel(r"$\|dh/dt\|_\infty$")
    axes[-1].set_xlabel(r"time $t$")
    axes[0].set_title(title or f"approach to equilibrium (sample {sample})")
    return save(fig, path)


def plot_layer_signals(measured, predicted, path, *, title: str = "") -> Path:
    """Measured vs predicted per-layer magnitudes (log scale), e.g. ``||h*_i - f_i(h*_{i-1})||``.

    Parameters
    ----------
    measured, predicted : sequence of float
        One value per layer ``1..L``.
    """
    layers = list(range(1, len(measured) + 1))
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.semilogy(layers, measured, "o-", label="measured")
    ax.semilogy(layers, predicted, "x--", label="first-order prediction")
    ax.set_xlabel("layer $i$")
    ax.set_xticks(layers)
    ax.set_ylabel("mean norm")
    ax.legend()
    ax.set_title(title)
    return save(fig, path)
