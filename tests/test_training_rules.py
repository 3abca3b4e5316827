"""Learning rules of Appendix A: each update checked against an independent computation."""
import copy

import pytest
import torch

import tpdynamics as tp
from tpdynamics.errors import TPDynamicsWarning
from tpdynamics.training import (LEARNING_RULES, ColouredNoise, compare_methods, get_learning_rule, student_teacher,
                                 train_backward_weights, train_original_backward_weights)
from tpdynamics.training.rules import Backpropagation, TargetPropagationRule

DT = torch.float64


def _rules(predicate) -> list[str]:
    """The registered rules whose class satisfies ``predicate`` (read at collection time: new rules are included)."""
    return [name for name in LEARNING_RULES.names() if predicate(LEARNING_RULES.get(name))]


#: Backpropagation and its output-only control.
BP_METHODS = _rules(lambda cls: issubclass(cls, Backpropagation))
#: TP rules whose forward update is the plain local-loss gradient step on every layer (not randomized, not
#: modified, no rank-one inverse update).
PLAIN_TP_METHODS = _rules(lambda cls: issubclass(cls, TargetPropagationRule) and not (
    cls.randomized or cls.modified or cls.sherman_morrison))
#: Rules that keep W_i^-1 by the Sherman-Morrison formula.
EXACT_INVERSE_METHODS = _rules(lambda cls: cls.sherman_morrison)


