"""Experiment runner: a configuration in, per-epoch losses and diagnostics averaged over seeds out.

:func:`run_experiment` trains one or several methods on *identical* data and initialisations:
for every seed it draws one problem (teacher, student weights, training and test sets) and
gives each method a fresh student with the same weights, the same shuffling of the training
set (when batch sizes agree) and its own seeded generator. Results are written as JSON
(:meth:`ExperimentResult.write_json`) and CSV (:meth:`ExperimentResult.write_csv`).

Loss unit: ``train_loss`` and ``test_loss`` are the thesis's plotted MSE, the mean over the samples *and*
the outputs of ``(h_L - y)^2`` (``torch.nn.MSELoss``; :data:`~tpdynamics.training.loss.LOSS_UNIT`, named
``loss_unit`` in the JSON), evaluated on the whole training / test set before training (index 0) and after
every epoch. The gradients follow the loss convention of the preset (``loss_convention``: ``"thesis"``,
``||h_L - y||^2`` as chapter 5 and its toolbox; :mod:`tpdynamics.training.loss`).
Across seeds the runner reports, per epoch, the geometric mean of the losses and its 95%
interval computed on the log scale (:mod:`tpdynamics.statistics`, method ``"log-t"``):
``g */ exp(t_{0.975, n-1} s_log / sqrt(n))`` with ``s_log`` the standard deviation of ``log L`` over
seeds, positive however few the seeds (NaN for a single run). The JSON says so
(``"interval": {"method": "log-t", "confidence": 0.95, "centre": "geometric mean"}``) and also
gives the arithmetic means (``*_loss_arithmetic_mean``), the statistic of the thesis's averaged curves.

A run whose mini-batch loss or evaluated loss becomes non-finite, or exceeds
:data:`~tpdynamics.statistics.DIVERGENCE_THRESHOLD` (``sqrt(float max) ~ 1.3e154``: its square
overflows), stops with status ``'diverged'`` and keeps the history up to its last epoch below it;
a numerical failure of the algorithm (singular weight, inverse outside its domain, ...) stops with
``'numerical_error'`` (:class:`TrainingStatus`).
Such runs are counted (``n_diverged``, ``runs_per_epoch``), never dropped: from the epoch a run
stopped, the averages are over the runs still going, and ``runs_per_epoch`` says how many.

Every (method, seed) run is a task of :mod:`tpdynamics.runs` (kind ``train``, function
:func:`run_training_task`): its configuration holds everything the run depends on — the method, the
seed, the resolved hyper-parameters, the problem's settings — so with a store a finished run is kept
at once and reused by any later experiment that would train it identically (e.g. ``bp`` of
``--method bp,dtp-ai`` after ``--method bp`` with the same data sizes). Runs can go to worker
processes (``jobs``); on Ctrl-C the finished ones are kept and :class:`tpdynamics.runs.RunInterrupted`
carries the partial :class:`ExperimentResult` (``partial``, ``missing_runs``).
"""
from __future__ import annotations

import contextvars
import importlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch

from ..validation import check_int, check_memory, check_positive, unknown_names_message
from ..errors import TPDynamicsError, TPDynamicsWarning
from ..network import make_generator
from ..runs import ResultStore, RunInterrupted, Task, run_tasks
from ..runs.executors import resolve_function
from ..statistics import DIVERGENCE_THRESHOLD, diverged
from .data import StudentTeacherProblem, derived_seed, mean_squared_error, student_teacher, toy_example
from .diagnostics import sherman_morrison_summary
from .loss import get_loss_convention
from .presets import RUN_SETTINGS, THESIS_PRESETS, home_preset, resolve_hyperparameters
from .rules import LEARNING_RULES, LearningRule
from .results import ExperimentResult, RunHistory, TrainingResult
from .status import TrainingStatus

TASKS = ("student-teacher", "toy-linear", "toy-leaky-relu")
_OVERRIDES = ("eta", "eta_hat", "eta_backward", "lambda_", "epsilon", "noise_std", "batch_size", "batches_per_epoch",
              "loss_convention")


