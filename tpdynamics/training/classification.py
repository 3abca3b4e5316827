"""Classification on real data (:mod:`tpdynamics.data`) with the same learning rules and layer objects.

:func:`run_classification` trains one or several methods — any rule of
:data:`~tpdynamics.training.LEARNING_RULES` that fits the architecture, and the continuous networks
of :data:`~tpdynamics.training.continuous_methods.CONTINUOUS_METHODS` — on identical splits and
identical forward-weight initialisations per seed, with the MSE on one-hot targets (the thesis's
loss) or the softmax cross-entropy (:mod:`tpdynamics.training.losses`: the output target is
``hat h_L = h_L - eta_hat dL/dh_L``). Per epoch (index 0: before training) it records the
training, validation and test loss and accuracy; over seeds it reports the mean accuracy with its 95 %
Student-t interval and the geometric mean loss with its log-t interval
(:mod:`tpdynamics.statistics`). Optional early stopping on the validation accuracy (``patience``):
the run stops after ``patience`` epochs without a better validation accuracy, and the reported final
figures are those of the best validation epoch (``best_epoch``).

Architecture: ``(n_0, *hidden, K)``, e.g. 64-256-256-10 (digits) and 40-256-256-10 (MNIST-1D); hidden
``s_i`` leaky ReLU (slope 0.35, invertible, as the learned inverses ``g = Q s^{-1}`` need), linear
output (the logits). Forward weights: Gaussian with ``1/sqrt(n_{i-1})`` scale (fan-in), drawn once per
seed and copied into every method's network, whatever its feedback form (learned ``Q`` starts at
``W^+`` (pinv), original ``Q`` at ``W^+``, fixed random feedback from its own generator). The
exact-inverse rules (``tp-ei``, ``rtp-ei``, ``rmtp-ei``) need ``n_1 = ... = n_L`` and are refused on
any other architecture (:meth:`LearningRule.check_layer_sizes`); ``mtp``/``rmtp`` switch to learned
feedback there.

Every (method, seed) run is a task of :mod:`tpdynamics.runs` (kind ``classify``), kept in a store and
reused as :func:`~tpdynamics.training.run_experiment` does.
"""
from __future__ import annotations

import importlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..data import load_task, one_hot
from ..errors import TPDynamicsError
from ..layers import Layer
from ..network import LayeredNetwork, make_generator
from ..runs import ResultStore, RunInterrupted, Task, run_tasks
from ..statistics import diverged
from ..validation import check_int, check_positive
from .classification_presets import classification_hyperparameters
from .classification_results import ClassificationResult, METRICS
from .continuous_methods import CONTINUOUS_METHODS, ContinuousLearner
from .data import derived_seed
from .losses import OUTPUT_LOSSES, get_output_loss
from .rules import LEARNING_RULES
from .runner import _student_feedback, rate_schedule
from .status import TrainingStatus

__all__ = ["ClassificationConfig", "run_classification", "classification_tasks", "run_classification_task",
           "classification_network", "method_names"]

_RULE_KEYS = ("eta", "eta_hat", "eta_backward", "lambda_", "noise_std", "epsilon", "mu")


@dataclass
class ClassificationConfig:
    """A classification experiment: methods trained side by side over seeds on one task.

    Attributes
    ----------
    methods : sequence of str
        Rule names (:data:`~tpdynamics.training.LEARNING_RULES`) and continuous methods (``two-phase``,
        ``single-phase``, ``multiplexed``).
    task : str
        ``'digits'``, ``'mnist1d'``, ``'idx:PATH'`` (:func:`tpdynamics.data.load_task`).
    loss : {'mse', 'cross-entropy'}
    hidden : sequence of int
        Hidden layer sizes (default 256, 256).
    seeds : int or sequence of int
    epochs, batch_size : int, optional
        Default from the preset of the task and method (:mod:`.classification_presets`).
    eta, eta_hat, eta_backward, lambda_, noise_std, mu : float, optional
        Overrides of the preset (applied to every method that uses them).
    final_rate_fraction : float
        Linear decay of the rates to this fraction over the epochs (the thesis's 1/5).
    patience : int, optional
        Early stopping on the validation accuracy; ``None`` trains every epoch.
    nonlinearity : str
        Hidden ``s_i``.
    """

    methods: Sequence = ("bp",)
    task: str = "digits"
    loss: str = "mse"
    hidden: Sequence = (256, 256)
    seeds: int | Sequence = 1
    epochs: int | None = None
    batch_size: int | None = None
    eta: float | None = None
    eta_hat: float | None = None
    eta_backward: float | None = None
    lambda_: float | None = None
    noise_std: float | None = None
    mu: float | None = None
    final_rate_fraction: float = 0.2
    patience: int | None = None
    nonlinearity: str = "leaky_relu:0.35"
    dtype: torch.dtype = torch.float64

    def seed_list(self) -> list[int]:
        if isinstance(self.seeds, int) and not isinstance(self.seeds, bool):
            return list(range(check_int("seeds", self.seeds, minimum=1)))
        seeds = [check_int("seeds[]", s, minimum=0) for s in self.seeds]
        if not seeds:
            raise ValueError("seeds must be a positive count or a non-empty list of seeds.")
        return seeds

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(methods=list(self.methods), hidden=list(self.hidden), seeds=self.seed_list(),
                   dtype=str(self.dtype).replace("torch.", ""))
        return out


