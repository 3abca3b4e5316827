"""Sweeps without Dask: the TOML configuration and its errors, the points, the store, results.csv, the CLI.

The runs here are tiny and in this process (``--jobs 1``); the Dask executors are in test_sweep_dask.py.
"""
import csv
import json
import re
import sys
from pathlib import Path

import pytest

from tpdynamics.errors import MissingExtraError, TPDynamicsWarning
from tpdynamics.runs import ResultStore, make_executor
from tpdynamics.sweep import load_sweep, parse_sweep, plan_sweep, run_sweep, sweep_status
from tpdynamics.training import TrainingConfig
from tpdynamics.training.runner import run_training_task, training_tasks
from tpdynamics_cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"
TINY = {"layers": [3, 3, 3], "epochs": 2, "batches_per_epoch": 3, "n_test": 10}
# bp with batch 1 and eta 0.03 diverges on seed 2 in the thesis's loss scaling (factor 2): where every run must
# complete, the sweep takes the 1/2 ||.||^2 scaling
HALF = {**TINY, "loss_convention": "half"}


def config(**grid):
    return {"fixed": dict(TINY), "grid": grid or {"method": ["bp", "dtp-ai"], "eta": [0.01, 0.03], "seed": [0, 1, 2]}}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TOML = """
[fixed]
layers = [3, 3, 3]
epochs = 2
batches_per_epoch = 3
n_test = 10
[grid]
method = ["bp", "dtp-ai"]
eta = [0.01, 0.03]
seed = [0, 1, 2]
"""


# -- the configuration -----------------------------------------------------------------------------------------
def test_the_grid_is_every_combination_in_order_and_each_point_is_the_train_task_of_that_run():
    spec = parse_sweep(config())
    points = spec.points()
    assert len(points) == 12 and spec.shape() == "method (2) x eta (2) x seed (3)"
    assert [(p["method"], p["eta"], p["seed"]) for p in points[:4]] == [
        ("bp", 0.01, 0), ("bp", 0.01, 1), ("bp", 0.01, 2), ("bp", 0.03, 0)]  # the last key varies fastest
    plan = plan_sweep(spec)
    assert plan.distinct == 12 and plan.tasks[1].label == "bp seed 1 eta=0.01"
    # the same run as `train` makes: same key, so the two share stored results
    (train_task,) = training_tasks(TrainingConfig(methods=("bp",), seeds=[1], eta=0.01, layers=(3, 3, 3), epochs=2,
                                                  batches_per_epoch=3, n_test=10))[3]
    assert plan.tasks[1].key == train_task.key and plan.tasks[1].config == train_task.config


def test_random_draws_are_seeded_in_range_and_more_samples_keep_the_earlier_ones():
    data = {"fixed": {**TINY, "method": "dtp-ai"}, "grid": {"seed": [0, 1]},
            "random": {"samples": 3, "seed": 7, "parameters": {
                "eta": {"log-uniform": [1e-3, 1e-1]}, "final_rate_fraction": {"uniform": [0.2, 1.0]},
                "batch_size": {"int": [2, 4]}, "nonlinearity": {"choice": ["tanh", "leaky_relu:0.35"]}}}}
    spec = parse_sweep(data)
    points = spec.points()
    assert len(points) == 6 and spec.shape() == "3 draws of batch_size, eta, final_rate_fraction, nonlinearity x seed (2)"
    assert points[0]["eta"] == points[1]["eta"] and points[0]["seed"] != points[1]["seed"]  # a draw x the grid
    assert all(1e-3 <= p["eta"] <= 1e-1 and 0.2 <= p["final_rate_fraction"] <= 1.0 and p["batch_size"] in (2, 3, 4)
               and p["nonlinearity"] in ("tanh", "leaky_relu:0.35") for p in points)
    assert len({p["eta"] for p in points}) == 3
    assert spec.points() == points  # seeded: the same draws every time
    data["random"]["samples"] = 5
    assert parse_sweep(data).points()[:6] == points  # more samples: the first draws (and their results) stay
    data["random"]["seed"] = 8
    assert parse_sweep(data).points()[0]["eta"] != points[0]["eta"]


def test_points_that_differ_only_in_an_unused_setting_are_one_task_and_say_so_once():
    spec = parse_sweep({"fixed": TINY, "grid": {"method": ["bp", "dtp-ai"], "eta_backward": [0.01, 0.05]}})
    with pytest.warns(TPDynamicsWarning, match=r"eta_backward is not used by bp .*\(2 of 4 points; points that "
                                               r"differ only in it are the same run, trained once\)") as caught:
        plan = plan_sweep(spec)
    assert len(caught) == 1 and len(plan.tasks) == 4 and plan.distinct == 3


