"""Output targets and the backward propagation of targets (eqs. 3.8, 3.15, 4.2, 4.4, 4.101).

Every target-based learning rule and every diagnostic uses these two functions, so that the
targets a rule trains on are exactly the targets the diagnostics analyse.

Indexing follows the thesis: ``activations[i] = h_i`` and ``targets[i] = hat h_i`` for
``i = 0..L``; the feedback mapping ``g_i`` (``h_{i+1} -> h_i``) is owned by layer ``i + 1``
(``network.layer(i + 1).feedback_forward``).
"""
from __future__ import annotations

import torch

from ..network import LayeredNetwork
from .loss import get_loss_convention


def output_target(h_output: torch.Tensor, label: torch.Tensor, eta_hat: float, *,
                  loss_convention="half") -> torch.Tensor:
    """``hat h_L = h_L - eta_hat e_L`` (eqs. 4.4, 4.5) with the output error ``e_L`` of the loss convention.

    ``'half'`` (eqs. 4.40-4.41): ``e_L = h_L - y``; ``'thesis'`` (eqs. 5.36, 5.50 and the toolbox):
    ``e_L = 2 (h_L - y)`` (:mod:`tpdynamics.training.loss`).

    Parameters
    ----------
    h_output : Tensor, shape (B, n_L)
        Output ``h_L`` of the forward pass.
    label : Tensor, shape (B, n_L)
        Desired output ``y``.
    eta_hat : float
        Output target step size.
    loss_convention : {'half', 'thesis'}

    Returns
    -------
    Tensor, shape (B, n_L)
    """
    return h_output - eta_hat * get_loss_convention(loss_convention).output_error(h_output, label)


def propagate_targets(network: LayeredNetwork, activations: list[torch.Tensor], top_target: torch.Tensor, *,
                      difference: bool = False, lowest: int = 1) -> list[torch.Tensor | None]:
    """Propagate the output target down through the feedback mappings.

    Plain target propagation (eqs. 3.8, 4.2)::

        hat h_i = g_i(hat h_{i+1})

    Difference target propagation (eqs. 3.15, 4.101)::

        hat h_i = h_i + [g_i(hat h_{i+1}) - g_i(h_{i+1})]

    The difference is formed before adding ``h_i`` so that ``hat h_{i+1} = h_{i+1}`` gives
    ``hat h_i = h_i`` bit for bit (eq. 3.14), for any ``g_i``.

    Parameters
    ----------
    network : LayeredNetwork
        Layers ``2..L`` must have feedback mappings (``g_1..g_{L-1}``) down to ``lowest``.
    activations : list of Tensor
        ``[h_0, ..., h_L]`` of the forward pass, ``h_i`` of shape ``(B, n_i)``.
    top_target : Tensor, shape (B, n_L)
        ``hat h_L`` (usually :func:`output_target`).
    difference : bool
        Use the difference correction of DTP.
    lowest : int
        Lowest layer that needs a target (``1..L``); the randomized rules stop at the chosen layer.

    Returns
    -------
    list
        ``targets[i] = hat h_i`` of shape ``(B, n_i)`` for ``lowest <= i <= L``, ``None`` below.
    """
    L = network.depth
    targets: list[torch.Tensor | None] = [None] * (L + 1)
    targets[L] = top_target
    for i in range(L - 1, lowest - 1, -1):
        feedback_owner = network.layer(i + 1)  # g_i lives on layer i + 1
        propagated = feedback_owner.feedback_forward(targets[i + 1])
        if difference:
            targets[i] = activations[i] + (propagated - feedback_owner.feedback_forward(activations[i + 1]))
        else:
            targets[i] = propagated
    return targets
