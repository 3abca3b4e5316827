"""The output loss and the teaching signal ``g_L = h_L^trgt`` on the output layer (eqs. 6.3, 6.10).

The L2 loss is ``L(h_L, y) = 1/2 ||h_L - y||^2`` per sample (eq. 4.40), so the output
error is ``e_L = dL/dh_L = h_L - y`` (eq. 4.41).

Three teaching signals:

* :class:`FreeTarget` — ``h_L^trgt = h_L``: no teaching signal (the free phase, eq. 6.29);
* :class:`FixedTarget` — ``h_L^trgt`` a given tensor;
* :class:`LossTarget` — ``h_L^trgt = h_L - eta_hat e_L(h_L)`` (eqs. 6.10-6.11) with ``e_L``
  evaluated at the current output, as the thesis writes it (``e_L = dL/dh*_L``). This
  self-consistent form is what makes the first-order prediction of eq. (6.16) exact to
  first order in ``eta_hat`` for every ``mu``; a target frozen at the forward-pass output
  would change the layer factor of the output layer from ``mu/(1-mu)`` to ``mu``.

Each signal gives its value and its Jacobian ``d h_L^trgt / d h_L = c I`` as the scalar ``c``.
"""
from __future__ import annotations

import abc
import torch

from .validation import check_positive, check_tensor


def l2_loss(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 ||h - y||^2`` per sample, shape ``(B,)`` (eq. 4.40)."""
    return 0.5 * ((h - y) ** 2).sum(-1)


def l2_loss_gradient(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``e_L = dL/dh = h - y``, shape ``(B, n_L)`` (eq. 4.41)."""
    return h - y


class TeachingSignal(abc.ABC):
    """Abstract teaching signal ``h_L^trgt(h_L)``; batch-first."""

    name = "abstract"
    #: ``c`` in ``d h_L^trgt / d h_L = c I``.
    jacobian_scale: float = 0.0

    @abc.abstractmethod
    def value(self, h_output: torch.Tensor) -> torch.Tensor:
        """``h_L^trgt``, shape ``(B, n_L)``."""
        raise NotImplementedError

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Input tensors the signal depends on (for gradients, e.g. through ``odeint_adjoint``)."""
        return ()

    def select(self, index) -> "TeachingSignal":
        """The same signal restricted to the samples ``index`` of the batch."""
        return self

    def validate(self, batch: int, size: int, dtype: torch.dtype) -> None:
        for name, t in zip(self._tensor_names, self.tensors()):
            check_tensor(name, t, ndim=2, size=size, dtype=dtype, batch=batch)

    _tensor_names: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {"kind": self.name}


class FreeTarget(TeachingSignal):
    """``h_L^trgt = h_L``: the output is short-circuited to its own target (no teaching signal)."""

    name = "free"
    jacobian_scale = 1.0

    def value(self, h_output):
        return h_output


class FixedTarget(TeachingSignal):
    """A given target ``h_L^trgt`` of shape ``(B, n_L)``, independent of the state."""

    name = "fixed"
    jacobian_scale = 0.0
    _tensor_names = ("target",)

    def __init__(self, target: torch.Tensor):
        self.target = target

    def value(self, h_output):
        return self.target.expand_as(h_output)

    def tensors(self):
        return (self.target,)

    def select(self, index):
        return FixedTarget(self.target[index])


class LossTarget(TeachingSignal):
    """``h_L^trgt = h_L - eta_hat (h_L - y)``, the L2 target of eq. (6.10) for a label ``y``.

    Parameters
    ----------
    label : Tensor, shape (B, n_L)
        Desired output ``y``.
    eta_hat : float
        Output target step size ``eta_hat > 0``.
    """

    name = "loss"
    _tensor_names = ("label",)

    def __init__(self, label: torch.Tensor, eta_hat: float):
        self.label = label
        self.eta_hat = check_positive("eta_hat", eta_hat, hint="The thesis uses eta_hat = 0.1.")

    @property
    def jacobian_scale(self):
        return 1.0 - self.eta_hat

    def value(self, h_output):
        return h_output - self.eta_hat * l2_loss_gradient(h_output, self.label)

    def tensors(self):
        return (self.label,)

    def select(self, index):
        return LossTarget(self.label[index], self.eta_hat)

    def describe(self):
        return {"kind": self.name, "eta_hat": self.eta_hat}


def make_teaching_signal(*, target=None, label=None, eta_hat=None, teaching=None) -> TeachingSignal:
    """Turn the user-facing keywords into one :class:`TeachingSignal`.

    Exactly one of: nothing (free), ``target``, ``label`` with ``eta_hat``, or ``teaching``.
    """
    given = [name for name, v in (("target", target), ("label", label), ("teaching", teaching)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"pass only one of target, label (with eta_hat) or teaching; got {', '.join(given)}.")
    if eta_hat is not None and label is None:
        raise ValueError("eta_hat is the output target step of eq. (6.10) and needs a label; pass label=y.")
    if teaching is not None:
        if not isinstance(teaching, TeachingSignal):
            raise TypeError(f"teaching must be a TeachingSignal, got {type(teaching).__name__}.")
        return teaching
    if target is not None:
        return FixedTarget(target)
    if label is not None:
        if eta_hat is None:
            raise ValueError("label needs eta_hat, the output target step of eq. (6.10), e.g. eta_hat=0.1.")
        return LossTarget(label, eta_hat)
    return FreeTarget()
