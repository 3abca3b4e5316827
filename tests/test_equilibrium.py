import numpy as np
import pytest
import torch

import tpdynamics as tp
from tpdynamics import EQUILIBRIUM_SOLVERS, EquilibriumStatus
from tpdynamics.theory import mixture_displacement_first_order

from .problems import linear_fixed_point, make_problem

DT = torch.float64
SOLVERS = EQUILIBRIUM_SOLVERS.names()


def fixed_point_defect(dyn, state):
    """max |h_i - (1-mu) f_i(h_(i-1)) - mu g_i(h_(i+1))| of eq. (6.5), computed without the dynamics module.

    The exact feedback is evaluated with ``torch.linalg.solve(W, s^-1(h))``, not the kept inverse.
    """
    net, mu, hs = dyn.network, dyn.mu, dyn.split(state)
    worst = 0.0
    for i in range(1, net.depth + 1):
        below = dyn.h0 if i == 1 else hs[i - 2]
        basal = net.layer(i).nonlinearity(below @ net.layer(i).weight.T)
        if i == net.depth:
            apical = dyn.teaching.value(hs[-1])
        else:
            upper = net.layer(i + 1)
            pre = upper.nonlinearity.inverse(hs[i])
            if upper.feedback_form == "exact":
                apical = torch.linalg.solve(upper.weight, pre.T).T
            else:
                apical = upper.feedback_forward(hs[i])
        worst = max(worst, float((hs[i - 1] - (1 - mu) * basal - mu * apical).detach().abs().max()))
    return worst


def check_solver_finds_the_exact_fixed_point(solver, form="exact", teaching="loss"):
    """The check every registered solver (and feedback form) must pass: the exact equilibrium of a linear network."""
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.3), "loss": {}}[teaching]
    _, _, _, dyn = make_problem((3, 4, 4, 4), feedback=form, nonlinearity="identity", mu=0.3, **kwargs)
    result = tp.equilibrium(dyn, solver=solver, tol=1e-10, strict=True)
    exact = linear_fixed_point(dyn)
    # the error of a state with residual r is at most ||J^-1|| r; these J have ||J^-1|| of order 10
    torch.testing.assert_close(result.state, exact, rtol=0, atol=1e-8)
    assert result.converged.all() and result.residual.max() < 1e-10


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("form", tp.FEEDBACK_FORMS.names())
@pytest.mark.parametrize("teaching", ["free", "fixed", "loss"])
def test_every_solver_finds_the_exact_fixed_point_of_a_linear_network(solver, form, teaching):
    check_solver_finds_the_exact_fixed_point(solver, form, teaching)


@pytest.mark.parametrize("solver", SOLVERS)
def test_mu_zero_equilibrium_is_the_forward_pass(solver):
    net, h0, _, dyn = make_problem(mu=0.0, nonlinearity="tanh", feedback="learned")
    start = dyn.initial_state("zeros")
    result = tp.equilibrium(dyn, solver=solver, tol=1e-9, initial_state=start)
    assert result.success
    forward = torch.cat(net(h0)[1:], -1)
    torch.testing.assert_close(result.state, forward, rtol=0, atol=1e-8)


