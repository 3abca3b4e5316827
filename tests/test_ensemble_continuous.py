"""Continuous learning of an ensemble (tpdynamics.ensemble.continuous) against serial runs of each member.

Oracles: S = 3 members solved as one batch must equal 3 serial runs — the learner's Euler steps of the
two-phase and single-phase networks (learned feedback, per-member rates) to the equilibrium tolerance,
the RK4 weight flow with exact inverses to round-off — and a member whose equilibrium does not settle
(the serial learner raises) stops alone.
"""
import numpy as np
import pytest
import torch

from tpdynamics import LayeredNetwork, MixtureDynamics, MultiplexedDynamics, equilibrium
from tpdynamics.continuous import MultiplexedModel, TwoPhaseModel, get_model, integrate_weights
from tpdynamics.ensemble import EnsembleNetwork
from tpdynamics.ensemble.continuous import (EnsembleContinuousLearner, EnsembleContinuousModel,
                                            ensemble_continuous_support, integrate_weights_ensemble)
from tpdynamics.ensemble.dynamics import EnsembleMixtureDynamics, EnsembleMultiplexedDynamics, unfold
from tpdynamics.errors import EquilibriumNotReachedError
from tpdynamics.training import ClassificationConfig, ContinuousLearner, run_classification
from .problems import write_blobs

S, B, STEPS, TOL = 3, 4, 4, 1e-10
SIZES = (4, 5, 5, 3)


def _networks(feedback="learned", sizes=SIZES, scale_member=None, scale=1.0):
    nets = [LayeredNetwork.build(sizes, output_nonlinearity="identity", feedback=feedback, seed=10 + s)
            for s in range(S)]
    if scale_member is not None:
        with torch.no_grad():
            for layer in nets[scale_member].layers[1:]:
                layer.feedback.weight.mul_(scale)
    return nets


def _data(steps, batch, n_in, n_out, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(S, steps, batch, n_in, generator=g, dtype=torch.float64),
            torch.randn(S, steps, batch, n_out, generator=g, dtype=torch.float64))


def _weights(net):
    return [layer.weight.detach().clone() for layer in net.layers], \
        [layer.feedback.weight.detach().clone() for layer in net.layers[1:]]


@pytest.mark.parametrize("model", ["mixture", "multiplexed"])
def test_folded_equilibria_equal_serial_solves(model):
    serial, members = _networks(), _networks()
    x, y = _data(1, B, SIZES[0], SIZES[-1])
    if model == "mixture":
        dynamics = EnsembleMixtureDynamics(EnsembleNetwork(members), x[:, 0], mu=0.1, label=y[:, 0], eta_hat=0.1)

        def single(s):
            return MixtureDynamics(serial[s], x[s, 0], mu=0.1, label=y[s, 0], eta_hat=0.1)
    else:
        dynamics = EnsembleMultiplexedDynamics(EnsembleNetwork(members), x[:, 0], label=y[:, 0], eta_hat=0.1)

        def single(s):
            return MultiplexedDynamics(serial[s], x[s, 0], label=y[s, 0], eta_hat=0.1)
    together = equilibrium(dynamics, tol=TOL)
    alone = [equilibrium(single(s), tol=TOL) for s in range(S)]
    assert together.success
    assert torch.allclose(unfold(together.state, S), torch.stack([r.state for r in alone]), atol=1e-13, rtol=0)
    # the Jacobian per row is each member's (Newton and the stability check read it)
    dense = dynamics.jacobian_blocks(together.state).to_dense()
    for s in range(S):
        ref = single(s).jacobian_blocks(alone[s].state).to_dense()
        assert torch.allclose(dense[s * B:(s + 1) * B], ref, atol=1e-12, rtol=0)
    # a row subset with uneven members (rows of members 0 and 2 only, 1 and 3 of them) multiplies per row
    rows = torch.tensor([1, 8, 9, 11])
    sub = dynamics.select(rows)
    assert sub._per_group is None
    assert torch.allclose(sub.drive(together.state[rows]), dynamics.drive(together.state)[rows], atol=1e-15, rtol=0)


