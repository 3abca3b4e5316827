"""The runner's training loop for S seeds at once, and the executor that groups the runner's tasks into ensembles.

:func:`train_ensemble` is :func:`tpdynamics.training.runner` 's per-run loop (rate schedule, shuffled
batches from each seed's own generator, evaluation after every epoch, divergence and numerical-error
stops, Sherman–Morrison statistics, diagnostics every k-th step) for S members in one stacked
computation (:class:`~tpdynamics.ensemble.EnsembleTrainer`). It returns the same
:class:`~tpdynamics.training.RunHistory` per member as S serial runs (the oracle tests check it to
1e-12 in float64). A member that stops (diverged, numerical error) is masked out of the record from
that step on; its tensors keep being computed (they cost nothing extra in a stacked step) but nothing
of them is read, and no other member depends on them.

Per-step values stay on the device during an epoch (no host synchronisation per step, which matters
on a GPU); the stop decisions of the epoch are taken at its end, in the serial order.

:class:`EnsembleExecutor` is a :class:`tpdynamics.runs.SerialExecutor` that runs the runner's
``train`` tasks which differ only in their seed, their per-member hyper-parameter values and in being a rule or
its randomized twin (``tp-ai`` and ``rtp-ai``) as one ensemble, and every other task as before; the
store, the reuse of stored runs and the records are those of :func:`tpdynamics.runs.run_tasks`.
:class:`EnsembleProcessExecutor` does the same in worker processes (``jobs > 1``): each worker task
is one ensemble (a method's seeds, split into as many ensembles as keep the workers busy).
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence

import torch

from ..network import make_generator
from ..runs.executors import ProcessExecutor, SerialExecutor, execute, group_by_key, resolve_function
from ..runs.store import Task, TaskRecord, TaskStatus, now, where
from .. import statistics
from ..statistics import diverged
from ..threads import thread_limit
from ..training.data import derived_seed
from ..training.diagnostics import sherman_morrison_summary
from ..training.presets import RUN_SETTINGS
from ..training.results import RunHistory
from ..training.rules import LEARNING_RULES, LearningRule
from ..training.status import TrainingStatus
from .network import EnsembleNetwork, resolve_device
from .step import FAULTS, EnsembleTrainer, batch_losses, ensemble_class, ensemble_support


def _mse(outputs: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """:func:`~tpdynamics.training.data.mean_squared_error` of every member, ``(S, N, n_L)`` -> S floats.

    The mean over the samples and the outputs (``LOSS_UNIT``, as ``torch.nn.MSELoss``), as the serial runner.
    """
    return ((outputs - labels) ** 2).mean((-2, -1)).tolist()


def train_ensemble(rules: Sequence[LearningRule], problems, hyper: dict, settings: dict, config, seeds: Sequence[int],
                   *, device=None, progress_bar=None) -> list[RunHistory]:
    """Train ``rules[s]`` on ``problems[s]`` for every member ``s`` at once; the runner's loop, batched.

    Parameters
    ----------
    rules : sequence of LearningRule
        One per member (one class, or one and its randomized twin: :func:`~tpdynamics.ensemble.ensemble_class`;
        each with its own generator).
    problems : sequence of StudentTeacherProblem
        One per member, of one architecture and one training-set size.
    hyper, settings, config
        As for the runner's per-run loop: ``hyper['batch_size']``, ``hyper['batches_per_epoch']``;
        ``settings['epochs']``, ``settings['final_rate_fraction']``; ``config.diagnostics``,
        ``config.diagnostics_every``, ``config.record_steps``.
    seeds : sequence of int
        The members' seeds (the shuffling generator of member ``s`` is seeded from ``seeds[s]``).
    device : str or torch.device, optional
        Where the stacked computation runs (default ``cpu``).

    Returns
    -------
    list of RunHistory
        What S serial runs would have recorded.
    """
    from ..training.runner import _batches, _student_feedback, epoch_divergence, rate_schedule, step_divergence

    rules, problems, seeds = list(rules), list(problems), list(seeds)
    S = len(rules)
    if not (len(problems) == S == len(seeds)):
        raise ValueError(f"got {len(rules)} rules, {len(problems)} problems and {len(seeds)} seeds; pass one of each "
                         "per member.")
    names = [type(r).name for r in rules]  # each member's method (twins share an ensemble)
    device = resolve_device(device)
    ensemble = EnsembleNetwork([p.student(_student_feedback(type(r), p.layer_sizes)) for r, p in zip(rules, problems)],
                               device=device)
    trainer = EnsembleTrainer(rules, ensemble)
    trainer.backward_losses = False  # RunHistory does not record them
    L = ensemble.depth
    histories = [RunHistory(seed=seed) for seed in seeds]
    toy = problems[0].trainable_layers == (1,) and problems[0].layer_sizes == (1, 2, 2)
    train_x = ensemble.stack([p.train_inputs for p in problems])
    train_y = ensemble.stack([p.train_labels for p in problems])
    test_x = ensemble.stack([p.test_inputs for p in problems])
    test_y = ensemble.stack([p.test_labels for p in problems])
    members = torch.arange(S, device=device)

    def evaluate():
        return _mse(trainer.predict(train_x), train_y), _mse(trainer.predict(test_x), test_y)

    def trajectory(s):
        return ensemble.weights[0][s].detach().flatten().tolist()

    train, test = evaluate()
    for s, history in enumerate(histories):
        history.train_loss.append(train[s])
        history.test_loss.append(test[s])
        if toy:
            history.trajectory.append(trajectory(s))
    shuffles = [make_generator(derived_seed(seed, "shuffle")) for seed in seeds]
    base_eta = [r.eta for r in rules]
    base_eta_backward = [r.eta_backward for r in rules]
    epochs, fraction = settings["epochs"], settings["final_rate_fraction"]
    horizon = hyper["decay_horizon"] * epochs  # the toolbox's tau, as the serial runner (:func:`rate_schedule`)
    outputs = problems[0].layer_sizes[-1]  # step losses are reported per output (LOSS_UNIT), as the serial runner
    batch_size, count = hyper["batch_size"], hyper["batches_per_epoch"]
    n_train = problems[0].train_inputs.shape[0]
    active = list(range(S))
    steps_done = 0  # every active member has made the same number of steps
    for epoch in range(1, epochs + 1):
        for s, rule in enumerate(rules):
            rule.eta = rate_schedule(base_eta[s], epoch, epochs, fraction, horizon=horizon)
            if base_eta_backward[s] is not None:
                rule.eta_backward = rate_schedule(base_eta_backward[s], epoch, epochs, fraction, horizon=horizon)
        trainer.refresh()
        trainer.predraw_noise(count, batch_size)
        index = torch.stack([_batches(n_train, batch_size, count, shuffles[s]) for s in range(S)]).to(device)
        # rows of the stacked training sets, step-major: inputs[b] is the (S, B, n_0) batch of step b, contiguous
        rows = (index + members.view(-1, 1, 1) * n_train).transpose(0, 1).reshape(-1)
        inputs = train_x.reshape(S * n_train, -1).index_select(0, rows).view(count, S, batch_size, -1)
        labels = train_y.reshape(S * n_train, -1).index_select(0, rows).view(count, S, batch_size, -1)
        losses, faults = [], {}  # losses: the steps' residuals
        sm_layers = {}  # layer -> lists over steps of (chosen, |denominator|, clipped)
        diagnosed = []  # name -> (S, L - 1) tensors of the diagnosed steps
        for b in range(count):
            record_diagnostics = config.diagnostics and ((steps_done + b) % config.diagnostics_every == 0)
            record = trainer.step(inputs[b], labels[b], diagnostics=record_diagnostics)
            losses.append(record.residual)
            if record.fault is not None:
                faults[b] = record.fault
            for i, (denominator, clipped, _) in record.sherman_morrison.items():
                entry = sm_layers.setdefault(i, ([], [], []))
                entry[0].append(record.chosen[i])
                entry[1].append(denominator)  # |.| taken once, on the epoch's stack
                entry[2].append(clipped)
            if record.diagnostics is not None:
                diagnosed.append(record.diagnostics)
        losses_device = batch_losses(torch.stack(losses)).T  # (S, count): the epoch's in three operations
        losses_host = losses_device.tolist()
        # members whose every step loss is finite and not diverged (the per-step checks below, all at once;
        # a loss the check lets through here is one the per-step check would have let through too; the
        # threshold read at run time, as diverged() reads it)
        regular = (torch.isfinite(losses_device) & (losses_device.abs() <= statistics.DIVERGENCE_THRESHOLD)).all(1).tolist()
        faults_host = fault_table(faults, count, S)
        sm_host = {i: (_table(chosen, S), _table(denominators, S, absolute=True), _table(clipped, S))
                   for i, (chosen, denominators, clipped) in sm_layers.items()}
        still = []
        evaluated = None
        diagnostic_means = _diagnostic_means(diagnosed, S)
        for s in active:
            history = histories[s]
            epoch_losses, stop = [], None
            regular_epoch = regular[s] and not any(faults_host[s])
            if regular_epoch:  # the loop below when it makes no stop, in three list operations
                epoch_losses = [loss / outputs for loss in losses_host[s]]  # the mini-batch MSE in LOSS_UNIT
                history.steps += count
                if config.record_steps:
                    history.step_loss.extend(epoch_losses)
            for b in range(0 if regular_epoch else count):
                bits = faults_host[s][b]
                if bits:
                    stop = (TrainingStatus.NUMERICAL_ERROR, fault_message(bits, epoch, b + 1))
                    break
                history.steps += 1
                loss = losses_host[s][b]
                if config.record_steps:
                    history.step_loss.append(loss / outputs)
                if not math.isfinite(loss) or diverged(loss):
                    stop = step_divergence(loss, epoch, b + 1, names[s])
                    break
                epoch_losses.append(loss / outputs)  # the mini-batch MSE in LOSS_UNIT
            if stop is None:
                if evaluated is None:
                    trainer.write_back()
                    evaluated = evaluate()
                train, test = evaluated[0][s], evaluated[1][s]
                if diverged(train) or diverged(test):
                    stop = epoch_divergence(train, test, epoch, names[s])
            if stop is not None:
                history.status, history.message = stop
                if progress_bar is not None:
                    progress_bar.update(epochs - epoch + 1)
                continue
            still.append(s)
            history.train_loss.append(train)
            history.test_loss.append(test)
            history.batch_loss.append(sum(epoch_losses) / len(epoch_losses))
            means = dict(diagnostic_means.get(s, {}))
            if sm_host:
                means.update(_sherman_morrison_means(sm_host, s, L))
            for name, values in means.items():
                history.diagnostics.setdefault(name, []).append(values)
            if toy:
                history.trajectory.append(trajectory(s))
            if progress_bar is not None:
                progress_bar.update(1)
                progress_bar.set_postfix(method=names[s], seed=seeds[s], test=f"{test:.3g}")
        active = still
        steps_done += count
        if not active:
            break
    trainer.write_back()
    ensemble.sync_members()
    for history in histories:
        if history.status == TrainingStatus.COMPLETED:
            history.message = f"{epochs} epochs, {history.steps} steps"
    return histories


def fault_table(faults: dict, count: int, S: int) -> list[list[int]]:
    """The epoch's fault bits as ``S`` host lists over its ``count`` steps (0: no fault).

    ``faults`` maps a step index to the ``(S,)`` int16 :attr:`EnsembleStep.fault` of that step; steps with no
    check that can fail are absent.
    """
    table = [[0] * count for _ in range(S)]
    if len(faults) == count:  # every step could fault (target propagation): the stack is the table
        return torch.stack(list(faults.values())).T.tolist()
    if faults:
        steps_with, masks = list(faults), torch.stack(list(faults.values())).T.tolist()
        for s in range(S):
            for b, code in zip(steps_with, masks[s]):
                table[s][b] = code
    return table


def fault_message(bits: int, epoch: int, step: int) -> str:
    """The message of a member's stop for the fault ``bits`` of one step (the lowest :data:`FAULTS` code), naming the
    error class serial training would have raised."""
    name, text = FAULTS[min(c for c in FAULTS if bits >> c & 1)]
    return f"{name} at epoch {epoch}, step {step}: {text}."


def _table(values: list, S: int, *, absolute: bool = False) -> list:
    """The epoch's per-step ``(S,)`` or ``(S, 1, 1)`` tensors as ``S`` host lists over the steps (``|.|``: one op)."""
    table = torch.stack(values).reshape(len(values), S)
    return (table.abs() if absolute else table).T.tolist()