@dataclass
class TrainingConfig:
    """Everything that defines a training run: one or several methods trained side by side over seeds.

    ``None`` means "the thesis's value": from ``preset`` (see :data:`~tpdynamics.training.THESIS_PRESETS`),
    or, without a preset, from each method's home experiment (section 5.1.3 for the exact-inverse
    rules and BP, 5.2.2 for the others; the toy presets for the toy tasks).

    Attributes
    ----------
    methods : sequence of str or LearningRule subclass
        Methods to train side by side (names of :data:`~tpdynamics.training.LEARNING_RULES`).
    task : {'student-teacher', 'toy-linear', 'toy-leaky-relu'}
    layers : sequence of int, optional
        ``(n_0, ..., n_L)`` (student-teacher only; the toy network is 1-2-2).
    nonlinearity, output_nonlinearity : str
        ``s_1..s_{L-1}`` and ``s_L`` of teacher and student.
    seeds : int or sequence of int
        ``N`` (seeds ``0..N-1``) or explicit seeds.
    epochs : int, optional
    preset : str, optional
    eta, eta_hat, eta_backward, lambda_, epsilon, noise_std, batch_size, batches_per_epoch : optional
        Overrides applied to every method that uses them.
    loss_convention : {'thesis', 'half'}, optional
        The loss scaling of every method (:mod:`tpdynamics.training.loss`); default: the preset's
        (``'thesis'`` for the student-teacher presets, ``'half'`` for the toy ones).
    final_rate_fraction : float
        Learning rates decay linearly per epoch as the thesis's toolbox did: epoch ``e = 1..E`` uses
        ``eta (1 - (1 - f) (e - 1) / tau)`` with ``f = final_rate_fraction`` (the thesis: 1/5) and the
        horizon ``tau = decay_horizon x E`` of the preset (1 except BP / fixed-BP in the one-hidden-layer
        experiments, 100/60). 1 keeps the rates constant. ``eta_hat`` is not decayed.
    n_train : int, optional
        Training-set size (default: the largest ``batch_size * batches_per_epoch`` of the methods).
    n_test : int
        Test-set size.
    distance : float, optional
        Frobenius distance of the student's matrices from the teacher's (8.0; toy: 2.0).
    init_threshold : float
        ``sigma_min sigma_max`` threshold of the weight draws (0.4).
    diagnostics : bool
        Record the learning-signal diagnostics every ``diagnostics_every`` steps, averaged per epoch.
    record_steps : bool
        Keep the mini-batch loss of every step (:attr:`RunHistory.step_loss`).
    """

    methods: Sequence = ("tp-ei",)
    task: str = "student-teacher"
    layers: Sequence | None = None
    nonlinearity: str = "leaky_relu:0.35"
    output_nonlinearity: str = "identity"
    seeds: int | Sequence = 1
    epochs: int | None = None
    preset: str | None = None
    eta: float | None = None
    eta_hat: float | None = None
    eta_backward: float | None = None
    lambda_: float | None = None
    epsilon: float | None = None
    noise_std: float | None = None
    loss_convention: str | None = None
    batch_size: int | None = None
    batches_per_epoch: int | None = None
    final_rate_fraction: float = 0.2
    n_train: int | None = None
    n_test: int = 1000
    distance: float | None = None
    init_threshold: float = 0.4
    diagnostics: bool = False
    diagnostics_every: int = 1
    record_steps: bool = False
    dtype: torch.dtype = torch.float64

    def seed_list(self) -> list[int]:
        """The seeds to run: ``0..N-1`` for ``seeds=N``, else the listed seeds."""
        if isinstance(self.seeds, int) and not isinstance(self.seeds, bool):
            return list(range(check_int("seeds", self.seeds, minimum=1)))
        seeds = [check_int("seeds[]", s) for s in self.seeds]
        if not seeds:
            raise ValueError("seeds must be a positive count or a non-empty list of seeds.")
        return seeds

    def to_dict(self) -> dict:
        out = asdict(self)
        out["methods"] = [m if isinstance(m, str) else m.name for m in self.methods]
        out["dtype"] = str(self.dtype).replace("torch.", "")
        out["layers"] = None if self.layers is None else list(self.layers)
        out["seeds"] = self.seed_list()
        return out


