"""Continuous vs discrete comparisons (issue 5): each claim is measured, with its slope or fitted number."""
import json
import math

import numpy as np
import pytest

from analysis.comparisons import (discrete_update, learning_trajectories, section_6_8_predictions,
                                  update_alignment)
from tpdynamics_cli.main import main


@pytest.fixture(scope="module")
def alignment():
    return update_alignment(mus=(0.2, 0.1, 0.05, 0.025), layers=(4, 4, 4, 4), batch=3)


@pytest.mark.parametrize("mode", ["single_phase", "two_phase"])
def test_update_alignment_converges_to_the_discrete_rule_as_mu_goes_to_zero(alignment, mode):
    rows = [r for r in alignment.rows if r["mode"] == mode]
    errors = {mu: np.mean([r["relative_error"] for r in rows if r["mu"] == mu]) for mu in (0.2, 0.1, 0.05, 0.025)}
    assert errors[0.025] < errors[0.1] < errors[0.2]
    assert alignment.slopes[mode] > 0.8  # first order in mu (measured ~1.2-1.3)
    assert min(r["cosine"] for r in rows if r["mu"] == 0.025) > 0.999


def test_multiplexed_update_is_the_dtp_update_with_exact_feedback():
    result = update_alignment(modes=("multiplexed",), layers=(4, 4, 4), batch=2, feedback_noise=0.0)
    assert result.slopes["multiplexed"] is None and all(r["mu"] is None for r in result.rows)
    assert max(r["relative_error"] for r in result.rows) < 1e-8


def test_discrete_update_leaves_the_network_unchanged():
    import tpdynamics as tp
    import torch
    net = tp.LayeredNetwork.build([3, 3, 3], feedback="exact", seed=0)
    before = [layer.weight.detach().clone() for layer in net.layers]
    update = discrete_update("tp-ei", net, torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64),
                             eta=0.1, eta_hat=0.1)
    assert all(torch.equal(a, layer.weight) for a, layer in zip(before, net.layers))
    assert all(u.abs().max() > 0 for u in update)


def test_section_6_8_predictions_hold():
    result = section_6_8_predictions(depth=4, mus=(0.3, 0.1), batch=4)
    for mu in ("0.3", "0.1"):  # exact inverses: the layer factor is exact for a piecewise-linear network
        assert result.depth_decay["fitted_log_factor"][mu] == pytest.approx(result.depth_decay["predicted_log_factor"][mu], abs=1e-6)
    single, two = result.reconstruction["single_phase"], result.reconstruction["two_phase"]
    assert min(two["cosine"]["0.1"]) > 0.95 and min(single["cosine"]["0.1"][:2]) < 0.5
    assert single["slope_of_layer1_error_vs_mu"] < -2  # reconstruction errors grow relative to the signal as mu falls
    assert abs(result.multiplexed["fitted_log_slope_vs_depth"]) < 0.2


def test_learning_trajectories_match_over_a_short_budget():
    result = learning_trajectories(seeds=2, steps=40, record_every=10, n_test=100)
    cont, disc = result.curves["continuous"]["centre"], result.curves["discrete"]["centre"]  # geometric means
    assert cont[0] == disc[0] and cont[-1] < cont[0] and disc[-1] < disc[0]
    assert result.curves["discrete"]["interval"] == {"method": "log-t", "confidence": 0.95, "centre": "geometric mean"}
    assert all(0 < low <= c <= high for c, (low, high) in zip(disc, result.curves["discrete"]["ci"]))
    assert abs(cont[-1] - disc[-1]) / disc[-1] < 0.2
    assert result.budget[-1] == pytest.approx(40 * 0.01)


