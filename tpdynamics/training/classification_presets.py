"""Hyper-parameters for classification per task family, loss and method, and the grid they were tuned on.

:data:`CLASSIFICATION_PRESETS` maps ``(task family, loss)`` to defaults shared by every method and a
per-method entry. Tuning procedure (reproducible with :func:`~tpdynamics.training.classification_tuning.tune` or
``tpdynamics train --task TASK --loss LOSS --method M --tune --epochs 10``): for each method, every point of
:func:`tuning_grid` (``eta`` x ``eta_hat``, per task family, loss and method, :data:`TUNING_GRIDS`; the
backward rates kept at the preset's) trained for 10 epochs over seeds 100 and 101 (splits and initialisations
disjoint from the seeds 0..N-1 of the reported runs), ranked by the mean *validation* accuracy of the last
epoch (points where a run diverged last); the preset holds the best point, except where the comments of
:data:`CLASSIFICATION_PRESETS` say why not. The test split plays no part in the ranking.
"""
from __future__ import annotations

from ..validation import check_int, check_positive

__all__ = ["CLASSIFICATION_PRESETS", "TUNING_GRID", "TUNING_GRIDS", "TUNING_SEEDS", "classification_hyperparameters",
           "tuning_grid"]

#: The grid of :func:`tune` on digits with MSE (per method; backward rates fixed at the preset's).
TUNING_GRID = {"eta": (0.03, 0.1, 0.3), "eta_hat": (0.1, 0.3, 1.0)}
#: (task family, loss) -> grid. MNIST-1D and cross-entropy: shifted to larger rates after a first pass on
#: the digits grid put the best points of bp (MNIST-1D) and bp / dtp-ai (cross-entropy) at its largest
#: ``eta`` (and ``eta_hat``), with ``eta = 0.03`` last for bp on both and in the lower half for dtp-ai.
#: A ``(family, loss, method)`` key overrides ``(family, loss)`` for that method: with cross-entropy,
#: ``tp-ai`` diverged on both tuning seeds at every point of the shifted grid and ``tp-orig`` at 7 of 9, so
#: they were tuned at smaller rates.
TUNING_GRIDS = {
    ("digits", "mse"): TUNING_GRID,
    ("mnist1d", "mse"): {"eta": (0.1, 0.3, 1.0), "eta_hat": (0.1, 0.3, 1.0)},
    ("digits", "cross-entropy"): {"eta": (0.1, 0.3, 1.0), "eta_hat": (0.3, 1.0, 3.0)},
    ("digits", "cross-entropy", "tp-ai"): {"eta": (0.01, 0.03, 0.1), "eta_hat": (0.1, 0.3, 1.0)},
    ("digits", "cross-entropy", "tp-orig"): {"eta": (0.01, 0.03, 0.1), "eta_hat": (0.1, 0.3, 1.0)},
    ("mnist1d", "cross-entropy"): {"eta": (0.03, 0.1, 0.3, 1.0), "eta_hat": (0.1, 0.3, 1.0)},
    ("mnist1d", "cross-entropy", "tp-ai"): {"eta": (0.01, 0.03, 0.1), "eta_hat": (0.1, 0.3, 1.0)},
    ("mnist1d", "cross-entropy", "tp-orig"): {"eta": (0.01, 0.03, 0.1), "eta_hat": (0.1, 0.3, 1.0)},
}


def _family(task: str) -> str:
    return task.partition(":")[0] if not task.endswith(".npz") else "idx"


def tuning_grid(task: str, loss: str = "mse", method: str | None = None) -> dict:
    """The grid the preset of ``method`` on ``task``'s family with ``loss`` was tuned on (:data:`TUNING_GRIDS`).

    A method's own entry first, then the family's and loss's, else the digits grid :data:`TUNING_GRID`.
    """
    family = _family(task)
    return TUNING_GRIDS.get((family, loss, method), TUNING_GRIDS.get((family, loss), TUNING_GRID))
#: Seeds of the tuning runs (disjoint from the reported seeds 0..N-1).
TUNING_SEEDS = (100, 101)

_BASE = {"epochs": 20, "batch_size": 32, "eta_hat": 0.1, "eta_backward": 0.001, "lambda_": 0.0, "noise_std": 1.0,
         "mu": 0.1}