def _plan(config: TrainingConfig) -> tuple[list[str], dict, dict]:
    """Validate the configuration; return method names, per-method hyper-parameters and problem settings."""
    if config.task not in TASKS:
        raise ValueError(f"task={config.task!r} is not valid; use one of {', '.join(TASKS)}.")
    if isinstance(config.methods, (str, type)):
        methods = [config.methods]
    else:
        methods = list(config.methods)
    if not methods:
        raise ValueError("methods is empty; pass at least one method, e.g. methods=('tp-ei', 'bp').")
    classes = [LEARNING_RULES.get(m) for m in methods]
    names = [cls.name for cls in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"methods lists a method twice: {names}.")
    preset = config.preset
    if preset is None and config.task != "student-teacher":
        preset = config.task
    if preset is not None and preset not in THESIS_PRESETS:
        raise ValueError(f"preset={preset!r} is not valid; use one of {', '.join(THESIS_PRESETS)}.")
    if preset is not None and THESIS_PRESETS[preset].task != config.task:
        raise ValueError(f"preset={preset!r} belongs to task {THESIS_PRESETS[preset].task!r}, not {config.task!r}.")
    overrides = {k: getattr(config, k) for k in _OVERRIDES}
    if config.loss_convention is not None:
        get_loss_convention(config.loss_convention)  # an unknown name lists the valid ones
    unused = [k for k, v in overrides.items() if v is not None and k not in RUN_SETTINGS
              and not any(k in cls.parameters for cls in classes)]
    if unused:
        warnings.warn(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by "
                      f"{', '.join(names)} and {'has' if len(unused) == 1 else 'have'} no effect.",
                      TPDynamicsWarning, stacklevel=3)
    hyper = {cls.name: resolve_hyperparameters(cls, preset, **overrides) for cls in classes}
    for cls in classes:
        cls.check_batch_size(check_int("batch_size", hyper[cls.name]["batch_size"], minimum=1))
        check_int("batches_per_epoch", hyper[cls.name]["batches_per_epoch"], minimum=1)
    reference = THESIS_PRESETS[preset or home_preset(classes[0])]
    if config.task == "student-teacher":
        layers = tuple(config.layers) if config.layers is not None else reference.layers
        for cls in classes:
            cls.check_layer_sizes(layers)
    else:
        if config.layers is not None and tuple(config.layers) != (1, 2, 2):
            raise ValueError(f"the toy example has layers (1, 2, 2); got layers={list(config.layers)}. "
                             "Leave layers unset for the toy tasks.")
        layers = (1, 2, 2)
    epochs = check_int("epochs", config.epochs if config.epochs is not None else reference.epochs, minimum=1)
    fraction = check_positive("final_rate_fraction", config.final_rate_fraction)
    n_train = config.n_train if config.n_train is not None else \
        max(h["batch_size"] * h["batches_per_epoch"] for h in hyper.values())  # an explicit 0 is an error
    check_int("n_train", n_train, minimum=1)
    check_int("diagnostics_every", config.diagnostics_every, minimum=1)
    _check_training_memory(layers, n_train, check_int("n_test", config.n_test, minimum=1), hyper, config.dtype)
    settings = {"layers": layers, "epochs": epochs, "final_rate_fraction": fraction, "n_train": n_train,
                "preset": preset}
    return names, hyper, settings