def method_names() -> list[str]:
    """Every method a classification run accepts: the rules, then the continuous networks."""
    return LEARNING_RULES.names() + list(CONTINUOUS_METHODS)


def _check_method(name: str, layers: tuple) -> str:
    if name in CONTINUOUS_METHODS:
        return name
    cls = LEARNING_RULES.get(name)
    try:
        cls.check_layer_sizes(layers)
    except ValueError as err:
        raise ValueError(f"method {cls.name!r} cannot classify with architecture {'-'.join(map(str, layers))}: "
                         f"{err}") from None
    if cls.sherman_morrison:
        raise ValueError(f"method {cls.name!r} (exact inverses, batch size 1) is not offered for classification")
    return cls.name


def _task_family(task: str) -> str:
    return task.partition(":")[0] if not task.endswith(".npz") else "idx"


def classification_tasks(config: ClassificationConfig, *, n_features: int, n_classes: int):
    """Validate ``config``; one :class:`~tpdynamics.runs.Task` per (seed, method), with resolved hyper-parameters."""
    if not isinstance(config, ClassificationConfig):
        raise TypeError(f"config must be a ClassificationConfig, got {type(config).__name__}.")
    OUTPUT_LOSSES.get(config.loss)
    methods = [config.methods] if isinstance(config.methods, str) else list(config.methods)
    if not methods:
        raise ValueError("methods is empty; pass at least one, e.g. methods=('bp', 'dtp-ai').")
    hidden = tuple(check_int(f"hidden[{k}]", h, minimum=1) for k, h in enumerate(config.hidden))
    layers = (n_features, *hidden, n_classes)
    names = [_check_method(m, layers) for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"methods lists a method twice: {names}.")
    check_positive("final_rate_fraction", config.final_rate_fraction)
    if config.patience is not None:
        check_int("patience", config.patience, minimum=1)
    overrides = {k: getattr(config, k) for k in _RULE_KEYS if hasattr(config, k)}
    overrides.update(epochs=config.epochs, batch_size=config.batch_size)
    family = _task_family(config.task)
    hyper = {n: classification_hyperparameters(n, family, config.loss, **overrides) for n in names}
    shared = {"task": config.task, "loss": config.loss, "layers": list(layers), "nonlinearity": config.nonlinearity,
              "final_rate_fraction": config.final_rate_fraction, "patience": config.patience,
              "dtype": str(config.dtype).replace("torch.", "")}
    tasks = [Task(function="tpdynamics.training.classification:run_classification_task",
                  config={"method": n, "seed": s, "hyperparameters": hyper[n], **shared}, kind="classify",
                  label=f"{n} seed {s}")
             for s in config.seed_list() for n in names]
    return names, hyper, layers, tasks


