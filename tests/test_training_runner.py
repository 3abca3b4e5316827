"""Experiment runner, data generators, presets, writers, plots and the ``train`` command."""
import csv
import json
import math

import pytest
import torch

import tpdynamics as tp
from tpdynamics.errors import TPDynamicsWarning
from tpdynamics.training import (THESIS_PRESETS, TrainingConfig, TrainingStatus, compare_methods, mean_and_interval,
                                 rate_schedule, resolve_hyperparameters, run_experiment, student_teacher,
                                 toy_example, train)
from tpdynamics_cli.main import main

DT = torch.float64
SMALL = dict(layers=(4, 4, 4), epochs=2, batches_per_epoch=20, n_test=50)


# -- data ----------------------------------------------------------------------------------------------------------
def test_student_starts_at_the_stated_distance_and_feedback_starts_at_the_inverse():
    problem = student_teacher((6, 6, 6), n_train=10, n_test=5, seed=4)
    for w, layer in zip(problem.student_weights, problem.teacher.layers):
        assert float((w - layer.weight.detach()).norm()) == pytest.approx(8.0, rel=1e-12)
        assert tp.singular_value_product(w) > 0.4
    exact, learned = problem.student("exact"), problem.student("learned")
    w2 = problem.student_weights[1]
    torch.testing.assert_close(exact.layer(2).feedback.weight_inverse, torch.linalg.inv(w2))
    torch.testing.assert_close(learned.layer(2).feedback.weight.detach(), torch.linalg.pinv(w2))
    torch.testing.assert_close(problem.train_labels, problem.teacher(problem.train_inputs)[-1].detach())
    with pytest.raises(ValueError, match=r"exact-inverse feedback needs square weights.*\[6, 6, 4\]"):
        student_teacher((6, 6, 4), n_train=4, n_test=4).student("exact")


def test_test_set_does_not_depend_on_the_training_set_size():
    a = student_teacher((3, 3, 3), n_train=10, n_test=7, seed=1)
    b = student_teacher((3, 3, 3), n_train=99, n_test=7, seed=1)
    assert torch.equal(a.test_inputs, b.test_inputs) and torch.equal(a.student_weights[0], b.student_weights[0])


