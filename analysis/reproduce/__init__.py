"""``tpdynamics reproduce``: the thesis's experiments regenerated from the public API.

Each experiment writes ``NAME.png`` and ``NAME.json``; :func:`reproduce` also writes ``REPORT.md``
with, for every experiment, what the thesis states, what we measured and whether the claim holds.
"""
from . import experiments  # noqa: F401  (registers the experiments)
from .base import EXPERIMENTS, Claim, Experiment, Summary, fmt_ci, mean_ci
from .runner import ExperimentRecord, reproduce, resolve_names, write_report

__all__ = ["experiments", "EXPERIMENTS", "Claim", "Experiment", "Summary", "fmt_ci", "mean_ci", "ExperimentRecord",
           "reproduce", "resolve_names", "write_report"]
