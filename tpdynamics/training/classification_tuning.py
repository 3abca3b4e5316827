"""The tuning grid of the classification presets, run: every point over the tuning seeds, ranked by validation accuracy."""
from __future__ import annotations

import itertools

from .classification import ClassificationConfig, run_classification
from .classification_presets import TUNING_SEEDS, tuning_grid
from .continuous_methods import CONTINUOUS_METHODS, ContinuousLearner
from .rules import LEARNING_RULES

__all__ = ["tune", "method_parameters"]

#: Grid keys that every method reads (run-level settings, not rule hyper-parameters).
_RUN_KEYS = ("epochs", "batch_size", "hidden")


def method_parameters(method: str) -> tuple:
    """The hyper-parameters ``method`` reads (``bp``: only ``eta``), plus the run-level keys of a grid."""
    cls = ContinuousLearner if method in CONTINUOUS_METHODS else LEARNING_RULES.get(method)
    return tuple(cls.parameters) + _RUN_KEYS


def tune(method: str, task: str = "digits", loss: str = "mse", *, grid: dict | None = None, seeds=TUNING_SEEDS,
         epochs: int | None = None, progress: bool = False, store=None, jobs: int | None = 1, **fixed) -> list[dict]:
    """Train ``method`` at every point of ``grid``; rank by the mean validation accuracy over ``seeds``.

    Parameters
    ----------
    grid : dict, optional
        ``{name: values}`` over :class:`ClassificationConfig` fields (``eta``, ``eta_hat``, ``eta_backward``,
        ``lambda_``, ``epochs``, ``hidden`` ...); default :func:`tuning_grid` of the task family, loss and method.
        Keys the method does not read (``eta_hat`` for ``bp``) are dropped, so each distinct run is trained
        once.
    epochs : int, optional
        Epochs of every run unless the grid varies them (default: the preset's).
    **fixed
        Further :class:`ClassificationConfig` fields held fixed (e.g. ``hidden=(64, 64)``).

    Returns
    -------
    list of dict
        ``{"eta", "eta_hat", ..., "val_accuracy", "val_low", "val_high", "test_accuracy", "failed"}`` per grid
        point, best validation accuracy first; points where a run diverged after every point where all completed.
    """
    grid = dict(tuning_grid(task, loss, method) if grid is None else grid)
    if not grid:
        raise ValueError("grid is empty; pass {name: values}, e.g. {'eta': (0.1, 0.3)}.")
    used = method_parameters(method)
    keys = [k for k in grid if k in used]
    rows = []
    for values in itertools.product(*(tuple(grid[k]) for k in keys)):
        point = dict(zip(keys, values))
        settings = {"epochs": epochs, **fixed, **point}
        if "hidden" in settings:
            settings["hidden"] = tuple(settings["hidden"])
        config = ClassificationConfig(methods=(method,), task=task, loss=loss, seeds=list(seeds), **settings)
        result = run_classification(config, progress=progress, store=store, jobs=jobs)[method]
        val, test = result.final("val_accuracy"), result.final("test_accuracy")
        rows.append({**point, "val_accuracy": val["mean"], "val_low": val["low"], "val_high": val["high"],
                     "test_accuracy": test["mean"], "failed": result.n_failed})
    # a point where a run diverged ranks below every point where all completed
    rows.sort(key=lambda r: (r["failed"], -(r["val_accuracy"] if r["val_accuracy"] == r["val_accuracy"] else -1.0)))
    return rows
