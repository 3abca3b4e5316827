"""Shared test problems with exact answers."""
from __future__ import annotations

import math

import numpy as np
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



# -- matrices with exact spectra and transient growth (stability tests) ---------------------------------------------
def jordan_block(a: float = 10.0) -> np.ndarray:
    """``J = [[-1, a], [0, -1]]``: the double eigenvalue -1 (defective), abscissa -1."""
    return np.array([[-1.0, a], [0.0, -1.0]])


def jordan_block_transient_growth(a: float) -> tuple[float, float]:
    """``(G, t*)`` of :func:`jordan_block` for ``a > 2``, in closed form.

    ``||exp(tJ)|| = e^-t (s + sqrt(1 + s^2))`` with ``s = a t / 2``, maximal where ``sqrt(1 + s^2) = a/2``:
    ``G = exp(-2 s*/a) (s* + a/2)`` at ``t* = 2 s*/a``, ``s* = sqrt(a^2/4 - 1)``.
    """
    s_star = math.sqrt(a * a / 4 - 1)
    return math.exp(-2 * s_star / a) * (s_star + a / 2), 2 * s_star / a


def normal_matrices(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stable normal matrices with their exact eigenvalues: ``Q diag(-d) Q^T`` (symmetric) and a spiral sink.

    Normal: ``||exp(tJ)|| = exp(alpha t)``, so the transient growth is exactly 1.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    d = rng.uniform(0.1, 3.0, 6)
    return [(q @ np.diag(-d) @ q.T, -d.astype(complex)),
            (np.array([[-1.0, 3.0], [-3.0, -1.0]]), np.array([-1 + 3j, -1 - 3j]))]


#: Hand-made 2 x 2 Jacobians with their verdict, Hurwitz property and negative definiteness.
VERDICT_CASES = [
    (np.diag([-1.0, -2.0]), "stable", True, True),
    (np.array([[-1.0, 10.0], [0.0, -2.0]]), "stable", True, False),       # Hurwitz, not negative definite
    (np.array([[0.1, 0.0], [0.0, -1.0]]), "unstable", False, False),
    (np.array([[-0.5, 2.0], [-2.0, -0.5]]), "stable", True, True),          # spiral sink, normal
    (np.array([[0.0, 1.0], [-1.0, 0.0]]), "marginal", False, False),       # centre
    (np.diag([0.0, -1.0]), "marginal", False, False),
    (np.diag([1e-12, -1.0]), "marginal", False, False),                    # within the tolerance
]


def exact_inverse_problem(sizes=(4, 8, 8, 8, 8), mu: float = 0.4, seed: int = 0):
    """Exact inverses at the free forward pass (a matched point): dynamics, state and the closed-form abscissa.

    With exact inverses and a free output (``c = 1``) the spectrum is that of the reduced tridiagonal matrix,
    whatever the (Gaussian) weights (section 6.7).
    """
    from analysis import exact_inverse_spectrum

    _, _, _, dyn = make_problem(sizes, weight_init="gaussian", batch=1, free=True, mu=mu, seed=seed)
    state = dyn.initial_state().detach()
    exact = exact_inverse_spectrum(len(sizes) - 1, mu, dyn.tau, 1.0, sizes[1]).abscissa
    return dyn, state, exact


def write_blobs(path) -> str:
    """3 Gaussian blobs in 5 dimensions as an ``.npz`` task file (150 training-file, 30 test-file samples);
    returns the path as a string."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (3, 5))

    def draw(n):
        y = np.arange(n) % 3
        return centres[y] + rng.normal(0, 1, (n, 5)), y

    (x_train, y_train), (x_test, y_test) = draw(150), draw(30)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)
