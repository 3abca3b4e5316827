"""The loss-scale convention of the rules: one step of tp-ei, dtp-ai and bp against a hand computation.

``"thesis"`` (chapter 5 and its toolbox): ``e_L = 2 (h_L - y)``, local gradients ``2 D (h_i - hat h_i)``,
backward weights without the factor; ``"half"`` (chapter 4, the default): the same with factor 1. The hand
computations below write every matrix product out (no package function computes an expected value).
"""
import pytest
import torch
import torch.nn.functional as F

import tpdynamics as tp
from tpdynamics.training import (LOSS_CONVENTIONS, LOSS_UNIT, TrainingConfig, get_learning_rule,
                                 mean_squared_error, output_target, run_experiment)

DT = torch.float64
SLOPE = 0.35


def _slope(a):
    return torch.where(a > 0, torch.ones_like(a), torch.full_like(a, SLOPE))


def _leaky(a):
    return torch.where(a > 0, a, SLOPE * a)


def _leaky_inverse(v):
    return torch.where(v >= 0, v, v / SLOPE)


def _problem(feedback, batch, seed):
    net = tp.LayeredNetwork.build([3, 3, 3, 3], nonlinearity=f"leaky_relu:{SLOPE}", output_nonlinearity="identity",
                                  feedback=feedback, seed=seed, weight_scale=1.0)
    g = torch.Generator().manual_seed(seed + 100)
    h0 = torch.randn(batch, 3, generator=g, dtype=DT)
    y = torch.randn(batch, 3, generator=g, dtype=DT)
    return net, h0, y


def _forward(w, h0):
    a1 = h0 @ w[0].T
    h1 = _leaky(a1)
    a2 = h1 @ w[1].T
    h2 = _leaky(a2)
    h3 = h2 @ w[2].T
    return (h0, h1, h2, h3), (None, _slope(a1), _slope(a2), torch.ones_like(h3))


def _weights(net):
    return [layer.weight.detach().clone() for layer in net.layers]


