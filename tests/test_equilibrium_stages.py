"""Issue 12: a tau-free tolerance, per-sample stages, safeguards, warm starts (each test can fail)."""
import math

import pytest
import torch

import tpdynamics as tp
from tpdynamics import EquilibriumStatus
from tpdynamics.continuous import SinglePhaseModel, WeightFlow

from .problems import make_problem

DT = torch.float64
ITERATIVE = ["sor", "map", "anderson", "newton"]


def _multiplexed(tau=1.0, batch=4):
    net, h0, label, _ = make_problem((3, 4, 4, 4), nonlinearity="tanh", output="identity", feedback="learned",
                                     batch=batch)
    return tp.MultiplexedDynamics(net, h0, tau=tau, label=label, eta_hat=0.1)


# -- the tolerance bounds the fixed-point residual, whatever tau -------------------------------------------------
@pytest.mark.parametrize("solver", ["auto", "ode"] + ITERATIVE)
@pytest.mark.parametrize("model", ["mixture", "multiplexed"])
def test_the_fixed_point_and_the_converged_flags_do_not_depend_on_tau(solver, model):
    states, flags = {}, {}
    for tau in (1e-3, 1.0, 1e6):
        if model == "mixture":
            dyn = make_problem((3, 5, 5, 5), mu=0.3, tau=tau)[3]
        else:
            dyn = _multiplexed(tau)
        with torch.no_grad():  # (with a gradient, the state gets one more Newton step after the residual is taken)
            result = tp.equilibrium(dyn, solver=solver, tol=1e-9)
        assert result.success, (tau, result.message)
        # the residual is ||drive||_inf = tau ||dh/dt||_inf, measured independently of the solver
        drive = dyn.drive(result.state.detach())
        torch.testing.assert_close(result.residual, drive.abs().amax(-1), rtol=1e-6, atol=1e-15)
        torch.testing.assert_close(result.rate, drive / tau)
        assert bool((result.residual < 1e-9).all())
        states[tau], flags[tau] = result.state.detach(), result.converged
    for tau in (1e-3, 1e6):
        # two states with fixed-point residual < tol differ by at most ||(I - M)^-1|| tol (order 10 here)
        torch.testing.assert_close(states[tau], states[1.0], rtol=0, atol=1e-7)
        assert torch.equal(flags[tau], flags[1.0])


def test_a_huge_tau_is_not_converged_at_the_forward_pass():
    """tau = 1e12 made ||dh/dt|| tiny everywhere: the old criterion called the forward pass converged."""
    dyn = make_problem((3, 5, 5, 5), mu=0.3, tau=1e12)[3]
    start = dyn.initial_state()
    assert float(dyn.residual(start).max()) < 1e-12  # ||dh/dt||_inf
    result = tp.equilibrium(dyn, solver="ode", tol=1e-6, t_max=1e12)  # 1 tau
    assert not result.success and float(result.residual.max()) > 1e-3


# -- per-sample stages ----------------------------------------------------------------------------------------------
def test_one_out_of_domain_sample_does_not_cost_the_others_their_stage():
    """Sample 2's tanh target lies outside (-1, 1): its feedback needs atanh of it. The rest converge by sweeping."""
    net, h0, _, _ = make_problem((3, 3, 3), nonlinearity="tanh", output="tanh", mu=0.4, batch=6)
    target = torch.full((6, 3), 0.2, dtype=DT)
    target[2] = 4.0
    dyn = tp.MixtureDynamics(net, h0, mu=0.4, target=target)
    result = tp.equilibrium(dyn, tol=1e-10)
    good = [0, 1, 3, 4, 5]
    assert [result.stages[b] for b in good] == ["sor"] * 5
    assert [result.sample_status[b] for b in good] == ["converged"] * 5 and bool(result.converged[good].all())
    assert result.sample_status[2] == EquilibriumStatus.DOMAIN_ERROR and result.stages[2] == "ode"
    assert result.status == "domain_error" and not result.success
    assert result.solver == "sor->anderson->newton->ode"
    # the good samples are the equilibria of their own problem, solved alone
    alone = tp.equilibrium(tp.MixtureDynamics(net, h0[good], mu=0.4, target=target[good]), tol=1e-10)
    # (to ||(I - M)^-1|| tol: the batch size changes the rounding of the matrix products)
    torch.testing.assert_close(result.state[good], alone.state, rtol=0, atol=1e-9)
    assert result.stage_counts == {"sor": 5, "ode (domain_error)": 1}
    data = result.to_dict()
    assert data["stage_per_sample"][2] == "ode" and data["status_per_sample"][2] == "domain_error"
    assert data["iterations_per_sample"] == result.sample_iterations.tolist()


