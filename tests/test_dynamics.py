import inspect

import pytest
import torch
import torchdiffeq

import tpdynamics as tp
from tpdynamics.errors import TPDynamicsWarning

from .problems import make_problem

DT = torch.float64


def test_rate_is_equation_6_1():
    net, h0, label, dyn = make_problem(mu=0.3, tau=2.0)
    state = dyn.initial_state() + 0.1
    hs = dyn.split(state)
    target = hs[-1] - 0.1 * (hs[-1] - label)
    expected = []
    for i in range(1, net.depth + 1):
        below = h0 if i == 1 else hs[i - 2]
        basal = net.layer(i)(below)
        apical = target if i == net.depth else net.layer(i + 1).feedback_forward(hs[i])
        expected.append((-hs[i - 1] + 0.7 * basal + 0.3 * apical) / 2.0)
    torch.testing.assert_close(dyn(torch.tensor(0.0), state), torch.cat(expected, -1))


@pytest.mark.parametrize("form", tp.FEEDBACK_FORMS.names())
@pytest.mark.parametrize("nonlinearity", tp.NONLINEARITIES.names())
@pytest.mark.parametrize("teaching", ["free", "fixed", "loss"])
def test_block_jacobian_matches_autograd(form, nonlinearity, teaching):
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.1), "loss": {}}[teaching]
    net, h0, label, dyn = make_problem((3, 4, 4, 4), feedback=form, nonlinearity=nonlinearity, output=nonlinearity,
                                       tau=1.5, **kwargs)
    state = dyn.initial_state() + 0.01 * torch.randn(5, 12, dtype=DT, generator=torch.Generator().manual_seed(1))
    assembled = dyn.jacobian_blocks(state).to_dense()
    autograd = torch.stack([torch.autograd.functional.jacobian(lambda x: dyn.select([b]).rate(x[None])[0], state[b])
                            for b in range(5)])
    torch.testing.assert_close(assembled, autograd, rtol=1e-10, atol=1e-12)


def build_dynamics(name, network, h0, label):
    """The registered dynamics model ``name`` on ``network`` with an L2 teaching signal (the keywords it takes)."""
    cls = tp.DYNAMICS.get(name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {"mu": 0.3, "tau": 1.3, "label": label, "eta_hat": 0.1}
    return cls(network, h0, **{k: v for k, v in kwargs.items() if k in accepted})


def check_dynamics(name):
    """The check every registered dynamics model must pass: its Jacobian hook equals autograd of its drive,
    one ``forward`` is one counted evaluation, and the flow settles (ODE) from the initial state."""
    net, h0, label, _ = make_problem((3, 4, 4, 4), nonlinearity="tanh", output="identity")
    dyn = build_dynamics(name, net, h0, label)
    state = dyn.initial_state() + 0.01 * torch.randn(dyn.batch_size, dyn.state_size, dtype=DT,
                                                     generator=torch.Generator().manual_seed(2))
    assembled = dyn.jacobian_blocks(state).to_dense()
    autograd = torch.stack([torch.autograd.functional.jacobian(lambda x: dyn.select([b]).rate(x[None])[0], state[b])
                            for b in range(dyn.batch_size)])
    torch.testing.assert_close(assembled, autograd, rtol=1e-10, atol=1e-12)
    dyn.reset_counters()
    torch.testing.assert_close(dyn(torch.tensor(0.0), state), dyn.drive(state) / dyn.tau)
    assert dyn.nfev == 1
    result = tp.equilibrium(dyn, solver="ode", tol=1e-8)
    assert result.success, result.message


@pytest.mark.parametrize("name", tp.DYNAMICS.names())
def test_every_dynamics_model_passes_the_contract_checks(name):
    check_dynamics(name)


def test_module_works_directly_with_odeint_and_odeint_adjoint():
    net, h0, label, dyn = make_problem(feedback="learned")
    y0 = dyn.initial_state().detach()
    t = torch.tensor([0.0, 2.0], dtype=DT)
    out = torchdiffeq.odeint(dyn, y0, t, rtol=1e-10, atol=1e-12)[-1]
    (g_direct,) = torch.autograd.grad(out.square().sum(), net.layer(2).feedback.weight)
    out_adj = torchdiffeq.odeint_adjoint(dyn, y0, t, rtol=1e-10, atol=1e-12)[-1]
    torch.testing.assert_close(out, out_adj)
    (g_adjoint,) = torch.autograd.grad(out_adj.square().sum(), net.layer(2).feedback.weight)
    torch.testing.assert_close(g_direct, g_adjoint, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mu, error", [(-0.1, ValueError), (1.0, ValueError), (float("nan"), ValueError),
                                       ("0.2", TypeError)])