def test_toy_example_tp_step_points_at_the_optimum_in_the_linear_case():
    """Eq. 5.9 per sample: Delta W_1^TP = -eta_hat h_0^2 (W_1 - W_1*), parallel to the Gauss-Newton step."""
    problem = toy_example("linear", seed=3)
    net = problem.student("exact")
    w1 = net.layer(1).weight.detach().clone()
    w_star = problem.teacher.layer(1).weight.detach()
    rule = tp.training.get_learning_rule("tp-ei", eta=1.0, eta_hat=0.8, trainable_layers=(1,))
    h0, y = problem.train_inputs[:1], problem.train_labels[:1]
    rule.step(net, h0, y)
    expected = -0.8 * float(h0 ** 2) * (w1 - w_star)
    torch.testing.assert_close(net.layer(1).weight.detach() - w1, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(net.layer(2).weight.detach(), problem.student_weights[1])  # W_2 stays fixed


def test_toy_task_records_the_trajectory_and_reaches_the_optimum():
    result = train("tp-ei", task="toy-linear", seeds=1, epochs=30, n_test=200)
    trajectory = torch.tensor(result.runs[0].trajectory)
    assert trajectory.shape == (31, 2)
    assert result.test_loss[-1] < 1e-3 * result.test_loss[0]


# -- runner ----------------------------------------------------------------------------------------------------------
def test_mean_and_t_interval():
    mean, lo, hi = mean_and_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(mean_and_interval([5.0])[1])


def test_rate_schedule_decays_linearly_to_a_fifth():
    assert rate_schedule(0.01, 1, 60) == pytest.approx(0.01)
    assert rate_schedule(0.01, 60, 60) == pytest.approx(0.002)
    assert rate_schedule((1.0, 2.0), 2, 3) == pytest.approx((0.6, 1.2))


def test_thesis_presets_encode_the_figure_captions_and_scripts():
    assert resolve_hyperparameters("tp-ei") == {"eta": 0.01, "eta_hat": 0.1, "epsilon": 0.5,
                                                "inverse_update": "sherman-morrison", "batch_size": 1,
                                                "batches_per_epoch": 2000, "loss_convention": "thesis",
                                                "decay_horizon": 1.0}
    assert resolve_hyperparameters("bp")["eta"] == 0.001
    # the toolbox's BP optimiser decays over tau = 100 epochs of a 60-epoch run
    assert resolve_hyperparameters("bp", "5.2.2") == {"eta": 0.01, "batch_size": 32, "batches_per_epoch": 60,
                                                      "loss_convention": "thesis", "decay_horizon": 100 / 60}
    dtp = resolve_hyperparameters("dtp-ai")
    assert (dtp["eta"], dtp["eta_backward"], dtp["lambda_"], dtp["batch_size"]) == (0.1, 0.05, 0.0, 32)
    # a Sherman-Morrison rule in a mini-batch experiment keeps batch size 1 and the samples per epoch
    assert resolve_hyperparameters("tp-ei", "5.2.2")["batches_per_epoch"] == 32 * 60
    # figure_5_18-19.py: three outputs and its own backward rates
    assert THESIS_PRESETS["5.2.2-contracting"].layers == (6, 6, 3)
    assert resolve_hyperparameters("tp-ai", "5.2.2-contracting")["eta_backward"] == 0.01
    assert resolve_hyperparameters("rdtp-orig", "5.2.2-contracting")["eta_backward"] == 0.05
    # figure_5_13.py: 600 epochs, backward rate 0.005
    deep = THESIS_PRESETS["5.2.2-deep"]
    assert deep.epochs == 600 and resolve_hyperparameters("rtp-ai", "5.2.2-deep")["eta_backward"] == 0.005
    # the toy figures come from numpy scripts with the 1/2 ||.||^2 gradients
    assert resolve_hyperparameters("tp-ei", "toy-linear")["loss_convention"] == "half"
    assert resolve_hyperparameters("bp", "5.2.2", loss_convention="half")["loss_convention"] == "half"


def test_toolbox_rate_schedule_with_a_horizon():
    # figure_5_14-17.py: BP's SGD with tau = 100 in a 60-epoch run ends at 1 - 0.8 * 59 / 100 of its rate
    assert rate_schedule(0.01, 60, 60, horizon=100) == pytest.approx(0.01 * (1 - 0.8 * 59 / 100))
    assert rate_schedule(0.01, 60, 60, horizon=60) == pytest.approx(0.01 * (1 - 0.8 * 59 / 60))
    assert rate_schedule(0.01, 90, 60, horizon=60) == pytest.approx(0.002)  # constant after the horizon


def test_methods_share_data_and_initialisation_and_runs_are_reproducible():
    first = compare_methods(["bp", "tp-ei", "dtp-ai"], seeds=2, **SMALL)
    again = compare_methods(["bp", "tp-ei", "dtp-ai"], seeds=2, **SMALL)
    for seed in range(2):
        assert len({r.runs[seed].test_loss[0] for r in first.results.values()}) == 1
    for name in first.methods:
        assert first[name].test_loss == again[name].test_loss
        assert len(first[name].test_loss) == 3 and first[name].runs_per_epoch == [2, 2, 2]
        assert all(lo < m < hi for m, (lo, hi) in zip(first[name].test_loss, first[name].test_loss_ci))


def test_non_finite_loss_stops_with_a_status_and_keeps_the_history():
    result = compare_methods(["bp", "tp-ai"], seeds=2, eta=1e6, **SMALL)
    for name in ("bp", "tp-ai"):
        r = result[name]
        assert r.n_diverged == 2 and r.status == TrainingStatus.DIVERGED and r.message == "2 of 2 runs stopped early"
        for run in r.runs:
            assert run.status == "diverged"
            assert "non-finite" in run.message and "history kept up to epoch" in run.message
            assert len(run.test_loss) >= 1 and all(math.isfinite(v) for v in run.test_loss)
        assert r.runs_per_epoch[0] == 2 and r.runs_per_epoch[-1] < 2
    data = result.to_dict()
    assert data["results"][0]["n_diverged"] == 2 and data["results"][0]["runs"][0]["status"] == "diverged"


def test_diagnostics_are_recorded_per_epoch():
    result = compare_methods(["tp-ei", "dtp-ai", "bp"], seeds=1, diagnostics=True, **SMALL)
    tp_ei = result["tp-ei"].diagnostics_mean()
    assert len(tp_ei["cos_signal_tp"]) == 2 and len(tp_ei["cos_signal_tp"][0]) == 1  # 2 epochs, 1 hidden layer
    assert tp_ei["cos_signal_tp"][0][0] > 0.99  # exact inverses: the signal is e_TP up to round-off
    assert tp_ei["sm_clipped_fraction"][0][0] is None or math.isnan(tp_ei["sm_clipped_fraction"][0][0])  # layer 1
    assert 0 <= tp_ei["sm_clipped_fraction"][0][1] <= 1
    dtp = result["dtp-ai"].diagnostics_mean()
    assert dtp["e_approx_norm"][0][0] < 1e-6 * dtp["e_tp_norm"][0][0] + 1e-12  # DTP: no reconstruction error
    assert "pseudo_inverse_distance" in dtp and result["bp"].diagnostics_mean() == {}


def test_json_and_csv_writers(tmp_path):
    result = compare_methods(["bp", "tp-ei"], seeds=2, **SMALL)
    data = json.loads(result.write_json(tmp_path / "r.json").read_text())
    assert data["methods"] == ["bp", "tp-ei"]
    entry = data["results"][1]
    assert entry["method"] == "tp-ei" and len(entry["test_loss"]) == 3 and len(entry["test_loss_ci"]) == 3
    rows = list(csv.DictReader(result.write_csv(tmp_path / "r.csv").open()))
    assert len(rows) == 6 and rows[0]["method"] == "bp" and rows[0]["epoch"] == "0"
    single = train("bp", seeds=1, record_steps=True, **SMALL)
    assert single.method == "bp" and len(single.runs[0].step_loss) == 40 and len(single.runs[0].batch_loss) == 2


def test_bad_configurations():
    with pytest.raises(ValueError, match=r"task='mnist' is not valid"):
        run_experiment(TrainingConfig(methods=("bp",), task="mnist"))
    with pytest.raises(ValueError, match=r"Unknown learning rule method='backprop'. Valid names: bp, bp-fixed"):
        compare_methods(["backprop"])
    with pytest.raises(ValueError, match=r"preset='5.2.2' belongs to task 'student-teacher', not 'toy-linear'"):
        compare_methods(["bp"], task="toy-linear", preset="5.2.2")
    with pytest.raises(ValueError, match=r"lists a method twice"):
        compare_methods(["bp", "bp"])
    with pytest.warns(TPDynamicsWarning, match=r"epsilon is not used by bp and has no effect"):
        compare_methods(["bp"], epsilon=0.3, seeds=1, **SMALL)


def test_bad_data_and_preset_arguments():
    with pytest.raises(ValueError, match=r"case='cubic' is not valid; use one of linear, leaky-relu"):
        toy_example("cubic")
    with pytest.raises(ValueError, match=r"n_train=0 must be >= 1"):
        toy_example("linear", n_train=0)
    with pytest.raises(ValueError, match=r"distance=-1.0 must be finite and >= 0"):
        toy_example("linear", distance=-1.0)
    with pytest.raises(ValueError, match=r"inputs has dimension 2, but the input layer has n_0=3"):
        student_teacher((3, 3, 3), n_train=4, n_test=4, inputs=tp.training.WhiteNoise(2))
    with pytest.raises(ValueError, match=r"mixing must be a 2-D tensor C of shape \(dim, m\)"):
        tp.training.ColouredNoise(torch.ones(3, dtype=DT))
    with pytest.raises(ValueError, match=r"toy_loss_surface needs the 1-2-2 toy network"):
        tp.training.toy_loss_surface(student_teacher((3, 3, 3), n_train=4, n_test=4), torch.zeros(1, 2, dtype=DT))
    with pytest.raises(ValueError, match=r"preset='5.9' is not valid; use one of 5.1.3"):
        resolve_hyperparameters("bp", "5.9")
    with pytest.raises(ValueError, match=r"seeds must be a positive count or a non-empty list"):
        TrainingConfig(seeds=[]).seed_list()
    with pytest.raises(TypeError, match=r"config must be a TrainingConfig, got dict"):
        run_experiment({"methods": ("bp",)})
    with pytest.raises(ValueError, match=r"the toy example has layers \(1, 2, 2\); got layers=\[1, 3, 2\]"):
        compare_methods(["bp"], task="toy-linear", layers=(1, 3, 2))


# -- CLI and plots -----------------------------------------------------------------------------------------------------
def test_train_command_writes_json_csv_and_a_figure(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["train", "--method", "bp,tp-ei,dtp-ai", "--seeds", "2", "--epochs", "2", "--layers", "4,4,4",
                 "--batches-per-epoch", "10", "--n-test", "50", "--json", str(out), "--csv", str(tmp_path / "r.csv"),
                 "--plot", str(tmp_path / "r.png"), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["results"]] == ["bp", "tp-ei", "dtp-ai"]
    assert (tmp_path / "r.png").stat().st_size > 1000 and (tmp_path / "r.csv").exists()
    assert "tp-ei" in capsys.readouterr().out


def test_train_command_single_method_json_to_stdout(capsys):
    code = main(["train", "--method", "tp-ei", "--seeds", "2", "--epochs", "1", "--layers", "3,3,3",
                 "--batches-per-epoch", "5", "--n-test", "20", "--json", "--quiet"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "tp-ei" and len(data["train_loss"]) == len(data["test_loss_ci"]) == 2


def test_train_command_loss_convention_and_unit(capsys):
    code = main(["train", "--method", "bp", "--epochs", "1", "--layers", "3,3,3", "--batches-per-epoch", "2",
                 "--n-test", "20", "--loss-convention", "half", "--json", "--quiet"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hyperparameters"]["loss_convention"] == "half" and "torch.nn.MSELoss" in data["loss_unit"]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--method", "bp", "--loss-convention", "double", "--quiet"])
    assert exit_info.value.code == 2 and "invalid choice: 'double'" in capsys.readouterr().err


def test_train_command_rejects_bad_input(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--method", "tp-best", "--quiet"])
    assert exit_info.value.code == 2
    assert "Valid names: bp, bp-fixed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--method", "tp-ei", "--batch-size", "4", "--quiet"])
    assert "--batch-size must be 1 (got 4). Use --batch-size=1" in capsys.readouterr().err


def test_plots_of_diagnostics_and_toy_trajectories(tmp_path):
    from analysis.training_plots import plot_learning_signals, plot_loss_curves, plot_toy_trajectories

    result = compare_methods(["rtp-ai", "rdtp-ai"], seeds=1, diagnostics=True, **SMALL)
    assert plot_learning_signals(result, tmp_path / "s.png").stat().st_size > 1000
    assert plot_loss_curves(result["rtp-ai"], tmp_path / "l.png").exists()
    toy = compare_methods(["tp-ei", "bp"], task="toy-leaky-relu", epochs=5, n_test=100)
    assert plot_toy_trajectories(toy, toy_example("leaky-relu", seed=0), tmp_path / "t.png").exists()
    with pytest.raises(ValueError, match="diagnostics=True"):
        plot_learning_signals(compare_methods(["bp"], seeds=1, **SMALL), tmp_path / "x.png")
