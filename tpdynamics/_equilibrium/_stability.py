"""The stability check of a fixed point found by an iterative stage, and the one tolerance rule for it."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..validation import check_memory
from ._result import EquilibriumResult, EquilibriumStatus, overall_status

#: How :func:`stability_tolerance` is computed, in words (quoted in reports; ``eps`` is the machine epsilon of the
#: eigenvalues' dtype).
STABILITY_TOLERANCE_RULE = "tol = sqrt(eps) * max|lambda|"


def stability_tolerance(eigenvalues):
    """The tolerance band of a stability verdict: ``sqrt(eps) * max |lambda|``.

    An eigenvalue within ``tol`` of the imaginary axis is not decided by the computed spectrum (the
    rounding error of an eigenvalue of a matrix of norm ``||J||`` is ``eps ||J|| kappa(lambda)``, and
    ``sqrt(eps)`` leaves room for a moderately ill-conditioned one). ``eps`` is the machine epsilon of
    the eigenvalues' real dtype; a spectrum that is all zeros uses ``max |lambda| = 1``.

    Parameters
    ----------
    eigenvalues : Tensor or array_like, shape (..., N)
        Eigenvalues (complex or real) along the last axis; leading axes are a batch.

    Returns
    -------
    float, ndarray or Tensor, shape (...)
        A float for one NumPy spectrum; the type of the input otherwise.
    """
    if isinstance(eigenvalues, torch.Tensor):
        radius = eigenvalues.abs().amax(-1)
        radius = torch.where(radius > 0, radius, torch.ones_like(radius))
        return math.sqrt(torch.finfo(radius.dtype).eps) * radius
    values = np.asarray(eigenvalues)
    real = values.real.dtype if np.issubdtype(values.dtype, np.inexact) else np.dtype(np.float64)
    radius = np.max(np.abs(values), axis=-1) if values.shape[-1:] != (0,) else np.zeros(values.shape[:-1])
    radius = np.where(radius > 0, radius, 1.0)
    tol = math.sqrt(float(np.finfo(real).eps)) * radius
    return float(tol) if np.ndim(tol) == 0 else tol


def spectral_abscissa(dynamics, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha, unstable)`` per sample: ``alpha_b = max Re lambda(J_b)`` and ``alpha_b >= -tol_b``.

    From the dense flow Jacobian of every sample (``O(B N^3)``), with :func:`stability_tolerance`.
    """
    batch, N = state.shape[0], dynamics.state_size
    check_memory(f"the dense flow Jacobians of check_stability for a batch of {batch} and N={N}",
                 4 * batch * N * N * (torch.finfo(dynamics.dtype).bits // 8),
                 hint="Use check_stability=False, or analysis.stability_report for one sample.")
    with torch.no_grad():
        values = torch.linalg.eigvals(dynamics.jacobian_blocks(state.detach()).to_dense())
    alpha = values.real.amax(-1)
    return alpha, alpha >= -stability_tolerance(values)


def check_fixed_point_stability(dynamics, result: EquilibriumResult) -> EquilibriumResult:
    """Set ``result.spectral_abscissa`` and mark each converged but unstable fixed point ``unstable``.

    A sample is unstable when ``alpha_b >= -tol_b`` (:func:`spectral_abscissa`); its
    :attr:`~EquilibriumResult.sample_status` becomes ``unstable``, and so does the overall status. The
    thorough report (non-normality, transient growth, sparse methods for large ``N``) is
    ``analysis.stability_report``.
    """
    alpha, unstable = spectral_abscissa(dynamics, result.state)
    result.spectral_abscissa = alpha
    flagged = [b for b, (u, s) in enumerate(zip(unstable.tolist(), result.sample_status))
               if u and s == EquilibriumStatus.CONVERGED]
    if flagged:
        for b in flagged:
            result.sample_status[b] = EquilibriumStatus.UNSTABLE
        was_success = result.success
        result.status = overall_status(result.sample_status)
        if was_success or result.status == EquilibriumStatus.UNSTABLE:
            result.message = (f"{result.message} But the fixed point is not stable for sample(s) {flagged[:10]} "
                              f"(max Re lambda = {float(alpha[flagged].max()):.3g}): the flow does not settle "
                              "there. Use solver='ode' for the attractor the dynamics reach.")
    return result