def _diagnostic_means(diagnosed: list, S: int) -> dict:
    """Member -> name -> per-layer means over the epoch's diagnosed steps of the finite values (``_EpochDiagnostics``).

    Only members that complete the epoch read theirs, so every diagnosed step of the epoch counts.
    """
    if not diagnosed or not diagnosed[0]:
        return {}
    out = {s: {} for s in range(S)}
    for name in diagnosed[0]:
        values = torch.stack([d[name] for d in diagnosed])  # (steps, S, L - 1)
        finite = torch.isfinite(values)
        # cumsum: the steps summed one after another, as the runner's running sums, whatever S is (a sum over dim 0
        # is vectorised along it when S (L - 1) == 1, which changes the last digits); 0 / 0: nan, as the runner's
        means = (torch.where(finite, values, 0.0).cumsum(0)[-1] / finite.sum(0)).tolist()
        for s in range(S):
            out[s][name] = means[s]
    return out


def _sherman_morrison_means(sm_host: dict, s: int, L: int) -> dict:
    """The runner's per-layer ``sm_*`` epoch means of member ``s`` from the epoch's per-step records."""
    summaries = []
    for i in range(1, L + 1):
        if i not in sm_host:
            summaries.append(sherman_morrison_summary([]))
            continue
        chosen, absolute, clipped = (column[s] for column in sm_host[i])
        picked = [(a, c) for ch, a, c in zip(chosen, absolute, clipped) if ch]
        if not picked:
            summaries.append(sherman_morrison_summary([]))
            continue
        values = [a for a, _ in picked]
        summaries.append({"abs_denominator_mean": sum(values) / len(values), "abs_denominator_min": min(values),
                          "clipped_fraction": sum(c for _, c in picked) / len(picked)})
    if all(math.isnan(x["abs_denominator_mean"]) for x in summaries):
        return {}  # no Sherman-Morrison step of this member in the epoch: the serial record has none either
    return {"sm_abs_denominator_mean": [x["abs_denominator_mean"] for x in summaries],
            "sm_abs_denominator_min": [x["abs_denominator_min"] for x in summaries],
            "sm_clipped_fraction": [x["clipped_fraction"] for x in summaries]}


