"""Twin rules in one ensemble: a randomized rule (``rtp-ai``) and its base (``tp-ai``) train as one stacked program.

The oracle is the single-class ensemble, itself tested against the serial code (``test_ensemble.py``): a
member of a mixed ensemble must give the very bits it gives in an ensemble of its own class, and the serial
steps to 1e-12.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch

from tpdynamics.ensemble import EnsembleNetwork, EnsembleTrainer, ensemble_class, run_training_ensemble
from tpdynamics.ensemble.training import _group_key, _plan
from tpdynamics.network import LayeredNetwork, make_generator
from tpdynamics.training import run_experiment
from tpdynamics.training.rules import LEARNING_RULES, RandomizedTargetPropagationApproximateInverse
from tpdynamics.training.runner import TrainingConfig, training_tasks

TWINS = {"rtp-ai": "tp-ai", "rdtp-ai": "dtp-ai", "rtp-orig": "tp-orig", "rdtp-orig": "dtp-orig", "rtp-ei": "tp-ei",
         "rmtp": "mtp"}
TOLERANCE = 1e-12


class _OwnChoice(RandomizedTargetPropagationApproximateInverse):
    """A user's randomized rule with its own layer choice: not the twin of anything."""

    def _choose_layers(self, depth):
        return super()._choose_layers(depth)


def test_ensemble_class_pairs_each_randomized_rule_with_its_base_only():
    for name in LEARNING_RULES.names():
        cls = LEARNING_RULES.get(name)
        expected = LEARNING_RULES.get(TWINS[name]) if name in TWINS else cls
        assert ensemble_class(cls) is expected, name
    # rmtp-ei has its own defaults and modified step, bp-fixed its own trainable layers: no twins
    assert ensemble_class(LEARNING_RULES.get("rmtp-ei")).name == "rmtp-ei"
    assert ensemble_class(_OwnChoice) is _OwnChoice


