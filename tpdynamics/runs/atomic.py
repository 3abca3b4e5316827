"""Atomic file writes: a file under its final name is either the old one or the whole new one.

The bytes go to a temporary file in the destination's folder (same file system, so the rename is
atomic), which is flushed and ``fsync``-ed, then renamed over the destination with ``os.replace``;
the folder is ``fsync``-ed so the rename itself survives a crash. A process killed mid-write
(``kill -9``, power loss) leaves at most a stray ``.NAME.*.tmp`` file, never a truncated ``NAME``.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_path", "TEMPORARY_SUFFIX"]

#: Suffix of the temporary files (``.NAME.<random>.tmp``); :class:`~tpdynamics.runs.ResultStore` ignores them.
TEMPORARY_SUFFIX = ".tmp"


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform can open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path next to ``path``; on success it is renamed to ``path``.

    For writers that want a file name (``matplotlib``'s ``savefig``, ``csv``): write to the yielded
    path; it is fsync-ed and renamed when the block ends without an exception, removed otherwise.
    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # mode 0o666 so that the umask applies, as for a plain open() (mkstemp would give 0o600)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (module docstring); parents created; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (module docstring); parents created; return the path."""
    return atomic_write_bytes(path, text.encode(encoding))
