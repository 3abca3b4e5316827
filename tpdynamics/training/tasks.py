"""Training as tasks: one (method, seed) run per :class:`tpdynamics.runs.Task`, kept as it finishes.

:func:`run_training` is what :func:`~tpdynamics.training.run_experiment` does: it plans the
experiment (:func:`training_tasks`), runs the tasks through :func:`tpdynamics.runs.run_tasks` (in
this process or a pool, reusing a store's finished runs) and assembles the
:class:`~tpdynamics.training.ExperimentResult`. A task's configuration holds everything its run
depends on — the method, the seed, the resolved hyper-parameters, the problem's settings — so a run
is reused by any later experiment that would train it identically (e.g. ``bp`` of
``--method bp,dtp-ai`` after ``--method bp`` with the same data sizes).

On Ctrl-C the finished runs are kept and :class:`tpdynamics.runs.RunInterrupted` carries the partial
:class:`ExperimentResult` (``partial=True``, ``missing_runs``) in its ``partial`` attribute.
"""
from __future__ import annotations

import contextvars

import torch

from ..network import make_generator
from ..runs import ResultStore, RunInterrupted, Task, run_tasks
from .data import derived_seed
from .rules import LEARNING_RULES
from .runner import ExperimentResult, RunHistory, TrainingConfig, TrainingResult, _plan, _problem, _train_run
from .status import TrainingStatus

__all__ = ["training_tasks", "run_training_task", "run_training"]

_TASK_FUNCTION = "tpdynamics.training.tasks:run_training_task"
_PROBLEM_FIELDS = ("task", "nonlinearity", "output_nonlinearity", "n_test", "distance", "init_threshold")
_RUN_FIELDS = ("diagnostics", "diagnostics_every", "record_steps")
# the epoch progress bar of a run in this process (run_training sets it; a worker process has none)
_EPOCH_BAR = contextvars.ContextVar("tpdynamics_epoch_bar", default=None)


def _rule_class(name: str, method):
    """The registered class, or the user's class given in ``methods`` (passed by its import path)."""
    return method if isinstance(method, type) else LEARNING_RULES.get(name)


def training_tasks(config: TrainingConfig):
    """Validate ``config`` and split it into one task per (seed, method), seed-major.

    Returns
    -------
    names : list of str
    hyper : dict
        Method name -> resolved hyper-parameters.
    settings : dict
        Layers, epochs, rate decay, training-set size, preset.
    tasks : list of tpdynamics.runs.Task
        Kind ``train``; configuration ``{method, seed, hyperparameters, settings, problem, run}`` (and
        ``rule``, the class's import path, for a class that is not the registered one).
    """
    names, hyper, settings = _plan(config)
    methods = [config.methods] if isinstance(config.methods, (str, type)) else list(config.methods)
    problem = {k: getattr(config, k) for k in _PROBLEM_FIELDS}
    problem["dtype"] = str(config.dtype).replace("torch.", "")
    run = {k: getattr(config, k) for k in _RUN_FIELDS}
    plain = {**settings, "layers": list(settings["layers"])}
    tasks = []
    for seed in config.seed_list():
        for name, method in zip(names, methods):
            cls = _rule_class(name, method)
            task_config = {"method": name, "seed": seed, "hyperparameters": hyper[name], "settings": plain,
                           "problem": problem, "run": run}
            if cls is not LEARNING_RULES.get(name):
                task_config["rule"] = f"{cls.__module__}:{cls.__qualname__}"
            tasks.append(Task(function=_TASK_FUNCTION, config=task_config, kind="train", label=f"{name} seed {seed}"))
    return names, hyper, settings, tasks


def run_training_task(task: dict) -> dict:
    """Task function (any process): train one method from one seed; ``{"run": RunHistory dict, "problem": ...}``."""
    if "rule" in task:
        from ..runs.executors import resolve_function

        cls = resolve_function(task["rule"])
    else:
        cls = LEARNING_RULES.get(task["method"])
    problem_settings = {k: task["problem"][k] for k in _PROBLEM_FIELDS}
    config = TrainingConfig(methods=(cls,), dtype=getattr(torch, task["problem"]["dtype"]), **problem_settings,
                              **task["run"])
    settings = {**task["settings"], "layers": tuple(task["settings"]["layers"])}
    seed, hyper = task["seed"], task["hyperparameters"]
    problem = _problem(config, settings, seed)
    arguments = {k: v for k, v in hyper.items() if k not in ("batch_size", "batches_per_epoch")}
    rule = cls(**arguments, trainable_layers=problem.trainable_layers,
               generator=make_generator(derived_seed(seed, "rule")))
    history = _train_run(rule, problem, hyper, settings, config, seed, _EPOCH_BAR.get())
    return {"run": history.to_dict(), "problem": problem.describe()}


def _assemble(config: TrainingConfig, names, hyper, settings, tasks, records) -> ExperimentResult:
    results = {name: TrainingResult(method=name, hyperparameters={**hyper[name], "preset": settings["preset"]},
                                    epochs=settings["epochs"]) for name in names}
    problems, missing, seen = [], [], set()
    for task, record in zip(tasks, records):
        seed, name = task.config["seed"], task.config["method"]
        if record is None:
            missing.append({"method": name, "seed": seed})
            continue
        run = record.result["run"]
        results[name].runs.append(RunHistory(**{**run, "status": TrainingStatus(run["status"])}))
        if seed not in seen:
            seen.add(seed)
            problems.append(record.result["problem"])
    config_dict = config.to_dict()
    config_dict.update({"methods": names, "layers": list(settings["layers"]), "epochs": settings["epochs"],
                        "n_train": settings["n_train"], "preset": settings["preset"]})
    return ExperimentResult(config=config_dict, problems=problems, results=results, missing=missing)


def run_training(config: TrainingConfig, *, progress: bool = False, store=None, jobs: int | None = 1,
                 fresh: bool = False, threads: int | None = None, executor=None) -> ExperimentResult:
    """Run an experiment as tasks (module docstring); the arguments are :func:`run_experiment`'s."""
    names, hyper, settings, tasks = training_tasks(config)
    store = None if store is None else (store if isinstance(store, ResultStore) else ResultStore(store))
    serial = (executor is None or executor == "serial") and jobs == 1
    bar = None
    if progress and serial:  # in this process: a bar over epochs, as the runs go
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks) * settings["epochs"], unit="epoch", desc="training")
    token = _EPOCH_BAR.set(bar)

    def count_reused(index, record):
        if bar is not None and record.reused:
            bar.update(settings["epochs"])

    try:
        summary = run_tasks(tasks, store, executor=executor, jobs=jobs, threads=threads, fresh=fresh,
                            progress=progress and not serial, desc="training", unit="run", on_record=count_reused)
    except RunInterrupted as err:
        partial = _assemble(config, names, hyper, settings, tasks, err.summary.records)
        where = f" in {store.root}" if store is not None else " (no store: not kept on disk)"
        message = (f"interrupted: {err.summary.finished} of {len(tasks)} (method, seed) runs finished{where}; "
                   + ("run the same command again to resume" if store is not None else "pass a store to resume"))
        raise RunInterrupted(err.summary, message, partial=partial) from None
    finally:
        _EPOCH_BAR.reset(token)
        if bar is not None:
            bar.close()
    for record in summary.failed:  # a bug, not a numerical failure (those are run statuses): raise it
        if record.exception is not None:
            raise record.exception
        raise RuntimeError(f"training run {record.task.label} failed in a worker process:\n{record.traceback}")
    result = _assemble(config, names, hyper, settings, tasks, summary.records)
    result.summary = summary
    return result
