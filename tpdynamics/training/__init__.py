"""Discrete target propagation: the learning rules of Appendix A on the same layer objects.

* rules — :class:`LearningRule` (``step(network, h0, y) -> StepRecord``), registry
  :data:`LEARNING_RULES`, backward-weight training :func:`train_backward_weights` (Alg. A.8) and
  :func:`train_original_backward_weights` (Alg. A.9);
* targets — :func:`output_target` (eq. 4.4), :func:`propagate_targets` (eqs. 3.8, 3.15);
* loss conventions — :data:`LOSS_CONVENTIONS` (``"half"``: ``1/2 ||.||^2``, eq. 4.40; ``"thesis"``:
  ``||.||^2``, eqs. 5.36/5.50 and the thesis's toolbox), :data:`LOSS_UNIT` of the reported losses;
* data — :func:`student_teacher`, :func:`toy_example`, :class:`WhiteNoise`, :class:`ColouredNoise`;
* diagnostics — :func:`learning_signals` (``e_TP``, ``e_rec``, ``e_approx``, ``e_GN``, ``e_BP``),
  :func:`gauss_newton_targets`, :func:`reconstruction_errors`, :func:`pseudo_inverse_distances`;
* classification — :func:`run_classification` (:class:`ClassificationConfig`, :mod:`.classification`),
  output losses :data:`OUTPUT_LOSSES` (``mse``, ``cross-entropy``), continuous learners :data:`CONTINUOUS_METHODS`;
* experiments — :func:`train`, :func:`compare_methods`, :func:`run_experiment`,
  :class:`TrainingConfig`, :data:`THESIS_PRESETS`.
"""
from .data import (ColouredNoise, NoiseSource, StudentTeacherProblem, WhiteNoise, mean_squared_error,
                   neighbour_matrix, student_teacher, toy_example, toy_loss_surface)
from .diagnostics import (LearningSignals, StepDiagnostics, bp_signal, gauss_newton_targets, learning_signals,
                          pseudo_inverse_distances, reconstruction_errors, reconstruction_signal,
                          sherman_morrison_summary, tp_signal)
from .loss import LOSS_CONVENTIONS, LOSS_UNIT, LossConvention, get_loss_convention
from .presets import THESIS_PRESETS, ThesisPreset, home_preset, resolve_hyperparameters
from .propagation import output_target, propagate_targets
from .rules import (LEARNING_RULES, LearningRule, StepRecord, TargetPropagationRule, get_learning_rule,
                    train_backward_weights, train_original_backward_weights)
from ..statistics import mean_and_interval
from .results import ExperimentResult, RunHistory, TrainingResult
from .runner import TrainingConfig, compare_methods, rate_schedule, run_experiment, train
from .status import TrainingStatus
from .losses import OUTPUT_LOSSES, CrossEntropy, MeanSquaredError, OutputLoss, get_output_loss, loss_output_target
from .classification import ClassificationConfig, classification_network, run_classification
from .classification_presets import CLASSIFICATION_PRESETS, TUNING_GRID
from .classification_tuning import tune
from .classification_results import ClassificationResult, MethodResult
from .continuous_methods import CONTINUOUS_METHODS, ContinuousLearner

__all__ = [
    "ColouredNoise", "NoiseSource", "StudentTeacherProblem", "WhiteNoise", "mean_squared_error", "neighbour_matrix",
    "student_teacher", "toy_example", "toy_loss_surface", "LearningSignals", "StepDiagnostics", "bp_signal",
    "gauss_newton_targets", "learning_signals", "pseudo_inverse_distances", "reconstruction_errors",
    "reconstruction_signal", "sherman_morrison_summary", "tp_signal", "THESIS_PRESETS", "ThesisPreset",
    "home_preset", "resolve_hyperparameters", "LOSS_CONVENTIONS", "LOSS_UNIT", "LossConvention",
    "get_loss_convention", "output_target", "propagate_targets", "LEARNING_RULES",
    "LearningRule", "StepRecord", "TargetPropagationRule", "get_learning_rule", "train_backward_weights",
    "train_original_backward_weights", "TrainingConfig", "ExperimentResult", "RunHistory", "TrainingResult",
    "TrainingStatus",
    "compare_methods", "mean_and_interval", "rate_schedule", "run_experiment", "train",
    # classification on real data (tpdynamics.data)
    "OUTPUT_LOSSES", "CrossEntropy", "MeanSquaredError", "OutputLoss", "get_output_loss", "loss_output_target",
    "ClassificationConfig", "classification_network", "run_classification", "CLASSIFICATION_PRESETS", "TUNING_GRID",
    "tune", "ClassificationResult", "MethodResult", "CONTINUOUS_METHODS", "ContinuousLearner",
]
