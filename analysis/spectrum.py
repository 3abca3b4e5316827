"""Closed-form spectra of the flow Jacobian with exact inverses (section 6.7).

With exact inverses the off-diagonal blocks of the Jacobian (eq. 6.40) are ``(1-mu) J_{f_{i+1}}``
below and ``mu J_{g_i} = mu J_{f_{i+1}}^{-1}`` above the diagonal (eq. 6.42). The block-diagonal
similarity ``S = diag(S_1, ..., S_L)``, ``S_1 = I``, ``S_{i+1} = J_{f_{i+1}} S_i`` turns every
lower block into ``(1-mu)/tau I`` and every upper block into ``mu/tau I``:

.. math::

    S^{-1} J S = T \\otimes I_n, \\qquad
    T = \\frac{1}{\\tau}\\operatorname{tridiag}\\big(1-\\mu,\\; (-1, \\dots, -1, -1 + \\mu c),\\; \\mu\\big),

so the spectrum is that of the ``L x L`` scalar matrix ``T``, each eigenvalue ``n`` times, **whatever
the weights**. ``c`` is the slope of the teaching signal (``0`` for a fixed target — the thesis's
case —, ``1`` for a free output, ``1 - eta_hat`` for the L2 target of eq. 6.10). ``T`` has
off-diagonal products ``mu(1-mu)/tau^2 > 0``, so it is similar to a symmetric tridiagonal matrix and
its eigenvalues are real. For ``c = 0`` it is Toeplitz and

.. math::

    \\lambda_k = \\frac{-1 + 2\\sqrt{\\mu(1-\\mu)}\\cos\\frac{k\\pi}{L+1}}{\\tau}, \\qquad k = 1, \\dots, L

(derived with sympy in :func:`analysis.symbolic.derive_exact_inverse_spectrum`). Since
``2 sqrt(mu(1-mu)) < 1`` for ``mu != 1/2``, every ``lambda_k < 0``: the fixed point is stable.

The same similarity works for any block-tridiagonal matrix whose diagonal blocks are scalar
multiples ``d_k I`` of the identity and whose off-diagonal products satisfy
``U_k L_k = gamma_k I`` (upper block times lower block): then ``T = tridiag(1, d_k, gamma_k)``.
:func:`structured_spectrum` tests this on an assembled Jacobian with random probes (cost
``O(L n^2)``, no eigendecomposition of the ``N x N`` matrix) — the exact-inverse shortcut of the
stability report. With a teaching signal the equilibrium moves off the forward pass, where
``J_{g_i}`` is evaluated at ``s^{-1}(h_{i+1})`` instead of ``W_{i+1} h_i``: the shortcut then holds
exactly only for piecewise-linear ``s`` with no unit changed side (e.g. leaky ReLU), and the probe
test says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch

from tpdynamics.validation import check_int, check_mu, check_positive, check_sample

from ._jacobian import BlockJacobian

__all__ = ["THESIS_FORMULA", "exact_inverse_eigenvalues", "reduced_tridiagonal", "exact_inverse_spectrum",
           "ExactInverseSpectrum", "StructuredSpectrum", "structured_spectrum"]

THESIS_FORMULA = "lambda_k = (-1 + 2 sqrt(mu (1 - mu)) cos(k pi / (L + 1))) / tau, k = 1..L, multiplicity n"


def exact_inverse_eigenvalues(depth: int, mu: float, tau: float = 1.0) -> np.ndarray:
    """The thesis's closed form (fixed target, ``c = 0``): ``(-1 + 2 sqrt(mu(1-mu)) cos(k pi/(L+1))) / tau``.

    Parameters
    ----------
    depth : int
        Number of layers ``L >= 1``.
    mu : float
        Mixing coefficient of eq. (6.1), in ``[0, 1)``.
    tau : float
        Neural time constant.

    Returns
    -------
    ndarray, shape (L,)
        ``lambda_k`` for ``k = 1..L`` (decreasing); each has multiplicity ``n`` in the ``N x N`` Jacobian.
    """
    depth = check_int("depth", depth, minimum=1)
    mu = check_mu(mu)
    tau = check_positive("tau", tau)
    k = np.arange(1, depth + 1)
    return (-1.0 + 2.0 * math.sqrt(mu * (1.0 - mu)) * np.cos(k * np.pi / (depth + 1))) / tau


def reduced_tridiagonal(depth: int, mu: float, tau: float = 1.0, teaching_scale: float = 0.0) -> np.ndarray:
    """The ``L x L`` scalar matrix ``T`` with ``S^{-1} J S = T kron I_n`` (module docstring; eqs. 6.40-6.42).

    Parameters
    ----------
    depth : int
        ``L``.
    mu, tau : float
        Parameters of eq. (6.1).
    teaching_scale : float
        ``c = d h_L^trgt / d h_L``.

    Returns
    -------
    ndarray, shape (L, L)
        Diagonal ``(-1, ..., -1, -1 + mu c) / tau``, sub-diagonal ``(1-mu)/tau``, super-diagonal ``mu/tau``.
    """
    depth = check_int("depth", depth, minimum=1)
    mu, tau, c = check_mu(mu), check_positive("tau", tau), _check_scale(teaching_scale)
    diagonal = np.full(depth, -1.0)
    diagonal[-1] += mu * c
    return (np.diag(diagonal) + np.diag(np.full(depth - 1, 1.0 - mu), -1)
            + np.diag(np.full(depth - 1, mu), 1)) / tau


def _check_scale(c) -> float:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        raise TypeError(f"teaching_scale must be a finite real number (the slope c = d h_L^trgt / d h_L: 0 for a "
                        f"fixed target, 1 for a free output, 1 - eta_hat for the L2 target), got {c!r}.")
    return float(c)


def _tridiagonal_eigenvalues(diagonal: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Eigenvalues of a tridiagonal matrix from its diagonal and off-diagonal products ``b_k c_k``.

    With all products ``>= 0`` the matrix is diagonally similar to the symmetric tridiagonal matrix
    with off-diagonal ``sqrt(b_k c_k)``: real eigenvalues by ``scipy.linalg.eigh_tridiagonal``.
    Otherwise the (small) matrix is solved with ``scipy.linalg.eigvals``. Sorted by decreasing real part.
    """
    if len(diagonal) == 1:
        return np.asarray(diagonal, dtype=complex)
    if np.all(products >= 0):
        values = scipy.linalg.eigh_tridiagonal(diagonal, np.sqrt(products), eigvals_only=True).astype(complex)
    else:
        t = np.diag(diagonal) + np.diag(np.ones(len(products)), -1) + np.diag(products, 1)
        values = scipy.linalg.eigvals(t)
    return values[np.argsort(-values.real, kind="stable")]


