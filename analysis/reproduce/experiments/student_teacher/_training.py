"""The shared machinery of the student-teacher experiments: one task per seed trains every method."""
from __future__ import annotations

import math

import numpy as np
import torch

from tpdynamics.training import THESIS_PRESETS, TrainingConfig, TrainingStatus, run_experiment, student_teacher

from tpdynamics.statistics import SIGNED

from ...base import Claim, Experiment
from ....training_plots import loss_panel
from ._statistics import (_both, _decided, bootstrap_ratio_interval, curve_band, curve_mean, diagnostic_mean,
                          final_values, fmt_positive, ratio_of_means)

#: Thesis names of the learning rules (figure legends).
METHOD_LABELS = {
    "tp-ei": "TP-EI", "rtp-ei": "RTP-EI", "rmtp-ei": "RMTP-EI", "bp": "BP", "bp-fixed": "BP-fixed",
    "tp-ai": "TP-AI", "rtp-ai": "RTP-AI", "dtp-ai": "DTP-AI", "rdtp-ai": "RDTP-AI",
    "tp-orig": "original-TP", "rtp-orig": "original-RTP", "dtp-orig": "original-DTP", "rdtp-orig": "original-RDTP",
}

#: One colour per method family; the randomized version shares its colour (dashed line).
_COLOURS = {"tp-ei": "tab:blue", "rtp-ei": "tab:orange", "rmtp-ei": "tab:green", "bp": "black", "bp-fixed": "tab:gray",
            "tp-ai": "tab:blue", "rtp-ai": "tab:blue", "dtp-ai": "tab:red", "rdtp-ai": "tab:red",
            "tp-orig": "tab:green", "rtp-orig": "tab:green", "dtp-orig": "tab:purple", "rdtp-orig": "tab:purple"}

#: Diagnostics kept from each run (per epoch, per hidden layer; see :mod:`tpdynamics.training.diagnostics`).
DIAGNOSTICS = ("e_approx_norm", "e_tp_norm", "signal_norm", "cos_signal_tp", "cos_signal_gn", "cos_signal_bp",
               "reconstruction_error", "sm_clipped_fraction")

_CONVENTION = ("Convention: the package's e_L = h_L - y is the gradient of 1/2 ||h_L - y||^2; the thesis's toolbox "
               "used 2 (h_L - y) (and 2 (h_i - hat h_i) for the local losses), so the printed rates (kept) give BP and "
               "the forward TP updates half the thesis's step.")


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _is_randomized(method: str) -> bool:
    return method in ("rtp-ai", "rdtp-ai", "rtp-orig", "rdtp-orig", "rtp-ei")


def _comparison_text(table, a: str, b: str) -> tuple[str, float, tuple]:
    fa, fb = table[a]["final_test_loss"], table[b]["final_test_loss"]
    ratio = ratio_of_means(fa, fb)
    low, high = bootstrap_ratio_interval(fa, fb)
    wins = sum(1 for x, y in zip(fa, fb) if math.isfinite(x) and math.isfinite(y) and x < y)
    both = sum(1 for x, y in zip(fa, fb) if math.isfinite(x) and math.isfinite(y))
    text = (f"final test MSE {_label(a)} {fmt_positive(fa)} vs {_label(b)} {fmt_positive(fb)}; "
            f"ratio of means over the {both} "
            f"seeds where both completed {ratio:.3g} (paired bootstrap 95 % CI {low:.3g}-{high:.3g}); "
            f"{_label(a)} lower on {wins} of {both}; "
            f"diverged {_label(a)} {table[a]['n_diverged']}/{table[a]['n_runs']}, "
            f"{_label(b)} {table[b]['n_diverged']}/{table[b]['n_runs']}.")
    return text, ratio, (low, high)


