"""tpdynamics.runs: the lossless codec, task keys, the result store, executors and run_tasks."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import tpdynamics as tp
from tpdynamics.runs import (EXECUTORS, ResultStore, Task, TaskRecord, TaskStatus, codec, config_hash, make_executor,
                             run_tasks)

HELPERS = "tests.runs_helpers"


def task(x, function="square", **extra):
    return Task(f"{HELPERS}:{function}", {"x": x, **extra}, kind="test", label=f"x={x}")


@dataclasses.dataclass
class _NotTrusted:
    a: int = 1


# -- codec -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    {"a": (1, 2.5, float("nan")), "b": [math.inf, -math.inf, None, True, "s"]},
    np.array([[1.0, np.inf], [np.nan, -0.0]]),
    np.arange(6, dtype=np.int32).reshape(2, 3),
    np.array([1 + 2j, np.nan - 1j]),
    torch.tensor([[1.5, -2.0]], dtype=torch.float32),
    {1: "int key", (2, 3): "tuple key", "__float__": "a key that looks like a tag"},
    torch.float64,
])
def test_codec_round_trip_is_lossless(value):
    text = codec.dumps(value)
    json.loads(text)  # strict JSON (no NaN literals)
    assert "NaN" not in text and "Infinity" not in text
    back = codec.loads(text)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape
        np.testing.assert_array_equal(back, value)
        assert np.array_equal(np.signbit(back.real), np.signbit(value.real))
    elif isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and torch.equal(back, value)
    elif isinstance(value, dict) and "a" in value:
        assert back["a"][:2] == (1, 2.5) and math.isnan(back["a"][2]) and back["b"] == value["b"]
    else:
        assert back == value


def test_codec_rebuilds_the_package_result_objects_exactly():
    from analysis.scan import stability_scan

    scan = stability_scan(40, depths=(2,), widths=(2,), seed=1, refine=2)
    back = codec.loads(codec.dumps(scan))
    assert type(back) is type(scan) and back.to_dict() == scan.to_dict()
    np.testing.assert_array_equal(back.transient_growth, scan.transient_growth)


def test_codec_refuses_unknown_types_and_untrusted_classes():
    with pytest.raises(TypeError, match=r"cannot store a builtins.set in a task result; return JSON types"):
        codec.encode({1, 2})
    encoded = codec.encode(_NotTrusted())
    with pytest.raises(ValueError, match=r"refusing to rebuild 'tests.test_runs:_NotTrusted'.*tpdynamics, analysis"):
        codec.decode(encoded)
    assert codec.decode(encoded, trusted=("tests",)) == _NotTrusted()


def test_keys_follow_the_canonical_configuration_and_the_version():
    a = Task("m:f", {"layers": (6, 6), "eta": 0.1, "nested": {"b": 1, "a": 2}}, kind="k")
    b = Task("m:g", {"nested": {"a": 2, "b": 1}, "eta": 0.1, "layers": [6, 6]}, kind="k", label="other")
    assert a.key == b.key  # tuple vs list, key order, function and label do not matter
    assert Task("m:f", {"layers": (6, 6), "eta": 0.1000001, "nested": {"b": 1, "a": 2}}, kind="k").key != a.key
    assert Task("m:f", dict(a.config), kind="other").key != a.key
    assert config_hash("k", a.config) == a.key
    assert config_hash("k", a.config, version="0.0.0") != a.key
    with pytest.raises(TypeError, match=r"a task configuration holds plain data .*got a builtins.object"):
        Task("m:f", {"x": object()})
    with pytest.raises(ValueError, match=r"function='nocolon' must be 'package.module:function'"):
        Task("nocolon", {})


# -- store -------------------------------------------------------------------------------------------------------
def test_store_keeps_one_file_per_task_and_reuses_only_a_matching_configuration(tmp_path):
    store = ResultStore(tmp_path / "store")
    t = task(3)
    assert store.get(t) is None and store.status([t])["pending"] == [t]
    path = store.put(TaskRecord(task=t, status="done", result={"value": (9, np.float64(1.5))}, seconds=0.5))
    assert path == tmp_path / "store" / f"{t.key}.json" and [p.name for p in path.parent.iterdir()] == [path.name]
    record = store.get(t)
    assert record.reused and record.ok and record.result == {"value": (9, 1.5)}
    assert record.status is TaskStatus.DONE  # the stored word comes back as the exported vocabulary
    data = json.loads(path.read_text())
    assert data["config"] == {"x": 3} and data["version"] == tp.__version__ and data["status"] == "done"
    data["config"] = {"x": 4}  # a file whose content does not match its name (edited by hand): not reused
    path.write_text(json.dumps(data))
    assert store.get(t) is None
    assert [r.task.config for r in store.records("test")] == [{"x": 4}] and store.records("other") == []
    (tmp_path / "store" / f".{t.key}.json.abc.tmp").write_text("{truncated")  # a write cut short: ignored
    assert len(store.records()) == 1
    with pytest.raises(ValueError, match=r"store=.* is a file, not a folder"):
        ResultStore(path)


# -- run_tasks ---------------------------------------------------------------------------------------------------
def test_run_tasks_reuses_stored_results_and_fresh_redoes_them(tmp_path):
    tasks = [task(x) for x in (1, 2, 3)]
    first = run_tasks(tasks[:2], tmp_path)
    assert first.reused == 0 and [r.result["value"] for r in first.records] == [1, 4]
    second = run_tasks(tasks, tmp_path)
    assert second.reused == 2 and second.reuse_message() == f"2 of 3 tasks reused from {tmp_path}"
    assert [r.reused for r in second.records] == [True, True, False]
    assert [r.result["value"] for r in second.records] == [1, 4, 9]
    third = run_tasks(tasks, tmp_path, fresh=True)
    assert third.reused == 0 and not any(r.reused for r in third.records)
    duplicate = run_tasks([task(5), task(5)], None)
    assert duplicate.records[0] is duplicate.records[1]  # equal keys run once


def test_a_failed_task_is_stored_with_its_traceback_and_the_others_go_on(tmp_path):
    tasks = [task(x, "fail_on", bad=2) for x in (1, 2, 3)]
    summary = run_tasks(tasks, tmp_path)
    assert [r.status for r in summary.records] == ["done", "failed", "done"]
    assert [r.status for r in summary.records] == [TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.DONE]
    assert set(ResultStore(tmp_path).status(tasks)) == {s.value for s in TaskStatus}
    failed = json.loads((tmp_path / f"{tasks[1].key}.json").read_text())
    assert failed["error"] == "ArithmeticError: deliberate failure for x=2"
    assert "Traceback" in failed["traceback"] and "fail_on" in failed["traceback"]
    assert isinstance(summary.records[1].exception, ArithmeticError)
    again = run_tasks(tasks, tmp_path)  # a failed task is not reused: it runs again
    assert again.reused == 2 and again.records[1].status == "failed" and not again.records[1].reused


def test_worker_processes_give_the_serial_results_and_a_killed_worker_loses_nothing(tmp_path):
    # one worker (each start imports torch: seconds on a loaded machine); it dies in its first task
    tasks = [task(10, "die_once", marker=str(tmp_path / "marker")), task(2), task(3)]
    pooled = run_tasks(tasks, tmp_path / "store", executor="processes", jobs=1)
    assert pooled.executor == "processes"
    assert (tmp_path / "marker").exists()  # the worker did die (os._exit) and the pool was restarted
    assert [r.status for r in pooled.records] == ["done"] * 3
    assert [r.result["value"] for r in pooled.records] == [100, 4, 9]
    assert __import__("os").getpid() not in {r.pid for r in pooled.records}
    serial = run_tasks(tasks[1:], None)
    assert [r.result["value"] for r in serial.records] == [4, 9]
    assert len(list((tmp_path / "store").glob("*.json"))) == 3


def test_an_interrupted_process_pool_leaves_no_worker_and_no_named_semaphore(monkeypatch):
    """The pool's queues hold named semaphores (registered with multiprocessing's resource tracker); they must
    be unlinked by the time ``run`` re-raises: the CLI then leaves with ``os._exit``, and a semaphore still
    registered at that moment is reported by the tracker ("leaked semaphore objects") on the user's terminal."""
    import multiprocessing
    import os
    from multiprocessing import resource_tracker

    from tpdynamics.runs import ProcessExecutor

    registered, unregistered = [], []
    register, unregister = resource_tracker.register, resource_tracker.unregister

    def spy_register(name, rtype):
        if rtype == "semaphore":
            registered.append(name)
        return register(name, rtype)

    def spy_unregister(name, rtype):
        if rtype == "semaphore":
            unregistered.append(name)
        return unregister(name, rtype)

    # SemLock looks both up in the module at each call
    monkeypatch.setattr(resource_tracker, "register", spy_register)
    monkeypatch.setattr(resource_tracker, "unregister", spy_unregister)

    def interrupt(index, record):
        raise KeyboardInterrupt  # as Ctrl-C in the parent does, once the first task is in

    tasks = [task(2), task(3, "sleep", seconds=60), task(4, "sleep", seconds=60)]
    with pytest.raises(KeyboardInterrupt):
        ProcessExecutor(jobs=2).run(tasks, interrupt)
    left = [name for name in registered if name not in unregistered]  # checked at once: no grace period
    assert len(registered) >= 5 and not left  # the call queue's 3 and the result queue's 2, all released
    if os.path.isdir("/dev/shm"):  # Linux: a named semaphore is the file sem.NAME there until unlinked
        assert not [name for name in registered if os.path.exists(f"/dev/shm/sem.{name.lstrip('/')}")]
    assert not multiprocessing.active_children()  # the workers were terminated and reaped


