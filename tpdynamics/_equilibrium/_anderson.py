"""The Anderson stage: safeguarded Anderson acceleration of the fixed-point map ``h <- (1-mu) f + mu g``."""
from __future__ import annotations

import math

import torch

from ..validation import check_int, check_positive
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._batch import SampleBatch, finite_residual, nonfinite_status
from ._result import EquilibriumStatus


@EQUILIBRIUM_SOLVERS.register("anderson")
class AndersonSolver(EquilibriumSolver):
    """Safeguarded Anderson acceleration of the map ``h <- h + drive(h) = (1-mu) f + mu g``, per sample.

    Type-II Anderson mixing with memory ``m`` (Walker & Ni, SIAM J. Numer. Anal. 49, 2011): each iterate
    is the affine combination of the last ``m`` map outputs whose residuals combine to the smallest
    2-norm, per sample. One evaluation per iteration, ``O(L n^2 + m N)`` per sample.

    Safeguards, per sample: a residual above ``growth`` times the best one seen (or a non-finite one)
    restarts the sample — its history is dropped and it takes a plain map step from its best iterate;
    after ``max_restarts`` restarts it falls back to the plain map for good (from its best iterate). A
    sample that makes no new best in ``patience`` iterations, or is still unconverged at
    ``max_iterations``, is returned at its best iterate with status ``max_iterations``. Converged
    samples retire from the iteration.

    Parameters
    ----------
    memory : int, optional
        Number ``m >= 1`` of past iterates combined (default 5); 1 is the plain map.
    growth : float, optional
        Restart threshold on ``residual / best residual`` (default 4).
    max_restarts : int, optional
        Restarts before the plain map takes over (default 5).
    patience : int, optional
        Iterations without a new best residual before a restart (default 20).
    """

    memory = 5
    growth = 4.0
    max_restarts = 5
    patience = 20
    default_max_iterations = 2000

    def __init__(self, memory: int | None = None, *, growth: float | None = None, max_restarts: int | None = None,
                 patience: int | None = None):
        cls = type(self)
        self.memory = check_int("memory", cls.memory if memory is None else memory, minimum=1)
        self.growth = check_positive("growth", cls.growth if growth is None else growth)
        self.max_restarts = check_int("max_restarts", cls.max_restarts if max_restarts is None else max_restarts,
                                      minimum=0)
        self.patience = check_int("patience", cls.patience if patience is None else patience, minimum=1)

    def __repr__(self) -> str:
        return (f"AndersonSolver(memory={self.memory}, growth={self.growth:g}, max_restarts={self.max_restarts}, "
                f"patience={self.patience})")

    def solve(self, dynamics, initial, options):
        max_iterations = options.max_iterations if options.max_iterations is not None else self.default_max_iterations
        batch = SampleBatch(dynamics, initial, "anderson")
        with torch.no_grad():
            self._run(batch, initial.detach().clone(), options.tol, max_iterations)
        return batch.finish(options)

    def _run(self, batch: SampleBatch, x, tol, max_iterations):
        R, N = x.shape
        m, dtype, device = self.memory, x.dtype, x.device
        rows = dict(x=x, X=x.new_zeros(R, m, N), G=x.new_zeros(R, m, N),
                    pushes=torch.zeros(R, dtype=torch.int64, device=device),
                    best=torch.full((R,), math.inf, dtype=dtype, device=device),
                    best_x=x.clone(), best_r=torch.zeros_like(x), since=torch.zeros(R, dtype=torch.int64, device=device),
                    restarts=torch.zeros(R, dtype=torch.int64, device=device),
                    strikes=torch.zeros(R, dtype=torch.int64, device=device))
        slots = torch.arange(m, device=device)
        eye = torch.eye(m, dtype=dtype, device=device)
        for k in range(max_iterations + 1):
            x = rows["x"]
            r = batch.dynamics.evaluate(x, check=False)
            residual = finite_residual(r)
            batch.retire(batch.live & (residual < tol), x, EquilibriumStatus.CONVERGED, k, drive=r)
            improved = residual < rows["best"]
            rows["best"] = best = torch.where(improved, residual, rows["best"])
            rows["best_x"] = best_x = torch.where(improved.unsqueeze(-1), x, rows["best_x"])
            rows["best_r"] = best_r = torch.where(improved.unsqueeze(-1), r, rows["best_r"])
            rows["since"] = torch.where(improved, 0, rows["since"] + 1)
            nonfinite = ~torch.isfinite(residual)
            rows["strikes"] = rows["strikes"] + nonfinite.long()
            failed = batch.live & (rows["strikes"] >= 3)
            if bool(failed.any()):
                batch.retire(failed, best_x, nonfinite_status(bool(torch.isfinite(best_x).all())), k,
                             reason="non-finite values at every restart from the best iterate")
            if k == max_iterations or batch.n_live == 0:
                break
            # safeguard: restart (history dropped, plain step from the best iterate) when the residual grew
            # (not once on the plain map: its restart would replay the same transient from the best iterate)
            # (a stagnation, no new best in `patience` iterations, restarts too)
            mixing = rows["restarts"] <= self.max_restarts
            restart = nonfinite | (((residual > self.growth * best) | (rows["since"] > self.patience)) & mixing)
            rows["since"] = torch.where(restart, 0, rows["since"])
            rows["restarts"] = rows["restarts"] + restart.long()
            plain = rows["restarts"] > self.max_restarts
            fresh = ~restart & ~plain
            rows["pushes"] = torch.where(restart, 0, rows["pushes"])
            # push (x, x + r) into each row's ring; Anderson mixing over the valid slots
            slot = rows["pushes"] % m
            index = torch.arange(x.shape[0], device=device)
            X, G = rows["X"], rows["G"]
            X[index[fresh], slot[fresh]] = x[fresh]
            G[index[fresh], slot[fresh]] = r[fresh]
            rows["pushes"] = rows["pushes"] + fresh.long()
            valid = (slots.unsqueeze(0) < rows["pushes"].clamp(max=m).unsqueeze(1)).to(dtype)  # (R, m)
            gram = (G @ G.transpose(1, 2)) * (valid.unsqueeze(-1) * valid.unsqueeze(-2))
            scale = gram.diagonal(dim1=1, dim2=2).amax(-1).clamp_min(1e-300)
            gram = gram + (1e-10 * scale)[:, None, None] * eye + (1.0 - valid).unsqueeze(-1) * eye
            weights, info = torch.linalg.solve_ex(gram, valid.unsqueeze(-1))
            weights = weights / weights.sum(1, keepdim=True)
            mixed = (weights * (X + G)).sum(1)
            ok = (info == 0) & torch.isfinite(mixed).all(-1)
            x_next = torch.where((fresh & ok).unsqueeze(-1), mixed, x + r)
            x_next = torch.where(restart.unsqueeze(-1), best_x + best_r, x_next)
            rows["x"] = x_next
            if not bool(batch.live.all()):
                names = list(rows)
                rows = dict(zip(names, batch.compact(*[rows[n] for n in names])))
        if batch.n_live:
            batch.retire(batch.live.clone(), rows["best_x"], EquilibriumStatus.MAX_ITERATIONS, max_iterations,
                         drive=rows["best_r"], reason=f"max_iterations={max_iterations} reached")
