"""Long runs that survive: Ctrl-C keeps the finished tasks, a rerun resumes them, REPORT.md covers the folder."""
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.reproduce import EXPERIMENTS, Claim, Experiment, Summary, reproduce
from tpdynamics_cli.main import main

ROOT = Path(__file__).resolve().parents[1]


# -- helpers: a CLI process interrupted the way a terminal's Ctrl-C does it ----------------------------------------
def _descendants(pid: int) -> set[int]:
    out = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            children = [int(c) for c in Path(path).read_text().split()]
        except OSError:
            continue
        for child in children:
            out |= {child} | _descendants(child)
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _interrupt_after_first_file(argv, pattern: str):
    """Start ``tpdynamics ARGV``, send SIGINT once ``pattern`` matches a file; return (rc, stderr, children)."""
    # SIGINT back to its default in the child: a shell running the tests in the background may have ignored it
    process = subprocess.Popen([sys.executable, "-m", "tpdynamics_cli.main", *argv], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    children = {}  # pid -> command line, read while they run

    def look():  # read again each time: a child seen between its fork and its exec shows the parent's command
        for child in _descendants(process.pid):
            children[child] = _cmdline(child) or children.get(child, "")

    try:
        while not glob.glob(pattern):
            look()
            if process.poll() is not None:
                pytest.fail(f"the run ended before its first task was stored: {process.stderr.read()}")
            time.sleep(0.01)
        look()
        process.send_signal(signal.SIGINT)
        try:
            rc = process.wait(timeout=5)  # the bound: out within 5 s of the first Ctrl-C
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 5 s after SIGINT (load {Path('/proc/loadavg').read_text().strip()})")
    finally:
        if process.poll() is None:
            process.kill()
    workers = {c for c, command in children.items() if "resource_tracker" not in command}
    return rc, process.stderr.read(), workers, set(children) - workers


def _assert_no_child_left(workers, trackers):
    assert not [w for w in workers if _alive(w)]  # the workers were terminated and reaped before the exit
    deadline = time.monotonic() + 5  # multiprocessing's resource tracker exits when it reads EOF from the parent
    while any(_alive(t) for t in trackers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in trackers if _alive(t)]


def test_the_fast_exit_after_an_interrupt_leaves_no_semaphore_for_the_resource_tracker_to_report():
    # a spawn-context lock still referenced at the exit, as a worker pool's queues may be after Ctrl-C: a bare
    # os._exit leaves it registered and the tracker prints "There appear to be 1 leaked semaphore objects"
    script = ("import multiprocessing as mp; from tpdynamics_cli.main import _leave_now; "
              "lock = mp.get_context('spawn').Lock(); _leave_now(130)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert "leaked" not in done.stderr and done.stderr.strip() == "", done.stderr


# -- reproduce -----------------------------------------------------------------------------------------------------
def test_interrupted_reproduce_keeps_its_tasks_and_a_rerun_reuses_them_with_the_same_numbers(tmp_path, capsys):
    out = tmp_path / "out"
    fast, slow = "ch6-update-alignment", "sec6.7-stability"  # two sub-second tasks, then a scan of ~10 s
    rc, stderr, workers, trackers = _interrupt_after_first_file(
        ["reproduce", "--quick", "--jobs", "2", "--quiet", "--out", str(out), fast, slow], str(out / "runs" / "*.json"))
    assert rc == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted: kept" in lines[0] and "Run the same command again to resume" in lines[0]
    assert len(workers) == 2
    _assert_no_child_left(workers, trackers)

    stored = list((out / "runs").glob("*.json"))
    assert 1 <= len(stored) < 4 and not list((out / "runs").glob("*.tmp"))  # finished ones kept, whole
    assert f"kept {len(stored)} of 4 tasks" in lines[0]  # the line counts what is on disk
    assert all(json.loads(p.read_text())["status"] == "done" for p in stored)
    report = (out / "REPORT.md").read_text()
    assert "**PARTIAL REPORT**" in report and f"## {slow}" in report and "incomplete" in report
    assert json.loads((out / f"{slow}.json").read_text())["status"] == "incomplete"

    # rerun the finished experiment: its stored tasks are reused and give the numbers of an uninterrupted run
    done = sum(json.loads(p.read_text())["config"]["experiment"] == fast for p in stored)
    assert main(["reproduce", "--quick", "--jobs", "1", "--quiet", "--out", str(out), fast]) == 0
    assert f"{done} of 2 tasks reused" in capsys.readouterr().out
    reference = reproduce([fast], quick=True, out=tmp_path / "uninterrupted", jobs=1, progress=False)[0]
    resumed = json.loads((out / f"{fast}.json").read_text())
    assert resumed["status"] == "ok" and resumed["data"] == reference.to_dict()["data"]
    assert resumed["claims"] == reference.to_dict()["claims"]
    report = (out / "REPORT.md").read_text()  # the other experiment's row is kept, still incomplete
    assert f"[{slow}](#{slow})" in report and "**PARTIAL REPORT**" in report
    assert f"[{fast}](#{fast}) | " in report


# -- train ---------------------------------------------------------------------------------------------------------
def test_interrupted_train_keeps_every_finished_run_and_resumes(tmp_path, capsys):
    files = {"--json": tmp_path / "r.json", "--csv": tmp_path / "r.csv", "--plot": tmp_path / "r.png"}
    argv = ["train", "--method", "bp,dtp-ai", "--seeds", "3", "--epochs", "2", "--layers", "4,4,4",
            "--batches-per-epoch", "300", "--n-test", "50", "--quiet", "--jobs", "1"]
    argv += [str(x) for pair in files.items() for x in pair]
    store = tmp_path / "tpdynamics-runs"
    rc, stderr, workers, trackers = _interrupt_after_first_file(argv, str(store / "*.json"))
    assert rc == 130 and "Traceback" not in stderr, stderr
    assert "runs finished in" in stderr and "run the same command again to resume" in stderr
    assert not workers and not trackers  # --jobs 1 trains in the CLI process itself

    stored = {(d["config"]["method"], d["config"]["seed"]): d for d in
              (json.loads(p.read_text()) for p in store.glob("*.json"))}
    partial = json.loads(files["--json"].read_text())
    assert partial["partial"] is True and 1 <= len(stored) < 6
    kept = {(r["method"], run["seed"]): run for r in partial["results"] for run in r["runs"]}
    assert set(kept) == set(stored)  # every finished run is in the JSON ...
    assert {(m["method"], m["seed"]) for m in partial["missing_runs"]} == (
        {(m, s) for m in ("bp", "dtp-ai") for s in range(3)} - set(kept))
    assert files["--csv"].stat().st_size > 0 and files["--plot"].stat().st_size > 1000  # ... and CSV and figure

    assert main(argv) == 0  # the same command resumes: the finished runs are reused, the others trained
    assert f"{len(stored)} of 6 tasks reused" in capsys.readouterr().out
    final = json.loads(files["--json"].read_text())
    assert final["partial"] is False and final["missing_runs"] == []
    resumed = {(r["method"], run["seed"]): run for r in final["results"] for run in r["runs"]}
    assert all(resumed[key] == run for key, run in kept.items())
    assert main([*argv[:-6], "--json", str(tmp_path / "fresh.json"), "--store", str(tmp_path / "other")]) == 0
    assert json.loads((tmp_path / "fresh.json").read_text())["results"] == final["results"]  # as if never stopped


# -- the report of a folder ----------------------------------------------------------------------------------------
class _Counting(Experiment):
    title = "a test experiment"
    reference = "none"
    thesis_says = "nothing"
    quick = {"scale": 2.0}
    full = {"scale": 3.0}
    default_seeds = 2
    quick_seeds = 2
    summaries = 0

    def run_task(self, settings, task):
        return {"value": settings["scale"] * (task["seed"] + 1)}

    def summarize(self, settings, results):
        from matplotlib.figure import Figure

        type(self).summaries += 1
        fig = Figure()
        fig.subplots().plot([r["value"] for r in results])
        total = sum(r["value"] for r in results)
        return Summary(data={"total": total}, claims=[Claim("x", f"total {total}", True, values={"total": total})],
                       figure=fig)


class _Alpha(_Counting):
    pass


class _Beta(_Counting):
    pass


def test_a_subset_into_an_existing_folder_updates_its_rows_and_keeps_the_others(tmp_path, monkeypatch):
    monkeypatch.setitem(EXPERIMENTS._classes, "alpha", _Alpha)
    monkeypatch.setitem(EXPERIMENTS._classes, "beta", _Beta)
    _Alpha.name, _Beta.name = "alpha", "beta"
    first = reproduce(["alpha", "beta"], quick=True, out=tmp_path, progress=False)
    assert [r.status for r in first] == ["ok", "ok"] and first.summary.reused == 0
    rows = [line for line in (tmp_path / "REPORT.md").read_text().splitlines() if line.startswith("| [")]
    assert len(rows) == 2

    summaries = _Counting.summaries
    again = reproduce(["alpha", "beta"], quick=True, out=tmp_path, progress=False)
    assert again.summary.reuse_message() == f"4 of 4 tasks reused from {tmp_path / 'runs'}"
    assert _Counting.summaries == summaries  # nothing changed: the stored summaries are kept as they are

    full = reproduce(["beta"], quick=False, out=tmp_path, progress=False)  # another configuration of one of them
    assert full.summary.reused == 0 and full[0].data == {"total": 9.0}
    report = (tmp_path / "REPORT.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| [")]
    assert len(rows) == 2 and "| [alpha](#alpha) | none | quick | ok |" in report
    assert "| [beta](#beta) | none | full | ok |" in report and "total 9.0" in report and "total 6.0" in report
    assert "PARTIAL" not in report

    fresh = reproduce(["alpha"], quick=True, out=tmp_path, progress=False, fresh=True)
    assert fresh.summary.reused == 0 and fresh[0].tasks_reused == 0
    with pytest.raises(ValueError, match=r"out=.* is an existing file, not a folder"):
        reproduce(["alpha"], out=tmp_path / "REPORT.md", progress=False)
    assert os.path.isfile(tmp_path / "REPORT.md")


def test_a_method_resumed_with_one_seed_left_gives_the_bits_of_the_uninterrupted_run(tmp_path):
    # the lone seed left trains as a one-member ensemble: the serial path's numbers differ in the last digits
    argv = ["train", "--method", "bp,dtp-ai", "--seeds", "3", "--epochs", "2", "--layers", "4,4,4",
            "--batches-per-epoch", "100", "--n-test", "50", "--quiet", "--jobs", "1"]
    store = tmp_path / "store"
    assert main([*argv, "--json", str(tmp_path / "fresh.json"), "--store", str(store)]) == 0
    removed = 0
    for path in store.glob("*.json"):
        config = json.loads(path.read_text())["config"]
        if config["seed"] == 2 or (config["method"] == "dtp-ai" and config["seed"] == 1):
            path.unlink()
            removed += 1
    assert removed == 3  # bp keeps seeds 0 and 1, dtp-ai keeps seed 0
    assert main([*argv, "--json", str(tmp_path / "resumed.json"), "--store", str(store)]) == 0
    fresh, resumed = (json.loads((tmp_path / f"{n}.json").read_text())["results"] for n in ("fresh", "resumed"))
    assert resumed == fresh
