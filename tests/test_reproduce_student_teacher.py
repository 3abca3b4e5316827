"""Fast checks of the student-teacher reproduction helpers (the quick experiments run in tests/test_reproduce.py)."""
import json
import math

import pytest
import torch

from analysis.reproduce import EXPERIMENTS
from tpdynamics.training import THESIS_PRESETS
from analysis.reproduce.experiments.student_teacher import _statistics as st  # the helpers and their private verdicts

NAMES = ("fig5.7-5.8-student-teacher-ei", "fig5.13-deep-ai", "fig5.14-5.17-equal-ai", "fig5.18-5.19-contracting-ai")


def _run(status="completed", test=(10.0, 5.0, 2.0), diagnostics=None):
    return {"status": status, "message": "", "steps": 1, "train_loss": list(test), "test_loss": list(test),
            "hyperparameters": {}, "diagnostics": diagnostics or {}}


def test_registered_with_thesis_settings():
    for name in NAMES:
        experiment = EXPERIMENTS.get(name)()
        assert experiment.thesis_says and experiment.reference.startswith("figure")
        full, quick = experiment.settings(False), experiment.settings(True)
        assert quick["epochs"] < full["epochs"] == THESIS_PRESETS[full["preset"]].epochs  # 600 for fig. 5.13
        assert quick["methods"] == full["methods"]
        assert experiment.seeds(True, None) <= experiment.seeds(False, None)
    assert EXPERIMENTS.get(NAMES[0])().seeds(False, None) == 7
    assert EXPERIMENTS.get(NAMES[2])().seeds(False, None) == 15


def test_exact_inverse_experiment_has_a_float32_task_per_seed():
    experiment = EXPERIMENTS.get(NAMES[0])()
    tasks = experiment.tasks(experiment.settings(True), 3)
    assert [t["dtype"] for t in tasks].count("float32") == 3 and len(tasks) == 6
    assert {t["seed"] for t in tasks} == {0, 1, 2}


def test_final_values_mark_diverged_runs():
    results = [{"methods": {"a": _run()}}, {"methods": {"a": _run(status="diverged", test=(10.0,))}}]
    values = st.final_values(results, "a")
    assert values[0] == 2.0 and math.isnan(values[1])


def test_ratio_of_means_pairs_the_seeds_where_both_completed():
    a, b = [1.0, 2.0, math.nan], [2.0, 4.0, 1.0]
    assert st.ratio_of_means(a, b) == pytest.approx(3.0 / 6.0)
    assert math.isnan(st.ratio_of_means([math.nan], [1.0]))
    low, high = st.bootstrap_ratio_interval([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 5.0, 9.0])
    assert low <= st.ratio_of_means([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 5.0, 9.0]) <= high
    assert st.bootstrap_ratio_interval([1.0, 2.0], [2.0, 3.0]) == st.bootstrap_ratio_interval([1.0, 2.0], [2.0, 3.0])
    assert all(math.isnan(v) for v in st.bootstrap_ratio_interval([1.0], [2.0]))


def test_upward_movement_is_zero_for_a_decreasing_curve():
    assert st.upward_movement([100.0, 10.0, 1.0]) == 0.0
    assert st.upward_movement([100.0, 10.0, 100.0, 1.0]) == pytest.approx(1.0)


def test_late_and_early_means_of_per_layer_diagnostics():
    per_epoch = [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [math.nan, 40.0], [5.0, 50.0], [6.0, 60.0]]
    assert st.late_mean(per_epoch) == pytest.approx(5.5)          # last third: epochs 5-6
    assert st.late_mean(per_epoch, layer=2) == pytest.approx(55.0)
    assert st.early_mean(per_epoch) == 1.0
    assert math.isnan(st.late_mean([]))


def test_curve_and_diagnostic_means_use_the_runs_still_going():
    results = [{"methods": {"a": _run(test=(4.0, 2.0, 1.0), diagnostics={"x": [[1.0], [3.0]]})}},
               {"methods": {"a": _run(status="diverged", test=(4.0,), diagnostics={})}}]
    mean, low, high = st.curve_mean(results, "a", "test_loss")
    assert mean == [4.0, 2.0, 1.0] and low[0] == high[0] == 4.0
    assert st.diagnostic_mean(results, "a", "x") == [1.0, 3.0]


