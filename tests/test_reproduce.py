"""`tpdynamics reproduce --quick`: every experiment runs, writes its files, and its robust claims hold."""
import json
from pathlib import Path

import pytest

from analysis.reproduce import EXPERIMENTS, Claim, Experiment, Summary, reproduce
from tpdynamics_cli.main import main

pytestmark = pytest.mark.slow  # runs every experiment at quick size (deselect with -m "not slow")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    records = reproduce(quick=True, out=out, jobs=2, progress=False)
    return out, records


def test_every_experiment_ran_and_wrote_its_figure_and_json(quick_run):
    out, records = quick_run
    failed = {r.name: r.error for r in records if r.status != "ok"}
    assert not failed, failed
    assert {r.name for r in records} == set(EXPERIMENTS.names())
    for r in records:
        assert (out / f"{r.name}.png").stat().st_size > 1000
        data = json.loads((out / f"{r.name}.json").read_text())
        assert data["status"] == "ok" and data["claims"], r.name
    from analysis.reproduce import ExperimentStatus, load_records

    # the status vocabulary is exported and comes back as itself from the folder
    assert all(r.status is ExperimentStatus.OK for r in records)
    assert all(r.status is ExperimentStatus.OK for r in load_records(out))


def test_report_names_every_experiment(quick_run):
    out, records = quick_run
    report = (out / "REPORT.md").read_text()
    for name in EXPERIMENTS.names():
        assert f"## {name}" in report and f"[{name}](#{name})" in report
    assert "**Thesis:**" in report and "**Measured:**" in report and "quick" in report


def test_robust_claims_give_their_expected_verdict_in_quick_mode(quick_run):
    """Claims the thesis makes hold where they are robust; the ones we refute stay refuted."""
    _, records = quick_run
    broken = [(r.name, c.statement, c.measured) for r in records for c in r.claims
              if c.robust and c.holds is not None and c.holds != c.expected]
    assert not broken, broken
    assert sum(bool(c.robust and c.holds) for r in records for c in r.claims) >= 10  # None: inconclusive


def test_student_teacher_runs_use_the_thesis_conventions_and_both_views(quick_run):
    out, _ = quick_run
    data = json.loads((out / "fig5.14-5.17-equal-ai.json").read_text())["data"]
    assert "torch.nn.MSELoss" in data["loss_unit"]
    for group in data["methods"].values():  # one entry per figure of the toolbox's scripts
        assert set(group) >= {"all_runs", "thesis", "redraws", "surviving_seeds"}
        for row in group["all_runs"].values():
            assert row["hyperparameters"]["loss_convention"] == "thesis" and row["loss_unit"] == data["loss_unit"]
    report = (out / "REPORT.md").read_text()
    assert "| experiment | claim | verdict | cause |" in report


def test_json_holds_the_figures_the_report_quotes(quick_run):
    out, records = quick_run
    for r in records:
        data = json.loads((out / f"{r.name}.json").read_text())
        for claim, stored in zip(r.claims, data["claims"]):
            assert stored["values"], (r.name, claim.statement)  # every claim keeps the numbers it quotes
            assert stored["measured"] == claim.measured and stored["holds"] == claim.holds


class _Broken(Experiment):
    name = "broken"
    title = "an experiment that fails"
    reference = "none"
    thesis_says = "nothing"

    def run_task(self, settings, task):
        raise RuntimeError("deliberate failure")

    def summarize(self, settings, results):  # never reached (Experiment is abstract: both hooks are required)
        raise AssertionError("summarize of a failed experiment")


class _Fine(Experiment):
    name = "fine"
    title = "an experiment that works"
    reference = "none"
    thesis_says = "nothing"

    def run_task(self, settings, task):
        return {"value": 1.0}

    def summarize(self, settings, results):
        from matplotlib.figure import Figure
        fig = Figure()
        fig.subplots().plot([0, 1])
        return Summary(data=results[0], claims=[Claim("x", "y", True, values={"value": 1.0})], figure=fig)


def test_a_failed_experiment_is_reported_and_does_not_stop_the_others(tmp_path, monkeypatch):
    monkeypatch.setitem(EXPERIMENTS._classes, "broken", _Broken)
    monkeypatch.setitem(EXPERIMENTS._classes, "fine", _Fine)
    records = reproduce(["broken", "fine"], out=tmp_path, progress=False)
    status = {r.name: r.status for r in records}
    assert status == {"broken": "failed", "fine": "ok"}
    assert "deliberate failure" in json.loads((tmp_path / "broken.json").read_text())["error"]
    report = (tmp_path / "REPORT.md").read_text()
    assert "**FAILED**" in report and "deliberate failure" in report and "## fine" in report


def test_cli_lists_experiments_and_rejects_unknown_names(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in EXPERIMENTS.names())
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "fig9.9-nothing"])
    assert info.value.code == 2 and "Valid names:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "--jobs", "0", "fig5.5-sherman-morrison"])
    assert "jobs=0 must be an int >= 1" in capsys.readouterr().err


def test_bad_arguments_name_the_argument_the_value_and_the_fix(tmp_path, capsys):
    out = tmp_path / "never-written"
    with pytest.raises(ValueError, match=r"names='fig9.9-nothing'. Valid names: .*fig5.5-sherman-morrison"):
        reproduce(["fig9.9-nothing"], out=out, progress=False)
    with pytest.raises(ValueError, match=r"seeds=0 must be an int >= 1 .*or None"):
        reproduce(["fig5.5-sherman-morrison"], seeds=0, out=out, progress=False)
    with pytest.raises(ValueError, match=r"jobs=2.5 must be an int >= 1 \(the number of worker processes"):
        reproduce(["fig5.5-sherman-morrison"], jobs=2.5, out=out, progress=False)
    assert not out.exists()  # checked before anything runs or is written
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "--seeds", "-1", "--out", str(out), "fig5.5-sherman-morrison"])
    assert info.value.code == 2 and "--seeds=-1 must be >= 1" in capsys.readouterr().err