@pytest.mark.parametrize("mu", [0.05, 0.2, 0.45, 0.8])
@pytest.mark.parametrize("target", ["free", "output"])
def test_exact_inverses_without_teaching_signal_settle_on_the_forward_pass(mu, target):
    """Section 6.4: with h_L^trgt = h_L (or the free output) the forward pass is the equilibrium, any mu."""
    kwargs = dict(free=True) if target == "free" else dict(target=lambda out: out)
    if mu > 0.5:
        with pytest.warns(tp.TPDynamicsWarning):
            net, h0, _, dyn = make_problem(mu=mu, **kwargs)
    else:
        net, h0, _, dyn = make_problem(mu=mu, **kwargs)
    forward = torch.cat(net(h0)[1:], -1)
    assert float(dyn.residual(forward).max()) < 1e-14  # a fixed point for every mu
    # ... and the flow settles on it from rest. Large mu relaxes slowly (free output: an eigenvalue
    # (-1.2 + sqrt(1.28)) / 2 = -0.034 for mu = 0.8), hence the long horizon.
    result = tp.equilibrium(dyn, solver="ode", tol=1e-9, initial_state=dyn.initial_state("zeros"), t_max=5000.0)
    assert result.success, result.message
    torch.testing.assert_close(result.state, forward, rtol=0, atol=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("nonlinearity, form", [("leaky_relu:0.35", "exact"), ("tanh", "exact"),
                                                ("tanh", "original"), ("leaky_relu:0.1", "learned")])
def test_returned_state_satisfies_the_fixed_point_equation(solver, nonlinearity, form):
    _, _, _, dyn = make_problem((4, 5, 5, 5), nonlinearity=nonlinearity, feedback=form, mu=0.25, tau=0.5)
    tol = 1e-9
    result = tp.equilibrium(dyn, solver=solver, tol=tol)
    assert result.success, result.message
    # tol bounds the fixed-point residual ||h - (1-mu) f - mu g||_inf itself, whatever tau (here 0.5)
    assert fixed_point_defect(dyn, result.state) < tol * 1.0001
    torch.testing.assert_close(result.rate_residual, result.residual / dyn.tau)


def _signal_errors(eta_hats, nonlinearity, seed=0):
    errors = []
    for eta_hat in eta_hats:
        net, h0, label, dyn = make_problem((4, 4, 4, 4, 4), nonlinearity=nonlinearity, output=nonlinearity,
                                           mu=0.3, eta_hat=eta_hat, label_scale=0.5, seed=seed)
        state = tp.equilibrium(dyn, solver="newton", tol=1e-14, strict=True).state.detach()
        hs = [h0] + dyn.split(state)
        # the first-order expansion needs every unit on the same side of the kink in f and g as in the
        # forward pass (leaky ReLU): check that assumption rather than assume it
        forward = net(h0)
        for i in range(1, net.depth + 1):
            same = (net.layer(i).preactivation(hs[i - 1]) >= 0) == (net.layer(i).preactivation(forward[i - 1]) >= 0)
            assert bool(same.all()) and bool(((hs[i] >= 0) == (forward[i] >= 0)).all())
        with torch.no_grad():
            measured = torch.cat([hs[i] - net.layer(i)(hs[i - 1]) for i in range(1, net.depth + 1)], -1)
            predicted = torch.cat(mixture_displacement_first_order(net, h0, label, mu=0.3, eta_hat=eta_hat), -1)
        errors.append((float((measured - predicted).norm()), float((measured - predicted).norm() / predicted.norm())))
    return np.array(errors)


def test_learning_signal_matches_eq_6_16_with_quadratic_error():
    """h*_i - f_i(h*_(i-1)) = -eta (mu/(1-mu))^(L+1-i) [prod W^-1 D^-1] e_L + O(eta^2): slope >= 2 in log-log."""
    eta_hats = np.array([0.08, 0.04, 0.02, 0.01, 0.005])
    errors = _signal_errors(eta_hats, "tanh")
    slope = np.polyfit(np.log(eta_hats), np.log(errors[:, 0]), 1)[0]
    assert slope > 1.9, (slope, errors)
    assert errors[-1, 1] < 1e-2  # the prediction is the leading term


def test_learning_signal_of_leaky_relu_networks_matches_eq_6_16_while_no_unit_crosses_its_kink():
    eta_hats = np.array([2e-3, 1e-3, 5e-4])
    errors = _signal_errors(eta_hats, "leaky_relu:0.35", seed=9)  # seed 9: no unit within 0.014 of its kink
    slope = np.polyfit(np.log(eta_hats), np.log(errors[:, 0]), 1)[0]
    assert slope > 1.9 and errors[-1, 1] < 1e-3, (slope, errors)


def test_solvers_agree():
    _, _, _, dyn = make_problem((5, 6, 6, 6, 6), nonlinearity="tanh", feedback="exact", mu=0.35)
    states = {s: tp.equilibrium(dyn, solver=s, tol=1e-11, strict=True).state for s in SOLVERS}
    for s in SOLVERS:
        torch.testing.assert_close(states[s], states["newton"], rtol=0, atol=1e-9)


def test_newton_converges_quadratically():
    """The order of convergence measured from the iterates: p_k = log(e_(k+1)/e_k) / log(e_k/e_(k-1)) -> 2."""
    _, _, _, dyn = make_problem((4, 6, 6, 6), nonlinearity="tanh", mu=0.3)
    result = tp.equilibrium(dyn, solver="newton", tol=1e-12)
    assert result.success
    exact = tp.equilibrium(dyn, solver="newton", tol=1e-15).state.detach()
    errors = []
    for k in range(result.iterations + 1):  # the k-th iterate is the state returned after k iterations
        state = tp.equilibrium(dyn, solver="newton", tol=1e-15, max_iterations=k).state.detach()
        errors.append(float((state - exact).abs().max()))
    errors = np.array([e for e in errors if e > 1e-13])  # above the round-off floor
    assert len(errors) >= 4, errors
    orders = np.diff(np.log(errors))[1:] / np.diff(np.log(errors))[:-1]
    assert orders[-1] == pytest.approx(2.0, abs=0.3), (orders, errors)
    assert np.all(orders > 1.4), (orders, errors)  # superlinear from the first full step on


def test_reaching_t_max_returns_the_last_state_with_a_status():
    _, _, _, dyn = make_problem()
    result = tp.equilibrium(dyn, solver="ode", tol=1e-12, t_max=0.5)
    assert result.status == "max_time" and not result.success and result.t == 0.5
    assert not result.converged.any() and torch.isfinite(result.state).all()
    assert "t_max=0.5 reached" in result.message
    with pytest.raises(tp.EquilibriumNotReachedError, match="max_time"):
        result.raise_for_status()
    with pytest.raises(tp.EquilibriumNotReachedError):
        tp.equilibrium(dyn, solver="ode", tol=1e-12, t_max=0.5, strict=True)


def test_torchdiffeq_step_limit_is_caught():
    _, _, _, dyn = make_problem()
    result = tp.equilibrium(dyn, solver="ode", tol=1e-12, max_steps=3)
    assert result.status == "max_steps" and "max_steps=3" in result.message
    assert torch.isfinite(result.state).all()


def _unstable_problem():
    # float32 overflows after ~88 e-folds instead of ~709: the same failure, reached faster
    f32 = torch.float32
    w1 = tp.Layer(torch.ones(1, 1, dtype=f32), "identity")
    w2 = tp.Layer(torch.full((1, 1), 30.0, dtype=f32), "identity",
                  tp.FixedRandomFeedback(torch.full((1, 1), 30.0, dtype=f32)))
    # eigenvalues -1 +- sqrt(mu (1-mu) 900) = -1 +- 12: an unstable saddle
    return tp.MixtureDynamics(tp.LayeredNetwork([w1, w2]), torch.ones(1, 1, dtype=f32), mu=0.2,
                              target=torch.zeros(1, 1, dtype=f32))


def test_divergence_is_a_status_naming_time_and_layer():
    result = tp.equilibrium(_unstable_problem(), solver="ode", initial_state=torch.tensor([[1.0, 1.0]]), rtol=1e-4)
    assert result.status == "diverged" and not result.success
    assert "non-finite" in result.message and "layer h_" in result.message and "at t=" in result.message
    assert torch.isfinite(result.state).all()  # the last finite checkpoint, not garbage


def test_iterative_solvers_do_not_call_an_unstable_fixed_point_an_attractor_silently():
    # Newton finds the saddle (a fixed point); the ODE path reports the divergence. Both are labelled.
    dyn = _unstable_problem()
    start = torch.tensor([[1.0, 1.0]])
    newton = tp.equilibrium(dyn, solver="newton", initial_state=start, tol=1e-5)
    assert newton.success and newton.solver == "newton"
    assert tp.equilibrium(dyn, solver="ode", initial_state=start, rtol=1e-4).status == "diverged"


def test_check_stability_flags_an_unstable_fixed_point_and_auto_follows_the_flow():
    dyn = _unstable_problem()
    start = torch.tensor([[1.0, 1.0]])
    newton = tp.equilibrium(dyn, solver="newton", initial_state=start, tol=1e-5, check_stability=True)
    assert newton.status == EquilibriumStatus.UNSTABLE == "unstable" and not newton.success
    assert float(newton.spectral_abscissa[0]) == pytest.approx(11.0, rel=1e-3)  # -1 + sqrt(0.16 * 900)
    auto = tp.equilibrium(dyn, initial_state=start, tol=1e-5, rtol=1e-4, check_stability=True)
    assert auto.solver.startswith("anderson (unstable fixed point)") or "unstable" in auto.solver
    assert auto.status == "diverged"  # the flow runs away from the saddle
    _, _, _, stable = make_problem()
    ok = tp.equilibrium(stable, check_stability=True)
    assert ok.success and bool((ok.spectral_abscissa < 0).all())


def test_inverse_domain_error_is_a_status():
    _, _, _, dyn = make_problem((3, 3, 3), nonlinearity="tanh", output="tanh", mu=0.4,
                                target=lambda out: torch.full_like(out, 4.0))
    result = tp.equilibrium(dyn)
    assert result.status == "domain_error" and result.solver == "sor->anderson->newton->ode"
    assert result.sample_status == ["domain_error"] * dyn.batch_size and result.stages == ["ode"] * dyn.batch_size
    assert "tanh inverse needs |y| < 1" in result.message


def test_float32_works():
    _, _, _, dyn = make_problem(dtype=torch.float32)
    for solver in SOLVERS:
        result = tp.equilibrium(dyn, solver=solver, tol=1e-5)
        assert result.success and result.state.dtype == torch.float32


def test_float32_tolerance_below_round_off_says_so():
    _, _, _, dyn = make_problem(dtype=torch.float32)
    result = tp.equilibrium(dyn, solver="ode", tol=1e-9, t_max=50)
    assert not result.success and "round-off" in result.message


def test_record_keeps_the_checkpoints():
    _, _, _, dyn = make_problem()
    result = tp.equilibrium(dyn, solver="ode", record=True)
    times = [t for t, _ in result.trajectory]
    assert times[0] == 0.0 and times[-1] == result.t and times == sorted(times)


def test_result_serialises_to_json(tmp_path):
    _, _, _, dyn = make_problem()
    result = tp.equilibrium(dyn)
    import json
    data = json.loads(result.to_json(tmp_path / "r.json", include_state=True))
    assert data == json.loads((tmp_path / "r.json").read_text())
    assert data["converged"] is True and len(data["state"]) == 3 and data["status"] == "converged"


# -- gradients through the solve -------------------------------------------------------------------

def _equilibrium_of_input(net, solver, gradient="implicit", **kwargs):
    def f(h0):
        dyn = tp.MixtureDynamics(net, h0, mu=0.3, target=torch.full((h0.shape[0], 3), 0.2, dtype=DT))
        return tp.equilibrium(dyn, solver=solver, gradient=gradient, tol=1e-13, strict=True, **kwargs).state
    return f


@pytest.mark.parametrize("solver", ["auto", "newton", "anderson"])
def test_gradcheck_implicit_gradient(solver):
    net = tp.LayeredNetwork.build([2, 3, 3, 3], nonlinearity="tanh", feedback="exact", weight_init="orthogonal", seed=3)
    h0 = (0.3 * torch.randn(2, 2, dtype=DT, generator=torch.Generator().manual_seed(0))).requires_grad_()
    assert torch.autograd.gradcheck(_equilibrium_of_input(net, solver), (h0,), eps=1e-6, atol=1e-6)


def test_gradcheck_through_the_ode_solver():
    net = tp.LayeredNetwork.build([2, 3, 3, 3], nonlinearity="tanh", feedback="learned", weight_init="orthogonal", seed=3)
    h0 = (0.3 * torch.randn(2, 2, dtype=DT, generator=torch.Generator().manual_seed(0))).requires_grad_()
    # a fixed horizon (t_max = check_interval = 5) keeps the function smooth: fixed steps, fixed end time
    def f(h):
        dyn = tp.MixtureDynamics(net, h, mu=0.3, target=torch.full((2, 3), 0.2, dtype=DT))
        result = tp.equilibrium(dyn, solver="ode", gradient="solver", method="rk4", options={"step_size": 0.1},
                                tol=1e-14, t_max=5.0, check_interval=5.0)
        assert result.t == 5.0 and result.state.requires_grad
        return result.state
    assert torch.autograd.gradcheck(f, (h0,), eps=1e-6, atol=1e-6)


def test_weight_gradient_matches_finite_differences_and_the_adjoint():
    net = tp.LayeredNetwork.build([2, 3, 3, 3], nonlinearity="tanh", feedback="learned", weight_init="orthogonal", seed=4)
    h0 = 0.3 * torch.randn(2, 2, dtype=DT, generator=torch.Generator().manual_seed(1))
    q = net.layer(3).feedback.weight

    def loss(tol=1e-13, **kwargs):
        dyn = tp.MixtureDynamics(net, h0, mu=0.3, target=torch.full((2, 3), 0.2, dtype=DT))
        return tp.equilibrium(dyn, tol=tol, strict=True, **kwargs).state.square().sum()

    grads = {}
    for name, kwargs in {"implicit": {}, "solver": dict(solver="ode", gradient="solver", tol=1e-10),
                         "adjoint": dict(solver="ode", gradient="adjoint", tol=1e-10)}.items():
        (grads[name],) = torch.autograd.grad(loss(**kwargs), q)
    fd = torch.zeros_like(q)
    eps = 1e-6
    with torch.no_grad():
        for idx in np.ndindex(*q.shape):
            q[idx] += eps
            plus = loss()
            q[idx] -= 2 * eps
            minus = loss()
            q[idx] += eps
            fd[idx] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(grads["implicit"], fd, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(grads["solver"], fd, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads["adjoint"], fd, rtol=1e-4, atol=1e-6)


def test_non_converged_state_carries_no_gradient():
    net, h0, _, dyn = make_problem()
    result = tp.equilibrium(dyn, solver="ode", tol=1e-12, t_max=0.1)
    assert not result.success and not result.state.requires_grad


# -- bad input ----------------------------------------------------------------------------------------

def test_bad_arguments_are_named():
    _, _, _, dyn = make_problem()
    with pytest.raises(ValueError, match="Unknown equilibrium solver solver='broyden'.*anderson, auto, map, newton, ode, sor"):
        tp.equilibrium(dyn, solver="broyden")
    with pytest.raises(ValueError, match="Unknown ODE method='rk45'.*dopri5"):
        tp.equilibrium(dyn, method="rk45")
    with pytest.raises(ValueError, match="gradient='solver' .* needs solver='ode'"):
        tp.equilibrium(dyn, solver="newton", gradient="solver")
    with pytest.raises(ValueError, match="tol=-1.0 must be finite and > 0"):
        tp.equilibrium(dyn, tol=-1)
    with pytest.raises(ValueError, match=r"initial_state has 5 features"):
        tp.equilibrium(dyn, initial_state=torch.zeros(5, 5, dtype=DT))
    with pytest.raises(TypeError, match="dynamics must be a NetworkDynamics"):
        tp.equilibrium(lambda t, y: -y)
    with pytest.raises(ValueError, match="check_growth=1.0 must be > 1"):
        tp.equilibrium(dyn, check_growth=1.0)
