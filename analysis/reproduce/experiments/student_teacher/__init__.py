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

* the package's losses are the thesis's MSE, ``mean_b ||h_L - y||^2`` (eqs. 5.36, 5.50 per sample);
* the package's output error is ``e_L = h_L - y`` (the gradient of ``1/2 ||h_L - y||^2``, eq. 4.41),
  while the thesis's toolbox differentiated squared norms without the 1/2 (``2 (h_L - y)``; its
  target-propagation layers also use ``2 (h_i - hat h_i)`` for the local losses). The presets keep
  the printed rates (:data:`tpdynamics.training.THESIS_PRESETS`), so BP and the forward TP updates
  take steps half as large as the thesis's;
* no run is dropped: a run whose loss becomes non-finite stops and is counted as *diverged*. Loss
  comparisons between two methods use the ratio of their mean final test MSE over the seeds where
  both completed (the thesis's toolbox redrew any seed whose training failed, so its curves average
  such seeds only), with a paired-bootstrap interval, and every claim reports the diverged counts;
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
from ._statistics import (bootstrap_ratio_interval, curve_log_ratio, curve_mean, diagnostic_mean, early_mean,
                          final_values, late_mean, ratio_of_means, signal_row, unstable_runs, upward_movement)
from ._training import DIAGNOSTICS, METHOD_LABELS, StudentTeacherTraining

__all__ = ["StudentTeacherTraining", "StudentTeacherExactInverses", "StudentTeacherDeepApproximateInverses",
           "StudentTeacherEqualApproximateInverses", "StudentTeacherContractingApproximateInverses", "DIAGNOSTICS",
           "METHOD_LABELS", "bootstrap_ratio_interval", "curve_log_ratio", "curve_mean", "diagnostic_mean",
           "early_mean", "final_values", "late_mean", "ratio_of_means", "signal_row", "unstable_runs",
           "upward_movement"]
