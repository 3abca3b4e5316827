"""Eigen-spectrum stability reports of the fixed points of the network dynamics (section 6.7).

One entry function, :func:`stability_report`, linearises ``dh/dt = F(h)`` at a fixed point,
``d(delta h)/dt = J delta h`` with ``J = dF/dh`` (eqs. 6.39-6.40; the thesis's ``J-bar`` is
``tau J``), and returns a :class:`StabilityReport` with every figure a dynamical-systems reader
asks for, each with the criterion it uses:

* **spectral abscissa** ``alpha(J) = max Re lambda``: the fixed point of the flow is locally
  asymptotically stable iff ``alpha < 0`` (``J`` Hurwitz). Verdict ``stable`` / ``unstable`` /
  ``marginal`` with an explicit tolerance: eigenvalues within ``tol`` of the imaginary axis are
  ``marginal`` (the linearisation does not decide).
* **numerical abscissa** ``omega(J) = lambda_max((J + J^T)/2)``: ``J`` is negative definite iff
  ``omega < 0``. Section 6.7 calls the Jacobian "negative definite"; what stability needs is only
  ``alpha < 0``. ``alpha <= omega`` always, and ``omega > 0 > alpha`` means some perturbations first
  *grow* (``d||x||/dt = omega ||x||`` at ``t = 0`` for the worst ``x``) before they decay.
* **transient growth** ``G = max_{t >= 0} ||exp(tJ)||_2`` (:func:`transient_growth`): ``G = 1`` iff
  ``omega <= 0``; for non-normal ``J`` it can be huge although ``alpha < 0``.
* **non-normality**: eigenvalue condition numbers ``kappa(lambda) = 1/|y^H x|`` (unit left/right
  eigenvectors), the condition number of the eigenvector matrix (``||exp(tJ)|| <= kappa(V)
  exp(alpha t)``) and Henrici's departure from normality ``sqrt(||J||_F^2 - sum |lambda|^2)``.
* **fixed-point map** ``h <- h + tau F(h) = (1-mu) f + mu g``: its Jacobian is ``I + tau J`` and plain
  iteration converges locally iff ``rho(I + tau J) < 1``. This is a different criterion from the
  flow's (``alpha < 0``); both are reported, separately.
* **time scales**: stiffness ratio ``max |Re lambda| / min |Re lambda|``; relaxation time
  ``-1/alpha``; the predicted time for the residual to fall from its initial value ``r_0`` to a
  tolerance, ``ln(r_0/tol) / (-alpha)``, set beside the time the ODE integrator actually took.
* the **closed form** of section 6.7 (:mod:`analysis.spectrum`) beside the numerical eigenvalues
  when the feedback is exact.

Scale: the abscissa never needs a dense eigendecomposition of a large Jacobian. The methods
(registry :data:`ABSCISSA_METHODS`) are ``closed_form`` (exact inverses at a matched point: the
``L x L`` reduced matrix, ``O(L n^2)``), ``dense`` (LAPACK ``geev`` with left and right vectors),
``arnoldi`` (ARPACK ``eigs(which='LR')`` on the block-sparse matrix), ``shift_invert`` (ARPACK with
a real shift right of the spectrum) and ``auto`` (dense up to ``dense_limit`` units, so that the
numerical eigenvalues stand beside the closed form; above it the closed form if it applies, else
Arnoldi with shift-invert as fallback).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg
import torch

import tpdynamics as tp
from tpdynamics._validation import check_int, check_positive
from tpdynamics.errors import TPDynamicsError, TPDynamicsWarning
from tpdynamics.registry import Registry
from tpdynamics.serialization import write_json

from .jacobian import BlockJacobian, _check_sample, jacobian as assemble_jacobian
from .spectrum import THESIS_FORMULA, StructuredSpectrum, exact_inverse_spectrum, structured_spectrum

__all__ = ["STABLE", "UNSTABLE", "MARGINAL", "ABSCISSA_METHODS", "AbscissaMethod", "AbscissaNotConvergedError",
           "StabilityReport", "TransientGrowth", "stability_report", "transient_growth", "pseudospectrum",
           "batch_abscissae", "spectral_abscissa"]

STABLE, UNSTABLE, MARGINAL = "stable", "unstable", "marginal"
_EPS = float(np.finfo(np.float64).eps)
_TOLERANCE_RULE = "tol = sqrt(eps) * max|lambda| (eps = float64 machine epsilon)"


class AbscissaNotConvergedError(TPDynamicsError, RuntimeError):
    """The iterative eigenvalue solver (ARPACK) did not find the rightmost eigenvalues."""


# --------------------------------------------------------------------------------------------------
# the abscissa methods
# --------------------------------------------------------------------------------------------------
@dataclass
class _Problem:
    """One Jacobian in the forms the methods need, each built only when asked for.

    ``blocks`` holds ``(row_slice, column_slice, block)`` NumPy blocks of ``jacobian`` (a one-sample
    block-sparse Jacobian); the ARPACK paths then multiply block by block (``O(nnz)`` per product)
    without ever forming a sparse or dense matrix; only shift-invert needs an explicit sparse matrix (for
    its LU factorisation), exported by :meth:`BlockJacobian.to_sparse`.
    """

    size: int
    dense_matrix: np.ndarray | None = None
    sparse_matrix: object = None
    jacobian: BlockJacobian | None = None
    blocks: list | None = None
    structured: StructuredSpectrum | None = None
    k: int = 4
    seed: int = 0
    dense_limit: int = 1500
    arpack_tol: float = 1e-12
    omega: float | None = None

    def dense(self) -> np.ndarray:
        if self.dense_matrix is None:
            self.dense_matrix = self.jacobian.to_numpy(0) if self.jacobian is not None else self.sparse().toarray()
        return self.dense_matrix

    def sparse(self):
        if self.sparse_matrix is None:
            if self.jacobian is not None:
                self.sparse_matrix = self.jacobian.to_sparse(0, "csr")
            else:
                self.sparse_matrix = scipy.sparse.csr_matrix(self.dense_matrix)
        return self.sparse_matrix

    def numerical_abscissa(self) -> float:
        """``omega = lambda_max((J + J^T)/2)``, computed once: dense ``eigvalsh`` up to ``dense_limit``, else
        ARPACK ``eigsh('LA')``."""
        if self.omega is None:
            if self.dense_matrix is not None or self.size <= self.dense_limit:
                A = self.dense()
                self.omega = float(scipy.linalg.eigvalsh(0.5 * (A + A.T), subset_by_index=[self.size - 1] * 2)[0])
            else:
                try:
                    value = scipy.sparse.linalg.eigsh(self.operator("symmetric"), k=1, which="LA",
                                                      return_eigenvectors=False, **self.arpack_options(1))
                except scipy.sparse.linalg.ArpackNoConvergence as err:
                    raise AbscissaNotConvergedError(
                        f"ARPACK eigsh(which='LA') did not converge on the symmetric part: {err}") from err
                self.omega = float(value[0])
        return self.omega

    def matvec(self, x: np.ndarray) -> np.ndarray:
        if self.blocks is not None and self.dense_matrix is None:
            y = np.zeros(self.size, dtype=np.result_type(x, np.float64))
            for rows, cols, block in self.blocks:
                y[rows] += block @ x[cols]
            return y
        return (self.dense_matrix if self.dense_matrix is not None else self.sparse_matrix) @ x

    def rmatvec(self, x: np.ndarray) -> np.ndarray:
        if self.blocks is not None and self.dense_matrix is None:
            y = np.zeros(self.size, dtype=np.result_type(x, np.float64))
            for rows, cols, block in self.blocks:
                y[cols] += block.T @ x[rows]
            return y
        return (self.dense_matrix if self.dense_matrix is not None else self.sparse_matrix).T @ x

    def operator(self, kind: str = "J", tau: float = 1.0) -> scipy.sparse.linalg.LinearOperator:
        """``J``, its symmetric part ``(J + J^T)/2`` or the map ``I + tau J`` as a LinearOperator."""
        shape = (self.size, self.size)
        if kind == "J":
            return scipy.sparse.linalg.LinearOperator(shape, matvec=self.matvec, rmatvec=self.rmatvec, dtype=float)
        if kind == "symmetric":
            sym = lambda x: 0.5 * (self.matvec(x) + self.rmatvec(x))  # noqa: E731
            return scipy.sparse.linalg.LinearOperator(shape, matvec=sym, rmatvec=sym, dtype=float)
        return scipy.sparse.linalg.LinearOperator(shape, matvec=lambda x: x + tau * self.matvec(x),
                                                  rmatvec=lambda x: x + tau * self.rmatvec(x), dtype=float)

    def start_vector(self) -> np.ndarray:
        return np.random.default_rng(self.seed).standard_normal(self.size)

    def arpack_options(self, k: int) -> dict:
        """ARPACK settings: a relative tolerance (``tol=0``, machine precision, can take minutes to converge
        on the clustered spectra of exact-inverse networks), a Krylov space of at least 30 vectors (fewer
        restarts), and a seeded start vector."""
        return {"tol": self.arpack_tol, "ncv": min(self.size - 1, max(2 * k + 1, 30)), "v0": self.start_vector(),
                "maxiter": max(1000, 20 * self.size)}


@dataclass
class _Spectrum:
    eigenvalues: np.ndarray
    complete: bool
    method: str
    left: np.ndarray | None = None
    right: np.ndarray | None = None
    note: str = ""


class AbscissaMethod:
    """Contract of a spectral-abscissa method: ``spectrum(problem) -> _Spectrum``.

    ``problem`` gives the Jacobian as ``problem.dense()`` (NumPy, ``(N, N)``), ``problem.sparse()``
    (SciPy CSR with the graph's block pattern), ``problem.operator()`` (a SciPy ``LinearOperator``
    multiplying block by block) and ``problem.structured`` (the exact-inverse reduction, or ``None``);
    ``problem.numerical_abscissa()`` is ``lambda_max((J + J^T)/2)``, computed once per problem.
    A method returns the eigenvalues it found and says whether they are the whole spectrum; the report
    takes the abscissa as the largest real part among them.
    """

    name = "abstract"

    def spectrum(self, problem: _Problem) -> _Spectrum:
        raise NotImplementedError


ABSCISSA_METHODS: Registry[type[AbscissaMethod]] = Registry("abscissa method", AbscissaMethod, "method")


@ABSCISSA_METHODS.register("dense")
class DenseMethod(AbscissaMethod):
    """All eigenvalues with left and right eigenvectors (LAPACK ``geev``), ``O(N^3)``."""

    def spectrum(self, problem):
        values, left, right = scipy.linalg.eig(problem.dense(), left=True, right=True)
        return _Spectrum(values, True, "dense", left, right)


@ABSCISSA_METHODS.register("closed_form")
class ClosedFormMethod(AbscissaMethod):
    """Exact inverses at a matched point: eigenvalues of the ``L x L`` reduced matrix, each ``n`` times.

    See :func:`analysis.spectrum.structured_spectrum`; ``O(L n^2)`` to verify the structure.
    """

    def spectrum(self, problem):
        s = problem.structured
        if s is None or not s.applies:
            reason = "the Jacobian was given without its blocks" if s is None else s.reason
            raise ValueError(f"method='closed_form' needs exact inverses at a matched point, but {reason}. Use "
                             "method='auto' (dense or Arnoldi) instead.")
        return _Spectrum(s.full(), True, "closed_form")


@ABSCISSA_METHODS.register("arnoldi")
class ArnoldiMethod(AbscissaMethod):
    """The ``k`` rightmost eigenvalues by implicitly restarted Arnoldi (ARPACK ``eigs(which='LR')``)."""

    def spectrum(self, problem):
        k = min(problem.k, problem.size - 2)
        if k < 1:
            return DenseMethod().spectrum(problem)
        try:
            values = scipy.sparse.linalg.eigs(problem.operator(), k=k, which="LR", return_eigenvectors=False,
                                              **problem.arpack_options(k))
        except scipy.sparse.linalg.ArpackNoConvergence as err:
            raise AbscissaNotConvergedError(f"ARPACK (which='LR') did not converge for N={problem.size}: {err}. "
                                            "Try method='shift_invert' or method='dense'.") from err
        return _Spectrum(np.asarray(values), False, "arnoldi")


@ABSCISSA_METHODS.register("shift_invert")
class ShiftInvertMethod(AbscissaMethod):
    """The ``k`` eigenvalues nearest a real shift ``sigma`` right of the spectrum (ARPACK shift-invert).

    ``sigma = omega + 0.1 (|omega| + 1)`` with ``omega >= alpha`` the numerical abscissa; ``(J -
    sigma I)`` is factorised once with SuperLU. The nearest eigenvalues to a point right of the spectrum
    are the rightmost ones unless a complex pair with a large imaginary part lies only slightly further
    right; ``k`` eigenvalues are requested to guard against that.
    """

    def spectrum(self, problem):
        A = problem.sparse()
        k = min(problem.k, problem.size - 2)
        if k < 1:
            return DenseMethod().spectrum(problem)
        omega = problem.numerical_abscissa()
        sigma = omega + 0.1 * (abs(omega) + 1.0)
        try:
            values = scipy.sparse.linalg.eigs(scipy.sparse.csc_matrix(A), k=k, sigma=sigma, which="LM",
                                              return_eigenvectors=False, **problem.arpack_options(k))
        except scipy.sparse.linalg.ArpackNoConvergence as err:
            raise AbscissaNotConvergedError(f"ARPACK shift-invert (sigma={sigma:.3g}) did not converge for "
                                            f"N={problem.size}: {err}. Try method='dense'.") from err
        return _Spectrum(np.asarray(values), False, "shift_invert", note=f"shift sigma={sigma:.6g}")


@ABSCISSA_METHODS.register("auto")
class AutoMethod(AbscissaMethod):
    """Dense up to ``dense_limit`` units (numerical eigenvalues, set beside the closed form); above it the
    closed form if it applies, else Arnoldi, then shift-invert."""

    def spectrum(self, problem):
        if problem.size <= problem.dense_limit:
            return DenseMethod().spectrum(problem)
        if problem.structured is not None and problem.structured.applies:
            return ClosedFormMethod().spectrum(problem)
        try:
            return ArnoldiMethod().spectrum(problem)
        except AbscissaNotConvergedError as first:
            result = ShiftInvertMethod().spectrum(problem)
            result.note = f"Arnoldi failed ({first}); {result.note}"
            return result


def _map_spectral_radius(problem: _Problem, tau: float, spectrum: _Spectrum) -> float:
    """``rho(I + tau J)``: from the eigenvalues when complete (``1 + tau lambda``), else ARPACK ``eigs('LM')``."""
    if spectrum.complete:
        return float(np.max(np.abs(1.0 + tau * spectrum.eigenvalues)))
    try:
        values = scipy.sparse.linalg.eigs(problem.operator("map", tau), k=1, which="LM", return_eigenvectors=False,
                                          **problem.arpack_options(1))
    except scipy.sparse.linalg.ArpackNoConvergence as err:
        raise AbscissaNotConvergedError(
            f"ARPACK eigs(which='LM') did not converge on the map I + tau J: {err}") from err
    return float(np.max(np.abs(values)))


# --------------------------------------------------------------------------------------------------
# transient growth and pseudospectra
# --------------------------------------------------------------------------------------------------
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
        maximum over a finite window, flagged ``bounded=False``. Default ``sqrt(eps) max|lambda|``.

    Returns
    -------
    TransientGrowth
    """
    A = _as_dense_matrix(matrix, "matrix")
    points = check_int("points", points, minimum=8)
    values = scipy.linalg.eigvals(A) if eigenvalues is None else np.asarray(eigenvalues)
    alpha = float(np.max(values.real))
    radius = float(np.max(np.abs(values)))
    tol = _default_tol(values) if tol is None else check_positive("tol", tol)
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
    A = _as_dense_matrix(matrix, "matrix")
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