#: (task family, loss) -> {"defaults": {...}, method: {...}}; unset values come from "defaults".
CLASSIFICATION_PRESETS = {
    # tuned on digits (MSE) with tune(method, epochs=10), i.e. `tpdynamics train --task digits --method M --tune
    # --epochs 10`: best validation accuracy without a diverged run; BP's eta_hat is unused. Exception: fa's
    # best point (eta 0.1, eta_hat 0.3) diverged on seeds 0 and 1 within 20 epochs (digits and MNIST-1D), as
    # did every point with eta * eta_hat >= 0.1 in the grid; fa takes (0.1, 0.1), 0.911 validation accuracy.
    # The randomized variants take their base rule's values; the continuous networks take dtp-ai's (their
    # discrete limit), mtp/rmtp were not tuned.
    ("digits", "mse"): {"defaults": {**_BASE},
                        "bp": {"eta": 0.1}, "bp-fixed": {"eta": 0.1}, "fa": {"eta": 0.1, "eta_hat": 0.1},
                        "tp-ai": {"eta": 0.1, "eta_hat": 1.0}, "rtp-ai": {"eta": 0.1, "eta_hat": 1.0},
                        "dtp-ai": {"eta": 0.1, "eta_hat": 0.3}, "rdtp-ai": {"eta": 0.1, "eta_hat": 0.3},
                        "tp-orig": {"eta": 0.1, "eta_hat": 1.0}, "rtp-orig": {"eta": 0.1, "eta_hat": 1.0},
                        "dtp-orig": {"eta": 0.3, "eta_hat": 0.3}, "rdtp-orig": {"eta": 0.3, "eta_hat": 0.3},
                        "mtp": {"eta": 0.01}, "rmtp": {"eta": 0.01},
                        "two-phase": {"eta": 0.1, "eta_hat": 0.3}, "single-phase": {"eta": 0.1, "eta_hat": 0.3},
                        "multiplexed": {"eta": 0.1, "eta_hat": 0.3}},
    # tuned on MNIST-1D (MSE; 5000 samples, generation seed 42) with tune(method, "mnist1d", epochs=10) over
    # TUNING_GRIDS[("mnist1d", "mse")]: best validation accuracy (the ranking is in the README). Every rule's
    # best point has eta * eta_hat about 0.01-0.1; eta = 1 with eta_hat >= 0.3 diverged for every rule.
    # Exception, as on digits: fa's best point (0.3, 0.1) diverged on seeds 2 and 4 of the reported 0-4 within
    # 10 epochs; fa takes the next point without a diverged tuning run, (0.1, 0.1), 0.2445 validation accuracy.
    ("mnist1d", "mse"): {"defaults": {**_BASE},
                         "bp": {"eta": 0.3}, "bp-fixed": {"eta": 0.3}, "fa": {"eta": 0.1, "eta_hat": 0.1},
                         "tp-ai": {"eta": 0.1, "eta_hat": 0.1}, "rtp-ai": {"eta": 0.1, "eta_hat": 0.1},
                         "dtp-ai": {"eta": 1.0, "eta_hat": 0.1}, "rdtp-ai": {"eta": 1.0, "eta_hat": 0.1},
                         "tp-orig": {"eta": 0.3, "eta_hat": 0.1}, "rtp-orig": {"eta": 0.3, "eta_hat": 0.1},
                         "dtp-orig": {"eta": 1.0, "eta_hat": 0.1}, "rdtp-orig": {"eta": 1.0, "eta_hat": 0.1},
                         "mtp": {"eta": 0.01}, "rmtp": {"eta": 0.01},
                         "two-phase": {"eta": 1.0, "eta_hat": 0.1}, "single-phase": {"eta": 1.0, "eta_hat": 0.1},
                         "multiplexed": {"eta": 1.0, "eta_hat": 0.1}},
    # tuned on digits with the cross-entropy, tune(method, "digits", "cross-entropy", epochs=10) over
    # tuning_grid("digits", "cross-entropy", method): the MSE values do not carry over (bp's best eta is 1 here,
    # 0.1 there; tp-ai and tp-orig diverge at their MSE points). fa: (0.1, 1.0) and (0.3, 0.3) tie at 0.958.
    # Exceptions, found in the 20-epoch runs of the reported seeds 0-4: bp's best point eta = 1 (also best when
    # tuned with 20 epochs, 0.969) left 3 of 5 runs at chance; bp takes the next, eta = 0.3 (0.965 with 10
    # epochs, 0.967 with 20). tp-ai's 10-epoch best (0.1, 0.1) diverged on all 5 within 10 epochs; tp-ai was
    # re-tuned with the presets' 20 epochs (`--tune` without --epochs): (0.03, 0.1), 0.864, no run diverged.
    ("digits", "cross-entropy"): {"defaults": {**_BASE},
                                  "bp": {"eta": 0.3}, "bp-fixed": {"eta": 0.3}, "fa": {"eta": 0.1, "eta_hat": 1.0},
                                  "tp-ai": {"eta": 0.03, "eta_hat": 0.1}, "rtp-ai": {"eta": 0.03, "eta_hat": 0.1},
                                  "dtp-ai": {"eta": 0.3, "eta_hat": 1.0}, "rdtp-ai": {"eta": 0.3, "eta_hat": 1.0},
                                  "tp-orig": {"eta": 0.03, "eta_hat": 1.0}, "rtp-orig": {"eta": 0.03, "eta_hat": 1.0},
                                  "dtp-orig": {"eta": 0.3, "eta_hat": 3.0}, "rdtp-orig": {"eta": 0.3, "eta_hat": 3.0},
                                  "mtp": {"eta": 0.01}, "rmtp": {"eta": 0.01},
                                  "two-phase": {"eta": 0.3, "eta_hat": 1.0},
                                  "single-phase": {"eta": 0.3, "eta_hat": 1.0},
                                  "multiplexed": {"eta": 0.3, "eta_hat": 1.0}},
}
# tuned on MNIST-1D with the cross-entropy, tune(method, "mnist1d", "cross-entropy", epochs=10) over
# TUNING_GRIDS[("mnist1d", "cross-entropy")] (tp-ai and tp-orig: their own smaller grid, as on digits): best
# validation accuracy without a run stopped early. With MNIST-1D's MSE values tp-ai diverged on all 5 reported
# seeds in epoch 4; its best point here is eta = 0.01 (every eta >= 0.03 point lost runs). The continuous
# networks keep the MSE point (1.0, 0.1): at dtp-ai's point here, (0.3, 1.0), the two-phase network's free phase
# stopped reaching its equilibrium (max_steps) in epochs 3-5 on all 5 reported seeds (numerical_error).
CLASSIFICATION_PRESETS[("mnist1d", "cross-entropy")] = {
    "defaults": {**_BASE},
    "bp": {"eta": 0.3}, "bp-fixed": {"eta": 0.3}, "fa": {"eta": 0.1, "eta_hat": 0.3},
    "tp-ai": {"eta": 0.01, "eta_hat": 1.0}, "rtp-ai": {"eta": 0.01, "eta_hat": 1.0},
    "dtp-ai": {"eta": 0.3, "eta_hat": 1.0}, "rdtp-ai": {"eta": 0.3, "eta_hat": 1.0},
    "tp-orig": {"eta": 0.01, "eta_hat": 1.0}, "rtp-orig": {"eta": 0.01, "eta_hat": 1.0},
    "dtp-orig": {"eta": 1.0, "eta_hat": 0.3}, "rdtp-orig": {"eta": 1.0, "eta_hat": 0.3},
    "mtp": {"eta": 0.01}, "rmtp": {"eta": 0.01},
    "two-phase": {"eta": 1.0, "eta_hat": 0.1}, "single-phase": {"eta": 1.0, "eta_hat": 0.1},
    "multiplexed": {"eta": 1.0, "eta_hat": 0.1}}
