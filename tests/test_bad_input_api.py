"""Bad input through the Python API: clear errors at the boundary, and warnings where the input is legal."""
import math

import pytest
import torch

import tpdynamics as tp
import tpdynamics.validation as validation
from tpdynamics.continuous import get_model, integrate_weights
from tpdynamics.errors import MemoryLimitError, StaleInverseError, TPDynamicsWarning
from tpdynamics.training import LEARNING_RULES, resolve_hyperparameters, train
from tpdynamics.training.data import student_teacher

DT = torch.float64
KIB = 1024


def _net(sizes=(3, 3, 3), **kwargs):
    return tp.LayeredNetwork.build(list(sizes), **kwargs)


# -- empty batch ----------------------------------------------------------------------------------------
def test_empty_batch_is_refused_by_the_forward_pass_the_dynamics_and_a_training_step():
    net, empty = _net(), torch.zeros(0, 3, dtype=DT)
    with pytest.raises(ValueError, match=r"h0 has an empty batch \(shape \(0, 3\)\); pass at least one sample"):
        net(empty)
    with pytest.raises(ValueError, match="h0 has an empty batch"):
        tp.MixtureDynamics(net, empty, mu=0.2)
    rule = LEARNING_RULES.get("bp")()
    with pytest.raises(ValueError, match="h0 has an empty batch"):
        rule.step(net, empty, empty)


def test_empty_state_is_refused_by_equilibrium():
    dyn = tp.MixtureDynamics(_net(), torch.ones(1, 3, dtype=DT), mu=0.2)
    with pytest.raises(ValueError, match="initial_state has an empty batch"):
        tp.equilibrium(dyn, initial_state=torch.zeros(0, 6, dtype=DT))


# -- unknown hyper-parameters and settings -------------------------------------------------------------
def test_unknown_hyperparameter_lists_the_rules_own():
    with pytest.raises(TypeError, match=r"method 'dtp-ai' got unknown hyper-parameters eta_hatt, lambd \(did you "
                                        r"mean eta_hat, lambda_\?\); it takes: eta, eta_hat, eta_backward, "
                                        r"lambda_, noise_std"):
        LEARNING_RULES.get("dtp-ai")(eta_hatt=0.1, lambd=0.0)
    with pytest.raises(TypeError, match=r"method 'bp' got an unknown hyper-parameter etaa \(did you mean eta\?\); "
                                        r"it takes: eta, trainable_layers"):
        LEARNING_RULES.get("bp")(etaa=0.1)


def test_unknown_experiment_setting_and_override():
    with pytest.raises(TypeError, match=r"unknown setting epoch \(did you mean epochs\?\); it takes: task, layers"):
        train("bp", epoch=3)
    with pytest.raises(TypeError, match=r"unknown override batchsize \(did you mean batch_size\?\)"):
        resolve_hyperparameters("bp", batchsize=4)


# -- a weight changed behind the kept inverse --------------------------------------------------------------
def _dynamics():
    net = _net((6, 6, 6, 6), weight_init="orthogonal", seed=3)
    return net, tp.MixtureDynamics(net, torch.randn(4, 6, dtype=DT, generator=torch.Generator().manual_seed(0)),
                                   mu=0.2, label=torch.zeros(4, 6, dtype=DT), eta_hat=0.1)


def test_data_edit_of_a_weight_raises_stale_inverse_before_the_inverse_is_used():
    net, dyn = _dynamics()
    w = net.layer(2).weight
    version = w._version
    w.data[0, 0] += 1.0
    assert w._version == version  # torch's version counter does not see it: the fingerprint must
    with pytest.raises(StaleInverseError, match=r"max \|W W\^-1 - I\| = .*sync_inverse"):
        tp.equilibrium(dyn)
    net.layer(2).sync_inverse()
    assert tp.equilibrium(dyn).success


def test_numpy_view_edit_and_replaced_parameter_are_detected():
    net, dyn = _dynamics()
    net.layer(3).weight.detach().numpy()[2, 1] -= 0.5  # shares memory, bypasses torch entirely
    with pytest.raises(StaleInverseError):
        net.layer(3).feedback_forward(torch.ones(1, 6, dtype=DT) * 0.1)
    net.layer(3).sync_inverse()
    net.layer(2).weight = torch.nn.Parameter(2.0 * net.layer(2).weight.detach())
    with pytest.raises(StaleInverseError):
        net.layer(2).feedback_jacobian(torch.ones(1, 6, dtype=DT) * 0.1)


def test_a_small_change_is_caught():
    net, _ = _dynamics()
    layer = net.layer(2)
    h = torch.full((1, 6), 0.1, dtype=DT)
    layer.feedback_forward(h)  # synced: the fingerprint matches
    with torch.no_grad():
        layer.weight.data[4, 5] += 1e-3  # above sqrt(eps) in W W^-1 - I
    with pytest.raises(StaleInverseError):
        layer.feedback_forward(h)


def test_an_edit_between_rank_one_updates_is_caught_by_the_next_one():
    net, _ = _dynamics()
    layer = net.layer(3)
    gen = torch.Generator().manual_seed(2)
    steps = 2 * layer.feedback.refresh_every + 5  # through full refreshes and incremental fingerprints
    for _ in range(steps):  # each update first checks the fingerprint it advanced the step before
        layer.rank_one_update(0.01 * torch.randn(6, generator=gen, dtype=DT), torch.randn(6, generator=gen, dtype=DT))
    layer.weight.data[5, 0] -= 1e-4
    with pytest.raises(StaleInverseError):
        layer.rank_one_update(torch.zeros(6, dtype=DT), torch.zeros(6, dtype=DT))


