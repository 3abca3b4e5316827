"""The SOR stage's closed-form over-relaxation and its fast path (each test can fail)."""
import math

import pytest
import torch

import tpdynamics as tp
from tpdynamics import EquilibriumStatus
from tpdynamics._equilibrium._sweep import jacobi_spectral_radius, optimal_omega

from .problems import make_problem

DT = torch.float64


def dense_jacobi_radius(dyn, state):
    """Spectral radius of the block-Jacobi iteration matrix ``I + diag(1 / -s_k) J`` at ``state`` (dense eig)."""
    J = dyn.jacobian_blocks(state).to_dense() * dyn.tau  # Jacobian of the drive, (B, N, N)
    steps = torch.cat([torch.full((n,), 1.0 / -s, dtype=DT) for n, s in zip(dyn.state_sizes, dyn.block_slopes())])
    M = torch.eye(J.shape[-1], dtype=DT) + steps[:, None] * J
    return torch.linalg.eigvals(M).abs().amax(-1)


# -- the closed form of the Jacobi radius -------------------------------------------------------------------------
@pytest.mark.parametrize("depth, mu, nonlinearity, init, teaching", [
    (2, 0.1, "leaky_relu:0.35", "orthogonal", "loss"),
    (4, 0.3, "tanh", "gaussian", "fixed"),
    (5, 0.45, "leaky_relu:0.35", "gaussian", "loss"),
    (6, 0.4, "leaky_relu:0.35", "gaussian", "free"),
    (8, 0.49, "tanh", "orthogonal", "loss"),
])
def test_the_closed_form_jacobi_radius_is_the_dense_one_at_the_forward_pass(depth, mu, nonlinearity, init, teaching):
    """At the forward pass the feedback's Jacobian is the inverse of the forward one, whatever the weights:
    the Jacobi matrix is similar to a scalar tridiagonal L x L matrix (Gaussian weights included)."""
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.3), "loss": {}}[teaching]
    _, _, _, dyn = make_problem((4,) + (4,) * depth, nonlinearity=nonlinearity, mu=mu, weight_init=init, batch=3,
                                **kwargs)
    rho = jacobi_spectral_radius(dyn)
    dense = dense_jacobi_radius(dyn, dyn.initial_state("forward"))
    torch.testing.assert_close(dense, torch.full_like(dense, rho), rtol=1e-6, atol=1e-9)
    if teaching == "fixed":  # a target independent of the state: every slope is -1, the Toeplitz closed form
        assert rho == pytest.approx(2 * math.sqrt(mu * (1 - mu)) * math.cos(math.pi / (depth + 1)), rel=1e-12)


def test_no_closed_form_without_exact_inverses():
    for feedback in ("learned", "fixed"):
        assert jacobi_spectral_radius(make_problem(feedback=feedback)[3]) is None
    net, h0, label, _ = make_problem((3, 4, 4, 4), nonlinearity="tanh", feedback="learned")
    assert jacobi_spectral_radius(tp.MultiplexedDynamics(net, h0, label=label, eta_hat=0.1)) is None


def test_optimal_omega_is_youngs_and_checks_its_argument():
    assert optimal_omega(0.0) == 1.0
    assert optimal_omega(0.8) == pytest.approx(2 / (1 + 0.6))
    with pytest.raises(ValueError, match=r"rho=1.0 must be in \[0, 1\)"):
        optimal_omega(1.0)


# -- the closed form predicts what the sweeps do ------------------------------------------------------------------
def _linear(depth=4, mu=0.3):
    return make_problem((5,) + (5,) * depth, nonlinearity="identity", mu=mu, target=lambda out: 0.0 * out + 0.5,
                        batch=4)[3]


def _rate(dyn, solver, k1, k2):
    """The observed contraction per sweep of the worst residual between sweeps k1 and k2 (from rest)."""
    start = dyn.initial_state("zeros")
    r1, r2 = (float(tp.equilibrium(dyn, solver=solver, tol=1e-300, max_iterations=k, initial_state=start)
                    .residual.max()) for k in (k1, k2))
    return (r2 / r1) ** (1.0 / (k2 - k1))


def test_plain_gauss_seidel_contracts_at_the_square_of_the_closed_form_radius():
    """Young: on a consistently ordered (block-tridiagonal, red-black) system Gauss-Seidel's rate is rho_J^2."""
    dyn = _linear()
    rho = jacobi_spectral_radius(dyn)
    assert rho == pytest.approx(2 * math.sqrt(0.3 * 0.7) * math.cos(math.pi / 5))
    rate = _rate(dyn, tp.SORSolver(max_omega=1.0), 20, 35)  # max_omega = 1: plain Gauss-Seidel
    assert rate == pytest.approx(rho ** 2, rel=0.05), (rate, rho ** 2)


