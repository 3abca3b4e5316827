"""Classification with the rules and the continuous networks: loss targets, architectures, runs, outputs.

A small synthetic task written as an ``.npz`` archive (no extra needed) keeps these tests fast.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from tpdynamics.training import (ClassificationConfig, classification_network, get_learning_rule, get_output_loss,
                                 loss_output_target, output_target, run_classification)
from tpdynamics.training.continuous_methods import ContinuousLearner
from .problems import write_blobs


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """3 Gaussian blobs in 5 dimensions: 150 training-file samples, 30 test-file samples."""
    return write_blobs(tmp_path_factory.mktemp("blobs") / "blobs.npz")


def test_cross_entropy_output_target_by_hand():
    # logits (ln 2, 0, 0), class 1: softmax = (1/2, 1/4, 1/4); dL/dh = (1/2, -3/4, 1/4)
    h = torch.tensor([[math.log(2.0), 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    eta_hat = 0.4
    expected = torch.tensor([[math.log(2.0) - 0.2, 0.3, -0.1]], dtype=torch.float64)
    assert torch.allclose(loss_output_target("cross-entropy", h, y, eta_hat), expected, atol=1e-15)
    loss = get_output_loss("cross-entropy")
    assert float(loss.value(h, y)) == pytest.approx(math.log(4.0))  # -log(1/4)
    # the label handed to the rules makes their own output target (eq. 4.4 form) the cross-entropy one
    assert torch.allclose(output_target(h, loss.rule_label(h, y), eta_hat), expected, atol=1e-15)
    # MSE: the thesis's target and label, unchanged
    mse = get_output_loss("mse")
    assert mse.rule_label(h, y) is y
    assert torch.allclose(loss_output_target("mse", h, y, eta_hat), h - eta_hat * (h - y))


def test_bp_with_the_cross_entropy_label_is_sgd_on_cross_entropy():
    """Oracle: BP handed y' = h_L - dL/dh_L takes exactly the autograd SGD step on the mean cross-entropy."""
    net = classification_network((4, 7, 3), "bp", seed=3)
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    target = torch.nn.functional.one_hot(labels, 3).double()
    weights = [layer.weight.detach().clone().requires_grad_(True) for layer in net.layers]
    h = x
    for k, (w, layer) in enumerate(zip(weights, net.layers)):
        h = layer.nonlinearity(h @ w.T)
    torch.nn.functional.cross_entropy(h, labels).backward()
    eta = 0.05
    loss = get_output_loss("cross-entropy")
    with torch.no_grad():
        label = loss.rule_label(net(x)[-1], target)
    get_learning_rule("bp", eta=eta).step(net, x, label)
    for w, layer in zip(weights, net.layers):
        assert torch.allclose(layer.weight, w.detach() - eta * w.grad, atol=1e-13)


def test_exact_inverse_rules_refused_on_non_square_architectures(blobs):
    for method in ("tp-ei", "rtp-ei", "rmtp-ei"):
        with pytest.raises(ValueError, match=rf"method '{method}' cannot classify with architecture 5-8-8-3.*square"):
            run_classification(ClassificationConfig(methods=(method,), task=blobs, hidden=(8, 8)))
    with pytest.raises(ValueError, match="not offered for classification"):  # square, but batch size 1 only
        run_classification(ClassificationConfig(methods=("tp-ei",), task=blobs, hidden=(3, 3)))
    with pytest.raises(ValueError, match="output loss loss='hinge'. Valid names: cross-entropy, mse"):
        run_classification(ClassificationConfig(methods=("bp",), task=blobs, loss="hinge"))
    with pytest.raises(ValueError, match="method='nope'"):
        run_classification(ClassificationConfig(methods=("nope",), task=blobs))


def test_every_method_starts_from_the_same_forward_weights():
    nets = {m: classification_network((6, 9, 9, 4), m, seed=5)
            for m in ("bp", "dtp-ai", "tp-orig", "fa", "mtp", "two-phase")}
    for name, net in nets.items():
        for a, b in zip(net.layers, nets["bp"].layers):
            assert torch.equal(a.weight, b.weight), name
    assert nets["fa"].layer(2).feedback_form == "fixed" and nets["dtp-ai"].layer(2).feedback_form == "learned"
    assert nets["mtp"].layer(2).feedback_form == "learned"  # exact form impossible on 6-9-9-4
    assert not torch.equal(classification_network((6, 9, 9, 4), "bp", seed=6).layer(1).weight,
                           nets["bp"].layer(1).weight)