# --------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------
def _finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class StabilityReport:
    """Stability of a fixed point of ``dh/dt = F(h)`` from the spectrum of ``J = dF/dh`` (module docstring).

    Attributes
    ----------
    eigenvalues : ndarray, shape (M,), complex
        Eigenvalues of the flow Jacobian by decreasing real part: all ``N`` of them when
        ``eigenvalues_complete``, else the ``k`` rightmost (Arnoldi).
    eigenvalues_complete : bool
    spectral_abscissa : float
        ``alpha = max Re lambda``.
    verdict : {'stable', 'unstable', 'marginal'}
        ``alpha < -tol``, ``alpha > tol``, otherwise.
    tolerance : float
        ``tol`` of the verdict (and of ``hurwitz`` / ``negative_definite``).
    tolerance_rule : str
    hurwitz : bool
        ``alpha < -tol`` (every eigenvalue in the open left half plane): locally asymptotically stable.
    numerical_abscissa : float
        ``omega = lambda_max((J + J^T)/2)``.
    negative_definite : bool
        ``omega < -tol``: ``x^T J x < 0`` for all ``x`` (the thesis's wording in section 6.7).
    map_spectral_radius : float
        ``rho(I + tau J)``, the local contraction factor of the fixed-point iteration ``h <- (1-mu) f +
        mu g``; the iteration converges locally iff it is ``< 1`` (a separate criterion from the flow's).
    tau : float
    stiffness_ratio : float or None
        ``max |Re lambda| / min |Re lambda|`` over the eigenvalues with ``Re lambda < -tol`` (complete
        spectra only).
    relaxation_time : float or None
        ``-1/alpha`` when ``alpha < 0``.
    transient : TransientGrowth or None
        ``max_t ||exp(tJ)||_2``; ``None`` if skipped (``N > transient_limit``).
    eigenvalue_condition_numbers : ndarray or None
        ``kappa(lambda_i)`` in the order of ``eigenvalues`` (dense method only).
    eigenvector_condition : float or None
        2-norm condition number of the matrix of unit right eigenvectors.
    henrici_departure : float or None
        ``sqrt(||J||_F^2 - sum |lambda|^2)`` (0 iff ``J`` is normal); complete spectra only.
    henrici_departure_relative : float or None
        The same divided by ``||J||_F``.
    abscissa_error_bound : float or None
        First-order bound ``eps ||J||_F kappa(lambda_max)`` on the rounding error of the computed abscissa.
    closed_form : dict or None
        The exact-inverse closed form (:mod:`analysis.spectrum`) with ``matched`` (whether it is the exact
        spectrum here) and ``max_deviation`` from the numerical eigenvalues.
    method : str
        Abscissa method actually used.
    size : int
        ``N``.
    timing : dict
        ``initial_residual``, ``time_tolerance``, ``predicted_time``, ``integrator_time``,
        ``integrator_status`` (dynamics input only).
    source : dict
        What was analysed (network, ``mu``, sample, equilibrium solve).
    notes : list of str
        Interpretation and caveats, in words.
    """

    eigenvalues: np.ndarray
    eigenvalues_complete: bool
    spectral_abscissa: float
    verdict: str
    tolerance: float
    tolerance_rule: str
    numerical_abscissa: float
    map_spectral_radius: float
    tau: float
    method: str
    size: int
    stiffness_ratio: float | None = None
    transient: TransientGrowth | None = None
    eigenvalue_condition_numbers: np.ndarray | None = None
    eigenvector_condition: float | None = None
    henrici_departure: float | None = None
    henrici_departure_relative: float | None = None
    abscissa_error_bound: float | None = None
    closed_form: dict | None = None
    timing: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    _matrix: np.ndarray | None = field(default=None, repr=False)

    # -- derived criteria ----------------------------------------------------------------------
    @property
    def hurwitz(self) -> bool:
        return self.spectral_abscissa < -self.tolerance

    @property
    def negative_definite(self) -> bool:
        return self.numerical_abscissa < -self.tolerance

    @property
    def map_converges(self) -> bool:
        return self.map_spectral_radius < 1.0

    @property
    def relaxation_time(self) -> float | None:
        return -1.0 / self.spectral_abscissa if self.spectral_abscissa < 0 else None

    @property
    def transient_growth(self) -> float | None:
        return None if self.transient is None else self.transient.value

    @property
    def verdict_reliable(self) -> bool | None:
        """Whether the rounding-error bound keeps ``alpha`` on its side of the tolerance band."""
        if self.abscissa_error_bound is None:
            return None
        return self.abscissa_error_bound < max(abs(self.spectral_abscissa), self.tolerance)

    @property
    def max_eigenvalue_condition(self) -> float | None:
        if self.eigenvalue_condition_numbers is None:
            return None
        return float(np.max(self.eigenvalue_condition_numbers))

    # -- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dictionary (non-finite numbers become ``None``; see ``transient_growth_bounded``)."""
        t = self.transient
        return {
            "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues],
            "eigenvalues_complete": self.eigenvalues_complete,
            "spectral_abscissa": float(self.spectral_abscissa),
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "tolerance_rule": self.tolerance_rule,
            "hurwitz": self.hurwitz,
            "verdict_reliable": self.verdict_reliable,
            "abscissa_error_bound": _finite_or_none(self.abscissa_error_bound),
            "numerical_abscissa": float(self.numerical_abscissa),
            "negative_definite": self.negative_definite,
            "map_spectral_radius": float(self.map_spectral_radius),
            "map_converges": self.map_converges,
            "tau": self.tau,
            "stiffness_ratio": _finite_or_none(self.stiffness_ratio),
            "relaxation_time": _finite_or_none(self.relaxation_time),
            "transient_growth": None if t is None else _finite_or_none(t.value),
            "transient_growth_bounded": None if t is None else t.bounded,
            "transient_growth_time": None if t is None else _finite_or_none(t.time),
            "transient_method": None if t is None else t.method,
            "eigenvalue_condition_numbers": None if self.eigenvalue_condition_numbers is None else
            [_finite_or_none(x) for x in self.eigenvalue_condition_numbers],
            "max_eigenvalue_condition": _finite_or_none(self.max_eigenvalue_condition),
            "eigenvector_condition": _finite_or_none(self.eigenvector_condition),
            "henrici_departure": _finite_or_none(self.henrici_departure),
            "henrici_departure_relative": _finite_or_none(self.henrici_departure_relative),
            "closed_form": self.closed_form,
            "method": self.method,
            "size": self.size,
            **{k: (_finite_or_none(v) if isinstance(v, float) else v) for k, v in self.timing.items()},
            "source": self.source,
            "notes": list(self.notes),
        }

    def to_json(self, path=None) -> str:
        """The :meth:`to_dict` payload as JSON text, also written to ``path`` if given."""
        return write_json(path, self.to_dict())

    def to_text(self) -> str:
        """A human-readable summary."""
        fmt = lambda x: "n/a" if x is None else f"{x:.6g}"  # noqa: E731
        lines = [
            f"flow Jacobian: N = {self.size}, method = {self.method}, "
            f"{'all' if self.eigenvalues_complete else str(len(self.eigenvalues)) + ' rightmost'} eigenvalues",
            f"spectral abscissa alpha = {self.spectral_abscissa:.6g} -> {self.verdict.upper()} "
            f"(tol = {self.tolerance:.3g}; {self.tolerance_rule})",
            f"numerical abscissa omega = {self.numerical_abscissa:.6g} -> "
            f"{'negative definite' if self.negative_definite else 'NOT negative definite'}; "
            f"{'Hurwitz' if self.hurwitz else 'not Hurwitz'}",
            f"fixed-point map h <- h + tau F(h): rho(I + tau J) = {self.map_spectral_radius:.6g} -> plain iteration "
            f"{'converges' if self.map_converges else 'does not converge'} locally (separate from the flow criterion)",
            f"stiffness ratio = {fmt(self.stiffness_ratio)}; relaxation time -1/alpha = {fmt(self.relaxation_time)}",
        ]
        if self.timing.get("predicted_time") is not None or self.timing.get("integrator_time") is not None:
            lines.append(f"time to ||dh/dt||_inf < {self.timing.get('time_tolerance'):g} from r0 = "
                         f"{fmt(self.timing.get('initial_residual'))}: predicted "
                         f"{fmt(self.timing.get('predicted_time'))}, "
                         f"integrator {fmt(self.timing.get('integrator_time'))} "
                         f"({self.timing.get('integrator_status', 'not run')})")
        if self.transient is not None:
            lines.append(f"transient growth max_t ||exp(tJ)||_2 = {fmt(self.transient.value)} at t = "
                         f"{fmt(self.transient.time)} ({self.transient.method})")
        if self.eigenvalue_condition_numbers is not None:
            lines.append(f"non-normality: max eigenvalue condition {fmt(self.max_eigenvalue_condition)}, "
                         f"eigenvector matrix condition {fmt(self.eigenvector_condition)}, Henrici departure "
                         f"{fmt(self.henrici_departure_relative)} (relative)")
        if self.closed_form is not None:
            cf = self.closed_form
            lines.append(f"closed form (exact inverses, {'matched' if cf.get('matched') else 'NOT matched here'}): "
                         f"{', '.join(f'{v:.6g}' for v in cf['eigenvalues'])} x{cf['multiplicity']}; "
                         f"max deviation from numerical eigenvalues {fmt(cf.get('max_deviation'))}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def figure(self, *, pseudospectrum: bool = False, title: str | None = None):
        """Matplotlib ``Figure``: eigenvalues in the complex plane and the transient-growth curve.

        See :func:`analysis.plotting.stability_figure`.
        """
        from .plotting import stability_figure

        return stability_figure(self, pseudospectrum=pseudospectrum, title=title)

    def save_figure(self, path, **kwargs):
        """Write :meth:`figure` to ``path`` (PNG); returns the path (:func:`analysis.plotting.plot_stability`)."""
        from .plotting import plot_stability

        return plot_stability(self, path, **kwargs)

    @property
    def matrix(self) -> np.ndarray | None:
        """The dense Jacobian (kept when ``N <= dense_limit``; used for pseudospectra)."""
        return self._matrix


def _default_tol(values: np.ndarray) -> float:
    radius = float(np.max(np.abs(values))) if len(values) else 0.0
    return math.sqrt(_EPS) * (radius if radius > 0 else 1.0)


def _as_dense_matrix(matrix, name: str) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().to(torch.float64).numpy()
    elif scipy.sparse.issparse(matrix):
        matrix = matrix.toarray()
    elif not isinstance(matrix, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, torch tensor or SciPy sparse matrix, got "
                        f"{type(matrix).__name__}.")
    A = np.asarray(matrix)
    if np.iscomplexobj(A):
        raise TypeError(f"{name} must be real (a Jacobian of a real flow), got dtype {A.dtype}.")
    A = A.astype(np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a square 2-D matrix (N, N), got shape {A.shape}. For a batch of "
                         f"Jacobians pass one matrix, e.g. {name}[0].")
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains non-finite entries; a stability report needs a finite Jacobian.")
    return A


def _sort_by_real(values: np.ndarray, *arrays):
    order = np.lexsort((-values.imag, -values.real))
    return (values[order],) + tuple(None if a is None else a[:, order] for a in arrays)


def stability_report(dynamics=None, state=None, *, jacobian=None, sample: int = 0, tau: float | None = None,
                     method="auto", tol: float | None = None, equilibrium_tol: float = 1e-10,
                     integrate: bool | None = None, time_tolerance: float = 1e-6, t_max: float | None = None,
                     transient: bool | None = None, transient_limit: int = 500, dense_limit: int = 1500,
                     k: int = 4, match_tol: float = 1e-9, fixed_point_tol: float = 1e-6,
                     arpack_tol: float = 1e-12, seed: int = 0) -> StabilityReport:
    """Stability report of a fixed point (module docstring), from dynamics or from a Jacobian.

    Give either ``dynamics`` (and optionally ``state``) or ``jacobian``.

    Parameters
    ----------
    dynamics : NetworkDynamics, optional
        E.g. :class:`tpdynamics.MixtureDynamics`, batch ``B``.
    state : Tensor, shape (B, N), optional
        The fixed point. Default: ``tpdynamics.equilibrium(dynamics, tol=equilibrium_tol)``.
    jacobian : array_like (N, N), SciPy sparse matrix or BlockJacobian, optional
        The flow Jacobian ``J = dF/dh`` itself (e.g. a hand-made matrix). A :class:`BlockJacobian`
        keeps its block structure (closed form, sparse paths).
    sample : int
        Which sample of the batch to analyse.
    tau : float, optional
        Time constant for the fixed-point map ``I + tau J`` (default ``dynamics.tau``, or 1 for a matrix).
    method : str or AbscissaMethod subclass
        ``'auto'`` (default), ``'closed_form'``, ``'dense'``, ``'arnoldi'`` or ``'shift_invert'``
        (registry :data:`ABSCISSA_METHODS`).
    tol : float, optional
        Verdict tolerance; default ``sqrt(eps) * max|lambda|``.
    equilibrium_tol : float
        Residual tolerance of the fixed-point solve when ``state`` is not given.
    integrate : bool, optional
        Also integrate the ODE (``solver='ode'``) from the forward pass to ``time_tolerance`` and report the
        time it took beside the predicted time. Default: True with ``dynamics``; it has no effect (and
        warns) with ``jacobian``.
    time_tolerance : float
        Residual ``||dh/dt||_inf`` for the predicted and measured times.
    t_max : float, optional
        Time limit of that integration (default ``1000 tau``).
    transient : bool, optional
        Compute the transient growth (default: when ``N <= transient_limit``); needs the dense matrix.
    transient_limit, dense_limit : int
        Size limits of the transient-growth computation and of the dense path of ``method='auto'``.
    k : int
        Number of eigenvalues the Arnoldi methods compute.
    match_tol : float
        Tolerance of the exact-inverse structure test (:func:`analysis.spectrum.structured_spectrum`).
    arpack_tol : float
        Relative accuracy requested from ARPACK (sparse paths).
    fixed_point_tol : float
        A ``state`` with ``||dh/dt||_inf`` above this raises a :class:`TPDynamicsWarning` (the report then
        describes a linearisation at a non-equilibrium point).
    seed : int
        Seed of the random probe and start vectors.

    Returns
    -------
    StabilityReport

    Raises
    ------
    EquilibriumNotReachedError
        When ``state`` is not given and the fixed-point solve fails.
    AbscissaNotConvergedError
        When the iterative eigenvalue solvers fail.
    """
    method_cls = ABSCISSA_METHODS.get(method)
    dense_limit = check_int("dense_limit", dense_limit, minimum=1)
    transient_limit = check_int("transient_limit", transient_limit, minimum=1)
    k = check_int("k", k, minimum=1)
    tol = None if tol is None else check_positive("tol", tol)
    time_tolerance = check_positive("time_tolerance", time_tolerance)
    notes, source = [], {}
    block, sample_in_block = None, 0  # a dynamics' Jacobian holds the analysed sample alone
    if (dynamics is None) == (jacobian is None):
        raise ValueError("pass exactly one of dynamics= (with an optional state=) or jacobian= (a matrix); got "
                         f"{'both' if dynamics is not None else 'neither'}.")
    if dynamics is not None:
        if not isinstance(dynamics, tp.NetworkDynamics):
            raise TypeError(f"dynamics must be a tpdynamics NetworkDynamics (e.g. MixtureDynamics), got "
                            f"{type(dynamics).__name__}; to analyse a matrix, pass jacobian=...")
        sample = _check_sample(sample, dynamics.batch_size)
        tau = dynamics.tau if tau is None else check_positive("tau", tau)
        one, state, source = _fixed_point(dynamics, state, equilibrium_tol, fixed_point_tol, sample)
        block = assemble_jacobian(one, state)
    else:
        if state is not None:
            raise ValueError("state= is only used with dynamics=; a jacobian= is already evaluated at its point.")
        ignored = [name for name, value in (("integrate", integrate), ("t_max", t_max)) if value]
        if ignored:
            warnings.warn(f"{', '.join(ignored)} only apply to dynamics= input (they time the ODE integration); "
                          "with jacobian= they have no effect.", TPDynamicsWarning, stacklevel=2)
        tau = 1.0 if tau is None else check_positive("tau", tau)
        if isinstance(jacobian, BlockJacobian):
            sample = _check_sample(sample, jacobian.batch_size)
            block, sample_in_block = jacobian, sample
            source = {"input": "BlockJacobian", "sample": sample}
        else:
            source = {"input": "matrix"}
    problem = _make_problem(jacobian, block, sample_in_block, dense_limit=dense_limit, k=k, seed=seed,
                            match_tol=match_tol, arpack_tol=arpack_tol)
    structured = problem.structured
    N = problem.size

    spectrum = method_cls().spectrum(problem)
    values, left, right = _sort_by_real(np.asarray(spectrum.eigenvalues, dtype=complex), spectrum.left, spectrum.right)
    if spectrum.note:
        notes.append(spectrum.note)
    alpha = float(values.real.max())
    rule = _TOLERANCE_RULE if tol is None else "given by the caller"
    tol = _default_tol(values) if tol is None else tol
    verdict = STABLE if alpha < -tol else (UNSTABLE if alpha > tol else MARGINAL)
    omega = problem.numerical_abscissa()
    rho = _map_spectral_radius(problem, tau, spectrum)

    report = StabilityReport(
        eigenvalues=values, eigenvalues_complete=spectrum.complete, spectral_abscissa=alpha, verdict=verdict,
        tolerance=tol, tolerance_rule=rule,
        numerical_abscissa=omega, map_spectral_radius=rho, tau=tau, method=spectrum.method, size=N,
        source=source, notes=notes, _matrix=problem.dense_matrix)

    if spectrum.complete:
        decaying = -values.real[values.real < -tol]
        if decaying.size:
            report.stiffness_ratio = float(decaying.max() / decaying.min())
        if problem.dense_matrix is not None or N <= dense_limit:
            fro = float(np.linalg.norm(problem.dense(), "fro"))
            dep = math.sqrt(max(fro ** 2 - float(np.sum(np.abs(values) ** 2)), 0.0))
            report.henrici_departure = dep
            report.henrici_departure_relative = dep / fro if fro > 0 else 0.0
    if left is not None and right is not None:
        overlap = np.abs(np.einsum("ij,ij->j", left.conj(), right))
        with np.errstate(divide="ignore"):
            report.eigenvalue_condition_numbers = np.where(overlap > 0, 1.0 / overlap, np.inf)
        report.eigenvector_condition = float(np.linalg.cond(right))
        fro = float(np.linalg.norm(problem.dense(), "fro"))
        report.abscissa_error_bound = _EPS * fro * float(report.eigenvalue_condition_numbers[0])

    if transient is None:
        transient = N <= transient_limit
    if transient:
        report.transient = transient_growth(problem.dense(), eigenvalues=values if spectrum.complete else None,
                                            numerical_abscissa=omega, tol=tol)
    else:
        notes.append(f"transient growth skipped (N = {N} > transient_limit = {transient_limit}; pass transient=True)")

    if block is not None:
        report.closed_form = _closed_form(dynamics, block, structured, values if spectrum.complete else None)
    if dynamics is not None:
        report.timing = _timing(one, alpha, time_tolerance, True if integrate is None else bool(integrate), t_max)
    _interpret(report)
    return report


def _make_problem(matrix, block, sample, *, dense_limit, k, seed, match_tol, arpack_tol) -> _Problem:
    """One Jacobian (a sample of a BlockJacobian, or a plain matrix) in the forms the methods need."""
    arpack_tol = check_positive("arpack_tol", arpack_tol)
    if block is not None:
        one = block.select(sample)
        if not all(bool(torch.isfinite(b).all()) for b in one.blocks.values()):
            raise ValueError("the Jacobian has non-finite entries at this state (a feedback inverse evaluated at "
                             "the edge of its domain?); a stability report needs a finite Jacobian.")
        N = one.size
        structured = structured_spectrum(one, 0, tol=check_positive("match_tol", match_tol), seed=seed)
        off = one.offsets
        blocks = [(slice(off[r], off[r + 1]), slice(off[c], off[c + 1]), b[0].detach().cpu().to(torch.float64).numpy())
                  for (r, c), b in one.blocks.items()]
        return _Problem(N, dense_matrix=one.to_numpy(0) if N <= dense_limit else None, jacobian=one, blocks=blocks,
                        structured=structured, k=k, seed=seed, dense_limit=dense_limit, arpack_tol=arpack_tol)
    if scipy.sparse.issparse(matrix) and matrix.shape[0] > dense_limit:
        if len(matrix.shape) != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"jacobian must be square, got shape {matrix.shape}.")
        return _Problem(matrix.shape[0], sparse_matrix=scipy.sparse.csr_matrix(matrix, dtype=float), k=k, seed=seed,
                        dense_limit=dense_limit, arpack_tol=arpack_tol)
    A = _as_dense_matrix(matrix, "jacobian")
    return _Problem(A.shape[0], dense_matrix=A, k=k, seed=seed, dense_limit=dense_limit, arpack_tol=arpack_tol)


