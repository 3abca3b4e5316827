"""Shared test problems with exact answers."""
from __future__ import annotations

import torch

import tpdynamics as tp

DTYPE = torch.float64


def make_problem(sizes=(3, 4, 4, 4), *, feedback="exact", nonlinearity="leaky_relu:0.35", output="identity",
                 seed=0, batch=5, mu=0.2, tau=1.0, eta_hat=None, target=None, free=False, dtype=DTYPE,
                 weight_init="orthogonal", label_scale=1.0):
    """A small network with an input batch and, unless ``free``, a label target."""
    network = tp.LayeredNetwork.build(list(sizes), nonlinearity=nonlinearity, output_nonlinearity=output,
                                      feedback=feedback, seed=seed, dtype=dtype, weight_init=weight_init)
    g = torch.Generator().manual_seed(seed + 100)
    h0 = torch.randn(batch, sizes[0], generator=g, dtype=dtype)
    with torch.no_grad():
        out = network(h0)[-1]
    label = out + label_scale * torch.randn(out.shape, generator=g, dtype=dtype)
    if free:
        dyn = tp.MixtureDynamics(network, h0, mu=mu, tau=tau)
    elif target is not None:
        dyn = tp.MixtureDynamics(network, h0, mu=mu, tau=tau, target=target(out) if callable(target) else target)
    else:
        dyn = tp.MixtureDynamics(network, h0, mu=mu, tau=tau, label=label, eta_hat=0.1 if eta_hat is None else eta_hat)
    return network, h0, label, dyn


def linear_fixed_point(dynamics: tp.MixtureDynamics) -> torch.Tensor:
    """Exact equilibrium of a network with identity nonlinearities and a matrix-form feedback.

    With s = id, ``f_i(h) = W_i h`` and ``g_i(h) = M_i h`` (M = W^-1, Q or B), so eq. (6.5) is the linear
    system ``h_i - (1-mu) W_i h_(i-1) - mu M_i h_(i+1) = [i=1] (1-mu) W_1 h_0 + [i=L] mu (target part)``,
    assembled densely here and solved with ``torch.linalg.solve`` (independent of the package's solvers).
    """
    net, mu = dynamics.network, dynamics.mu
    sizes = dynamics.state_sizes
    N, L = sum(sizes), net.depth
    off = [0]
    for n in sizes:
        off.append(off[-1] + n)
    A = torch.eye(N, dtype=DTYPE)
    teaching = dynamics.teaching
    c = teaching.jacobian_scale
    A[off[L - 1]:, off[L - 1]:] -= mu * c * torch.eye(sizes[-1], dtype=DTYPE)
    for i in range(2, L + 1):
        A[off[i - 1]:off[i], off[i - 2]:off[i - 1]] -= (1 - mu) * net.layer(i).weight.detach()
        A[off[i - 2]:off[i - 1], off[i - 1]:off[i]] -= mu * net.layer(i).feedback.matrix.detach()
    out = []
    for b in range(dynamics.batch_size):
        rhs = torch.zeros(N, dtype=DTYPE)
        rhs[:off[1]] = (1 - mu) * net.layer(1).weight.detach() @ dynamics.h0[b]
        if isinstance(teaching, tp.FixedTarget):
            rhs[off[L - 1]:] += mu * teaching.target[b]
        elif isinstance(teaching, tp.LossTarget):
            rhs[off[L - 1]:] += mu * teaching.eta_hat * teaching.label[b]
        out.append(torch.linalg.solve(A, rhs))
    return torch.stack(out)

