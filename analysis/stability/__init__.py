"""Eigen-spectrum stability of the fixed points of the network dynamics (section 6.7).

One module per concept: ``_abscissa`` (the spectral-abscissa methods, registry :data:`ABSCISSA_METHODS`,
and the Jacobian forms they read), ``_nonnormality`` (transient growth and pseudospectra) and
``_report`` (:func:`stability_report` and :class:`StabilityReport`, whose figure comes from
:mod:`analysis.plotting`; plotting imports nothing from here).
"""
from ._abscissa import (ABSCISSA_METHODS, AbscissaMethod, AbscissaNotConvergedError, AbscissaProblem, ArnoldiMethod,
                        AutoMethod, ClosedFormMethod, DenseMethod, ShiftInvertMethod, Spectrum, batch_abscissae,
                        make_problem, spectral_abscissa)
from ._nonnormality import TransientGrowth, pseudospectrum, transient_growth
from ._report import MARGINAL, STABLE, UNSTABLE, StabilityReport, StabilityVerdict, stability_report

__all__ = ["STABLE", "UNSTABLE", "MARGINAL", "StabilityVerdict", "ABSCISSA_METHODS", "AbscissaMethod",
           "AbscissaNotConvergedError", "AbscissaProblem", "Spectrum", "ArnoldiMethod", "AutoMethod",
           "ClosedFormMethod", "DenseMethod", "ShiftInvertMethod", "StabilityReport", "TransientGrowth",
           "stability_report", "transient_growth", "pseudospectrum", "batch_abscissae", "spectral_abscissa",
           "make_problem"]
