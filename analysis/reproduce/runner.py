"""Run reproduced experiments, keeping every task's result as it finishes; write ``NAME.*`` and ``REPORT.md``.

Every task of every experiment is a :class:`tpdynamics.runs.Task` (kind ``reproduce``, configuration
``{experiment, settings, task}``) whose result goes to ``OUT/runs/<key>.json`` when it finishes
(:class:`tpdynamics.runs.ResultStore`). An experiment whose tasks all have results is summarised at
once into ``OUT/NAME.png`` and ``OUT/NAME.json``; ``OUT/REPORT.md`` is rebuilt at the end from every
``NAME.json`` in the folder (:mod:`analysis.reproduce.report`). A rerun with the same options reuses
the stored tasks; ``fresh=True`` redoes them. Ctrl-C stops the workers, writes the incomplete
experiments' ``NAME.json`` and a partial report, and raises :class:`tpdynamics.runs.RunInterrupted`.

A failed experiment does not stop the others: its error is written to its JSON and to the report.
"""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from tpdynamics.runs import ResultStore, RunInterrupted, Task, run_tasks, sigint_ignored
from tpdynamics.serialization import write_json
from tpdynamics.threads import check_threads

from ..plotting import save
from .base import EXPERIMENTS
from .batching import BatchingExecutor
from .report import REPORT_NAME, ExperimentRecord, ExperimentStatus, load_records, write_report

__all__ = ["ExperimentRecord", "ReproduceResult", "reproduce", "resolve_names", "run_experiment_task",
           "write_report", "STORE_FOLDER"]

#: Sub-folder of the output folder that holds the task store.
STORE_FOLDER = "runs"
_TASK_FUNCTION = "analysis.reproduce.runner:run_experiment_task"


def run_experiment_task(config: dict):
    """Task function (any process): one task of one experiment, ``{"experiment", "settings", "task"}``."""
    experiment = EXPERIMENTS.get(config["experiment"])()
    return experiment.run_task(config["settings"], config["task"])


class ReproduceResult(list):
    """The list of :class:`ExperimentRecord` of a :func:`reproduce` call, in the order of its names.

    Attributes
    ----------
    summary : tpdynamics.runs.RunSummary
        Tasks run, reused (:meth:`~tpdynamics.runs.RunSummary.reuse_message`), failed, missing.
    report : pathlib.Path
        ``OUT/REPORT.md``.
    """

    def __init__(self, records, summary, report):
        super().__init__(records)
        self.summary = summary
        self.report = report


def resolve_names(names) -> list[str]:
    """Validate experiment names.

    Parameters
    ----------
    names : sequence of str or Experiment subclasses, or None
        Experiments to run; empty or ``None``: every registered one.

    Returns
    -------
    list of str
        Registered names, in the given order.

    Raises
    ------
    ValueError
        For a name that is not registered (the message lists the valid names).
    """
    if not names:
        return EXPERIMENTS.names()
    return [EXPERIMENTS.get(n).name for n in names]


def _describe(task: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in task.items())


def _check_out(out) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is an existing file, not a folder; pass a new or existing folder.")
    return out


class _Experiments:
    """The experiments of one call: their tasks, the records as they arrive, and their summaries."""

    def __init__(self, names, quick: bool, seeds, out: Path, fresh: bool):
        self.out, self.quick, self.fresh = out, quick, fresh
        self.plans, self.tasks, self.owner = {}, [], []
        for name in names:
            experiment = EXPERIMENTS.get(name)()
            settings = experiment.settings(quick)
            n_seeds = experiment.seeds(quick, seeds)
            specs = experiment.tasks(settings, n_seeds)
            self.plans[name] = (experiment, settings, n_seeds, specs)
            for k, spec in enumerate(specs):
                self.tasks.append(Task(function=_TASK_FUNCTION, kind="reproduce", label=f"{name} [{_describe(spec)}]",
                                       config={"experiment": name, "settings": settings, "task": spec}))
                self.owner.append((name, k))
        self.records = {name: [None] * len(plan[3]) for name, plan in self.plans.items()}
        self.written: dict[str, ExperimentRecord] = {}

    def keys(self, name) -> list[str]:
        return [t.key for t, (n, _) in zip(self.tasks, self.owner) if n == name]

    def on_record(self, index, record) -> None:
        name, k = self.owner[index]
        self.records[name][k] = record
        if all(r is not None for r in self.records[name]):
            self.finish(name)

    def _base(self, name, status) -> ExperimentRecord:
        experiment, settings, n_seeds, _ = self.plans[name]
        records = [r for r in self.records[name] if r is not None]
        return ExperimentRecord(
            name=name, title=experiment.title, reference=experiment.reference, thesis_says=experiment.thesis_says,
            status=status, seconds=sum(r.seconds for r in records), settings=settings, seeds=n_seeds,
            mode="quick" if self.quick else "full", tasks_total=len(self.records[name]), tasks_done=len(records),
            tasks_reused=sum(r.reused for r in records), task_keys=self.keys(name))

    def _unchanged(self, name) -> ExperimentRecord | None:
        """The record already on disk for exactly these tasks (all reused), so nothing needs redoing."""
        if self.fresh or not all(r.reused for r in self.records[name]):
            return None
        path = self.out / f"{name}.json"
        try:
            old = ExperimentRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if old.status != ExperimentStatus.OK or old.task_keys != self.keys(name) or not all((self.out / f).is_file() for f in old.files):
            return None
        old.tasks_reused = old.tasks_total
        return old

    def finish(self, name) -> None:
        """Summarise an experiment whose tasks all have records; write its figure and JSON."""
        unchanged = self._unchanged(name)
        if unchanged is not None:
            self.written[name] = unchanged
            write_json(self.out / f"{name}.json", unchanged.to_dict())
            return
        experiment, settings, _, _ = self.plans[name]
        record = self._base(name, ExperimentStatus.OK)
        failed = [r for r in self.records[name] if not r.ok]
        if failed:
            record.status = ExperimentStatus.FAILED
            record.error = f"task {failed[0].task.label} failed:\n{failed[0].traceback or failed[0].error}"
        else:
            try:
                start = time.perf_counter()
                summary = experiment.summarize(settings, [r.result for r in self.records[name]])
                record.data, record.claims = summary.data, summary.claims
                save(summary.figure, self.out / f"{name}.png")
                record.files.append(f"{name}.png")
                record.seconds += time.perf_counter() - start
            except Exception:  # a failed summary is reported like a failed task
                record.status, record.error = ExperimentStatus.FAILED, traceback.format_exc()
        record.files.append(f"{name}.json")
        write_json(self.out / f"{name}.json", record.to_dict())
        self.written[name] = record

    def write_incomplete(self) -> None:
        """``NAME.json`` with status ``incomplete`` for every experiment not summarised (after an interrupt)."""
        for name in self.plans:
            if name in self.written:
                continue
            record = self._base(name, ExperimentStatus.INCOMPLETE)
            record.missing = [t.label for t, (n, k) in zip(self.tasks, self.owner)
                              if n == name and self.records[name][k] is None]
            record.files = [f"{name}.json"]
            write_json(self.out / f"{name}.json", record.to_dict())
            self.written[name] = record

    def ordered(self) -> list[ExperimentRecord]:
        return [self.written[name] for name in self.plans if name in self.written]


