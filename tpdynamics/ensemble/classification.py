"""The classification runner's loop for S seeds as one ensemble, for the rules and the continuous networks; its executor.

:func:`run_classification_ensemble` is :func:`tpdynamics.training.classification.run_classification_task`
for S task configurations of one method that differ only in the seed (a rule's members may also be of its
randomized twin, :func:`~tpdynamics.ensemble.ensemble_class`, and differ in per-member rates): each member has
its own data split, initialisation, shuffling and rates, and every mini-batch step advances all members at once
—

* a discrete rule of Appendix A (``bp``, ``fa``, ``tp-ai``, ``dtp-ai``, ``mtp``, the randomized ones, ...) by one
  batched step of :class:`~tpdynamics.ensemble.EnsembleTrainer`; every member goes where its serial run goes
  (to round-off, 1e-12 in float64: tested), the stop decisions of an epoch (non-finite output, a numerical fault,
  a diverged loss) are read at its end, in the serial order, and a member that stops is masked out of the record;
* a continuous network (``two-phase``, ``single-phase``, ``multiplexed``) by solving all members' phase
  equilibria as one batch (:class:`~tpdynamics.ensemble.continuous.EnsembleContinuousLearner`; the serial
  numbers to the equilibrium tolerance).

Either way a member whose loss passes the limit stops with ``diverged``, one with a numerical failure with
``numerical_error``, one that early-stops stops, and the others go on. Evaluation after every epoch uses the
member networks themselves (views of the stacked weights) and each member's own ``predict``, as the serial task.

:class:`ClassificationEnsembleExecutor` is a :class:`tpdynamics.runs.SerialExecutor` that runs the
``classify`` tasks of one method (or twins) that differ only in their seed as one ensemble and every other task
as before; :class:`ClassificationEnsembleProcessExecutor` sends such ensembles to worker processes (``jobs > 1``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch

from ..continuous.models import CONTINUOUS_MODELS
from ..data import load_task, one_hot
from ..network import make_generator
from ..runs.executors import SerialExecutor, execute, group_by_key
from ..runs.store import TaskRecord
from ..statistics import diverged
from ..training.classification import _learner, classification_network
from ..training.classification_results import METRICS
from ..training.continuous_methods import CONTINUOUS_METHODS, ContinuousLearner
from ..training.data import derived_seed
from ..training.losses import get_output_loss
from ..training.rules import LEARNING_RULES
from ..training.runner import rate_schedule
from ..training.status import TrainingStatus
from .continuous import EnsembleContinuousLearner, ensemble_continuous_support
from .network import EnsembleNetwork, resolve_device
from .step import EnsembleTrainer, batch_losses, ensemble_class, ensemble_support
from .training import EnsembleProcessExecutor, fault_message, fault_table, group_records

__all__ = ["ClassificationEnsembleExecutor", "ClassificationEnsembleProcessExecutor", "run_classification_ensemble",
           "run_classification_group", "ensembled_continuous_methods", "ensembled_methods"]

_RULE_KEYS = ("eta", "eta_hat", "eta_backward", "lambda_", "noise_std", "epsilon", "mu")
#: What the members of a rule's ensemble may differ in besides the seed: the method (a rule and its randomized
#: twin) and the per-member rates of EnsembleTrainer; the run settings (epochs, batch size, ...) are shared.
_PER_MEMBER = {"seed", "method", "hyperparameters"}
_RUN_SETTINGS = ("epochs", "batch_size")


def ensembled_continuous_methods() -> list[str]:
    """The continuous classification methods whose seeds run as one ensemble."""
    return [m for m, model in CONTINUOUS_METHODS.items() if ensemble_continuous_support(CONTINUOUS_MODELS.get(model))
            is None]


def ensembled_methods() -> list[str]:
    """Every method whose classification seeds run as one ensemble.

    Returns
    -------
    list of str
        The registered rules :func:`~tpdynamics.ensemble.ensemble_support` accepts (a classification run offers
        those without exact inverses), then the continuous networks with a batched dynamics
        (:func:`ensembled_continuous_methods`).
    """
    rules = [m for m in LEARNING_RULES.names() if ensemble_support(LEARNING_RULES.get(m)) is None]
    return rules + ensembled_continuous_methods()


def _ensemble_name(method: str) -> str:
    """The name members share an ensemble under: a rule's :func:`ensemble_class`, a continuous network itself."""
    return method if method in CONTINUOUS_METHODS else ensemble_class(LEARNING_RULES.get(method)).name