class StudentTeacherTraining(Experiment):
    """Shared machinery: one task per seed trains every method on that seed's problem.

    Settings keys: ``methods``, ``preset`` (key of :data:`~tpdynamics.training.THESIS_PRESETS`), ``epochs``,
    ``batches_per_epoch`` (``None``: the preset's), ``n_train`` (the thesis's training-set size, kept in
    quick mode so that the problem does not change), ``n_test``, ``diagnostics_every`` (record the
    learning-signal diagnostics every that many steps; 0: none) and optionally ``eta_backward`` (overrides
    the preset's backward rate for every method that has one).
    """

    def run_task(self, settings, task, dtype=torch.float64):
        every = settings.get("diagnostics_every", 0)
        config = TrainingConfig(methods=tuple(settings["methods"]), preset=settings["preset"],
                                  seeds=[task["seed"]], epochs=settings["epochs"],
                                  eta_backward=settings.get("eta_backward"),
                                  batches_per_epoch=settings.get("batches_per_epoch"), n_train=settings.get("n_train"),
                                  n_test=settings.get("n_test", 1000), diagnostics=every > 0,
                                  diagnostics_every=max(1, every), dtype=dtype)
        result = run_experiment(config)
        methods = {}
        for name, training in result.results.items():
            run = training.runs[0]
            methods[name] = {"status": run.status, "message": run.message, "steps": run.steps,
                             "train_loss": list(run.train_loss), "test_loss": list(run.test_loss),
                             "hyperparameters": {k: v for k, v in training.hyperparameters.items()
                                                 if isinstance(v, (int, float, str, type(None)))},
                             "diagnostics": {k: run.diagnostics[k] for k in DIAGNOSTICS if k in run.diagnostics}}
        # the student's initial weights depend on the seed only (not on the data sizes): their largest singular
        # values bound the stable backward rates of Alg. A.8 (eta_b sigma_max(W_{i+1})^2 < 2)
        start = student_teacher(THESIS_PRESETS[settings["preset"]].layers, n_train=1, n_test=1, seed=task["seed"])
        sigma_max = [float(torch.linalg.svdvals(w)[0]) for w in start.student_weights]
        return {"seed": task["seed"], "problem": result.problems[0], "methods": methods,
                "initial_sigma_max": sigma_max}

    # -- summary helpers ------------------------------------------------------------------------------
    @staticmethod
    def method_table(settings, results) -> dict:
        """Per method: hyper-parameters, diverged runs, per-seed final losses, the arithmetic mean curves
        ``*_loss_mean`` (the claims' statistic) and the figures' ``*_loss_interval`` (geometric mean, 95 % log-t
        band and the per-seed curves; :func:`curve_band`)."""
        table = {}
        for method in settings["methods"]:
            runs = [r["methods"][method] for r in results]
            train_mean = curve_mean(results, method, "train_loss", SIGNED)[0]  # arithmetic: the claims' statistic
            test_mean = curve_mean(results, method, "test_loss", SIGNED)[0]
            table[method] = {
                "label": _label(method), "hyperparameters": runs[0]["hyperparameters"],
                "n_runs": len(runs), "n_diverged": sum(r["status"] != TrainingStatus.COMPLETED for r in runs),
                "messages": [r["message"] for r in runs if r["status"] != TrainingStatus.COMPLETED],
                "final_train_loss": final_values(results, method, "train_loss"),
                "final_test_loss": final_values(results, method, "test_loss"),
                "runs_per_epoch": [sum(len(r["test_loss"]) > e for r in runs) for e in range(len(test_mean))],
                "train_loss_mean": train_mean, "test_loss_mean": test_mean,
                # the figures' curves: geometric mean and its 95 % log-t band
                "train_loss_interval": curve_band(results, method, "train_loss"),
                "test_loss_interval": curve_band(results, method, "test_loss"),
            }
        return table

    def compare(self, table, better: str, worse: str, statement: str, *, robust: bool, extra: str = "") -> Claim:
        """Claim that ``better`` ends with a lower mean test MSE than ``worse`` (ratio of seed means < 1)."""
        text, ratio, interval = _comparison_text(table, better, worse)
        return Claim(statement, text + (f" {extra}" if extra else ""), holds=_decided(ratio < 1, ratio), robust=robust,
                     values={"mean_ratio": ratio, "bootstrap_ci": list(interval),
                             better: table[better]["final_test_loss"], worse: table[worse]["final_test_loss"]})

    def similar(self, table, a: str, b: str, statement: str, *, factor: float, robust: bool, extra: str = "") -> Claim:
        """Claim that ``a`` and ``b`` end within ``factor`` of each other (ratio of seed-mean final test MSE)."""
        text, ratio, interval = _comparison_text(table, a, b)
        text += f" Criterion: ratio of means within a factor {factor:g}."
        return Claim(statement, text + (f" {extra}" if extra else ""),
                     holds=_decided(1 / factor <= ratio <= factor, ratio), robust=robust,
                     values={"mean_ratio": ratio, "bootstrap_ci": list(interval), "factor": factor,
                             a: table[a]["final_test_loss"], b: table[b]["final_test_loss"]})

    def _ordering(self, table, statement: str, better, worse, *, robust: bool) -> Claim:
        """Claim that every method of ``better`` ends below every method of ``worse`` (ratios of seed means < 1)."""
        better = (better,) if isinstance(better, str) else tuple(better)
        worse = (worse,) if isinstance(worse, str) else tuple(worse)
        pairs = {f"{b}/{w}": _comparison_text(table, b, w) for b in better for w in worse}
        verdicts = [_decided(ratio < 1, ratio) for _, ratio, _ in pairs.values()]
        holds = _both(*verdicts)
        measured = " | ".join(text for text, _, _ in pairs.values())
        return Claim(statement, measured, holds=holds, robust=robust,
                     values={k: {"mean_ratio": ratio, "bootstrap_ci": list(ci)} for k, (_, ratio, ci) in pairs.items()})

    # -- figure helpers ---------------------------------------------------------------------------------
    @staticmethod
    def plot_losses(ax, table, methods, key: str, title: str) -> None:
        """Geometric mean loss curve with its 95 % log-t band (``table[m][KEY_interval]``), log scale, limits
        following the curves (:func:`analysis.training_plots.loss_panel`); randomized methods dashed."""
        curves = []
        for method in methods:
            row = table[method]
            label = row["label"] + (f" ({row['n_diverged']}/{row['n_runs']} diverged)" if row["n_diverged"] else "")
            curves.append({**row[f"{key}_interval"], "label": label, "color": _COLOURS.get(method),
                           "style": "--" if _is_randomized(method) else "-"})
        loss_panel(ax, curves, title=f"{title}\n(geometric mean over seeds, 95 % log-t band)")

    @staticmethod
    def plot_diagnostic(ax, results, methods, key: str, title: str, *, log: bool = False, layer: int = 1) -> None:
        """Per-epoch mean over seeds of one diagnostic of layer ``layer``; randomized methods dashed.

        On a log axis values above 1e4 x the median of all plotted values are cut (runs about to diverge).
        """
        curves = {m: np.asarray(diagnostic_mean(results, m, key, layer), dtype=float) for m in methods}
        curves = {m: v for m, v in curves.items() if v.size and np.isfinite(v).any()}
        if not curves:
            return
        values = np.concatenate([v[np.isfinite(v)] for v in curves.values()])
        for method, series in curves.items():
            style = "--" if _is_randomized(method) else "-"
            ax.plot(np.arange(1, len(series) + 1), series, style, color=_COLOURS.get(method), label=_label(method),
                    lw=1.4)
        if log:
            positive = values[values > 0]
            ax.set_yscale("log")
            if positive.size:
                ax.set_ylim(0.5 * positive.min(), min(2 * positive.max(), 1e4 * np.median(positive)))
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=10)