class _Batchy(Experiment):
    """Tasks of equal ``group`` run as batches; each result says how many ran with it."""

    name = "batchy"
    title = "an experiment whose tasks batch"
    reference = "none"
    thesis_says = "nothing"
    quick_seeds = 5

    def tasks(self, settings, seeds):
        return [{"seed": s, "group": "a"} for s in range(seeds)] + [{"seed": 0, "group": "b"}]

    def batch_key(self, settings, task):
        return task["group"]

    def run_task(self, settings, task):
        return self.run_batch(settings, [task])[0]

    def run_batch(self, settings, tasks):
        return [{"value": 10 * t["seed"] + (t["group"] == "b"), "batch": len(tasks)} for t in tasks]

    def summarize(self, settings, results):
        from matplotlib.figure import Figure
        fig = Figure()
        fig.subplots().plot([0, 1])
        return Summary(data={"values": [r["value"] for r in results], "batches": [r["batch"] for r in results]},
                       claims=[Claim("x", "y", True, values={"value": 1.0})], figure=fig)


def test_units_are_ordered_longest_first_by_the_experiments_hints():
    """The full run's measured slot seconds order its units (fig. 5.13's 5 slots of ~66 s before fig. 5.18's 15
    of ~14 s); quick settings have no hint (1 s a slot: the batches by size)."""
    from analysis.reproduce.batching import _seconds
    from analysis.reproduce.runner import _Experiments, resolve_names

    deep = EXPERIMENTS.get("fig5.13-deep-ai")()
    assert deep.slot_seconds(deep.settings(False), {"seed": 0}) == deep.full_slot_seconds > 1
    assert deep.slot_seconds(deep.settings(True), {"seed": 0}) == 1.0
    gauss = EXPERIMENTS.get("fig5.6-gauss-newton-blocks")()
    assert gauss.slot_seconds(gauss.settings(False), {"panel": "c"}) > gauss.slot_seconds(gauss.settings(False),
                                                                                           {"panel": "a"})
    tasks = _Experiments(resolve_names(["fig5.13-deep-ai", "fig5.18-5.19-contracting-ai"]), False, None,
                         Path("unused"), False).tasks  # the plan only: nothing runs or is written
    deep_unit = [k for k, t in enumerate(tasks) if t.config["experiment"] == "fig5.13-deep-ai"]
    contracting_unit = [k for k, t in enumerate(tasks) if t.config["experiment"] != "fig5.13-deep-ai"]
    assert len(deep_unit) < len(contracting_unit) and _seconds(tasks, deep_unit) > _seconds(tasks, contracting_unit)


def test_tasks_of_equal_batch_key_run_as_chunks_stored_per_task(tmp_path, monkeypatch):
    from analysis.reproduce.batching import plan_chunks

    assert plan_chunks([[0, 1, 2, 3, 4], [5]], 3) == [[0, 1, 2], [3, 4], [5]]
    assert plan_chunks([[0, 1], [2, 3]], 1) == [[0, 1], [2, 3]]  # enough chunks: groups stay whole
    assert plan_chunks([[0], [1]], 4) == [[0], [1]]  # nothing to split
    monkeypatch.setitem(EXPERIMENTS._classes, "batchy", _Batchy)
    first = reproduce(["batchy"], quick=True, out=tmp_path, progress=False)
    data = json.loads((tmp_path / "batchy.json").read_text())["data"]
    # in task order, each its own result; the five of group "a" as one batch, the one of group "b" alone
    assert data == {"values": [0, 10, 20, 30, 40, 1], "batches": [5, 5, 5, 5, 5, 1]}
    assert first.summary.reused == 0 and len(list((tmp_path / "runs").glob("*.json"))) == 6  # one file per task
    # the store's keys are the tasks', not the batches': another split (--no-ensemble) reuses every one
    again = reproduce(["batchy"], quick=True, out=tmp_path, progress=False, ensemble=False)
    assert again.summary.reuse_message().startswith("6 of 6 tasks reused")
    fresh = reproduce(["batchy"], quick=True, out=tmp_path / "serial", progress=False, ensemble=False)
    assert fresh[0].data["batches"] == [1] * 6 and fresh[0].data["values"] == data["values"]


def test_quick_numbers_are_unchanged_without_the_ensemble(quick_run):
    """The quick run trains fig. 5.13's two slots as one ensemble (TP-AI and RTP-AI diverge in slot 1): the stored
    slot equals the slot trained alone (the serial path, ``--no-ensemble``) to rounding."""
    from analysis.reproduce.runner import run_experiment_task
    from tests.test_reproduce_student_teacher import max_relative_difference
    from tpdynamics.runs import ResultStore, Task

    out, records = quick_run
    name = "fig5.13-deep-ai"
    record = next(r for r in records if r.name == name)
    config = {"experiment": name, "settings": EXPERIMENTS.get(name)().settings(True), "task": {"seed": 1}}
    task = Task(function="analysis.reproduce.runner:run_experiment_task", kind="reproduce", config=config)
    assert task.key in record.task_keys
    stored = ResultStore(out / "runs").get(task).result
    assert stored["methods"]["tp-ai"]["status"] == "diverged"
    from tpdynamics.runs import codec

    alone = codec.decode(codec.encode(run_experiment_task(config)))
    assert max_relative_difference(stored, alone) < 1e-10
