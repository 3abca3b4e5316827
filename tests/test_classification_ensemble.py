"""The classification runner's seeds as one ensemble for the discrete rules: the serial runs' numbers, member by member.

Oracle: :func:`~tpdynamics.training.classification.run_classification_task`, the serial task, for each member
(float64; 1e-12 relative, as the student-teacher ensembles in ``tests/test_ensemble.py``). The blobs task is a
local file, so these run without the ``data`` extra.
"""
from __future__ import annotations

import copy
import math

import pytest

from tpdynamics.data import load_task
from tpdynamics.ensemble import classification as ensemble_classification
from tpdynamics.ensemble.classification import ensembled_methods, run_classification_ensemble
from tpdynamics.training import ClassificationConfig, run_classification
from tpdynamics.training.classification import classification_tasks, run_classification_task
from tpdynamics.training.rules import LEARNING_RULES

from .problems import write_blobs

TOLERANCE = 1e-12
#: the rules a classification run offers (the exact-inverse ones need batch size 1 and are refused)
RULES = [m for m in LEARNING_RULES.names() if not LEARNING_RULES.get(m).sherman_morrison]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """3 Gaussian blobs in 5 dimensions (as tests/test_classification.py): 150 + 30 samples."""
    return str(write_blobs(tmp_path_factory.mktemp("blobs") / "blobs.npz"))


def _gap(serial, ensemble, path="run"):
    """Largest relative float difference (above 1; NaN equals NaN); every other value must be equal."""
    if isinstance(serial, dict):
        assert serial.keys() == ensemble.keys(), path
        return max([0.0] + [_gap(serial[k], ensemble[k], f"{path}.{k}") for k in serial if k != "seconds"])
    if isinstance(serial, list):
        assert len(serial) == len(ensemble), path
        return max([0.0] + [_gap(a, b, f"{path}[{k}]") for k, (a, b) in enumerate(zip(serial, ensemble))])
    if isinstance(serial, float):
        if math.isnan(serial) or math.isnan(ensemble):
            assert math.isnan(serial) and math.isnan(ensemble), (path, serial, ensemble)
            return 0.0
        return abs(serial - ensemble) / max(1.0, abs(serial))
    assert serial == ensemble, (path, serial, ensemble)
    return 0.0


def _configs(blobs, method="tp-ai", **settings):
    probe = load_task(blobs, seed=0)
    config = ClassificationConfig(methods=(method,), task=blobs, hidden=(8, 8), epochs=3, batch_size=10, **settings)
    tasks = classification_tasks(config, n_features=probe.n_features, n_classes=probe.n_classes)[3]
    return [copy.deepcopy(t.config) for t in tasks]  # each its own hyper-parameter dict (the tasks share one)


def test_every_rule_a_classification_run_offers_is_ensembled():
    assert set(RULES) == {"bp", "bp-fixed", "fa", "tp-ai", "rtp-ai", "dtp-ai", "rdtp-ai", "tp-orig", "rtp-orig",
                          "dtp-orig", "rdtp-orig", "mtp", "rmtp"}
    assert set(RULES) <= set(ensembled_methods())


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_every_rule_as_an_ensemble_gives_the_serial_runs(blobs, loss, monkeypatch):
    groups = []
    original = ensemble_classification.run_classification_ensemble

    def spy(configs, **options):
        groups.append(sorted({c["method"] for c in configs}))
        return original(configs, **options)

    monkeypatch.setattr(ensemble_classification, "run_classification_ensemble", spy)
    config = ClassificationConfig(methods=RULES, task=blobs, loss=loss, hidden=(8, 8), seeds=3, epochs=3,
                                  batch_size=10, patience=1)
    together = run_classification(config)
    monkeypatch.setattr(ensemble_classification, "run_classification_ensemble", original)
    alone = run_classification(config, ensemble=False)
    # every rule trained as an ensemble (twins with equal presets share one: tp-ai with rtp-ai, ...)
    assert sorted(m for g in groups for m in g) == sorted(RULES)
    assert ["rtp-ai", "tp-ai"] in groups
    stopped_early = 0
    for method in RULES:
        for a, b in zip(alone[method].runs, together[method].runs):
            assert _gap(a, b) <= TOLERANCE, method
            stopped_early += a["message"].startswith("early stop")
    assert stopped_early > 0  # the patience path is exercised (and matched, message and best epoch included)


