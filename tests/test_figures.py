"""Figures draw the quantity they label, with bands that respect it and axes that follow the data."""
import math

import numpy as np
import pytest
import torch

import tpdynamics as tp
from analysis.comparisons import AlignmentResult, TrajectoryComparison
from analysis.plotting import legend_outside, plot_trajectory, scan_figure
from analysis.scan import stability_scan
from analysis.training_plots import log_limits, loss_panel
from matplotlib.figure import Figure


def _horizontal_lines(ax):
    return [line for line in ax.lines if len(set(np.asarray(line.get_ydata(), dtype=float))) == 1
            and len(line.get_xdata()) == 2]


def test_alignment_reference_line_is_drawn_at_the_panels_quantity():
    rows = [{"mode": "single_phase", "mu": mu, "layer": 1, "cosine": 1 - mu ** 2, "relative_error": mu,
             "discrete_rule": "tp-ei"} for mu in (0.2, 0.1, 0.05)]
    rows += [{"mode": "multiplexed", "mu": None, "layer": i, "cosine": c, "relative_error": e, "discrete_rule": "dtp-ai"}
             for i, (c, e) in enumerate([(0.9, 0.4), (0.7, 0.2)], start=1)]
    fig = AlignmentResult(rows=rows, slopes={}, settings={}).figure()
    error_panel, cosine_panel = fig.axes[:2]
    assert [line.get_ydata()[0] for line in _horizontal_lines(error_panel)] == pytest.approx([0.3])  # mean error
    assert [line.get_ydata()[0] for line in _horizontal_lines(cosine_panel)] == pytest.approx([0.2])  # mean 1 - cos
    assert "1 - \\cos" in cosine_panel.get_ylabel()
    assert [float(t) for t in cosine_panel.get_xticks()] == pytest.approx([0.05, 0.1, 0.2])  # one tick per mu
    legend = cosine_panel.get_legend()
    fig.canvas.draw()  # the legend lies right of the data panel
    assert legend.get_window_extent().x0 >= cosine_panel.get_window_extent().x1


def test_log_limits_follow_the_curves_not_a_two_seed_band():
    low, high = log_limits([[100.0, 10.0, 1.0]], [[1e-40, 1e-30, 1e-20]], [[1e40, 1e30, 1e20]])
    assert 0.05 < low < 0.1 and 1000 < high < 2000  # one decade beyond the curves at most
    assert log_limits([[1.0, 2.0]], top=1.5)[1] == pytest.approx(1.5, rel=0.2)
    assert log_limits([[math.nan, -1.0]]) is None


def test_trajectory_band_is_positive_on_a_log_axis_and_the_panel_follows_the_curves():
    runs = [[800.0, 100.0, 1e-3], [800.0, 300.0, 1e3]]
    from tpdynamics.statistics import curve_intervals
    stats = curve_intervals(runs, "log-t")
    comparison = TrajectoryComparison(budget=[0.0, 0.5, 1.0], settings={"model": "single_phase", "method": "tp-ei"},
                                      curves={"discrete": {"centre": [s.centre for s in stats],
                                                           "ci": [[s.low, s.high] for s in stats],
                                                           "interval": stats[0].describe(), "runs": runs}})
    ax = comparison.figure().axes[0]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert np.all(band[np.isfinite(band)] > 0)
    low, high = ax.get_ylim()
    assert 1e-5 < low < 1e-3 and 1e3 < high < 1e5 and "geometric mean" in ax.get_title()


def test_taught_trajectory_is_drawn_as_the_deviation_from_the_reference(tmp_path):
    net = tp.LayeredNetwork.build([3, 3, 3], feedback="exact", weight_init="orthogonal", seed=0)
    h0 = torch.randn(4, 3, dtype=torch.float64, generator=tp.make_generator(1))
    with torch.no_grad():
        dyn = tp.MixtureDynamics(net, h0, mu=0.2, label=net(h0)[-1] + 1.0, eta_hat=0.1)
        trajectory = tp.integrate(dyn, torch.linspace(0, 5, 20, dtype=torch.float64))
    path = plot_trajectory(trajectory, dyn, tmp_path / "t.png", sample=2, reference=dyn.initial_state("forward"),
                           reference_name="fw", reference_label="the forward pass")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"sample=4 is not in the batch of 4; pass 0..3"):
        plot_trajectory(trajectory, dyn, tmp_path / "x.png", sample=4)


def test_loss_panel_draws_runs_for_few_seeds_and_integer_epochs():
    fig = Figure()
    ax = fig.subplots()
    loss_panel(ax, [{"centre": [10.0, 1.0], "low": [5.0, 0.1], "high": [20.0, 10.0], "runs": [[9.0, 0.5], [11.0, 2.0]],
                     "label": "a"}])
    assert len(ax.lines) == 3 and ax.get_yscale() == "log" and "MSE" in ax.get_ylabel()
    with pytest.raises(ValueError, match=r"where='left' must be 'right' or 'below'"):
        legend_outside(ax, "left")
    assert legend_outside(ax) is ax.get_legend() is not None


def test_an_empty_diagnostic_panel_says_so_and_gets_no_empty_legend():
    from analysis.reproduce.experiments.student_teacher._training import StudentTeacherTraining

    fig = Figure()
    ax = fig.subplots()
    results = [{"methods": {"rtp-ai": {"diagnostics": {}}}}]  # diagnostics not recorded
    StudentTeacherTraining.plot_diagnostic(ax, results, ["rtp-ai"], "cos_e_tp_e_gn", "(c) cosine")
    assert not ax.lines and "no finite cos_e_tp_e_gn of rtp-ai" in ax.texts[0].get_text()
    assert ax.get_xlabel() == "epoch" and ax.get_title() == "(c) cosine"
    assert legend_outside(ax) is None and ax.get_legend() is None


def test_scan_scatter_has_a_colourbar_for_the_depth():
    scan = stability_scan(60, depths=(2, 3), widths=(2,), seed=0, transient=False)
    fig = scan_figure(scan)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any(label.startswith("depth $L$") for label in labels)  # the colourbar of panels 1-2
