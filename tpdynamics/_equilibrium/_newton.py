"""The Newton stage: semismooth Newton on ``drive(h) = 0`` with the block-tridiagonal (generalized) Jacobian."""
from __future__ import annotations

import math

import torch

from ..errors import InverseDomainError, SingularMatrixError
from ..validation import check_int, check_memory
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._batch import SampleBatch, finite_residual
from ._result import EquilibriumStatus


@EQUILIBRIUM_SOLVERS.register("newton")
class NewtonSolver(EquilibriumSolver):
    """Semismooth Newton on ``F(h) = drive(h) = 0`` with per-sample backtracking, retirement and recovery.

    The Jacobian is assembled from the layers' own Jacobians (``dynamics.jacobian_blocks``) and solved by
    block LU, ``O(L n^3)`` per iteration and sample. At a kink of a piecewise-linear nonlinearity (leaky
    ReLU) the layers' derivative is the one-sided one (``s'(0) = 1``), an element of Clarke's generalized
    Jacobian, which makes this the semismooth Newton method (Qi & Sun, Math. Program. 58, 1993): locally
    quadratic at a regular fixed point of a smooth map, finite or superlinear on a piecewise-linear one.

    The step is halved per sample until ``||F||_2`` decreases (Armijo factor ``1 - 1e-4 alpha``). Where no
    halving does (a kink, or a region where Newton's model is wrong), the sample is not given up: it moves
    to the trial point with the smallest ``||F||_2`` if that is still below its current norm, and otherwise
    takes one plain fixed-point step from its best iterate, then Newton continues. A sample fails
    (``max_iterations``) only after ``max_failures`` such recoveries in a row or at ``max_iterations``.

    Parameters
    ----------
    max_halvings : int, optional
        Largest number of step halvings of the line search (default 30).
    max_failures : int, optional
        Consecutive line-search failures before a sample is given up (default 10).
    """

    max_halvings = 30
    max_failures = 10
    default_max_iterations = 50

    def __init__(self, max_halvings: int | None = None, *, max_failures: int | None = None):
        cls = type(self)
        self.max_halvings = check_int("max_halvings", cls.max_halvings if max_halvings is None else max_halvings,
                                      minimum=1)
        self.max_failures = check_int("max_failures", cls.max_failures if max_failures is None else max_failures,
                                      minimum=1)

    def __repr__(self) -> str:
        return f"NewtonSolver(max_halvings={self.max_halvings}, max_failures={self.max_failures})"

    def solve(self, dynamics, initial, options):
        max_iterations = options.max_iterations if options.max_iterations is not None else self.default_max_iterations
        sizes, itemsize = dynamics.state_sizes, torch.finfo(dynamics.dtype).bits // 8
        blocks = sum(a * a for a in sizes) + 2 * sum(a * b for a, b in zip(sizes, sizes[1:]))
        # the Jacobian's blocks for every sample, with the factorisation's copies
        check_memory(f"Newton's block Jacobians for a batch of {dynamics.batch_size} and layers {list(sizes)}",
                     3 * dynamics.batch_size * blocks * itemsize,
                     hint="Use solver='anderson' or 'ode', or a smaller batch.")
        batch = SampleBatch(dynamics, initial, "newton")
        with torch.no_grad():
            self._run(batch, initial.detach().clone(), options.tol, max_iterations)
        return batch.finish(options)

    def _run(self, batch: SampleBatch, x, tol, max_iterations):
        r = batch.dynamics.evaluate(x, check=False)
        rows = dict(x=x, r=r, norm=_norm(r), best=finite_residual(r), best_x=x.clone(), best_r=r.clone(),
                    failures=torch.zeros(x.shape[0], dtype=torch.int64, device=x.device))
        for k in range(max_iterations + 1):
            x, r = rows["x"], rows["r"]
            residual = finite_residual(r)
            batch.retire(batch.live & (residual < tol), x, EquilibriumStatus.CONVERGED, k, drive=r)
            improved = residual < rows["best"]
            rows["best"] = torch.where(improved, residual, rows["best"])
            rows["best_x"] = torch.where(improved.unsqueeze(-1), x, rows["best_x"])
            rows["best_r"] = torch.where(improved.unsqueeze(-1), r, rows["best_r"])
            given_up = batch.live & (rows["failures"] >= self.max_failures)
            batch.retire(given_up, rows["best_x"], EquilibriumStatus.MAX_ITERATIONS, k, drive=rows["best_r"],
                         reason=f"the line search failed {self.max_failures} times in a row (no step reduces "
                                "||drive||_2: a kink, or a region where Newton's model does not hold)")
            if k == max_iterations or batch.n_live == 0:
                break
            if not bool(batch.live.all()):
                names = list(rows)
                rows = dict(zip(names, batch.compact(*[rows[n] for n in names])))
                x, r = rows["x"], rows["r"]
            dyn = batch.dynamics
            try:
                # jacobian_blocks is d(dh/dt)/dh = (d drive/dh) / tau, so the step for drive is J^-1 (-drive) / tau
                step = dyn.jacobian_blocks(x).solve(-r) / dyn.tau
            except (SingularMatrixError, InverseDomainError):
                step = None
            norm = rows["norm"]
            if step is None or not bool(torch.isfinite(step).all()):
                accepted = torch.zeros_like(norm, dtype=torch.bool)
                best_norm, best_trial, best_trial_r = norm.clone(), x.clone(), r.clone()
            else:
                accepted, new_x, new_r, best_norm, best_trial, best_trial_r = self._line_search(
                    dyn, x, r, norm, step)
            # recovery where the line search failed: the best trial if it is still a decrease, else a plain
            # step from the best iterate
            partial = ~accepted & (best_norm < norm)
            recover = ~accepted & ~partial
            plain_x = rows["best_x"] + rows["best_r"]
            if bool(recover.any()):
                plain_r = dyn.evaluate(plain_x, check=False)
            else:
                plain_r = r
            if step is not None and bool(torch.isfinite(step).all()):
                x_next = torch.where(accepted.unsqueeze(-1), new_x, torch.where(partial.unsqueeze(-1), best_trial,
                                                                                 plain_x))
                r_next = torch.where(accepted.unsqueeze(-1), new_r, torch.where(partial.unsqueeze(-1), best_trial_r,
                                                                                 plain_r))
            else:
                x_next, r_next = plain_x, plain_r
            rows["x"], rows["r"] = x_next, r_next
            rows["norm"] = _norm(r_next)
            rows["failures"] = torch.where(accepted, 0, rows["failures"] + 1)
        if batch.n_live:
            batch.retire(batch.live.clone(), rows["best_x"], EquilibriumStatus.MAX_ITERATIONS, max_iterations,
                         drive=rows["best_r"], reason=f"max_iterations={max_iterations} reached")

    def _line_search(self, dyn, x, r, norm, step):
        """Per-sample backtracking; returns the accepted rows and, for the others, the best trial seen."""
        alpha = torch.ones_like(norm)
        accepted = torch.zeros_like(norm, dtype=torch.bool)
        new_x, new_r = x.clone(), r.clone()
        best_norm, best_trial, best_trial_r = torch.full_like(norm, math.inf), x.clone(), r.clone()
        for _ in range(self.max_halvings):
            trial = x + alpha.unsqueeze(-1) * step
            trial_r = dyn.evaluate(trial, check=False)
            trial_norm = _norm(trial_r)
            ok = ~accepted & (trial_norm <= (1 - 1e-4 * alpha) * norm)
            new_x = torch.where(ok.unsqueeze(-1), trial, new_x)
            new_r = torch.where(ok.unsqueeze(-1), trial_r, new_r)
            better = ~accepted & (trial_norm < best_norm)
            best_norm = torch.where(better, trial_norm, best_norm)
            best_trial = torch.where(better.unsqueeze(-1), trial, best_trial)
            best_trial_r = torch.where(better.unsqueeze(-1), trial_r, best_trial_r)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            alpha = torch.where(accepted, alpha, alpha / 2)
        return accepted, new_x, new_r, best_norm, best_trial, best_trial_r


def _norm(drive):
    norm = torch.linalg.vector_norm(drive, dim=-1)
    return torch.where(torch.isfinite(norm), norm, torch.full_like(norm, math.inf))
