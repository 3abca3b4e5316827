"""Matplotlib figures (object-oriented API, no global pyplot state; saved as PNG)."""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from tpdynamics.runs import atomic_path


def save(figure: Figure, path) -> Path:
    """Write ``figure`` to ``path`` (PNG, 120 dpi, parent folders created); returns the path as a ``Path``.

    A figure without a constrained layout is trimmed to its tight bounding box.

    A path without a suffix gets ``.png`` (as matplotlib would add it), so the returned path is the file
    written; the format is the suffix's. The file is written atomically (:func:`tpdynamics.runs.atomic_path`).
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    # a constrained layout already fits the labels and outside legends into the figure: trimming it to the tight
    # bounding box as well would draw it once more (about a third of the saving time of the reproduced figures)
    tight = not isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight" if tight else None, format=path.suffix[1:].lower())
    return path


def legend_outside(ax, where: str = "right", **kwargs):
    """The legend of ``ax`` off the data: to the right of the panel (``where="right"``) or below it
    (``"below"``, for panels with a neighbour on the right); ``kwargs`` go to ``ax.legend``. None, and no legend,
    when the panel has no labelled artist."""
    if where == "right":
        options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
    elif where == "below":
        options = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncols": 2}
    else:
        raise ValueError(f"where={where!r} must be 'right' or 'below'.")
    options.update({"borderaxespad": 0.0, "fontsize": 8, **kwargs})
    if "handles" not in kwargs and not ax.get_legend_handles_labels()[0]:
        return None  # nothing labelled on the panel (its own text says why): no empty legend box
    return ax.legend(**options)


def plot_trajectory(trajectory, dynamics, path, *, sample: int = 0, title: str | None = None, reference=None,
                    reference_name: str = "ref", reference_label: str | None = None) -> Path:
    """Activities of every layer over time for one sample, and the residual ``||dh/dt||_inf`` (log scale).

    Parameters
    ----------
    trajectory : tpdynamics.Trajectory
        ``times`` (T,), ``states`` (T, B, N).
    dynamics : tpdynamics.NetworkDynamics
        Used for the residual and the block names.
    path : str or Path
        PNG file to write.
    sample : int
        Which sample of the batch is drawn (named in the title).
    reference : Tensor, shape (B, N), optional
        Draw ``h(t) - reference`` instead of ``h(t)``: a teaching signal moves the units by
        ``O(eta_hat (mu/(1-mu))^(L+1-i))`` (eq. 6.16), invisible at the scale of the activities themselves.
    reference_name : str
        Superscript of the reference in the axis labels (``h_i - h_i^{name}``), e.g. ``"fw"``.
    reference_label : str, optional
        What the reference is, in words, for the title (e.g. ``"the forward pass"``); default ``reference_name``.
    """
    times = trajectory.times.numpy()
    blocks = len(trajectory.state_sizes)
    batch = trajectory.states.shape[1]
    if not 0 <= sample < batch:
        raise ValueError(f"sample={sample} is not in the batch of {batch}; pass 0..{batch - 1}.")
    offsets = None
    if reference is not None:
        offsets = torch.split(torch.as_tensor(reference)[sample], tuple(trajectory.state_sizes), dim=-1)
    fig = Figure(figsize=(7, 1.9 * (blocks + 1)), layout="constrained")
    axes = fig.subplots(blocks + 1, 1, sharex=True)
    for k in range(blocks):
        values = trajectory.layer(k)[:, sample, :].detach()
        name = dynamics.block_name(k)
        if offsets is None:
            axes[k].plot(times, values.numpy(), lw=1)
            axes[k].set_ylabel(f"${name}$")
        else:
            axes[k].plot(times, (values - offsets[k].detach()).numpy(), lw=1)
            axes[k].axhline(0.0, color="k", lw=0.5)
            axes[k].set_ylabel(f"${name} - {name}^{{{reference_name}}}$")
    with torch.no_grad():
        residual = torch.stack([dynamics.residual(s)[sample] for s in trajectory.states]).numpy()
    axes[-1].semilogy(times, residual, color="k")
    axes[-1].set_ylabel(r"$\|dh/dt\|_\infty$")
    axes[-1].set_xlabel(rf"time $t$ (units of $\tau$ = {dynamics.tau:g})")
    what = "" if offsets is None else f"; deviation from {reference_label or reference_name}"
    axes[0].set_title((title + "\n" if title else "approach to equilibrium\n")
                      + f"sample {sample} of {batch}, one line per unit{what}", fontsize=10)
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
    ax.set_ylabel("norm, mean over the batch")
    ax.legend()
    ax.set_title(title)
    return save(fig, path)


# -- stability (section 6.7) ---------------------------------------------------------------------
def stability_figure(report, *, pseudospectrum: bool = False, title: str | None = None,
                     pseudospectrum_limit: int = 1000, resolution: int = 80) -> Figure:
    """Eigenvalues of the flow Jacobian in the complex plane and the transient-growth curve.

    Left: the eigenvalues (crosses), the imaginary axis ``Re = 0`` (the stability boundary of the
    flow), the closed-form eigenvalues of exact inverses (open circles, when the report has them) and,
    optionally, contours of the epsilon-pseudospectra ``{z : sigma_min(zI - J) < epsilon}`` for
    ``epsilon = 10^-1, 10^-2, 10^-3`` times ``max|lambda|``. Right: ``||exp(tJ)||_2`` against ``t`` with
    ``exp(alpha t)`` (the normal-matrix curve) and the maximum marked.

    Parameters
    ----------
    report : analysis.StabilityReport
    pseudospectrum : bool
        Draw pseudospectrum contours (needs the dense Jacobian, ``N <= pseudospectrum_limit``).
    title : str, optional
    pseudospectrum_limit : int
        Largest ``N`` for the contours (``report.pseudospectrum``, i.e. :func:`analysis.pseudospectrum`:
        an SVD per grid point up to ``N = 64``, inverse iteration with triangular solves above).
    resolution : int
        Grid points per axis of the pseudospectrum (halved above ``N = 64``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    fig = Figure(figsize=(11, 4.3))
    ax, bx = fig.subplots(1, 2)
    values = np.asarray(report.eigenvalues)
    re, im = values.real, values.imag
    span_re = max(float(re.max() - re.min()), 1e-3 * max(float(np.abs(values).max()), 1e-12))
    span_im = max(float(np.abs(im).max()), 0.25 * span_re)
    x_lo, x_hi = float(re.min()) - 0.15 * span_re, max(float(re.max()), 0.0) + 0.15 * span_re
    y_lo, y_hi = -1.2 * span_im, 1.2 * span_im
    if pseudospectrum and report.matrix is not None and report.size <= pseudospectrum_limit:
        points = resolution if report.size <= 64 else max(24, resolution // 2)  # O(N^2) per point above 64
        xs, ys = np.linspace(x_lo, x_hi, points), np.linspace(y_lo, y_hi, points)
        sigma = report.pseudospectrum(xs, ys)  # the report's own method: plotting imports nothing from stability
        scale = float(np.abs(values).max()) or 1.0
        levels = [scale * 10.0 ** e for e in (-3, -2, -1)]
        contours = ax.contour(xs, ys, sigma, levels=levels, colors=["#08519c", "#3182bd", "#9ecae1"], linewidths=1)
        ax.clabel(contours, fmt={lv: f"{lv:.0e}" for lv in levels}, fontsize=7)
        ax.plot([], [], color="#3182bd", lw=1, label=r"$\epsilon$-pseudospectra")
    ax.axvline(0.0, color="crimson", lw=1.2, label="Re = 0")
    ax.scatter(re, im, marker="x", color="k", s=28, zorder=3,
               label=f"eigenvalues ({'all' if report.eigenvalues_complete else 'rightmost'})")
    cf = report.closed_form
    if cf is not None:
        closed = np.asarray(cf["eigenvalues"], dtype=float)
        ax.scatter(closed, np.zeros_like(closed), facecolors="none", edgecolors="tab:orange", s=110, lw=1.5, zorder=4,
                   label=f"closed form x{cf['multiplicity']}" + ("" if cf.get("matched") else " (not matched)"))
    ax.axvline(report.spectral_abscissa, color="gray", ls=":", lw=1,
               label=rf"$\alpha$ = {report.spectral_abscissa:.3g} ({report.verdict})")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or f"flow Jacobian, N = {report.size}")
    t = report.transient
    if t is not None:
        times, norms = np.asarray(t.times), np.asarray(t.norms)
        positive = times > 0
        bx.loglog(times[positive], norms[positive], color="k", label=r"$\|e^{tJ}\|_2$")
        bx.loglog(times[positive], np.exp(report.spectral_abscissa * times[positive]), color="gray", ls="--",
                  label=r"$e^{\alpha t}$")
        if np.isfinite(t.value) and t.time > 0:
            bx.plot([t.time], [t.value], "o", color="tab:red", label=f"max {t.value:.3g}")
        bx.axhline(1.0, color="gray", lw=0.8, ls=":")
        lo = max(float(norms[positive].min()), 1e-14)
        bx.set_ylim(lo, 2.0 * max(float(norms.max()), 1.0))
        bx.set_xlabel("time $t$")
        bx.set_ylabel(r"$\|\exp(tJ)\|_2$")
        bx.set_title(rf"transient growth ($\omega$ = {report.numerical_abscissa:.3g})")
        bx.legend(fontsize=8)
    else:
        bx.text(0.5, 0.5, "transient growth not computed", ha="center", va="center", transform=bx.transAxes)
        bx.set_axis_off()
    return fig


def plot_stability(report, path, **kwargs) -> Path:
    """Write :func:`stability_figure` to ``path`` (PNG)."""
    return save(stability_figure(report, **kwargs), path)


def scan_figure(scan, approximate=None) -> Figure:
    """Figures of the random-matrix scan of section 6.7 and, optionally, the approximate-inverse map.

    Panels: (a) numerical spectral abscissa against the closed form (exact inverses) or against ``mu``;
    (b) numerical abscissa ``omega`` against ``alpha`` with the quadrants ``alpha < 0 < omega`` (Hurwitz,
    not negative definite); (c) histogram of the transient growth; (d) fraction of stable cases over
    ``(mu, delta)`` with the boundary ``delta*(mu)`` (if ``approximate`` is given).

    Parameters
    ----------
    scan : analysis.scan.ScanResult
    approximate : analysis.scan.InverseApproximationMap, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    panels = 4 if approximate is not None else 3
    fig = Figure(figsize=(4.2 * panels, 3.9))
    axes = fig.subplots(1, panels)
    rng = np.random.default_rng(0)
    show = rng.permutation(scan.cases)[:20000]  # a scatter of 100k points says no more than 20k
    a = axes[0]
    if scan.delta == 0.0:
        a.scatter(scan.closed_form_abscissa[show], scan.abscissa[show], s=2, alpha=0.4, c=scan.depth[show],
                  cmap="viridis")
        lim = [float(scan.closed_form_abscissa.min()), float(scan.closed_form_abscissa.max())]
        a.plot(lim, lim, color="crimson", lw=0.8, label="closed form")
        a.set_xlabel(r"closed form $-1 + 2\sqrt{\mu(1-\mu)}\cos\frac{\pi}{L+1}$")
        a.legend(fontsize=8)
    else:
        a.scatter(scan.mu[show], scan.abscissa[show], s=2, alpha=0.4, c=scan.depth[show], cmap="viridis")
        a.set_xlabel(r"$\mu$")
    a.axhline(0.0, color="k", lw=0.6)
    a.set_ylabel(r"numerical $\alpha = \max\,\mathrm{Re}\,\lambda$")
    a.set_title(f"{scan.cases} cases: {100 * scan.fraction_stable:.3f}% stable")
    b = axes[1]
    points = b.scatter(scan.abscissa[show], scan.numerical_abscissa[show], s=2, alpha=0.4, c=scan.depth[show],
                       cmap="viridis")
    depths = sorted({int(d) for d in np.unique(scan.depth)})
    fig.colorbar(points, ax=b, label="depth $L$ (colour of panels 1-2)", ticks=depths)
    b.axhline(0.0, color="crimson", lw=0.8)
    b.axvline(0.0, color="crimson", lw=0.8)
    b.set_yscale("symlog", linthresh=1.0)
    b.set_xlabel(r"$\alpha$ (spectral abscissa)")
    b.set_ylabel(r"$\omega = \lambda_{max}((J+J^T)/2)$")
    b.set_title(f"negative definite: {100 * scan.fraction_negative_definite:.2f}%")
    c = axes[2]
    growth = scan.transient_growth[np.isfinite(scan.transient_growth)]
    c.hist(np.log10(np.maximum(growth, 1.0)), bins=60, color="gray")
    c.set_yscale("log")
    c.set_xlabel(r"$\log_{10} \max_t \|e^{tJ}\|_2$")
    c.set_ylabel("cases")
    c.set_title(f"transient growth (max {scan.max_transient_growth:.3g})")
    if approximate is not None:
        d = axes[3]
        delta = np.asarray(approximate.delta)
        positive = delta > 0
        xs = np.log10(delta[positive])
        image = d.pcolormesh(xs, approximate.mu, approximate.fraction_stable[:, positive], vmin=0, vmax=1,
                             cmap="RdYlGn", shading="nearest")
        fig.colorbar(image, ax=d, label="fraction stable")
        boundary = approximate.boundary
        finite = np.isfinite(boundary) & (boundary > 0)
        d.plot(np.log10(boundary[finite]), approximate.mu[finite], "k.-",
               label=rf"$\delta^*$ (level {approximate.level})")
        d.set_xlabel(r"$\log_{10}\delta$ (relative error of $J_g = J_f^{-1} + E$)")
        d.set_ylabel(r"$\mu$")
        d.set_title(rf"approximate inverses (line: $\delta^*$, stable fraction {approximate.level})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_scan(scan, path, approximate=None) -> Path:
    """Write :func:`scan_figure` to ``path`` (PNG)."""
    return save(scan_figure(scan, approximate), path)