def _check_training_memory(layers, n_train: int, n_test: int, hyper: dict, dtype: torch.dtype) -> None:
    """Refuse data sets and epoch index tables beyond the available memory, before anything is drawn.

    The largest live data are the teacher's activations of every sample (``(n_train + n_test)
    sum(n_i)`` values, from which the inputs and labels are kept) and the shuffled sample indices of
    an epoch (``batch_size * batches_per_epoch`` int64, with the permutations they are cut from).
    """
    itemsize = torch.finfo(dtype).bits // 8
    steps = max(h["batch_size"] * h["batches_per_epoch"] for h in hyper.values())
    worst = max(hyper.values(), key=lambda h: h["batch_size"] * h["batches_per_epoch"])
    nbytes = (n_train + n_test) * sum(layers) * itemsize + 3 * 8 * max(steps, n_train)
    check_memory(f"training on n_train={n_train} and n_test={n_test} samples of layers {list(layers)} with "
                 f"batch_size={worst['batch_size']} x batches_per_epoch={worst['batches_per_epoch']} samples "
                 "per epoch", nbytes, hint="Lower batches_per_epoch, batch_size, n_train or n_test.")


def _problem(config: TrainingConfig, settings: dict, seed: int) -> StudentTeacherProblem:
    if config.task == "student-teacher":
        return student_teacher(settings["layers"], nonlinearity=config.nonlinearity,
                               output_nonlinearity=config.output_nonlinearity, n_train=settings["n_train"],
                               n_test=config.n_test, distance=8.0 if config.distance is None else config.distance,
                               init_threshold=config.init_threshold, seed=seed, dtype=config.dtype)
    case = config.task.removeprefix("toy-")
    return toy_example(case, seed=seed, distance=2.0 if config.distance is None else config.distance,
                       n_train=settings["n_train"], n_test=config.n_test, dtype=config.dtype)


def rate_schedule(initial, epoch: int, epochs: int, final_fraction: float = 0.2, *, horizon: float | None = None):
    """Linear decay ``initial (1 - (1 - final_fraction) (epoch - 1) / horizon)``, constant after ``horizon``.

    The thesis: "All learning rates decayed linearly towards eta_init/5 over the training epochs". Default
    ``horizon = epochs - 1``: ``final_fraction * initial`` at the last epoch. The thesis's toolbox used
    ``horizon = tau`` (``tau = epochs`` for TP, 100 for BP in a 60-epoch run), which the runner passes.
    ``initial`` may be a float or a tuple of per-layer rates.
    """
    horizon = epochs - 1 if horizon is None else horizon
    progress = 0.0 if horizon <= 0 else min(1.0, (epoch - 1) / horizon)
    scale = 1.0 - (1.0 - final_fraction) * progress
    if isinstance(initial, tuple):
        return tuple(scale * v for v in initial)
    return scale * initial


def _batches(n_train: int, batch_size: int, count: int, generator: torch.Generator):
    """``count`` index batches drawn without replacement from successive permutations of the training set."""
    indices = torch.empty(0, dtype=torch.long)
    needed = batch_size * count
    while indices.numel() < needed:
        indices = torch.cat([indices, torch.randperm(n_train, generator=generator)])
    return indices[:needed].view(count, batch_size)


class _EpochDiagnostics:
    """Accumulates per-layer step diagnostics and Sherman–Morrison records within an epoch."""

    def __init__(self, depth: int):
        self.depth = depth
        self.sums: dict[str, list[float]] = {}
        self.counts: dict[str, list[int]] = {}
        self.sm: dict[int, list] = {}

    def add(self, record) -> None:
        for layer, sm in record.sherman_morrison.items():
            self.sm.setdefault(layer, []).append(sm)
        if record.diagnostics is None:
            return
        for name, values in record.diagnostics.flat().items():
            sums = self.sums.setdefault(name, [0.0] * len(values))
            counts = self.counts.setdefault(name, [0] * len(values))
            for k, v in enumerate(values):
                if v is not None and math.isfinite(v):
                    sums[k] += v
                    counts[k] += 1

    def means(self) -> dict[str, list[float]]:
        out = {name: [s / c if c else math.nan for s, c in zip(self.sums[name], self.counts[name])]
               for name in self.sums}
        if self.sm:
            summaries = [sherman_morrison_summary(self.sm.get(i, [])) for i in range(1, self.depth + 1)]
            out["sm_abs_denominator_mean"] = [s["abs_denominator_mean"] for s in summaries]
            out["sm_abs_denominator_min"] = [s["abs_denominator_min"] for s in summaries]
            out["sm_clipped_fraction"] = [s["clipped_fraction"] for s in summaries]
        return out