# -- the runner's tasks as ensembles ---------------------------------------------------------------------
def _plan(tasks, min_size: int, fallbacks: dict) -> list[tuple[list[int], bool]]:
    """Indices of ``tasks`` in groups, in the tasks' order, each with whether it trains as one ensemble.

    An ensemble holds the ``train`` tasks that differ only in their seed, of a rule the ensemble knows
    (:func:`ensemble_support`; the reason is kept in ``fallbacks`` for the others), at least ``min_size`` of
    them (``min_size`` 1: a lone seed is a one-member ensemble); every other task is a group of its own,
    ``([index], False)``.
    """
    plan = []
    for indices in group_by_key(tasks, _group_key):
        config = tasks[indices[0]].config
        training = _group_key(tasks[indices[0]]) is not None  # a training run (its key: all but the seed)
        reason = None
        if training and len(indices) >= min_size:
            cls = resolve_function(config["rule"]) if "rule" in config else LEARNING_RULES.get(config["method"])
            reason = ensemble_support(cls)
            if reason is not None:
                fallbacks[config["method"]] = reason
        if training and len(indices) >= min_size and reason is None:
            plan.append((indices, True))
        else:
            plan.extend(([index], False) for index in indices)
    return plan


#: Hyper-parameters an ensemble's members share (the run settings: batch schedule, loss convention, decay horizon;
#: and the inverse's update); every other one is a per-member value (:meth:`EnsembleTrainer.refresh`).
_SHARED_HYPERPARAMETERS = RUN_SETTINGS + ("inverse_update",)


