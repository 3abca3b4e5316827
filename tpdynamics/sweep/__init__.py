"""Sweeps: a grid and random samples over training runs, from a TOML file, on any executor.

* :func:`load_sweep` / :func:`parse_sweep` — the configuration (:mod:`~tpdynamics.sweep.spec`: ``[fixed]``,
  ``[grid]``, ``[random]``; every bad key named) as a :class:`SweepSpec`;
* :func:`plan_sweep` — its points, each one ``train`` task (one method, one seed) of
  :mod:`tpdynamics.training`, checked before anything runs;
* :func:`run_sweep` — run the tasks not yet in ``OUT/runs/`` (``serial``, ``processes``, a Dask
  ``local-cluster:N`` or ``tcp://HOST:PORT``: :mod:`tpdynamics.runs`), then ``OUT/results.csv``;
* :func:`sweep_status` — done / failed / pending from the store, nothing run;
* :func:`write_results_table` — ``results.csv`` from a store (:mod:`~tpdynamics.sweep.table`).

The command line: ``tpdynamics sweep CONFIG.toml`` (``--dry-run``, ``--status``, ``--out``, ``--scheduler``).
"""
from .run import STORE_FOLDER, SweepPlan, SweepResult, plan_sweep, run_sweep, sweep_status
from .spec import DISTRIBUTIONS, PARAMETERS, SweepSpec, load_sweep, parse_sweep
from .table import METRICS, RESULTS_NAME, results_rows, write_results_table

__all__ = ["STORE_FOLDER", "SweepPlan", "SweepResult", "plan_sweep", "run_sweep", "sweep_status", "DISTRIBUTIONS",
           "PARAMETERS", "SweepSpec", "load_sweep", "parse_sweep", "METRICS", "RESULTS_NAME", "results_rows",
           "write_results_table"]
