"""Ensembles (tpdynamics.ensemble): S members in one stacked computation equal S serial runs of the rules.

The oracle is today's serial code: ``rule.step`` on separate networks and the runner's serial
per-run loop. Every registered rule is covered (parametrised over the registry), with one member
whose Sherman–Morrison steps take the robust branch (``epsilon = 1.5`` clips every step) and one
whose learning rate makes it diverge within a few steps (the others must not notice).
"""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from tpdynamics.ensemble import (EnsembleExecutor, EnsembleNetwork, EnsembleProcessExecutor, EnsembleTrainer,
                                 ensemble_support, resolve_device, run_training_ensemble)
from tpdynamics.network import LayeredNetwork, make_generator
from tpdynamics.runs import ResultStore
from tpdynamics.training import run_experiment
from tpdynamics.training.rules import LEARNING_RULES, TargetPropagationExactInverse
from tpdynamics.training.runner import TrainingConfig, run_training_task, training_tasks

RULES = LEARNING_RULES.names()
TOLERANCE = 1e-12


def _relative(a: float, b: float) -> float:
    if isinstance(a, float) and math.isnan(a):
        return 0.0 if math.isnan(b) else math.inf
    return abs(a - b) / max(1.0, abs(a))


def _assert_same(serial, ensemble, path="run"):
    """Equal structure, equal strings/ints, floats to TOLERANCE (relative above 1)."""
    if isinstance(serial, dict):
        assert serial.keys() == ensemble.keys(), path
        for key in serial:
            if key == "message" and serial.get("status") == "numerical_error":
                # the error class and where it happened; the serial text also quotes the offending numbers
                assert ensemble[key].split(":")[0] == serial[key].split(":")[0], path
                continue
            _assert_same(serial[key], ensemble[key], f"{path}.{key}")
    elif isinstance(serial, list):
        assert len(serial) == len(ensemble), path
        for k, (a, b) in enumerate(zip(serial, ensemble)):
            _assert_same(a, b, f"{path}[{k}]")
    elif isinstance(serial, float):
        assert _relative(serial, ensemble) <= TOLERANCE, (path, serial, ensemble)
    else:
        assert serial == ensemble, path


def _configs(name: str) -> list[dict]:
    """Three task configurations of the runner for ``name``: default, robust branch, divergent (20 steps)."""
    cls = LEARNING_RULES.get(name)
    batch = 1 if cls.sherman_morrison or name.startswith("bp") else 4
    config = TrainingConfig(methods=(name,), seeds=3, epochs=2, batches_per_epoch=10, batch_size=batch,
                            n_train=12 * batch, n_test=16, layers=(4, 4, 4, 4), distance=1.0, record_steps=True)
    configs = [copy.deepcopy(t.config) for t in training_tasks(config)[3]]
    for c in configs:  # diagnostics on every third step (batched in the ensemble)
        c["run"].update(diagnostics=True, diagnostics_every=3)
    if "epsilon" in configs[1]["hyperparameters"]:
        configs[1]["hyperparameters"]["epsilon"] = 1.5  # |1 + d| < 1.5: the robust branch of Alg. 4.1
    configs[2]["hyperparameters"]["eta"] *= 1e30      # diverges (or fails numerically) within a few steps
    return configs


@pytest.mark.parametrize("name", RULES)
def test_every_rule_is_ensembled(name):
    assert ensemble_support(LEARNING_RULES.get(name)) is None


@pytest.mark.parametrize("name", RULES)
def test_runner_ensemble_equals_serial_runs(name):
    configs = _configs(name)
    serial = [run_training_task(c) for c in configs]
    ensemble = run_training_ensemble(configs)
    for s, e in zip(serial, ensemble):
        _assert_same(s, e)
    runs = [s["run"] for s in serial]
    assert [r["status"] for r in runs[:2]] == ["completed", "completed"] and runs[2]["status"] != "completed"
    assert runs[0]["steps"] == runs[1]["steps"] == 20 and runs[2]["steps"] < 5
    if LEARNING_RULES.get(name).sherman_morrison:
        assert all(f > 0 for f in runs[1]["diagnostics"]["sm_clipped_fraction"][-1][1:]), "robust branch not taken"
        assert runs[0]["diagnostics"]["sm_clipped_fraction"] != runs[1]["diagnostics"]["sm_clipped_fraction"]


