"""Ensembles: S independent networks of one architecture trained as one stacked tensor program.

* :class:`EnsembleNetwork` — the members' weights and feedback matrices stacked along a leading
  ensemble dimension; the members stay :class:`~tpdynamics.LayeredNetwork` objects whose tensors are
  views of that storage (:mod:`tpdynamics.ensemble.network`);
* :class:`EnsembleTrainer` — one step of a discrete rule of Appendix A for all members, every
  per-member decision a mask (:mod:`tpdynamics.ensemble.step`);
* :func:`train_ensemble` and :class:`EnsembleExecutor` — the runner's loop for S seeds, and the
  executor the runner uses by default for ``seeds > 1``; :class:`EnsembleProcessExecutor` the same with
  worker processes (``jobs > 1``) (:mod:`tpdynamics.ensemble.training`).
"""
from .network import EnsembleNetwork, architecture, resolve_device
from .step import FAULTS, EnsembleStep, EnsembleTrainer, ensemble_support
from .training import EnsembleExecutor, EnsembleProcessExecutor, run_training_ensemble, train_ensemble


__all__ = ["EnsembleNetwork", "EnsembleStep", "EnsembleTrainer", "EnsembleExecutor", "EnsembleProcessExecutor",
           "FAULTS", "architecture", "ensemble_support", "resolve_device", "run_training_ensemble", "train_ensemble"]
