"""Results of :func:`~tpdynamics.training.classification.run_classification`: curves over seeds, JSON and CSV.

Per method and epoch (index 0: before training), over the seeds still running at that epoch:

* accuracies (train / validation / test): arithmetic mean and 95 % Student-t interval (``"t"``), cut to
  [0, 1] (:data:`ACCURACY_RANGE`);
* losses: geometric mean and 95 % log-t interval (``"log-t"``, positive), as the regression runner reports.

The *final* figures of a run are those of its ``best_epoch`` (the last epoch, or the best validation epoch
with early stopping); the table gives their mean and interval over seeds and the wall time per run.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..runs.atomic import atomic_path
from ..serialization import jsonable, write_json
from ..statistics import POSITIVE, SIGNED, interval

__all__ = ["METRICS", "MethodResult", "ClassificationResult"]

METRICS = ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy")


def _method(metric: str) -> str:
    return SIGNED if metric.endswith("accuracy") else POSITIVE


#: Accuracies are fractions: their t interval is cut to this range (a spread of 2 seeds can put the
#: t interval's end past 1, which no accuracy reaches), and the JSON says so in ``"method"``.
ACCURACY_RANGE = (0.0, 1.0)


def _summary(values, method, bounds=None) -> dict:
    iv = interval(values, method)
    low, high = iv.low, iv.high
    if bounds is not None:
        low = low if math.isnan(low) else min(max(low, bounds[0]), bounds[1])
        high = high if math.isnan(high) else min(max(high, bounds[0]), bounds[1])
        method = f"{method}, clipped to [{bounds[0]:g}, {bounds[1]:g}]"
    return {"mean": iv.centre, "low": low, "high": high, "n": iv.n, "method": method}


def _bounds(metric: str):
    return ACCURACY_RANGE if metric.endswith("accuracy") else None


@dataclass
class MethodResult:
    """All runs of one method: ``runs`` are the task functions' run dicts (metrics per epoch, status, seconds)."""

    method: str
    hyperparameters: dict
    runs: list = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return max((r["epochs_completed"] for r in self.runs), default=0)

    def curve(self, metric: str) -> list[dict]:
        """Per epoch: ``{"mean", "low", "high", "n", "method"}`` over the runs that reached it."""
        return [_summary([r[metric][e] for r in self.runs if len(r[metric]) > e], _method(metric), _bounds(metric))
                for e in range(self.epochs + 1)]

    def final(self, metric: str) -> dict:
        """Mean and 95 % interval over seeds of ``metric`` at each run's ``best_epoch``."""
        return _summary([r[metric][r["best_epoch"]] for r in self.runs], _method(metric), _bounds(metric))

    @property
    def seconds(self) -> dict:
        """Wall time per run: geometric mean and log-t interval."""
        return _summary([r["seconds"] for r in self.runs], POSITIVE)

    @property
    def n_failed(self) -> int:
        return sum(r["status"] != "completed" for r in self.runs)

    def to_dict(self) -> dict:
        return {"method": self.method, "hyperparameters": self.hyperparameters, "n_runs": len(self.runs),
                "n_failed": self.n_failed, "epochs": self.epochs,
                "final": {m: self.final(m) for m in METRICS}, "seconds": self.seconds,
                "best_epoch": [r["best_epoch"] for r in self.runs],
                "curves": {m: self.curve(m) for m in METRICS}, "runs": self.runs}


@dataclass
class ClassificationResult:
    """One :class:`MethodResult` per method, the configuration and the data description."""

    config: dict
    data: dict
    results: dict
    missing: list = field(default_factory=list)
    summary: object = field(default=None, repr=False, compare=False)

    @classmethod
    def assemble(cls, config, names, hyper, layers, tasks, records) -> "ClassificationResult":
        results = {n: MethodResult(n, hyper[n]) for n in names}
        data, missing = {}, []
        for task, record in zip(tasks, records):
            if record is None:
                missing.append({"method": task.config["method"], "seed": task.config["seed"]})
                continue
            results[task.config["method"]].runs.append(record.result["run"])
            data = data or record.result["data"]
        described = config.to_dict()
        described["layers"] = list(layers)
        data = {k: v for k, v in data.items() if k not in ("cache_reused", "split_seed")}
        return cls(config=described, data=data, results=results, missing=missing)

    def __getitem__(self, method: str) -> MethodResult:
        return self.results[method]

    @property
    def methods(self) -> list[str]:
        return list(self.results)

    def to_dict(self) -> dict:
        return jsonable({"config": self.config, "data": self.data, "methods": self.methods,
                         "partial": bool(self.missing), "missing_runs": self.missing,
                         "intervals": {"accuracy": {"method": SIGNED, "confidence": 0.95, "centre": "arithmetic mean"},
                                       "loss": {"method": POSITIVE, "confidence": 0.95, "centre": "geometric mean"}},
                         "results": [r.to_dict() for r in self.results.values()]})

    def write_json(self, path) -> Path:
        write_json(path, self.to_dict())
        return Path(path)

    def csv_rows(self) -> list[dict]:
        """One row per method and epoch: every metric's centre and 95 % interval, and the runs it is over."""
        rows = []
        for name, result in self.results.items():
            curves = {m: result.curve(m) for m in METRICS}
            for epoch in range(result.epochs + 1):
                row = {"method": name, "epoch": epoch, "runs": curves["test_accuracy"][epoch]["n"]}
                for m in METRICS:
                    c = curves[m][epoch]
                    row.update({m: c["mean"], f"{m}_ci_low": c["low"], f"{m}_ci_high": c["high"]})
                rows.append(row)
        return rows

    def write_csv(self, path) -> Path:
        rows = self.csv_rows()
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["method"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
        return path

    def table(self) -> list[dict]:
        """Per method: final test accuracy (mean, interval), epochs, seconds per run, failures."""
        out = []
        for name, r in self.results.items():
            acc = r.final("test_accuracy")
            out.append({"method": name, "test_accuracy": acc["mean"], "low": acc["low"], "high": acc["high"],
                        "seeds": len(r.runs), "epochs": r.epochs, "seconds": r.seconds["mean"], "failed": r.n_failed})
        return out