def classification_network(layers, method: str, seed: int, *, nonlinearity="leaky_relu:0.35",
                           dtype=torch.float64) -> LayeredNetwork:
    """The network a method starts from at ``seed``: the same forward weights for every method (module docstring)."""
    reference = LayeredNetwork.build(layers, nonlinearity=nonlinearity, output_nonlinearity="identity", feedback=None,
                                     seed=derived_seed(seed, "weights"), weight_init="orthogonal", dtype=dtype)
    if method in CONTINUOUS_METHODS:
        form = ContinuousLearner.feedback
    else:
        form = _student_feedback(LEARNING_RULES.get(method), layers)
    if form is None:
        return reference
    generator = make_generator(derived_seed(seed, "feedback"))
    built = []
    for i, layer in enumerate(reference.layers, start=1):
        lower = reference.layer(i - 1).nonlinearity if i >= 2 else "identity"
        built.append(Layer(layer.weight.detach(), layer.nonlinearity, form if i >= 2 else None,
                           lower_nonlinearity=lower, generator=generator))
    return LayeredNetwork(built)


def _learner(method: str, hyper: dict, seed: int):
    arguments = {k: v for k, v in hyper.items() if k in _RULE_KEYS}
    if method in CONTINUOUS_METHODS:
        return ContinuousLearner(method, **arguments)
    cls = LEARNING_RULES.get(method)
    arguments = {k: v for k, v in arguments.items() if k in cls.parameters}
    return cls(**arguments, generator=make_generator(derived_seed(seed, "rule")))


def _training_output(learner, network, h0):
    """``h_L`` of the model the learner trains on this batch (batch-normalised for ``mtp``/``rmtp``)."""
    if hasattr(learner, "_normalised_forward"):
        return learner._normalised_forward(network, h0)[0][-1]
    return network(h0)[-1]