@pytest.mark.parametrize("method", ["two-phase", "single-phase", "multiplexed"])
@pytest.mark.parametrize("warm_start", ["free", None])
def test_learner_equals_serial_runs(method, warm_start):
    if method == "single-phase" and warm_start == "free":
        pytest.skip("one phase: no free-phase warm start")
    serial, members = _networks(), _networks()
    x, y = _data(STEPS, B, SIZES[0], SIZES[-1])
    settings = dict(mu=0.1, eta_hat=0.1, tol=TOL)
    rates = [dict(eta=0.02 * (s + 1), eta_backward=0.01 * s, lambda_=0.001 * s) for s in range(S)]
    alone = [ContinuousLearner(method, **settings, **rates[s]) for s in range(S)]
    ensemble = EnsembleNetwork(members)
    together = EnsembleContinuousLearner([ContinuousLearner(method, **settings, **rates[s]) for s in range(S)],
                                         ensemble, warm_start=warm_start)
    for k in range(STEPS):
        losses = [alone[s].step(serial[s], x[s, k], y[s, k]).loss for s in range(S)]
        record = together.step(x[:, k], y[:, k])
        assert not record.failures and bool(record.stepped.all())
        assert torch.allclose(record.loss, torch.tensor(losses, dtype=torch.float64), rtol=1e-9, atol=0)
    # the equilibria are equal to TOL; the velocities divide the signal by the layer factor c_1 = (1/9)^3
    bound = STEPS * 0.06 * 729 * 10 * TOL
    for s in range(S):
        (w_a, q_a), (w_b, q_b) = _weights(serial[s]), _weights(members[s])
        for a, b in zip(w_a + q_a, w_b + q_b):
            assert float((a - b).abs().max()) < bound
    moved = max(float((a - b).abs().max()) for a, b in zip(_weights(members[2])[0], _weights(_networks()[2])[0]))
    assert moved > 1e3 * bound  # the comparison can fail: the steps moved the weights by far more
    assert together.n_equilibria == alone[0].n_equilibria


def test_failing_member_stops_alone():
    """Member 1's feedback (10 x pinv) makes its free phase unsolvable within the budget: serially it raises."""
    budget = dict(mu=0.1, eta=0.05, tol=TOL, max_iterations=20, max_steps=20)
    serial, members = _networks(scale_member=1, scale=10.0), _networks(scale_member=1, scale=10.0)
    x, y = _data(2, B, SIZES[0], SIZES[-1])
    start = _weights(members[1])
    alone = [ContinuousLearner("two-phase", **budget) for _ in range(S)]
    with pytest.raises(EquilibriumNotReachedError):
        alone[1].step(serial[1], x[1, 0], y[1, 0])
    together = EnsembleContinuousLearner([ContinuousLearner("two-phase", **budget) for _ in range(S)],
                                         EnsembleNetwork(members))
    record = together.step(x[:, 0], y[:, 0])
    assert record.stepped.tolist() == [True, False, True] and list(record.failures) == [1]
    assert "free phase did not reach equilibrium" in record.failures[1]
    active = record.stepped
    record = together.step(x[:, 1], y[:, 1], active=active)
    assert record.stepped.tolist() == [True, False, True]
    for s in (0, 2):
        for k in range(2):
            alone[s].step(serial[s], x[s, k], y[s, k])
        for a, b in zip(*(_weights(n)[0] for n in (serial[s], members[s]))):
            assert float((a - b).abs().max()) < 2 * 0.05 * 729 * 10 * TOL
    assert all(torch.equal(a, b) for a, b in zip(start[0] + start[1], sum(_weights(members[1]), [])))


