"""Sweeps and reproduce on Dask: a real LocalCluster of 2 worker processes, a worker killed mid-sweep, Ctrl-C.

One cluster serves the sweep tests and ``reproduce`` (reached by its address, ``--scheduler tcp://...``);
``local-cluster:2`` starts its own for the interrupted sweep. Every comparison is of exact numbers; no test measures
time. Skipped without the optional extra (``pip install -e '.[test,distributed]'``, as CI installs it).
"""
import collections
import glob
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from tpdynamics.runs import ResultStore, SchedulerExecutor  # noqa: E402
from tpdynamics.sweep import load_sweep, plan_sweep, run_sweep  # noqa: E402
from tpdynamics.training.runner import run_training_task  # noqa: E402
from tpdynamics_cli.main import main  # noqa: E402

from .test_resume import ROOT, _alive, _cmdline, _descendants  # noqa: E402
from .test_sweep import TOML  # noqa: E402  (the 12-task sweep: 2 methods x 2 rates x 3 seeds)

WAIT = 120  # seconds: generous bounds for a loaded 2-core machine (never a measurement)


def stored(out: Path) -> dict:
    """``{key: result}`` of the store in ``out/runs``."""
    return {r.task.key: r.result for r in ResultStore(out / "runs").records()}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "sweep.toml"
    path.write_text(TOML)
    return path


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (one thread each) and a client of the test's own."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, preload=["tpdynamics.runs.cluster"],
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    client.wait_for_workers(2, timeout=WAIT)
    yield cluster, client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> dict:
    """The sweep on the default scheduler: a pool of 2 local processes."""
    out = tmp_path_factory.mktemp("processes")
    assert main(["sweep", str(config), "--out", str(out), "--scheduler", "processes", "--jobs", "2", "--quiet"]) == 0
    results = stored(out)
    assert len(results) == 12
    return results


@pytest.fixture(scope="module")
def on_dask(config, cluster, tmp_path_factory):
    """The sweep on the cluster, by its address; ``(out, stdout)``."""
    out = tmp_path_factory.mktemp("dask")
    argv = ["sweep", str(config), "--out", str(out), "--scheduler", cluster[0].scheduler_address, "--quiet"]
    return out, argv


def test_a_sweep_on_a_local_cluster_gives_the_numbers_of_processes(on_dask, cluster, reference, capsys):
    out, argv = on_dask
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"0 of 12 tasks reused from {out / 'runs'}; ran 12 on dask-scheduler; wrote {out / 'results.csv'}")
    assert stored(out) == reference  # every number of every run (losses per epoch, problems) identical
    workers = set(cluster[1].run(os.getpid).values())
    records = ResultStore(out / "runs").records()
    assert {r.pid for r in records} <= workers and os.getpid() not in workers  # they ran on the cluster's processes


def test_rerunning_the_finished_sweep_runs_nothing_and_a_changed_rate_reruns_only_its_tasks(on_dask, config, capsys):
    out, argv = on_dask
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"12 of 12 tasks reused from {out / 'runs'}; ran 0 ")
    before = stored(out)
    changed = config.parent / "changed.toml"
    changed.write_text(TOML.replace("eta = [0.01, 0.03]", "eta = [0.01, 0.05]"))
    assert main([*argv[:1], str(changed), *argv[2:]]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"6 of 12 tasks reused from {out / 'runs'}; ran 6 ")
    after = stored(out)
    assert len(after) == 18 and all(after[k] == v for k, v in before.items())  # the old runs untouched
    plan = [t for t in plan_sweep(load_sweep(changed)).tasks if t.config["hyperparameters"]["eta"] == 0.05]
    assert len(plan) == 6 and all(after[t.key] == run_training_task(t.config) for t in plan[:2])  # what the task gives