def test_executor_arguments_are_checked():
    assert set(EXECUTORS.names()) >= {"processes", "serial"}
    with pytest.raises(ValueError, match=r"Unknown executor executor='dask-nope'. Valid names: dask-scheduler, "
                                         r"local-cluster, processes, serial"):
        run_tasks([task(1)], None, executor="dask-nope")
    with pytest.raises(ValueError, match=r"jobs=0 must be an int >= 1 \(the number of worker processes"):
        run_tasks([task(1)], None, jobs=0)
    with pytest.raises(ValueError, match=r"threads=0 must be >= 1"):
        make_executor("processes", jobs=2, threads=0)
    with pytest.raises(TypeError, match=r"tasks must be a sequence of tpdynamics.runs.Task"):
        run_tasks([{"x": 1}], None)


# -- atomic writes -----------------------------------------------------------------------------------------------
# the children load atomic.py by itself (it imports nothing of the package): no torch import, no seconds lost
_LOAD = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("atomic", {path!r})
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
atomic_path, atomic_write_text = atomic.atomic_path, atomic.atomic_write_text
"""
_ATOMIC = __import__("tpdynamics.runs.atomic", fromlist=["x"]).__file__
_WRITER = _LOAD.format(path=_ATOMIC) + """
path, size = sys.argv[1], int(sys.argv[2])
i = 0
while True:
    atomic_write_text(path, f"{i:08d}\\n" + "x" * size + "\\nEND\\n")
    i += 1
