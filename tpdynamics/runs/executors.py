"""Where tasks execute: a registry of executors (name -> class) with one small contract.

Contract of an :class:`Executor` (subclass, register with ``@EXECUTORS.register(name)``):

* ``__init__(jobs, threads)``: ``jobs`` workers (``None``: :func:`~tpdynamics.available_cores`),
  ``threads`` intra-op torch threads in each worker (the policy: 1; ``None`` leaves a process as it is);
* :meth:`Executor.run` ``(tasks, on_done)`` runs every task and calls ``on_done(index, record)`` *in the
  calling process* as each one finishes, in any order; a task whose function raises is a ``failed``
  :class:`~tpdynamics.runs.TaskRecord` (error and traceback), never an exception of ``run``;
* on ``KeyboardInterrupt`` (or any exception of ``on_done``) it cancels the tasks that have not
  started, stops its workers (no process is left behind) and re-raises, within about a second.

Registered: ``serial`` (this process, one task after the other) and ``processes`` (a local pool of
``spawn``-ed worker processes; a worker that dies, e.g. killed by the kernel, has its pool restarted
and the unfinished tasks resubmitted, at most :attr:`ProcessExecutor.max_restarts` times). A Dask
backend fits the same contract: submit :func:`execute` per task, gather as completed, cancel on
interrupt.
"""
from __future__ import annotations

import abc
import contextlib
import importlib
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..registry import Registry
from ..threads import available_cores, check_threads
from .store import Task, TaskRecord, TaskStatus, now, where

__all__ = ["Executor", "SerialExecutor", "ProcessExecutor", "EXECUTORS", "execute", "group_by_key", "resolve_function",
           "sigint_ignored", "sigint_deferred"]


def group_by_key(tasks, key) -> list[list[int]]:
    """Indices of ``tasks`` grouped by ``key(task)``, groups in the order of their first task.

    The executors that run several tasks as one unit (an ensemble of seeds, a reproduction batch) group with it;
    a task whose key is ``None`` is a group of its own.

    Parameters
    ----------
    tasks : sequence of Task
    key : callable
        ``key(task) -> str or None``; tasks with equal keys form one group.

    Returns
    -------
    list of list of int
    """
    groups: dict[str, list[int]] = {}
    order = []
    for index, task in enumerate(tasks):
        k = key(task)
        if k is None:
            order.append([index])
            continue
        if k not in groups:
            groups[k] = []
            order.append(groups[k])
        groups[k].append(index)
    return order


def resolve_function(path: str) -> Callable:
    """Import ``"package.module:function"`` (nested names with dots)."""
    module, _, qualname = path.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"task function {path!r} is not callable.")
    return obj


def execute(task: Task, threads: int | None = None) -> TaskRecord:
    """Run one task here and return its record (``failed`` with the traceback if the function raises).

    ``KeyboardInterrupt`` and ``SystemExit`` propagate: they stop the run, they are not a task's failure.
    The result is passed through the lossless codec, so what the caller gets is what the store will hold.
    """
    from . import codec  # the worker imports what it needs only

    host, pid = where()
    start = time.perf_counter()
    previous = None
    if threads is not None:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        result = codec.decode(codec.encode(resolve_function(task.function)(task.config)))
        return TaskRecord(task=task, status=TaskStatus.DONE, result=result, seconds=time.perf_counter() - start,
                          finished=now(), host=host, pid=pid)
    except Exception as err:  # one task's failure must not stop the others
        return TaskRecord(task=task, status=TaskStatus.FAILED, error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc(), seconds=time.perf_counter() - start, finished=now(),
                          host=host, pid=pid, exception=err)
    finally:
        if previous is not None:
            import torch

            torch.set_num_threads(previous)


def _execute_in_worker(task: Task) -> TaskRecord:
    record = execute(task)
    record.exception = None  # exceptions do not always pickle; the traceback text is kept
    return record


