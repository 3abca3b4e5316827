"""Spectral-abscissa methods (registry :data:`ABSCISSA_METHODS`) and the Jacobian forms they work on.

The methods are ``closed_form`` (exact inverses at a matched point: the ``L x L`` reduced matrix,
``O(L n^2)``), ``dense`` (LAPACK ``geev`` with left and right vectors), ``arnoldi`` (ARPACK
``eigs(which='LR')`` on the block-sparse matrix), ``shift_invert`` (ARPACK with a real shift right of
the spectrum) and ``auto`` (dense up to ``dense_limit`` units; above it the closed form if it applies,
else Arnoldi with shift-invert as fallback). :func:`spectral_abscissa` runs one of them alone;
:func:`batch_abscissae` computes the spectral and numerical abscissae of a whole batch at once.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
import torch

from tpdynamics.errors import TPDynamicsError
from tpdynamics.registry import Registry
from tpdynamics.validation import check_int, check_positive, check_sample

from .._jacobian import BlockJacobian
from ..spectrum import StructuredSpectrum, structured_spectrum


class AbscissaNotConvergedError(TPDynamicsError, RuntimeError):
    """The iterative eigenvalue solver (ARPACK) did not find the rightmost eigenvalues."""


@dataclass
class AbscissaProblem:
    """One Jacobian in the forms the abscissa methods need, each built only when asked for (:func:`make_problem`).

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
        restarts; at most ``N``, as ARPACK needs ``k + 1 < ncv <= N``), and a seeded start vector."""
        return {"tol": self.arpack_tol, "ncv": min(self.size, max(2 * k + 1, 30)), "v0": self.start_vector(),
                "maxiter": max(1000, 20 * self.size)}



@dataclass
class Spectrum:
    """What an abscissa method found (:meth:`AbscissaMethod.spectrum`).

    Attributes
    ----------
    eigenvalues : ndarray, complex
        The eigenvalues found: all ``N`` of them when ``complete``, else the rightmost ones.
    complete : bool
        Whether ``eigenvalues`` is the whole spectrum.
    method : str
        The method that produced them (``auto`` names the one it chose).
    left, right : ndarray, shape (N, N), optional
        Unit left and right eigenvectors as columns (dense method only; for condition numbers).
    note : str
        A remark for the report (e.g. the shift of shift-invert, a fallback taken).
    """

    eigenvalues: np.ndarray
    complete: bool
    method: str
    left: np.ndarray | None = None
    right: np.ndarray | None = None
    note: str = ""


class AbscissaMethod(abc.ABC):
    """Contract of a spectral-abscissa method (register with ``@ABSCISSA_METHODS.register(name)``).

    The one hook is :meth:`spectrum` ``(problem: AbscissaProblem) -> Spectrum``. ``problem`` gives the
    Jacobian as ``problem.dense()`` (NumPy, ``(N, N)``), ``problem.sparse()`` (SciPy CSR with the graph's
    block pattern), ``problem.operator()`` (a SciPy ``LinearOperator`` multiplying block by block) and
    ``problem.structured`` (the exact-inverse reduction, or ``None``); ``problem.numerical_abscissa()``
    is ``lambda_max((J + J^T)/2)``, computed once per problem, and ``problem.arpack_options(k)`` the
    seeded ARPACK settings. Rules:

    * return the eigenvalues found and say whether they are the whole spectrum (``complete``); the
      report takes the abscissa as the largest real part among them, so an incomplete spectrum must
      contain the rightmost eigenvalue;
    * an iterative method that fails raises :class:`AbscissaNotConvergedError`; a method that does not
      apply to the problem raises ``ValueError`` saying which method does;
    * configuration goes to ``__init__`` (a configured instance may be passed as ``method=``);
      :meth:`spectrum` keeps no state between calls.
    """

    name = "abstract"

    @abc.abstractmethod
    def spectrum(self, problem: AbscissaProblem) -> Spectrum:
        """The eigenvalues of ``problem``'s Jacobian this method finds (class docstring)."""


ABSCISSA_METHODS: Registry[type[AbscissaMethod]] = Registry("abscissa method", AbscissaMethod, "method", instances=True)


@ABSCISSA_METHODS.register("dense")
class DenseMethod(AbscissaMethod):
    """All eigenvalues with left and right eigenvectors (LAPACK ``geev``), ``O(N^3)``."""

    def spectrum(self, problem):
        values, left, right = scipy.linalg.eig(problem.dense(), left=True, right=True)
        return Spectrum(values, True, "dense", left, right)


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
        return Spectrum(s.full(), True, "closed_form")


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
        return Spectrum(np.asarray(values), False, "arnoldi")


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
        return Spectrum(np.asarray(values), False, "shift_invert", note=f"shift sigma={sigma:.6g}")


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


def map_spectral_radius(problem: AbscissaProblem, tau: float, spectrum: Spectrum) -> float:
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



def as_dense_matrix(matrix, name: str) -> np.ndarray:
    """A finite, real, square float64 NumPy matrix from a NumPy array, torch tensor or SciPy sparse matrix."""
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



def make_problem(matrix, block, sample, *, dense_limit, k, seed, match_tol, arpack_tol) -> AbscissaProblem:
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
        return AbscissaProblem(N, dense_matrix=one.to_numpy(0) if N <= dense_limit else None, jacobian=one, blocks=blocks,
                        structured=structured, k=k, seed=seed, dense_limit=dense_limit, arpack_tol=arpack_tol)
    if scipy.sparse.issparse(matrix) and matrix.shape[0] > dense_limit:
        if len(matrix.shape) != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"jacobian must be square, got shape {matrix.shape}.")
        return AbscissaProblem(matrix.shape[0], sparse_matrix=scipy.sparse.csr_matrix(matrix, dtype=float), k=k, seed=seed,
                        dense_limit=dense_limit, arpack_tol=arpack_tol)
    A = as_dense_matrix(matrix, "jacobian")
    return AbscissaProblem(A.shape[0], dense_matrix=A, k=k, seed=seed, dense_limit=dense_limit, arpack_tol=arpack_tol)



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
    method : str, AbscissaMethod subclass or instance
        As in :func:`stability_report`.
    dense_limit, k, match_tol, arpack_tol, seed
        As in :func:`stability_report`.

    Returns
    -------
    alpha : float
    method : str
        The method that produced it.
    """
    method = ABSCISSA_METHODS.create(method)
    block = None
    if isinstance(jacobian, BlockJacobian):
        block = jacobian
        sample = check_sample(sample, jacobian.batch_size)
    problem = make_problem(jacobian, block, sample, dense_limit=check_int("dense_limit", dense_limit, minimum=1),
                            k=check_int("k", k, minimum=1), seed=seed, match_tol=match_tol, arpack_tol=arpack_tol)
    spectrum = method.spectrum(problem)
    return float(np.max(np.asarray(spectrum.eigenvalues).real)), spectrum.method



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
