"""The tuning grid of the classification presets, run: every point over the tuning seeds, ranked by validation accuracy."""
from __future__ import annotations

import itertools

from .classification import ClassificationConfig, run_classification
from .classification_presets import TUNING_GRID, TUNING_SEEDS

__all__ = ["tune"]


def tune(method: str, task: str = "digits", loss: str = "mse", *, grid: dict | None = None, seeds=TUNING_SEEDS,
         epochs: int | None = None, progress: bool = False, store=None, jobs: int | None = 1, **fixed) -> list[dict]:
    """Train ``method`` at every point of ``grid`` (default :data:`TUNING_GRID`); rank by validation accuracy.

    Returns
    -------
    list of dict
        ``{"eta", "eta_hat", ..., "val_accuracy", "val_low", "val_high", "test_accuracy"}`` per grid point,
        best validation accuracy first.
    """
    grid = dict(TUNING_GRID if grid is None else grid)
    keys = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        config = ClassificationConfig(methods=(method,), task=task, loss=loss, seeds=list(seeds), epochs=epochs,
                                      **fixed, **point)
        result = run_classification(config, progress=progress, store=store, jobs=jobs)[method]
        val, test = result.final("val_accuracy"), result.final("test_accuracy")
        rows.append({**point, "val_accuracy": val["mean"], "val_low": val["low"], "val_high": val["high"],
                     "test_accuracy": test["mean"], "failed": result.n_failed})
    # a point where a run diverged ranks below every point where all completed
    rows.sort(key=lambda r: (r["failed"], -(r["val_accuracy"] if r["val_accuracy"] == r["val_accuracy"] else -1.0)))
    return rows
