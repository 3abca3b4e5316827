"""Non-normality of a stable Jacobian: transient growth ``max_t ||exp(tJ)||_2`` and pseudospectra.

Neither needs the report nor the figures: both take a dense matrix and return numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from tpdynamics import stability_tolerance
from tpdynamics.validation import check_int, check_positive

from ._abscissa import as_dense_matrix


@dataclass
class TransientGrowth:
    """``G = max_{t >= 0} ||exp(tJ)||_2`` and the curve it was read from.

    Attributes
    ----------
    value : float
        ``G`` (``inf`` when ``J`` has an eigenvalue with positive real part: the norm is unbounded).
    time : float
        ``argmax_t`` (0 when ``G = 1``).
    times, norms : ndarray, shape (T,)
        ``t`` and ``||exp(tJ)||_2`` on the grid (for plots).
    bounded : bool
        False when the maximum is only over the computed window (unstable or marginal ``J``).
    method : str
        How ``G`` was obtained.
    """

    value: float
    time: float
    times: np.ndarray
    norms: np.ndarray
    bounded: bool
    method: str


def _expm_norms(A: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``||exp(t A)||_2`` for each ``t`` (stacked ``scipy.linalg.expm``, then the largest singular value)."""
    out = np.empty(len(times))
    chunk = max(1, int(2e7 // max(A.size, 1)))
    for start in range(0, len(times), chunk):
        t = times[start:start + chunk]
        E = scipy.linalg.expm(t[:, None, None] * A[None])
        out[start:start + chunk] = np.linalg.svd(E, compute_uv=False)[:, 0]
    return out


def transient_growth(matrix, *, eigenvalues=None, numerical_abscissa: float | None = None, points: int = 96,
                     tol: float | None = None) -> TransientGrowth:
    """Transient growth ``G = max_{t >= 0} ||exp(tJ)||_2`` of the linear flow ``dx/dt = J x``.

    Method: if the numerical abscissa ``omega = lambda_max((J+J^T)/2) <= 0``, then ``||exp(tJ)|| <=
    exp(omega t) <= 1`` (the logarithmic-norm bound) and ``G = 1`` exactly, at ``t = 0``. Otherwise
    ``||exp(tJ)||_2`` (``scipy.linalg.expm`` and the largest singular value) is evaluated on ``points``
    log-spaced times from ``10^-3 / max|lambda|`` to ``30 / |alpha|``, the window is extended while the
    curve has not decayed below ``10^-6`` of its maximum, and the largest grid value is refined by a
    bounded scalar maximisation (Brent) between its neighbours. A curve that is a sum of exponentials
    times polynomials is resolved by this grid; the refinement makes the maximum accurate to ~1e-10.

    Parameters
    ----------
    matrix : array_like, shape (N, N)
        ``J`` (dense).
    eigenvalues : array_like, optional
        The eigenvalues of ``J`` if already known (saves an ``eigvals``).
    numerical_abscissa : float, optional
        ``omega = lambda_max((J+J^T)/2)`` if already known (saves an ``eigvalsh``).
    points : int
        Grid size.
    tol : float, optional
        Abscissa tolerance: ``alpha > tol`` gives ``G = inf``; ``|alpha| <= tol`` (marginal) gives the
        maximum over a finite window, flagged ``bounded=False``. Default ``sqrt(eps) max|lambda|``
        (:func:`tpdynamics.stability_tolerance`).

    Returns
    -------
    TransientGrowth
    """
    A = as_dense_matrix(matrix, "matrix")
    points = check_int("points", points, minimum=8)
    values = scipy.linalg.eigvals(A) if eigenvalues is None else np.asarray(eigenvalues)
    alpha = float(np.max(values.real))
    radius = float(np.max(np.abs(values)))
    tol = stability_tolerance(values) if tol is None else check_positive("tol", tol)
    omega = (float(scipy.linalg.eigvalsh(0.5 * (A + A.T))[-1]) if numerical_abscissa is None
             else float(numerical_abscissa))
    fast = 1.0 / radius if radius > 0 else 1.0
    if alpha < -tol:
        end = 30.0 / abs(alpha)  # exp(alpha t) = 1e-13 there
    elif alpha > tol:
        end = min(30.0 / alpha, 1e4 * fast)
    else:
        end = 1e3 * fast
    times = np.concatenate([[0.0], np.geomspace(1e-3 * fast, max(end, 2e-3 * fast), points - 1)])
    norms = _expm_norms(A, times)
    if omega <= 0.0:
        return TransientGrowth(1.0, 0.0, times, norms, True,
                               "numerical abscissa <= 0, so ||exp(tJ)|| <= exp(omega t) <= 1 = ||exp(0 J)||")
    if alpha < -tol:
        for _ in range(6):  # extend until the curve has clearly decayed
            if norms[-1] < 1e-6 * norms.max():
                break
            more = np.geomspace(times[-1] * 1.5, times[-1] * 16.0, points // 4)
            times, norms = np.concatenate([times, more]), np.concatenate([norms, _expm_norms(A, more)])
    i = int(np.argmax(norms))
    value, time = float(norms[i]), float(times[i])
    if alpha > tol:
        return TransientGrowth(math.inf, math.nan, times, norms, False,
                               "alpha > 0: ||exp(tJ)|| grows without bound (curve shown over a finite window)")
    if alpha >= -tol:
        return TransientGrowth(value, time, times, norms, False,
                               f"marginal alpha: maximum over t in [0, {times[-1]:.3g}] only")
    lo, hi = times[max(i - 1, 0)], times[min(i + 1, len(times) - 1)]
    if hi > lo:
        res = scipy.optimize.minimize_scalar(lambda t: -_expm_norms(A, np.array([t]))[0], bounds=(lo, hi),
                                             method="bounded", options={"xatol": 1e-12 * max(hi, 1e-300)})
        if -res.fun > value:
            value, time = float(-res.fun), float(res.x)
    return TransientGrowth(value, time, times, norms, True,
                           f"grid of {len(times)} log-spaced times + bounded Brent refinement of the maximum")


def pseudospectrum(matrix, real, imag, *, method: str = "auto", iterations: int = 25) -> np.ndarray:
    """``sigma_min(z I - J)`` on a grid ``z = x + i y``: the epsilon-pseudospectrum is ``{z : sigma_min < epsilon}``.

    The complex Schur form ``J = Q T Q^H`` is computed once (``sigma_min`` is unitarily invariant). Then
    either the singular values of ``z I - T`` are computed (``method='svd'``, ``O(N^3)`` per point), or
    ``sigma_min`` is found by inverse iteration on ``((zI - T)^H (zI - T))^{-1}`` with two triangular
    solves per step (``method='inverse_iteration'``, ``O(N^2)`` per step, stopped when ``1/sigma_min^2``
    has converged to 10 digits; the estimate approaches ``sigma_min`` from above) — the approach of
    Trefethen & Embree, *Spectra and Pseudospectra* (2005), ch. 42. ``'auto'`` uses the SVD up to ``N = 64``.

    Parameters
    ----------
    matrix : array_like, shape (N, N)
    real : array_like, shape (X,)
    imag : array_like, shape (Y,)
    method : {'auto', 'svd', 'inverse_iteration'}
    iterations : int
        Largest number of inverse-iteration steps per grid point.

    Returns
    -------
    ndarray, shape (Y, X)
    """
    A = as_dense_matrix(matrix, "matrix")
    if method not in ("auto", "svd", "inverse_iteration"):
        raise ValueError(f"method={method!r} is not valid; use 'auto', 'svd' or 'inverse_iteration'.")
    T = scipy.linalg.schur(A, output="complex")[0]
    x, y = np.asarray(real, float), np.asarray(imag, float)
    z = (x[None, :] + 1j * y[:, None]).ravel()
    out = np.empty(z.shape)
    N = A.shape[0]
    if method == "svd" or (method == "auto" and N <= 64):
        eye = np.eye(N)
        chunk = max(1, int(4e6 // max(N * N, 1)))
        for start in range(0, len(z), chunk):
            zz = z[start:start + chunk]
            out[start:start + chunk] = np.linalg.svd(zz[:, None, None] * eye - T[None], compute_uv=False)[:, -1]
        return out.reshape(len(y), len(x))
    rng = np.random.default_rng(0)
    start_vector = rng.standard_normal(N) + 1j * rng.standard_normal(N)
    start_vector /= np.linalg.norm(start_vector)
    iterations = check_int("iterations", iterations, minimum=1)
    eye = np.eye(N)
    for i, zz in enumerate(z):
        M = zz * eye - T
        v, growth = start_vector, 0.0
        for _ in range(iterations):
            w = scipy.linalg.solve_triangular(M, v, lower=False, check_finite=False)
            w = scipy.linalg.solve_triangular(M, w, lower=False, trans="C", check_finite=False)
            previous, growth = growth, float(np.linalg.norm(w))
            if not math.isfinite(growth) or growth == 0.0:
                break
            v = w / growth
            if abs(growth - previous) <= 1e-10 * growth:  # converged: 1/sigma_min^2 to 10 digits
                break
        out[i] = 1.0 / math.sqrt(growth) if math.isfinite(growth) and growth > 0 else 0.0
    return out.reshape(len(y), len(x))