@contextlib.contextmanager
def sigint_ignored():
    """Ignore SIGINT inside the block (main thread only): clean-up after a first Ctrl-C is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_deferred():
    """Hold a SIGINT that arrives inside the block until its end, then raise ``KeyboardInterrupt`` (main thread).

    For steps that belong together, such as writing a task's result and counting it as kept.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class Executor(abc.ABC):
    """Base class of the executors (see the module docstring for the contract)."""

    name = "abstract"

    def __init__(self, jobs: int | None = None, threads: int | None = 1):
        if jobs is None:
            jobs = available_cores()
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs={jobs!r} must be an int >= 1 (the number of worker processes; 1 runs everything "
                             "in this process).")
        self.jobs = jobs
        self.threads = None if threads is None else check_threads(threads)

    @abc.abstractmethod
    def run(self, tasks: Sequence[Task], on_done: Callable[[int, TaskRecord], None]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(jobs={self.jobs}, threads={self.threads})"


EXECUTORS: Registry[type[Executor]] = Registry("executor", Executor, "executor")


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Every task in this process, in order (``jobs`` is ignored; ``threads=None`` keeps the process's setting)."""

    def __init__(self, jobs: int | None = 1, threads: int | None = None):
        super().__init__(1 if jobs is None else jobs, threads)

    def run(self, tasks, on_done):
        for index, task in enumerate(tasks):
            on_done(index, execute(task, self.threads))


def _worker_init(threads: int | None) -> None:
    # the terminal's Ctrl-C reaches the whole process group: the parent decides, the workers are terminated
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock is a multiprocessing RLock, a named semaphore in a spawned process: a worker
    # terminated while it exists leaves the resource tracker warning about a leak. A thread lock suffices.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@EXECUTORS.register("processes")
class ProcessExecutor(Executor):
    """A local pool of ``min(jobs, tasks)`` worker processes (``spawn`` start method, ``threads`` each).

    Workers ignore SIGINT; on an interrupt the pool's queued tasks are cancelled, its processes
    terminated (SIGTERM, then SIGKILL after :attr:`grace` seconds) and its manager thread joined (at most
    :attr:`manager_grace` seconds), so that the pool's queues and their named semaphores are released,
    before the interrupt is re-raised.
    """

    #: How often a pool whose worker died is restarted before the unfinished tasks are marked failed.
    max_restarts = 2
    #: Seconds a terminated worker gets before it is killed.
    grace = 2.0
    #: Seconds the pool's manager thread gets to end once its workers are gone (it releases the pool's queues).
    manager_grace = 1.0

    def run(self, tasks, on_done):
        pending = dict(enumerate(tasks))
        restarts = 0
        context = multiprocessing.get_context("spawn")
        while pending:
            pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(pending)), mp_context=context,
                                       initializer=_worker_init, initargs=(self.threads,))
            broken = None
            try:
                futures = {pool.submit(_execute_in_worker, task): index for index, task in pending.items()}
                waiting = set(futures)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures[future]
                        try:
                            record = future.result()
                        except BrokenProcessPool as err:
                            broken = err
                            continue
                        except Exception as err:  # e.g. a result that does not pickle
                            host, pid = where()
                            record = TaskRecord(task=pending[index], status=TaskStatus.FAILED,
                                                error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(),
                                                finished=now(), host=host, pid=pid)
                        del pending[index]
                        on_done(index, record)
            except BaseException:
                with sigint_ignored():
                    self._terminate(pool)
                raise
            pool.shutdown(wait=True)
            if broken is not None and pending:
                restarts += 1
                if restarts > self.max_restarts:
                    host, pid = where()
                    for index in sorted(pending):
                        on_done(index, TaskRecord(task=pending[index], status=TaskStatus.FAILED,
                                                  error=f"BrokenProcessPool: {broken} (after {self.max_restarts} "
                                                        "restarts of the pool)", finished=now(), host=host, pid=pid))
                    pending.clear()

    def _terminate(self, pool: ProcessPoolExecutor) -> None:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        # The pool's manager thread holds its call and result queues, whose locks are named semaphores registered
        # with multiprocessing's resource tracker; they are unlinked (and unregistered) only when that thread has
        # ended and the queues are freed. shutdown(wait=False) forgets the thread, so the shutdown(wait=True)
        # below would not join it: kept here, it is joined once the workers are gone. Otherwise a parent that
        # leaves at once after the interrupt (the CLI's os._exit) makes the tracker report them as leaked.
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        deadline = time.monotonic() + self.grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
        if manager is not None:
            # its workers are dead: it marks the pool broken, joins the queue's feeder thread and ends (bounded,
            # so that a stuck thread costs a warning at exit, never a hang)
            manager.join(self.manager_grace)
        with contextlib.suppress(Exception):
            pool.shutdown(wait=True)
