"""Run the tasks of an experiment that differ only in their seed as batches (the ensemble path of ``reproduce``).

The store keeps one result per task (a slot: one seed of one experiment), under the key of that task alone, so
what is stored, reused and resumed does not depend on how tasks were batched: a rerun with another ``--jobs``,
or with ``--no-ensemble``, reuses every stored slot. Batching is a decision of execution only:
:class:`BatchingExecutor` receives the tasks that :func:`tpdynamics.runs.run_tasks` did not find in the store,
groups those of one experiment with equal :meth:`~analysis.reproduce.base.Experiment.batch_key`, runs each
group (or each chunk of it) as one task of the executor it wraps (in this process or a worker), and hands each
slot's result back as that slot's record, stored under the slot's key.

Chunking and order. A group is one chunk unless fewer chunks than workers would run: then the largest chunks are halved
until there are ``jobs`` chunks (or none can be split). At these network sizes an ensemble step of S members
costs about one serial step (README, *Ensembles*), so fewer, larger chunks are cheaper in CPU; halving only
to keep every worker busy trades a little CPU for wall time. The seconds of a chunk are shared equally among
its slots' records. A chunk is stored when it finishes: an interrupt loses the slots of the chunks in flight
(they run again on the rerun), never a stored slot. The units are handed to the executor longest first by the
experiments' measured hints (:meth:`~analysis.reproduce.base.Experiment.slot_seconds`), then largest batch first
(stable otherwise).
"""
from __future__ import annotations

import math

from tpdynamics.runs import Executor, Task, TaskRecord, TaskStatus, group_by_key, make_executor

from .base import EXPERIMENTS

__all__ = ["BatchingExecutor", "run_experiment_batch", "plan_chunks"]

_BATCH_FUNCTION = "analysis.reproduce.batching:run_experiment_batch"


def run_experiment_batch(config: dict) -> list:
    """Task function (any process): tasks of one experiment as one batch, ``{"experiment", "settings", "tasks"}``;
    one result per task, in order (:meth:`~analysis.reproduce.base.Experiment.run_batch`)."""
    experiment = EXPERIMENTS.get(config["experiment"])()
    results = experiment.run_batch(config["settings"], list(config["tasks"]))
    if len(results) != len(config["tasks"]):
        raise RuntimeError(f"{config['experiment']}.run_batch returned {len(results)} results for "
                           f"{len(config['tasks'])} tasks.")
    return results


def _batch_key(task: Task) -> str | None:
    if task.kind != "reproduce" or not isinstance(task.config, dict) or "experiment" not in task.config:
        return None
    experiment = EXPERIMENTS.get(task.config["experiment"])()
    key = experiment.batch_key(task.config["settings"], task.config["task"])
    if key is None:
        return None
    from tpdynamics.runs.codec import canonical_json

    return canonical_json({"experiment": task.config["experiment"], "settings": task.config["settings"],
                           "batch": key})


def _seconds(tasks, chunk) -> float:
    """The estimated seconds of a unit: its slots' :meth:`~analysis.reproduce.base.Experiment.slot_seconds`."""
    total = 0.0
    for index in chunk:
        config = tasks[index].config
        if tasks[index].kind != "reproduce" or not isinstance(config, dict) or "experiment" not in config:
            total += 1.0
            continue
        total += EXPERIMENTS.get(config["experiment"])().slot_seconds(config["settings"], config["task"])
    return total


def plan_chunks(groups: list[list[int]], jobs: int) -> list[list[int]]:
    """Split ``groups`` (lists of task indices; singletons are tasks that run alone) into chunks.

    Every group is one chunk; while there are fewer chunks than ``jobs``, the largest chunk of more than one task
    is halved (the first half the larger). Order: the chunks of a group where the group was.

    Examples
    --------
    >>> plan_chunks([[0, 1, 2, 3, 4], [5]], 3)
    [[0, 1, 2], [3, 4], [5]]
    >>> plan_chunks([[0, 1], [2, 3]], 1)
    [[0, 1], [2, 3]]
    """
    chunks = [[list(g)] for g in groups]
    while sum(len(c) for c in chunks) < jobs:
        sizes = [(len(part), i, k) for i, parts in enumerate(chunks) for k, part in enumerate(parts) if len(part) > 1]
        if not sizes:
            break
        _, i, k = max(sizes, key=lambda s: (s[0], -s[1], -s[2]))
        part = chunks[i][k]
        half = math.ceil(len(part) / 2)
        chunks[i][k:k + 1] = [part[:half], part[half:]]
    return [part for parts in chunks for part in parts]


class BatchingExecutor(Executor):
    """Run ``reproduce`` tasks of equal batch key as batches on an inner executor (module docstring).

    Parameters
    ----------
    executor, jobs, threads
        What :func:`tpdynamics.runs.make_executor` takes: the executor the batches (and the tasks that run
        alone) run on; it is made in :meth:`run`, with one job when a single unit is to run.

    Attributes
    ----------
    chunks : list of int
        The sizes of the batches of the last :meth:`run` (1: a task that ran alone).
    """

    name = "batches"

    def __init__(self, executor=None, *, jobs: int | None = 1, threads: int | None = None):
        self._inner = make_executor(executor, jobs=jobs, threads=threads)  # bad arguments: now, not in run
        super().__init__(self._inner.jobs, self._inner.threads)
        self._spec = executor
        self.chunks: list[int] = []

    def run(self, tasks, on_done):
        order = group_by_key(tasks, _batch_key)
        # the longest units first (the experiments' measured hints, Experiment.slot_seconds; else the batches by
        # size), so that the short tasks fill the workers at the end instead of one long unit finishing last
        chunks = sorted(plan_chunks(order, self.jobs), key=lambda c: (_seconds(tasks, c), len(c)), reverse=True)
        self.chunks = [len(c) for c in chunks]
        units = []
        for chunk in chunks:
            if len(chunk) == 1:
                units.append(tasks[chunk[0]])
                continue
            first = tasks[chunk[0]].config
            units.append(Task(function=_BATCH_FUNCTION, kind="reproduce-batch",
                              label=f"{first['experiment']} [{len(chunk)} slots]",
                              config={"experiment": first["experiment"], "settings": first["settings"],
                                      "tasks": [tasks[i].config["task"] for i in chunk]}))
        if isinstance(self._spec, Executor) or len(units) > 1:
            inner = self._inner
        else:
            inner = make_executor(self._spec, jobs=1, threads=self.threads)  # a single unit runs in this process

        def done(j, record: TaskRecord):
            chunk = chunks[j]
            if len(chunk) == 1:
                on_done(chunk[0], record)
                return
            seconds = record.seconds / len(chunk)
            for slot, index in enumerate(chunk):
                if record.ok:
                    slot_record = TaskRecord(task=tasks[index], status=TaskStatus.DONE, result=record.result[slot],
                                             seconds=seconds, finished=record.finished, host=record.host,
                                             pid=record.pid)
                else:  # the batch's error is every slot's, as each task alone would have failed
                    slot_record = TaskRecord(task=tasks[index], status=TaskStatus.FAILED, error=record.error,
                                             traceback=record.traceback, seconds=seconds, finished=record.finished,
                                             host=record.host, pid=record.pid, exception=record.exception)
                on_done(index, slot_record)

        inner.run(units, done)

