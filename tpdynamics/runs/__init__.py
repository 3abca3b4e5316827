"""Runs and their results: tasks, a store of their results, and executors that run them.

One place for "a task, its configuration hash, its stored result, and where it executes", used by
``reproduce`` (:mod:`analysis.reproduce`), ``train`` (:func:`tpdynamics.training.run_experiment`) and
``scan`` (:func:`analysis.stability_scan`):

* :class:`Task` — a top-level function (``"module:function"``) and the configuration that determines its
  result; :attr:`Task.key` hashes ``(kind, canonical configuration, package version)``;
* :class:`ResultStore` — one JSON file per task, ``STORE/<key>.json``, written atomically (temporary file
  in the same folder, flush + fsync, ``os.replace``), ``done`` with the result or ``failed`` with the error
  and traceback; :meth:`~ResultStore.get`, :meth:`~ResultStore.records`, :meth:`~ResultStore.status`;
* :data:`EXECUTORS` — where tasks run: ``serial`` (this process), ``processes`` (a local pool of
  spawned workers, one torch thread each), and on Dask (:mod:`~tpdynamics.runs.cluster`, the optional
  extra ``tpdynamics[distributed]``) ``local-cluster`` (a ``LocalCluster`` started for the run) and
  ``dask-scheduler`` (a running scheduler, ``"tcp://HOST:PORT"``);
* :func:`run_tasks` — reuse stored results ("12 of 76 tasks reused"), run the rest, store each as it
  finishes, ``fresh=True`` to redo them; Ctrl-C stops the workers and raises :class:`RunInterrupted`
  with what was kept;
* :func:`atomic_write_text` / :func:`atomic_write_bytes` / :func:`atomic_path` — the atomic writes;
  :mod:`~tpdynamics.runs.codec` — lossless JSON of results and the canonical form of configurations.
"""
from .atomic import atomic_path, atomic_write_bytes, atomic_write_text
from .codec import canonical_json, config_hash, decode, encode
from .executors import (EXECUTORS, Executor, ProcessExecutor, SerialExecutor, execute, group_by_key,
                        sigint_deferred, sigint_ignored)
from .cluster import LocalClusterExecutor, SchedulerExecutor, scheduler_executor
from .run import RunInterrupted, RunSummary, make_executor, run_tasks
from .store import ResultStore, Task, TaskRecord, TaskStatus

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "canonical_json", "config_hash", "decode",
           "encode", "EXECUTORS", "Executor", "ProcessExecutor", "SerialExecutor", "execute", "group_by_key",
           "sigint_deferred", "sigint_ignored", "LocalClusterExecutor", "SchedulerExecutor", "scheduler_executor",
           "RunInterrupted", "RunSummary", "make_executor", "run_tasks", "ResultStore", "Task", "TaskRecord",
           "TaskStatus"]