def _batch(network, batch, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    h0 = torch.randn(batch, network.layer_sizes[0], generator=g, dtype=DT)
    with torch.no_grad():
        y = network(h0)[-1] + scale * torch.randn(batch, network.layer_sizes[-1], generator=g, dtype=DT)
    return h0, y


def _weights(network):
    return [layer.weight.detach().clone() for layer in network.layers]


def _deltas(network, before):
    return [layer.weight.detach() - w for layer, w in zip(network.layers, before)]


# -- backpropagation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", BP_METHODS)
def test_bp_step_is_the_autograd_gradient_step(method):
    net = tp.LayeredNetwork.build([4, 5, 3, 2], nonlinearity="tanh", output_nonlinearity="leaky_relu:0.2",
                                  feedback=None, seed=1)
    h0, y = _batch(net, 7, 2)
    reference = copy.deepcopy(net)
    loss = tp.l2_loss(reference(h0)[-1], y).mean()  # mean over the batch of 1/2 ||h_L - y||^2
    grads = torch.autograd.grad(loss, [layer.weight for layer in reference.layers])
    before = _weights(net)
    record = get_learning_rule(method, eta=0.3).step(net, h0, y)
    trained = (3,) if LEARNING_RULES.get(method).default_trainable_layers == "output" else (1, 2, 3)
    assert record.updated_layers == trained
    for i, (delta, grad) in enumerate(zip(_deltas(net, before), grads), start=1):
        expected = -0.3 * grad if i in trained else torch.zeros_like(grad)
        torch.testing.assert_close(delta, expected, rtol=1e-12, atol=1e-14)
    assert record.loss == pytest.approx(float(2 * loss.detach()))


# -- forward updates of the TP family are local-loss gradient steps (eq. 4.12) --------------------------------
@pytest.mark.parametrize("method", PLAIN_TP_METHODS)
def test_tp_forward_update_is_the_local_loss_gradient(method):
    cls = LEARNING_RULES.get(method)
    net = tp.LayeredNetwork.build([3, 4, 4, 3], output_nonlinearity="identity", feedback=cls.feedback, seed=3)
    h0, y = _batch(net, 6, 4)
    reference = copy.deepcopy(net)
    with torch.no_grad():
        acts = reference(h0)
        top = tp.training.output_target(acts[-1], y, 0.1)
        targets = tp.training.propagate_targets(reference, acts, top, difference=cls.difference)
    before = _weights(net)
    extra = {"eta_backward": 0.0} if "eta_backward" in cls.parameters else {}
    get_learning_rule(method, eta=0.2, eta_hat=0.1, **extra).step(net, h0, y)
    for i, delta in enumerate(_deltas(net, before), start=1):
        layer = reference.layer(i)
        local = 0.5 * ((layer(acts[i - 1].detach()) - targets[i]) ** 2).sum(-1).mean()
        (grad,) = torch.autograd.grad(local, [layer.weight])
        torch.testing.assert_close(delta, -0.2 * grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", LEARNING_RULES.names())
def test_weight_updates_preview_the_step_without_changing_anything(method):
    cls = LEARNING_RULES.get(method)
    net = tp.LayeredNetwork.build([3, 3, 3, 3], output_nonlinearity="identity", feedback=cls.feedback, seed=20)
    h0, y = _batch(net, 1 if cls.sherman_morrison else 2, 21)  # batch normalisation needs two samples
    rule = get_learning_rule(method, seed=4)
    before = _weights(net)
    preview = rule.weight_updates(net, h0, y)
    assert all(torch.equal(w, layer.weight) for w, layer in zip(before, net.layers))
    rule.step(net, h0, y)  # the same random layer: the preview did not advance the generator
    for expected, delta in zip(preview, _deltas(net, before)):
        torch.testing.assert_close(delta, expected, rtol=1e-12, atol=1e-15)


def test_tp_ei_keeps_the_inverse_exact_and_matches_recomputed_inverses():
    nets = [tp.LayeredNetwork.build([5, 5, 5, 5], output_nonlinearity="identity", feedback="exact", seed=5,
                                    weight_init="orthogonal") for _ in range(2)]
    rules = [get_learning_rule("tp-ei", eta=0.05, inverse_update=mode, epsilon=0.5)
             for mode in ("sherman-morrison", "recompute")]
    for step in range(40):
        h0, y = _batch(nets[0], 1, 100 + step)
        records = [rule.step(net, h0, y) for rule, net in zip(rules, nets)]
        assert set(records[0].sherman_morrison) == {2, 3}  # W_1 has no inverse: plain step
    for a, b in zip(nets[0].layers, nets[1].layers):
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-9, atol=1e-10)
    for layer in nets[0].layers[1:]:
        eye = torch.eye(5, dtype=DT)
        torch.testing.assert_close(layer.weight.detach() @ layer.feedback.weight_inverse, eye, rtol=0, atol=1e-9)


def test_tp_ei_rank_one_step_uses_u_and_v_of_eqs_4_17_4_18():
    net = tp.LayeredNetwork.build([4, 4, 4], output_nonlinearity="identity", feedback="exact", seed=6)
    h0, y = _batch(net, 1, 7)
    with torch.no_grad():
        acts = net(h0)
        targets = tp.training.propagate_targets(net, acts, tp.training.output_target(acts[-1], y, 0.1))
        u = -0.02 * net.layer(2).derivative(acts[1])[0] * (acts[2] - targets[2])[0]
        d = float(acts[1][0] @ net.layer(2).feedback.weight_inverse @ u)
    record = get_learning_rule("tp-ei", eta=0.02).step(net, h0, y)
    assert record.sherman_morrison[2].d == pytest.approx(d, rel=1e-12)


def test_randomized_rules_update_one_layer_and_are_reproducible():
    def run(seed):
        net = tp.LayeredNetwork.build([4, 4, 4, 4], output_nonlinearity="identity", feedback="exact", seed=8)
        rule = get_learning_rule("rtp-ei", eta=0.01, seed=seed)
        chosen = []
        for step in range(30):
            before = _weights(net)
            record = rule.step(net, *_batch(net, 1, step))
            changed = tuple(i for i, d in enumerate(_deltas(net, before), start=1) if d.abs().max() > 0)
            assert changed == record.updated_layers and len(changed) == 1
            chosen.append(changed[0])
        return chosen

    first = run(0)
    assert set(first) == {1, 2, 3}
    assert run(0) == first and run(1) != first


def test_modified_rule_uses_the_inverse_derivative():
    net = tp.LayeredNetwork.build([3, 3, 3], output_nonlinearity="identity", feedback="exact", seed=9)
    h0, y = _batch(net, 1, 10)
    reference = copy.deepcopy(net)
    with torch.no_grad():
        acts = reference(h0)
        targets = tp.training.propagate_targets(reference, acts, tp.training.output_target(acts[-1], y, 0.1))
    rule = get_learning_rule("rmtp-ei", eta=0.01, trainable_layers=(1,))
    before = _weights(net)
    rule.step(net, h0, y)
    d = reference.layer(1).derivative(acts[0])
    expected = -0.01 * torch.outer(((acts[1] - targets[1]) / d)[0], acts[0][0])
    torch.testing.assert_close(_deltas(net, before)[0], expected, rtol=1e-12, atol=1e-15)


def test_mtp_normalises_the_batch_and_counters_it_in_the_targets():
    net = tp.LayeredNetwork.build([3, 4, 4], output_nonlinearity="identity", feedback="exact", seed=11)
    h0, y = _batch(net, 16, 12)
    h0 = 3.0 + 2.0 * h0  # un-normalised input: batch normalisation must matter
    rule = get_learning_rule("mtp", eta=0.01, eta_hat=0.2)
    with torch.no_grad():
        plain = net(h0)[-1]
    torch.testing.assert_close(rule.predict(net, h0), plain)  # untrained: the plain network
    reference = copy.deepcopy(net)
    before = _weights(net)
    rule.step(net, h0, y)
    with torch.no_grad():  # Alg. A.1 written out independently
        x0 = (h0 - h0.mean(0)) / torch.sqrt(h0.var(0, unbiased=False) + 1e-5)
        h1 = reference.layer(1)(x0)
        x1 = (h1 - h1.mean(0)) / torch.sqrt(h1.var(0, unbiased=False) + 1e-5)
        h2 = reference.layer(2)(x1)
        t2 = h2 - 0.2 * (h2 - y)
        t1 = torch.sqrt(h1.var(0, unbiased=False) + 1e-5) * (x1 + (t2 - h2) @ torch.linalg.inv(
            reference.layer(2).weight).T) + h1.mean(0)
        d1 = reference.layer(1).derivative(x0)
        expected1 = -(0.01 / 16) * ((h1 - t1) / d1).T @ x0
        expected2 = -(0.01 / 16) * (h2 - t2).T @ x1
    deltas = _deltas(net, before)
    torch.testing.assert_close(deltas[0], expected1, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(deltas[1], expected2, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(net.layer(2).weight.detach() @ net.layer(2).feedback.weight_inverse,
                               torch.eye(4, dtype=DT), rtol=0, atol=1e-10)


# -- backward weights (A.8 / A.9) ------------------------------------------------------------------------------
def test_a8_step_is_the_gradient_of_the_regularised_inverse_loss():
    net = tp.LayeredNetwork.build([3, 4, 5], feedback="learned", feedback_init="random", seed=13)
    q = net.layer(2).feedback.weight
    reference = q.detach().clone().requires_grad_(True)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    h = torch.randn(8, 4, generator=g1, dtype=DT) * 0.7
    with torch.no_grad():
        pre = net.layer(2).nonlinearity.inverse(net.layer(2)(h))
    loss = 0.5 * ((pre @ reference.T - h) ** 2).sum(-1).mean() + 0.5 * 0.3 * (reference ** 2).sum()
    (grad,) = torch.autograd.grad(loss, [reference])
    losses = train_backward_weights(net, eta_backward=0.05, lambda_=0.3, batch_size=8, noise_std=0.7, generator=g2)
    torch.testing.assert_close(q.detach(), reference.detach() - 0.05 * grad, rtol=1e-12, atol=1e-14)
    assert set(losses) == {1}


def test_a9_step_is_the_gradient_of_the_inverse_loss_on_the_activations():
    net = tp.LayeredNetwork.build([3, 4, 4, 3], nonlinearity="tanh", feedback="original", feedback_init="random",
                                  seed=14)
    h0, _ = _batch(net, 5, 15)
    with torch.no_grad():
        acts = net(h0)
    expected = {}
    for i in (1, 2):
        fb = net.layer(i + 1).feedback
        q = fb.weight.detach().clone().requires_grad_(True)
        loss = 0.5 * ((fb.nonlinearity(acts[i + 1] @ q.T) - acts[i]) ** 2).sum(-1).mean()
        (grad,) = torch.autograd.grad(loss, [q])
        expected[i] = q.detach() - 0.1 * grad
    train_original_backward_weights(net, acts, eta_backward=0.1)
    for i in (1, 2):
        torch.testing.assert_close(net.layer(i + 1).feedback.weight.detach(), expected[i], rtol=1e-12, atol=1e-14)


# -- every rule learns; bp-fixed leaves the hidden layers alone ------------------------------------------------------
def check_rules_learn(methods):
    """The check every registered rule must pass: two short epochs lower the student-teacher test loss."""
    result = compare_methods(methods, layers=(4, 4, 4), seeds=1, epochs=2, batches_per_epoch=150, n_test=200)
    for name, r in result.results.items():
        assert r.n_diverged == 0, (name, r.runs[0].message)
        assert r.test_loss[-1] < 0.9 * r.test_loss[0], (name, r.test_loss)
    assert len({r.test_loss[0] for r in result.results.values()}) == 1  # identical data and initialisation


def test_every_registered_rule_lowers_the_student_teacher_test_loss():
    check_rules_learn(LEARNING_RULES.names())


def test_bp_fixed_leaves_the_hidden_layers_unchanged():
    problem = student_teacher((4, 4, 4, 4), n_train=64, n_test=10, seed=2)
    net = problem.student()
    before = _weights(net)
    rule = get_learning_rule("bp-fixed", eta=0.01)
    for b in range(8):
        rule.step(net, problem.train_inputs[8 * b:8 * b + 8], problem.train_labels[8 * b:8 * b + 8])
    deltas = _deltas(net, before)
    assert all(torch.equal(d, torch.zeros_like(d)) for d in deltas[:-1])
    assert deltas[-1].abs().max() > 0


# -- bad input ---------------------------------------------------------------------------------------------------
def test_unknown_method_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"method='tp-magic'.*Valid names: bp, bp-fixed, dtp-ai"):
        get_learning_rule("tp-magic")


@pytest.mark.parametrize("method", EXACT_INVERSE_METHODS)
def test_exact_inverse_rules_refuse_unequal_layers(method):
    net = tp.LayeredNetwork.build([6, 6, 4], feedback="learned", seed=0)
    with pytest.raises(ValueError, match=r"exact inverses.*n_1 = \.\.\. = n_L.*\[6, 6, 4\]"):
        get_learning_rule(method).step(net, *_batch(net, 1, 0))
    with pytest.raises(ValueError, match=r"n_1 = \.\.\. = n_L.*\[6, 6, 4\]"):
        compare_methods([method], layers=(6, 6, 4), epochs=1)


@pytest.mark.parametrize("method", EXACT_INVERSE_METHODS)
def test_sherman_morrison_rules_need_batch_size_one(method):
    net = tp.LayeredNetwork.build([4, 4, 4], feedback="exact", seed=0)
    with pytest.raises(ValueError, match=r"rank-one change.*rank up to B.*batch_size must be 1 \(got 8\)"):
        get_learning_rule(method).step(net, *_batch(net, 8, 0))
    with pytest.raises(ValueError, match=r"batch_size must be 1 \(got 32\)"):
        compare_methods([method], batch_size=32, epochs=1)


def test_batch_normalisation_needs_two_samples_and_feedback_form_is_checked():
    net = tp.LayeredNetwork.build([4, 4, 4], feedback="exact", seed=0)
    with pytest.raises(ValueError, match=r"at least 2 samples; got batch_size=1"):
        get_learning_rule("mtp").step(net, *_batch(net, 1, 0))
    with pytest.raises(ValueError, match=r"needs 'learned' feedback on layers 2..L, but layer 2 has 'exact'"):
        get_learning_rule("dtp-ai").step(net, *_batch(net, 4, 0))
    with pytest.raises(ValueError, match=r"trainable_layers=\[5\] contains \[5\], outside 1..L=2"):
        get_learning_rule("bp", trainable_layers=(5,)).step(net, *_batch(net, 4, 0))


def test_bad_hyperparameters_and_unused_options():
    with pytest.raises(ValueError, match=r"eta=-0.1 must be finite and > 0"):
        get_learning_rule("bp", eta=-0.1)
    with pytest.raises(ValueError, match=r"inverse_update='lu' is not valid"):
        get_learning_rule("tp-ei", inverse_update="lu")
    with pytest.warns(TPDynamicsWarning, match=r"'bp' does not use eta_hat, epsilon; they have no effect"):
        get_learning_rule("bp", eta_hat=0.1, epsilon=0.5)
    with pytest.raises(ValueError, match=r"noise\[1\] has dimension 3, but h_1 has 4 units"):
        net = tp.LayeredNetwork.build([4, 4, 4], feedback="learned", seed=0)
        train_backward_weights(net, eta_backward=0.1, noise={1: ColouredNoise(torch.ones(3, 2, dtype=DT))})


def test_bad_arguments_of_the_step_and_of_backward_training():
    net = tp.LayeredNetwork.build([4, 4, 4], feedback="learned", seed=0)
    with pytest.raises(TypeError, match=r"network must be a tpdynamics LayeredNetwork, got dict"):
        get_learning_rule("bp").step({}, *_batch(net, 4, 0))
    with pytest.raises(ValueError, match=r"eta has 3 entries but the network has L=2 layers"):
        get_learning_rule("bp", eta=(0.1, 0.1, 0.1)).step(net, *_batch(net, 4, 0))
    with pytest.raises(ValueError, match=r"trainable_layers=3 must be None \(all layers\), 'output' or a non-empty"):
        get_learning_rule("bp", trainable_layers=3)
    with pytest.raises(ValueError, match=r"batch_size=0 must be >= 1"):
        train_backward_weights(net, eta_backward=0.1, batch_size=0)