def _student_feedback(cls: type[LearningRule], layer_sizes) -> str | None:
    forms = cls.feedback_forms()
    if not forms:
        return None
    if forms[0] == "exact" and len(set(layer_sizes[1:])) > 1 and "learned" in forms:
        return "learned"  # e.g. mtp on unequal layers: the exact form does not exist there
    return forms[0]




def step_divergence(loss: float, epoch: int, step: int, method: str) -> tuple:
    """``(DIVERGED, message)`` for a non-finite or overflowing mini-batch loss at ``step`` (1-based) of ``epoch``.

    One wording for the serial runner and the ensemble (:mod:`tpdynamics.ensemble`), whose records are compared.
    """
    return (TrainingStatus.DIVERGED, f"non-finite or overflowing training loss ({loss:.3g}; divergence threshold "
                                     f"{DIVERGENCE_THRESHOLD:.3g}) at epoch {epoch}, step {step} of {method}; history "
                                     f"kept up to epoch {epoch - 1}.")


def epoch_divergence(train: float, test: float, epoch: int, method: str) -> tuple:
    """``(DIVERGED, message)`` for a non-finite or overflowing train or test loss after ``epoch``."""
    return (TrainingStatus.DIVERGED, f"non-finite or overflowing loss after epoch {epoch} (train {train:.3g}, test "
                                     f"{test:.3g}; divergence threshold {DIVERGENCE_THRESHOLD:.3g}) of {method}; "
                                     f"history kept up to epoch {epoch - 1}.")


def _train_run(rule: LearningRule, problem: StudentTeacherProblem, hyper: dict, settings: dict,
               config: TrainingConfig, seed: int, progress_bar) -> RunHistory:
    cls = type(rule)
    network = problem.student(_student_feedback(cls, problem.layer_sizes))
    history = RunHistory(seed=seed)
    toy = problem.trainable_layers == (1,) and problem.layer_sizes == (1, 2, 2)

    def evaluate() -> tuple[float, float]:
        train = mean_squared_error(rule.predict(network, problem.train_inputs), problem.train_labels)
        test = mean_squared_error(rule.predict(network, problem.test_inputs), problem.test_labels)
        return train, test

    train, test = evaluate()
    history.train_loss.append(train)
    history.test_loss.append(test)
    if toy:
        history.trajectory.append(network.layer(1).weight.detach().flatten().tolist())
    shuffle = make_generator(derived_seed(seed, "shuffle"))
    base_eta, base_eta_backward = rule.eta, rule.eta_backward
    epochs = settings["epochs"]
    horizon = hyper["decay_horizon"] * epochs  # the toolbox's tau (:func:`rate_schedule`)
    outputs = problem.layer_sizes[-1]
    for epoch in range(1, epochs + 1):
        rule.eta = rate_schedule(base_eta, epoch, epochs, settings["final_rate_fraction"], horizon=horizon)
        if base_eta_backward is not None:
            rule.eta_backward = rate_schedule(base_eta_backward, epoch, epochs, settings["final_rate_fraction"],
                                              horizon=horizon)
        accumulator = _EpochDiagnostics(network.depth)
        losses = []
        stop = None
        batches = _batches(problem.train_inputs.shape[0], hyper["batch_size"], hyper["batches_per_epoch"], shuffle)
        for b, index in enumerate(batches):
            record_diagnostics = config.diagnostics and (history.steps % config.diagnostics_every == 0)
            try:
                record = rule.step(network, problem.train_inputs[index], problem.train_labels[index],
                                   diagnostics=record_diagnostics)
            except (TPDynamicsError, FloatingPointError) as err:
                stop = (TrainingStatus.NUMERICAL_ERROR, f"{type(err).__name__} at epoch {epoch}, step {b + 1}: {err}")
                break
            history.steps += 1
            if config.record_steps:
                history.step_loss.append(record.loss / outputs)
            if not record.finite or diverged(record.loss):
                stop = step_divergence(record.loss, epoch, b + 1, cls.name)
                break
            accumulator.add(record)
            losses.append(record.loss / outputs)  # the mini-batch MSE in LOSS_UNIT
        if stop is None:
            train, test = evaluate()
            if diverged(train) or diverged(test):
                stop = epoch_divergence(train, test, epoch, cls.name)
        if stop is not None:
            history.status, history.message = stop
            if progress_bar is not None:
                progress_bar.update(epochs - epoch + 1)
            break
        history.train_loss.append(train)
        history.test_loss.append(test)
        history.batch_loss.append(sum(losses) / len(losses))
        for name, values in accumulator.means().items():
            history.diagnostics.setdefault(name, []).append(values)
        if toy:
            history.trajectory.append(network.layer(1).weight.detach().flatten().tolist())
        if progress_bar is not None:
            progress_bar.update(1)
            progress_bar.set_postfix(method=cls.name, seed=seed, test=f"{test:.3g}")
    if history.status == TrainingStatus.COMPLETED:
        history.message = f"{epochs} epochs, {history.steps} steps"
    return history


