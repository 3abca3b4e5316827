"""Statistics of the per-seed task results of the student-teacher experiments (pure functions of plain data).

A task result is ``{"seed", "methods": {name: {"status", "train_loss", "test_loss", "diagnostics", ...}},
"redraws": [...]}`` (:meth:`StudentTeacherTraining.run_task`); a run that did not complete has a shorter
curve and counts as diverged, never dropped.

Two views of the same tasks (:func:`views`):

* **all runs** — the first draw of every slot (seed ``k``), diverged runs counted;
* **as the thesis plotted** — per slot the first draw in which every method survived; a slot whose draw
  did not survive was redrawn with the seeds ``k + j REDRAW_STRIDE`` (``j = 1, 2, ...``), as the
  toolbox's figure scripts redrew a random initialisation whose training raised (NaN weights). The
  number of redraws is reported beside it.

Method comparisons are paired per problem (:func:`paired_final`, :func:`tpdynamics.statistics.paired_comparison`).
"""
from __future__ import annotations

import math

import numpy as np

from tpdynamics.statistics import NONNEGATIVE, POSITIVE, PairedComparison, curve_intervals, paired_comparison
from tpdynamics.training import TrainingStatus

from ...base import fmt_ci


def fmt_positive(values, digits: int = 3) -> str:
    """:func:`fmt_ci` of a positive quantity (losses, norms, ratios): geometric mean and 95 % log-t interval."""
    return fmt_ci(values, digits, POSITIVE)


def fmt_nonnegative(values, digits: int = 3) -> str:
    """:func:`fmt_ci` of a non-negative quantity that can be 0: mean and 95 % percentile-bootstrap interval."""
    return fmt_ci(values, digits, NONNEGATIVE)


def final_values(results: list[dict], method: str, key: str = "test_loss") -> list[float]:
    """Per seed, the last value of a loss curve; ``nan`` for a run that did not complete (diverged)."""
    out = []
    for r in results:
        run = r["methods"][method]
        out.append(float(run[key][-1]) if run["status"] == TrainingStatus.COMPLETED and run[key] else math.nan)
    return out


def ratio_of_means(a: list[float], b: list[float]) -> float:
    """``mean(a) / mean(b)`` over the seeds where both runs completed (finite entries in both lists).

    The thesis's figures average over runs that all completed (its toolbox redrew a seed whose training
    failed); pairing the seeds compares the two methods on the same problems.
    """
    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return math.nan
    return float(np.mean([x for x, _ in pairs]) / max(np.mean([y for _, y in pairs]), 1e-300))


def bootstrap_ratio_interval(a: list[float], b: list[float], *, resamples: int = 2000,
                             seed: int = 0) -> tuple[float, float]:
    """95 % paired-bootstrap interval of ``mean(a) / mean(b)``, resampling the seeds where both are finite.

    ``(nan, nan)`` with fewer than two such seeds. Deterministic (fixed ``seed``).
    """
    pairs = np.asarray([(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)], dtype=float)
    if len(pairs) < 2:
        return math.nan, math.nan
    index = np.random.default_rng(seed).integers(0, len(pairs), size=(resamples, len(pairs)))
    ratios = pairs[index, 0].mean(1) / np.maximum(pairs[index, 1].mean(1), 1e-300)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def upward_movement(curve: list[float]) -> float:
    """Total rise of a loss curve on a log10 scale, ``sum_e max(0, log10 L_e - log10 L_{e-1})``.

    Zero for a monotonically decreasing curve; a measure of how unstable (bumpy) training is.
    """
    logs = [math.log10(max(v, 1e-300)) for v in curve]
    return float(sum(max(0.0, b - a) for a, b in zip(logs[:-1], logs[1:])))


def late_mean(per_epoch: list, fraction: float = 1 / 3, layer: int = 1) -> float:
    """Mean of a per-epoch, per-layer diagnostic over the last ``fraction`` of the recorded epochs, layer ``layer``.

    ``per_epoch[e]`` is the list of per-layer values of epoch ``e + 1``; ``nan`` entries are skipped.
    """
    values = [row[layer - 1] for row in per_epoch if row is not None and len(row) >= layer]
    if not values:
        return math.nan
    tail = values[-max(1, int(round(len(values) * fraction))):]
    tail = [v for v in tail if v is not None and math.isfinite(v)]
    return float(np.mean(tail)) if tail else math.nan


