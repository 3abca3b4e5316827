"""`tpdynamics reproduce --quick`: every experiment runs, writes its files, and its robust claims hold."""
import json

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