@pytest.mark.parametrize("name", RULES)
def test_a_member_trained_alone_gives_the_bits_it_gives_in_the_ensemble(name):
    """Nothing of a member depends on the others: trained as a one-member ensemble (a resumed run's lone seed, a
    redraw) it gives its bits in the three-member one, its diagnostic epoch means included (summed over the
    steps in their order whatever S is)."""
    configs = _configs(name)[:2]  # the divergent member aside: its stop makes the others' histories no shorter
    for c in configs:  # one hidden layer: a lone member's (steps, S, L - 1) diagnostics are one column
        c["settings"]["layers"] = [4, 4, 4]
        c["run"]["diagnostics_every"] = 1  # 10 diagnosed steps an epoch: a vectorised sum would reorder them
    together = run_training_ensemble(configs)
    alone = [run_training_ensemble([c])[0] for c in configs]
    assert json.dumps(together) == json.dumps(alone)
    assert together[0]["run"]["diagnostics"] or name.startswith("bp"), "no diagnostics recorded"  # bp has none


def _members(name, seeds=(0, 1, 2), loss_convention="half"):
    """Networks and rules of three members (each its own seed, eta and epsilon), for the step-level oracle."""
    cls = LEARNING_RULES.get(name)
    feedback = cls.feedback_forms()[0] if cls.feedback_forms() else None
    networks, rules = [], []
    for k, seed in enumerate(seeds):
        networks.append(LayeredNetwork.build((3, 4, 4, 4), feedback=feedback, seed=seed,
                                             output_nonlinearity="identity", weight_init="orthogonal"))
        arguments = {"eta": cls.defaults.get("eta", 0.01) * (1.0 + 0.5 * k)}
        if "epsilon" in cls.parameters and k == 1:
            arguments["epsilon"] = 1.5
        if "eta_backward" in cls.parameters and name in ("mtp", "rmtp"):
            arguments["eta_backward"] = 0.01 * k  # member 0 trains no Q (and draws no noise)
        rules.append(cls(**arguments, generator=make_generator(100 + seed), loss_convention=loss_convention))
    return networks, rules


@pytest.mark.parametrize("loss_convention", ["half", "thesis"])
@pytest.mark.parametrize("name", RULES)
def test_steps_equal_serial_steps(name, loss_convention):
    """20 steps of ``EnsembleTrainer`` equal 20 ``rule.step`` per member: every weight and feedback matrix,
    in both loss conventions (the factor 2 on ``e_L`` and on the local gradients is the rule's own)."""
    networks, rules = _members(name, loss_convention=loss_convention)
    serial_networks, serial_rules = copy.deepcopy(networks), copy.deepcopy(rules)
    ensemble = EnsembleNetwork(networks)
    trainer = EnsembleTrainer(rules, ensemble)
    batch = 1 if LEARNING_RULES.get(name).sherman_morrison or name.startswith("bp") else 4
    data = make_generator(7)
    for step in range(20):
        x = torch.randn(3, batch, 3, generator=data, dtype=torch.float64)
        y = torch.randn(3, batch, 4, generator=data, dtype=torch.float64)
        record = trainer.step(x, y, diagnostics=(step == 3))
        assert record.fault is None or not record.fault.any()
        for s in range(3):
            serial = serial_rules[s].step(serial_networks[s], x[s], y[s], diagnostics=(step == 3))
            assert _relative(serial.loss, float(record.loss[s])) <= TOLERANCE
            for i, sm in serial.sherman_morrison.items():
                denominator, clipped, beta = (t[s].item() for t in record.sherman_morrison[i])
                assert (clipped, _relative(sm.beta, beta)) == (sm.clipped, 0.0) or (
                    clipped == sm.clipped and _relative(sm.beta, beta) <= TOLERANCE)
                assert _relative(sm.denominator, denominator) <= TOLERANCE
            if step == 3:
                flat = serial.diagnostics.flat()
                assert list(record.diagnostics) == list(flat)
                for key, values in flat.items():
                    for v, w in zip(values, record.diagnostics[key][s].tolist()):
                        assert _relative(v, w) <= TOLERANCE, (key, v, w)
    for s in range(3):
        for mine, theirs in zip(ensemble.member(s).layers, serial_networks[s].layers):
            assert torch.allclose(mine.weight, theirs.weight, rtol=TOLERANCE, atol=TOLERANCE)
            if mine.feedback is not None:
                assert torch.allclose(mine.feedback.matrix, theirs.feedback.matrix, rtol=TOLERANCE, atol=TOLERANCE)
    if LEARNING_RULES.get(name).sherman_morrison:  # member 1 clipped, i.e. took the robust branch
        assert any(bool(c[1]) for c in (record.sherman_morrison[i][1] for i in record.sherman_morrison))


