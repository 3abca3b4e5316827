"""Closed-form and first-order predictions of the thesis, as functions of the same layer objects.

These are the oracles the tests and the comparisons check the simulations against.
"""
from __future__ import annotations

import torch

from .validation import check_mu, check_positive
from .network import LayeredNetwork
from .targets import l2_loss_gradient


def layer_factor(mu: float, depth: int, i: int) -> float:
    """``(mu / (1 - mu))^(L + 1 - i)``, the depth scaling of the learning signal in eq. (6.16)."""
    mu = check_mu(mu)
    if not 1 <= i <= depth:
        raise ValueError(f"layer index i={i} must be in 1..L={depth}.")
    return (mu / (1.0 - mu)) ** (depth + 1 - i)


def propagate_error(network: LayeredNetwork, activations: list[torch.Tensor], error: torch.Tensor) -> list[torch.Tensor]:
    """``[prod_{k=i}^{L-1} J_{g_k}] e`` for ``i = 1..L`` (the bracket of eqs. 4.10, 5.39, 6.16).

    ``J_{g_k}`` is the Jacobian of the feedback mapping ``g_k`` at ``h_{k+1}``; with exact inverses it
    equals ``W_{k+1}^{-1} D_{s_{k+1}}^{-1}`` (inverse function theorem).

    Parameters
    ----------
    activations : list of Tensor
        ``[h_0, ..., h_L]`` (e.g. the forward pass), shapes ``(B, n_i)``.
    error : Tensor, shape (B, n_L)

    Returns
    -------
    list of Tensor
        Entry ``i - 1`` is the propagated error at layer ``i``, shape ``(B, n_i)``.
    """
    L = network.depth
    out = [None] * L
    out[L - 1] = error
    for k in range(L - 1, 0, -1):  # g_k maps h_{k+1} -> h_k and is owned by layer k + 1
        jac = network.layer(k + 1).feedback_jacobian(activations[k + 1])
        out[k - 1] = torch.einsum("bij,bj->bi", jac, out[k])
    return out


def mixture_displacement_first_order(network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor, *,
                                     mu: float, eta_hat: float) -> list[torch.Tensor]:
    """First-order prediction of ``h*_i - f_i(h*_{i-1})`` at the equilibrium of eq. (6.1), eq. (6.16).

    .. math:: h^*_i - f_i(h^*_{i-1}) \\approx -\\hat\\eta \\left(\\frac{\\mu}{1-\\mu}\\right)^{L+1-i}
              \\Big[\\prod_{k=i}^{L-1} W_{k+1}^{-1} D_{s_{k+1}}^{-1}\\Big] e_L

    with everything evaluated at the forward pass and ``e_L = h_L - y`` (L2 loss). Exact to first
    order in ``eta_hat`` for every ``mu`` when the feedback is exact and the target is the
    :class:`~tpdynamics.LossTarget` of eq. (6.10).

    Returns
    -------
    list of Tensor
        Entry ``i - 1`` has shape ``(B, n_i)``.
    """
    mu = check_mu(mu)
    eta_hat = check_positive("eta_hat", eta_hat)
    activations = network(h0)
    propagated = propagate_error(network, activations, l2_loss_gradient(activations[-1], label))
    L = network.depth
    return [-eta_hat * layer_factor(mu, L, i) * propagated[i - 1] for i in range(1, L + 1)]
