"""Two-phase and multiplexed networks, continuous weight dynamics (issue 5)."""
import numpy as np
import pytest
import torch

import tpdynamics as tp
from tpdynamics.continuous import (CONTINUOUS_MODELS, JointFlow, check_phases, get_model, integrate_joint,
                                   integrate_weights, trainable_feedback)

DT = torch.float64


def problem(feedback="exact", nonlinearity="leaky_relu:0.35", sizes=(3, 4, 4, 4), seed=0, batch=4):
    net = tp.LayeredNetwork.build(list(sizes), nonlinearity=nonlinearity, output_nonlinearity="identity",
                                  feedback=feedback, seed=seed, weight_init="orthogonal")
    g = torch.Generator().manual_seed(seed + 1)
    h0 = 0.5 * torch.randn(batch, sizes[0], dtype=DT, generator=g)
    with torch.no_grad():
        y = net(h0)[-1] + 0.3 * torch.randn(batch, sizes[-1], dtype=DT, generator=g)
    return net, h0, y


def perturb_feedback(net, size=0.3, seed=0):
    """Approximate inverses: Q = pinv(W) + relative noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for owner, q in trainable_feedback(net).items():
            q.add_(size * q.norm() / q.numel() ** 0.5 * torch.randn(q.shape, dtype=DT, generator=g))


# -- multiplexed network ----------------------------------------------------------------------------

@pytest.mark.parametrize("form", tp.FEEDBACK_FORMS.names())
@pytest.mark.parametrize("nonlinearity", ["leaky_relu:0.35", "tanh"])
def test_multiplexed_equilibria_are_the_forward_pass_and_the_backward_target(form, nonlinearity):
    """Eqs. 6.47-6.50: h*_i = f_i(h*_(i-1)) and hat h*_i = g_i(hat h*_(i+1)) with hat h_L = h_L^trgt."""
    net, h0, y = problem(form, nonlinearity)
    dyn = tp.MultiplexedDynamics(net, h0, label=y, eta_hat=0.1, tau=0.7)
    result = tp.equilibrium(dyn, solver="ode", tol=1e-10, initial_state=dyn.initial_state("zeros"))
    assert result.success, result.message
    with torch.no_grad():
        forward = net(h0)
        rates, bursts = dyn.event_rates(result.state), dyn.burst_probabilities(result.state)
        for h, f in zip(rates, forward[1:]):
            torch.testing.assert_close(h, f, rtol=0, atol=1e-9)
        target = forward[-1] - 0.1 * (forward[-1] - y)
        torch.testing.assert_close(bursts[-1], target, rtol=0, atol=1e-9)
        for i in range(net.depth - 1, 0, -1):
            torch.testing.assert_close(bursts[i - 1], net.layer(i + 1).feedback_forward(bursts[i]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("form", tp.FEEDBACK_FORMS.names())
def test_multiplexed_jacobian_matches_autograd(form):
    net, h0, y = problem(form, "tanh")
    dyn = tp.MultiplexedDynamics(net, h0, label=y, eta_hat=0.1, tau=1.3)
    state = dyn.initial_state() + 0.01
    assembled = dyn.jacobian_blocks(state).to_dense()
    autograd = torch.stack([torch.autograd.functional.jacobian(lambda x: dyn.select([b]).rate(x[None])[0], state[b])
                            for b in range(h0.shape[0])])
    torch.testing.assert_close(assembled, autograd, rtol=1e-10, atol=1e-12)


def test_feedback_mappings_split_into_voltage_and_rate():
    for form in tp.FEEDBACK_FORMS.names():
        net, h0, y = problem(form, "tanh")
        layer, h = net.layer(3), 0.3 * torch.randn(5, 4, dtype=DT)
        fb = layer.feedback
        torch.testing.assert_close(fb.rate_from_voltage(fb.voltage_input(h, layer)), layer.feedback_forward(h))


# -- learning signals of the three models --------------------------------------------------------------

def test_two_phase_forward_update_vanishes_without_a_teaching_signal_even_with_approximate_inverses():
    net, h0, _ = problem("learned")
    perturb_feedback(net)
    free = tp.equilibrium(tp.MixtureDynamics(net, h0, mu=0.2), tol=1e-12, strict=True)
    y = free.layers[-1].detach()  # the label is the free output: e_L = 0 in the learning phase
    two = get_model("two_phase", mu=0.2, tol=1e-12)
    assert max(float(v.abs().max()) for v in two.weight_velocities(net, h0, y)) < 1e-10
    # the single-phase network, in contrast, learns from its reconstruction errors (section 6.5)
    one = get_model("single_phase", mu=0.2, tol=1e-12)
    assert max(float(v.abs().max()) for v in one.weight_velocities(net, h0, y)) > 1e-3


def _scaled_signals(model_name, mu, net, h0, y):
    model = get_model(model_name, mu=mu, eta_hat=0.01, tol=1e-13)
    states = model.equilibria(net, h0, y)
    return torch.cat(model.learning_signal(net, h0, y, states).scaled(), -1)


def test_with_exact_inverses_two_phase_and_single_phase_signals_agree_to_first_order_in_mu():
    net, h0, y = problem("exact", "tanh")
    mus = np.array([0.2, 0.1, 0.05, 0.025])
    errors = []
    for mu in mus:
        one, two = _scaled_signals("single_phase", mu, net, h0, y), _scaled_signals("two_phase", mu, net, h0, y)
        errors.append(float((one - two).norm() / one.norm()))
    slope = np.polyfit(np.log(mus), np.log(errors), 1)[0]
    assert slope > 0.9 and errors[-1] < 0.05, (slope, errors)


def test_multiplexed_signal_does_not_decay_with_depth():
    net, h0, y = problem("exact", "leaky_relu:0.35", sizes=(4, 4, 4, 4, 4))
    model = get_model("multiplexed", eta_hat=0.01)
    signal = model.learning_signal(net, h0, y, model.equilibria(net, h0, y))
    with torch.no_grad():
        from tpdynamics.theory import propagate_error
        acts = net(h0)
        expected = propagate_error(net, acts, -0.01 * (acts[-1] - y))
    for s, e in zip(signal.signal, expected):  # hat h^l - hat h^f = -eta_hat [prod J_g] e_L, layer factor 1
        torch.testing.assert_close(s, e, rtol=1e-2, atol=1e-8)


def check_continuous_model(name):
    """The check every registered continuous model must pass: with exact inverses and the label equal to the
    free output (no error) no forward weight moves (section 6.4); with an output error some weight does."""
    net, h0, y = problem("exact", "tanh")
    model = get_model(name, mu=0.2, tol=1e-12)
    with torch.no_grad():
        free_output = net(h0)[-1]
    still = model.weight_velocities(net, h0, free_output)
    assert max(float(v.abs().max()) for v in still) < 1e-9, [float(v.abs().max()) for v in still]
    moving = model.weight_velocities(net, h0, y)
    assert len(moving) == net.depth and all(v.shape == layer.weight.shape for v, layer in zip(moving, net.layers))
    assert max(float(v.abs().max()) for v in moving) > 1e-4


@pytest.mark.parametrize("name", CONTINUOUS_MODELS.names())
def test_every_continuous_model_is_still_without_an_output_error(name):
    check_continuous_model(name)


# -- weight flows --------------------------------------------------------------------------------------

def _reset(net, snapshot):
    with torch.no_grad():
        for k, v in snapshot.items():
            net.state_dict()[k].copy_(v)
        for layer in net.layers:
            layer.sync_inverse()


def test_joint_ode_with_slow_weights_follows_the_time_scale_separated_trajectory():
    net, h0, y = problem("exact", "tanh")
    model = get_model("single_phase", mu=0.2, eta_hat=0.1, compensate_layer_factor=True)
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    T = 0.5
    integrate_weights(model, net, h0, y, torch.linspace(0, T, 11))
    separated = [layer.weight.detach().clone() for layer in net.layers]
    change = max(float((a - snapshot[f"layers.{k}.weight"]).abs().max()) for k, a in enumerate(separated))
    errors = []
    for tau_w in (50.0, 500.0):
        _reset(net, snapshot)
        start = model.equilibria(net, h0, y).results["learning"].state
        joint = integrate_joint(model, net, h0, y, tau_w=tau_w, phases=[("learning", T * tau_w)], points=3,
                                initial_neurons=start)
        errors.append(max(float((a - b).abs().max()) for a, b in zip(joint.final_weights, separated)) / change)
    # the neurons lag the moving equilibrium by their relaxation time: the error falls like tau / tau_w
    assert errors[1] < 0.2 * errors[0] and errors[1] < 0.1, errors


def test_weight_flow_lowers_the_loss_and_keeps_exact_inverses_in_sync():
    net, h0, y = problem("exact")
    model = get_model("single_phase", mu=0.2, eta_hat=0.1, compensate_layer_factor=True)
    with torch.no_grad():
        before = float(tp.l2_loss(net(h0)[-1], y).mean())
    traj = integrate_weights(model, net, h0, y, torch.linspace(0, 2.0, 21))
    with torch.no_grad():
        after = float(tp.l2_loss(net(h0)[-1], y).mean())
    assert after < before and traj.n_equilibria == traj.nfev
    # the network holds the final weights, and its exact inverses were kept in sync
    torch.testing.assert_close(net.layer(2).feedback.weight_inverse, torch.linalg.inv(net.layer(2).weight.detach()))


def test_feedback_plasticity_drives_q_towards_the_inverse_in_the_free_phase():
    net, h0, y = problem("learned", sizes=(4, 4, 4))
    perturb_feedback(net, 0.3)
    model = get_model("two_phase", mu=0.2, learning_rate=0.0, feedback_learning_rate=1.0, weight_decay=0.0)
    h0 = torch.randn(64, 4, dtype=DT, generator=torch.Generator().manual_seed(3))  # rich inputs: full-rank states
    y = torch.zeros(64, 4, dtype=DT)
    q, w = net.layer(2).feedback.weight, net.layer(2).weight.detach()
    before = float((q.detach() - torch.linalg.inv(w)).norm())
    integrate_weights(model, net, h0, y, torch.linspace(0, 12.0, 7))
    after = float((q.detach() - torch.linalg.inv(w)).norm())
    assert after < 0.3 * before, (before, after)


# -- bad input -------------------------------------------------------------------------------------------

def test_weight_time_constant_not_larger_than_tau_warns():
    net, h0, y = problem()
    with pytest.warns(tp.TPDynamicsWarning, match="tau_w=1 is not larger than tau=1"):
        integrate_joint(get_model("single_phase"), net, h0, y, tau_w=1.0, phases=[("learning", 1.0)], points=2)


def test_phases_in_the_wrong_order_are_an_error():
    model = get_model("two_phase")
    with pytest.raises(ValueError, match="phases given in the wrong order.*free then learning"):
        check_phases(model, [("learning", 10.0), ("free", 10.0)])
    with pytest.raises(ValueError, match="phase 'sleep' is not a phase of the two_phase model; valid phases: free, learning"):
        check_phases(model, [("sleep", 1.0)])
    net, h0, y = problem()
    with pytest.raises(ValueError, match="wrong order"):
        integrate_joint(model, net, h0, y, tau_w=100.0, phases=[("learning", 10.0)])


def test_unknown_model_lists_the_valid_names():
    assert set(CONTINUOUS_MODELS.names()) == {"single_phase", "two_phase", "multiplexed"}
    with pytest.raises(ValueError, match="Unknown continuous model model='three_phase'.*multiplexed, single_phase, two_phase"):
        get_model("three_phase")


def test_non_converged_phase_is_an_error_not_a_wrong_signal():
    net, h0, y = problem()
    model = get_model("single_phase", tol=1e-30, solver="newton")  # below float64 round-off: cannot converge
    with pytest.raises(tp.EquilibriumNotReachedError, match="single_phase learning phase did not reach equilibrium"):
        model.equilibria(net, h0, y)


def test_bad_model_phase_schedule_and_learning_phase_without_free_state_are_errors():
    net, h0, y = problem()
    with pytest.raises(TypeError, match="model must be a ContinuousModel.*got str"):
        integrate_weights("single_phase", net, h0, y, [0.0, 1.0])
    with pytest.raises(ValueError, match="keyword arguments only with a model name or class"):
        get_model(get_model("two_phase"), mu=0.1)
    model = get_model("two_phase")
    with pytest.raises(ValueError, match="phases is empty"):
        check_phases(model, [])
    with pytest.raises(ValueError, match=r"each phase must be a \(name, duration\) pair, got 'free'"):
        check_phases(model, ["free"])
    with pytest.raises(ValueError, match="duration of phase 'free'=-1.0 must be finite and > 0"):
        check_phases(model, [("free", -1.0)])
    with pytest.raises(ValueError, match="learning phase compares with the free phase's equilibrium"):
        JointFlow(model, net, h0, y, phase="learning", tau_w=100.0)
