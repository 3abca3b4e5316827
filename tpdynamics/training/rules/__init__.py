"""The discrete learning rules of Appendix A, all acting in place on the same :class:`~tpdynamics.Layer` objects.

Registry :data:`LEARNING_RULES` (name -> class):

============ ====================================================== ================ ==========
name         rule                                                   feedback g_i     algorithm
============ ====================================================== ================ ==========
bp           error backpropagation, SGD                             none             A.7
bp-fixed     backpropagation training only ``W_L`` (control)        none             A.7
tp-ei        TP, exact inverses, robust Sherman–Morrison            exact            A.4
rtp-ei       randomized TP, exact inverses (one layer per step)     exact            A.5
rmtp-ei      randomized modified TP (``D^-1``), exact inverses      exact            A.6
mtp          modified TP with batch normalisation, all layers       exact or learned A.1
rmtp         randomized modified TP with batch normalisation        exact or learned A.3
tp-ai        TP, learned inverses ``Q s^-1``                         learned          A.10 + A.8
rtp-ai       randomized TP, learned inverses                        learned          A.11 + A.8
dtp-ai       difference TP, learned inverses                        learned          A.12 + A.8
rdtp-ai      randomized DTP, learned inverses                       learned          A.13 + A.8
tp-orig      original TP, ``g = s(Q h)``                             original         A.14 + A.9
rtp-orig     randomized original TP                                 original         A.15 + A.9
dtp-orig     original (simplified) DTP                              original         A.16 + A.9
rdtp-orig    randomized original DTP                                original         A.17 + A.9
fa           DTP with fixed random feedback (feedback alignment)    fixed            A.12, no A.8
============ ====================================================== ================ ==========

Conventions shared by every rule (so the discrete and the continuous models compare):

* the loss convention ``loss_convention`` (:mod:`tpdynamics.training.loss`) sets the factor ``c``:
  ``'half'`` (default): ``L = 1/2 ||h_L - y||^2`` per sample (eq. 4.40), ``c = 1``; ``'thesis'``
  (chapter 5, eqs. 5.36/5.50, and the thesis's toolbox): ``L = ||h_L - y||^2``, ``c = 2``. The output
  error is ``e_L = c (h_L - y)`` and the output target ``hat h_L = h_L - eta_hat e_L`` (eq. 4.4);
* the forward update of every TP rule is the gradient step on the local loss
  ``(c/2) ||h_i - hat h_i||^2`` (eq. 4.12), averaged over the mini-batch (Appendix A)::

      Delta W_i = -(eta_i / B) sum_b c D_{s_i}^(b) (h_i^(b) - hat h_i^(b)) h_{i-1}^(b)T

  (the modified rules use ``D_{s_i}^{-1}``); backpropagation's is
  ``Delta W_i = -(eta_i / B) sum_b delta_i^(b) h_{i-1}^(b)T`` with ``delta_L = D_{s_L} e_L`` (A.7); the
  backward weights (A.8, A.9) take no factor ``c``;
* all targets are computed from the weights before the step; then the forward weights change
  (``L`` down to 1, as in A.4), then the backward weights (A.8/A.9).

One module per family: ``_base`` (the :class:`LearningRule` contract, :data:`LEARNING_RULES`,
:class:`StepRecord`), ``_backpropagation``, ``_target_propagation``, ``_modified`` (batch
normalisation) and ``_backward_weights`` (Algorithms A.8 / A.9).
"""
from ._backpropagation import Backpropagation, BackpropagationFixedHidden
from ._backward_weights import train_backward_weights, train_original_backward_weights
from ._base import HYPERPARAMETERS, LEARNING_RULES, LearningRule, StepRecord, forward_pass, get_learning_rule
from ._modified import ModifiedTargetPropagation, RandomizedModifiedTargetPropagation
from ._target_propagation import (DifferenceTargetPropagationApproximateInverse, FeedbackAlignmentTargetPropagation,
                                  OriginalDifferenceTargetPropagation, OriginalTargetPropagation,
                                  RandomizedDifferenceTargetPropagationApproximateInverse,
                                  RandomizedModifiedTargetPropagationExactInverse,
                                  RandomizedOriginalDifferenceTargetPropagation, RandomizedOriginalTargetPropagation,
                                  RandomizedTargetPropagationApproximateInverse,
                                  RandomizedTargetPropagationExactInverse, TargetPropagationApproximateInverse,
                                  TargetPropagationExactInverse, TargetPropagationRule)

__all__ = [
    "HYPERPARAMETERS", "LEARNING_RULES", "LearningRule", "StepRecord", "forward_pass", "get_learning_rule",
    "Backpropagation", "BackpropagationFixedHidden", "TargetPropagationRule", "TargetPropagationExactInverse",
    "RandomizedTargetPropagationExactInverse", "RandomizedModifiedTargetPropagationExactInverse",
    "TargetPropagationApproximateInverse", "RandomizedTargetPropagationApproximateInverse",
    "DifferenceTargetPropagationApproximateInverse", "RandomizedDifferenceTargetPropagationApproximateInverse",
    "OriginalTargetPropagation", "RandomizedOriginalTargetPropagation", "OriginalDifferenceTargetPropagation",
    "RandomizedOriginalDifferenceTargetPropagation", "FeedbackAlignmentTargetPropagation",
    "ModifiedTargetPropagation", "RandomizedModifiedTargetPropagation", "train_backward_weights",
    "train_original_backward_weights",
]
