"""Plan, run and inspect a sweep: every point one ``train`` task, results in ``OUT/runs/``, a table in ``OUT/results.csv``.

A point of a :class:`~tpdynamics.sweep.SweepSpec` becomes a :class:`~tpdynamics.training.TrainingConfig`
of one method and one seed, and that a task of :func:`~tpdynamics.training.runner.training_tasks`: the
same task, with the same key, as ``tpdynamics train`` makes for that run, so the two share stored
results. Points that differ only in a setting their method does not use are one task (it runs once).

Output folder::

    OUT/runs/<key>.json   one file per task (the store of tpdynamics.runs), written by this process as
                          each task finishes, ``done`` or ``failed`` (error and traceback)
    OUT/results.csv       one row per run of the store (tpdynamics.sweep.table), rewritten after each run
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import TPDynamicsWarning
from ..runs import ResultStore, RunInterrupted, RunSummary, Task, run_tasks, sigint_ignored
from ..training import TrainingConfig
from ..training.runner import training_tasks
from .spec import SweepSpec
from .table import RESULTS_NAME, write_results_table

__all__ = ["SweepPlan", "SweepResult", "plan_sweep", "run_sweep", "sweep_status", "STORE_FOLDER"]

#: Sub-folder of the output folder that holds the task store (as for ``reproduce``).
STORE_FOLDER = "runs"


@dataclass
class SweepPlan:
    """A sweep's points and their tasks (aligned lists).

    Attributes
    ----------
    spec : SweepSpec
    points : list of dict
        The parameters of each point.
    tasks : list of Task
        One ``train`` task per point; identical runs share a key.
    """

    spec: SweepSpec
    points: list
    tasks: list

    @property
    def distinct(self) -> int:
        """Distinct tasks (points that are the same run count once)."""
        return len({t.key for t in self.tasks})


def _label(point: dict, swept) -> str:
    extra = " ".join(f"{k}={_short(point[k])}" for k in swept if k not in ("method", "seed"))
    return f"{point['method']} seed {point.get('seed', 0)}" + (f" {extra}" if extra else "")


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "-".join(map(str, value))
    return str(value)


def _training_config(point: dict) -> TrainingConfig:
    settings = dict(point)
    method, seed = settings.pop("method"), settings.pop("seed", 0)
    if "lambda" in settings:
        settings["lambda_"] = settings.pop("lambda")
    if "dtype" in settings:
        settings["dtype"] = getattr(torch, settings["dtype"])
    return TrainingConfig(methods=(method,), seeds=[seed], **settings)


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """The points of ``spec`` and their tasks, each checked as ``tpdynamics train`` checks a run.

    A setting that a point's method does not use is reported once (``TPDynamicsWarning``), with the
    number of points it concerns.

    Raises
    ------
    ValueError, TypeError
        Naming the point (its number and swept values) whose configuration is invalid (an unknown
        method, exact inverses on unequal layers, a batch size the method cannot use, ...).
    """
    if not isinstance(spec, SweepSpec):
        raise TypeError(f"spec must be a SweepSpec (tpdynamics.sweep.load_sweep), got {type(spec).__name__}.")
    points = spec.points()
    tasks, unused = [], {}
    for i, point in enumerate(points):
        label = _label(point, spec.swept)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                (task,) = training_tasks(_training_config(point))[3]
            except (ValueError, TypeError) as err:
                raise type(err)(f"{spec.source}: point {i + 1} of {len(points)} ({label}): {err}") from None
        for warning in caught:
            unused.setdefault((warning.category, str(warning.message)), []).append(i)
        tasks.append(Task(function=task.function, config=task.config, kind=task.kind, label=label))
    for (category, message), where in unused.items():
        if issubclass(category, TPDynamicsWarning):
            message = (f"{spec.source}: {message} ({len(where)} of {len(points)} points; points that differ only in "
                       "it are the same run, trained once)")
        warnings.warn(message, category, stacklevel=2)
    return SweepPlan(spec, points, tasks)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the plan, the run's summary, the store and the table."""

    plan: SweepPlan
    summary: RunSummary
    store: ResultStore
    table: Path

    @property
    def failed(self) -> list:
        """Failed records (each stored with its error and traceback)."""
        seen, out = set(), []
        for record in self.summary.failed:
            if record.task.key not in seen:
                seen.add(record.task.key)
                out.append(record)
        return out


def _out(out) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is an existing file, not a folder; pass a new or existing folder.")
    return out


def run_sweep(spec: SweepSpec, out="tpdynamics-sweep", *, executor=None, jobs: int | None = 1,
              threads: int | None = None, fresh: bool = False, progress: bool = False) -> SweepResult:
    """Run every point of ``spec`` not yet stored in ``out/runs/``, then write ``out/results.csv``.

    Parameters
    ----------
    spec : SweepSpec
    out : path
        Output folder (module docstring).
    executor : str or tpdynamics.runs.Executor, optional
        Where the tasks run: ``None`` (``serial`` for ``jobs == 1``, else ``processes``),
        ``"local-cluster:N"``, ``"tcp://HOST:PORT"``, ... (:func:`tpdynamics.runs.make_executor`).
    jobs, threads, fresh, progress
        As in :func:`tpdynamics.runs.run_tasks`.

    Returns
    -------
    SweepResult
        A failed task is in :attr:`SweepResult.failed` (and the store); the others ran.

    Raises
    ------
    tpdynamics.runs.RunInterrupted
        On Ctrl-C, after the finished tasks are stored and ``results.csv`` written.
    """
    plan = plan_sweep(spec)
    out = _out(out)
    store = ResultStore(out / STORE_FOLDER)
    try:
        summary = run_tasks(plan.tasks, store, executor=executor, jobs=jobs, threads=threads, fresh=fresh,
                            progress=progress, desc=f"sweep {spec.name}", unit="run")
    except RunInterrupted as err:
        with sigint_ignored():
            table = write_results_table(store, out / RESULTS_NAME, current=plan.tasks)
        raise RunInterrupted(err.summary, f"{err.message}; {table} lists the finished runs",
                             partial=err.summary.records) from None
    table = write_results_table(store, out / RESULTS_NAME, current=plan.tasks)
    return SweepResult(plan, summary, store, table)


def sweep_status(spec: SweepSpec, out="tpdynamics-sweep") -> dict:
    """Where each task of ``spec`` stands in ``out/runs/``: ``{"done": [...], "failed": [...], "pending": [...]}``.

    Each entry is ``(task, record or None)``, one per distinct task, in the sweep's order; nothing is run
    or written.
    """
    plan = plan_sweep(spec)
    store = ResultStore(_out(out) / STORE_FOLDER)
    status = {"done": [], "failed": [], "pending": []}
    seen = set()
    for task in plan.tasks:
        if task.key in seen:
            continue
        seen.add(task.key)
        record = store.get(task)
        status["pending" if record is None else ("done" if record.ok else "failed")].append((task, record))
    return status