def test_members_are_views_of_the_stacked_storage():
    networks, _ = _members("tp-ei")
    ensemble = EnsembleNetwork(networks)
    ensemble.weights[1][2].mul_(2.0)
    assert ensemble.member(2).layer(2).weight.data_ptr() == ensemble.weights[1][2].data_ptr()
    assert torch.equal(networks[2].layer(2).weight, ensemble.weights[1][2])
    ensemble.feedback[1].copy_(torch.linalg.inv(ensemble.weights[1]))
    ensemble.sync_members()
    h = torch.randn(5, 4, dtype=torch.float64)
    batched, outside = ensemble.feedback_forward(2, h.expand(3, 5, 4))
    assert outside is None
    assert torch.allclose(batched[2], networks[2].layer(2).feedback_forward(h), rtol=1e-13, atol=1e-13)


def test_run_experiment_ensemble_equals_no_ensemble_and_falls_back_for_unknown_rules():
    class OwnStep(TargetPropagationExactInverse):  # a user rule with its own step: trained serially
        name = "tp-ei"

        def _step(self, network, h0, y, diagnostics):
            return super()._step(network, h0, y, diagnostics)

    assert "overrides _step" in ensemble_support(OwnStep)
    config = TrainingConfig(methods=("tp-ei", "dtp-ai"), seeds=2, epochs=2, batches_per_epoch=5, n_train=40,
                            n_test=10, layers=(3, 3, 3))
    ensembled = run_experiment(config)
    serial = run_experiment(config, ensemble=False)
    assert ensembled.summary.executor == "ensemble" and serial.summary.executor == "serial"
    for name in ("tp-ei", "dtp-ai"):
        _assert_same(serial.results[name].to_dict(), ensembled.results[name].to_dict())
    tasks = [t for t in training_tasks(config)[3] if t.config["method"] == "tp-ei"]
    executor = EnsembleExecutor()
    for task in tasks:
        task.config["rule"] = f"{__name__}:_OwnStepForFallback"
    done = {}
    executor.run(tasks, lambda i, record: done.__setitem__(i, record))
    assert "_step" in executor.fallbacks["tp-ei"] and all(r.ok for r in done.values())
    _assert_same(run_training_task(tasks[0].config), done[0].result)


class _OwnStepForFallback(TargetPropagationExactInverse):
    def _step(self, network, h0, y, diagnostics):
        return super()._step(network, h0, y, diagnostics)


def test_bad_input():
    networks, rules = _members("tp-ei")
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleNetwork([])
    with pytest.raises(TypeError, match=r"networks\[1\] is a str"):
        EnsembleNetwork([networks[0], "net"])
    with pytest.raises(ValueError, match=r"networks\[1\] has the architecture"):
        EnsembleNetwork([networks[0], LayeredNetwork.build((3, 5, 5), seed=1)])
    with pytest.raises(ValueError, match="one network object twice"):
        EnsembleNetwork([networks[0], networks[0]])
    ensemble = EnsembleNetwork(networks)
    with pytest.raises(ValueError, match="got 2 rules for an ensemble of 3"):
        EnsembleTrainer(rules[:2], ensemble)
    shared = [copy.copy(rules[0]) for _ in range(3)]
    with pytest.raises(ValueError, match="share one random generator"):
        EnsembleTrainer(shared, ensemble)
    bp = LEARNING_RULES.create("bp")
    with pytest.raises(ValueError, match="one rule class"):
        EnsembleTrainer([bp, rules[1], rules[2]], ensemble)
    with pytest.raises(ValueError, match="device='tpu:x' is not a torch device"):
        resolve_device("tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="applies to the ensemble path only"):
        run_experiment(TrainingConfig(seeds=2, epochs=1, batches_per_epoch=2, n_train=4, n_test=4), device="cpu",
                       ensemble=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_ensemble_equals_cpu():  # pragma: no cover - runs where a GPU is lent
    configs = _configs("tp-ei")[:2]
    cpu = run_training_ensemble(configs)
    gpu = run_training_ensemble(configs, device="cuda")
    for a, b in zip(cpu, gpu):
        for x, y in zip(a["run"]["step_loss"], b["run"]["step_loss"]):
            assert _relative(x, y) <= 1e-10


def test_cli_train_ensemble_equals_no_ensemble_and_bad_devices_exit_2(capsys, tmp_path):
    from tpdynamics_cli.main import main

    common = ["train", "--method", "rtp-ei", "--seeds", "2", "--epochs", "1", "--batches-per-epoch", "5",
              "--n-test", "10", "--quiet"]
    outputs = []
    for extra in ([], ["--no-ensemble"]):
        path = tmp_path / f"out{len(outputs)}.json"
        assert main(common + ["--json", str(path)] + extra) == 0
        outputs.append(json.loads(path.read_text())["results"])
    _assert_same(outputs[1], outputs[0])
    capsys.readouterr()
    bad = [(["--device", "tpu:x"], "is not a torch device")]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "needs CUDA"))
    bad.append((["--device", "cpu", "--no-ensemble"], "applies to the ensemble path only"))
    for extra, message in bad:
        with pytest.raises(SystemExit) as info:
            code = main(common + extra)
            raise SystemExit(code)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and message in err[0], err