def test_mu_outside_the_model_is_refused(mu, error):
    net, h0, label, _ = make_problem()
    with pytest.raises(error, match="mu"):
        tp.MixtureDynamics(net, h0, mu=mu)


def test_mu_above_one_half_warns():
    net, h0, label, _ = make_problem()
    with pytest.warns(TPDynamicsWarning, match="mu=0.7 > 0.5"):
        tp.MixtureDynamics(net, h0, mu=0.7)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("inf")])
def test_tau_must_be_positive(tau):
    net, h0, label, _ = make_problem()
    with pytest.raises(ValueError, match="tau=.* must be finite and > 0"):
        tp.MixtureDynamics(net, h0, mu=0.2, tau=tau)


def test_input_checks_name_the_argument_and_fix():
    net, h0, label, _ = make_problem()
    with pytest.raises(ValueError, match=r"h0 has 2 features.*expected 3"):
        tp.MixtureDynamics(net, h0[:, :2], mu=0.2)
    with pytest.raises(ValueError, match=r"h0 must have 2 dimensions.*unsqueeze\(0\)"):
        tp.MixtureDynamics(net, h0[0], mu=0.2)
    bad = h0.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="h0 contains NaN"):
        tp.MixtureDynamics(net, bad, mu=0.2)
    with pytest.raises(TypeError, match=r"h0 has dtype torch.float32.*h0.to\(torch.float64\)"):
        tp.MixtureDynamics(net, h0.float(), mu=0.2)
    with pytest.raises(ValueError, match="label has batch size 2, expected 5"):
        tp.MixtureDynamics(net, h0, mu=0.2, label=label[:2], eta_hat=0.1)
    with pytest.raises(ValueError, match="only one of target, label"):
        tp.MixtureDynamics(net, h0, mu=0.2, label=label, eta_hat=0.1, target=label)
    with pytest.raises(ValueError, match="label needs eta_hat"):
        tp.MixtureDynamics(net, h0, mu=0.2, label=label)
    with pytest.raises(ValueError, match="eta_hat .* needs a label"):
        tp.MixtureDynamics(net, h0, mu=0.2, eta_hat=0.1)


def test_hidden_layer_without_feedback_is_an_error():
    net = tp.LayeredNetwork.build([2, 3, 3], feedback=None, seed=0)
    with pytest.raises(ValueError, match="layer h_1 has no apical input: layer 2 has no feedback mapping g_1"):
        tp.MixtureDynamics(net, torch.zeros(1, 2, dtype=DT), mu=0.2)


def test_multiplexed_bad_input_is_an_error():
    net = tp.LayeredNetwork.build([2, 3, 3], feedback=None, seed=0)
    with pytest.raises(ValueError, match="layer h_1 has no apical input: layer 2 has no feedback mapping g_1"):
        tp.MultiplexedDynamics(net, torch.zeros(1, 2, dtype=DT))
    dyn = tp.MultiplexedDynamics(tp.LayeredNetwork.build([2, 3, 3], seed=0), torch.zeros(1, 2, dtype=DT))
    with pytest.raises(ValueError, match="kind='middle' is not valid; use 'forward' or 'zeros'"):
        dyn.initial_state("middle")


def test_select_restricts_the_batch():
    net, h0, label, dyn = make_problem()
    sub = dyn.select([1, 3])
    state = dyn.initial_state() + 0.05
    torch.testing.assert_close(sub.rate(state[[1, 3]]), dyn.rate(state)[[1, 3]])
    assert sub.batch_size == 2 and dyn.batch_size == 5


def test_divergence_names_time_and_layer():
    w1 = tp.Layer(torch.ones(1, 1, dtype=DT), "identity")
    w2 = tp.Layer(torch.full((1, 1), 30.0, dtype=DT), "identity", tp.FixedRandomFeedback(torch.full((1, 1), 30.0, dtype=DT)))
    dyn = tp.MixtureDynamics(tp.LayeredNetwork([w1, w2]), torch.ones(1, 1, dtype=DT), mu=0.2,
                             target=torch.zeros(1, 1, dtype=DT))
    with pytest.raises(tp.DivergenceError, match=r"non-finite .* in layer h_\d at t=") as info:
        dyn(torch.tensor(3.0), torch.tensor([[float("inf"), 1.0]], dtype=DT))
    assert info.value.layer == 1 and info.value.t == 3.0