def spectral_abscissa(jacobian, *, sample: int = 0, method="auto", dense_limit: int = 1500, k: int = 4,
                      match_tol: float = 1e-9, arpack_tol: float = 1e-12, seed: int = 0) -> tuple[float, str]:
    """Only the spectral abscissa ``alpha = max Re lambda(J)``, by the structured path for large Jacobians.

    The same methods as :func:`stability_report` (``auto``: dense up to ``dense_limit``, else the closed
    form when exact inverses are matched, else Arnoldi / shift-invert on the block-sparse matrix).

    Parameters
    ----------
    jacobian : BlockJacobian, array_like (N, N) or SciPy sparse matrix
    sample : int
        Sample of a BlockJacobian batch.
    method, dense_limit, k, match_tol, arpack_tol, seed
        As in :func:`stability_report`.

    Returns
    -------
    alpha : float
    method : str
        The method that produced it.
    """
    method_cls = ABSCISSA_METHODS.get(method)
    block = None
    if isinstance(jacobian, BlockJacobian):
        block = jacobian
        sample = _check_sample(sample, jacobian.batch_size)
    problem = _make_problem(jacobian, block, sample, dense_limit=check_int("dense_limit", dense_limit, minimum=1),
                            k=check_int("k", k, minimum=1), seed=seed, match_tol=match_tol, arpack_tol=arpack_tol)
    spectrum = method_cls().spectrum(problem)
    return float(np.max(np.asarray(spectrum.eigenvalues).real)), spectrum.method