def test_worker_processes_train_ensembles():
    """``jobs=2``: each worker task is an ensemble of one method's seeds; every record equals its serial run.

    Two seeds make one ensemble (parts have >= 2 members), so one worker process starts (the test's cost)."""
    config = TrainingConfig(methods=("dtp-ai",), seeds=2, epochs=2, batches_per_epoch=5, n_train=40, n_test=10,
                            layers=(3, 3, 3))
    pooled = run_experiment(config, jobs=2)
    serial = run_experiment(config, ensemble=False)
    assert pooled.summary.executor == "ensemble-processes" and serial.summary.executor == "serial"
    _assert_same(serial.results["dtp-ai"].to_dict(), pooled.results["dtp-ai"].to_dict())


def test_a_lone_seed_left_to_a_worker_gives_the_bits_of_the_uninterrupted_run(tmp_path):
    """A resumed run whose one remaining seed goes to a worker process trains it as a one-member ensemble, so it
    gives the bits of the run that trained both seeds together in this process (not the serial path's digits)."""
    config = TrainingConfig(methods=("dtp-ai",), seeds=2, epochs=2, batches_per_epoch=5, n_train=40, n_test=10,
                            layers=(3, 3, 3))
    whole = run_experiment(config, store=tmp_path / "whole")
    store = ResultStore(tmp_path / "resumed")
    run_experiment(config, store=store)
    lost = next(t for t in training_tasks(config)[3] if t.config["seed"] == 1)
    assert store.discard(lost)
    executor = EnsembleProcessExecutor(jobs=2)
    resumed = run_experiment(config, store=store, executor=executor)
    assert resumed.summary.reused == 1 and executor.parts == [[0]] and executor.ensembled == [True]
    assert [r["test_loss"] for r in resumed.results["dtp-ai"].to_dict()["runs"]] == \
        [r["test_loss"] for r in whole.results["dtp-ai"].to_dict()["runs"]]


def test_worker_tasks_split_groups_to_keep_the_workers_busy():
    config = TrainingConfig(methods=("dtp-ai", "tp-orig"), seeds=4, epochs=1, batches_per_epoch=2, n_train=8,
                            n_test=4, layers=(3, 3, 3))
    tasks = training_tasks(config)[3]
    order = {(t.config["method"], t.config["seed"]): k for k, t in enumerate(tasks)}
    groups = [[order[("dtp-ai", s)] for s in range(4)], [order[("tp-orig", s)] for s in range(4)]]
    assert EnsembleProcessExecutor(jobs=2).split(tasks) == groups            # one ensemble per worker already
    assert EnsembleProcessExecutor(jobs=4).split(tasks) == [g[i:i + 2] for g in groups for i in (0, 2)]
    assert EnsembleProcessExecutor(jobs=16).split(tasks) == [g[i:i + 2] for g in groups for i in (0, 2)]  # >= 2 each
    for k in groups[0]:
        tasks[k].config["rule"] = f"{__name__}:_OwnStepForFallback"  # a rule the ensemble refuses: task by task
    executor = EnsembleProcessExecutor(jobs=2)
    # one ensemble group for two workers: split in two
    assert sorted(executor.split(tasks)) == sorted([[k] for k in groups[0]] + [groups[1][:2], groups[1][2:]])
    assert "_step" in executor.fallbacks["dtp-ai"]