@pytest.mark.parametrize("name", ["single_phase", "two_phase"])
def test_weight_flow_equals_serial_flows(name):
    """RK4 over each sample with exact inverses (the benchmark's epoch): the same steps, equal to round-off."""
    sizes = (4, 4, 4)
    serial = [LayeredNetwork.build(sizes, output_nonlinearity="identity", feedback="exact", seed=s) for s in range(S)]
    members = [LayeredNetwork.build(sizes, output_nonlinearity="identity", feedback="exact", seed=s) for s in range(S)]
    ensemble = EnsembleNetwork(members)
    x, y = _data(3, 1, 4, 4)
    model = get_model(name, mu=0.1, eta_hat=0.1, compensate_layer_factor=True, tol=TOL)
    for k in range(3):
        for s in range(S):
            integrate_weights(model, serial[s], x[s, k], y[s, k], [0.0, 0.01], method="rk4")
        out = integrate_weights_ensemble(model, ensemble, x[:, k], y[:, k], [0.0, 0.01], method="rk4")
    assert out.nfev == 4 and out.n_equilibria == 4 * len(model.phases)
    for s in range(S):
        for a, b in zip(serial[s].layers, members[s].layers):
            assert torch.allclose(a.weight, b.weight, atol=1e-12, rtol=0)
        for a, b in zip(serial[s].layers[1:], members[s].layers[1:]):
            assert torch.allclose(a.feedback.weight_inverse, b.feedback.weight_inverse, atol=1e-10, rtol=0)
        members[s].layers[1].feedback.check_synced(members[s].layers[1].weight)  # members usable serially after


def test_support_and_bad_input():
    assert ensemble_continuous_support(TwoPhaseModel) is None and ensemble_continuous_support(MultiplexedModel) is None

    class Custom(TwoPhaseModel):
        def learning_signal(self, *args, **kwargs):
            return super().learning_signal(*args, **kwargs)

    assert "overrides learning_signal" in ensemble_continuous_support(Custom)
    ensemble = EnsembleNetwork(_networks())
    with pytest.raises(ValueError, match="cannot run as an ensemble"):
        EnsembleContinuousModel(Custom(), ensemble)
    with pytest.raises(ValueError, match=r"h0 must have shape \(S=3, B, n\)"):
        EnsembleMixtureDynamics(ensemble, torch.zeros(2, 1, 4, dtype=torch.float64), mu=0.1)
    with pytest.raises(ValueError, match="differs from learners\\[0\\] in mu"):
        EnsembleContinuousLearner([ContinuousLearner("two-phase", mu=0.1 + 0.1 * s) for s in range(S)], ensemble)
    with pytest.raises(ValueError, match="warm_start='forward' is not valid"):
        EnsembleContinuousLearner([ContinuousLearner("two-phase") for _ in range(S)], ensemble, warm_start="forward")


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """3 Gaussian blobs in 5 dimensions (as tests/test_classification.py): 150 + 30 samples."""
    return write_blobs(tmp_path_factory.mktemp("blobs") / "blobs.npz")


def test_classification_seeds_as_one_ensemble_equal_serial_runs(blobs):
    config = ClassificationConfig(methods=("two-phase", "multiplexed"), task=blobs, hidden=(6, 6), seeds=3, epochs=3,
                                  batch_size=30, eta=0.1, eta_hat=0.3, patience=1)
    together, alone = run_classification(config), run_classification(config, ensemble=False)
    for a, b in (pair for m in config.methods for pair in zip(together[m].runs, alone[m].runs)):
        assert (a["status"], a["steps"], a["equilibria"], a["best_epoch"], a["message"]) == \
            (b["status"], b["steps"], b["equilibria"], b["best_epoch"], b["message"])
        assert a["test_accuracy"] == b["test_accuracy"] and a["val_accuracy"] == b["val_accuracy"]
        assert np.allclose(a["test_loss"], b["test_loss"], rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="device='cpu' applies to the ensemble path only"):
        run_classification(config, ensemble=False, device="cpu")
