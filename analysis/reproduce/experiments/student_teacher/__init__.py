"""Student–teacher non-linear regression with target propagation (thesis sections 5.1.3 and 5.2.2).

Four registered experiments, each one task per seed (a seed draws one teacher, one student
initialisation at Frobenius distance 8.0, one training and one test set; every method of the
experiment trains from that same start, :func:`tpdynamics.training.run_experiment`):

* ``fig5.7-5.8-student-teacher-ei`` — exact inverses (TP-EI, RTP-EI, RMTP-EI, BP, BP-fixed),
  batch size 1, the loss curves of figure 5.7 and the approximation error / alignment of figure 5.8;
* ``fig5.13-deep-ai`` — approximate inverses in a network with 4 hidden layers (TP-AI, RTP-AI,
  BP, BP-fixed; figure 5.13);
* ``fig5.14-5.17-equal-ai`` — approximate inverses, one hidden layer, equal sizes (6, 6, 6): TP-AI,
  DTP-AI, original TP and DTP, their randomized versions, BP and BP-fixed (figures 5.14–5.17);
* ``fig5.18-5.19-contracting-ai`` — the same methods on a contracting network (6, 6, 4)
  (figures 5.18–5.19).

Conventions that matter when comparing numbers with the thesis:

* the rules run with the thesis's loss convention (``loss_convention="thesis"``): ``L = ||h_L - y||^2`` as in
  eqs. 5.36 and 5.50 and the thesis's toolbox, so ``e_L = 2 (h_L - y)`` and the local TP gradients carry a
  factor 2 (:mod:`tpdynamics.training.loss`); the printed rates assume it;
* losses are in the unit the thesis's figures plot, the mean over samples and outputs
  (``torch.nn.MSELoss``; ``loss_unit`` in the JSON);
* two views of unstable runs: *all runs* (slot ``k`` = seed ``k``, diverged runs counted) and *as the
  thesis plotted* (a slot whose draw did not survive is redrawn with a new seed, as the toolbox's figure
  scripts did; the redraws are counted). Loss orderings are judged on the thesis's view, stability claims on
  all runs; both views are in the JSON (``methods.all_runs``, ``methods.thesis``) and the figures;
* method comparisons are paired per problem (:func:`tpdynamics.statistics.paired_comparison`): the
  per-problem log-ratio of the final test MSE, its mean with a bootstrap 95 % interval and the count of
  problems where the ordering holds; a claim holds when the interval excludes the other direction and is
  inconclusive when it straddles;
* learning-signal diagnostics (``e_approx``, cosines with ``e_TP``, ``e_GN``, ``e_BP``) are those of
  :func:`tpdynamics.training.learning_signals` for the first hidden layer, recorded every
  ``diagnostics_every`` steps, averaged per epoch, then over seeds; claims use the mean over the last
  third of the epochs each run completed.

One module per figure family (``_exact_inverses``: 5.7-5.8, ``_deep_approximate``: 5.13,
``_equal_approximate``: 5.14-5.17, ``_contracting_approximate``: 5.18-5.19), on the shared machinery of
``_training`` (:class:`StudentTeacherTraining`) and the statistics of ``_statistics``.
"""
from ._contracting_approximate import StudentTeacherContractingApproximateInverses
from ._deep_approximate import StudentTeacherDeepApproximateInverses
from ._equal_approximate import StudentTeacherEqualApproximateInverses
from ._exact_inverses import StudentTeacherExactInverses
from ._statistics import (REDRAW_STRIDE, SURVIVAL, bootstrap_ratio_interval, curve_log_ratio, curve_mean,
                          diagnostic_mean, early_mean, final_values, late_mean, paired_final, ratio_of_means,
                          signal_row, survives, unstable_runs, upward_movement, views)
from ._training import DIAGNOSTICS, METHOD_LABELS, StudentTeacherTraining

__all__ = ["StudentTeacherTraining", "StudentTeacherExactInverses", "StudentTeacherDeepApproximateInverses",
           "StudentTeacherEqualApproximateInverses", "StudentTeacherContractingApproximateInverses", "DIAGNOSTICS",
           "METHOD_LABELS", "bootstrap_ratio_interval", "curve_log_ratio", "curve_mean", "diagnostic_mean",
           "early_mean", "final_values", "late_mean", "ratio_of_means", "signal_row", "unstable_runs",
           "upward_movement", "REDRAW_STRIDE", "SURVIVAL", "paired_final", "survives", "views"]