def _fixed_point(dynamics, state, equilibrium_tol, fixed_point_tol, sample):
    """The dynamics of sample ``sample`` alone and its fixed point, shape ``(1, N)``."""
    source = {"input": "dynamics", "sample": sample, **dynamics.describe()}
    if state is not None:
        dynamics.check_state(state, "state")
    one = dynamics.select([sample])
    if state is None:
        with torch.no_grad():
            result = tp.equilibrium(one, tol=check_positive("equilibrium_tol", equilibrium_tol))
        if not result.success:
            raise tp.EquilibriumNotReachedError(
                f"the fixed point of sample {sample} was not found ({result.status}: {result.message}); pass "
                "state= to analyse a given state.", result)
        source["equilibrium"] = {"solver": result.solver, "status": result.status,
                                 "residual": float(result.residual[0]), "tol": result.tol}
        return one, result.state.detach(), source
    state = state.detach()[sample:sample + 1]
    with torch.no_grad():
        residual = float(one.residual(state)[0])
    source["equilibrium"] = {"solver": "given", "residual": residual}
    if not residual <= check_positive("fixed_point_tol", fixed_point_tol):
        warnings.warn(f"state is not a fixed point of the dynamics (||dh/dt||_inf = {residual:.3g} > fixed_point_tol="
                      f"{fixed_point_tol:g} for sample {sample}); the report describes the linearisation at this "
                      "state, not the stability of an equilibrium. Omit state= to solve for the fixed point.",
                      TPDynamicsWarning, stacklevel=3)
    return one, state, source


