"""Tasks on a Dask cluster (``dask.distributed``): a ``LocalCluster`` started here, or a scheduler by address.

Two executors of :data:`~tpdynamics.runs.EXECUTORS` with the contract of
:mod:`~tpdynamics.runs.executors` (every record handed back to the calling process, which alone writes
the store):

* ``local-cluster`` (:class:`LocalClusterExecutor`): starts a ``distributed.LocalCluster`` of ``jobs``
  worker processes with one thread each (one task per process at a time, one intra-op torch thread),
  listening on 127.0.0.1 only, and closes it when the run ends;
* ``dask-scheduler`` (:class:`SchedulerExecutor`): connects to a running scheduler (``tcp://HOST:PORT``,
  started by ``dask scheduler``, ``dask-jobqueue``, Kubernetes, ...); an unreachable one is a
  :class:`~tpdynamics.errors.SchedulerUnreachableError` after :attr:`SchedulerExecutor.connect_timeout`
  seconds. The cluster is left running.

:func:`scheduler_executor` reads the ``--scheduler`` notation: ``processes``, ``serial``,
``local-cluster`` / ``local-cluster:N`` and ``tcp://HOST:PORT`` (any ``SCHEME://`` address).

Every task is submitted once as ``execute(task)`` (``pure=False``: a rerun is a new computation). A
worker that dies mid-task (killed, out of memory) is noticed by the scheduler, which runs its tasks
again on the other workers (a ``LocalCluster``'s nanny also restarts the dead process); the client
collects each future once, so each task's record is written once. A task whose workers died
``distributed.scheduler.allowed-failures`` times (3 by default) is a failed record (``KilledWorker``),
and the others go on. On ``KeyboardInterrupt`` the futures are cancelled and the client (and a
cluster started here, its worker processes with it) closed before the interrupt is re-raised.

Dask is an optional dependency: ``pip install 'tpdynamics[distributed]'``; without it these executors
raise :class:`~tpdynamics.errors.MissingExtraError` naming the extra when they are created.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import traceback
import uuid

from ..errors import MissingExtraError, SchedulerUnreachableError
from .executors import EXECUTORS, Executor, execute, sigint_ignored
from .store import TaskRecord, now, where

__all__ = ["DaskExecutor", "LocalClusterExecutor", "SchedulerExecutor", "scheduler_executor", "import_distributed",
           "SCHEDULER_FORMS"]

#: The ``--scheduler`` notations, for messages and help texts.
SCHEDULER_FORMS = "processes, local-cluster, local-cluster:N or tcp://HOST:PORT"
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


def import_distributed():
    """``distributed``, or :class:`~tpdynamics.errors.MissingExtraError` naming the extra to install."""
    try:
        import distributed
    except ImportError as err:
        raise MissingExtraError(
            f"running tasks on Dask needs the optional dependencies dask and distributed, which are not installed "
            f"({err}); install them with: pip install 'tpdynamics[distributed]' (or use the default scheduler, "
            "processes).") from None
    return distributed


def scheduler_executor(spec: str, *, jobs: int | None = None, threads: int | None = 1) -> Executor:
    """The executor a ``--scheduler`` value names.

    Parameters
    ----------
    spec : str
        ``processes`` (a local pool of ``jobs`` processes; ``jobs=1`` runs in this process), ``serial``,
        ``local-cluster`` (``jobs`` workers), ``local-cluster:N`` (``N`` workers), ``SCHEME://HOST:PORT``
        (a running Dask scheduler), or another registered executor name.
    jobs, threads
        As for :class:`~tpdynamics.runs.Executor`.

    Raises
    ------
    ValueError
        For a value of none of these forms.
    tpdynamics.errors.MissingExtraError
        For the Dask forms when dask/distributed are not installed.
    """
    if not isinstance(spec, str):
        raise TypeError(f"scheduler={spec!r} must be a str ({SCHEDULER_FORMS}).")
    if _ADDRESS.match(spec):
        return SchedulerExecutor(jobs, threads, address=spec)
    name, colon, count = spec.partition(":")
    if name == "local-cluster" and colon:
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler={spec!r}: N of local-cluster:N must be a whole number >= 1 (worker "
                             "processes), e.g. local-cluster:4.")
        return LocalClusterExecutor(int(count), threads)
    if colon:
        raise ValueError(f"scheduler={spec!r} is not valid; use {SCHEDULER_FORMS} (registered executors: "
                         f"{', '.join(EXECUTORS.names())}).")
    return EXECUTORS.get(name)(jobs, threads)  # an unknown name: the registry's message, with the valid names


def _execute_on_worker(task, threads):
    record = execute(task, threads)
    record.exception = None  # exceptions do not always pickle; the traceback text is kept
    return record


def _leave_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload hook of a LocalCluster's worker processes
    """Preload hook of the worker processes of :class:`LocalClusterExecutor` (runs as each one starts).

    A terminal's Ctrl-C reaches the whole process group: the client decides and closes the cluster, so
    the workers ignore SIGINT (no traceback from each of them, no restart of them by their nanny). A
    closed worker leaves at once: the interpreter's teardown of torch took about 3 s per process on
    this machine, beyond which the nanny kills the process with a warning.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_leave_now)  # registered last, so it runs first: after the worker closed, before teardown
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())  # as in the process pool: no named semaphore left by a killed worker