def _configs(name: str, seeds=(0, 1, 2)) -> list[dict]:
    """Runner task configurations of ``name``: seeds 0, 1, 2, the last one diverging within a few steps."""
    cls = LEARNING_RULES.get(name)
    batch = 1 if cls.sherman_morrison else 4
    config = TrainingConfig(methods=(name,), seeds=list(seeds), epochs=2, batches_per_epoch=10, batch_size=batch,
                            n_train=12 * batch, n_test=16, layers=(4, 4, 4, 4), distance=1.0, record_steps=True)
    configs = [copy.deepcopy(t.config) for t in training_tasks(config)[3]]
    for c in configs:
        c["run"].update(diagnostics=True, diagnostics_every=3)
    if "epsilon" in configs[1]["hyperparameters"]:
        configs[1]["hyperparameters"]["epsilon"] = 1.5  # the robust branch of Alg. 4.1
    configs[-1]["hyperparameters"]["eta"] *= 1e30
    return configs


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_twins_in_one_ensemble_give_the_bits_of_their_own_ensembles(twin):
    """Members of ``twin`` and of its base interleaved in one ensemble: each member's history (curves, stops,
    diagnostics, Sherman–Morrison statistics) is the one its own class's ensemble gives, bit for bit."""
    base, randomized = _configs(TWINS[twin]), _configs(twin, seeds=(3, 4, 5))
    mixed = [base[0], randomized[0], base[1], randomized[1], base[2], randomized[2]]
    together = run_training_ensemble(mixed)
    apart = run_training_ensemble(base), run_training_ensemble(randomized)
    expected = [apart[k % 2][k // 2] for k in range(6)]
    assert json.dumps(together) == json.dumps(expected)
    statuses = [r["run"]["status"] for r in together]
    assert statuses[:4] == ["completed"] * 4 and "completed" not in statuses[4:]
    for k, name in ((4, TWINS[twin]), (5, twin)):  # a divergence is reported under the member's own method
        run = together[k]["run"]
        assert run["status"] != "diverged" or f" of {name};" in run["message"], run


def test_mixed_trainer_steps_equal_serial_steps():
    """Step level: ``tp-ai``, ``rtp-ai``, ``tp-ai`` members, 20 steps against 20 ``rule.step`` each, to 1e-12."""
    networks, rules = [], []
    for k, name in enumerate(("tp-ai", "rtp-ai", "tp-ai")):
        cls = LEARNING_RULES.get(name)
        networks.append(LayeredNetwork.build((3, 4, 4, 4), feedback="learned", seed=k,
                                             output_nonlinearity="identity", weight_init="orthogonal"))
        rules.append(cls(eta=0.02 * (1 + k), generator=make_generator(100 + k)))
    serial_networks, serial_rules = copy.deepcopy(networks), copy.deepcopy(rules)
    ensemble = EnsembleNetwork(networks)
    trainer = EnsembleTrainer(rules, ensemble)
    assert trainer.member_randomized == [False, True, False] and trainer.rule_class.name == "tp-ai"
    data = make_generator(7)
    updated = set()
    for step in range(20):
        x = torch.randn(3, 4, 3, generator=data, dtype=torch.float64)
        y = torch.randn(3, 4, 4, generator=data, dtype=torch.float64)
        record = trainer.step(x, y)
        for s in range(3):
            serial_rules[s].step(serial_networks[s], x[s], y[s])
        # the tp-ai members update every trainable layer, the rtp-ai member one per step
        assert all(bool(m[0]) and bool(m[2]) for m in record.chosen.values())
        assert sum(bool(m[1]) for m in record.chosen.values()) == 1
        updated |= {i for i, m in record.chosen.items() if bool(m[1])}
    assert len(updated) > 1  # the randomized member's choice varied
    for s in range(3):
        for mine, theirs in zip(ensemble.member(s).layers, serial_networks[s].layers):
            assert torch.allclose(mine.weight, theirs.weight, rtol=TOLERANCE, atol=TOLERANCE)
            if theirs.feedback is not None:  # g_i lives on layer i + 1: the first layer has none
                assert torch.allclose(mine.feedback.matrix, theirs.feedback.matrix, rtol=TOLERANCE, atol=TOLERANCE)


def test_twins_and_hyperparameter_values_share_a_group_and_nothing_else_does():
    config = TrainingConfig(methods=("tp-ai", "rtp-ai", "dtp-ai"), seeds=2, epochs=1, batches_per_epoch=2, n_train=8,
                            n_test=4, layers=(3, 3, 3))
    tasks = training_tasks(config)[3]
    where = {(t.config["method"], t.config["seed"]): k for k, t in enumerate(tasks)}
    plan = _plan(tasks, 1, {})
    groups = sorted(sorted(indices) for indices, ensembled in plan if ensembled)
    assert groups == sorted([sorted(where[(m, s)] for m in ("tp-ai", "rtp-ai") for s in (0, 1)),
                             sorted(where[("dtp-ai", s)] for s in (0, 1))])
    other_rate, other_batch = copy.deepcopy(tasks[0]), copy.deepcopy(tasks[0])
    other_rate.config["hyperparameters"]["eta"] *= 2  # a per-member value: the same ensemble
    other_batch.config["hyperparameters"]["batch_size"] = 2  # the shared schedule: another ensemble
    assert _group_key(other_rate) == _group_key(tasks[0]) != _group_key(other_batch)


def test_run_experiment_with_twins_equals_the_serial_runs():
    config = TrainingConfig(methods=("tp-ai", "rtp-ai"), seeds=2, epochs=2, batches_per_epoch=5, n_train=40,
                            n_test=10, layers=(4, 4, 4))
    ensembled = run_experiment(config)
    serial = run_experiment(config, ensemble=False)
    assert ensembled.summary.executor == "ensemble"
    for name in ("tp-ai", "rtp-ai"):
        for mine, theirs in zip(ensembled.results[name].runs, serial.results[name].runs):
            assert mine.status == theirs.status == "completed"
            assert torch.allclose(torch.tensor(mine.test_loss), torch.tensor(theirs.test_loss), rtol=TOLERANCE,
                                  atol=0.0)


def test_members_of_unrelated_classes_are_refused():
    with pytest.raises(ValueError, match="randomized twin.*'tp-ai' and 'dtp-ai'"):
        run_training_ensemble(_configs("tp-ai")[:1] + _configs("dtp-ai")[:1])
    shared = _configs("tp-ai")
    shared[1]["hyperparameters"]["batch_size"] = 2
    with pytest.raises(ValueError, match="batch_size"):
        run_training_ensemble(shared)
    networks = [LayeredNetwork.build((3, 3, 3), feedback="learned", seed=k) for k in range(2)]
    rules = [LEARNING_RULES.create("tp-ai", seed=0), LEARNING_RULES.create("dtp-ai", seed=1)]
    with pytest.raises(ValueError, match="one rule class"):
        EnsembleTrainer(rules, EnsembleNetwork(networks))
