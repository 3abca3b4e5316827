"""``results.csv``: one row per training run of a store, its configuration and its final metrics.

Regenerated from the store alone (:class:`~tpdynamics.runs.ResultStore`, the ``train`` records), so
it always covers every run kept in the folder, whichever sweep (or ``tpdynamics train``) ran it; the
column ``in_sweep`` says whether the current configuration includes the run (its rows come first,
in the sweep's order). Columns:

* ``key``, ``in_sweep``, ``status`` (``done`` / ``failed``), ``label``;
* the run's full configuration, flattened: ``method``, ``seed``, the resolved hyper-parameters
  (``eta``, ``eta_hat``, ``batch_size``, ...), the settings (``layers``, ``epochs``, ``n_train``,
  ``preset``, ...) and the problem (``task``, ``nonlinearity``, ``n_test``, ``dtype``, ...); a name
  that two groups share is written ``group.name``; lists as JSON;
* the metrics: ``run_status`` (``completed`` / ``diverged`` / ``numerical_error``), ``epochs_completed``,
  ``steps``, ``train_loss_initial``, ``test_loss_initial``, ``train_loss_final``, ``test_loss_final``
  (mean over samples of ``||h_L - y||^2``, after the last completed epoch), ``batch_loss_final``;
* ``seconds`` (the task's run time), ``error`` (first line of a failed task's error).

Floats are written with ``repr`` (they read back exactly); the file is written atomically.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..runs import ResultStore, TaskRecord, atomic_path

__all__ = ["results_rows", "write_results_table", "RESULTS_NAME", "METRICS"]

#: The table's file name in a sweep's output folder.
RESULTS_NAME = "results.csv"
#: The metric columns.
METRICS = ("run_status", "epochs_completed", "steps", "train_loss_initial", "test_loss_initial", "train_loss_final",
           "test_loss_final", "batch_loss_final")
_GROUPS = ("hyperparameters", "settings", "problem", "run")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def _config_columns(config: dict) -> list[tuple[int, str, object]]:
    """``(group rank, column, value)`` of a task's configuration; the rank orders the columns by group."""
    out = [(0, "method", config.get("method")), (0, "seed", config.get("seed"))]
    names = {"method", "seed"}
    for rank, group in enumerate(_GROUPS, start=1):
        for name, value in (config.get(group) or {}).items():
            out.append((rank, f"{group}.{name}" if name in names else name, value))
            names.add(name)
    if "rule" in config:
        out.append((len(_GROUPS) + 1, "rule", config["rule"]))
    return out


def _metrics(record: TaskRecord) -> dict:
    if not record.ok:
        return {}
    run = record.result["run"]
    train, test, batch = run["train_loss"], run["test_loss"], run["batch_loss"]
    return {"run_status": run["status"], "epochs_completed": max(len(test) - 1, 0), "steps": run["steps"],
            "train_loss_initial": train[0] if train else None, "test_loss_initial": test[0] if test else None,
            "train_loss_final": train[-1] if train else None, "test_loss_final": test[-1] if test else None,
            "batch_loss_final": batch[-1] if batch else None}


def results_rows(store, current=None) -> list[dict]:
    """The rows of ``results.csv`` (module docstring) for every ``train`` record of ``store``.

    Parameters
    ----------
    store : ResultStore or path
    current : sequence of Task, optional
        The current sweep's tasks: their rows first, in this order, with ``in_sweep`` 1; without it the
        column is left out.

    Returns
    -------
    list of dict
        One per run, every row with the same columns in the same order (``None`` where a run has no value).
    """
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    order = {}
    for task in current or ():
        order.setdefault(task.key, len(order))
    records = store.records(kind="train")
    records.sort(key=lambda r: (order.get(r.task.key, len(order)), r.task.label, r.task.key))
    ranks: dict[str, tuple[int, int]] = {}
    configs = []
    for record in records:
        cells = _config_columns(record.task.config)
        for rank, name, _ in cells:
            ranks.setdefault(name, (rank, len(ranks)))
        configs.append({name: value for _, name, value in cells})
    head = ["key", *(["in_sweep"] if current is not None else []), "status", "label"]
    columns = head + sorted(ranks, key=ranks.get) + [*METRICS, "seconds", "error"]
    rows = []
    for record, config in zip(records, configs):
        row = dict.fromkeys(columns)
        row.update(key=record.task.key, status=record.status, label=record.task.label, **config, **_metrics(record),
                   seconds=record.seconds, error=record.error.splitlines()[0] if record.error else None)
        if current is not None:
            row["in_sweep"] = int(record.task.key in order)
        rows.append(row)
    return rows


def write_results_table(store, path, current=None) -> Path:
    """Write :func:`results_rows` to ``path`` as CSV (atomically; a header alone for an empty store); return the path."""
    rows = results_rows(store, current)
    columns = list(rows[0]) if rows else ["key", *(["in_sweep"] if current is not None else []), "status", "label",
                                          *METRICS, "seconds", "error"]
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row[c]) for c in columns])
    return path