def test_a_worker_killed_mid_sweep_has_its_tasks_rerun_and_every_result_written_once(config, cluster, reference,
                                                                                      tmp_path, monkeypatch):
    client = cluster[1]
    pids = client.run(os.getpid)
    writes, killed = collections.Counter(), []
    put = ResultStore.put

    def put_then_kill(self, record):  # the client writes each result; after the first, kill a busy worker
        path = put(self, record)
        writes[record.task.key] += 1
        if not killed:
            deadline = time.monotonic() + WAIT
            while not (busy := [w for w, keys in client.processing().items() if keys and w in pids]):
                assert time.monotonic() < deadline, "no worker got a task"
                time.sleep(0.01)
            os.kill(pids[busy[0]], signal.SIGKILL)  # mid-task: its one thread is running a task
            killed.append(pids[busy[0]])
        return path

    monkeypatch.setattr(ResultStore, "put", put_then_kill)
    result = run_sweep(load_sweep(config), tmp_path, executor=cluster[0].scheduler_address)
    assert killed and not _alive(killed[0])
    assert result.summary.finished == 12 and not result.failed
    assert len(writes) == 12 and set(writes.values()) == {1}  # every task once: no duplicate, none lost
    assert stored(tmp_path) == reference  # and the numbers of the uninterrupted run


def test_an_unreachable_scheduler_is_a_clear_error(config, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(SchedulerExecutor, "connect_timeout", 2.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(config), "--out", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{port}", "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"tpdynamics sweep: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} "
                          "within 2 s (")
    assert not list((tmp_path / "runs").glob("*.json"))


def test_reproduce_on_the_cluster_writes_the_numbers_of_the_default(tmp_path, capsys, cluster):
    # 3 tasks of the quick set (all 29 take minutes here); the default scheduler with --jobs 1 runs them in this
    # process (test_runs.py shows that its process pool gives the same numbers), which spares two worker starts;
    # the module's cluster by its address spares two more (local-cluster:2 starts its own: the Ctrl-C test below)
    names = ["ch6-update-alignment", "fig5.12-factorisation"]
    default, dask = tmp_path / "default", tmp_path / "dask"
    assert main(["reproduce", "--quick", "--quiet", "--jobs", "1", "--out", str(default), *names]) == 0
    assert main(["reproduce", "--quick", "--quiet", "--scheduler", cluster[0].scheduler_address, "--out", str(dask),
                 *names]) == 0
    assert "0 of 3 tasks reused" in capsys.readouterr().out
    for name in names:
        a, b = (json.loads((folder / f"{name}.json").read_text()) for folder in (default, dask))
        assert a["status"] == b["status"] == "ok"
        assert a["data"] == b["data"] and a["claims"] == b["claims"]
    assert stored(default) == stored(dask)
    workers = set(cluster[1].run(os.getpid).values())
    assert {r.pid for r in ResultStore(dask / "runs").records()} <= workers  # they ran on the cluster's processes


def test_ctrl_c_on_a_local_cluster_cancels_closes_it_and_exits_130(tmp_path):
    config = tmp_path / "slow.toml"  # runs of a second or so each, so that most are still to do at the interrupt
    # and 48 of them, so that an idle machine cannot finish the sweep between the first result and the interrupt
    config.write_text(TOML.replace("batches_per_epoch = 3", "batches_per_epoch = 400")
                      .replace("seed = [0, 1, 2]", f"seed = {list(range(12))}"))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "tpdynamics_cli.main", "sweep", str(config), "--out", str(out),
                                "--scheduler", "local-cluster:2", "--quiet"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    children = {}
    try:
        deadline = time.monotonic() + WAIT
        while not glob.glob(str(out / "runs" / "*.json")):
            for child in _descendants(process.pid):
                children[child] = _cmdline(child) or children.get(child, "")
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no task finished"
            time.sleep(0.01)
        for child in _descendants(process.pid):
            children[child] = _cmdline(child) or children.get(child, "")
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        rc = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stderr = process.stderr.read()
    assert rc == 130 and "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tpdynamics sweep: interrupted: kept ")
    assert f"{out / 'results.csv'} lists the finished runs" in lines[0]
    workers = [c for c, command in children.items() if "spawn_main" in command]
    assert len(workers) >= 2  # the cluster's worker processes were seen ...
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [c for c in children if _alive(c)]  # ... and none is left
    kept = len(list((out / "runs").glob("*.json")))
    assert 1 <= kept < 48 and f"kept {kept} of 48 tasks" in lines[0]
