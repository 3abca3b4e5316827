"""Ensembles: S independent networks of one architecture trained as one stacked tensor program.

* :class:`EnsembleNetwork` — the members' weights and feedback matrices stacked along a leading
  ensemble dimension; the members stay :class:`~tpdynamics.LayeredNetwork` objects whose tensors are
  views of that storage (:mod:`tpdynamics.ensemble.network`);
* :class:`EnsembleTrainer` — one step of a discrete rule of Appendix A for all members, every
  per-member decision a mask (:mod:`tpdynamics.ensemble.step`);
* :func:`train_ensemble` and :class:`EnsembleExecutor` — the runner's loop for S seeds, and the
  executor the runner uses by default for ``seeds > 1``; :class:`EnsembleProcessExecutor` the same with
  worker processes (``jobs > 1``) (:mod:`tpdynamics.ensemble.training`);
* :class:`EnsembleMixtureDynamics`, :class:`EnsembleMultiplexedDynamics` — the network dynamics of S members
  as one batch, the members folded into it (:mod:`tpdynamics.ensemble.dynamics`);
* :class:`EnsembleContinuousModel`, :class:`EnsembleContinuousLearner`, :func:`integrate_weights_ensemble` —
  continuous learning (chapter 6) of S members, their equilibria one batched solve per phase
  (:mod:`tpdynamics.ensemble.continuous`); the classification loop for S seeds of a rule or a continuous
  network and its executor live in :mod:`tpdynamics.ensemble.classification`.
"""
from .network import EnsembleNetwork, architecture, resolve_device
from .step import FAULTS, EnsembleStep, EnsembleTrainer, ensemble_class, ensemble_support
from .training import EnsembleExecutor, EnsembleProcessExecutor, run_training_ensemble, train_ensemble
from .dynamics import EnsembleMixtureDynamics, EnsembleMultiplexedDynamics
from .continuous import (EnsembleContinuousLearner, EnsembleContinuousModel, ensemble_continuous_support,
                         integrate_weights_ensemble)


__all__ = ["EnsembleNetwork", "EnsembleStep", "EnsembleTrainer", "EnsembleExecutor", "EnsembleProcessExecutor",
           "FAULTS", "architecture", "ensemble_class", "ensemble_support", "resolve_device", "run_training_ensemble",
           "train_ensemble", "EnsembleMixtureDynamics", "EnsembleMultiplexedDynamics", "EnsembleContinuousLearner",
           "EnsembleContinuousModel", "ensemble_continuous_support", "integrate_weights_ensemble"]