def test_rank_one_updates_and_state_dict_round_trips_stay_synced():
    net, dyn = _dynamics()
    layer = net.layer(2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        layer.rank_one_update(0.05 * torch.randn(6, generator=gen, dtype=DT), torch.randn(6, generator=gen, dtype=DT))
    net.load_state_dict({k: v.clone() for k, v in net.state_dict().items()})
    assert tp.equilibrium(dyn).success


# -- ill-conditioned weights -------------------------------------------------------------------------------
def _weight_with_condition(condition, n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=DT))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=DT))
    s = torch.logspace(0, -math.log10(condition), n, dtype=DT)
    return u @ torch.diag(s) @ v.T


def test_ill_conditioned_weight_warns_when_its_inverse_is_formed():
    with pytest.warns(TPDynamicsWarning, match=r"ill-conditioned: condition number 1e\+13 > 1/sqrt\(eps\) = 6.71e\+07 "
                                               r"\(torch.float64\), so its inverse keeps only about 3 of 16 digits"):
        layer = tp.Layer(_weight_with_condition(1e13), "identity", "exact")
    out = layer.feedback_forward(torch.ones(1, 6, dtype=DT))
    assert float(out.abs().max()) > 1e10  # the amplification the warning announces
    with pytest.warns(TPDynamicsWarning, match="ill-conditioned"):
        layer.sync_inverse()


def test_moderately_conditioned_weight_does_not_warn():
    tp.Layer(_weight_with_condition(1e6), "identity", "exact")  # below 1/sqrt(eps): TPDynamicsWarning is an error


# -- decreasing times of the weight flow -------------------------------------------------------------------
def test_integrate_weights_refuses_times_that_do_not_increase():
    net = _net((3, 3, 3), feedback="learned", seed=0)
    h0, y = torch.randn(2, 3, dtype=DT), torch.randn(2, 3, dtype=DT)
    model = get_model("single_phase", mu=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=r"times must increase \(got \[1.0, 0.5, 0.0\]\): the weight flow runs "
                                         r"forward in slow time"):
        integrate_weights(model, net, h0, y, torch.tensor([1.0, 0.5, 0.0]))
    with pytest.raises(ValueError, match="at least two finite"):
        integrate_weights(model, net, h0, y, [0.0])
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, net.parameters()))


def test_layer_factor_compensation_refuses_mu_zero():
    with pytest.raises(ValueError, match=r"mu=0.0 makes the layer factor .* Use mu > 0"):
        get_model("single_phase", mu=0.0, compensate_layer_factor=True)
    get_model("single_phase", mu=0.0)  # without compensation mu = 0 is legal (no learning signal)


# -- memory: refused before allocating ---------------------------------------------------------------------
@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setattr(validation, "available_memory", lambda: 64 * KIB)


def test_available_memory_is_read_on_this_machine():
    available = validation.available_memory()
    assert available is None or available > 0


def test_memory_refusal_names_the_size_and_the_limit(small_memory):
    with pytest.raises(MemoryLimitError, match=r"the weights of layer_sizes=\[100, 100, 100\] would take about "
                                               r"469 KiB, but only 64 KiB of memory is available"):
        tp.LayeredNetwork.build([100, 100, 100])
    with pytest.raises(ValueError, match="n_train=10000"):  # MemoryLimitError is a ValueError
        student_teacher((6, 6, 6), n_train=10_000)
    with pytest.raises(MemoryError, match="batches_per_epoch=100000"):  # ... and a MemoryError
        train("bp", batches_per_epoch=100_000, epochs=1)
    from analysis.scan import stability_scan
    with pytest.raises(MemoryLimitError, match="stability scan of cases=1000000"):
        stability_scan(1_000_000)


def test_newton_refuses_and_auto_falls_back(monkeypatch):
    dyn = tp.MixtureDynamics(_net((4, 4, 4, 4), weight_init="orthogonal"), torch.randn(3, 4, dtype=DT), mu=0.2,
                             label=torch.zeros(3, 4, dtype=DT), eta_hat=0.1)
    need = 3 * 3 * (3 * 16 + 2 * 2 * 16) * 8  # batch 3, blocks 3 x (4x4) + 4 off-diagonal (4x4), float64, x3
    monkeypatch.setattr(validation, "available_memory", lambda: need - 1)
    with pytest.raises(MemoryLimitError, match="Newton's block Jacobians for a batch of 3"):
        tp.equilibrium(dyn, solver="newton")
    result = tp.equilibrium(dyn, solver="auto", max_iterations=0)  # no iterative stage converges in 0 iterations
    assert result.success and result.solver == "sor->anderson->newton (skipped: not enough memory)->ode"
    monkeypatch.setattr(validation, "available_memory", lambda: need)
    assert tp.equilibrium(dyn, solver="newton").success


def test_memory_check_passes_when_the_limit_is_unknown(monkeypatch):
    monkeypatch.setattr(validation, "available_memory", lambda: None)
    validation.check_memory("anything", 1e30)


@pytest.mark.parametrize("n, text", [(512, "512 B"), (1536, "1.5 KiB"), (3 * 2 ** 30, "3 GiB")])
def test_format_bytes(n, text):
    assert validation.format_bytes(n) == text
