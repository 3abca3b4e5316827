""":func:`run_tasks`: reuse what the store has, run the rest on an executor, store each result as it finishes."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .executors import EXECUTORS, Executor, SerialExecutor, sigint_deferred, sigint_ignored
from .store import ResultStore, Task, TaskRecord

__all__ = ["run_tasks", "RunSummary", "RunInterrupted", "make_executor"]

_log = logging.getLogger("tpdynamics.runs")


@dataclass
class RunSummary:
    """What :func:`run_tasks` did.

    Attributes
    ----------
    tasks : list of Task
        In the order given.
    records : list of TaskRecord or None
        Aligned with ``tasks``; ``None`` for a task that did not finish (interrupted run).
    reused : int
        Tasks read from the store instead of run.
    store : ResultStore or None
    interrupted : bool
    """

    tasks: list
    records: list
    reused: int = 0
    store: ResultStore | None = None
    interrupted: bool = False
    executor: str = ""
    jobs: int = 1

    @property
    def finished(self) -> int:
        """Tasks with a record (reused, done or failed)."""
        return sum(r is not None for r in self.records)

    @property
    def failed(self) -> list[TaskRecord]:
        return [r for r in self.records if r is not None and not r.ok]

    @property
    def missing(self) -> list[Task]:
        """Tasks without a record."""
        return [t for t, r in zip(self.tasks, self.records) if r is None]

    @property
    def complete(self) -> bool:
        return not self.missing

    def reuse_message(self) -> str:
        """``"12 of 76 tasks reused"`` (and where from)."""
        where = f" from {self.store.root}" if self.store is not None else ""
        return f"{self.reused} of {len(self.tasks)} tasks reused{where}"

    def to_dict(self) -> dict:
        return {"tasks": len(self.tasks), "finished": self.finished, "reused": self.reused,
                "failed": len(self.failed), "missing": [t.label or t.key for t in self.missing],
                "interrupted": self.interrupted, "executor": self.executor, "jobs": self.jobs,
                "store": None if self.store is None else str(self.store.root)}


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT) after its finished tasks were stored.

    A ``KeyboardInterrupt``, so code that does not know it still stops; :attr:`summary` says what was
    kept, :attr:`message` is the one line the CLI prints, :attr:`partial` the caller's partial result.
    """

    def __init__(self, summary: RunSummary, message: str = "", partial=None):
        super().__init__(message or _interrupt_message(summary))
        self.summary = summary
        self.message = message or _interrupt_message(summary)
        self.partial = partial


def _interrupt_message(summary: RunSummary) -> str:
    kept = f"kept {summary.finished} of {len(summary.tasks)} tasks"
    if summary.store is not None:
        return f"interrupted: {kept} in {summary.store.root}; run the same command again to resume"
    return f"interrupted: {kept} (no store: nothing was written)"


def make_executor(executor=None, *, jobs: int | None = 1, threads: int | None = None) -> Executor:
    """An :class:`Executor` from a registered name, a scheduler address, a subclass, an instance or ``None``.

    ``None`` picks ``serial`` for ``jobs == 1`` and ``processes`` otherwise; ``"local-cluster:N"`` and
    ``"tcp://HOST:PORT"`` are Dask executors (:func:`~tpdynamics.runs.cluster.scheduler_executor`).
    ``threads``: intra-op torch threads of the processes that run tasks; ``None`` leaves this process as
    it is and gives workers 1.
    """
    if isinstance(executor, Executor):
        return executor
    if executor is None:
        executor = "serial" if jobs == 1 else "processes"
    if isinstance(executor, str) and executor not in EXECUTORS.names():
        from .cluster import scheduler_executor

        return scheduler_executor(executor, jobs=jobs, threads=1 if threads is None else threads)
    cls = EXECUTORS.get(executor)
    if issubclass(cls, SerialExecutor):
        return cls(jobs, threads)  # None: this process keeps its own thread setting
    return cls(jobs, 1 if threads is None else threads)  # the policy: one thread per worker