def early_mean(per_epoch: list, epochs: int = 1, layer: int = 1) -> float:
    """Mean of a per-epoch, per-layer diagnostic over the first ``epochs`` recorded epochs, layer ``layer``."""
    values = [row[layer - 1] for row in per_epoch[:epochs] if row is not None and len(row) >= layer]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def curve_mean(results: list[dict], method: str, key: str,
               interval: str = POSITIVE) -> tuple[list[float], list[float], list[float]]:
    """Per epoch, centre and 95 % interval over the runs still going of a loss curve (``key``: train/test loss).

    Default: the geometric mean and its log-scale interval (a loss is positive; :mod:`tpdynamics.statistics`);
    ``interval="t"`` gives the arithmetic mean and the t interval.
    """
    stats = curve_intervals([r["methods"][method][key] for r in results], interval)
    return [s.centre for s in stats], [s.low for s in stats], [s.high for s in stats]


def curve_band(results: list[dict], method: str, key: str) -> dict:
    """:func:`curve_mean` as ``{"centre", "low", "high", "interval", "runs"}`` (the curve, band and per-seed curves of
    the figures)."""
    stats = curve_intervals([r["methods"][method][key] for r in results], POSITIVE)
    return {"centre": [s.centre for s in stats], "low": [s.low for s in stats], "high": [s.high for s in stats],
            "interval": stats[0].describe() if stats else None,
            "runs": [list(r["methods"][method][key]) for r in results]}


def diagnostic_mean(results: list[dict], method: str, key: str, layer: int = 1) -> list[float]:
    """Per epoch, the mean over seeds of one diagnostic of layer ``layer`` (``nan`` where absent)."""
    series = [r["methods"][method]["diagnostics"].get(key, []) for r in results]
    length = max((len(s) for s in series), default=0)
    out = []
    for e in range(length):
        values = [s[e][layer - 1] for s in series if len(s) > e and s[e] is not None and len(s[e]) >= layer]
        values = [v for v in values if v is not None and math.isfinite(v)]
        out.append(float(np.mean(values)) if values else math.nan)
    return out


def signal_row(results: list[dict], method: str, keys) -> dict:
    """Learning-signal diagnostics of one method, layer 1: for every ``key``, ``KEY_curve`` (per-epoch mean over
    seeds, :func:`diagnostic_mean`), ``KEY_late`` and ``KEY_first`` (per seed, :func:`late_mean` and
    :func:`early_mean`)."""
    row = {}
    for key in keys:
        per_seed = [r["methods"][method]["diagnostics"].get(key, []) for r in results]
        row[f"{key}_curve"] = diagnostic_mean(results, method, key)
        row[f"{key}_late"] = [late_mean(d) for d in per_seed]
        row[f"{key}_first"] = [early_mean(d) for d in per_seed]
    return row