def _closed_form(dynamics, block: BlockJacobian, structured: StructuredSpectrum, values) -> dict | None:
    """The exact-inverse closed form when the feedback is exact (or the structure holds), else None."""
    mixture = isinstance(dynamics, tp.MixtureDynamics)
    exact_forms = mixture and all(f == "exact" for f in dynamics.network.feedback_forms[1:])
    if not exact_forms and not structured.applies:
        return None
    if mixture and len(set(block.block_sizes)) == 1:
        cf = exact_inverse_spectrum(block.depth, dynamics.mu, dynamics.tau, dynamics.teaching.jacobian_scale,
                                    block.block_sizes[0]).to_dict()
    elif structured.applies:
        cf = {"eigenvalues": [float(v.real) for v in structured.eigenvalues], "multiplicity": structured.multiplicity,
              "formula": "eigenvalues of T = tridiag(1, d_k, gamma_k) from the blocks, each with multiplicity n",
              "abscissa": float(np.max(structured.eigenvalues.real))}
    else:
        return None
    cf["matched"] = bool(structured.applies)
    cf["mismatch"] = _finite_or_none(structured.mismatch)
    cf["thesis_formula"] = THESIS_FORMULA
    if values is not None:
        reference = np.asarray(cf["eigenvalues"])
        cf["max_deviation"] = float(np.max(np.min(np.abs(values[:, None] - reference[None, :]), axis=1)))
    else:
        cf["max_deviation"] = None
    if not structured.applies:
        cf["note"] = ("exact feedback, but J_g J_f != I at this state (" + structured.reason + "): the closed form "
                      "is the spectrum at the forward pass, not here")
    return cf


