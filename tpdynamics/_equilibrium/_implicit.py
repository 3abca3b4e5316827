"""Implicit gradients: the converged state carries ``d h*/d theta = -J^{-1} dF/d theta``."""
from __future__ import annotations

import torch


def needs_gradient(dynamics) -> bool:
    """Whether autograd is on and a parameter or an input of ``dynamics`` requires a gradient."""
    return torch.is_grad_enabled() and (
        any(p.requires_grad for p in dynamics.parameters()) or any(x.requires_grad for x in dynamics.inputs()))


def attach_implicit_gradient(dynamics, state: torch.Tensor) -> torch.Tensor:
    """Return ``state - J^{-1} F(state)`` with ``J`` detached: the fixed point with its IFT gradient.

    At a fixed point ``F(h*) = dh/dt = 0`` the value is ``h*`` (one more Newton step), and the
    gradient with respect to any parameter ``theta`` of the dynamics is
    ``-J^{-1} dF/dtheta`` — the implicit-function-theorem derivative of the fixed point.
    If no gradient is needed the state is returned unchanged.
    """
    if not needs_gradient(dynamics):
        return state
    state = state.detach()
    with torch.no_grad():
        jacobian = dynamics.jacobian_blocks(state)
    return state - jacobian.solve(dynamics.rate(state))