class _Members:
    """The per-member side of the classification loop: data, one-hot targets, history, status, early stopping.

    The same bookkeeping as ``run_classification_task`` for each member ``s``; ``predict(s, x)`` is its model's
    output on a split.
    """

    def __init__(self, configs: Sequence[dict], device):
        first = configs[0]
        self.first, self.device = first, device
        self.seeds = [c["seed"] for c in configs]
        self.size = S = len(configs)
        self.dtype = dtype = getattr(torch, first["dtype"])
        self.data = [load_task(first["task"], seed=s, dtype=dtype) for s in self.seeds]
        self.n = self.data[0].train_inputs.shape[0]
        if any(d.train_inputs.shape[0] != self.n for d in self.data):
            raise ValueError("the members' training splits differ in size; train these seeds serially (ensemble=False).")
        self.loss = get_output_loss(first["loss"])
        K = self.data[0].n_classes
        self.targets = [{s: one_hot(d.split(s)[1], K, dtype) for s in ("train", "validation", "test")}
                        for d in self.data]
        self.histories = [{m: [] for m in METRICS} for _ in range(S)]
        self.runs = [{"seed": s, "status": TrainingStatus.COMPLETED.value, "message": "", "steps": 0, "best_epoch": 0}
                     for s in self.seeds]
        self.shuffles = [make_generator(derived_seed(s, "shuffle")) for s in self.seeds]
        self.train_x = torch.stack([d.train_inputs for d in self.data]).to(device)
        self.train_t = torch.stack([t["train"] for t in self.targets]).to(device)
        self.rows = torch.arange(S, device=device).view(-1, 1)
        self.best, self.waited, self.active = [None] * S, [0] * S, [True] * S

    def evaluate(self, s: int, predict: Callable) -> bool:
        """Append member ``s``'s losses and accuracies on every split; whether they are finite and not diverged."""
        history = self.histories[s]
        for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
            x, labels = self.data[s].split(split)
            out = predict(s, x.to(self.device)).cpu()
            history[f"{prefix}_loss"].append(self.loss.mean(out, self.targets[s][split]))
            history[f"{prefix}_accuracy"].append(float((out.argmax(-1) == labels).double().mean()))
        return all(math.isfinite(history[f"{p}_loss"][-1]) and not diverged(history[f"{p}_loss"][-1])
                   for p in ("train", "val", "test"))

    def start(self, predict: Callable) -> None:
        """Epoch 0: every member evaluated before training."""
        for s in range(self.size):
            self.evaluate(s, predict)
            self.best[s] = self.histories[s]["val_accuracy"][0]

    def orders(self) -> torch.Tensor:
        """This epoch's shuffle of every member, ``(S, n)``, from its own generator."""
        return torch.stack([torch.randperm(self.n, generator=g) for g in self.shuffles]).to(self.device)

    def batch(self, orders: torch.Tensor, b: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mini-batch ``b`` of every member: inputs ``(S, B, n_0)`` and one-hot targets ``(S, B, K)``."""
        index = orders[:, b * size:(b + 1) * size]
        return self.train_x[self.rows, index], self.train_t[self.rows, index]

    def end_epoch(self, epoch: int, stops: dict, predict: Callable) -> bool:
        """The serial task's end of an epoch for every active member (``stops``: member -> (status, message) of a
        stop within the epoch); whether any member goes on."""
        for s in range(self.size):
            if not self.active[s]:
                continue
            stop, history, run = stops.get(s), self.histories[s], self.runs[s]
            if stop is None and not self.evaluate(s, predict):
                for values in history.values():
                    values.pop()
                stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing loss after epoch {epoch}")
            if stop is not None:
                run["status"], run["message"] = stop[0].value, stop[1] + f"; history kept up to epoch {epoch - 1}"
                self.active[s] = False
                continue
            if history["val_accuracy"][-1] > self.best[s]:
                self.best[s], self.waited[s], run["best_epoch"] = history["val_accuracy"][-1], 0, epoch
            else:
                self.waited[s] += 1
            if self.first["patience"] is not None and self.waited[s] >= self.first["patience"]:
                run["message"] = f"early stop after epoch {epoch} (best validation accuracy at epoch {run['best_epoch']})"
                self.active[s] = False
        return any(self.active)

    def results(self, seconds: float, extra: dict | None = None) -> list[dict]:
        """What each member's serial task returns (``seconds``: the ensemble's time per member)."""
        out = []
        for s in range(self.size):
            run, history = self.runs[s], self.histories[s]
            if self.first["patience"] is None:
                run["best_epoch"] = len(history["test_accuracy"]) - 1
            if not run["message"]:
                run["message"] = f"{len(history['test_accuracy']) - 1} epochs, {run['steps']} steps"
            run.update(history)
            run["epochs_completed"] = len(history["test_accuracy"]) - 1
            run["seconds"] = seconds
            for key, values in (extra or {}).items():
                run[key] = values[s]
            out.append({"run": run, "data": self.data[s].describe()})
        return out


def _check_members(configs: list[dict]) -> None:
    first = configs[0]
    shared = {k: v for k, v in first.items() if k not in _PER_MEMBER}
    settings = {k: first["hyperparameters"].get(k) for k in _RUN_SETTINGS}
    if (len({_ensemble_name(c["method"]) for c in configs}) > 1
            or any({k: v for k, v in c.items() if k not in _PER_MEMBER} != shared for c in configs)
            or any({k: c["hyperparameters"].get(k) for k in _RUN_SETTINGS} != settings for c in configs)):
        raise ValueError("the members of a classification ensemble must share the method (or be a rule and its "
                         "randomized twin), the task and the run settings (epochs, batch size, loss, patience); "
                         "the seed and the rates may differ.")
    if first["method"] in CONTINUOUS_METHODS and any(c["hyperparameters"] != first["hyperparameters"]
                                                     for c in configs):
        raise ValueError("the members of a continuous network's classification ensemble must share the "
                         "hyper-parameters; only the seed may differ.")


def run_classification_ensemble(configs: Sequence[dict], *, device=None) -> list[dict]:
    """``run_classification_task`` for S task configurations of one method (module docstring), as one ensemble.

    Parameters
    ----------
    configs : sequence of dict
        Task configurations of :func:`~tpdynamics.training.classification.classification_tasks`: one method of
        :func:`ensembled_methods` (or a rule and its randomized twin), one task and run settings; the seeds (and
        for a rule its rates) may differ.
    device : str or torch.device, optional
        Where the stacked computation runs (default ``cpu``).

    Returns
    -------
    list of dict
        What each member's serial task returns, in the order of ``configs``.
    """
    start = time.perf_counter()
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty; pass one task configuration per member.")
    method = configs[0]["method"]
    if method not in ensembled_methods():
        raise ValueError(f"method={method!r} cannot train as a classification ensemble; use one of "
                         f"{', '.join(ensembled_methods())}, or train it serially (ensemble=False).")
    _check_members(configs)
    device = resolve_device(device)
    members = _Members(configs, device)
    if method in CONTINUOUS_METHODS:
        extra = _train_continuous(members, configs, device)
    else:
        extra = _train_rules(members, configs, device)
    return members.results((time.perf_counter() - start) / members.size, extra)


def _networks(members: _Members, configs: list[dict]) -> list:
    first = members.first
    return [classification_network(first["layers"], c["method"], c["seed"], nonlinearity=first["nonlinearity"],
                                   dtype=members.dtype) for c in configs]


def _train_rules(members: _Members, configs: list[dict], device) -> dict:
    """The discrete rules' epochs: one batched step per mini-batch, the stop decisions read at the epoch's end."""
    networks = _networks(members, configs)
    rules = [_learner(c["method"], c["hyperparameters"], c["seed"]) for c in configs]
    trainer = EnsembleTrainer(rules, EnsembleNetwork(networks, device=device))
    trainer.backward_losses = False  # the task does not record them
    S, first, loss = members.size, members.first, members.loss

    def predict(s, x):
        return rules[s].predict(networks[s], x)

    members.start(predict)
    hyper = first["hyperparameters"]
    epochs, batch = hyper["epochs"], hyper["batch_size"]
    count = members.n // batch
    base_eta = [r.eta for r in rules]
    base_back = [getattr(r, "eta_backward", None) for r in rules]
    mse = first["loss"] == "mse"  # its rule label is the one-hot target itself (OutputLoss.rule_label)
    for epoch in range(1, epochs + 1):
        for s, rule in enumerate(rules):
            rule.eta = rate_schedule(base_eta[s], epoch, epochs, first["final_rate_fraction"])
            if base_back[s] is not None:
                rule.eta_backward = rate_schedule(base_back[s], epoch, epochs, first["final_rate_fraction"])
        trainer.refresh()
        trainer.predraw_noise(count, batch)
        orders = members.orders()
        residuals, faults = [], {}
        for b in range(count):
            x, t = members.batch(orders, b, batch)
            # the cross-entropy's label needs the output the step will see (batch-normalised for mtp)
            label = t if mse else loss.rule_label(trainer.training_output(x), t)
            record = trainer.step(x, label)
            residuals.append(record.residual)
            if record.fault is not None:
                faults[b] = record.fault
        stacked = torch.stack(residuals)  # (count, S, B, K)
        # the serial task's checks in its order: a non-finite output (h_L - y is finite exactly where h_L is: y is
        # the finite one-hot target or, for the cross-entropy, h_L - dL/dh_L, non-finite with h_L) stops before the
        # step; a numerical fault in the step; then a non-finite or overflowing loss
        finite = torch.isfinite(stacked).flatten(2).all(2).T.tolist()
        losses = batch_losses(stacked).T.tolist()
        fault = fault_table(faults, count, S)
        stops = {}
        for s in range(S):
            if not members.active[s]:
                continue
            run = members.runs[s]
            for b in range(count):
                if not finite[s][b]:
                    stops[s] = (TrainingStatus.DIVERGED, f"non-finite network output at epoch {epoch}, step {b + 1}")
                    break
                if fault[s][b]:
                    stops[s] = (TrainingStatus.NUMERICAL_ERROR, fault_message(fault[s][b], epoch, b + 1))
                    break
                run["steps"] += 1
                if not math.isfinite(losses[s][b]) or diverged(losses[s][b]):
                    stops[s] = (TrainingStatus.DIVERGED,
                                f"non-finite or overflowing training loss at epoch {epoch}, step {b + 1}")
                    break
        trainer.write_back()  # mtp's running statistics into the rule objects, which predict with them
        if not members.end_epoch(epoch, stops, predict):
            break
    return {}


def _train_continuous(members: _Members, configs: list[dict], device) -> dict:
    """The continuous networks' epochs: every step solves all active members' equilibria as one batch."""
    first, loss, S = members.first, members.loss, members.size
    method = first["method"]
    hyper = first["hyperparameters"]
    networks = _networks(members, configs)
    arguments = {k: v for k, v in hyper.items() if k in _RULE_KEYS}
    learners = [ContinuousLearner(method, **arguments) for _ in configs]
    trainer = EnsembleContinuousLearner(learners, EnsembleNetwork(networks, device=device))
    equilibria = [0] * S
    phases = len(CONTINUOUS_MODELS.get(CONTINUOUS_METHODS[method]).phases)

    def predict(s, x):
        return learners[s].predict(networks[s], x)

    members.start(predict)
    epochs, batch = hyper["epochs"], hyper["batch_size"]
    base_eta, base_back = learners[0].eta, learners[0].eta_backward
    for epoch in range(1, epochs + 1):
        for learner in learners:
            learner.eta = rate_schedule(base_eta, epoch, epochs, first["final_rate_fraction"])
            learner.eta_backward = rate_schedule(base_back, epoch, epochs, first["final_rate_fraction"])
        orders = members.orders()
        stops = {}
        running = [s for s in range(S) if members.active[s]]
        for b in range(members.n // batch):
            if not running:
                break
            x, t = members.batch(orders, b, batch)
            with torch.no_grad():
                label = loss.rule_label(trainer.predict(x), t)
            mask = torch.tensor([s in running for s in range(S)], device=device)
            record = trainer.step(x, label, active=mask)
            step_losses = record.loss.tolist()
            for s in list(running):
                if s in record.failures:
                    stops[s] = (TrainingStatus.NUMERICAL_ERROR,
                                f"EquilibriumNotReachedError at epoch {epoch}, step {b + 1}: {record.failures[s]}")
                    running.remove(s)
                    continue
                members.runs[s]["steps"] += 1
                if not math.isfinite(step_losses[s]) or diverged(step_losses[s]):
                    stops[s] = (TrainingStatus.DIVERGED,
                                f"non-finite or overflowing training loss at epoch {epoch}, step {b + 1}")
                    running.remove(s)
                    continue
                equilibria[s] += phases
        if not members.end_epoch(epoch, stops, predict):
            break
    return {"equilibria": equilibria}


def _group_key(task) -> str | None:
    from ..runs.codec import canonical_json

    if task.kind != "classify" or not isinstance(task.config, dict) or "seed" not in task.config:
        return None
    method = task.config.get("method")
    if method not in ensembled_methods():
        return None
    return canonical_json({**{k: v for k, v in task.config.items() if k != "seed"}, "method": _ensemble_name(method)})


def _classification_plan(tasks, min_size: int) -> list[tuple[list[int], bool]]:
    """Indices of ``tasks`` in groups (:func:`_group_key`), each with whether it trains as one ensemble: a rule's
    groups of any size, a continuous network's of at least ``min_size`` seeds; every other task alone."""
    plan = []
    for indices in group_by_key(tasks, _group_key):
        first = tasks[indices[0]]
        lone = len(indices) < min_size and first.config.get("method") in CONTINUOUS_METHODS
        if _group_key(first) is None or lone:
            plan.extend(([index], False) for index in indices)
        else:
            plan.append((indices, True))
    return plan


