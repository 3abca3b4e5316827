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

Per sample, ``omega`` starts at 1 and is adapted from the observed rate (Hageman-Young: the rate ``r``
at ``omega`` gives ``rho^2 = (r + omega - 1)^2 / (r omega^2)``); a sample whose residual grows past
``growth`` times its best restarts from its best iterate with the over-relaxation halved, and a sample
that makes no new best in ``patience`` sweeps is handed to the next stage (its map is not contracting).
"""
from __future__ import annotations

import math

import torch

from ..validation import check_int, check_positive
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._batch import SampleBatch, nonfinite_status
from ._result import EquilibriumStatus


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
        with torch.no_grad():
            self._run(batch, initial.detach().clone(), options.tol, max_iterations)
        return batch.finish(options)

    def _layout(self, dynamics):
        """``(groups, step factors, slopes)``: the update order, ``1 / (-slope_k)`` and ``slope_k`` of each block."""
        K = len(dynamics.state_sizes)
        slopes = list(dynamics.block_slopes())
        if not self.use_groups:
            return (tuple(range(K)),), [1.0] * K, slopes
        # a block with slope near 0 (or positive) has no stable self-solve: take the plain step there
        return dynamics.sweep_groups, [1.0 / -s if s < -0.05 else 1.0 for s in slopes], slopes

    def _run(self, batch: SampleBatch, x, tol, max_iterations):
        dyn = batch.dynamics
        groups, inverse, slopes = self._layout(dyn)
        sizes = list(dyn.state_sizes)
        K = len(sizes)
        first, later = list(groups[0]), [j for g in groups[1:] for j in g]
        R, dtype = x.shape[0], x.dtype
        inf = math.inf
        # Per-row state, compacted together: the state x; the exact drive d_j of every block at x (the first
        # group's is recomputed at the start of each sweep; a later group's is (1 + slope omega / -slope) =
        # (1 - omega) times the drive it was updated with, exactly, because it depends only on itself,
        # affinely, and on earlier groups); omega and its cap; the best iterate; the safeguards' counters.
        drive = list(torch.split(dyn.evaluate(x, check=False), sizes, dim=-1))
        rows = dict(x=x, omega=torch.full((R, 1), self.initial_omega, dtype=dtype),
                    cap=torch.full((R, 1), self.max_omega if self.adaptive else 1.0, dtype=dtype),
                    best=torch.full((R,), inf, dtype=dtype), best_x=x.clone(), checked=torch.full((R,), inf, dtype=dtype),
                    since=torch.zeros(R, dtype=torch.int64), strikes=torch.zeros(R, dtype=torch.int64),
                    mark=torch.full((R,), inf, dtype=dtype))
        rows.update({f"d{j}": drive[j] for j in range(K)})
        window = 8  # the safeguards and the adaptation of omega look every `window` sweeps
        scales = factors = None
        for k in range(max_iterations + 1):
            dyn = batch.dynamics
            x = rows["x"]
            if k > 0:  # the first group's drive at the current state (at k = 0 it came with the full drive)
                for j, d in zip(first, dyn.evaluate_group(list(torch.split(x, sizes, dim=-1)), first, check=False)):
                    rows[f"d{j}"] = d
            drive = torch.cat([rows[f"d{j}"] for j in range(K)], -1)
            residual = torch.nan_to_num(drive.abs().amax(-1), nan=inf)
            done = residual < tol
            if bool(done.any()):
                batch.retire(done, x, EquilibriumStatus.CONVERGED, k, drive=drive)
            improved = residual < rows["best"]
            rows["best"] = best = torch.minimum(rows["best"], residual)
            rows["best_x"] = best_x = torch.where(improved.unsqueeze(-1), x, rows["best_x"])
            if batch.n_live == 0 or k == max_iterations:
                break
            omega = rows["omega"]
            reset = None
            if k % window == 0 or scales is None:
                reset = self._safeguard(batch, rows, residual, best, best_x, k, window)
                if batch.n_live == 0:
                    break
                omega = rows["omega"]
                if reset is not None:
                    x = torch.where(reset.unsqueeze(-1), best_x, x)
                scales = [omega * inverse[j] for j in range(K)]
                factors = {j: 1.0 + slopes[j] * scales[j] for j in later}
            # the sweep; a restarted row skips the first group (its drive was taken before the restart)
            blocks = list(torch.split(x, sizes, dim=-1))
            for j in first:
                scale = scales[j] if reset is None else torch.where(reset.unsqueeze(-1), 0.0, scales[j])
                blocks[j] = torch.addcmul(blocks[j], scale, rows[f"d{j}"])
            for group in groups[1:]:
                for j, d in zip(group, dyn.evaluate_group(blocks, group, check=False)):
                    blocks[j] = torch.addcmul(blocks[j], scales[j], d)
                    rows[f"d{j}"] = factors[j] * d
            rows["x"] = torch.cat(blocks, -1)
            if batch.n_live < rows["x"].shape[0]:
                names = list(rows)
                compacted = batch.compact(*[rows[n] for n in names])
                if compacted[0].shape[0] != rows["x"].shape[0]:
                    rows = dict(zip(names, compacted))
                    scales = None  # per-row factors are rebuilt for the remaining rows
        if batch.n_live:
            batch.retire(batch.live.clone(), rows["best_x"], EquilibriumStatus.MAX_ITERATIONS, max_iterations,
                         reason=f"max_iterations={max_iterations} reached")

    def _safeguard(self, batch, rows, residual, best, best_x, k, window):
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
        nonfinite = torch.isinf(residual)
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
                                                                   rows["since"], residual)
            # a damped row goes on from where it is (a restart from its best iterate would replay the same
            # transient), and its stall count starts again
            rows["since"] = torch.where(damped, 0, rows["since"])
        rows["omega"] = omega
        return reset if bool(reset.any()) else None

    @staticmethod
    def _adapt(omega, cap, best, mark, window, since, residual):
        """Hageman-Young: raise ``omega`` towards the optimum the observed rate implies; damp it on a stall.

        ``rate`` is the reduction of the best residual per sweep over the last window. At ``omega`` a rate
        ``r`` means ``rho^2 = (r + omega - 1)^2 / (r omega^2)`` for the Jacobi iteration, hence
        ``omega_opt = 2 / (1 + sqrt(1 - rho^2))``; it is taken only while ``r`` is clearly slower than
        ``omega - 1`` (the rate at the optimum) and only upwards, below ``cap``. A row that stalls at
        ``omega > 1.05`` (oscillation across kinks, complex eigenvalues) has its ``omega`` and ``cap`` moved
        halfway back to 1. Returns ``(omega, cap, mark, damped rows)``.
        """
        rate = ((best / mark.clamp_min(1e-300)).clamp(1e-12, 1.0) ** (1.0 / window)).unsqueeze(-1)
        progress = rate < 0.999  # a window without a new best is a transient or a stall, not a rate
        rho2 = ((rate + omega - 1.0) ** 2 / (rate * omega ** 2)).clamp(0.0, 0.9999)
        target = 2.0 / (1.0 + torch.sqrt(1.0 - rho2))
        raise_ = progress & (rate > 1.2 * (omega - 1.0)) & (target > omega)
        omega = torch.where(raise_, torch.minimum(target, cap), omega)
        # a (nearly) plain sweep that makes no progress for a window is a slow, non-normal transient, which
        # over-relaxation shortens too: start at 1.5 (the stall rule below takes it back if it oscillates)
        omega = torch.where(~progress & (omega <= 1.05), torch.minimum(torch.full_like(omega, 1.5), cap), omega)
        # stalled: no new best for 4 windows while the residual hovers near the best (an oscillation), or for
        # 16 windows whatever it does (a transient grows the residual far above its best, and passes)
        stuck = (since >= 4 * window) & (residual < 3.0 * best) | (since >= 16 * window)
        damp = stuck.unsqueeze(-1) & (omega > 1.05)
        omega = torch.where(damp, 1.0 + 0.5 * (omega - 1.0), omega)
        cap = torch.where(damp, 1.0 + 0.5 * (cap - 1.0), cap)
        return omega, cap, best.clone(), damp.squeeze(-1)


@EQUILIBRIUM_SOLVERS.register("sor")
class SORSolver(_SweepSolver):
    """Nonlinear block Gauss-Seidel sweeps with a per-sample adaptive over-relaxation ``omega`` (see the module).

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
        Upper bound of the adapted ``omega`` in ``[1, 2)`` (default 1.8); 1 gives plain Gauss-Seidel.
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
