"""Continuous learning: the plastic network models of chapter 6 as ODE modules.

* models — :data:`CONTINUOUS_MODELS` (``single_phase``, ``two_phase``, ``multiplexed``): phases, learning
  signals and weight velocities at equilibrium (eqs. 6.17, 6.26, 6.35, 6.37, 6.58);
* flows — :class:`WeightFlow` / :func:`integrate_weights` (time-scale separated) and :class:`JointFlow` /
  :func:`integrate_joint` (neurons and weights in one torchdiffeq state, weight time constant ``tau_w``).
"""
from .flows import (JointFlow, JointTrajectory, WeightFlow, WeightTrajectory, check_phases, integrate_joint,
                    integrate_weights)
from .models import (CONTINUOUS_MODELS, ContinuousModel, LearningSignal, MultiplexedModel, PhaseStates,
                     SinglePhaseModel, TwoPhaseModel, get_model, inverse_loss_velocities, trainable_feedback,
                     velocities_from_signal)

__all__ = ["JointFlow", "JointTrajectory", "WeightFlow", "WeightTrajectory", "check_phases", "integrate_joint",
           "integrate_weights", "CONTINUOUS_MODELS", "ContinuousModel", "LearningSignal", "MultiplexedModel",
           "PhaseStates", "SinglePhaseModel", "TwoPhaseModel", "get_model", "inverse_loss_velocities",
           "trainable_feedback", "velocities_from_signal"]
