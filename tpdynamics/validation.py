"""Input checks done once, at the public boundary (public: ``analysis`` and the CLI use them too).

Each check returns the validated value or raises a ``ValueError`` / ``TypeError`` that names the
argument, the value received and how to fix it.
"""
from __future__ import annotations

import difflib
import math
import os
import warnings

import torch

from .errors import MemoryLimitError, TPDynamicsWarning


def check_mu(mu) -> float:
    """Validate the mixing coefficient ``mu`` of eq. (6.1).

    The thesis uses ``0 < mu < 0.5``; ``[0, 1)`` is accepted, above 0.5 warns.
    """
    if isinstance(mu, bool) or not isinstance(mu, (int, float)):
        raise TypeError(f"mu must be a real number in [0, 1), got {type(mu).__name__} {mu!r}.")
    mu = float(mu)
    if not math.isfinite(mu) or not 0.0 <= mu < 1.0:
        raise ValueError(
            f"mu={mu!r} is outside [0, 1). mu mixes forward (1 - mu) and feedback (mu) input in "
            "eq. (6.1); the thesis uses 0 < mu < 0.5. Pass e.g. mu=0.2."
        )
    if mu > 0.5:
        warnings.warn(
            f"mu={mu} > 0.5: the feedback outweighs the forward input; the thesis assumes mu < 0.5 "
            "and its first-order results (eq. 6.16) hold only for small mu.",
            TPDynamicsWarning,
            stacklevel=3,
        )
    return mu


def check_positive(name: str, value, *, allow_zero: bool = False, hint: str = "") -> float:
    """Return ``float(value)`` if it is a finite number > 0 (or >= 0), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be finite and {bound}.{(' ' + hint) if hint else ''}")
    return value


def check_int(name: str, value, *, minimum: int = 0) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}.")
    return value


def check_tensor(name: str, x, *, ndim: int | None = None, size: int | None = None,
                 dtype: torch.dtype | None = None, batch: int | None = None) -> torch.Tensor:
    """Check a batch-first tensor input: type, rank, feature size, dtype, finiteness.

    Parameters
    ----------
    name : str
        Argument name used in messages.
    ndim : int, optional
        Required number of dimensions (2 for batch-first ``(B, n)`` inputs).
    size : int, optional
        Required size of the last dimension.
    dtype : torch.dtype, optional
        Required dtype (the network's).
    batch : int, optional
        Required size of the first dimension.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if ndim is not None and x.ndim != ndim:
        hint = f" Use {name}.unsqueeze(0) for a single sample." if ndim == 2 and x.ndim == 1 else ""
        raise ValueError(f"{name} must have {ndim} dimensions (batch-first), got shape {tuple(x.shape)}.{hint}")
    if size is not None and x.shape[-1] != size:
        raise ValueError(f"{name} has {x.shape[-1]} features in its last dimension, expected {size} "
                         f"(shape {tuple(x.shape)}).")
    if ndim == 2 and x.shape[0] == 0:  # torch reductions fail on empty batches with an unrelated message
        raise ValueError(f"{name} has an empty batch (shape {tuple(x.shape)}); pass at least one sample.")
    if batch is not None and x.shape[0] != batch:
        raise ValueError(f"{name} has batch size {x.shape[0]}, expected {batch} to match the input h0.")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype}, the network uses {dtype}; convert with {name}.to({dtype}).")
    if not torch.isfinite(x).all():
        bad = "NaN" if torch.isnan(x).any() else "inf"
        raise ValueError(f"{name} contains {bad} values; inputs must be finite.")
    return x


def check_sample(sample, batch: int, name: str = "sample") -> int:
    """Return ``sample`` if it is an int indexing a batch of ``batch`` samples, else raise ``ValueError``."""
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample < batch:
        raise ValueError(f"{name}={sample!r} must be an int in 0..{batch - 1} (the batch has {batch} sample(s)).")
    return sample


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or ``None`` where it cannot be read.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux: free memory plus reclaimable caches), else
    ``os.sysconf`` free physical pages; capped by a cgroup v2 limit (``memory.max`` minus
    ``memory.current``) when the process runs in a container.
    """
    available = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as used:
            text = limit.read().strip()
            if text != "max":
                available = min(available, max(int(text) - int(used.read().strip()), 0))
    except (OSError, ValueError):
        pass
    return available


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check_memory(what: str, nbytes: float, *, hint: str = "") -> None:
    """Raise :class:`~tpdynamics.errors.MemoryLimitError` if ``nbytes`` exceed :func:`available_memory`.

    Called before a large allocation whose size the caller chose (layer sizes, numbers of cases or
    samples), so that a size beyond the machine fails at once with the size and the limit instead
    of an allocator error after minutes. ``what`` says what needs the memory and why, e.g.
    ``"the weights of layer_sizes=[100000, 100000]"``; the estimate is of the largest live data, not
    of temporaries, so it errs on the permissive side.
    """
    limit = available_memory()
    if limit is None or nbytes <= limit:
        return
    raise MemoryLimitError(f"{what} would take about {format_bytes(nbytes)}, but only {format_bytes(limit)} of "
                           f"memory is available on this machine.{(' ' + hint) if hint else ''}")


def unknown_names_message(owner: str, kind: str, unknown, valid) -> str:
    """``"method 'bp' got an unknown hyper-parameter etaa (did you mean eta?); it takes: eta, ..."``."""
    unknown, valid = sorted(unknown), list(valid)
    guesses = [g for name in unknown for g in difflib.get_close_matches(name, valid, n=1)]
    hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
    names = f"unknown {kind}s {', '.join(unknown)}" if len(unknown) > 1 else f"an unknown {kind} {unknown[0]}"
    return f"{owner} got {names}{hint}; it takes: {', '.join(valid)}."


def check_device(device, name: str = "device") -> torch.device:
    """``torch.device(device)`` (``None``: ``cpu``), with a ``ValueError`` for a bad name or an unavailable CUDA device."""
    if device is None:
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name}={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={str(device)!r} needs CUDA, which this torch build / machine does not have; "
                         f"use {name}='cpu'.")
    return device


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same place (``cuda`` and ``cuda:0`` are, when 0 is the current device)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)