def _timing(one, alpha, time_tolerance, integrate, t_max) -> dict:
    with torch.no_grad():
        start = one.initial_state("forward")
        r0 = float(one.residual(start)[0])
    predicted = None
    if alpha < 0:
        predicted = max(math.log(r0 / time_tolerance), 0.0) / (-alpha) if r0 > 0 else 0.0
    out = {"initial_residual": r0, "time_tolerance": time_tolerance, "predicted_time": predicted,
           "integrator_time": None, "integrator_status": "not run"}
    if integrate:
        with torch.no_grad():
            # small check_growth: the ODE path checks the residual at geometrically spaced times, so the
            # reported time overshoots the first converged time by at most this factor
            result = tp.equilibrium(one, tol=time_tolerance, solver="ode", t_max=t_max, check_growth=1.05,
                                    check_interval=0.05 * one.tau)
        out["integrator_time"] = result.t
        out["integrator_status"] = result.status
        out["integrator_nfev"] = result.nfev
    return out


def _interpret(report: StabilityReport) -> None:
    notes = report.notes
    if report.hurwitz and not report.negative_definite:
        notes.append("Hurwitz but not negative definite: every eigenvalue has Re < 0, so the fixed point is locally "
                     "asymptotically stable, yet the symmetric part has a positive eigenvalue (omega > 0): some "
                     "perturbations grow transiently before they decay (non-normal Jacobian).")
    if report.hurwitz and report.negative_definite:
        notes.append("negative definite (omega < 0): every perturbation shrinks monotonically in the 2-norm.")
    if report.hurwitz and not report.map_converges:
        notes.append("the flow is stable but the plain fixed-point iteration h <- (1-mu) f + mu g is not a local "
                     "contraction (rho(I + tau J) >= 1): integrate the ODE or use Newton/Anderson instead.")
    if report.verdict_reliable is False:
        notes.append(f"the rounding-error bound of the computed abscissa ({report.abscissa_error_bound:.3g}) exceeds "
                     "its distance from 0: the verdict is not reliable in float64.")
    cf = report.closed_form
    if cf is not None and cf.get("matched") and cf.get("max_deviation") is not None and report.method != "closed_form":
        notes.append(f"exact inverses at a matched point: the numerical eigenvalues lie within "
                     f"{cf['max_deviation']:.2g} of the closed form.")