"""


def test_a_writer_killed_with_sigkill_never_leaves_a_truncated_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path, size = tmp_path / "result.json", 2_000_000
    for delay in (0.0, 0.013, 0.071):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(size)])
        try:
            while not path.exists():
                time.sleep(0.005)
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        text = path.read_text()
        assert len(text) == 9 + size + 5 and text.endswith("\nEND\n"), (delay, len(text))


def test_a_process_that_dies_inside_a_write_keeps_the_old_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "r.json"
    code = (_LOAD.format(path=_ATOMIC) + "atomic_write_text(sys.argv[1], 'old and complete')\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('half of the new')\n"
            "    os._exit(3)\n")
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 3
    assert path.read_text() == "old and complete"
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].startswith(".r.json.") and leftovers[0].endswith(".tmp")
    assert ResultStore(tmp_path).records() == []  # the store skips both (not task files)


def test_sigint_deferred_holds_an_interrupt_to_the_end_of_the_block_and_ignored_drops_it():
    import os
    import signal

    from tpdynamics.runs import sigint_deferred, sigint_ignored

    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once, in this thread
            done.append("the rest of the block ran")
    assert done == ["the rest of the block ran"]
    with sigint_ignored():
        os.kill(os.getpid(), signal.SIGINT)
    done.append("not interrupted")
    assert done[-1] == "not interrupted"


# -- threads -----------------------------------------------------------------------------------------------------
def test_busy_cores_does_not_count_this_process_own_threads(monkeypatch):
    """``/proc/loadavg`` counts runnable threads, ours included (torch's intra-op workers spin after a
    parallel region): they must not make the policy think the machine is busy."""
    import builtins
    import io

    from tpdynamics import threads

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            return io.StringIO("0.50 0.40 0.30 4/300 12345\n")  # 4 runnable threads right now
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 3)  # 3 of them are ours
    assert threads.busy_cores() == 1
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 1)
    assert threads.busy_cores() == 3
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 4)  # all runnable threads are ours: idle
    assert threads.default_threads(512) == 8


def test_own_running_threads_counts_at_least_the_caller():
    from tpdynamics import threads

    assert threads._own_running_threads() >= 1


def test_thread_switches_and_policy():
    before = tp.get_threads()
    with tp.thread_limit(1):
        assert torch.get_num_threads() == 1
        previous = tp.set_threads(2)
        assert previous == 1 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    assert tp.default_threads() == 1 and tp.default_threads(64) == 1
    assert 1 <= tp.default_threads(512) <= tp.available_cores()
    with pytest.raises(ValueError, match=r"threads=0 must be >= 1 \(intra-op torch threads\)"):
        tp.set_threads(0)
    with pytest.raises(TypeError, match=r"threads must be an int >= 1 .*got float 1.5"):
        tp.set_threads(1.5)


def test_every_command_takes_threads_and_applies_it():
    from tpdynamics_cli.common import apply_threads
    from tpdynamics_cli.main import SUBCOMMANDS, build_parser

    parser = build_parser()
    for name in SUBCOMMANDS:
        assert "--threads" in parser._subparsers._group_actions[0].choices[name].format_help()
    before = tp.get_threads()
    try:
        args = parser.parse_args(["equilibrium", "--threads", "3"])
        assert apply_threads(args) == 3 and torch.get_num_threads() == 3
        args = parser.parse_args(["equilibrium", "--layers", "6,6,6"])
        assert apply_threads(args) == 1  # auto: one thread below 256-wide layers
    finally:
        tp.set_threads(before)


def test_group_by_key_keeps_first_appearance_order_and_none_alone():
    from tpdynamics.runs import group_by_key

    keys = ["a", None, "b", "a", None, "b", "a"]
    assert group_by_key(keys, lambda k: k) == [[0, 3, 6], [1], [2, 5], [4]]
    assert group_by_key([], lambda k: k) == []
