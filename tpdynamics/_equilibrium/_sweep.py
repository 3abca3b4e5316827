"""The fixed-point map as a stage: the plain map, and block Gauss-Seidel / SOR sweeps over the layers.

The plain map ``h <- h + drive(h) = (1-mu) f + mu g`` converges where its spectral radius ``rho`` is
below one, at the rate ``rho`` per evaluation. The mixture dynamics are block tridiagonal, so the layers
split into two groups (odd, even) that do not depend on themselves: a Gauss-Seidel sweep updates the odd
layers from the even ones and then the even layers from the new odd ones, at the cost of one evaluation.
For block-tridiagonal (consistently ordered) systems Young's theorem gives the Gauss-Seidel rate
``rho^2`` and the over-relaxed (SOR) rate ``omega - 1`` with ``omega_opt = 2 / (1 + sqrt(1 - rho^2))``
(Young, *Iterative Solution of Large Linear Systems*, 1971; Hageman & Young, *Applied Iterative
Methods*, 1981, ch. 9 for the adaptive choice of ``omega``). Unlike Anderson or Newton, a sweep keeps no
secant or Jacobian model, so the kinks of a piecewise-linear nonlinearity do not upset it.

Where the Jacobi radius has a closed form (:func:`jacobi_spectral_radius`: the mixture model with exact
inverses), every sample starts at Young's optimum ``omega*`` of it and keeps it (only the safeguards
below lower it). Otherwise ``omega`` starts at 1 and is adapted per sample from the observed rate
(Hageman-Young: the rate ``r`` at ``omega`` gives ``rho^2 = (r + omega - 1)^2 / (r omega^2)``). Either
way a sample whose residual grows past ``growth`` times its best restarts from its best iterate with the
over-relaxation halved, and a sample that makes no new best in ``patience`` sweeps is handed to the next
stage (its map is not contracting).

The per-sweep work is the sweep, the residual of every live sample (retirement the sweep it converges)
and nothing else: the best iterate and the safeguards are looked at every ``window`` sweeps.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..validation import check_int, check_positive
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._batch import SampleBatch, nonfinite_status
from ._result import EquilibriumStatus


def jacobi_spectral_radius(dynamics) -> float | None:
    """The spectral radius ``rho_J`` of the block-Jacobi iteration of the mixture model with exact inverses.

    The Jacobi map of eq. 6.5 (each layer's drive divided by ``-slope_k``, :meth:`block_slopes`) has the
    Jacobian ``M`` with blocks ``(1-mu) A_i / -s_i`` below the diagonal and ``mu A_{i+1}^{-1} / -s_i`` above,
    ``A_i = s_i'(W_i h_{i-1}) W_i`` the Jacobian of ``f_i``, wherever the feedback's Jacobian is the inverse
    of the forward one (exact inverses: at the free equilibrium, the forward pass, exactly; elsewhere
    approximately, where ``f_{i+1}`` and ``g_i`` see different points of a nonlinearity). With
    ``P_i = A_i ... A_1``, ``diag(P)^{-1} M diag(P) = T (x) I`` for the scalar tridiagonal ``L x L`` matrix
    ``T`` with ``(1-mu) / -s_i`` below and ``mu / -s_i`` above the diagonal, whatever the weights: its
    eigenvalues are those of ``M``. Without a teaching signal (``s_i = -1``)
    ``rho_J = 2 sqrt(mu (1-mu)) cos(pi / (L+1))`` (a tridiagonal Toeplitz matrix); a teaching signal
    changes the last row, and ``rho_J`` is computed from ``T`` (``O(L^3)``, cached).

    Returns ``None`` for dynamics without this structure (other models, learned or random feedback).
    """
    from ..dynamics.mixture import MixtureDynamics  # (a local import: the dynamics package imports none of this)
    from ..layers import ExactInverseFeedback

    if not isinstance(dynamics, MixtureDynamics):
        return None
    net = dynamics.network
    if not all(isinstance(net.layer(k).feedback, ExactInverseFeedback) for k in range(2, net.depth + 1)):
        return None
    return _chain_radius(float(dynamics.mu), tuple(float(s) for s in dynamics.block_slopes()))


@functools.lru_cache(maxsize=256)
def _chain_radius(mu: float, slopes: tuple) -> float:
    L = len(slopes)
    T = np.zeros((L, L))
    for i, s in enumerate(slopes):
        if i > 0:
            T[i, i - 1] = (1.0 - mu) / -s
        if i < L - 1:
            T[i, i + 1] = mu / -s
    return float(np.abs(np.linalg.eigvals(T)).max()) if L > 1 else 0.0


def optimal_omega(rho: float) -> float:
    """Young's optimal over-relaxation ``2 / (1 + sqrt(1 - rho^2))`` for a Jacobi radius ``rho < 1``."""
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho={rho} must be in [0, 1): SOR has no optimal omega where the Jacobi map diverges.")
    return 2.0 / (1.0 + math.sqrt(1.0 - rho * rho))


class _SweepSolver(EquilibriumSolver):
    """Shared loop of the plain map (one group, ``omega = 1``) and of block SOR (the dynamics' groups)."""

    default_max_iterations = 10_000
    patience = 1000
    growth = 1e4
    max_omega = 1.8
    warmup = 16
    initial_omega = 1.0
    adaptive = True
    use_groups = True

    def __init__(self, *, patience: int | None = None, growth: float | None = None, max_omega: float | None = None):
        self.patience = check_int("patience", type(self).patience if patience is None else patience, minimum=1)
        self.growth = check_positive("growth", type(self).growth if growth is None else growth)
        self.max_omega = check_positive("max_omega", type(self).max_omega if max_omega is None else max_omega)
        if not 1.0 <= self.max_omega < 2.0:
            raise ValueError(f"max_omega={max_omega} must be in [1, 2): SOR diverges for omega >= 2.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(patience={self.patience}, growth={self.growth:g}, max_omega={self.max_omega:g})"

    def solve(self, dynamics, initial, options):
        max_iterations = options.max_iterations if options.max_iterations is not None else self.default_max_iterations
        batch = SampleBatch(dynamics, initial, self.name)
        batch.min_compact_entries = 2048  # a sweep is per row: a few retired rows cost less than compacting
        with torch.no_grad():
            self._run(batch, initial.detach(), options.tol, max_iterations)  # (x is never written in place)
        return batch.finish(options)

    def _layout(self, dynamics, K):
        """``(groups, step factors, slopes)``: the update order, ``1 / (-slope_k)`` and ``slope_k`` of each block."""
        slopes = list(dynamics.block_slopes())
        if not self.use_groups:
            return (tuple(range(K)),), [1.0] * K, slopes
        # a block with slope near 0 (or positive) has no stable self-solve: take the plain step there
        return dynamics.sweep_groups, [1.0 / -s if s < -0.05 else 1.0 for s in slopes], slopes

    def _start_omega(self, dynamics, slopes):
        """``(omega, tuned)``: Young's ``omega*`` of the closed-form Jacobi radius where there is one, else 1."""
        if not (self.adaptive and self.use_groups) or any(s >= -0.05 for s in slopes):
            return self.initial_omega, False
        rho = jacobi_spectral_radius(dynamics)
        if rho is None or not rho < 1.0:
            return self.initial_omega, False
        return min(optimal_omega(rho), self.max_omega), True

    def _run(self, batch: SampleBatch, x, tol, max_iterations):
        dyn = batch.dynamics
        sizes = batch.sizes
        K = len(sizes)
        groups, inverse, slopes = self._layout(dyn, K)
        first, later = list(groups[0]), [j for g in groups[1:] for j in g]
        omega0, tuned = self._start_omega(dyn, slopes)
        # Per-row state, compacted together: the state x; the exact drive d_j of every block at x (the first
        # group's is recomputed at the start of each sweep; a later group's is (1 + slope omega / -slope) =
        # (1 - omega) times the drive it was updated with, exactly, because it depends only on itself,
        # affinely, and on earlier groups); the best iterate of the window checks and its residual; from the
        # first safeguard on (`_init_rows`), omega and its cap per row and the safeguards' counters. Until
        # then every row has omega0, and the steps are plain floats (an easy problem is solved before the
        # first window ends, without any per-row book-keeping).
        drive = list(dyn.evaluate(x, check=False).split_with_sizes(sizes, dim=-1))
        rows = dict(x=x, best_x=x)
        rows.update({f"d{j}": drive[j] for j in range(K)})
        window = 8  # the best iterate, the safeguards and the adaptation of omega look every `window` sweeps
        scales = [omega0 * inverse[j] for j in range(K)]
        factors = {j: 1.0 + slopes[j] * scales[j] for j in later}
        per_row = False  # whether omega is a per-row tensor (after the first safeguard)
        for k in range(max_iterations + 1):
            dyn = batch.dynamics
            x = rows["x"]
            blocks = list(x.split_with_sizes(sizes, dim=-1))
            if k > 0:  # the first group's drive at the current state (at k = 0 it came with the full drive)
                for j, d in zip(first, dyn.evaluate_group(blocks, first, check=False)):
                    rows[f"d{j}"] = d
            drive = torch.cat([rows[f"d{j}"] for j in range(K)], -1)
            residual = drive.abs().amax(-1)  # NaN for a non-finite row
            done = residual < tol
            if bool(done.any()):
                batch.retire(done, x, EquilibriumStatus.CONVERGED, k, drive=drive)
                if batch.n_live == 0:
                    break
            reset = None
            # the best iterate, at every sweep (a sample handed on to the next stage starts there); while every
            # row improves (the common case) it is the current one, without a copy
            if k == 0:
                finite = bool(torch.isfinite(residual).all())
                best = residual if finite else torch.nan_to_num(residual, nan=math.inf)
                rows["best"] = rows["checked"] = rows["mark"] = best  # the start of the first window
                rows["best_x"] = best_x = x
            else:
                improved = residual < rows["best"]  # (False for NaN: a NaN is never the best)
                if bool(improved.all()):
                    rows["best"], rows["best_x"] = best, best_x = residual, x
                else:
                    rows["best"] = best = torch.fmin(rows["best"], residual)
                    rows["best_x"] = best_x = torch.where(improved.unsqueeze(-1), x, rows["best_x"])
            if k == max_iterations:
                break
            if (k % window == 0 and (k or not finite)) or (per_row and scales is None):
                if not per_row:
                    self._init_rows(rows, omega0, best)
                    per_row = True
                reset = self._safeguard(batch, rows, residual, best, best_x, k, window, tuned)
                if batch.n_live == 0:
                    break
                omega = rows["omega"]
                if reset is not None:
                    x = torch.where(reset.unsqueeze(-1), best_x, x)
                    blocks = list(x.split_with_sizes(sizes, dim=-1))
                scales = [omega * inverse[j] for j in range(K)]
                factors = {j: 1.0 + slopes[j] * scales[j] for j in later}
            # the sweep; a restarted row skips the first group (its drive was taken before the restart)
            for j in first:
                if per_row:
                    scale = scales[j] if reset is None else torch.where(reset.unsqueeze(-1), 0.0, scales[j])
                    blocks[j] = torch.addcmul(blocks[j], scale, rows[f"d{j}"])
                else:
                    blocks[j] = torch.add(blocks[j], rows[f"d{j}"], alpha=scales[j])
            for group in groups[1:]:
                for j, d in zip(group, dyn.evaluate_group(blocks, group, check=False)):
                    blocks[j] = torch.addcmul(blocks[j], scales[j], d) if per_row else torch.add(blocks[j], d,
                                                                                                 alpha=scales[j])
                    rows[f"d{j}"] = factors[j] * d
            rows["x"] = torch.cat(blocks, -1)
            if batch.n_live < rows["x"].shape[0]:
                names = list(rows)
                compacted = batch.compact(*[rows[n] for n in names])
                if compacted[0].shape[0] != rows["x"].shape[0]:
                    rows = dict(zip(names, compacted))
                    if per_row:
                        scales = None  # per-row factors are rebuilt for the remaining rows
        if batch.n_live:
            batch.retire(batch.live.clone(), rows["best_x"], EquilibriumStatus.MAX_ITERATIONS, max_iterations,
                         reason=f"max_iterations={max_iterations} reached")

    def _init_rows(self, rows, omega0, best):
        """The per-row omega, its cap and the safeguards' counters, at the first safeguard."""
        R, dtype, device = best.shape[0], best.dtype, best.device
        rows["omega"] = torch.full((R, 1), omega0, dtype=dtype, device=device)
        rows["cap"] = torch.full((R, 1), self.max_omega if self.adaptive else 1.0, dtype=dtype, device=device)
        rows["since"] = torch.zeros(R, dtype=torch.int64, device=device)
        rows["strikes"] = torch.zeros(R, dtype=torch.int64, device=device)
        rows.setdefault("checked", torch.full((R,), math.inf, dtype=dtype, device=device))
        rows.setdefault("mark", torch.full((R,), math.inf, dtype=dtype, device=device))

    def _safeguard(self, batch, rows, residual, best, best_x, k, window, tuned=False):
        """Every ``window`` sweeps: give up stalled rows, restart grown or non-finite ones, adapt ``omega``.

        Returns the mask of the rows restarted from their best iterate (or ``None``).
        """
        improved = best < rows["checked"]
        rows["since"] = torch.where(improved, 0, rows["since"] + window)
        rows["checked"] = best.clone()
        stalled = rows["since"] > self.patience
        if bool(stalled.any()):
            batch.retire(stalled, best_x, EquilibriumStatus.MAX_ITERATIONS, k,
                         reason=f"no smaller residual in {self.patience} iterations: the map does not contract "
                                "there (estimated spectral radius >= 1)")
        nonfinite = ~torch.isfinite(residual)
        rows["strikes"] = rows["strikes"] + nonfinite.long()
        failed = rows["strikes"] >= 3
        if bool(failed.any()):
            batch.retire(failed, best_x, nonfinite_status(bool(torch.isfinite(best_x).all())), k,
                         reason="non-finite values at every restart from the best iterate")
        omega = rows["omega"]
        # a residual that grew past growth x best under over-relaxation (or a non-finite one) restarts the
        # row from its best iterate with half the over-relaxation; never for omega = 1 (the plain sweep from
        # the best iterate would replay the same transient growth)
        reset = nonfinite | ((residual > self.growth * best) & (omega[:, 0] > 1.0))
        if bool(reset.any()):
            g = reset.unsqueeze(-1)
            omega = torch.where(g, 1.0 + 0.5 * (omega - 1.0), omega)
            rows["cap"] = torch.where(g, omega, rows["cap"])
        if self.adaptive and k == 0:
            rows["mark"] = best.clone()  # the first window starts here
        elif self.adaptive:
            omega, rows["cap"], rows["mark"], damped = self._adapt(omega, rows["cap"], best, rows["mark"], window,
                                                                   rows["since"], residual, tuned)
            # a damped row goes on from where it is (a restart from its best iterate would replay the same
            # transient), and its stall count starts again
            rows["since"] = torch.where(damped, 0, rows["since"])
        rows["omega"] = omega
        return reset if bool(reset.any()) else None

    @staticmethod
    def _adapt(omega, cap, best, mark, window, since, residual, tuned=False):
        """Hageman-Young: raise ``omega`` towards the optimum the observed rate implies; damp it on a stall.

        ``rate`` is the reduction of the best residual per sweep over the last window. At ``omega`` a rate
        ``r`` means ``rho^2 = (r + omega - 1)^2 / (r omega^2)`` for the Jacobi iteration, hence
        ``omega_opt = 2 / (1 + sqrt(1 - rho^2))``; it is taken only while ``r`` is clearly slower than
        ``omega - 1`` (the rate at the optimum) and only upwards, below ``cap``. A row that stalls at
        ``omega > 1.05`` (oscillation across kinks, complex eigenvalues) has its ``omega`` and ``cap`` moved
        halfway back to 1. ``tuned`` rows started at the closed-form optimum: they are not raised, and only a
        long stall (16 windows: the non-normal transient of a deep chain lasts a few) damps them.
        Returns ``(omega, cap, mark, damped rows)``.
        """
        if tuned:
            stuck = since >= 16 * window
        else:
            rate = ((best / mark.clamp_min(1e-300)).clamp(1e-12, 1.0) ** (1.0 / window)).unsqueeze(-1)
            progress = rate < 0.999  # a window without a new best is a transient or a stall, not a rate
            rho2 = ((rate + omega - 1.0) ** 2 / (rate * omega ** 2)).clamp(0.0, 0.9999)
            target = 2.0 / (1.0 + torch.sqrt(1.0 - rho2))
            raise_ = progress & (rate > 1.2 * (omega - 1.0)) & (target > omega)
            omega = torch.where(raise_, torch.minimum(target, cap), omega)
            # a (nearly) plain sweep that makes no progress for a window is a slow, non-normal transient, which
            # over-relaxation shortens too: start at 1.5 (the stall rule below takes it back if it oscillates)
            omega = torch.where(~progress & (omega <= 1.05), torch.minimum(torch.full_like(omega, 1.5), cap), omega)
            # stalled: no new best for 4 windows while the residual hovers near the best (an oscillation), or
            # for 16 windows whatever it does (a transient grows the residual far above its best, and passes)
            stuck = (since >= 4 * window) & (residual < 3.0 * best) | (since >= 16 * window)
        damp = stuck.unsqueeze(-1) & (omega > 1.05)
        omega = torch.where(damp, 1.0 + 0.5 * (omega - 1.0), omega)
        cap = torch.where(damp, 1.0 + 0.5 * (cap - 1.0), cap)
        return omega, cap, best.clone(), damp.squeeze(-1)


@EQUILIBRIUM_SOLVERS.register("sor")
class SORSolver(_SweepSolver):
    """Nonlinear block Gauss-Seidel sweeps with a safeguarded over-relaxation ``omega`` (see the module).

    ``omega`` starts at Young's optimum ``2 / (1 + sqrt(1 - rho_J^2))`` of the closed-form Jacobi radius
    (:func:`jacobi_spectral_radius`; the mixture model with exact inverses), capped at ``max_omega``;
    elsewhere it starts at 1 and is adapted per sample from the observed contraction.

    One evaluation of the right-hand side per sweep; the groups and each block's self-slope come from the
    dynamics (:attr:`~tpdynamics.NetworkDynamics.sweep_groups`, :meth:`~tpdynamics.NetworkDynamics.block_slopes`):
    red-black over the layers for the mixture model, block order (a forward substitution) for the
    multiplexed one, and the plain map for a dynamics that lists one group.

    Parameters
    ----------
    patience : int, optional
        Sweeps without a new smallest residual before a sample is handed on (default 1000: the residual of a
        deep, non-normal chain can grow for hundreds of sweeps before it decays).
    growth : float, optional
        A residual above ``growth`` times the sample's best restarts it from its best iterate (default 1e4:
        deep chains near ``mu = 1/2`` grow their residual 50-fold before it decays, under the plain map too).
    max_omega : float, optional
        Upper bound of ``omega`` (the closed-form start and the adapted value) in ``[1, 2)`` (default 1.8);
        1 gives plain Gauss-Seidel.
    """


@EQUILIBRIUM_SOLVERS.register("map")
class FixedPointMapSolver(_SweepSolver):
    """The plain fixed-point map ``h <- (1-mu) f + mu g`` per sample, with retirement and a contraction check.

    Converges where the spectral radius ``rho`` of the map's Jacobian ``I + tau J`` is below one, at
    rate ``rho`` per evaluation; a sample whose residual makes no new best in ``patience`` iterations
    is reported ``max_iterations`` (its ``rho`` is, in effect, at least one). The same parameters as
    :class:`SORSolver`; ``max_omega`` is ignored (no over-relaxation).
    """

    adaptive = False
    use_groups = False