# MNIST-style files: not tuned (one run is minutes); digits' values.
CLASSIFICATION_PRESETS[("idx", "mse")] = CLASSIFICATION_PRESETS[("digits", "mse")]
CLASSIFICATION_PRESETS[("idx", "cross-entropy")] = CLASSIFICATION_PRESETS[("digits", "cross-entropy")]


def classification_hyperparameters(method: str, family: str, loss: str, **overrides) -> dict:
    """The resolved hyper-parameters of ``method`` on a task family with a loss: preset, then ``overrides``.

    ``None`` overrides are ignored; ``epochs`` and ``batch_size`` are checked.
    """
    key = (family, loss)
    if key not in CLASSIFICATION_PRESETS:
        raise ValueError(f"no classification preset for task family {family!r} with loss {loss!r}; known: "
                         f"{', '.join(f'{f}/{l}' for f, l in CLASSIFICATION_PRESETS)}.")
    entry = CLASSIFICATION_PRESETS[key]
    out = {**entry["defaults"], **entry.get(method, {})}
    out.setdefault("eta", 0.1)
    for name, value in overrides.items():
        if value is not None:
            out[name] = value
    out["epochs"] = check_int("epochs", out["epochs"], minimum=1)
    out["batch_size"] = check_int("batch_size", out["batch_size"], minimum=1)
    check_positive("eta", out["eta"])
    check_positive("eta_hat", out["eta_hat"])
    return out