def _group_key(task) -> str | None:
    """Tasks with equal keys train as one ensemble; ``None`` for tasks that are not training.

    They differ only in their seed, their per-member hyper-parameter values and, for a registered method, in
    being a rule or its randomized twin (:func:`~tpdynamics.ensemble.ensemble_class`: ``tp-ai`` and ``rtp-ai``).
    """
    from ..runs.codec import canonical_json

    config = task.config
    if task.kind != "train" or not isinstance(config, dict) or "seed" not in config:
        return None
    key = {k: v for k, v in config.items() if k not in ("seed", "hyperparameters")}
    if isinstance(config.get("hyperparameters"), dict):
        key["hyperparameters"] = {k: v for k, v in config["hyperparameters"].items() if k in _SHARED_HYPERPARAMETERS}
    if "rule" not in config and config.get("method") in LEARNING_RULES:
        key["method"] = ensemble_class(LEARNING_RULES.get(config["method"])).name
    return canonical_json(key)


def run_training_ensemble(configs: Sequence[dict], *, device=None) -> list[dict]:
    """The runner's ``run_training_task`` for several task configurations as one ensemble.

    They may differ in the seed, the per-member hyper-parameter values and in being a method or its randomized
    twin (the tasks :func:`_group_key` groups); anything else raises ``ValueError``.
    """
    from ..training.runner import _PROBLEM_FIELDS, TrainingConfig, _problem

    def rule_class(c):
        return resolve_function(c["rule"]) if "rule" in c else LEARNING_RULES.get(c["method"])

    first = configs[0]
    classes = [rule_class(c) for c in configs]
    problem_settings = {k: first["problem"][k] for k in _PROBLEM_FIELDS}
    config = TrainingConfig(methods=(classes[0],), dtype=getattr(torch, first["problem"]["dtype"]),
                            **problem_settings, **first["run"])
    settings = {**first["settings"], "layers": tuple(first["settings"]["layers"])}
    hyper = first["hyperparameters"]
    shared = _SHARED_HYPERPARAMETERS
    ignored = ("seed", "hyperparameters", "method")
    for c, cls in zip(configs, classes):
        if {k: c["hyperparameters"].get(k) for k in shared} != {k: hyper.get(k) for k in shared} or \
                {k: v for k, v in c.items() if k not in ignored} != {k: v for k, v in first.items() if k not in ignored} \
                or ensemble_class(cls) is not ensemble_class(classes[0]):
            raise ValueError("the members of an ensemble must share the method (or be it and its randomized twin), "
                             f"the problem settings and the hyper-parameters {shared}; only seeds and the other "
                             f"hyper-parameter values may differ (got {first.get('method')!r} and {c.get('method')!r}).")
    seeds = [c["seed"] for c in configs]
    problems = [_problem(config, settings, seed) for seed in seeds]
    rules = [cls(**{k: v for k, v in c["hyperparameters"].items() if k not in RUN_SETTINGS or k == "loss_convention"},
                 trainable_layers=p.trainable_layers, generator=make_generator(derived_seed(c["seed"], "rule")))
             for c, cls, p in zip(configs, classes, problems)]
    from ..training.runner import _EPOCH_BAR

    histories = train_ensemble(rules, problems, hyper, settings, config, seeds, device=device,
                               progress_bar=_EPOCH_BAR.get())
    return [{"run": h.to_dict(), "problem": p.describe()} for h, p in zip(histories, problems)]