def test_undecidable_verdicts_are_none():
    assert st._decided(True, 0.5) is True and st._decided(False, math.nan) is None
    assert st._decided(False, math.inf) is False
    assert st._all([math.nan, 0.995, 0.999], lambda v: v > 0.99) is True
    assert st._all([math.nan], lambda v: v > 0.99) is None
    assert st._both(True, None) is None and st._both(None, False) is False and st._both(True, True) is True


@pytest.mark.slow
def test_summarize_runs_on_a_tiny_equal_layer_run():
    experiment = EXPERIMENTS.get(NAMES[2])()
    settings = {**experiment.settings(True), "epochs": 1, "batches_per_epoch": 2, "n_train": 64, "n_test": 50,
                "diagnostics_every": 1}
    results = [experiment.run_task(settings, {"seed": s}) for s in (0, 1)]
    assert set(results[0]["methods"]) == set(settings["methods"])
    summary = experiment.summarize(settings, results)
    assert summary.claims and all(c.holds in (True, False, None) for c in summary.claims)
    groups = summary.data["methods"]  # one entry per survival group (the toolbox's figure scripts)
    assert set(groups) == set(experiment.survival_groups(settings))
    assert set().union(*(set(g["all_runs"]) for g in groups.values())) == set(settings["methods"])


def _draw(seed, **statuses):
    return {"seed": seed, "methods": {m: _run(status=st, test=(10.0, 5.0, 2.0) if st == "completed" else (10.0,))
                                      for m, st in statuses.items()}}


def test_views_redraw_a_slot_until_every_method_survived():
    ok = _draw(0, a="completed", b="completed")
    failed = _draw(1, a="completed", b="diverged")
    failed["redraws"] = [_draw(1001, a="diverged", b="completed"), _draw(2001, a="completed", b="completed")]
    hopeless = _draw(2, a="diverged", b="completed")
    hopeless["redraws"] = [_draw(1002, a="diverged", b="diverged")]
    v = st.views([ok, failed, hopeless])
    assert [r["seed"] for r in v["all_runs"]] == [0, 1, 2]  # all runs: the first draws, divergences counted
    assert v["surviving_seeds"] == [0, 2001] and v["redraws"] == 3
    assert v["redrawn_slots"] == [1, 2] and v["exhausted_slots"] == [2]
    assert st.REDRAW_STRIDE == 1000


def test_stable_survival_also_drops_an_exploding_but_finite_run():
    exploding = {"seed": 0, "methods": {"a": _run(test=(10.0, 1.0, 50.0))}}
    assert st.survives(exploding, "completed") and not st.survives(exploding, "stable")
    with pytest.raises(ValueError, match=r"criterion='sometimes' is not valid; use one of completed, stable"):
        st.survives(exploding, "sometimes")


def test_paired_final_compares_the_same_problems():
    results = [{"seed": k, "methods": {"a": _run(test=(10.0, 1.0 * 10 ** k)), "b": _run(test=(10.0, 2.0 * 10 ** k))}}
               for k in range(4)]
    pair = st.paired_final(results, "a", "b")
    assert pair.ratio == pytest.approx(0.5) and pair.ordering() is True and pair.a_lower == 4
    results[3]["methods"]["a"] = _run(status="diverged", test=(10.0,))
    assert st.paired_final(results, "a", "b").n_excluded == 1


def test_a_loss_claim_that_does_not_hold_gets_the_thesis_statistic_as_its_cause():
    """One problem where a is 100x better lifts a's arithmetic mean below b's (the thesis's statistic agrees with
    'a < b'), while per problem a is worse on four of five: paired, the interval straddles 1."""
    from analysis.reproduce.experiments.student_teacher._training import StudentTeacherTraining, ViewSet

    a, b = [0.1, 2.0, 2.0, 2.0, 2.0], [10.0, 1.9, 1.9, 1.9, 1.9]
    results = [{"seed": k, "methods": {"a": _run(test=(20.0, x)), "b": _run(test=(20.0, y))}, "redraws": []}
               for k, (x, y) in enumerate(zip(a, b))]
    viewset = ViewSet(results, "completed", {"both": ("a", "b")})
    experiment = EXPERIMENTS.get(NAMES[2])()
    assert isinstance(experiment, StudentTeacherTraining)
    claim = experiment.compare(viewset, "a", "b", "a ends below b", robust=False)
    assert claim.holds is None
    assert claim.cause.startswith("a statistic the thesis computed differently")
    assert "arithmetic means 1.62 / 3.52 = 0.46" in claim.cause and "a lower on 1 of 5" in claim.cause
    reverse = experiment.compare(viewset, "b", "a", "b ends below a", robust=False)
    assert reverse.holds is None and reverse.cause.startswith("not supported by the experiment as the thesis ran it")
    assert experiment.loss_cause(viewset, [("a", "b")], True) == ""


