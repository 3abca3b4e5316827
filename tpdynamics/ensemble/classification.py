"""The classification runner's loop for the continuous networks, S seeds as one ensemble, and its executor.

:func:`run_classification_ensemble` is :func:`tpdynamics.training.classification.run_classification_task`
for S task configurations of one continuous method (``two-phase``, ``single-phase``, ``multiplexed``) that differ only in
the seed: each member has its own data split, initialisation, shuffling and rates, and every mini-batch
step solves all members' phase equilibria as one batch
(:class:`~tpdynamics.ensemble.continuous.EnsembleContinuousLearner`). It returns what the S serial tasks
return (to the equilibrium tolerance): a member whose equilibrium does not settle stops with
``numerical_error``, one whose loss passes the limit with ``diverged``, one that early-stops stops, and the
others go on. Evaluation after every epoch uses the member networks themselves (views of the stacked weights).

:class:`ClassificationEnsembleExecutor` is a :class:`tpdynamics.runs.SerialExecutor` that runs the
``classify`` tasks of an ensembled continuous method that differ only in their seed as one ensemble and
every other task as before (the discrete rules of a classification run still train one seed at a time).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from ..continuous.models import CONTINUOUS_MODELS
from ..data import load_task, one_hot
from ..network import make_generator
from ..runs.executors import SerialExecutor, execute, group_by_key
from ..runs.store import TaskRecord
from ..statistics import diverged
from ..training.classification import classification_network
from ..training.classification_results import METRICS
from ..training.continuous_methods import CONTINUOUS_METHODS, ContinuousLearner
from ..training.data import derived_seed
from ..training.losses import get_output_loss
from ..training.runner import rate_schedule
from ..training.status import TrainingStatus
from .continuous import EnsembleContinuousLearner, ensemble_continuous_support
from .network import EnsembleNetwork, resolve_device
from .training import group_records

__all__ = ["ClassificationEnsembleExecutor", "run_classification_ensemble", "ensembled_continuous_methods"]

_RULE_KEYS = ("eta", "eta_hat", "eta_backward", "lambda_", "noise_std", "epsilon", "mu")


def ensembled_continuous_methods() -> list[str]:
    """The continuous classification methods whose seeds run as one ensemble."""
    return [m for m, model in CONTINUOUS_METHODS.items() if ensemble_continuous_support(CONTINUOUS_MODELS.get(model))
            is None]


def run_classification_ensemble(configs: Sequence[dict], *, device=None) -> list[dict]:
    """``run_classification_task`` for S task configurations that differ only in the seed, as one ensemble."""
    start = time.perf_counter()
    configs = list(configs)
    first = configs[0]
    method = first["method"]
    if method not in ensembled_continuous_methods():
        raise ValueError(f"method={method!r} is not an ensembled continuous method; use one of "
                         f"{', '.join(ensembled_continuous_methods())}.")
    for c in configs[1:]:
        if {k: v for k, v in c.items() if k != "seed"} != {k: v for k, v in first.items() if k != "seed"}:
            raise ValueError("the members of a classification ensemble must share the method, the task, the "
                             "hyper-parameters and the run settings; only the seed may differ.")
    device = resolve_device(device)
    dtype = getattr(torch, first["dtype"])
    hyper = first["hyperparameters"]
    seeds = [c["seed"] for c in configs]
    S = len(seeds)
    data = [load_task(first["task"], seed=s, dtype=dtype) for s in seeds]
    n = data[0].train_inputs.shape[0]
    if any(d.train_inputs.shape[0] != n for d in data):
        raise ValueError("the members' training splits differ in size; train these seeds serially (ensemble=False).")
    loss = get_output_loss(first["loss"])
    networks = [classification_network(first["layers"], method, s, nonlinearity=first["nonlinearity"], dtype=dtype)
                for s in seeds]
    arguments = {k: v for k, v in hyper.items() if k in _RULE_KEYS}
    learners = [ContinuousLearner(method, **arguments) for _ in seeds]
    ensemble = EnsembleNetwork(networks, device=device)
    trainer = EnsembleContinuousLearner(learners, ensemble)
    K = data[0].n_classes
    targets = [{s: one_hot(d.split(s)[1], K, dtype) for s in ("train", "validation", "test")} for d in data]
    histories = [{m: [] for m in METRICS} for _ in seeds]
    runs = [{"seed": s, "status": TrainingStatus.COMPLETED.value, "message": "", "steps": 0, "best_epoch": 0}
            for s in seeds]
    equilibria = [0] * S
    phases = len(CONTINUOUS_MODELS.get(CONTINUOUS_METHODS[method]).phases)

    def evaluate(s) -> bool:
        history = histories[s]
        for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
            x, labels = data[s].split(split)
            out = learners[s].predict(networks[s], x.to(device)).cpu()
            history[f"{prefix}_loss"].append(loss.mean(out, targets[s][split]))
            history[f"{prefix}_accuracy"].append(float((out.argmax(-1) == labels).double().mean()))
        return all(math.isfinite(history[f"{p}_loss"][-1]) and not diverged(history[f"{p}_loss"][-1])
                   for p in ("train", "val", "test"))

    for s in range(S):
        evaluate(s)
    shuffles = [make_generator(derived_seed(s, "shuffle")) for s in seeds]
    epochs, batch = hyper["epochs"], hyper["batch_size"]
    base_eta, base_back = learners[0].eta, learners[0].eta_backward
    best = [h["val_accuracy"][0] for h in histories]
    waited = [0] * S
    active = [True] * S
    train_x = torch.stack([d.train_inputs for d in data]).to(device)
    train_t = torch.stack([t["train"] for t in targets]).to(device)
    members = torch.arange(S, device=device).view(-1, 1)
    for epoch in range(1, epochs + 1):
        for learner in learners:
            learner.eta = rate_schedule(base_eta, epoch, epochs, first["final_rate_fraction"])
            learner.eta_backward = rate_schedule(base_back, epoch, epochs, first["final_rate_fraction"])
        orders = torch.stack([torch.randperm(n, generator=g) for g in shuffles]).to(device)
        stops = {}
        running = [s for s in range(S) if active[s]]
        for b in range(n // batch):
            if not running:
                break
            index = orders[:, b * batch:(b + 1) * batch]
            x, t = train_x[members, index], train_t[members, index]
            with torch.no_grad():
                label = loss.rule_label(trainer.predict(x), t)
            mask = torch.tensor([s in running for s in range(S)], device=device)
            record = trainer.step(x, label, active=mask)
            losses = record.loss.tolist()
            for s in list(running):
                if s in record.failures:
                    stops[s] = (TrainingStatus.NUMERICAL_ERROR,
                                f"EquilibriumNotReachedError at epoch {epoch}, step {b + 1}: {record.failures[s]}")
                    running.remove(s)
                    continue
                runs[s]["steps"] += 1
                if not math.isfinite(losses[s]) or diverged(losses[s]):
                    stops[s] = (TrainingStatus.DIVERGED,
                                f"non-finite or overflowing training loss at epoch {epoch}, step {b + 1}")
                    running.remove(s)
                    continue
                equilibria[s] += phases
        for s in range(S):
            if not active[s]:
                continue
            stop = stops.get(s)
            history = histories[s]
            if stop is None and not evaluate(s):
                for values in history.values():
                    values.pop()
                stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing loss after epoch {epoch}")
            if stop is not None:
                runs[s]["status"], runs[s]["message"] = stop[0].value, stop[1] + f"; history kept up to epoch {epoch - 1}"
                active[s] = False
                continue
            if history["val_accuracy"][-1] > best[s]:
                best[s], waited[s], runs[s]["best_epoch"] = history["val_accuracy"][-1], 0, epoch
            else:
                waited[s] += 1
            if first["patience"] is not None and waited[s] >= first["patience"]:
                runs[s]["message"] = (f"early stop after epoch {epoch} (best validation accuracy at epoch "
                                      f"{runs[s]['best_epoch']})")
                active[s] = False
        if not any(active):
            break
    seconds = (time.perf_counter() - start) / S
    out = []
    for s in range(S):
        run, history = runs[s], histories[s]
        if first["patience"] is None:
            run["best_epoch"] = len(history["test_accuracy"]) - 1
        if not run["message"]:
            run["message"] = f"{len(history['test_accuracy']) - 1} epochs, {run['steps']} steps"
        run.update(history)
        run["epochs_completed"] = len(history["test_accuracy"]) - 1
        run["seconds"] = seconds
        run["equilibria"] = equilibria[s]
        out.append({"run": run, "data": data[s].describe()})
    return out


def _group_key(task) -> str | None:
    from ..runs.codec import canonical_json

    if task.kind != "classify" or not isinstance(task.config, dict) or "seed" not in task.config:
        return None
    if task.config.get("method") not in ensembled_continuous_methods():
        return None
    return canonical_json({k: v for k, v in task.config.items() if k != "seed"})


class ClassificationEnsembleExecutor(SerialExecutor):
    """Run the ``classify`` tasks of an ensembled continuous method that differ only in the seed as one ensemble.

    Parameters
    ----------
    device : str or torch.device, optional
        Where the ensembles run (default ``cpu``).
    min_size : int
        Groups smaller than this run serially.
    """

    name = "classification-ensemble"

    def __init__(self, jobs: int | None = 1, threads: int | None = None, *, device=None, min_size: int = 2):
        super().__init__(jobs, threads)
        self.device = resolve_device(device)
        self.min_size = min_size

    def run(self, tasks, on_done):
        for indices in group_by_key(tasks, _group_key):
            if len(indices) < self.min_size:
                for index in indices:
                    on_done(index, execute(tasks[index], self.threads))
                continue
            for index, record in zip(indices, self._run_group([tasks[i] for i in indices])):
                on_done(index, record)

    def _run_group(self, group) -> list[TaskRecord]:
        return group_records(group, lambda configs: run_classification_ensemble(configs, device=self.device),
                             self.threads)
