"""The loss-scale convention of the discrete learning rules, and the unit of the reported losses.

The thesis uses two scalings of the same L2 loss:

* ``"half"`` (chapter 4, eq. 4.40): ``L = 1/2 ||h_L - y||^2`` per sample, so the output error is
  ``e_L = dL/dh_L = h_L - y`` (eq. 4.41) and a layer's local loss is ``1/2 ||h_i - hat h_i||^2``
  (eq. 4.12) with gradient ``D_{s_i} (h_i - hat h_i) h_{i-1}^T``. The continuous models of chapter 6
  and the theory of chapter 4 use this scaling.
* ``"thesis"`` (chapter 5, eqs. 5.36 and 5.50, and the thesis's own toolbox PyProp, the code its
  figures came from): ``L = sum_b ||h_L^(b) - y^(b)||^2`` and local losses ``||h_i - hat h_i||^2``
  without the 1/2, so every derivative carries a factor 2:

  .. math::

     e_L = 2 (h_L - y), \\qquad \\hat h_L = h_L - \\hat\\eta\\, 2 (h_L - y), \\qquad
     \\Delta W_i = -\\frac{\\eta_i}{B} \\sum_b 2 D_{s_i} (h_i - \\hat h_i) h_{i-1}^T,

  and backpropagation starts from ``delta_L = 2 D_{s_L} (h_L - y)``. The printed learning rates of
  chapter 5 were tuned with these factors: with the same ``eta`` and ``eta_hat`` a TP step is 4x
  (output target 2x, local gradient 2x) and a BP step 2x the ``"half"`` step. The backward weights
  (Algs A.8 and A.9) carry no factor in either convention (the toolbox's inverse-loss update has none).

Every rule takes ``loss_convention`` (default ``"half"``, the algorithms as chapter 4 writes them);
the thesis presets (:data:`~tpdynamics.training.THESIS_PRESETS`) and the runner with a preset use
``"thesis"``. The registry :data:`LOSS_CONVENTIONS` maps each name to its class.

Reported losses (:func:`~tpdynamics.training.mean_squared_error`, the runner's curves) are in the unit
the thesis's figures plot, :data:`LOSS_UNIT`: the mean over samples *and* outputs of ``(h_L - y)^2``,
what ``torch.nn.MSELoss`` (and ``torch.nn.functional.mse_loss``) computes.
"""
from __future__ import annotations

import torch

from ..registry import Registry

#: The unit of every loss the runner and the reproduction report (named in their JSON as ``loss_unit``).
LOSS_UNIT = "MSE: mean over samples and outputs of (h_L - y)^2 (torch.nn.MSELoss)"


class LossConvention:
    """One scaling of the L2 loss: the factor ``c`` of ``e_L = c (h_L - y)`` and of the local gradients.

    Subclasses set :attr:`factor` and :attr:`loss`; they are registered in :data:`LOSS_CONVENTIONS`.
    """

    name = "abstract"
    #: ``c``: the factor on the output error and on the local-loss gradients of the TP rules.
    factor = 1.0
    #: The loss whose gradient the rules follow, in words.
    loss = ""

    def output_error(self, h_output: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``e_L = c (h_L - y)``, shape ``(B, n_L)``."""
        return self.factor * (h_output - label)

    def describe(self) -> dict:
        """``{"name", "factor", "loss"}`` for the JSON of a run."""
        return {"name": self.name, "factor": self.factor, "loss": self.loss}


LOSS_CONVENTIONS: Registry[type[LossConvention]] = Registry("loss convention", LossConvention, "loss_convention")


@LOSS_CONVENTIONS.register("half")
class HalfSquaredError(LossConvention):
    """``L = 1/2 ||h_L - y||^2`` (eq. 4.40): ``e_L = h_L - y``, local loss ``1/2 ||h_i - hat h_i||^2``."""

    factor = 1.0
    loss = "1/2 ||h_L - y||^2 per sample (eq. 4.40); local losses 1/2 ||h_i - hat h_i||^2 (eq. 4.12)"


@LOSS_CONVENTIONS.register("thesis")
class SquaredError(LossConvention):
    """``L = ||h_L - y||^2`` (eqs. 5.36, 5.50; the toolbox): ``e_L = 2 (h_L - y)``, local loss ``||h_i - hat h_i||^2``."""

    factor = 2.0
    loss = ("||h_L - y||^2 per sample (eqs. 5.36, 5.50, the thesis's toolbox); local losses ||h_i - hat h_i||^2; "
            "backward weights without the factor 2")


def get_loss_convention(name) -> LossConvention:
    """An instance of the convention ``name`` (``"thesis"`` or ``"half"``) or of a :class:`LossConvention` subclass.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    return LOSS_CONVENTIONS.create(name)