@dataclass
class ExactInverseSpectrum:
    """Spectrum of the flow Jacobian with exact inverses at a matched point.

    Attributes
    ----------
    eigenvalues : ndarray, shape (L,)
        Distinct eigenvalues (those of ``T``), real, decreasing.
    multiplicity : int
        Layer width ``n``: each eigenvalue appears ``n`` times in the ``N x N`` Jacobian.
    depth, mu, tau, teaching_scale : numbers
        ``L``, ``mu``, ``tau``, ``c``.
    """

    eigenvalues: np.ndarray
    multiplicity: int
    depth: int
    mu: float
    tau: float
    teaching_scale: float

    @property
    def abscissa(self) -> float:
        """``max_k lambda_k`` (``k = 1`` for ``c = 0``)."""
        return float(np.max(self.eigenvalues.real))

    @property
    def thesis_formula_applies(self) -> bool:
        """True for ``c = 0`` (fixed target), where ``T`` is Toeplitz and :data:`THESIS_FORMULA` holds."""
        return self.teaching_scale == 0.0

    def full(self) -> np.ndarray:
        """All ``N = L n`` eigenvalues, each repeated ``n`` times, shape ``(N,)``."""
        return np.repeat(self.eigenvalues, self.multiplicity)

    def to_dict(self) -> dict:
        """JSON-ready dictionary: the distinct eigenvalues, parameters, abscissa and the formula used."""
        return {"eigenvalues": [float(v.real) for v in self.eigenvalues], "multiplicity": self.multiplicity,
                "depth": self.depth, "mu": self.mu, "tau": self.tau, "teaching_scale": self.teaching_scale,
                "abscissa": self.abscissa,
                "formula": THESIS_FORMULA if self.thesis_formula_applies else
                "eigenvalues of T = tridiag(1-mu, (-1, ..., -1, -1 + mu c), mu) / tau, each with multiplicity n"}


