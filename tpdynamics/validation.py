"""Input checks done once, at the public boundary (public: ``analysis`` and the CLI use them too).

Each check returns the validated value or raises a ``ValueError`` / ``TypeError`` that names the
argument, the value received and how to fix it.
"""
from __future__ import annotations

import math
import warnings

import torch

from .errors import TPDynamicsWarning


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