def test_sor_at_the_closed_form_optimum_contracts_at_omega_minus_one():
    dyn = _linear()
    rho = jacobi_spectral_radius(dyn)
    omega = optimal_omega(rho)
    rate = _rate(dyn, "sor", 6, 16)  # (by sweep 20 the residual is at round-off)
    # at the optimum the SOR matrix has a double eigenvalue omega - 1 (a Jordan block: k (omega-1)^k decays
    # a little slower than (omega-1)^k), against rho^2 = 0.55 for Gauss-Seidel
    assert omega - 1 <= rate < (omega - 1) * 1.25, (rate, omega - 1)
    # below the optimum, Young's relation (lambda + w - 1)^2 = lambda w^2 rho^2 gives the rate: its larger root
    w = 1.0 + 0.5 * (omega - 1)
    young = (w * rho / 2 + math.sqrt(w * w * rho * rho / 4 - (w - 1))) ** 2
    below = _rate(dyn, tp.SORSolver(max_omega=w), 10, 30)  # (max_omega caps the closed-form start)
    assert below == pytest.approx(young, rel=0.05) and below > 1.5 * rate, (below, young, rate)


def test_the_closed_form_start_takes_fewer_sweeps_than_adapting_from_one(monkeypatch):
    _, _, _, dyn = make_problem((6,) * 9, mu=0.45, batch=16)  # L = 8, leaky ReLU, a label target
    tuned = tp.equilibrium(dyn, solver="sor", tol=1e-8)
    from tpdynamics._equilibrium import _sweep
    monkeypatch.setattr(_sweep, "jacobi_spectral_radius", lambda dynamics: None)  # the estimate from the rate
    adapted = tp.equilibrium(dyn, solver="sor", tol=1e-8)
    assert tuned.success and adapted.success
    assert tuned.iterations < adapted.iterations, (tuned.iterations, adapted.iterations)
    # with leaky-ReLU kinks some samples have several stable fixed points (the flow and the plain map disagree
    # there too, test_equilibrium_stages): the check is the fixed-point equation, evaluated independently
    from .test_equilibrium import fixed_point_defect
    assert fixed_point_defect(dyn, tuned.state) < 1e-8 and fixed_point_defect(dyn, adapted.state) < 1e-8


# -- the fast path --------------------------------------------------------------------------------------------------
def test_the_fast_path_finds_the_fixed_point_the_flow_reaches():
    _, _, _, dyn = make_problem((4, 6, 6, 6, 6), nonlinearity="tanh", mu=0.45, batch=8)
    with torch.no_grad():  # (with a gradient, the state gets one more Newton step after the residual is taken)
        fast = tp.equilibrium(dyn, tol=1e-9)
        flow = tp.equilibrium(dyn, solver="ode", tol=1e-9)
    assert fast.success and flow.success and fast.stages == ["sor"] * 8 and fast.solver == "sor"
    # two states with residual < tol differ by at most ||(I - M)^-1|| tol (order 10-100 here)
    torch.testing.assert_close(fast.state, flow.state, rtol=0, atol=1e-7)
    assert bool((fast.residual < 1e-9).all())
    torch.testing.assert_close(fast.residual, dyn.fixed_point_residual(fast.state), rtol=1e-6, atol=1e-15)


def test_a_converged_initial_state_returns_at_once_and_is_not_aliased():
    _, _, _, dyn = make_problem(batch=4)
    with torch.no_grad():
        solved = tp.equilibrium(dyn, tol=1e-10).state
        start = solved.clone()
        again = tp.equilibrium(dyn, tol=1e-8, initial_state=start)
    assert again.success and again.iterations == 0 and again.nfev == 1 and again.stages == ["sor"] * 4
    assert torch.equal(again.state, start) and again.state.data_ptr() != start.data_ptr()
    start += 1.0  # the caller's tensor is theirs
    assert torch.equal(again.state, solved)


def test_a_sample_with_a_non_finite_start_gets_its_own_status_from_the_sweeps():
    """The first sweep's book-keeping is skipped only when every residual is finite; a sample whose initial
    state is outside the inverse's domain is reported, the others converge as if alone."""
    net, h0, _, _ = make_problem((3, 3, 3), nonlinearity="tanh", output="tanh", mu=0.4, batch=5)
    target = torch.full((5, 3), 0.2, dtype=DT)
    dyn = tp.MixtureDynamics(net, h0, mu=0.4, target=target)
    start = dyn.initial_state("forward").clone()
    start[1, 3:] = 1.5  # |h_2| > 1: tanh^-1 of it is NaN
    result = tp.equilibrium(dyn, solver="sor", tol=1e-10, initial_state=start)
    good = [0, 2, 3, 4]
    assert [result.sample_status[b] for b in good] == [EquilibriumStatus.CONVERGED] * 4
    assert result.sample_status[1] in (EquilibriumStatus.DOMAIN_ERROR, EquilibriumStatus.MAX_ITERATIONS)
    assert result.sample_status[1] != EquilibriumStatus.CONVERGED and not result.success
    alone = tp.equilibrium(tp.MixtureDynamics(net, h0[good], mu=0.4, target=target[good]), solver="sor",
                           tol=1e-10, initial_state=start[good])
    torch.testing.assert_close(result.state[good], alone.state, rtol=0, atol=1e-9)