def group_records(group, train, threads: int | None) -> list[TaskRecord]:
    """One :class:`~tpdynamics.runs.store.TaskRecord` per task of ``group``, trained as one ensemble by
    ``train(configs) -> results`` (one result per config) with ``threads`` torch threads (``None``: as they
    are); the group's time is shared among its records. An exception fails every member with it, as each
    serial task would have failed."""
    from ..runs import codec

    host, pid = where()
    start = time.perf_counter()
    try:
        with thread_limit(threads) if threads is not None else contextlib.nullcontext():
            results = train([t.config for t in group])
    except Exception as err:  # a bug: every member fails with it, as each serial task would
        import traceback

        text = traceback.format_exc()
        return [TaskRecord(task=t, status="failed", error=f"{type(err).__name__}: {err}", traceback=text,
                           seconds=time.perf_counter() - start, finished=now(), host=host, pid=pid, exception=err)
                for t in group]
    seconds = (time.perf_counter() - start) / len(group)  # the group's time, shared
    return [TaskRecord(task=t, status="done", result=codec.decode(codec.encode(r)), seconds=seconds, finished=now(),
                       host=host, pid=pid) for t, r in zip(group, results)]


class EnsembleExecutor(SerialExecutor):
    """Run the runner's training tasks that differ only in their seed as one ensemble (module docstring).

    Parameters
    ----------
    device : str or torch.device, optional
        Where the ensembles run (default ``cpu``).
    min_size : int
        Groups smaller than this run serially. Default 1: a lone seed trains as a one-member ensemble, so
        that a run resumed with some of a method's seeds already stored gives the bits of the uninterrupted
        run (an ensemble member's numbers do not depend on the other members; the serial path's differ from
        them in the last digits).

    Attributes
    ----------
    fallbacks : dict
        Method name -> why its tasks ran serially (:func:`ensemble_support`), for the groups that did.
    """

    name = "ensemble"

    def __init__(self, jobs: int | None = 1, threads: int | None = None, *, device=None, min_size: int = 1):
        super().__init__(jobs, threads)
        self.device = resolve_device(device)
        self.min_size = min_size
        self.fallbacks: dict[str, str] = {}

    def run(self, tasks, on_done):
        for indices, ensembled in _plan(tasks, self.min_size, self.fallbacks):
            if not ensembled:
                on_done(indices[0], execute(tasks[indices[0]], self.threads))
                continue
            for index, record in zip(indices, self._run_group([tasks[i] for i in indices])):
                on_done(index, record)

    def _run_group(self, group) -> list[TaskRecord]:
        return group_records(group, lambda configs: run_training_ensemble(configs, device=self.device), self.threads)