def _points(curve: list[float], epochs: int) -> str:
    """Values of a per-epoch curve at epochs 1, E/2 and E."""
    return "/".join(f"{curve[e]:.3g}" for e in (1, epochs // 2, epochs) if e < len(curve))


def curve_log_ratio(curve: list[float], reference: list[float]) -> float:
    """Mean over epochs ``1..E`` of ``log10(curve_e / reference_e)`` (positive: ``curve`` is above on average)."""
    pairs = [(x, y) for x, y in list(zip(curve, reference))[1:] if math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return math.nan
    return float(np.mean([math.log10(max(x, 1e-300) / max(y, 1e-300)) for x, y in pairs]))


def _drop(curve: list[float], start: int) -> float:
    """Factor by which a curve decreased from epoch ``start`` to its end (``curve[start] / curve[-1]``)."""
    return float(curve[start] / curve[-1]) if len(curve) > start and curve[-1] > 0 else math.nan


def unstable_runs(results: list[dict], method: str, factor: float = 10.0) -> int:
    """Runs that diverged (non-finite loss) or whose final test loss exploded above ``factor`` x the run's minimum."""
    count = 0
    for r in results:
        run = r["methods"][method]
        losses = [v for v in run["test_loss"] if math.isfinite(v)]
        if run["status"] != TrainingStatus.COMPLETED or not losses or losses[-1] > factor * min(losses):
            count += 1
    return count


def _decided(verdict: bool, *numbers: float) -> bool | None:
    """``verdict`` as a bool, or ``None`` (not decidable) when a number it rests on is ``nan`` (no seed where both
    runs completed)."""
    return None if any(math.isnan(x) for x in numbers) else bool(verdict)


def _all(values, predicate) -> bool | None:
    """``predicate`` holds for every finite value (``None`` if there is none: every run diverged in epoch 1)."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(all(predicate(v) for v in finite)) if finite else None


def _both(*verdicts) -> bool | None:
    """Conjunction of verdicts that may be undecided: ``False`` wins, then ``None``."""
    return False if False in verdicts else (None if None in verdicts else True)


def _extreme(values, pick) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(pick(finite)) if finite else math.nan


def _f(value: float, spec: str = ".3f") -> str:
    return format(value, spec) if math.isfinite(value) else "n/a (no run past epoch 1)"


#: A redraw of slot ``k`` uses seed ``k + j REDRAW_STRIDE`` (``j = 1, 2, ...``): never a slot's first seed.
REDRAW_STRIDE = 1000

#: Survival criteria of a draw for the thesis's view (every method of the draw must pass).
SURVIVAL = {
    "completed": "no method diverged (the toolbox's figure scripts redrew a draw whose training raised)",
    "stable": "no method diverged or ended above 10x its minimum test MSE (figure 5.7: the thesis removed the "
              "runs whose loss 'exploded')",
}


def survives(result: dict, criterion: str = "completed", methods=None) -> bool:
    """Whether every method of one draw (or every one of ``methods``) survived: ``"completed"`` or also ``"stable"``
    (:data:`SURVIVAL`)."""
    if criterion not in SURVIVAL:
        raise ValueError(f"criterion={criterion!r} is not valid; use one of {', '.join(SURVIVAL)}.")
    for name in (result["methods"] if methods is None else methods):
        if name not in result["methods"]:  # a redraw that trained only another group's methods
            return False
        if criterion == "stable":
            if unstable_runs([result], name):
                return False
        elif result["methods"][name]["status"] != TrainingStatus.COMPLETED:
            return False
    return True


def views(results: list[dict], criterion: str = "completed", methods=None) -> dict:
    """The two views of the task results: ``all_runs`` (first draws) and ``thesis`` (first surviving draw per slot).

    ``methods`` are the methods that must survive (default: all): the methods of the figure a comparison belongs
    to, since the toolbox ran each figure's methods in one loop and redrew a draw when one of them failed.

    Returns
    -------
    dict
        ``all_runs`` and ``thesis`` (lists of draws), ``criterion`` (its text), ``survivors_of``, ``redraws``
        (draws this view needed beyond the first), ``redrawn_slots``, ``exhausted_slots`` (slots without a
        survivor within the allowed redraws: left out of the thesis's view) and ``surviving_seeds``.
    """
    thesis, redrawn, exhausted, redraws = [], [], [], 0
    for r in results:
        draws = [r] + list(r.get("redraws", []))
        index = next((k for k, d in enumerate(draws) if survives(d, criterion, methods)), None)
        if index is None:
            exhausted.append(r["seed"])
            redrawn.append(r["seed"])
            redraws += len(draws) - 1
            continue
        thesis.append(draws[index])
        redraws += index
        if index:
            redrawn.append(r["seed"])
    return {"all_runs": results, "thesis": thesis, "criterion": SURVIVAL[criterion],
            "survivors_of": None if methods is None else list(methods), "redraws": redraws,
            "redrawn_slots": redrawn, "exhausted_slots": exhausted, "surviving_seeds": [d["seed"] for d in thesis]}


def paired_final(results: list[dict], a: str, b: str, key: str = "test_loss") -> PairedComparison:
    """Per-problem comparison of the final ``key`` of methods ``a`` and ``b`` (diverged runs left out, counted)."""
    return paired_comparison(final_values(results, a, key), final_values(results, b, key))


def curve_geometric_means(results: list[dict], method: str, key: str = "test_loss", start: int = 1) -> list[float]:
    """Per problem, the geometric mean over epochs ``start..E`` of a loss curve (``nan`` for a run that did not
    complete): paired over problems, the log of its ratio to another method's is the mean log-ratio of the curves."""
    out = []
    for r in results:
        run = r["methods"][method]
        curve = [v for v in run[key][start:] if v > 0]
        out.append(float(np.exp(np.mean(np.log(curve)))) if run["status"] == TrainingStatus.COMPLETED and curve
                   else math.nan)
    return out


def second_half_drops(results: list[dict], method: str, key: str = "test_loss") -> list[float]:
    """Per problem, ``L_{E/2} / L_E`` of a completed run (how much the loss still fell over the second half)."""
    out = []
    for r in results:
        run = r["methods"][method]
        curve = run[key]
        half = (len(curve) - 1) // 2
        out.append(float(curve[half] / curve[-1]) if run["status"] == TrainingStatus.COMPLETED and curve[-1] > 0
                   else math.nan)
    return out