@pytest.mark.parametrize("loss, methods", [("mse", ("bp", "dtp-ai", "two-phase")), ("cross-entropy", ("bp", "dtp-ai"))])
def test_runs_learn_and_are_deterministic(blobs, loss, methods, tmp_path):
    config = ClassificationConfig(methods=methods, task=blobs, loss=loss, hidden=(8, 8),
                                  seeds=2, epochs=3, batch_size=10, eta=0.1, eta_hat=0.3)
    result = run_classification(config)
    for name in config.methods:
        r = result[name]
        assert r.n_failed == 0 and len(r.runs) == 2
        curve = r.curve("test_accuracy")
        assert len(curve) == 4 and curve[-1]["mean"] > 0.85 > 0.6 > curve[0]["mean"]  # blobs are easy
        assert curve[-1]["low"] <= curve[-1]["mean"] <= curve[-1]["high"]
        assert all(len(run[m]) == 4 for run in r.runs for m in ("train_loss", "val_loss", "val_accuracy"))
    config.methods, config.seeds = ("dtp-ai",), [1]
    again = run_classification(config)
    assert again["dtp-ai"].runs[0]["test_loss"] == result["dtp-ai"].runs[1]["test_loss"]
    path = result.write_json(tmp_path / "r.json")
    payload = json.loads(path.read_text())
    assert payload["methods"] == list(methods) and payload["config"]["layers"] == [5, 8, 8, 3]
    assert payload["results"][0]["final"]["test_accuracy"]["method"] == "t, clipped to [0, 1]"
    rows = result.write_csv(tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 1 + len(methods) * 4 and rows[0].startswith("method,epoch,runs,train_loss")


def test_early_stopping_reports_the_best_validation_epoch(blobs):
    config = ClassificationConfig(methods=("bp",), task=blobs, hidden=(8,), seeds=1, epochs=30, batch_size=10,
                                  eta=0.1, patience=2)
    run = run_classification(config)["bp"].runs[0]
    assert run["epochs_completed"] < 30 and "early stop" in run["message"]
    best = run["best_epoch"]
    assert run["val_accuracy"][best] == max(run["val_accuracy"])
    assert run["epochs_completed"] == best + 2  # patience 2: two epochs without improvement after the best
    with pytest.raises(ValueError, match="patience"):
        run_classification(ClassificationConfig(methods=("bp",), task=blobs, patience=0))


def test_single_phase_with_learned_feedback_diverges_and_says_so(blobs):
    """Reported, not hidden: reconstruction errors dominate its signal (section 6.5); the run stops as diverged."""
    config = ClassificationConfig(methods=("single-phase",), task=blobs, hidden=(8, 8), seeds=1, epochs=2,
                                  batch_size=10, eta=0.1, eta_hat=0.3)
    run = run_classification(config)["single-phase"].runs[0]
    assert run["status"] in ("diverged", "numerical_error"), run["message"]


def test_continuous_learner_errors():
    with pytest.raises(ValueError, match="method='x' is not a continuous method"):
        ContinuousLearner("x")


def test_cli_train_and_compare_on_a_classification_task(blobs, tmp_path, capsys):
    from tpdynamics_cli.main import main

    out = tmp_path / "run.json"
    code = main(["train", "--task", blobs, "--method", "bp,dtp-ai", "--hidden", "8", "--epochs", "2", "--seeds", "2",
                 "--batch-size", "10", "--loss", "cross-entropy", "--json", str(out), "--csv", str(tmp_path / "r.csv"),
                 "--quiet"])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["config"]["loss"] == "cross-entropy" and payload["methods"] == ["bp", "dtp-ai"]
    assert "test accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "cifar", "--method", "bp"])
    assert exit_info.value.code == 2
    assert "--task 'cifar'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", blobs, "--method", "tp-ei", "--hidden", "8", "--quiet"])
    assert exit_info.value.code == 2
    assert "cannot classify with architecture 5-8-3" in capsys.readouterr().err
    code = main(["compare", "trajectories", "--task", blobs, "--seeds", "1", "--epochs", "1",
                 "--json", str(tmp_path / "c.json")])
    assert code == 0
    assert json.loads((tmp_path / "c.json").read_text())["methods"] == ["bp", "dtp-ai", "two-phase"]


def test_every_applicable_rule_runs_on_a_non_square_architecture(blobs):
    from tpdynamics.training import LEARNING_RULES

    applicable = [n for n in LEARNING_RULES.names() if not LEARNING_RULES.get(n).sherman_morrison]
    assert set(applicable) >= {"bp", "fa", "tp-ai", "rdtp-ai", "tp-orig", "rdtp-orig", "mtp", "rmtp"}
    config = ClassificationConfig(methods=tuple(applicable) + ("multiplexed",), task=blobs, hidden=(8, 6), seeds=1,
                                  epochs=1, batch_size=10, eta=0.03, eta_hat=0.1)
    result = run_classification(config)
    for name in config.methods:
        run = result[name].runs[0]
        assert run["status"] == "completed" and run["steps"] == 12, (name, run["message"])
        assert all(math.isfinite(v) for v in run["test_loss"])