def run_experiment(config: TrainingConfig, *, progress: bool = False, store=None, jobs: int | None = 1,
                   fresh: bool = False, threads: int | None = None, executor=None, ensemble: bool = True,
                   device=None) -> ExperimentResult:
    """Train every method of ``config`` on identical data and initialisations, for every seed.

    Each (method, seed) run is a task of :mod:`tpdynamics.runs` (module docstring): with a ``store``
    every finished run is written there at once and reused by later calls.

    Parameters
    ----------
    config : TrainingConfig
    progress : bool
        Show a tqdm progress bar (on stderr): over seeds x methods x epochs in this process, over
        runs with worker processes.
    store : tpdynamics.runs.ResultStore or path, optional
        Keep every finished run there (``<store>/<key>.json``) and reuse the ones it has.
    jobs : int, optional
        Worker processes for the runs; 1 (default) trains in this process, ``None`` on every core.
    fresh : bool
        Retrain runs the store has.
    threads : int, optional
        Intra-op torch threads while training (workers: 1 unless given; ``None`` keeps this process's).
    executor : str or tpdynamics.runs.Executor, optional
        Where the runs execute (:data:`tpdynamics.runs.EXECUTORS`).
    ensemble : bool
        In this process (``jobs=1``, no other executor), train the seeds of each method as one
        ensemble (:mod:`tpdynamics.ensemble`: the same numbers as the serial runs, to rounding), and
        with ``jobs > 1`` (no executor) send them to the workers as ensembles; ``False`` trains them
        one after another. Rules the ensemble does not know run serially.
    device : str or torch.device, optional
        Where the ensembles compute (default ``cpu``).

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError, TypeError
        For an invalid configuration (unknown method or task, exact inverses on unequal layers,
        a batch size the method cannot use, ...), before anything is trained.
    tpdynamics.runs.RunInterrupted
        On Ctrl-C, with the finished runs as a partial :class:`ExperimentResult` in its ``partial``.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}.")
    return _run_training(config, progress=progress, store=store, jobs=jobs, fresh=fresh, threads=threads,
                        executor=executor, ensemble=ensemble, device=device)


def _config(methods, config: dict) -> TrainingConfig:
    valid = [f.name for f in fields(TrainingConfig) if f.name != "methods"]
    unknown = [k for k in config if k not in valid]
    if unknown:
        raise TypeError(unknown_names_message("the training configuration", "setting", unknown, valid))
    return TrainingConfig(methods=methods, **config)


def train(method, *, progress: bool = False, ensemble: bool = True, device=None, **config) -> TrainingResult:
    """Train one method; the keyword arguments are the fields of :class:`TrainingConfig`.

    Examples
    --------
    >>> result = train("tp-ei", seeds=2, epochs=3)          # doctest: +SKIP
    >>> result.test_loss[0] > result.test_loss[-1]          # doctest: +SKIP
    """
    return run_experiment(_config((method,), config), progress=progress, ensemble=ensemble, device=device).results[
        LEARNING_RULES.get(method).name]


def compare_methods(methods: Sequence, *, progress: bool = False, ensemble: bool = True, device=None,
                    **config) -> ExperimentResult:
    """Train several methods side by side on identical data and initialisations (see :func:`run_experiment`)."""
    return run_experiment(_config(tuple(methods), config), progress=progress, ensemble=ensemble, device=device)


# -- training as tasks of tpdynamics.runs: one (method, seed) run each ------------------------------------
_TASK_FUNCTION = "tpdynamics.training.runner:run_training_task"
_PROBLEM_FIELDS = ("task", "nonlinearity", "output_nonlinearity", "n_test", "distance", "init_threshold")
_RUN_FIELDS = ("diagnostics", "diagnostics_every", "record_steps")
# the epoch progress bar of a run in this process (run_training sets it; a worker process has none)
_EPOCH_BAR = contextvars.ContextVar("tpdynamics_epoch_bar", default=None)


def _rule_class(name: str, method):
    """The registered class, or the user's class given in ``methods`` (passed by its import path)."""
    return method if isinstance(method, type) else LEARNING_RULES.get(name)


