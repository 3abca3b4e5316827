"""How many intra-op threads torch uses: the package's policy, and the switches to change it.

Policy (measured by ``benchmarks/bench_threads.py``; table in the README):

* **worker processes of a pool** (:mod:`tpdynamics.runs`) use **one** thread each: the pool already
  spreads the work over the cores, and more threads per worker oversubscribe them;
* **the main process** uses :func:`default_threads` of the problem: **one** thread for the package's
  usual sizes (layers narrower than :data:`WIDE_LAYER`; the thesis's networks are 6 to 64 units
  wide). A step there is a few microsecond-scale matrix products, and torch's default (one thread per
  core) spends more time waking and synchronising its OpenMP threads than computing; when another
  process is busy on the same cores the waiting threads stall each other (on 2 shared cores: an
  equilibrium of 4 x 64 units took 1.88 s with 2 threads and 0.074 s with one, issue 10). From
  :data:`WIDE_LAYER` units on, the products are large enough to share, and the default is the
  number of cores that are not busy right now (``/proc/loadavg``'s count of runnable processes),
  at least one and at most :data:`MAX_AUTO_THREADS`.

Nothing changes torch's setting on import: the CLI applies the policy (``--threads N`` overrides it),
and Python users call :func:`set_threads` or use :func:`thread_limit`::

    import tpdynamics as tp
    tp.set_threads(1)                  # this process, from now on
    with tp.thread_limit(4):           # a block, then the previous count again
        tp.equilibrium(dynamics)
    tp.set_threads(tp.default_threads(width=512))
"""
from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["WIDE_LAYER", "MAX_AUTO_THREADS", "available_cores", "busy_cores", "default_threads", "set_threads",
           "thread_limit", "get_threads", "check_threads"]

#: Layer width from which :func:`default_threads` gives more than one thread.
WIDE_LAYER = 256
#: Upper bound of the automatic thread count (matrix products of this package's sizes gain little beyond).
MAX_AUTO_THREADS = 8


def available_cores() -> int:
    """Cores this process may run on (``len(os.sched_getaffinity(0))``; ``os.cpu_count()`` where unsupported)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _own_running_threads() -> int:
    """Threads of this process that are runnable now (at least 1: the one asking), from ``/proc/self/task``."""
    count = 0
    try:
        for task in os.scandir("/proc/self/task"):
            try:
                with open(os.path.join(task.path, "stat")) as handle:
                    # "pid (comm) STATE ...": comm may hold spaces, so read the state after the last ')'
                    count += handle.read().rpartition(")")[2].split()[0] == "R"
            except (OSError, IndexError):
                continue
    except OSError:
        pass
    return max(1, count)


def busy_cores() -> int:
    """Threads running right now outside this process, from ``/proc/loadavg`` (0 where it cannot be read).

    The fourth field of ``/proc/loadavg`` counts the runnable scheduling entities (threads) at this
    instant, this process's included; unlike the load averages it does not lag behind a process that
    just started. This process's own runnable threads (the caller, and torch's intra-op workers that
    still spin after a parallel region) are subtracted, so they do not count as another process's work.
    """
    try:
        with open("/proc/loadavg") as handle:
            running = int(handle.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - _own_running_threads())


def check_threads(threads, *, name: str = "threads") -> int:
    """``threads`` as an int >= 1, else a ``ValueError`` / ``TypeError`` naming ``name`` and the fix."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"{name} must be an int >= 1 (intra-op torch threads), got {type(threads).__name__} "
                        f"{threads!r}.")
    if threads < 1:
        raise ValueError(f"{name}={threads} must be >= 1 (intra-op torch threads); use 1 for this package's "
                         "usual sizes.")
    return threads


def default_threads(width: int | None = None) -> int:
    """The policy's thread count for a problem whose widest layer has ``width`` units (module docstring).

    Parameters
    ----------
    width : int, optional
        Widest layer (or matrix side) of the work; ``None``: the package's usual small sizes.

    Returns
    -------
    int
        1 below :data:`WIDE_LAYER`; else the idle cores now, clipped to ``[1, MAX_AUTO_THREADS]``.
    """
    if width is None or width < WIDE_LAYER:
        return 1
    idle = available_cores() - busy_cores()
    return max(1, min(idle, MAX_AUTO_THREADS))


def get_threads() -> int:
    """torch's current intra-op thread count (``torch.get_num_threads()``)."""
    return torch.get_num_threads()


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads of this process to ``threads``; return the previous count.

    Raises
    ------
    ValueError, TypeError
        For anything but an int >= 1.
    """
    threads = check_threads(threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


@contextlib.contextmanager
def thread_limit(threads: int):
    """Context manager: ``threads`` intra-op threads inside the block, the previous count after it."""
    previous = set_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)
