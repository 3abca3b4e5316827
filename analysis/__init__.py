"""Analysis layer of tpdynamics: Jacobians, spectra, stability reports and figures.

``analysis`` reads networks and dynamics through the public API of ``tpdynamics`` and is
never imported by it.

Public API (thesis section 6.7):

* Jacobians ``d(dh/dt)/dh`` — :func:`jacobian` (assembled, :class:`BlockJacobian`),
  :func:`autograd_jacobian`, :func:`block_pattern`; symbolic — :func:`symbolic_dynamics`,
  :func:`symbolic_jacobian`, :func:`derive_exact_inverse_spectrum`;
* closed forms — :func:`exact_inverse_eigenvalues`, :func:`exact_inverse_spectrum`,
  :func:`structured_spectrum`;
* stability — :func:`stability_report`, :class:`StabilityReport`, :func:`transient_growth`,
  :func:`pseudospectrum`, :func:`spectral_abscissa`, :data:`ABSCISSA_METHODS`;
* the random-matrix scan of section 6.7 — :func:`stability_scan`, :func:`approximate_inverse_map`.

Modules: ``analysis._jacobian`` (private: the name ``analysis.jacobian`` is the function), ``spectrum``,
``stability`` (a package: abscissa methods, non-normality, the report), ``scan``, ``symbolic``,
``comparisons``, ``plotting``, ``training_plots`` and ``reproduce``. Only the public API of
``tpdynamics`` is used (a test walks the imports).
"""
from ._jacobian import BlockJacobian, autograd_jacobian, block_pattern, jacobian
from .spectrum import (THESIS_FORMULA, ExactInverseSpectrum, StructuredSpectrum, exact_inverse_eigenvalues,
                       exact_inverse_spectrum, reduced_tridiagonal, structured_spectrum)
from .stability import (ABSCISSA_METHODS, MARGINAL, STABLE, UNSTABLE, AbscissaMethod, AbscissaNotConvergedError,
                        AbscissaProblem, Spectrum, StabilityReport, StabilityVerdict, TransientGrowth, batch_abscissae,
                        pseudospectrum, spectral_abscissa, stability_report, transient_growth)
from .scan import InverseApproximationMap, ScanResult, approximate_inverse_map, random_jacobians, stability_scan
from .symbolic import (MAX_STATE_SIZE, ExactInverseDerivation, SymbolicDynamics, derive_exact_inverse_spectrum,
                       exact_inverse_similarity_residual, symbolic_dynamics, symbolic_jacobian)

__all__ = [
    "BlockJacobian", "autograd_jacobian", "block_pattern", "jacobian",
    "THESIS_FORMULA", "ExactInverseSpectrum", "StructuredSpectrum", "exact_inverse_eigenvalues",
    "exact_inverse_spectrum", "reduced_tridiagonal", "structured_spectrum",
    "ABSCISSA_METHODS", "MARGINAL", "STABLE", "UNSTABLE", "AbscissaMethod", "AbscissaNotConvergedError",
    "AbscissaProblem", "Spectrum", "StabilityVerdict", "StabilityReport", "TransientGrowth", "batch_abscissae", "pseudospectrum", "spectral_abscissa", "stability_report",
    "transient_growth",
    "MAX_STATE_SIZE", "ExactInverseDerivation", "SymbolicDynamics", "derive_exact_inverse_spectrum",
    "exact_inverse_similarity_residual", "symbolic_dynamics", "symbolic_jacobian",
    "InverseApproximationMap", "ScanResult", "approximate_inverse_map", "random_jacobians", "stability_scan",
]