def run_tasks(tasks: Sequence[Task], store: ResultStore | str | Path | None = None, *, executor=None,
              jobs: int | None = 1, threads: int | None = None, fresh: bool = False, progress: bool = False,
              desc: str = "tasks", unit: str = "task",
              on_record: Callable[[int, TaskRecord], None] | None = None) -> RunSummary:
    """Run ``tasks``, reusing stored results, storing each new result as soon as it is collected.

    Parameters
    ----------
    tasks : sequence of Task
        Tasks with equal keys run once and share the record.
    store : ResultStore or path, optional
        Where results are kept; ``None`` keeps nothing (everything runs).
    executor : str, Executor subclass or instance, optional
        A name of :data:`~tpdynamics.runs.EXECUTORS` (``serial``, ``processes``, ``local-cluster``), a
        Dask notation (``"local-cluster:N"``, ``"tcp://HOST:PORT"``: :mod:`~tpdynamics.runs.cluster`);
        default ``serial`` for ``jobs == 1``, else ``processes``.
    jobs : int, optional
        Worker processes (``None``: the cores available); the pool has at most as many workers as
        tasks to run, and a single task to run runs in this process.
    threads : int, optional
        Intra-op torch threads of each process that runs tasks, this one included while it runs them;
        ``None`` (default): workers use 1 (the policy) and this process keeps its setting.
    fresh : bool
        Run every task even if the store has it (and overwrite the stored result).
    progress : bool
        A tqdm progress bar (on stderr) over all tasks, starting at the reused ones.
    desc, unit : str
        The bar's label and unit.
    on_record : callable, optional
        ``on_record(index, record)`` in this process for every task as it gets its record (reused ones
        first, in order; then the run ones as they finish).

    Returns
    -------
    RunSummary

    Raises
    ------
    RunInterrupted
        On Ctrl-C: queued tasks cancelled, workers stopped, finished ones stored; then raised with the
        summary (:attr:`RunSummary.interrupted` set).
    """
    tasks = list(tasks)
    if not all(isinstance(t, Task) for t in tasks):
        raise TypeError("tasks must be a sequence of tpdynamics.runs.Task objects.")
    make_executor(executor, jobs=jobs, threads=threads)  # bad jobs / threads / names: before anything runs
    if store is not None and not isinstance(store, ResultStore):
        store = ResultStore(store)
    summary = RunSummary(tasks=tasks, records=[None] * len(tasks), store=store)
    by_key: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        by_key.setdefault(task.key, []).append(i)

    def deliver(indices, record):
        for i in indices:
            summary.records[i] = record
            if on_record is not None:
                on_record(i, record)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress, leave=False)
    to_run = []
    try:
        for key, indices in by_key.items():
            record = None if (fresh or store is None) else store.get(tasks[indices[0]])
            if record is not None and record.ok:
                summary.reused += len(indices)
                deliver(indices, record)
                bar.update(len(indices))
            else:
                to_run.append(indices)
        if summary.reused:
            _log.info(summary.reuse_message())
        chosen = make_executor(executor, jobs=jobs if len(to_run) > 1 else 1, threads=threads)
        summary.executor, summary.jobs = chosen.name, chosen.jobs

        def collected(j, record):
            indices = to_run[j]
            with sigint_deferred():  # on disk and counted as kept, or neither
                if store is not None:
                    store.put(record)
                for i in indices:
                    summary.records[i] = record
            deliver(indices, record)
            bar.update(len(indices))
            bar.set_postfix_str(record.task.label[:40], refresh=False)

        if to_run:
            chosen.run([tasks[indices[0]] for indices in to_run], collected)
    except KeyboardInterrupt:
        with sigint_ignored():
            bar.close()
            summary.interrupted = True
        raise RunInterrupted(summary) from None
    finally:
        bar.close()
    return summary