def run_classification_task(task: dict) -> dict:
    """Task function (any process): train one method from one seed; the run's history as a dict."""
    start = time.perf_counter()
    method, seed, hyper = task["method"], task["seed"], task["hyperparameters"]
    dtype = getattr(torch, task["dtype"])
    data = load_task(task["task"], seed=seed, dtype=dtype)
    loss = get_output_loss(task["loss"])
    network = classification_network(task["layers"], method, seed, nonlinearity=task["nonlinearity"], dtype=dtype)
    learner = _learner(method, hyper, seed)
    K = data.n_classes
    targets = {s: one_hot(data.split(s)[1], K, dtype) for s in ("train", "validation", "test")}
    history = {m: [] for m in METRICS}
    run = {"seed": seed, "status": TrainingStatus.COMPLETED.value, "message": "", "steps": 0, "best_epoch": 0}

    def evaluate() -> bool:
        for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
            x, labels = data.split(split)
            out = learner.predict(network, x)
            history[f"{prefix}_loss"].append(loss.mean(out, targets[split]))
            history[f"{prefix}_accuracy"].append(float((out.argmax(-1) == labels).double().mean()))
        return all(math.isfinite(history[f"{p}_loss"][-1]) and not diverged(history[f"{p}_loss"][-1])
                   for p in ("train", "val", "test"))

    evaluate()
    shuffle = make_generator(derived_seed(seed, "shuffle"))
    epochs, batch = hyper["epochs"], hyper["batch_size"]
    n = data.train_inputs.shape[0]
    base_eta, base_back = learner.eta, getattr(learner, "eta_backward", None)
    best, waited = history["val_accuracy"][0], 0
    for epoch in range(1, epochs + 1):
        learner.eta = rate_schedule(base_eta, epoch, epochs, task["final_rate_fraction"])
        if base_back is not None:
            learner.eta_backward = rate_schedule(base_back, epoch, epochs, task["final_rate_fraction"])
        order = torch.randperm(n, generator=shuffle)
        stop = None
        for b in range(n // batch):
            index = order[b * batch:(b + 1) * batch]
            x, t = data.train_inputs[index], targets["train"][index]
            with torch.no_grad():
                output = _training_output(learner, network, x)
            if not bool(torch.isfinite(output).all()):
                # the previous step left non-finite weights: the cross-entropy's label would be NaN too
                stop = (TrainingStatus.DIVERGED, f"non-finite network output at epoch {epoch}, step {b + 1}")
                break
            label = loss.rule_label(output, t)
            try:
                record = learner.step(network, x, label)
            except (TPDynamicsError, FloatingPointError) as err:
                stop = (TrainingStatus.NUMERICAL_ERROR, f"{type(err).__name__} at epoch {epoch}, step {b + 1}: {err}")
                break
            run["steps"] += 1
            if not record.finite or diverged(record.loss):
                stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing training loss at epoch {epoch}, step {b + 1}")
                break
        if stop is None and not evaluate():
            for values in history.values():
                values.pop()
            stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing loss after epoch {epoch}")
        if stop is not None:
            run["status"], run["message"] = stop[0].value, stop[1] + f"; history kept up to epoch {epoch - 1}"
            break
        if history["val_accuracy"][-1] > best:
            best, waited, run["best_epoch"] = history["val_accuracy"][-1], 0, epoch
        else:
            waited += 1
        if task["patience"] is not None and waited >= task["patience"]:
            run["message"] = f"early stop after epoch {epoch} (best validation accuracy at epoch {run['best_epoch']})"
            break
    if task["patience"] is None:
        run["best_epoch"] = len(history["test_accuracy"]) - 1  # without early stopping, report the last epoch
    if not run["message"]:
        run["message"] = f"{len(history['test_accuracy']) - 1} epochs, {run['steps']} steps"
    run.update(history)
    run["epochs_completed"] = len(history["test_accuracy"]) - 1
    run["seconds"] = time.perf_counter() - start
    if isinstance(learner, ContinuousLearner):
        run["equilibria"] = learner.n_equilibria
    return {"run": run, "data": data.describe()}


def run_classification(config: ClassificationConfig, *, progress: bool = False, store=None, jobs: int | None = 1,
                       fresh: bool = False, threads: int | None = None, executor=None, ensemble: bool = True,
                       device=None) -> ClassificationResult:
    """Train every method of ``config`` on identical splits and initialisations, for every seed.

    Parameters
    ----------
    ensemble : bool
        With ``jobs=1`` and no executor (the default), the seeds of a method train as one ensemble
        (:mod:`tpdynamics.ensemble.classification`): a rule's by batched steps (a rule and its randomized twin
        with the same hyper-parameters share one; the serial numbers to round-off), a continuous network's
        (``two-phase``, ``single-phase``, ``multiplexed``) with its equilibria solved as one batch (the serial
        numbers to the equilibrium tolerance); with ``jobs > 1`` (no executor) the workers get such ensembles;
        ``False`` trains every (method, seed) run one after another.
    device : str or torch.device, optional
        Where those ensembles compute (default ``cpu``; ensemble path only).

    Returns
    -------
    ClassificationResult
        Per method: per-epoch curves over seeds and the final figures (JSON, CSV).

    Raises
    ------
    ValueError, TypeError
        Bad configuration (unknown task, loss or method; an exact-inverse rule on a non-square
        architecture), before anything is trained.
    tpdynamics.errors.MissingExtraError
        The task needs the ``data`` extra.
    tpdynamics.runs.RunInterrupted
        On Ctrl-C, with the finished runs in ``partial``.
    """
    probe = load_task(config.task, seed=0, dtype=config.dtype) if isinstance(config, ClassificationConfig) else None
    names, hyper, layers, tasks = classification_tasks(config, n_features=probe.n_features if probe else 0,
                                                       n_classes=probe.n_classes if probe else 0)
    store = None if store is None else (store if isinstance(store, ResultStore) else ResultStore(store))
    serial = (executor is None or executor == "serial") and jobs == 1
    if device is not None and not (ensemble and serial):
        raise ValueError(f"device={device!r} applies to the ensemble path only: use jobs=1 and no executor, with the "
                         "ensemble path on (the default).")
    if ensemble and (serial or executor is None):
        # tpdynamics.ensemble builds on this module; looked up by name so that the import graph has no circle
        module = importlib.import_module("tpdynamics.ensemble.classification")
        if serial:
            executor = module.ClassificationEnsembleExecutor(threads=threads, device=device)
        else:  # worker processes: each worker task is an ensemble of seeds
            executor = module.ClassificationEnsembleProcessExecutor(jobs, 1 if threads is None else threads)
    try:
        summary = run_tasks(tasks, store, executor=executor, jobs=jobs, threads=threads, fresh=fresh,
                            progress=progress, desc="classification", unit="run")
    except RunInterrupted as err:
        partial = ClassificationResult.assemble(config, names, hyper, layers, tasks, err.summary.records)
        raise RunInterrupted(err.summary, err.message, partial=partial) from None
    for record in summary.failed:
        if record.exception is not None:
            raise record.exception
        raise RuntimeError(f"classification run {record.task.label} failed in a worker process:\n{record.traceback}")
    result = ClassificationResult.assemble(config, names, hyper, layers, tasks, summary.records)
    result.summary = summary
    return result