@pytest.mark.parametrize("text, error, message", [
    ("[grid]\nmethod = ['bp']\netaa = [0.1]\n", ValueError, r"\[grid\] got an unknown key etaa \(did you mean eta\?\)"),
    ("[fixed]\nmethod = 'bp'\nlayer = [3, 3]\n[grid]\nseed = [0]\n", ValueError,
     r"\[fixed\] got an unknown key layer \(did you mean layers\?\)"),
    ("[grids]\nmethod = ['bp']\n", ValueError, r"the sweep configuration got an unknown key grids \(did you mean grid\?\)"),
    ("[sweep]\nnmae = 'x'\n[grid]\nmethod = ['bp']\n", ValueError, r"\[sweep\] got an unknown key nmae"),
    ("[grid]\nmethod = ['bp']\neta = '0.1'\n", TypeError, r"grid\.eta must be a list of values, such as \[0\.01, 0\.1\]"),
    ("[grid]\nmethod = ['bp']\neta = [0.1, 'fast']\n", TypeError, r"grid\.eta\[1\] must be a number, got str 'fast'"),
    ("[fixed]\nepochs = 2.5\n[grid]\nmethod = ['bp']\n", TypeError, r"fixed\.epochs must be a whole number >= 1, got "
                                                                    r"float 2\.5"),
    ("[fixed]\nlayers = 6\n[grid]\nmethod = ['bp']\n", TypeError, r"fixed\.layers must be a list of at least two"),
    ("[fixed]\neta = -0.1\n[grid]\nmethod = ['bp']\n", ValueError, r"fixed\.eta=-0\.1 must be finite and > 0"),
    ("[fixed]\ndtype = 'float16'\n[grid]\nmethod = ['bp']\n", ValueError, r"fixed\.dtype='float16' is not valid; "
                                                                          r"use one of float64, float32"),
    ("[grid]\nmethod = ['bp']\neta = []\n", ValueError, r"grid\.eta is an empty list, so the grid has no points"),
    ("[fixed]\nmethod = 'bp'\n[grid]\n", ValueError, r"the grid is empty: the sweep has no points"),
    ("[fixed]\nmethod = 'bp'\n", ValueError, r"the grid is empty"),
    ("grid = 3\n", TypeError, r"grid must be a table \(\[grid\]\), got int 3"),
    ("[grid]\nmethod = ['bp', 'bp']\n", ValueError, r"grid\.method lists a value twice"),
    ("[fixed]\neta = 0.1\n[grid]\nmethod = ['bp']\neta = [0.1]\n", ValueError, r"eta is set in both fixed and grid"),
    ("[grid]\nseed = [0, 1]\n", ValueError, r"method is not set: give fixed\.method"),
    ("[grid]\nmethod = ['bp']\n[random]\nparameters = {eta = {uniform = [0.1, 0.2]}}\n", ValueError,
     r"random\.samples is missing"),
    ("[grid]\nmethod = ['bp']\n[random]\nsamples = 2\n[random.parameters]\neta = {normal = [0.1, 0.2]}\n", ValueError,
     r"random\.parameters\.eta: 'normal' is not a distribution for eta \(float\); use one of uniform, log-uniform, "
     r"choice"),
    ("[grid]\nmethod = ['bp']\n[random]\nsamples = 2\n[random.parameters]\neta = {log-uniform = [0, 0.2]}\n",
     ValueError, r"random\.parameters\.eta\.log-uniform\[0\]=0\.0 must be finite and > 0"),
    ("[grid]\nmethod = ['bp']\n[random]\nsamples = 2\n[random.parameters]\nepochs = {uniform = [1, 3]}\n", ValueError,
     r"'uniform' is not a distribution for epochs \(int\); use one of int, choice"),
    ("[grid]\nmethod = ['bp']\n[random]\nsamples = 2\n[random.parameters]\neta = {uniform = [0.3, 0.2]}\n",
     ValueError, r"random\.parameters\.eta\.uniform = \[0\.3, 0\.2\] needs low < high"),
    ("[grid]\nmethod = = ['bp']\n", ValueError, r"not valid TOML: .*line 2"),
])
def test_a_bad_configuration_is_a_clear_error_naming_the_key(tmp_path, capsys, text, error, message):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(error, match=rf"^{re.escape(str(path))}: .*{message}"):
        load_sweep(path)
    with pytest.raises(SystemExit) as info:  # the command line: exit 2, one line
        main(["sweep", str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith("tpdynamics sweep: error: ")


def test_a_point_the_training_code_refuses_is_named_before_anything_runs(tmp_path):
    spec = parse_sweep({"fixed": {**TINY, "layers": [3, 4, 3]}, "grid": {"method": ["bp", "tp-ei"]}}, source="s.toml")
    with pytest.raises(ValueError, match=r"^s\.toml: point 2 of 2 \(tp-ei seed 0\): .*"):
        run_sweep(spec, tmp_path)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ValueError, match=r"an unknown learning rule 'nope'|nope"):
        plan_sweep(parse_sweep({"grid": {"method": ["nope"]}}))


# -- running, the store and results.csv -----------------------------------------------------------------------------
def _table(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_sweep_stores_every_run_reuses_them_and_a_changed_rate_reruns_only_its_tasks(tmp_path):
    spec = parse_sweep({**config(), "fixed": HALF})
    first = run_sweep(spec, tmp_path)
    assert first.summary.reused == 0 and first.summary.finished == 12 and not first.failed
    assert len(list((tmp_path / "runs").glob("*.json"))) == 12
    rows = _table(first.table)
    assert len(rows) == 12 and [r["label"] for r in rows] == [t.label for t in first.plan.tasks]
    by_key = {r.task.key: r for r in first.summary.records}
    for row in rows:  # the table is the store: configuration columns and final metrics of each run
        run = by_key[row["key"]].result["run"]
        assert row["status"] == "done" and row["in_sweep"] == "1" and row["layers"] == "[3, 3, 3]"
        assert float(row["test_loss_final"]) == run["test_loss"][-1] and int(row["epochs_completed"]) == 2
        assert float(row["train_loss_initial"]) == run["train_loss"][0] and row["run_status"] == "completed"
        task = by_key[row["key"]].task.config
        assert (row["method"], int(row["seed"]), float(row["eta"])) == (
            task["method"], task["seed"], task["hyperparameters"]["eta"])
    assert rows[0]["eta_backward"] == "" and rows[-1]["eta_backward"] != ""  # bp has none, dtp-ai has one

    again = run_sweep(spec, tmp_path)
    assert again.summary.reused == 12 and again.summary.reuse_message() == f"12 of 12 tasks reused from {tmp_path / 'runs'}"
    changed = run_sweep(parse_sweep({**config(method=["bp", "dtp-ai"], eta=[0.01, 0.05], seed=[0, 1, 2]), "fixed": HALF}),
                        tmp_path)
    assert changed.summary.reused == 6  # the eta = 0.01 runs; the six of eta = 0.05 ran
    assert [r.reused for r in changed.summary.records] == [True, True, True, False, False, False] * 2
    rows = _table(changed.table)  # the table covers the store: the old eta = 0.03 runs are kept, not in the sweep
    assert len(rows) == 18 and [r["in_sweep"] for r in rows] == ["1"] * 12 + ["0"] * 6
    assert {r["eta"] for r in rows[12:]} == {"0.03"}
    fresh = run_training_task(changed.plan.tasks[3].config)  # a rerun task gives what the function gives
    assert changed.summary.records[3].result["run"]["test_loss"] == fresh["run"]["test_loss"]


def test_a_failed_task_is_stored_with_its_traceback_and_the_rest_go_on(tmp_path, monkeypatch, capsys):
    import tpdynamics.training.runner as runner

    def flaky(task):
        if task["seed"] == 1 and task["method"] == "dtp-ai":
            raise RuntimeError("deliberate failure of dtp-ai seed 1")
        return run_training_task(task)

    monkeypatch.setattr(runner, "run_training_task", flaky)  # --jobs 1: the tasks run in this process
    path = write(tmp_path / "s.toml", TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "1", "--quiet"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("FAILED")] == [
        f"FAILED dtp-ai seed 1 eta={eta}: RuntimeError: deliberate failure of dtp-ai seed 1 (traceback in "
        f"{ResultStore(out / 'runs').path(t)})" for eta, t in zip(
            ("0.01", "0.03"), [t for t in plan_sweep(load_sweep(path)).tasks if t.label.startswith("dtp-ai seed 1")])]
    assert lines[-1] == (f"0 of 12 tasks reused from {out / 'runs'}; ran 12 on serial, 2 failed; wrote "
                         f"{out / 'results.csv'}")
    stored = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    failed = [d for d in stored if d["status"] == "failed"]
    assert len(stored) == 12 and len(failed) == 2
    assert all("Traceback" in d["traceback"] and "deliberate failure" in d["traceback"] for d in failed)
    rows = _table(out / "results.csv")
    assert sorted(r["status"] for r in rows) == ["done"] * 10 + ["failed"] * 2
    assert {r["error"] for r in rows if r["status"] == "failed"} == {"RuntimeError: deliberate failure of dtp-ai seed 1"}

    assert main(["sweep", str(path), "--out", str(out), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"12 tasks: 10 done, 2 failed, 0 pending (in {out})"
    assert "failed   dtp-ai seed 1 eta=0.01: RuntimeError: deliberate failure of dtp-ai seed 1" in lines

    monkeypatch.undo()  # fixed: the rerun runs the two failed tasks only
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"10 of 12 tasks reused from {out / 'runs'}; ran 2 on serial;")


def test_dry_run_and_status_look_without_running(tmp_path, capsys):
    path = write(tmp_path / "s.toml", TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 13 and all(line.startswith("run    ") for line in lines[:12])
    assert lines[-1] == (f"12 points (method (2) x eta (2) x seed (3)), 12 distinct tasks: 0 stored in {out / 'runs'}, "
                         "12 to run (dry run: nothing ran)")
    assert not out.exists()
    assert main(["sweep", str(path), "--out", str(out), "--status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"12 tasks: 0 done, 0 failed, 12 pending (in {out})"

    spec = load_sweep(path)  # run four of them (the bp runs of eta 0.01 and one more), as `train` would
    run_sweep(parse_sweep({**config(), "grid": {"method": ["bp"], "eta": [0.01], "seed": [0, 1, 2]}}), out)
    assert main(["train", "--method", "dtp-ai", "--eta", "0.03", "--seeds", "1", "--layers", "3,3,3", "--epochs", "2",
                 "--batches-per-epoch", "3", "--n-test", "10", "--store", str(out / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    status = sweep_status(spec, out)
    assert [len(status[k]) for k in ("done", "failed", "pending")] == [4, 0, 8]
    assert "dtp-ai seed 0 eta=0.03" in [t.label for t, _ in status["done"]]  # the train run counts for the sweep
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("reuse ") for line in lines) == 4 and "4 stored" in lines[-1]
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(path), "--dry-run", "--status"])
    assert info.value.code == 2 and "give one of them" in capsys.readouterr().err


def test_the_example_sweep_runs_and_fills_its_table(tmp_path, capsys):
    spec = load_sweep(EXAMPLE)
    assert len(spec.points()) == 24 and spec.samples == 2 and spec.name == "dtp-vs-bp"
    assert main(["sweep", str(EXAMPLE), "--out", str(tmp_path), "--jobs", "1", "--quiet"]) == 0
    assert "0 of 24 tasks reused" in capsys.readouterr().out
    rows = _table(tmp_path / "results.csv")
    assert len(rows) == 24 and {r["method"] for r in rows} == {"bp", "dtp-ai"} and {r["preset"] for r in rows} == {"5.2.2"}
    assert all(r["run_status"] == "completed" and float(r["test_loss_final"]) < float(r["test_loss_initial"])
               for r in rows)  # the losses fall in every run


# -- --scheduler without Dask -----------------------------------------------------------------------------------
def test_without_the_extra_the_dask_schedulers_name_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: `import distributed` fails
    for spec in ("local-cluster:2", "tcp://127.0.0.1:8786"):
        with pytest.raises(MissingExtraError, match=r"needs the optional dependencies dask and distributed.*"
                                                    r"pip install 'tpdynamics\[distributed\]'"):
            make_executor(spec)
    path = write(tmp_path / "s.toml", TOML)
    for argv in (["sweep", str(path)], ["reproduce", "--quick", "fig5.5-sherman-morrison"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--out", str(tmp_path / "out"), "--scheduler", "local-cluster:2"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "pip install 'tpdynamics[distributed]'" in err
    assert not (tmp_path / "out").exists()  # refused before any work
    assert make_executor("processes", jobs=2).name == "processes"  # the default needs no extra


@pytest.mark.parametrize("value, message", [
    ("local-cluster:0", r"--scheduler must be processes, local-cluster, local-cluster:N \(N >= 1 worker processes\) "
                        r"or tcp://HOST:PORT \(a running Dask scheduler\), got 'local-cluster:0'"),
    ("dask", r"got 'dask'"), ("127.0.0.1:8786", r"got '127\.0\.0\.1:8786'"),
])
def test_a_bad_scheduler_is_refused_naming_the_forms(capsys, value, message):
    with pytest.raises(SystemExit) as info:
        main(["train", "--method", "bp", "--scheduler", value])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    with pytest.raises(ValueError, match=r"scheduler='local-cluster:x': N of local-cluster:N must be a whole number"):
        make_executor("local-cluster:x")
    with pytest.raises(ValueError, match=r"scheduler='dask:x' is not valid; use processes, local-cluster, "
                                         r"local-cluster:N or tcp://HOST:PORT"):
        make_executor("dask:x")