def training_tasks(config: TrainingConfig):
    """Validate ``config`` and split it into one task per (seed, method), seed-major.

    Returns
    -------
    names : list of str
    hyper : dict
        Method name -> resolved hyper-parameters.
    settings : dict
        Layers, epochs, rate decay, training-set size, preset.
    tasks : list of tpdynamics.runs.Task
        Kind ``train``; configuration ``{method, seed, hyperparameters, settings, problem, run}`` (and
        ``rule``, the class's import path, for a class that is not the registered one).
    """
    names, hyper, settings = _plan(config)
    methods = [config.methods] if isinstance(config.methods, (str, type)) else list(config.methods)
    problem = {k: getattr(config, k) for k in _PROBLEM_FIELDS}
    problem["dtype"] = str(config.dtype).replace("torch.", "")
    run = {k: getattr(config, k) for k in _RUN_FIELDS}
    plain = {**settings, "layers": list(settings["layers"])}
    tasks = []
    for seed in config.seed_list():
        for name, method in zip(names, methods):
            cls = _rule_class(name, method)
            task_config = {"method": name, "seed": seed, "hyperparameters": hyper[name], "settings": plain,
                           "problem": problem, "run": run}
            if cls is not LEARNING_RULES.get(name):
                task_config["rule"] = f"{cls.__module__}:{cls.__qualname__}"
            tasks.append(Task(function=_TASK_FUNCTION, config=task_config, kind="train", label=f"{name} seed {seed}"))
    return names, hyper, settings, tasks


def run_training_task(task: dict) -> dict:
    """Task function (any process): train one method from one seed; ``{"run": RunHistory dict, "problem": ...}``."""
    if "rule" in task:
        cls = resolve_function(task["rule"])
    else:
        cls = LEARNING_RULES.get(task["method"])
    problem_settings = {k: task["problem"][k] for k in _PROBLEM_FIELDS}
    config = TrainingConfig(methods=(cls,), dtype=getattr(torch, task["problem"]["dtype"]), **problem_settings,
                              **task["run"])
    settings = {**task["settings"], "layers": tuple(task["settings"]["layers"])}
    seed, hyper = task["seed"], task["hyperparameters"]
    problem = _problem(config, settings, seed)
    arguments = {k: v for k, v in hyper.items() if k not in RUN_SETTINGS or k == "loss_convention"}
    rule = cls(**arguments, trainable_layers=problem.trainable_layers,
               generator=make_generator(derived_seed(seed, "rule")))
    history = _train_run(rule, problem, hyper, settings, config, seed, _EPOCH_BAR.get())
    return {"run": history.to_dict(), "problem": problem.describe()}


