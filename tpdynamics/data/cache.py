"""The user cache folder of generated data sets, written atomically.

Folder: ``$TPDYNAMICS_CACHE`` if set, else ``$XDG_CACHE_HOME/tpdynamics``, else ``~/.cache/tpdynamics``.
A cached array file is written to a temporary name in the same folder and renamed
(:mod:`tpdynamics.runs.atomic`), so concurrent runs or a killed process never leave a truncated file;
two processes generating the same file at once both write the same bytes, the last rename wins.
"""
from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..runs.atomic import atomic_write_bytes

__all__ = ["cache_folder", "cached_arrays"]


def cache_folder() -> Path:
    """The cache folder (module docstring); not created here."""
    if os.environ.get("TPDYNAMICS_CACHE"):
        return Path(os.environ["TPDYNAMICS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tpdynamics"


def cached_arrays(name: str, build: Callable[[], dict]) -> tuple[dict, Path, bool]:
    """Arrays stored as ``<cache>/NAME.npz``: read if present and readable, else built, written, returned.

    Parameters
    ----------
    name : str
        File stem; it encodes everything the arrays depend on (e.g. ``mnist1d-seed42-n5000-v0.0.2``).
    build : callable
        Returns ``{name: ndarray}``.

    Returns
    -------
    arrays : dict of ndarray
    path : Path
    reused : bool
        Whether the file was read rather than built.
    """
    path = cache_folder() / f"{name}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}, path, True
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # a damaged cache file: rebuild it
            pass
    arrays = build()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return arrays, path, False
