"""Tasks and the result store: one JSON file per task, named by the hash of its full configuration.

A :class:`Task` is a unit of work that some process can run: a top-level function
(``"package.module:function"``, called as ``function(config)``) and the configuration that fully
determines its result. Its :attr:`Task.key` is :func:`~tpdynamics.runs.codec.config_hash` of
``(kind, config, package version)``. A :class:`ResultStore` keeps one file per task::

    STORE/<key>.json = {"format": "tpdynamics-task/1", "key", "kind", "label", "function", "version",
                        "config", "status": "done" | "failed", "result", "error", "traceback",
                        "seconds", "finished", "host", "pid"}

written atomically (:mod:`~tpdynamics.runs.atomic`) by the process that collects the results, so a
file under its final name is always whole. ``result`` is :func:`~tpdynamics.runs.codec.encode`-d
(lossless); ``config`` is the canonical configuration. A stored task is *reused* when its file
exists, says ``done``, and its stored configuration and version equal the task's; a failed task is
run again.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import codec
from .atomic import TEMPORARY_SUFFIX, atomic_write_text

__all__ = ["Task", "TaskRecord", "ResultStore", "FORMAT"]

FORMAT = "tpdynamics-task/1"
_log = logging.getLogger("tpdynamics.runs")


@dataclass(frozen=True, eq=False)
class Task:
    """One unit of work.

    Attributes
    ----------
    function : str
        ``"package.module:function"`` of a top-level function called as ``function(config)`` (it must
        be importable in a worker process) and returning what :func:`~tpdynamics.runs.codec.encode` takes.
    config : dict
        Everything that determines the result (plain data: JSON types and tuples).
    kind : str
        The family of tasks (``"reproduce"``, ``"train"``, ``"scan"``, ...); part of the key.
    label : str
        Human-readable name for progress bars and reports (not part of the key).
    """

    function: str
    config: dict
    kind: str = "task"
    label: str = ""

    def __post_init__(self):
        if not isinstance(self.function, str) or ":" not in self.function:
            raise ValueError(f"function={self.function!r} must be 'package.module:function' (a top-level "
                             "function that worker processes can import).")
        if not isinstance(self.config, dict):
            raise TypeError(f"config must be a dict, got {type(self.config).__name__}.")
        # computed once: also checks that the configuration is plain data
        object.__setattr__(self, "_key", codec.config_hash(self.kind, self.config))

    @property
    def key(self) -> str:
        """Hash of ``(kind, canonical config, package version)`` (20 hex digits): the store's file name."""
        return self._key

    def __repr__(self) -> str:
        return f"Task({self.kind}:{self.label or self.function}, key={self.key})"


@dataclass
class TaskRecord:
    """A finished task: its result or its error.

    Attributes
    ----------
    task : Task
    status : {'done', 'failed'}
    result : object
        What the task's function returned (decoded; ``None`` for a failed task).
    error : str or None
        ``"ExceptionType: message"`` of a failed task.
    traceback : str or None
    seconds : float
        Time the function ran.
    finished : str
        ISO time (UTC) the task finished.
    host, pid
        Where it ran.
    reused : bool
        True when read from the store instead of run (not stored).
    exception : BaseException or None
        The exception itself, when the task failed in this process (not stored).
    """

    task: Task
    status: str
    result: object = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    finished: str = ""
    host: str = ""
    pid: int = 0
    reused: bool = False
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict:
        """The stored JSON object (module docstring)."""
        from .._version import __version__

        return {"format": FORMAT, "key": self.task.key, "kind": self.task.kind, "label": self.task.label,
                "function": self.task.function, "version": __version__, "config": codec.canonical(self.task.config),
                "status": self.status, "result": codec.encode(self.result), "error": self.error,
                "traceback": self.traceback, "seconds": self.seconds, "finished": self.finished,
                "host": self.host, "pid": self.pid}


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def where() -> tuple[str, int]:
    """``(host name, process id)`` of this process."""
    return socket.gethostname(), os.getpid()


class ResultStore:
    """A folder of task results, one ``<key>.json`` per task (module docstring).

    Parameters
    ----------
    root : path
        The folder; created on the first write.
    """

    def __init__(self, root):
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise ValueError(f"store={str(root)!r} is a file, not a folder; pass a folder (it is created if "
                             "missing).")
        self.root = root

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    def path(self, task_or_key) -> Path:
        """The file of a task (or of a key)."""
        key = task_or_key.key if isinstance(task_or_key, Task) else str(task_or_key)
        return self.root / f"{key}.json"

    def _read(self, path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:  # written atomically, so only a hand edit gets here
            _log.warning("ignoring unreadable task file %s: %s", path, err)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            _log.warning("ignoring %s: not a tpdynamics task file", path)
            return None
        return data

    def get(self, task: Task) -> TaskRecord | None:
        """The stored record of ``task``, or ``None`` when absent or stored for another configuration/version."""
        from .._version import __version__

        path = self.path(task)
        if not path.is_file():
            return None
        data = self._read(path)
        if data is None:
            return None
        if data.get("version") != __version__ or data.get("config") != codec.canonical(task.config):
            _log.info("stored %s does not match the task's configuration or version; not reused", path)
            return None
        return self._record(task, data)

    @staticmethod
    def _record(task: Task, data: dict) -> TaskRecord:
        return TaskRecord(task=task, status=data["status"], result=codec.decode(data.get("result")),
                          error=data.get("error"), traceback=data.get("traceback"),
                          seconds=float(data.get("seconds") or 0.0), finished=data.get("finished", ""),
                          host=data.get("host", ""), pid=int(data.get("pid") or 0), reused=True)

    def put(self, record: TaskRecord) -> Path:
        """Write ``record`` atomically under its task's key; return the path."""
        text = json.dumps(record.to_dict(), indent=1, allow_nan=False)
        return atomic_write_text(self.path(record.task), text + "\n")

    def discard(self, task: Task) -> bool:
        """Remove a task's file; return whether there was one."""
        try:
            self.path(task).unlink()
            return True
        except FileNotFoundError:
            return False

    def records(self, kind: str | None = None) -> list[TaskRecord]:
        """Every readable record in the store (of ``kind`` if given), ordered by label.

        The tasks are rebuilt from the stored ``function``, ``kind``, ``label`` and ``config``; a record of
        another package version keeps its stored key, which differs from the rebuilt task's.
        """
        out = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*.json")):
            if path.name.endswith(TEMPORARY_SUFFIX):
                continue
            data = self._read(path)
            if data is None or (kind is not None and data.get("kind") != kind):
                continue
            task = Task(function=data["function"], config=data["config"], kind=data["kind"], label=data["label"])
            out.append(self._record(task, data))
        return sorted(out, key=lambda r: (r.task.label, r.finished))

    def status(self, tasks) -> dict[str, list[Task]]:
        """``{"done": [...], "failed": [...], "pending": [...]}``: where each of ``tasks`` stands in the store."""
        out = {"done": [], "failed": [], "pending": []}
        for task in tasks:
            record = self.get(task)
            out["pending" if record is None else ("done" if record.ok else "failed")].append(task)
        return out