def exact_inverse_spectrum(depth: int, mu: float, tau: float = 1.0, teaching_scale: float = 0.0,
                           width: int = 1) -> ExactInverseSpectrum:
    """Spectrum of the flow Jacobian with exact inverses for any teaching signal (module docstring).

    Parameters
    ----------
    depth : int
        ``L``.
    mu, tau : float
        Parameters of eq. (6.1).
    teaching_scale : float
        ``c = d h_L^trgt / d h_L`` (``dynamics.teaching.jacobian_scale``).
    width : int
        Layer width ``n`` (the multiplicity).

    Returns
    -------
    ExactInverseSpectrum
        For ``c = 0`` the eigenvalues equal :func:`exact_inverse_eigenvalues` (checked in the tests).
    """
    depth = check_int("depth", depth, minimum=1)
    mu, tau, c = check_mu(mu), check_positive("tau", tau), _check_scale(teaching_scale)
    width = check_int("width", width, minimum=1)
    diagonal = np.full(depth, -1.0 / tau)
    diagonal[-1] += mu * c / tau
    values = _tridiagonal_eigenvalues(diagonal, np.full(depth - 1, mu * (1.0 - mu) / tau ** 2))
    return ExactInverseSpectrum(values.real.copy(), width, depth, mu, tau, c)


@dataclass
class StructuredSpectrum:
    """Result of :func:`structured_spectrum` for one Jacobian.

    Attributes
    ----------
    applies : bool
        Whether the Jacobian has the structure (scalar diagonal blocks, ``U_k L_k = gamma_k I``) to the
        tolerance, so that ``eigenvalues`` is its exact spectrum.
    eigenvalues : ndarray, shape (L,), complex
        Eigenvalues of ``T = tridiag(1, d_k, gamma_k)``, by decreasing real part (each ``n`` times in ``J``).
    multiplicity : int
        Block size ``n``.
    diagonal : ndarray, shape (L,)
        ``d_k``.
    products : ndarray, shape (L-1,)
        ``gamma_k``.
    mismatch : float
        Largest relative probe residual ``||U_k L_k v - gamma_k v|| / (|gamma_k| ||v||)`` (the relative
        error of ``J_{g} J_{f} = I``) and relative deviation of the diagonal blocks from ``d_k I``.
    tolerance : float
        Threshold on ``mismatch``.
    reason : str
        Why the structure does not apply (empty if it does).
    """

    applies: bool
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0, complex))
    multiplicity: int = 0
    diagonal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    products: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mismatch: float = math.inf
    tolerance: float = 0.0
    reason: str = ""

    def full(self) -> np.ndarray:
        """All ``N`` eigenvalues (each distinct one ``n`` times), shape ``(N,)``."""
        return np.repeat(self.eigenvalues, self.multiplicity)