def reproduce(names=None, *, quick: bool = False, out="tpdynamics-reproduce", seeds: int | None = None,
              jobs: int | None = 1, progress: bool = True, fresh: bool = False, threads: int = 1,
              executor=None, ensemble: bool = True) -> ReproduceResult:
    """Regenerate experiments into ``out/NAME.png``, ``out/NAME.json`` and ``out/REPORT.md``, resumably.

    Parameters
    ----------
    names : sequence of str, optional
        Registered experiment names (default: all).
    quick : bool
        Reduced sizes (fewer trials, epochs, seeds).
    out : path
        Output folder; task results are kept in ``out/runs/`` (module docstring).
    seeds : int, optional
        Seeds per experiment (default: the thesis's count, or the quick count).
    jobs : int, optional
        Worker processes; tasks (seeds) of all experiments are spread over them. 1 (default) runs
        everything in this process; ``None``: the cores available (the CLI's default).
    progress : bool
        Show a progress bar over the tasks.
    fresh : bool
        Redo every task even if ``out/runs/`` has its result.
    threads : int
        Intra-op torch threads of each process that runs tasks (this one for ``jobs=1``); the
        package's policy is 1 (see :mod:`tpdynamics.threads`).
    executor : str or tpdynamics.runs.Executor, optional
        Where tasks run (:data:`tpdynamics.runs.EXECUTORS`); default by ``jobs``.
    ensemble : bool
        Run the tasks of an experiment that differ only in their seed as batches (default): the student-teacher
        experiments train the seeds of several slots as one ensemble (:mod:`analysis.reproduce.batching`;
        the same numbers to rounding, stored per slot under the same keys). ``False``: one task at a time.

    Returns
    -------
    ReproduceResult
        A list of :class:`ExperimentRecord`, one per experiment, in the order of ``names`` (a failed one
        has ``status == 'failed'``), with the run's :attr:`~ReproduceResult.summary`.

    Raises
    ------
    ValueError
        For an unknown name, ``seeds`` / ``jobs`` / ``threads`` that is not a positive int, or ``out`` that is
        a file (checked before anything runs or is written).
    tpdynamics.runs.RunInterrupted
        On Ctrl-C, after the finished tasks, the incomplete experiments' ``NAME.json`` and a partial
        ``REPORT.md`` are written; its ``message`` says what was kept and how to resume.
    """
    names = resolve_names(names)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} must be an int >= 1 (the number of worker processes; 1 runs everything "
                         "in this process).")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds={seeds!r} must be an int >= 1 (seeds per experiment), or None for each "
                         "experiment's own count.")
    threads = check_threads(threads)
    out = _check_out(out)
    experiments = _Experiments(names, quick, seeds, out, fresh)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / STORE_FOLDER)
    started = time.perf_counter()

    def report(summary, *, interrupted: bool) -> Path:
        run = summary.reuse_message().replace(f" from {store.root}", "")
        if interrupted:
            run += f"; interrupted with {len(summary.missing)} tasks missing"
        return write_report(load_records(out), out / REPORT_NAME, quick=quick, jobs=summary.jobs, seeds=seeds,
                            wall=time.perf_counter() - started, run=run)

    try:
        if ensemble:
            executor = BatchingExecutor(executor, jobs=jobs, threads=threads)
        summary = run_tasks(experiments.tasks, store, executor=executor, jobs=jobs, threads=threads, fresh=fresh,
                            progress=progress, desc="reproduce", on_record=experiments.on_record)
    except RunInterrupted as err:
        with sigint_ignored():
            experiments.write_incomplete()
            path = report(err.summary, interrupted=True)
            message = (f"interrupted: kept {err.summary.finished} of {len(err.summary.tasks)} tasks in {store.root}; "
                       f"{path} is partial. Run the same command again to resume (finished tasks are reused).")
        raise RunInterrupted(err.summary, message, partial=experiments.ordered()) from None
    path = report(summary, interrupted=False)
    return ReproduceResult(experiments.ordered(), summary, path)