@pytest.mark.parametrize("convention, c", [("thesis", 2.0), ("half", 1.0)])
def test_bp_step_by_hand(convention, c):
    net, h0, y = _problem(None, 4, 0)
    w = _weights(net)
    (h0, h1, h2, h3), (_, d1, d2, _) = _forward(w, h0)
    delta3 = c * (h3 - y)
    delta2 = d2 * (delta3 @ w[2])
    delta1 = d1 * (delta2 @ w[1])
    eta, batch = 0.07, h0.shape[0]
    expected = [w[0] - eta / batch * delta1.T @ h0, w[1] - eta / batch * delta2.T @ h1,
                w[2] - eta / batch * delta3.T @ h2]
    get_learning_rule("bp", eta=eta, loss_convention=convention).step(net, h0, y)
    for layer, want in zip(net.layers, expected):
        torch.testing.assert_close(layer.weight.detach(), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("convention, c", [("thesis", 2.0), ("half", 1.0)])
def test_tp_ei_step_by_hand(convention, c):
    net, h0, y = _problem("exact", 1, 1)
    w = _weights(net)
    (h0, h1, h2, h3), (_, d1, d2, d3) = _forward(w, h0)
    eta, eta_hat = 0.02, 0.1
    t3 = h3 - eta_hat * c * (h3 - y)                   # output target with e_L = c (h_L - y)
    t2 = t3 @ torch.linalg.inv(w[2]).T                 # W_3^-1 (identity output)
    t1 = _leaky_inverse(t2) @ torch.linalg.inv(w[1]).T  # W_2^-1 s_2^-1
    us = [-eta * c * d * (h - t) for d, h, t in ((d1, h1, t1), (d2, h2, t2), (d3, h3, t3))]
    expected = [wi + u.T @ v for wi, u, v in zip(w, us, (h0, h1, h2))]
    rule = get_learning_rule("tp-ei", eta=eta, eta_hat=eta_hat, epsilon=0.0, loss_convention=convention)
    record = rule.step(net, h0, y)
    assert set(record.sherman_morrison) == {2, 3} and not any(r.clipped for r in record.sherman_morrison.values())
    for layer, want in zip(net.layers, expected):
        torch.testing.assert_close(layer.weight.detach(), want, rtol=1e-12, atol=1e-14)
    for layer in net.layers[1:]:  # the inverse kept by Sherman-Morrison is the inverse of the new weight
        torch.testing.assert_close(layer.feedback.weight_inverse, torch.linalg.inv(layer.weight.detach()),
                                   rtol=1e-9, atol=1e-11)
    assert record.loss == pytest.approx(float(((h3 - y) ** 2).sum()))  # the same loss in both conventions


@pytest.mark.parametrize("convention, c", [("thesis", 2.0), ("half", 1.0)])
def test_dtp_ai_step_by_hand_backward_weights_without_the_factor(convention, c):
    net, h0, y = _problem("learned", 5, 2)
    w = _weights(net)
    q1, q2 = (net.layer(i).feedback.weight.detach().clone() for i in (2, 3))  # g_1 = Q_1 s_2^-1, g_2 = Q_2
    (h0, h1, h2, h3), (_, d1, d2, d3) = _forward(w, h0)
    eta, eta_hat, eta_b, batch, seed = 0.05, 0.1, 0.03, h0.shape[0], 7
    t3 = h3 - eta_hat * c * (h3 - y)
    t2 = h2 + (t3 - h3) @ q2.T                                        # difference correction, eq. 4.101
    t1 = h1 + (_leaky_inverse(t2) - _leaky_inverse(h2)) @ q1.T
    new_w = [wi - eta / batch * (c * d * (h - t)).T @ v
             for wi, d, h, t, v in zip(w, (d1, d2, d3), (h1, h2, h3), (t1, t2, t3), (h0, h1, h2))]
    g = tp.make_generator(seed)  # Alg. A.8 after the forward step: white noise h_i, Q_i from h_{i+1} = f(h_i)
    new_q = []
    for q, w_up in ((q1, new_w[1]), (q2, new_w[2])):
        noise = torch.randn(batch, 3, generator=g, dtype=DT)
        pre = noise @ w_up.T                                          # s^-1(s(W h)) = W h
        new_q.append(q - eta_b / batch * (pre @ q.T - noise).T @ pre)  # no factor c
    rule = get_learning_rule("dtp-ai", eta=eta, eta_hat=eta_hat, eta_backward=eta_b, lambda_=0.0,
                             loss_convention=convention, seed=seed)
    rule.step(net, h0, y)
    for layer, want in zip(net.layers, new_w):
        torch.testing.assert_close(layer.weight.detach(), want, rtol=1e-12, atol=1e-14)
    for i, want in zip((2, 3), new_q):
        torch.testing.assert_close(net.layer(i).feedback.weight.detach(), want, rtol=1e-12, atol=1e-14)


def test_half_is_the_default_and_the_thesis_step_is_larger():
    net, h0, y = _problem("learned", 4, 3)
    steps = {}
    for convention in (None, "half", "thesis"):
        trial = tp.LayeredNetwork.build([3, 3, 3, 3], output_nonlinearity="identity", feedback="learned", seed=3,
                                        weight_scale=1.0)
        kwargs = {} if convention is None else {"loss_convention": convention}
        rule = get_learning_rule("tp-ai", eta=0.01, eta_backward=0.0, **kwargs)
        steps[convention] = rule.weight_updates(trial, h0, y)
        assert rule.hyperparameters()["loss_convention"] == (convention or "half")
    for default, half, thesis in zip(steps[None], steps["half"], steps["thesis"]):
        torch.testing.assert_close(default, half, rtol=0, atol=0)
    # the output layer's update is exactly 4x (2 from e_L, 2 from the local gradient)
    torch.testing.assert_close(steps["thesis"][-1], 4 * steps["half"][-1], rtol=1e-13, atol=1e-15)


def test_output_target_of_each_convention_and_unknown_names():
    h, y = torch.tensor([[1.0, 2.0]], dtype=DT), torch.tensor([[0.0, 1.0]], dtype=DT)
    torch.testing.assert_close(output_target(h, y, 0.1), h - 0.1 * (h - y))
    torch.testing.assert_close(output_target(h, y, 0.1, loss_convention="thesis"), h - 0.2 * (h - y))
    assert set(LOSS_CONVENTIONS.names()) == {"half", "thesis"}
    with pytest.raises(ValueError, match=r"loss_convention='double'. Valid names: half, thesis"):
        get_learning_rule("bp", loss_convention="double")
    with pytest.raises(ValueError, match=r"loss_convention='double'. Valid names: half, thesis"):
        run_experiment(TrainingConfig(methods=("bp",), loss_convention="double", epochs=1))


def test_reported_loss_is_torch_mse_loss_mean_over_samples_and_outputs():
    g = torch.Generator().manual_seed(0)
    outputs, labels = torch.randn(50, 4, generator=g, dtype=DT), torch.randn(50, 4, generator=g, dtype=DT)
    assert mean_squared_error(outputs, labels) == pytest.approx(float(F.mse_loss(outputs, labels)), rel=1e-14)
    assert "torch.nn.MSELoss" in LOSS_UNIT


def test_runner_curves_are_in_mse_units_and_name_the_unit():
    config = TrainingConfig(methods=("bp",), seeds=[0], epochs=1, batches_per_epoch=3, n_train=96, n_test=40)
    result = run_experiment(config)
    run = result["bp"].runs[0]
    problem = tp.training.student_teacher((6, 6, 6), n_train=96, n_test=40, seed=0)
    student = problem.student(None)
    with torch.no_grad():
        before = F.mse_loss(student(problem.test_inputs)[-1], problem.test_labels)
    assert run.test_loss[0] == pytest.approx(float(before), rel=1e-12)
    data = result.to_dict()
    assert data["loss_unit"] == LOSS_UNIT and data["results"][0]["loss_unit"] == LOSS_UNIT
    assert data["results"][0]["hyperparameters"]["loss_convention"] == "thesis"  # the preset's
