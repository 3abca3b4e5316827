"""Lossless JSON for task results, and the canonical form of a configuration that names a task.

:func:`encode` turns a result into JSON types such that :func:`decode` gives back an equal object,
so a result read from the store is the result the task returned (the summaries built from it give
the same numbers as a fresh run):

============================== ==========================================================
value                          JSON
============================== ==========================================================
finite float, int, str, bool,  itself
None
NaN, inf, -inf                 ``{"__float__": "nan"}`` (JSON has no non-finite numbers)
tuple                          ``{"__tuple__": [...]}``
dict with non-str keys         ``{"__dict__": [[key, value], ...]}``
``numpy.ndarray``              ``{"__ndarray__": {"dtype", "shape", "data"}}`` (complex: ``[re, im]`` pairs)
numpy scalar                   the Python scalar (``.item()``)
``torch.Tensor``               ``{"__tensor__": {"dtype", "shape", "data"}}`` (detached, on the CPU)
``torch.dtype``                ``{"__dtype__": "float64"}``
dataclass instance             ``{"__dataclass__": "module:QualName", "fields": {...}}``
============================== ==========================================================

Floats are written with ``repr`` precision (the shortest string that reads back to the same
double), so the round trip is exact. Dataclasses are rebuilt only from modules of this package
(``tpdynamics``, ``analysis``) unless :func:`decode` is given more prefixes.

:func:`canonical_json` is the text a configuration is hashed from: tuples as lists, keys sorted,
no whitespace; :func:`config_hash` adds the package version (a result computed by another version
is not reused).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math

import numpy as np
import torch

__all__ = ["encode", "decode", "canonical", "canonical_json", "config_hash", "dumps", "loads"]

_TAGS = ("__float__", "__tuple__", "__dict__", "__ndarray__", "__tensor__", "__dtype__", "__dataclass__")
#: Module prefixes :func:`decode` rebuilds dataclasses from.
TRUSTED_MODULES = ("tpdynamics", "analysis")


def _float(value: float):
    if math.isfinite(value):
        return value
    return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _array_data(flat: np.ndarray) -> list:
    if np.iscomplexobj(flat):
        return [[_float(float(z.real)), _float(float(z.imag))] for z in flat.tolist()]
    return [_float(v) if isinstance(v, float) else v for v in flat.tolist()]


def encode(value):
    """``value`` as JSON types that :func:`decode` turns back into an equal object (module docstring).

    Raises
    ------
    TypeError
        For a type the table does not list (name it in the message, so the task can return plain data).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, (list, tuple)):
        items = [encode(v) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in _TAGS):
            return {k: encode(v) for k, v in value.items()}
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape),
                                "data": _array_data(value.reshape(-1))}}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        return {"__tensor__": {"dtype": str(array.dtype).replace("torch.", ""), "shape": list(array.shape),
                               "data": _array_data(array.reshape(-1).numpy())}}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).replace("torch.", "")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot store a {type(value).__module__}.{type(value).__qualname__} in a task result; return "
                    "JSON types, tuples, numpy arrays, torch tensors or dataclasses of them.")


def _unfloat(x):
    if isinstance(x, dict):
        return float(x["__float__"])
    return x


def _import(path: str, trusted) -> type:
    module, _, qualname = path.partition(":")
    if not any(module == p or module.startswith(p + ".") for p in trusted):
        raise ValueError(f"refusing to rebuild {path!r} from a stored result: only classes of the modules "
                         f"{', '.join(trusted)} are rebuilt (pass trusted=... to decode to allow more).")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"{path!r} in a stored result is not a dataclass.")
    return obj


def decode(value, *, trusted=TRUSTED_MODULES):
    """The object :func:`encode` was given (see the module docstring); ``trusted``: dataclass module prefixes."""
    if isinstance(value, list):
        return [decode(v, trusted=trusted) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, body), = value.items()
        if tag == "__float__":
            return float(body)
        if tag == "__tuple__":
            return tuple(decode(v, trusted=trusted) for v in body)
        if tag == "__dict__":
            return {_hashable(decode(k, trusted=trusted)): decode(v, trusted=trusted) for k, v in body}
        if tag in ("__ndarray__", "__tensor__"):
            return _decode_array(tag, body)
        if tag == "__dtype__":
            return getattr(torch, body)
    if len(value) == 2 and "__dataclass__" in value and "fields" in value:
        cls = _import(value["__dataclass__"], trusted)
        fields = {k: decode(v, trusted=trusted) for k, v in value["fields"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in fields.items() if k in init})
        for k, v in fields.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
    return {k: decode(v, trusted=trusted) for k, v in value.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _decode_array(tag: str, body: dict):
    data = body["data"]
    if tag == "__ndarray__":
        dtype = np.dtype(body["dtype"])
    else:
        dtype = torch.empty(0, dtype=getattr(torch, body["dtype"])).numpy().dtype
    if dtype.kind == "c":
        flat = np.array([complex(_unfloat(re), _unfloat(im)) for re, im in data], dtype=dtype)
    else:
        flat = np.array([_unfloat(v) for v in data], dtype=dtype)
    array = flat.reshape(body["shape"])
    return array if tag == "__ndarray__" else torch.from_numpy(array.copy())


def dumps(value, *, indent: int | None = 1) -> str:
    """:func:`encode` then ``json.dumps`` (strict JSON: no NaN literals)."""
    return json.dumps(encode(value), indent=indent, allow_nan=False)


def loads(text: str, **kwargs):
    """``json.loads`` then :func:`decode`."""
    return decode(json.loads(text), **kwargs)


def canonical(value):
    """A configuration as plain JSON types for hashing: tuples as lists, dtypes as names, floats kept exactly.

    Raises
    ------
    TypeError
        For anything but JSON types, tuples, numpy scalars, dtypes and (str-keyed) dicts of them.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"configuration keys must be str, got {sorted(map(repr, value))}.")
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    raise TypeError(f"a task configuration holds plain data (JSON types, tuples); got a "
                    f"{type(value).__module__}.{type(value).__qualname__}: {value!r}.")


def canonical_json(value) -> str:
    """:func:`canonical` as compact JSON text with sorted keys: equal configurations give equal text."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(kind: str, config, version: str | None = None, *, digits: int = 20) -> str:
    """``sha256`` of the canonical ``{"kind", "config", "version"}``, as ``digits`` hex digits.

    ``version`` defaults to ``tpdynamics.__version__``: results of another version are not reused.
    """
    if version is None:
        from .._version import __version__ as version
    text = canonical_json({"kind": kind, "config": config, "version": version})
    return hashlib.sha256(text.encode()).hexdigest()[:digits]
