"""JSON helpers shared by every result object and by the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch


def jsonable(value):
    """Turn tensors, numpy scalars/arrays, tuples and dtypes into JSON types; non-finite floats become ``None``.

    ``None`` is what JSON can carry for NaN and inf (a diverged run, an undefined ratio); readers should
    treat it as "no finite value".
    """
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, payload) -> str:
    """Return ``jsonable(payload)`` as indented JSON text, also written to ``path`` (parents created) unless None.

    The file is written atomically (:func:`tpdynamics.runs.atomic_write_text`: a temporary file in the same
    folder, fsync-ed, renamed over ``path``), so a killed process never leaves it truncated.
    """
    from .runs.atomic import atomic_write_text

    text = json.dumps(jsonable(payload), indent=2)
    if path is not None:
        atomic_write_text(Path(path), text + "\n")
    return text
