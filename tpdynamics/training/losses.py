"""Output losses for classification and the target-propagation output target each one defines.

Registry :data:`OUTPUT_LOSSES` (name -> class):

================= ======================================== ============================ ==========================
name              per-sample loss ``L(h_L, y)``             ``dL/dh_L``                  reported value
================= ======================================== ============================ ==========================
``mse``           ``1/2 ||h_L - y||^2`` (eq. 4.40), ``y``   ``h_L - y = e_L``            ``||h_L - y||^2`` (the
                  one-hot                                                                thesis's "MSE")
``cross-entropy`` ``-log softmax(h_L)_c`` (``h_L`` the      ``softmax(h_L) - y``         ``-log softmax(h_L)_c``
                  logits, ``c`` the class, ``y`` one-hot)
================= ======================================== ============================ ==========================

The output target of target propagation is one gradient step on the output loss (eq. 4.4 generalised
from the L2 loss of eq. 4.40 to any differentiable loss)::

    hat h_L = h_L - eta_hat * dL/dh_L

For the cross-entropy this is ``hat h_L = h_L - eta_hat (softmax(h_L) - y)``: the logits of the true
class move up by ``eta_hat (1 - p_c)``, the others down by ``eta_hat p_k``.

How the rules receive it (no rule changes): every rule of :mod:`tpdynamics.training.rules` forms its
output error as ``e_L = h_L - y`` from the label it is given, and its output target as ``h_L - eta_hat
e_L`` (BP: ``delta_L = D_{s_L} e_L``). :meth:`OutputLoss.rule_label` returns the label ``y' = h_L - dL/dh_L``
for which ``e_L = dL/dh_L`` exactly, with ``h_L`` the rule's own training output; with it every rule
trains on the gradient of the chosen loss (for BP: SGD on the mean cross-entropy over the batch). For
``mse`` ``y' = y``.
"""
from __future__ import annotations

import torch

from ..registry import Registry

__all__ = ["OUTPUT_LOSSES", "OutputLoss", "MeanSquaredError", "CrossEntropy", "loss_output_target",
           "get_output_loss"]


class OutputLoss:
    """An output loss of a classifier: per-sample value, gradient with respect to ``h_L``, the rules' label."""

    name = "abstract"
    #: What :meth:`value` reports, for JSON and figures.
    description = ""

    def value(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample reported loss, shape ``(B,)``; ``output`` ``h_L`` and ``target`` one-hot ``y``, shape ``(B, K)``."""
        raise NotImplementedError

    def gradient(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``dL/dh_L`` per sample, shape ``(B, K)``."""
        raise NotImplementedError

    def rule_label(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The label ``y' = h_L - dL/dh_L`` that makes a rule's ``e_L = h_L - y'`` equal ``dL/dh_L`` (module docstring)."""
        return output - self.gradient(output, target)

    def mean(self, output: torch.Tensor, target: torch.Tensor) -> float:
        """Mean of :meth:`value` over the samples."""
        return float(self.value(output, target).mean())


OUTPUT_LOSSES: Registry[type[OutputLoss]] = Registry("output loss", OutputLoss, "loss")


@OUTPUT_LOSSES.register("mse")
class MeanSquaredError(OutputLoss):
    """The thesis's L2 loss on one-hot targets: ``L = 1/2 ||h_L - y||^2``, reported as ``||h_L - y||^2``."""

    description = "mean over samples of ||h_L - y||^2, y one-hot"

    def value(self, output, target):
        return (output - target).square().sum(-1)

    def gradient(self, output, target):
        return output - target

    def rule_label(self, output, target):
        return target  # exactly the thesis's rules, bit for bit


@OUTPUT_LOSSES.register("cross-entropy")
class CrossEntropy(OutputLoss):
    """Softmax cross-entropy on the logits ``h_L``: ``L = -log softmax(h_L)_c``, ``dL/dh_L = softmax(h_L) - y``."""

    description = "mean over samples of -log softmax(h_L)_c"

    def value(self, output, target):
        return -(target * torch.log_softmax(output, dim=-1)).sum(-1)

    def gradient(self, output, target):
        return torch.softmax(output, dim=-1) - target


def get_output_loss(loss) -> OutputLoss:
    """An :class:`OutputLoss` instance from a registered name (``'mse'``, ``'cross-entropy'``), class or instance."""
    if isinstance(loss, OutputLoss):
        return loss
    return OUTPUT_LOSSES.create(loss)


def loss_output_target(loss, output: torch.Tensor, target: torch.Tensor, eta_hat: float) -> torch.Tensor:
    """``hat h_L = h_L - eta_hat dL/dh_L`` (module docstring), shape ``(B, K)``."""
    return output - eta_hat * get_output_loss(loss).gradient(output, target)