def max_relative_difference(a, b, path="result") -> float:
    """The largest relative difference of the numbers of two nested results whose everything else is equal
    (keys, lengths, strings, statuses; NaN where NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        return max([max_relative_difference(a[k], b[k], f"{path}/{k}") for k in a], default=0.0)
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (path, a, b)
        return max([max_relative_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))], default=0.0)
    if isinstance(a, float) and not isinstance(a, bool):
        if not math.isfinite(a):
            assert (math.isnan(a) and math.isnan(b)) or a == b, (path, a, b)
            return 0.0
        return abs(a - b) / max(abs(a), abs(b), 1e-300)
    assert a == b, (path, a, b)
    return 0.0


@pytest.mark.slow
def test_slots_trained_together_with_their_redraws_equal_the_slots_one_at_a_time():
    """The ensemble path of reproduce (:meth:`run_batch`) against the serial one (:meth:`run_task` per slot): slot 2
    redraws every method (TP-AI and RTP-AI diverge), slot 5 only RTP-AI's figure, in the same redraw round."""
    experiment = EXPERIMENTS.get(NAMES[2])()
    settings = {**experiment.settings(True), "methods": ("tp-ai", "rtp-ai", "bp", "bp-fixed"), "epochs": 2,
                "diagnostics_every": 10, "max_redraws": 2}
    tasks = [{"seed": s} for s in (0, 2, 5)]
    together = experiment.run_batch(settings, tasks)
    alone = [experiment.run_task(settings, task) for task in tasks]
    assert [[(d["seed"], tuple(d["methods"])) for d in r["redraws"]] for r in together] == [
        [], [(1002, ("tp-ai", "rtp-ai", "bp", "bp-fixed"))], [(1005, ("rtp-ai", "bp", "bp-fixed"))]]
    assert together[1]["methods"]["tp-ai"]["status"] == "diverged"
    assert max_relative_difference(together, alone) < 1e-10


@pytest.mark.slow
def test_redraws_trained_several_per_round_are_the_draws_of_one_redraw_per_round(monkeypatch):
    """A redraw round trains the next redraws of every pending slot at once (``redraw_members``) and drops those after
    a slot's survivor: the slots' results are those of one redraw per round, bit for bit (the JSON text)."""
    experiment = EXPERIMENTS.get(NAMES[2])()
    settings = {**experiment.settings(True), "methods": ("tp-ai", "rtp-ai", "bp", "bp-fixed"), "epochs": 2,
                "diagnostics_every": 10, "max_redraws": 3}
    tasks = [{"seed": s} for s in (0, 2, 5)]
    calls = []
    original = type(experiment).train_seeds

    def spy(self, settings, seeds, dtype=torch.float64):
        calls.append((tuple(settings["methods"]), list(seeds)))
        return original(self, settings, seeds, dtype)

    monkeypatch.setattr(type(experiment), "train_seeds", spy)
    several = experiment.run_batch(settings, tasks)
    rounds, calls[:] = list(calls), []
    experiment.redraw_members = 1
    single = experiment.run_batch(settings, tasks)
    # two pending slots: ceil(16 / 2) = 8 redraws each, capped by max_redraws at 3, in one round
    assert rounds == [(("tp-ai", "rtp-ai", "bp", "bp-fixed"), [0, 2, 5]),
                      (("tp-ai", "rtp-ai", "bp", "bp-fixed"), [1002, 2002, 3002]),
                      (("rtp-ai", "bp", "bp-fixed"), [1005, 2005, 3005])]
    assert calls[1:] == [(("tp-ai", "rtp-ai", "bp", "bp-fixed"), [1002]), (("rtp-ai", "bp", "bp-fixed"), [1005])]
    assert [[d["seed"] for d in r["redraws"]] for r in several] == [[], [1002], [1005]]
    assert json.dumps(several) == json.dumps(single)
