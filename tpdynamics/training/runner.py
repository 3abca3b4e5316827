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
"""
from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..validation import check_int, check_positive
from ..errors import TPDynamicsError, TPDynamicsWarning
from ..network import make_generator
from ..serialization import jsonable, write_json
from ..statistics import DIVERGENCE_THRESHOLD, INTERVAL_METHODS, POSITIVE, diverged, interval
from .data import StudentTeacherProblem, derived_seed, mean_squared_error, student_teacher, toy_example
from .diagnostics import sherman_morrison_summary
from .loss import LOSS_UNIT, get_loss_convention
from .presets import RUN_SETTINGS, THESIS_PRESETS, home_preset, resolve_hyperparameters
from .rules import LEARNING_RULES, LearningRule
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


@dataclass
class RunHistory:
    """One method trained from one seed.

    Attributes
    ----------
    seed : int
    status : TrainingStatus
        ``completed``, ``diverged`` or ``numerical_error``.
    message : str
    train_loss, test_loss : list of float
        MSE (:data:`~tpdynamics.training.loss.LOSS_UNIT`) on the whole training / test set: index 0 before
        training, index ``e`` after epoch ``e``; only finite epochs are kept.
    steps : int
        Training iterations done.
    batch_loss : list of float
        Per epoch (1..E), the mean of the mini-batch MSEs of its steps (measured before each update; the
        training curve the thesis's toolbox plotted).
    step_loss : list of float
        The mini-batch MSE of every step (only with ``record_steps=True``).
    diagnostics : dict
        Name -> per-epoch list (epochs 1..E) of per-layer values (entry ``i - 1`` for layer ``i``),
        the mean over the recorded steps of the epoch. Includes the Sherman–Morrison statistics
        ``sm_abs_denominator_mean``, ``sm_abs_denominator_min`` and ``sm_clipped_fraction`` (layers 1..L).
    trajectory : list
        Toy tasks: the trainable weights ``W_1`` (flattened) before training and after each epoch.
    """

    seed: int
    status: TrainingStatus = TrainingStatus.COMPLETED
    message: str = ""
    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    steps: int = 0
    batch_loss: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)
    trajectory: list = field(default_factory=list)

    @property
    def epochs_completed(self) -> int:
        return max(len(self.test_loss) - 1, 0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingResult:
    """All runs of one method, with the per-epoch averages over seeds.

    Attributes
    ----------
    method : str
    hyperparameters : dict
        What the method ran with (rates, target step, batch size, batches per epoch, ...).
    epochs : int
    runs : list of RunHistory
    """

    method: str
    hyperparameters: dict
    epochs: int
    runs: list = field(default_factory=list)

    #: How the per-epoch curves summarise the seeds (:func:`tpdynamics.statistics.interval`).
    interval_method = POSITIVE
    confidence = 0.95

    def _values(self, name: str, e: int) -> list[float]:
        return [getattr(r, name)[e] for r in self.runs if len(getattr(r, name)) > e]

    def _curve(self, name: str):
        return [interval(self._values(name, e), self.interval_method, self.confidence) for e in range(self.epochs + 1)]

    @property
    def interval(self) -> dict:
        """What the curves are: ``{"method": "log-t", "confidence": 0.95, "centre": "geometric mean"}``."""
        return {"method": self.interval_method, "confidence": self.confidence,
                "centre": INTERVAL_METHODS.get(self.interval_method).centre_name}

    @property
    def train_loss(self) -> list[float]:
        """Geometric mean over seeds of the training MSE, per epoch (index 0: before training)."""
        return [c.centre for c in self._curve("train_loss")]

    @property
    def test_loss(self) -> list[float]:
        """Geometric mean over seeds of the test MSE, per epoch (index 0: before training)."""
        return [c.centre for c in self._curve("test_loss")]

    @property
    def train_loss_ci(self) -> list[tuple[float, float]]:
        """95% log-scale interval of :attr:`train_loss` (positive), per epoch; NaN for one run."""
        return [(c.low, c.high) for c in self._curve("train_loss")]

    @property
    def test_loss_ci(self) -> list[tuple[float, float]]:
        """95% log-scale interval of :attr:`test_loss` (positive), per epoch; NaN for one run."""
        return [(c.low, c.high) for c in self._curve("test_loss")]

    def arithmetic_mean(self, name: str) -> list[float]:
        """Arithmetic mean over seeds of ``name`` (``"train_loss"`` or ``"test_loss"``), per epoch."""
        return [interval(self._values(name, e)).centre for e in range(self.epochs + 1)]

    @property
    def runs_per_epoch(self) -> list[int]:
        """How many runs each per-epoch average is over (fewer after a run diverged)."""
        return [sum(len(r.test_loss) > e for r in self.runs) for e in range(self.epochs + 1)]

    @property
    def n_diverged(self) -> int:
        """Runs that stopped early (non-finite loss or numerical failure)."""
        return sum(r.status != TrainingStatus.COMPLETED for r in self.runs)

    @property
    def status(self) -> TrainingStatus:
        """``completed`` when every run completed; else ``diverged`` if a run diverged, else ``numerical_error``."""
        statuses = {r.status for r in self.runs}
        for status in (TrainingStatus.DIVERGED, TrainingStatus.NUMERICAL_ERROR):
            if status in statuses:
                return status
        return TrainingStatus.COMPLETED

    @property
    def message(self) -> str:
        """``'completed'``, or how many runs stopped early."""
        if self.n_diverged == 0:
            return "completed"
        return f"{self.n_diverged} of {len(self.runs)} runs stopped early"

    def diagnostics_mean(self) -> dict[str, list]:
        """Per-epoch, per-layer mean over seeds of every recorded diagnostic (``nan`` where absent)."""
        names = sorted({k for r in self.runs for k in r.diagnostics})
        out = {}
        for name in names:
            per_epoch = []
            for e in range(self.epochs):
                values = [r.diagnostics[name][e] for r in self.runs if len(r.diagnostics.get(name, [])) > e]
                if not values:
                    per_epoch.append(None)
                    continue
                per_epoch.append([_nanmean([v[k] for v in values]) for k in range(len(values[0]))])
            out[name] = per_epoch
        return out

    def to_dict(self) -> dict:
        return {
            "method": self.method, "hyperparameters": self.hyperparameters, "epochs": self.epochs,
            "status": self.status, "message": self.message, "n_runs": len(self.runs), "n_diverged": self.n_diverged,
            "runs_per_epoch": self.runs_per_epoch,
            "loss_unit": LOSS_UNIT,
            "interval": self.interval,
            "train_loss": self.train_loss, "train_loss_ci": [list(c) for c in self.train_loss_ci],
            "test_loss": self.test_loss, "test_loss_ci": [list(c) for c in self.test_loss_ci],
            "train_loss_arithmetic_mean": self.arithmetic_mean("train_loss"),
            "test_loss_arithmetic_mean": self.arithmetic_mean("test_loss"),
            "diagnostics": self.diagnostics_mean(),
            "runs": [r.to_dict() for r in self.runs],
        }


def _nanmean(values):
    finite = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass
class ExperimentResult:
    """The results of :func:`run_experiment`: one :class:`TrainingResult` per method.

    Attributes
    ----------
    config : dict
        The configuration (JSON-ready).
    problems : list of dict
        Description of the problem of each seed.
    results : dict
        Method name -> :class:`TrainingResult`, in the order of ``config['methods']``.
    """

    config: dict
    problems: list
    results: dict

    @property
    def methods(self) -> list[str]:
        return list(self.results)

    def __getitem__(self, method: str) -> TrainingResult:
        return self.results[method]

    def to_dict(self) -> dict:
        """JSON-ready dict; for a single method its fields are also at the top level."""
        out = {"config": self.config, "loss_unit": LOSS_UNIT, "problems": self.problems, "methods": self.methods,
               "results": [r.to_dict() for r in self.results.values()]}
        if len(self.results) == 1:
            out = {**out["results"][0], **out}
        return jsonable(out)

    def write_json(self, path) -> Path:
        """Write :meth:`to_dict` as indented JSON to ``path`` (parents created); return the path."""
        write_json(path, self.to_dict())
        return Path(path)

    def csv_rows(self) -> list[dict]:
        """One dict per method and epoch (the rows of :meth:`write_csv`)."""
        rows = []
        for name, result in self.results.items():
            curves = zip(result.train_loss, result.train_loss_ci, result.test_loss, result.test_loss_ci,
                         result.runs_per_epoch)
            described = result.interval
            for epoch, (train, train_ci, test, test_ci, runs) in enumerate(curves):
                rows.append({"method": name, "epoch": epoch, "runs": runs, "train_loss": train,
                             "train_loss_ci_low": train_ci[0], "train_loss_ci_high": train_ci[1],
                             "test_loss": test, "test_loss_ci_low": test_ci[0], "test_loss_ci_high": test_ci[1],
                             "centre": described["centre"], "interval": described["method"],
                             "confidence": described["confidence"]})
        return rows

    def write_csv(self, path) -> Path:
        """One row per method and epoch: geometric mean and 95% log-t interval of train and test loss, number of
        runs, and columns naming the centre and the interval (``centre``, ``interval``, ``confidence``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.csv_rows()
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                                 for k, v in row.items()})
        return path