def run_classification_group(config: dict) -> list[dict]:
    """Task function (any process) of :class:`ClassificationEnsembleProcessExecutor`'s worker tasks.

    Parameters
    ----------
    config : dict
        ``{"tasks": [...]}``: classification task configurations that may share an ensemble.

    Returns
    -------
    list of dict
        :func:`run_classification_ensemble` of them: one result per task, in order.
    """
    return run_classification_ensemble(config["tasks"])


class ClassificationEnsembleExecutor(SerialExecutor):
    """Run the ``classify`` tasks of one method (or a rule and its randomized twin with the same hyper-parameters)
    that differ only in the seed as one ensemble (:func:`run_classification_ensemble`), every other task as before.

    Parameters
    ----------
    device : str or torch.device, optional
        Where the ensembles run (default ``cpu``).
    min_size : int
        A continuous network's groups smaller than this run serially. A rule's groups of any size run as ensembles
        (a lone seed as a one-member one): the batched step gives a member the same bits whatever the other members
        are, so a seed's numbers do not depend on the seeds it ran with.
    """

    name = "classification-ensemble"

    def __init__(self, jobs: int | None = 1, threads: int | None = None, *, device=None, min_size: int = 2):
        super().__init__(jobs, threads)
        self.device = resolve_device(device)
        self.min_size = min_size

    def run(self, tasks, on_done):
        for indices, ensembled in _classification_plan(tasks, self.min_size):
            if not ensembled:
                on_done(indices[0], execute(tasks[indices[0]], self.threads))
                continue
            for index, record in zip(indices, self._run_group([tasks[i] for i in indices])):
                on_done(index, record)

    def _run_group(self, group) -> list[TaskRecord]:
        return group_records(group, lambda configs: run_classification_ensemble(configs, device=self.device),
                             self.threads)


class ClassificationEnsembleProcessExecutor(EnsembleProcessExecutor):
    """:class:`~tpdynamics.ensemble.EnsembleProcessExecutor` for ``classify`` tasks: each worker task is one
    method's seeds (or a part of them, to keep the workers busy) as one ensemble (:func:`run_classification_group`),
    grouped as by :class:`ClassificationEnsembleExecutor`; the classification runner's executor for ``jobs > 1``."""

    name = "classification-ensemble-processes"
    group_function = "tpdynamics.ensemble.classification:run_classification_group"
    group_kind = "classify-ensemble"

    def _plan(self, tasks) -> list[tuple[list[int], bool]]:
        return _classification_plan(tasks, 2)