def test_a_member_that_diverges_stops_alone_and_the_rates_are_per_member(blobs):
    configs = _configs(blobs, seeds=4)
    configs[1]["hyperparameters"]["eta"] = 50.0  # its loss passes the limit at step 5
    configs[2]["hyperparameters"]["eta"] = 0.05
    configs[3]["hyperparameters"]["eta"] = 1e200  # its weights overflow in step 1: a non-finite output at step 2
    together = run_classification_ensemble(configs)
    alone = [run_classification_task(copy.deepcopy(c)) for c in configs]
    assert [r["run"]["status"] for r in alone] == ["completed", "diverged", "completed", "diverged"]
    assert alone[1]["run"]["message"].startswith("non-finite or overflowing training loss at epoch 1, step 5")
    assert alone[3]["run"]["message"].startswith("non-finite network output at epoch 1, step 2")
    for a, b in zip(alone, together):
        assert _gap(a, b) <= TOLERANCE


def test_a_member_whose_target_leaves_the_inverse_domain_stops_with_the_serial_error(blobs):
    configs = _configs(blobs, seeds=3, nonlinearity="tanh")
    configs[1]["hyperparameters"]["eta"] = 3.0  # epoch 1, step 4: a target outside (-1, 1) for tanh^-1
    together = run_classification_ensemble(configs)
    alone = [run_classification_task(copy.deepcopy(c)) for c in configs]
    assert [r["run"]["status"] for r in alone] == ["completed", "numerical_error", "completed"]
    serial, batched = alone[1]["run"], together[1]["run"]
    # the error class and where it happened; the serial text also quotes the offending numbers
    assert batched["message"].split(":")[0] == serial["message"].split(":")[0] == \
        "InverseDomainError at epoch 1, step 4"
    batched["message"] = serial["message"]
    for a, b in zip(alone, together):
        assert _gap(a, b) <= TOLERANCE


def test_what_cannot_share_a_classification_ensemble_is_refused(blobs):
    with pytest.raises(ValueError, match="configs is empty"):
        run_classification_ensemble([])
    unknown = _configs(blobs, seeds=1)
    unknown[0]["method"] = "nope"
    with pytest.raises(ValueError, match=r"method='nope' cannot train as a classification ensemble; use one of bp, "
                                         r".*train it serially \(ensemble=False\)"):
        run_classification_ensemble(unknown)
    tp, bp = _configs(blobs, seeds=2), _configs(blobs, method="bp", seeds=1)
    with pytest.raises(ValueError, match="must share the method .or be a rule and its randomized twin."):
        run_classification_ensemble([tp[0], bp[0]])
    other = copy.deepcopy(tp)
    other[1]["hyperparameters"]["batch_size"] = 5
    with pytest.raises(ValueError, match="run settings .epochs, batch size"):
        run_classification_ensemble(other)
    continuous = _configs(blobs, method="two-phase", seeds=2)
    continuous[1]["hyperparameters"]["eta"] = 0.5
    with pytest.raises(ValueError, match="continuous network's classification ensemble must share the hyper"):
        run_classification_ensemble(continuous)


def test_worker_processes_get_the_ensembles_and_give_the_same_bits(blobs):
    """``jobs=2``: each worker task is one method's seeds as one ensemble, so every number equals the in-process
    ensemble's exactly (one pool of two workers starts: the test's cost)."""
    config = ClassificationConfig(methods=("tp-ai", "rtp-ai", "bp"), task=blobs, hidden=(8, 8), seeds=2, epochs=2,
                                  batch_size=10)
    pooled, here = run_classification(config, jobs=2), run_classification(config)
    assert pooled.summary.executor == "classification-ensemble-processes"
    assert here.summary.executor == "classification-ensemble"
    for method in config.methods:
        for a, b in zip(here[method].runs, pooled[method].runs):
            assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