def run_training_group(config: dict) -> list[dict]:
    """Task function (any process): ``config["tasks"]``, runner task configurations that differ only in the seed,
    as one ensemble (:func:`run_training_ensemble`); one result per task, in order."""
    return run_training_ensemble(config["tasks"])


class EnsembleProcessExecutor(ProcessExecutor):
    """:class:`~tpdynamics.runs.ProcessExecutor` whose worker tasks are ensembles (module docstring).

    The tasks are grouped as by :class:`EnsembleExecutor`; a group is split into ``k`` ensembles of
    consecutive seeds, ``k`` the fewest that give every worker one (``ceil(jobs / groups)``), at least
    ``min_size`` members each (a group smaller than that stays one ensemble: a lone seed is a one-member
    ensemble, as in :class:`EnsembleExecutor`, so its numbers do not depend on ``jobs``). Each ensemble is one
    task of the pool (:func:`run_training_group`); its result is handed back as one record per (method, seed)
    task, as the serial runs would have made (the same store keys). A failing ensemble fails each of its tasks
    with its error. Tasks that are not ensembled go to the pool one by one, as before.

    Parameters
    ----------
    jobs, threads
        As for :class:`~tpdynamics.runs.ProcessExecutor` (one thread per worker by default).
    min_size : int
        The fewest members of each part of a split group.

    Attributes
    ----------
    fallbacks : dict
        Method name -> why its tasks were not ensembled (:func:`ensemble_support`).
    parts : list of list of int
        The task indices of each worker task of the last :meth:`run` (for inspection and the tests).
    ensembled : list of bool
        Whether each of :attr:`parts` is an ensemble (else one task that is not ensembled).
    """

    name = "ensemble-processes"
    #: The task function a worker trains one ensemble with (its config: ``{"tasks": [...]}``) and that task's kind.
    group_function = "tpdynamics.ensemble.training:run_training_group"
    group_kind = "train-ensemble"

    def __init__(self, jobs: int | None = None, threads: int | None = 1, *, min_size: int = 2):
        super().__init__(jobs, threads)
        self.min_size = min_size
        self.fallbacks: dict[str, str] = {}
        self.parts: list[list[int]] = []
        self.ensembled: list[bool] = []

    def split(self, tasks) -> list[list[int]]:
        """The task indices of each worker task: ensembles (split to keep ``jobs`` workers busy) and single tasks
        (:attr:`ensembled` says which)."""
        plan = self._plan(tasks)
        groups = sum(ensembled for _, ensembled in plan)
        parts, self.ensembled = [], []
        for indices, ensembled in plan:
            if not ensembled:
                parts.append(indices)
                self.ensembled.append(False)
                continue
            k = max(1, min(math.ceil(self.jobs / groups), len(indices) // self.min_size))
            n = len(indices)
            parts.extend(indices[(j * n) // k:((j + 1) * n) // k] for j in range(k))
            self.ensembled.extend([True] * k)
        return parts

    def _plan(self, tasks) -> list[tuple[list[int], bool]]:
        """The groups of ``tasks`` and whether each trains as one ensemble (:func:`_plan`; a lone seed does)."""
        return _plan(tasks, 1, self.fallbacks)

    def run(self, tasks, on_done):
        tasks = list(tasks)
        self.parts = parts = self.split(tasks)
        ensembled = list(self.ensembled)
        work = [Task(function=self.group_function, config={"tasks": [tasks[i].config for i in part]},
                     kind=self.group_kind,
                     label=tasks[part[0]].label + (f" ... ({len(part)} seeds)" if len(part) > 1 else " (ensemble)"))
                if together else tasks[part[0]] for part, together in zip(parts, ensembled)]

        def unpack(k, record):
            part = parts[k]
            if not ensembled[k]:
                on_done(part[0], record)
                return
            seconds = record.seconds / len(part)  # the ensemble's time, shared
            for position, index in enumerate(part):
                if record.status == TaskStatus.DONE:
                    on_done(index, TaskRecord(task=tasks[index], status=TaskStatus.DONE, result=record.result[position],
                                              seconds=seconds, finished=record.finished, host=record.host,
                                              pid=record.pid))
                else:
                    on_done(index, TaskRecord(task=tasks[index], status=TaskStatus.FAILED, error=record.error,
                                              traceback=record.traceback, seconds=seconds, finished=record.finished,
                                              host=record.host, pid=record.pid))

        super().run(work, unpack)