def _assemble(config: TrainingConfig, names, hyper, settings, tasks, records) -> ExperimentResult:
    results = {name: TrainingResult(method=name, hyperparameters={**hyper[name], "preset": settings["preset"]},
                                    epochs=settings["epochs"]) for name in names}
    problems, missing, seen = [], [], set()
    for task, record in zip(tasks, records):
        seed, name = task.config["seed"], task.config["method"]
        if record is None:
            missing.append({"method": name, "seed": seed})
            continue
        run = record.result["run"]
        results[name].runs.append(RunHistory(**{**run, "status": TrainingStatus(run["status"])}))
        if seed not in seen:
            seen.add(seed)
            problems.append(record.result["problem"])
    config_dict = config.to_dict()
    config_dict.update({"methods": names, "layers": list(settings["layers"]), "epochs": settings["epochs"],
                        "n_train": settings["n_train"], "preset": settings["preset"]})
    return ExperimentResult(config=config_dict, problems=problems, results=results, missing=missing)


def _run_training(config: TrainingConfig, *, progress: bool = False, store=None, jobs: int | None = 1,
                 fresh: bool = False, threads: int | None = None, executor=None, ensemble: bool = True,
                 device=None) -> ExperimentResult:
    """:func:`run_experiment`: plan the tasks, run them (reusing a store's), assemble the result."""
    names, hyper, settings, tasks = training_tasks(config)
    store = None if store is None else (store if isinstance(store, ResultStore) else ResultStore(store))
    serial = (executor is None or executor == "serial") and jobs == 1
    if device is not None and not (ensemble and serial):
        raise ValueError(f"device={device!r} applies to the ensemble path only: use jobs=1 and no executor, with the "
                         "ensemble path on (the default).")
    if ensemble and serial:  # the seeds of each method as one stacked computation (tpdynamics.ensemble)
        # tpdynamics.ensemble builds on this module; looked up by name so that the import graph has no circle
        executor = importlib.import_module("tpdynamics.ensemble").EnsembleExecutor(threads=threads, device=device)
    elif ensemble and executor is None:  # worker processes: each worker task is an ensemble of seeds
        executor = importlib.import_module("tpdynamics.ensemble").EnsembleProcessExecutor(
            jobs, 1 if threads is None else threads)
    bar = None
    if progress and serial:  # in this process: a bar over epochs, as the runs go
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks) * settings["epochs"], unit="epoch", desc="training")
    token = _EPOCH_BAR.set(bar)

    def count_reused(index, record):
        if bar is not None and record.reused:
            bar.update(settings["epochs"])

    try:
        summary = run_tasks(tasks, store, executor=executor, jobs=jobs, threads=threads, fresh=fresh,
                            progress=progress and not serial, desc="training", unit="run", on_record=count_reused)
    except RunInterrupted as err:
        partial = _assemble(config, names, hyper, settings, tasks, err.summary.records)
        where = f" in {store.root}" if store is not None else " (no store: not kept on disk)"
        message = (f"interrupted: {err.summary.finished} of {len(tasks)} (method, seed) runs finished{where}; "
                   + ("run the same command again to resume" if store is not None else "pass a store to resume"))
        raise RunInterrupted(err.summary, message, partial=partial) from None
    finally:
        _EPOCH_BAR.reset(token)
        if bar is not None:
            bar.close()
    for record in summary.failed:  # a bug, not a numerical failure (those are run statuses): raise it
        if record.exception is not None:
            raise record.exception
        raise RuntimeError(f"training run {record.task.label} failed in a worker process:\n{record.traceback}")
    result = _assemble(config, names, hyper, settings, tasks, summary.records)
    result.summary = summary
    return result
