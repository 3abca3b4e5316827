"""The Anderson stage: Anderson acceleration of the fixed-point map ``h <- (1-mu) f + mu g``."""
from __future__ import annotations

import torch

from ..validation import check_int
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._result import iterative_result


@EQUILIBRIUM_SOLVERS.register("anderson")
class AndersonSolver(EquilibriumSolver):
    """Anderson acceleration of the fixed-point map ``h <- h + tau dh/dt = (1-mu) f + mu g``.

    Type-II Anderson mixing with memory ``m`` (Walker & Ni, SIAM J. Numer. Anal. 49, 2011): each
    iterate is the affine combination of the last ``m`` map outputs whose residuals combine to the
    smallest norm, per sample. One right-hand-side evaluation per iteration, ``O(L n^2)``. With
    ``memory=1`` it is the plain fixed-point iteration.

    Parameters
    ----------
    memory : int, optional
        Number ``m >= 1`` of past iterates combined (default: the class attribute, 5).
    """

    memory = 5
    default_max_iterations = 300

    def __init__(self, memory: int | None = None):
        self.memory = check_int("memory", type(self).memory if memory is None else memory, minimum=1)

    def __repr__(self) -> str:
        return f"AndersonSolver(memory={self.memory})"

    def solve(self, dynamics, initial, options):
        max_iterations = options.max_iterations if options.max_iterations is not None else self.default_max_iterations
        with torch.no_grad():
            x = initial.detach().clone()
            B, N = x.shape
            m = self.memory
            xs, gs = x.new_zeros(B, m, N), x.new_zeros(B, m, N)
            r = dynamics.evaluate(x, check=False)
            start = r.abs().amax(-1)
            failure = ""
            for k in range(max_iterations + 1):
                residual = r.abs().amax(-1) / dynamics.tau
                if not bool(torch.isfinite(residual).all()):
                    failure = f"Anderson iteration {k} produced non-finite values."
                    break
                done = residual < options.tol
                if bool(done.all()):
                    return iterative_result(dynamics, x, r, converged=True, iterations=k, options=options,
                                            solver="anderson", failure="")
                if k == max_iterations or bool((r.abs().amax(-1) > 1e6 * start.clamp_min(1e-300)).any()):
                    failure = (f"Anderson acceleration did not converge in {k} iterations (max ||dh/dt||_inf = "
                               f"{float(residual.max()):.3g}).")
                    break
                slot, n = k % m, min(k + 1, m)
                xs[:, slot], gs[:, slot] = x, x + r
                residuals = gs[:, :n] - xs[:, :n]
                gram = residuals @ residuals.transpose(1, 2)
                ridge = 1e-12 * gram.diagonal(dim1=1, dim2=2).amax(-1).clamp_min(1e-300)
                gram = gram + ridge[:, None, None] * torch.eye(n, dtype=x.dtype)
                weights, info = torch.linalg.solve_ex(gram, torch.ones(B, n, 1, dtype=x.dtype))
                weights = weights / weights.sum(1, keepdim=True)
                x_new = (weights * gs[:, :n]).sum(1)
                ok = (info == 0) & torch.isfinite(x_new).all(-1) & ~done
                x = torch.where(ok.unsqueeze(-1), x_new, torch.where(done.unsqueeze(-1), x, x + r))
                r = dynamics.evaluate(x, check=False)
        return iterative_result(dynamics, x, r, converged=False, iterations=k, options=options, solver="anderson",
                                failure=failure)
