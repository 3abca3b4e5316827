"""The shared machinery of the student-teacher experiments: one task per slot trains every method on a draw,
redrawing the draw (as the thesis's toolbox did) until every method survived. The slots of an experiment run
together (:meth:`StudentTeacherTraining.run_batch`: their draws as ensembles, :mod:`tpdynamics.ensemble`) and are
stored one result per slot (:mod:`analysis.reproduce.batching`)."""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from tpdynamics.statistics import SIGNED
from tpdynamics.training import (LOSS_UNIT, THESIS_PRESETS, TrainingConfig, TrainingStatus, run_experiment,
                                 student_teacher)

from ...base import Claim, Experiment
from ....training_plots import loss_panel
from ._statistics import (REDRAW_STRIDE, _both, curve_band, curve_mean, diagnostic_mean, final_values,
                          paired_final, survives, views)

#: The thesis's names of the learning rules (figure legends, claims).
METHOD_LABELS = {
    "tp-ei": "TP-EI", "rtp-ei": "RTP-EI", "rmtp-ei": "RMTP-EI", "bp": "BP", "bp-fixed": "fixed-BP",
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

_CONVENTION = ("Conventions (as chapter 5 and the thesis's toolbox): loss ||h_L - y||^2, so e_L = 2 (h_L - y) and the "
               "local TP gradients carry the factor 2 (loss_convention 'thesis'); losses reported in " + LOSS_UNIT
               + "; method comparisons paired per problem (same teacher, data and initialisation).")

#: Why a loss ordering is judged on the thesis's view.
_WHY_THESIS_VIEW = ("judged on the thesis's view because its curves average the surviving draws only (the toolbox "
                    "redrew a draw whose training raised)")


class ViewSet:
    """The two views of a set of task results, for any set of compared methods (:func:`~._statistics.views`).

    The toolbox trained each figure's methods in one loop and redrew the draw when one of them failed, so the
    draws that survive depend on the figure: a comparison of ``methods`` uses the survivors of the group
    (:meth:`StudentTeacherTraining.survival_groups`) that contains them all, or, across groups, of the union of
    their groups.
    """

    def __init__(self, results: list[dict], criterion: str, groups: dict):
        self.results, self.criterion, self.groups = results, criterion, groups
        self._cache: dict = {}

    def survivors_for(self, methods) -> tuple:
        """The methods that must survive for a comparison of ``methods``."""
        methods = set(methods)
        for group in self.groups.values():
            if methods <= set(group):
                return tuple(group)
        return tuple(dict.fromkeys(m for g in self.groups.values() if methods & set(g) for m in g))

    def group_name(self, methods) -> str:
        """The name of the group a comparison of ``methods`` is judged in (``"+"``-joined across groups)."""
        methods = set(methods)
        for name, group in self.groups.items():
            if methods <= set(group):
                return name
        return " + ".join(name for name, g in self.groups.items() if methods & set(g))

    def __call__(self, methods=None) -> dict:
        key = self.survivors_for(methods) if methods is not None else tuple(dict.fromkeys(
            m for g in self.groups.values() for m in g))
        if key not in self._cache:
            self._cache[key] = {**views(self.results, self.criterion, key), "group": self.group_name(key)}
        return self._cache[key]


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _is_randomized(method: str) -> bool:
    return method in ("rtp-ai", "rdtp-ai", "rtp-orig", "rdtp-orig", "rtp-ei", "rmtp-ei")


class StudentTeacherTraining(Experiment):
    """Shared machinery: one task per slot trains every method on that slot's draw.

    Settings keys: ``methods``, ``preset`` (key of :data:`~tpdynamics.training.THESIS_PRESETS`), ``epochs``,
    ``batches_per_epoch`` (``None``: the preset's), ``n_train`` (the thesis's training-set size, kept in
    quick mode so that the problem does not change), ``n_test``, ``diagnostics_every`` (record the
    learning-signal diagnostics every that many steps; 0: none), ``max_redraws`` (redraws allowed per slot
    for the thesis's view) and optionally ``eta_backward`` (overrides the preset's backward rate for every
    method that has one) and ``loss_convention`` (default: the preset's, ``"thesis"``).

    Two views of the runs (:func:`~._statistics.views`): *all runs* (slot ``k`` is seed ``k``; diverged
    runs counted) and *as the thesis plotted* (slot ``k`` redrawn with seeds ``k + j REDRAW_STRIDE`` until
    every method of the draw survived, by :attr:`survival`).
    """

    #: Criterion of a surviving draw (:data:`~._statistics.SURVIVAL`).
    survival = "completed"

    def train_seeds(self, settings, seeds, dtype=torch.float64) -> list[dict]:
        """Every method of ``settings`` on the draw of each of ``seeds``, trained together (one ``run_experiment``:
        the seeds of each method as one ensemble, :mod:`tpdynamics.ensemble`; one seed trains serially): per seed
        its curves, statuses, diagnostics, ``sigma_max(W_i)`` and output curvature, as :meth:`train_seed`."""
        seeds = [int(s) for s in seeds]
        every = settings.get("diagnostics_every", 0)
        config = TrainingConfig(methods=tuple(settings["methods"]), preset=settings["preset"],
                                seeds=seeds, epochs=settings["epochs"], eta_backward=settings.get("eta_backward"),
                                loss_convention=settings.get("loss_convention"),
                                batches_per_epoch=settings.get("batches_per_epoch"), n_train=settings.get("n_train"),
                                n_test=settings.get("n_test", 1000), diagnostics=every > 0,
                                diagnostics_every=max(1, every), dtype=dtype)
        result = run_experiment(config)
        # the runner assembles the runs seed-major and one problem per seed, in the order of ``seeds``
        runs = {name: {run.seed: run for run in training.runs} for name, training in result.results.items()}
        draws = []
        for index, seed in enumerate(seeds):
            methods = {}
            for name, training in result.results.items():
                run = runs[name][seed]
                methods[name] = {"status": run.status, "message": run.message, "steps": run.steps,
                                 "train_loss": list(run.train_loss), "test_loss": list(run.test_loss),
                                 "batch_loss": list(run.batch_loss),
                                 "hyperparameters": {k: v for k, v in training.hyperparameters.items()
                                                     if isinstance(v, (int, float, str, type(None)))},
                                 "diagnostics": {k: run.diagnostics[k] for k in DIAGNOSTICS if k in run.diagnostics}}
            draws.append({"seed": seed, "problem": result.problems[index], "methods": methods,
                          **self._initial_state(settings, seed)})
        return draws

    def train_seed(self, settings, seed: int, dtype=torch.float64) -> dict:
        """Every method of ``settings`` on the draw of ``seed``: curves, statuses, diagnostics, ``sigma_max(W_i)``."""
        return self.train_seeds(settings, [seed], dtype)[0]

    @staticmethod
    def _initial_state(settings, seed: int) -> dict:
        """``initial_sigma_max`` and ``initial_output_curvature`` of the student of ``seed``."""
        # the student's initial weights depend on the seed only (not on the data sizes): their largest singular
        # values bound the stable backward rates of Alg. A.8 (eta_b sigma_max(W_{i+1})^2 < 2)
        start = student_teacher(THESIS_PRESETS[settings["preset"]].layers, n_train=1, n_test=1, seed=seed)
        sigma_max = [float(torch.linalg.svdvals(w)[0]) for w in start.student_weights]
        # and the curvature of the output layer's loss, lambda_max(E[h_{L-1} h_{L-1}^T]): SGD with the thesis's factor
        # 2 on W_L is stable only if 2 eta lambda_max < 2
        problem = student_teacher(THESIS_PRESETS[settings["preset"]].layers, n_train=settings.get("n_train") or 1920,
                                  n_test=1, seed=seed)
        with torch.no_grad():
            h = problem.student(None)(problem.train_inputs)[-2]
        curvature = float(torch.linalg.eigvalsh(h.T @ h / h.shape[0])[-1])
        return {"initial_sigma_max": sigma_max, "initial_output_curvature": curvature}

    def survival_groups(self, settings) -> dict:
        """The methods the toolbox trained in one loop of a figure script (a draw is redrawn when one of them fails):
        name -> methods. Default: all methods of the experiment in one group."""
        return {"all methods": tuple(settings["methods"])}

    def batch_key(self, settings, task) -> str:
        """Slots whose tasks differ only in their seed train together (:meth:`run_batch`)."""
        return json.dumps({k: v for k, v in task.items() if k != "seed"}, sort_keys=True)

    def run_task(self, settings, task, dtype=torch.float64):
        """Slot ``task["seed"]``: its first draw, then redraws (at most ``max_redraws``) until every survival group
        (:meth:`survival_groups`) has a surviving draw (:meth:`run_batch` of the one slot)."""
        return self.run_batch(settings, [task], dtype)[0]

    def run_batch(self, settings, tasks, dtype=torch.float64) -> list[dict]:
        """The slots ``tasks`` (equal :meth:`batch_key`) together: :meth:`run_task`'s result for each, in order.

        The first draws of all slots train as one ensemble. A slot ``k`` some survival group of which has no
        surviving draw yet is redrawn with seeds ``k + j REDRAW_STRIDE``, ``j = 1, 2, ...`` (at most
        ``max_redraws``), training only the methods of those groups, until every group has a survivor: the draws
        its serial run makes. They are trained in rounds (:attr:`redraw_members`): a round trains the next few
        redraws of every pending slot at once, the slots that train the same methods together, and keeps of them
        the draws the one-at-a-time order makes (a member's numbers do not depend on the others of its
        ensemble), each with the methods that order trains; the draws after a slot's first survivor are dropped.
        """
        groups = [g for g in self.survival_groups(settings).values() if set(g) <= set(settings["methods"])]
        seeds = [int(task["seed"]) for task in tasks]
        draws = [[first] for first in self.train_seeds(settings, seeds, dtype)]
        limit, j = int(settings.get("max_redraws", 0)), 1
        while j <= limit:
            pending: dict[tuple, list[int]] = {}  # methods to redraw -> slots
            for slot, slot_draws in enumerate(draws):
                methods = self._redraw_methods(settings, groups, slot_draws)
                if methods:
                    pending.setdefault(methods, []).append(slot)
            if not pending:
                break
            # the next `ahead` redraws of each pending slot in this round (the one-at-a-time order: ahead = 1)
            ahead = min(limit - j + 1, max(1, math.ceil(self.redraw_members / sum(map(len, pending.values())))))
            for methods, slots in pending.items():
                redrawn = self.train_seeds({**settings, "methods": methods},
                                           [seeds[slot] + (j + a) * REDRAW_STRIDE for a in range(ahead)
                                            for slot in slots], dtype)
                for position, slot in enumerate(slots):
                    for a in range(ahead):
                        # the methods the one-at-a-time order trains in redraw j + a (a subset of `methods`)
                        needed = self._redraw_methods(settings, groups, draws[slot])
                        if not needed:
                            break
                        draw = redrawn[a * len(slots) + position]
                        draws[slot].append({**draw, "methods": {m: draw["methods"][m] for m in needed}})
            j += ahead
        return [{**slot_draws[0], "redraws": slot_draws[1:]} for slot_draws in draws]

    #: How many draws a redraw round of :meth:`run_batch` aims at: each of the ``P`` pending slots gets its next
    #: ``ceil(redraw_members / P)`` redraws (1: one redraw per round). A round costs about ``a + b S`` for ``S``
    #: draws, the fixed part ``a`` some nine draws' worth at these network sizes (fig. 5.18-5.19's ten methods,
    #: 60 epochs: ~12 s + ~1.35 s per draw on a loaded core), so fewer, fuller rounds cost less, and a dropped
    #: draw (after its slot's survivor) costs one ``b``.
    redraw_members = 16

    def _redraw_methods(self, settings, groups, slot_draws) -> tuple:
        """The methods a slot's next redraw trains: those of its survival groups without a surviving draw yet."""
        missing = [g for g in groups if not any(survives(d, self.survival, g) for d in slot_draws)]
        return tuple(m for m in settings["methods"] if any(m in g for g in missing))

    def views(self, settings, results) -> ViewSet:
        """The :class:`ViewSet` of the results with this experiment's survival criterion and groups."""
        return ViewSet(results, self.survival, self.survival_groups(settings))

    # -- summary helpers ------------------------------------------------------------------------------
    @staticmethod
    def method_table(settings, results) -> dict:
        """Per method: hyper-parameters, diverged runs, per-seed final losses, the arithmetic mean curves
        ``*_loss_mean`` (the statistic the thesis plotted) and the figures' ``*_loss_interval`` (geometric mean,
        95 % log-t band and the per-seed curves; :func:`curve_band`), all in :data:`LOSS_UNIT`."""
        table = {}
        for method in settings["methods"]:
            runs = [r["methods"][method] for r in results]
            train_mean = curve_mean(results, method, "train_loss", SIGNED)[0]  # arithmetic, as the thesis averaged
            test_mean = curve_mean(results, method, "test_loss", SIGNED)[0]
            table[method] = {
                "label": _label(method), "hyperparameters": runs[0]["hyperparameters"] if runs else {},
                "loss_unit": LOSS_UNIT,
                "n_runs": len(runs), "n_diverged": sum(r["status"] != TrainingStatus.COMPLETED for r in runs),
                "messages": [r["message"] for r in runs if r["status"] != TrainingStatus.COMPLETED],
                "seeds": [r["seed"] for r in results],
                "final_train_loss": final_values(results, method, "train_loss"),
                "final_test_loss": final_values(results, method, "test_loss"),
                "runs_per_epoch": [sum(len(r["test_loss"]) > e for r in runs) for e in range(len(test_mean))],
                "train_loss_mean": train_mean, "test_loss_mean": test_mean,
                # the figures' curves: geometric mean and its 95 % log-t band
                "train_loss_interval": curve_band(results, method, "train_loss"),
                "test_loss_interval": curve_band(results, method, "test_loss"),
            }
        return table

    def tables(self, settings, viewset: ViewSet, methods=None) -> dict:
        """:meth:`method_table` of both views of ``methods`` (default: all; the survivors of their group), with the
        redraw counts: ``{"all_runs", "thesis", "group", "survivors_of", "redraws", ...}``."""
        methods = tuple(settings["methods"] if methods is None else methods)
        view = viewset(methods)
        part = {**settings, "methods": methods}
        return {"all_runs": self.method_table(part, view["all_runs"]), "thesis": self.method_table(part, view["thesis"]),
                "group": view["group"], "survivors_of": view["survivors_of"], "survival": view["criterion"],
                "redraws": view["redraws"], "redrawn_slots": view["redrawn_slots"],
                "exhausted_slots": view["exhausted_slots"], "surviving_seeds": view["surviving_seeds"]}

    def group_tables(self, settings, viewset: ViewSet) -> dict:
        """:meth:`tables` per survival group (the JSON's ``methods``): group name -> tables."""
        return {name: self.tables(settings, viewset, group) for name, group in viewset.groups.items()}

    # -- paired claims ----------------------------------------------------------------------------------
    @staticmethod
    def _view_line(views: dict) -> str:
        exhausted = (f"; {len(views['exhausted_slots'])} slot(s) without a survivor within the allowed redraws, "
                     "left out" if views["exhausted_slots"] else "")
        return (f"thesis's view ({views.get('group', 'all methods')}): {len(views['thesis'])} surviving draws, "
                f"{views['redraws']} redraw(s) of {len(views['redrawn_slots'])} slot(s){exhausted}")

    def paired_text(self, viewset: ViewSet, a: str, b: str) -> tuple[str, dict]:
        """The paired comparison of the final test MSE of ``a`` and ``b`` in both views, as text and values."""
        views = viewset((a, b))
        thesis, every = paired_final(views["thesis"], a, b), paired_final(views["all_runs"], a, b)
        diverged = {m: sum(r["methods"][m]["status"] != TrainingStatus.COMPLETED for r in views["all_runs"])
                    for m in (a, b)}
        n = len(views["all_runs"])
        text = (f"[{self._view_line(views)}] {thesis.format(_label(a), _label(b))}. All runs: "
                f"{every.format(_label(a), _label(b))}; diverged {_label(a)} {diverged[a]}/{n}, {_label(b)} "
                f"{diverged[b]}/{n}.")
        return text, {"thesis": thesis, "all_runs": every}

    def loss_cause(self, viewset: ViewSet, pairs, verdict, *, bound: float = 1.0, factor: float | None = None) -> str:
        """The measured cause of a loss claim that does not hold: the thesis's own statistic beside ours.

        For each pair ``(a, b)`` (the claim: ``a`` below ``bound`` x ``b``, or within ``factor`` of it) the ratio of
        the arithmetic means of the final test MSE over the surviving draws (what the thesis's curves show; unpaired)
        is set beside the paired per-problem comparison. Empty when ``verdict`` is ``True``.
        """
        if verdict is True:
            return ""
        parts, agrees = [], []
        for a, b in pairs:
            views = viewset((a, b))
            mean = {m: finite_mean(final_values(views["thesis"], m)) for m in (a, b)}
            ratio = mean[a] / mean[b] if mean[b] > 0 else math.nan
            pair = paired_final(views["thesis"], a, b)
            ok = (1 / factor <= ratio <= factor) if factor is not None else ratio < bound
            agrees.append(bool(ok))
            lo, hi = pair.ratio_interval
            parts.append(f"{_label(a)}/{_label(b)}: arithmetic means {mean[a]:.3g} / {mean[b]:.3g} = {ratio:.3g}, "
                         f"paired {pair.ratio:.3g} [{lo:.3g}, {hi:.3g}], {_label(a)} lower on {pair.a_lower} of "
                         f"{pair.n}")
        n = len(viewset((pairs[0][0], pairs[0][1]))["thesis"]) if pairs else 0
        measured = "; ".join(parts)
        if all(agrees):
            kind = ("a statistic the thesis computed differently: its plotted statistic, the arithmetic mean over the "
                    "surviving draws, agrees with the claim, but paired per problem the interval "
                    + ("straddles the criterion: the gap is within the spread between problems of "
                       f"{n} draws" if verdict is None else "contradicts it: a few draws dominate the means"))
        else:
            kind = ("not supported by the experiment as the thesis ran it: with the figure script's settings and "
                    "conventions (remaining differences: README) even the thesis's own statistic, the arithmetic "
                    "mean over the surviving draws, does not give the claimed "
                    + ("agreement" if factor is not None else "order") + " for "
                    + ", ".join(f"{_label(a)}/{_label(b)}" for (a, b), ok in zip(pairs, agrees) if not ok))
        return f"{kind} ({measured})."

    def compare(self, views, better: str, worse: str, statement: str, *, robust: bool, extra: str = "",
                bound: float = 1.0, cause: str = "") -> Claim:
        """Claim that ``better`` ends below ``bound`` x ``worse`` (final test MSE, paired per problem): holds when the
        paired interval of the thesis's view lies below ``bound``, fails when it lies above, else inconclusive."""
        text, pair = self.paired_text(views, better, worse)
        holds = pair["thesis"].below(bound)
        cause = cause or self.loss_cause(views, [(better, worse)], holds, bound=bound)
        criterion = "ordering" if bound == 1.0 else f"ratio below {bound:g}"
        return Claim(statement, f"{text} Criterion: {criterion}, {_WHY_THESIS_VIEW}; inconclusive when the "
                     f"interval straddles {bound:g}." + (f" {extra}" if extra else ""),
                     holds=holds, robust=robust, cause=cause,
                     values={"criterion": criterion, "bound": bound, "judged_on": "thesis",
                             **{k: v.to_dict() for k, v in pair.items()}})

    def similar(self, views, a: str, b: str, statement: str, *, factor: float, robust: bool, extra: str = "",
                cause: str = "") -> Claim:
        """Claim that ``a`` and ``b`` end within ``factor`` of each other (paired geometric-mean ratio of the final
        test MSE, its interval inside ``[1/factor, factor]``; fails when it lies wholly outside)."""
        text, pair = self.paired_text(views, a, b)
        holds = pair["thesis"].within(factor)
        return Claim(statement, f"{text} Criterion: the paired interval inside [1/{factor:g}, {factor:g}], "
                     f"{_WHY_THESIS_VIEW}." + (f" {extra}" if extra else ""),
                     holds=holds, robust=robust,
                     cause=cause or self.loss_cause(views, [(a, b)], holds, factor=factor),
                     values={"criterion": f"within a factor {factor:g}", "judged_on": "thesis",
                             **{k: v.to_dict() for k, v in pair.items()}})

    def ordering(self, views, statement: str, better, worse, *, robust: bool, cause: str = "") -> Claim:
        """Claim that every method of ``better`` ends below every method of ``worse`` (each pair paired per problem;
        the conjunction: a refuted pair refutes, an inconclusive one leaves the claim inconclusive)."""
        better = (better,) if isinstance(better, str) else tuple(better)
        worse = (worse,) if isinstance(worse, str) else tuple(worse)
        texts, verdicts, values = [], [], {}
        for b in better:
            for w in worse:
                text, pair = self.paired_text(views, b, w)
                texts.append(text)
                verdicts.append(pair["thesis"].ordering())
                values[f"{b}/{w}"] = {k: v.to_dict() for k, v in pair.items()}
        holds = _both(*verdicts)
        failing = [(b, w) for b in better for w in worse if values[f"{b}/{w}"]["thesis"]["ordering"] is not True]
        return Claim(statement, " | ".join(texts) + f" Criterion: every pair ordered, {_WHY_THESIS_VIEW}.",
                     holds=holds, robust=robust, cause=cause or self.loss_cause(views, failing, holds),
                     values={"judged_on": "thesis", "pairs": values})

    # -- figure helpers ---------------------------------------------------------------------------------
    @staticmethod
    def plot_losses(ax, tables, methods, key: str, title: str) -> None:
        """The thesis's view: geometric-mean loss with its 95 % log-t band (log scale, limits following the
        curves, :func:`analysis.training_plots.loss_panel`), and beside it the all-runs geometric mean (dotted,
        with the diverged count in the legend); randomized methods dashed."""
        thesis, every = tables["thesis"], tables["all_runs"]
        curves = []
        for method in methods:
            row, all_row = thesis[method], every[method]
            label = row["label"] + (f" (all runs: {all_row['n_diverged']}/{all_row['n_runs']} diverged)"
                                    if all_row["n_diverged"] else "")
            curves.append({**row[f"{key}_interval"], "label": label, "color": _COLOURS.get(method),
                           "style": "--" if _is_randomized(method) else "-"})
        loss_panel(ax, curves, title=f"{title}\nthesis's view: {len(tables['surviving_seeds'])} draws, "
                                     f"{tables['redraws']} redrawn\n(dotted: all runs)")
        for method in methods:  # the all-runs statistic beside the thesis's view
            centre = every[method][f"{key}_interval"]["centre"]
            if every[method]["n_diverged"] or tables["redraws"]:
                ax.plot(np.arange(len(centre)), centre, ":", color=_COLOURS.get(method), lw=1.0)

    @staticmethod
    def plot_diagnostic(ax, results, methods, key: str, title: str, *, log: bool = False, layer: int = 1) -> None:
        """Per-epoch mean over seeds of one diagnostic of layer ``layer``; randomized methods dashed.

        On a log axis values above 1e4 x the median of all plotted values are cut (runs about to diverge).
        """
        curves = {m: np.asarray(diagnostic_mean(results, m, key, layer), dtype=float) for m in methods}
        curves = {m: v for m, v in curves.items() if v.size and np.isfinite(v).any()}
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=10)
        if not curves:  # say so on the panel rather than leave it blank
            ax.text(0.5, 0.5, f"no finite {key} of {', '.join(methods)}\n(not recorded, or every run diverged)",
                    ha="center", va="center", fontsize=8, transform=ax.transAxes)
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


def finite_mean(values) -> float:
    """Mean of the finite values (``nan`` if none)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def joined_causes(claims) -> str:
    """The causes of the parts of a composite claim that do not hold, joined (empty when every part holds)."""
    return " | ".join(c.cause for c in claims if c.holds is not True and c.cause)
