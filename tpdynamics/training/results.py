"""The results of training: one run (:class:`RunHistory`), one method over seeds (:class:`TrainingResult`),
an experiment (:class:`ExperimentResult`, written as JSON and CSV).

Across seeds the per-epoch curves are the geometric mean of the losses and its 95 % interval on the
log scale (:mod:`tpdynamics.statistics`, method ``"log-t"``); see :mod:`tpdynamics.training.runner`.
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..runs.atomic import atomic_path
from ..serialization import jsonable, write_json
from ..statistics import INTERVAL_METHODS, POSITIVE, interval
from .loss import LOSS_UNIT
from .status import TrainingStatus

__all__ = ["RunHistory", "TrainingResult", "ExperimentResult"]


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
    missing : list of dict
        ``{"method", "seed"}`` of the runs that did not finish (an interrupted run); empty when complete.
    summary : tpdynamics.runs.RunSummary or None
        How the runs were executed: how many were reused from a store (not written to JSON).
    """

    config: dict
    problems: list
    results: dict
    missing: list = field(default_factory=list)
    summary: object = field(default=None, repr=False, compare=False)

    @property
    def partial(self) -> bool:
        """Whether some (method, seed) runs are missing (:attr:`missing`)."""
        return bool(self.missing)

    @property
    def methods(self) -> list[str]:
        return list(self.results)

    def __getitem__(self, method: str) -> TrainingResult:
        return self.results[method]

    def to_dict(self) -> dict:
        """JSON-ready dict; for a single method its fields are also at the top level."""
        out = {"config": self.config, "loss_unit": LOSS_UNIT, "problems": self.problems, "methods": self.methods,
               "partial": self.partial, "missing_runs": self.missing,
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
        rows = self.csv_rows()
        with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:  # never a truncated CSV
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                                 for k, v in row.items()})
        return path


# ------------------------------------------------------------------------------------------------------