def test_a_sample_near_an_unstable_fixed_point_goes_to_the_flow_alone():
    """Learned feedback 30 x W^-1 on layer 2 makes the fixed point a saddle for every sample whose target
    is far from the forward output; with check_stability each such sample is integrated, the rest are not."""
    f32 = torch.float32
    w1 = tp.Layer(torch.ones(1, 1, dtype=f32), "identity")
    w2 = tp.Layer(torch.full((1, 1), 30.0, dtype=f32), "identity", tp.FixedRandomFeedback(torch.full((1, 1), 30.0,
                                                                                                   dtype=f32)))
    stable = tp.Layer(torch.full((1, 1), 0.5, dtype=f32), "identity", tp.FixedRandomFeedback(torch.full((1, 1), 0.5,
                                                                                                      dtype=f32)))
    net = tp.LayeredNetwork([w1, w2])
    dyn = tp.MixtureDynamics(net, torch.ones(3, 1, dtype=f32), mu=0.2, target=torch.zeros(3, 1, dtype=f32))
    result = tp.equilibrium(dyn, tol=1e-5, rtol=1e-4, initial_state=torch.ones(3, 2, dtype=f32),
                            check_stability=True)
    assert result.sample_status == ["diverged"] * 3 and result.stages == ["ode"] * 3  # all saddles
    assert "unstable" in result.solver
    calm = tp.MixtureDynamics(tp.LayeredNetwork([w1, stable]), torch.ones(3, 1, dtype=f32), mu=0.2,
                              target=torch.zeros(3, 1, dtype=f32))
    ok = tp.equilibrium(calm, tol=1e-5, check_stability=True)
    assert ok.success and ok.stages == ["sor"] * 3 and bool((ok.spectral_abscissa < 0).all())


def test_newton_continues_from_its_best_point_when_the_line_search_fails(monkeypatch):
    """Force the line search of sample 0 to fail at the first iterations: Newton must recover, not give up."""
    _, _, _, dyn = make_problem((4, 6, 6, 6), nonlinearity="leaky_relu:0.35", mu=0.3, batch=4)
    original = tp.NewtonSolver._line_search
    calls = []

    def failing(self, dyn_, x, r, norm, step):
        accepted, *rest = original(self, dyn_, x, r, norm, step)
        calls.append(1)
        if len(calls) <= 3 and x.shape[0] == 4:
            accepted = accepted.clone()
            accepted[0] = False  # as if no halving reduced ||drive||: the kink case of the issue
            rest[2][0] = math.inf  # and no trial helped either: a plain step from the best point
        return (accepted, *rest)

    monkeypatch.setattr(tp.NewtonSolver, "_line_search", failing)
    result = tp.equilibrium(dyn, solver="newton", tol=1e-12)
    assert result.success and result.sample_status == ["converged"] * 4, result.message
    assert int(result.sample_iterations[0]) > int(result.sample_iterations[1:].max())
    reference = tp.equilibrium(dyn, solver="sor", tol=1e-12)
    torch.testing.assert_close(result.state, reference.state, rtol=0, atol=1e-10)


def test_newton_gives_up_on_a_sample_only_after_max_failures_in_a_row(monkeypatch):
    _, _, _, dyn = make_problem((4, 6, 6, 6), mu=0.3, batch=3)
    monkeypatch.setattr(tp.NewtonSolver, "_line_search", lambda self, d, x, r, norm, step: (
        torch.zeros_like(norm, dtype=torch.bool), x, r, torch.full_like(norm, math.inf), x, r))
    monkeypatch.setattr(tp.NetworkDynamics, "evaluate",  # the plain recovery step cannot reach the fixed point
                        lambda self, state, check=True: self.drive(state, check=check) + 1.0)
    result = tp.NewtonSolver(max_failures=4).solve(dyn, dyn.initial_state(), tp.EquilibriumOptions(tol=1e-12))
    assert result.sample_status == ["max_iterations"] * 3 and result.sample_iterations.tolist() == [4, 4, 4]
    assert "line search failed 4 times in a row" in result.message


# -- the stages on the hard case --------------------------------------------------------------------------
def _hard(batch=32, width=16):
    """The issue's hard case at a small width: L = 8, mu = 0.45, leaky ReLU 0.35, orthogonal, label target."""
    return make_problem((width,) * 9, batch=batch, mu=0.45, seed=0)[3]


def test_safeguarded_anderson_converges_on_the_hard_case():
    dyn = _hard()
    result = tp.equilibrium(dyn, solver="anderson", tol=1e-6)
    assert int(result.converged.sum()) == dyn.batch_size and result.success, result.message
    # unsafeguarded Anderson (no restarts, no fallback) stagnates on the same problem
    plain = tp.equilibrium(dyn, solver=tp.AndersonSolver(growth=1e300, max_restarts=10 ** 9, patience=10 ** 9),
                           tol=1e-6, max_iterations=300)
    assert int(plain.converged.sum()) < dyn.batch_size