class DaskExecutor(Executor):
    """Base class of the Dask executors: submit each task, hand back each record once, as it finishes.

    Subclasses provide :meth:`_connect` (a ``distributed.Client``, and the cluster to close or ``None``).
    """

    #: Seconds given to cancelling, closing the client and closing a local cluster on the way out.
    close_timeout = 10.0

    def __init__(self, jobs: int | None = None, threads: int | None = 1):
        import_distributed()  # a missing extra is reported before anything runs
        super().__init__(jobs, threads)

    def _connect(self, tasks: int):
        raise NotImplementedError

    def run(self, tasks, on_done):
        from distributed import as_completed

        client, cluster = self._connect(len(tasks))
        token = uuid.uuid4().hex[:8]
        futures = {}
        try:
            for index, task in enumerate(tasks):
                future = client.submit(_execute_on_worker, task, self.threads, pure=False,
                                       key=f"tpdynamics-{task.kind}-{task.key}-{token}")
                futures[future] = index
            collected = set()
            for future in as_completed(list(futures)):
                index = futures[future]
                if index in collected:  # a future is yielded once; guard the exactly-once write all the same
                    continue
                try:
                    record = future.result()
                except Exception as err:  # KilledWorker (its workers kept dying), a result that does not unpickle
                    host, pid = where()
                    record = TaskRecord(task=tasks[index], status="failed", error=f"{type(err).__name__}: {err}",
                                        traceback=traceback.format_exc(), finished=now(), host=host, pid=pid)
                collected.add(index)
                future.release()  # the scheduler can forget the result: it is here now
                on_done(index, record)
        except BaseException:
            with sigint_ignored():
                self._close(client, cluster, list(futures))
            raise
        self._close(client, cluster, [])

    def _close(self, client, cluster, futures) -> None:
        if futures:  # an interrupt: what a closing cluster reports about its cancelled work is noise now
            logging.getLogger("distributed").setLevel(logging.CRITICAL)
            with contextlib.suppress(Exception):
                client.cancel(futures, force=True)
        with contextlib.suppress(Exception):
            client.close(timeout=self.close_timeout)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=self.close_timeout)


@EXECUTORS.register("local-cluster")
class LocalClusterExecutor(DaskExecutor):
    """A ``distributed.LocalCluster`` of ``min(jobs, tasks)`` worker processes, one thread each, on 127.0.0.1.

    Started for the run and closed at its end (its processes too, on an interrupt). No dashboard is
    served (connect to a scheduler of your own, ``tcp://...``, for one).
    """

    def _connect(self, tasks: int):
        from distributed import Client, LocalCluster

        # the scheduler's HTTP server (health, metrics) on a free loopback port: the default 8787 may be taken
        cluster = LocalCluster(n_workers=max(1, min(self.jobs, tasks)), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, preload=[__name__],
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=logging.ERROR)
        try:
            return Client(cluster), cluster
        except BaseException:
            with sigint_ignored(), contextlib.suppress(Exception):
                cluster.close(timeout=self.close_timeout)
            raise


@EXECUTORS.register("dask-scheduler")
class SchedulerExecutor(DaskExecutor):
    """A running Dask scheduler at ``address`` (``tcp://HOST:PORT``); its workers run the tasks.

    ``jobs`` has no effect (the cluster has the workers it has); the workers need this version of
    tpdynamics installed. The cluster keeps running after the run.
    """

    #: Seconds to reach the scheduler before :class:`~tpdynamics.errors.SchedulerUnreachableError`.
    connect_timeout = 10.0

    def __init__(self, jobs: int | None = None, threads: int | None = 1, *, address: str | None = None):
        super().__init__(1 if jobs is None else jobs, threads)
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise ValueError(f"address={address!r} must be the address of a running Dask scheduler, such as "
                             "tcp://127.0.0.1:8786.")
        self.address = address

    def _connect(self, tasks: int):
        from distributed import Client

        try:
            client = Client(self.address, timeout=self.connect_timeout)
        except (OSError, TimeoutError, ValueError) as err:
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {self.address} within {self.connect_timeout:g} s "
                f"({type(err).__name__}: {err}); check the address and that the scheduler runs (dask scheduler), "
                "or use local-cluster to start a cluster here.") from None
        with contextlib.suppress(Exception):
            self.jobs = max(1, sum(client.nthreads().values()))  # what the summary reports as jobs
        return client, None

    def __repr__(self) -> str:
        return f"SchedulerExecutor(address={self.address!r}, threads={self.threads})"