def test_accuracy_intervals_stay_inside_zero_one():
    """Two seeds with a large spread put a plain t interval past 1; an accuracy's interval is cut to [0, 1]."""
    from tpdynamics.training.classification_results import MethodResult

    runs = [{"epochs_completed": 1, "best_epoch": 1, "seconds": 1.0, "test_accuracy": [0.1, a]} for a in (0.87, 1.0)]
    final = MethodResult("bp", {}, runs).final("test_accuracy")
    from tpdynamics.statistics import interval

    plain = interval([0.87, 1.0], "t")
    assert plain.high > 1.0  # the oracle: the uncut interval leaves the range
    assert final["high"] == 1.0 and final["low"] == pytest.approx(plain.low) and final["mean"] == pytest.approx(0.935)
    assert final["method"] == "t, clipped to [0, 1]"


def test_cross_entropy_run_whose_weights_overflow_stops_as_diverged(blobs):
    """An overflowing step leaves non-finite weights; the next cross-entropy label would be NaN: status, not a crash."""
    config = ClassificationConfig(methods=("bp",), task=blobs, loss="cross-entropy", hidden=(8,), seeds=1, epochs=2,
                                  batch_size=10, eta=1e300)
    run = run_classification(config)["bp"].runs[0]
    assert run["status"] == "diverged" and "epoch 1" in run["message"], run["message"]
    assert run["epochs_completed"] == 0 and len(run["test_accuracy"]) == 1


def test_tune_ranks_by_validation_accuracy_and_trains_each_distinct_run_once(blobs):
    from tpdynamics.training.classification_tuning import tune

    grid = {"eta": (0.01, 0.1), "eta_hat": (0.1, 0.3), "epochs": (1, 2)}
    fixed = {"hidden": (8,), "batch_size": 10}
    bp = tune("bp", blobs, grid=grid, seeds=(0,), **fixed)
    assert len(bp) == 4 and all("eta_hat" not in row for row in bp)  # bp does not read eta_hat
    assert [r["val_accuracy"] for r in bp] == sorted((r["val_accuracy"] for r in bp), reverse=True)
    one = run_classification(ClassificationConfig(methods=("bp",), task=blobs, seeds=[0], eta=0.1, epochs=2,
                                                  **fixed))["bp"]
    row = next(r for r in bp if r["eta"] == 0.1 and r["epochs"] == 2)
    assert row["val_accuracy"] == one.final("val_accuracy")["mean"]  # the oracle: the same run trained directly
    tp = tune("dtp-ai", blobs, grid={"eta": (0.1,), "eta_hat": (0.1, 0.3)}, seeds=(0,), epochs=1, **fixed)
    assert sorted(r["eta_hat"] for r in tp) == [0.1, 0.3]
    with pytest.raises(ValueError, match="grid is empty"):
        tune("bp", blobs, grid={})


def test_tuning_grid_per_task_family_and_loss():
    from tpdynamics.training.classification_presets import TUNING_GRID, TUNING_GRIDS, tuning_grid

    assert tuning_grid("digits") is TUNING_GRID and tuning_grid("mnist1d:42,2000") is TUNING_GRIDS[("mnist1d", "mse")]
    assert tuning_grid("digits", "cross-entropy") is TUNING_GRIDS[("digits", "cross-entropy")]
    assert tuning_grid("x.npz") is TUNING_GRID  # untuned families: the digits grid
    assert tuning_grid("digits", "cross-entropy", "tp-ai") is TUNING_GRIDS[("digits", "cross-entropy", "tp-ai")]
    assert tuning_grid("digits", "cross-entropy", "bp") is TUNING_GRIDS[("digits", "cross-entropy")]


def test_cli_tune_with_a_grid(blobs, tmp_path, capsys):
    from tpdynamics_cli.main import main

    out = tmp_path / "tune.json"
    code = main(["train", "--task", blobs, "--method", "bp", "--hidden", "8", "--epochs", "1", "--batch-size", "10",
                 "--tune", "--tune-grid", "eta=0.01,0.1", "--json", str(out), "--quiet"])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["grids"] == {"bp": {"eta": [0.01, 0.1]}} and len(payload["rows"]) == 2
    for argv, message in ((["--tune-grid", "eta=0.1"], "--tune-grid needs --tune"),
                          (["--tune", "--tune-grid", "rate=0.1"], "--tune-grid 'rate=0.1': expected NAME=V1,V2"),
                          (["--tune", "--tune-grid", "epochs=0"], "the values of epochs must be comma-separated")):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--task", blobs, "--method", "bp", "--hidden", "8", "--epochs", "1", "--quiet", *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