def test_sor_sweeps_beat_the_plain_map_on_the_hard_case():
    dyn = _hard(batch=8)
    sor = tp.equilibrium(dyn, solver="sor", tol=1e-10)
    plain = tp.equilibrium(dyn, solver="map", tol=1e-10)
    assert sor.success and plain.success
    # Young: Gauss-Seidel halves the iterations of the map on a block-tridiagonal system, SOR does far better
    assert sor.iterations < plain.iterations / 3, (sor.iterations, plain.iterations)
    # Both are fixed points, but not always the same one: with leaky-ReLU kinks this network has several
    # stable fixed points for some samples (the plain map and the flow disagree there too), so the check
    # is the fixed-point equation itself, evaluated independently of the dynamics module.
    from .test_equilibrium import fixed_point_defect
    assert fixed_point_defect(dyn, sor.state) < 1e-10 and fixed_point_defect(dyn, plain.state) < 1e-10


@pytest.mark.parametrize("solver", ITERATIVE)
def test_every_stage_finds_the_same_fixed_point_of_a_smooth_network(solver):
    _, _, _, dyn = make_problem((5, 6, 6, 6, 6), nonlinearity="tanh", feedback="exact", mu=0.35, batch=6)
    result = tp.equilibrium(dyn, solver=solver, tol=1e-12)
    newton = tp.equilibrium(dyn, solver="newton", tol=1e-13)
    assert result.success and result.stages == [solver] * 6
    torch.testing.assert_close(result.state, newton.state, rtol=0, atol=1e-10)


def test_sweeps_solve_the_multiplexed_network_by_forward_substitution():
    """Each block of the multiplexed state depends only on the previous one: one sweep is exact."""
    dyn = _multiplexed()
    result = tp.equilibrium(dyn, solver="sor", tol=1e-12)
    assert result.success and result.iterations == 1 and result.stages == ["sor"] * dyn.batch_size
    net = dyn.network
    rates = dyn.event_rates(result.state)
    forward = net(dyn.h0)[1:]
    for h, f in zip(rates, forward):  # eq. 6.47: the event rates are the forward pass
        torch.testing.assert_close(h, f, rtol=0, atol=1e-12)
    # the plain map from the free phase carries the target down one apical layer per iteration
    assert tp.equilibrium(dyn, solver="map", tol=1e-12).iterations == net.depth - 1


# -- warm starts ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["auto", "sor", "map", "anderson", "newton"])
def test_a_warm_start_from_a_nearby_solution_takes_fewer_iterations(solver):
    net, h0, label, dyn = make_problem((4, 6, 6, 6), nonlinearity="tanh", mu=0.4, batch=5)
    before = tp.equilibrium(dyn, solver=solver, tol=1e-11)
    g = torch.Generator().manual_seed(3)
    # a small weight change, as between two evaluations of a weight flow
    net.layer(2).rank_one_update(1e-5 * torch.randn(6, generator=g, dtype=DT), torch.randn(6, generator=g, dtype=DT))
    cold = tp.equilibrium(dyn, solver=solver, tol=1e-11)
    warm = tp.equilibrium(dyn, solver=solver, tol=1e-11, initial_state=before)  # a result is accepted as is
    assert cold.success and warm.success
    assert warm.iterations < cold.iterations, (warm.iterations, cold.iterations)
    assert bool((warm.sample_iterations <= cold.sample_iterations).all())
    torch.testing.assert_close(warm.state, cold.state, rtol=0, atol=1e-9)


def test_the_weight_flow_starts_each_equilibrium_from_the_previous_one():
    net, h0, label, _ = make_problem((3, 4, 4, 4), nonlinearity="tanh", mu=0.3, batch=4)
    model = SinglePhaseModel(mu=0.3, learning_rate=0.05, tol=1e-11)
    iterations = {}
    finals = {}
    for warm in (True, False):
        copy = tp.LayeredNetwork.build((3, 4, 4, 4), nonlinearity="tanh", output_nonlinearity="identity", seed=0)
        flow = WeightFlow(model, copy, h0, label, warm_start=warm)
        state = flow.initial_state()
        for _ in range(4):  # explicit Euler steps of the flow
            velocity = flow(0.0, state)
            state = tuple(s + 0.5 * v for s, v in zip(state, velocity))
        iterations[warm], finals[warm] = flow.n_iterations, state
    assert iterations[True] < iterations[False]
    for a, b in zip(finals[True], finals[False]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-8)


# -- bad input --------------------------------------------------------------------------------------------------------
def test_stage_parameters_are_checked():
    with pytest.raises(ValueError, match=r"max_omega=2.0 must be in \[1, 2\)"):
        tp.SORSolver(max_omega=2.0)
    with pytest.raises(ValueError, match="patience"):
        tp.SORSolver(patience=0)
    with pytest.raises(ValueError, match="max_failures"):
        tp.NewtonSolver(max_failures=0)
    with pytest.raises(ValueError, match="growth"):
        tp.AndersonSolver(growth=-1.0)