def batch_abscissae(jacobian) -> tuple[np.ndarray, np.ndarray]:
    """Spectral and numerical abscissae of every sample of a batch (batched ``torch.linalg``).

    Parameters
    ----------
    jacobian : BlockJacobian or Tensor, shape (B, N, N)

    Returns
    -------
    alpha, omega : ndarray, shape (B,)
        ``max Re lambda(J_b)`` and ``lambda_max((J_b + J_b^T)/2)``.
    """
    dense = jacobian.to_dense() if isinstance(jacobian, BlockJacobian) else jacobian
    if not isinstance(dense, torch.Tensor) or dense.ndim != 3 or dense.shape[-1] != dense.shape[-2]:
        got = f"shape {tuple(dense.shape)}" if isinstance(dense, torch.Tensor) else type(dense).__name__
        raise ValueError(f"jacobian must be a BlockJacobian or a (B, N, N) tensor, got {got}; for one (N, N) matrix "
                         "pass jacobian.unsqueeze(0), for a NumPy batch torch.as_tensor(jacobian).")
    dense = dense.detach().to(torch.float64)
    alpha = torch.linalg.eigvals(dense).real.amax(-1)
    omega = torch.linalg.eigvalsh(0.5 * (dense + dense.transpose(-1, -2)))[..., -1]
    return alpha.numpy(), omega.numpy()