def structured_spectrum(jacobian, sample: int = 0, *, tol: float = 1e-9, probes: int = 4,
                        seed: int = 0) -> StructuredSpectrum:
    """The spectrum of a block-tridiagonal Jacobian through the exact-inverse similarity, if it applies.

    Tests, for one sample of an :class:`analysis.BlockJacobian` with equal square blocks, that
    every diagonal block is ``d_k I`` and every product ``U_k L_k`` of the upper block ``(k, k+1)`` and
    the lower block ``(k+1, k)`` is ``gamma_k I`` (with exact inverses, ``U_k L_k = mu (1-mu)/tau^2
    J_{g_{k+1}} J_{f_{k+2}} = mu(1-mu)/tau^2 I``, eq. 6.42). The products are probed with ``probes``
    random vectors (``O(L n^2 probes)``; a non-scalar product is missed with probability 0). If the
    structure holds, the ``N`` eigenvalues are those of the ``L x L`` matrix ``T = tridiag(1, d_k,
    gamma_k)``, each ``n`` times.

    Parameters
    ----------
    jacobian : BlockJacobian
    sample : int
        Index in the batch.
    tol : float
        Largest accepted relative mismatch. Rounding gives about ``eps * cond(J_f)`` (1e-13 for a
        Gaussian 512 x 512 ``W``); a displaced equilibrium with a smooth ``s`` gives the size of the
        displacement.
    probes : int
        Number of random probe vectors.
    seed : int
        Seed of the probes.

    Returns
    -------
    StructuredSpectrum
    """
    if not isinstance(jacobian, BlockJacobian):
        raise TypeError(f"jacobian must be an analysis.BlockJacobian (from analysis.jacobian(dynamics, state)), "
                        f"got {type(jacobian).__name__}.")
    sample = check_sample(sample, jacobian.batch_size)
    tol = check_positive("tol", tol)
    probes = check_int("probes", probes, minimum=1)
    sizes = jacobian.block_sizes
    L = jacobian.depth
    if not jacobian.is_block_tridiagonal or len(set(sizes)) != 1:
        return StructuredSpectrum(False, tolerance=tol, reason="the blocks are not equal square blocks of a "
                                                               "block-tridiagonal matrix")
    one = jacobian.select(sample)
    n = sizes[0]
    generator = torch.Generator().manual_seed(seed)
    diagonal, products, mismatch = np.zeros(L), np.zeros(max(L - 1, 0)), 0.0
    with torch.no_grad():
        for k in range(L):
            block = one.block(k, k)[0].to(torch.float64)
            d = float(torch.diagonal(block).mean())
            scale = max(float(block.abs().max()), 1e-300)
            mismatch = max(mismatch, float((block - d * torch.eye(n, dtype=block.dtype)).abs().max()) / scale)
            diagonal[k] = d
        for k in range(L - 1):
            upper, lower = one.block(k, k + 1)[0].to(torch.float64), one.block(k + 1, k)[0].to(torch.float64)
            v = torch.randn(n, probes, generator=generator, dtype=torch.float64)
            w = upper @ (lower @ v)
            gamma = float((v * w).sum() / (v * v).sum())
            error = float(torch.linalg.vector_norm(w - gamma * v) / torch.linalg.vector_norm(v))
            if bool((upper == 0).all()) or bool((lower == 0).all()):
                gamma, residual = 0.0, 0.0  # mu = 0 or a zero block: T is triangular, gamma = 0 exactly
            elif gamma == 0.0:
                residual = math.inf
            else:  # relative to gamma: the relative error of J_g J_f = I, which is what moves the spectrum
                residual = error / abs(gamma)
            products[k] = gamma
            mismatch = max(mismatch, residual)
    if not math.isfinite(mismatch) or mismatch > tol:
        return StructuredSpectrum(False, multiplicity=n, diagonal=diagonal, products=products, mismatch=mismatch,
                                  tolerance=tol, reason=f"the feedback Jacobians are not the inverses of the forward "
                                                        f"Jacobians here (relative mismatch {mismatch:.2e} > "
                                                        f"tol={tol:g})")
    values = _tridiagonal_eigenvalues(diagonal, products)
    return StructuredSpectrum(True, values, n, diagonal, products, mismatch, tol)