def test_learning_trajectories_ensemble_equals_the_serial_runs():
    """The continuous learners of all seeds as one ensemble (default) against seed by seed (``ensemble=False``):
    the same curves to the equilibrium tolerance; the discrete ones are the same runs, bit for bit."""
    kwargs = dict(seeds=[0, 3], steps=30, record_every=10, n_test=100)
    together, serial = learning_trajectories(**kwargs), learning_trajectories(**kwargs, ensemble=False)
    assert together.settings["continuous_ensemble"] and not serial.settings["continuous_ensemble"]
    assert together.curves["discrete"]["runs"] == serial.curves["discrete"]["runs"]
    for mine, theirs in zip(together.curves["continuous"]["runs"], serial.curves["continuous"]["runs"]):
        assert mine == pytest.approx(theirs, rel=1e-9) and mine[-1] < mine[0]
    assert together.diverged == serial.diverged == {"continuous": 0, "discrete": 0}


def test_a_continuous_member_that_fails_stops_alone():
    """A member whose equilibrium cannot settle (a label of 1e300 at sample 12) stops there with NaN after its last
    record, as the serial loop stops it; the others give the bits they give without it."""
    from analysis.comparisons import _continuous_ensemble_curves
    from tpdynamics.continuous import get_model
    from tpdynamics.training import student_teacher

    model = get_model("single_phase", mu=0.1, eta_hat=0.1, learning_rate=1.0, compensate_layer_factor=True, tol=1e-10)
    problems = [student_teacher((6, 6, 6), n_train=30, n_test=50, seed=s) for s in range(3)]
    problems[1].train_labels[12] = 1e300
    curves, failures = _continuous_ensemble_curves(problems, model, 0.01, 30, 10, 4)
    assert failures == 1 and all(math.isfinite(x) for x in curves[1][:2]) and all(math.isnan(x) for x in curves[1][2:])
    for s in (0, 2):
        assert curves[s] == _continuous_ensemble_curves([problems[s]], model, 0.01, 30, 10, 4)[0][0]
        assert all(math.isfinite(x) for x in curves[s])


def test_compare_cli_alignment_json_rows(capsys, tmp_path):
    code = main(["compare", "alignment", "--mus", "0.1,0.05", "--layers", "3,3,3", "--json",
                 "--plot", str(tmp_path / "a.png")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and (tmp_path / "a.png").exists()
    assert {"mode", "mu", "layer", "cosine", "relative_error"} <= set(data["rows"][0])
    assert {r["mode"] for r in data["rows"]} == {"single_phase", "two_phase", "multiplexed"}


def test_compare_cli_rejects_unknown_comparisons(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "everything"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_comparisons_reject_bad_arguments_by_name():
    with pytest.raises(ValueError, match=r"modes=\('single_phase', 'three_phase'\) contains \['three_phase'\]; "
                                         "valid modes: single_phase, two_phase, multiplexed"):
        update_alignment(modes=("single_phase", "three_phase"))
    with pytest.raises(ValueError, match="model='two_phase': the discrete counterpart tp-ei needs exact inverses"):
        learning_trajectories(model="two_phase")
    with pytest.raises(ValueError, match="seeds=0 must be >= 1"):
        learning_trajectories(seeds=0)
    with pytest.raises(ValueError, match=r"seeds=\[\] is empty"):
        learning_trajectories(seeds=[])
    with pytest.raises(ValueError, match="record_every=0 must be >= 1"):
        learning_trajectories(record_every=0)


def test_compare_trajectories_no_ensemble_runs_the_serial_loop(tmp_path):
    """``--no-ensemble`` reaches ``learning_trajectories(ensemble=False)`` (the no-effect warning of the other
    comparisons: tests/test_bad_input_cli.py)."""
    paths = {flag: tmp_path / f"{flag or 'default'}.json" for flag in ("", "--no-ensemble")}
    for flag, path in paths.items():
        args = ["compare", "trajectories", "--seeds", "2", "--steps", "20", "--json", str(path)]
        assert main(args + ([flag] if flag else [])) == 0
    default, serial = (json.loads(p.read_text()) for p in paths.values())
    assert default["settings"]["continuous_ensemble"] and not serial["settings"]["continuous_ensemble"]
    for mine, theirs in zip(default["curves"]["continuous"]["runs"], serial["curves"]["continuous"]["runs"]):
        assert mine == pytest.approx(theirs, rel=1e-9)