# ------------------------------------------------------------------------------------------------------
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
    n_train = config.n_train or max(h["batch_size"] * h["batches_per_epoch"] for h in hyper.values())
    check_int("n_train", n_train, minimum=1)
    check_int("diagnostics_every", config.diagnostics_every, minimum=1)
    settings = {"layers": layers, "epochs": epochs, "final_rate_fraction": fraction, "n_train": n_train,
                "preset": preset}
    return names, hyper, settings


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
                stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing training loss ({record.loss:.3g}; divergence "
                                    f"threshold {DIVERGENCE_THRESHOLD:.3g}) at epoch {epoch}, step {b + 1} of "
                                    f"{cls.name}; history kept up to epoch {epoch - 1}.")
                break
            accumulator.add(record)
            losses.append(record.loss / outputs)  # the mini-batch MSE in LOSS_UNIT
        if stop is None:
            train, test = evaluate()
            if diverged(train) or diverged(test):
                stop = (TrainingStatus.DIVERGED, f"non-finite or overflowing loss after epoch {epoch} (train {train:.3g}, test "
                                    f"{test:.3g}; divergence threshold {DIVERGENCE_THRESHOLD:.3g}) of "
                                    f"{cls.name}; history kept up to epoch {epoch - 1}.")
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


def run_experiment(config: TrainingConfig, *, progress: bool = False) -> ExperimentResult:
    """Train every method of ``config`` on identical data and initialisations, for every seed.

    Parameters
    ----------
    config : TrainingConfig
    progress : bool
        Show a tqdm progress bar (on stderr) over seeds x methods x epochs.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError, TypeError
        For an invalid configuration (unknown method or task, exact inverses on unequal layers,
        a batch size the method cannot use, ...), before anything is trained.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}.")
    names, hyper, settings = _plan(config)
    seeds = config.seed_list()
    results = {name: TrainingResult(method=name, hyperparameters={**hyper[name], "preset": settings["preset"]},
                                    epochs=settings["epochs"]) for name in names}
    problems = []
    progress_bar = None
    if progress:
        from tqdm.auto import tqdm

        progress_bar = tqdm(total=len(seeds) * len(names) * settings["epochs"], unit="epoch", desc="training")
    try:
        for seed in seeds:
            problem = _problem(config, settings, seed)
            problems.append(problem.describe())
            for name in names:
                arguments = {k: v for k, v in hyper[name].items()
                             if k not in RUN_SETTINGS or k == "loss_convention"}
                rule = LEARNING_RULES.get(name)(**arguments, trainable_layers=problem.trainable_layers,
                                                generator=make_generator(derived_seed(seed, "rule")))
                results[name].runs.append(_train_run(rule, problem, hyper[name], settings, config, seed,
                                                     progress_bar))
    finally:
        if progress_bar is not None:
            progress_bar.close()
    config_dict = config.to_dict()
    config_dict.update({"methods": names, "layers": list(settings["layers"]), "epochs": settings["epochs"],
                        "n_train": settings["n_train"], "preset": settings["preset"]})
    return ExperimentResult(config=config_dict, problems=problems, results=results)


def train(method, *, progress: bool = False, **config) -> TrainingResult:
    """Train one method; the keyword arguments are the fields of :class:`TrainingConfig`.

    Examples
    --------
    >>> result = train("tp-ei", seeds=2, epochs=3)          # doctest: +SKIP
    >>> result.test_loss[0] > result.test_loss[-1]          # doctest: +SKIP
    """
    return run_experiment(TrainingConfig(methods=(method,), **config), progress=progress).results[
        LEARNING_RULES.get(method).name]


def compare_methods(methods: Sequence, *, progress: bool = False, **config) -> ExperimentResult:
    """Train several methods side by side on identical data and initialisations (see :func:`run_experiment`)."""
    return run_experiment(TrainingConfig(methods=tuple(methods), **config), progress=progress)
