"""``tpdynamics reproduce``: the thesis's experiments regenerated from the public API.

Each experiment writes ``NAME.png`` and ``NAME.json``; :func:`reproduce` keeps every task's result in
``OUT/runs/`` as it finishes (reruns reuse them) and rebuilds ``REPORT.md`` from every experiment in
the folder: what the thesis states, what we measured and whether the claim holds.
"""
from . import experiments  # noqa: F401  (registers the experiments)
from .base import EXPERIMENTS, Claim, Experiment, Summary, fmt_ci, mean_ci
from .report import ExperimentRecord, ExperimentStatus, load_records, write_report
from .runner import ReproduceResult, reproduce, resolve_names

__all__ = ["experiments", "EXPERIMENTS", "Claim", "Experiment", "Summary", "fmt_ci", "mean_ci", "ExperimentRecord",
           "ExperimentStatus", "load_records", "ReproduceResult", "reproduce", "resolve_names", "write_report"]
