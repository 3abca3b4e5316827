"""Robust Sherman–Morrison update (thesis Algorithm 4.1) and robust weight initialisation (section 4.2.3).

With exact inverses the feedback mapping needs ``W^{-1}``. When ``W`` changes by a
rank-one update ``u v^T`` (a TP update with batch size 1, eq. 4.12) the inverse is
updated in ``O(n^2)`` by the Sherman–Morrison formula (eq. 4.19)::

    (W + u v^T)^{-1} = W^{-1} - W^{-1} u v^T W^{-1} / (1 + d),   d = v^T W^{-1} u.

The update is unstable when ``|1 + d|`` is small, which correlates with ``W + u v^T``
being close to singular (figure 5.5). Algorithm 4.1 clips the denominator to ``eps``
and rescales the weight step by ``beta = 1 / (eps - d)`` (eq. 4.80), so the kept
inverse stays the exact inverse of the rescaled update.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .validation import check_int, check_positive
from .errors import SingularWeightError


@dataclass(frozen=True)
class ShermanMorrisonRecord:
    """What one robust Sherman–Morrison update did.

    Attributes
    ----------
    d : float
        ``v^T W^{-1} u`` before the update.
    denominator : float
        ``1 + d``, the Sherman–Morrison denominator.
    clipped : bool
        Whether ``|1 + d| < eps`` fired the robust branch.
    beta : float
        Scale applied to the weight step (1 unless clipped; ``1 / (eps - d)`` otherwise).
    """

    d: float
    denominator: float
    clipped: bool
    beta: float


def robust_step(d: float, epsilon: float) -> ShermanMorrisonRecord:
    """The decision of Algorithm 4.1 for ``d = v^T W^{-1} u``: clip when ``|1 + d| < eps``.

    When clipped, the weight step ``u v^T`` is scaled by ``beta = 1 / (eps - d)`` (eq. 4.80), which makes
    the Sherman–Morrison denominator of the scaled step equal to ``eps``; otherwise ``beta = 1``.
    """
    clipped = abs(1.0 + d) < epsilon
    return ShermanMorrisonRecord(d=d, denominator=1.0 + d, clipped=clipped,
                                 beta=1.0 / (epsilon - d) if clipped else 1.0)


def denominator_round_off(weight_inverse: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> float:
    """Rounding-error bound on the computed Sherman–Morrison denominator ``1 + v^T W^{-1} u``.

    Forming ``W^{-1} u`` and then its dot product with ``v`` in floating point commits an error of at
    most ``gamma_n |v|^T |W^{-1}| |u|`` (the standard backward-error bound of a matrix-vector and an
    inner product, ``gamma_n ~ n eps``), and the 1 adds ``eps``. The entrywise product is bounded by
    ``||v||_2 ||W^{-1}||_F ||u||_2``, which costs one read of ``W^{-1}`` and no temporary, so the bound
    used is::

        2 n eps (1 + ||v||_2 ||W^{-1}||_F ||u||_2).

    A computed denominator below it cannot be told from zero: ``W + u v^T`` is singular to working
    precision. Unlike a threshold relative to ``|d|`` alone, it scales with the magnitudes that enter
    ``d`` (a large ``W^{-1} u`` against a small ``v`` can cancel to ``d = -1`` with a large error).

    Parameters
    ----------
    weight_inverse : Tensor, shape (n, n)
    u, v : Tensor, shape (n,)

    Returns
    -------
    float
    """
    n = weight_inverse.shape[0]
    eps = torch.finfo(weight_inverse.dtype).eps
    magnitude = float(torch.linalg.vector_norm(v) * torch.linalg.vector_norm(weight_inverse)
                      * torch.linalg.vector_norm(u))
    return 2.0 * n * eps * (1.0 + magnitude)


def robust_sherman_morrison(weight: torch.Tensor, weight_inverse: torch.Tensor, u: torch.Tensor,
                            v: torch.Tensor, epsilon: float = 0.5):
    """One step of Algorithm 4.1: update ``W <- W + beta u v^T`` and its inverse.

    Parameters
    ----------
    weight : Tensor, shape (n, n)
        Current weight ``W``.
    weight_inverse : Tensor, shape (n, n)
        Current ``W^{-1}``.
    u : Tensor, shape (n,)
        Left factor of the rank-one step (``u_i = -eta_i D_{s_i} (h_i - hat h_i)``, eq. 4.17).
    v : Tensor, shape (n,)
        Right factor (``v_i = h_{i-1}``, eq. 4.18).
    epsilon : float
        Threshold ``eps`` on ``|1 + d|``; the thesis uses 0.5 (figure 5.7) and 0.1 (figure 5.5).
        ``epsilon = 0`` gives the plain Sherman–Morrison update.

    Returns
    -------
    new_weight : Tensor, shape (n, n)
    new_inverse : Tensor, shape (n, n)
    record : ShermanMorrisonRecord
    """
    new_weight, new_inverse = weight.clone(), weight_inverse.clone()
    record = robust_sherman_morrison_(new_weight, new_inverse, u, v, epsilon)
    return new_weight, new_inverse, record


def singular_value_product(matrix: torch.Tensor) -> float:
    """``sigma_min * sigma_max`` of a matrix (the robustness measure of section 4.2.3)."""
    s = torch.linalg.svdvals(matrix)
    return float(s.max() * s.min())


def robust_gaussian_matrix(rows: int, cols: int, *, threshold: float = 0.4, scale: float = 1.0,
                           generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                           max_tries: int = 1000) -> torch.Tensor:
    """Draw ``scale * G`` with ``G`` standard normal, redrawing until ``sigma_min(G) sigma_max(G) > threshold``.

    This is initialisation method 1 of section 4.2.3 with the product criterion the thesis
    recommends (0.4 in sections 5.1.2 and 5.1.3). The criterion is applied to the
    unscaled draw ``G``: for an ``n x n`` standard normal matrix ``sigma_min ~ 1/sqrt(n)`` and
    ``sigma_max ~ 2 sqrt(n)``, so the product is O(1) for every ``n`` and the acceptance rate
    (about 80 % for 0.4) does not fall with the layer size, unlike a threshold on
    ``sigma_min`` alone.

    Parameters
    ----------
    rows, cols : int
        Shape of the matrix.
    threshold : float
        Required ``sigma_min * sigma_max`` of ``G``; 0 accepts the first draw.
    scale : float
        Multiplier applied after the test (e.g. ``1 / sqrt(cols)``).
    generator : torch.Generator, optional
        Source of randomness (for reproducibility).
    max_tries : int
        Number of draws before giving up.

    Raises
    ------
    SingularWeightError
        If no draw passes in ``max_tries`` attempts.
    """
    check_int("rows", rows, minimum=1)
    check_int("cols", cols, minimum=1)
    threshold = check_positive("threshold", threshold, allow_zero=True)
    for _ in range(max_tries):
        g = torch.randn(rows, cols, generator=generator, dtype=dtype)
        if threshold == 0 or singular_value_product(g) > threshold:
            return scale * g
    raise SingularWeightError(
        f"No {rows}x{cols} Gaussian draw had sigma_min * sigma_max > {threshold} in {max_tries} tries; "
        "lower the threshold (init_threshold) or raise max_tries."
    )


def robust_sherman_morrison_(weight: torch.Tensor, weight_inverse: torch.Tensor, u: torch.Tensor,
                             v: torch.Tensor, epsilon: float = 0.5) -> ShermanMorrisonRecord:
    """In-place form of :func:`robust_sherman_morrison`: ``weight`` and ``weight_inverse`` are overwritten.

    The same step of Algorithm 4.1 with the same checks, applied as two rank-one ``addr_`` updates
    instead of building new matrices: on CPU this avoids allocating (and page-faulting) several
    ``n x n`` temporaries per step, which dominates the cost of the ``O(n^2)`` update (about 10x at
    ``n = 512``). Call it under ``torch.no_grad()`` when ``weight`` is a parameter.

    Parameters
    ----------
    weight, weight_inverse : Tensor, shape (n, n)
        ``W`` and ``W^{-1}``, overwritten by ``W + beta u v^T`` and its inverse (eq. 4.19).
    u, v, epsilon
        As for :func:`robust_sherman_morrison`.

    Returns
    -------
    ShermanMorrisonRecord
    """
    epsilon = check_positive("epsilon", epsilon, allow_zero=True)
    if u.ndim != 1 or v.ndim != 1:
        raise ValueError(
            f"Sherman-Morrison needs a rank-one step u v^T from vectors; got u of shape {tuple(u.shape)} and v of "
            f"shape {tuple(v.shape)}. A mini-batch update is not rank one: use batch size 1."
        )
    w_inv_u = weight_inverse @ u
    d = float(torch.dot(v, w_inv_u))
    record = robust_step(d, epsilon)
    denominator_used = epsilon if record.clipped else record.denominator
    bound = denominator_round_off(weight_inverse, u, v)
    if abs(denominator_used) <= bound:
        raise SingularWeightError(
            f"Sherman-Morrison denominator 1 + v^T W^-1 u = {denominator_used:.3g} is zero to round-off "
            f"(its rounding-error bound is {bound:.3g}): W + u v^T is singular. Use epsilon > 0 "
            "(Algorithm 4.1) to keep the weight invertible."
        )
    v_w_inv = v @ weight_inverse  # before weight_inverse changes
    weight_inverse.addr_(w_inv_u, v_w_inv, alpha=-1.0 / denominator_used)
    weight.addr_(u, v, alpha=record.beta)
    return record
