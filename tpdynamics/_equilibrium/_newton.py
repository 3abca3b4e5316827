"""The Newton stage: Newton's method on ``dh/dt = 0`` with the block-tridiagonal Jacobian."""
from __future__ import annotations

import math

import torch

from ..errors import InverseDomainError, SingularMatrixError
from ..validation import check_int, check_memory
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._result import iterative_result


@EQUILIBRIUM_SOLVERS.register("newton")
class NewtonSolver(EquilibriumSolver):
    """Newton's method on ``dh/dt = 0`` with the block-tridiagonal Jacobian and per-sample backtracking.

    The Jacobian is assembled from the layers' own Jacobians (``dynamics.jacobian_blocks``) and solved by
    block LU, ``O(L n^3)`` per iteration; the step is halved per sample until ``||dh/dt||_2`` decreases
    (Armijo factor ``1 - 1e-4 alpha``). Near a regular fixed point the convergence is quadratic.

    Parameters
    ----------
    max_halvings : int, optional
        Largest number of step halvings of the line search (default: the class attribute, 30).
    """

    max_halvings = 30
    default_max_iterations = 50

    def __init__(self, max_halvings: int | None = None):
        self.max_halvings = check_int("max_halvings", type(self).max_halvings if max_halvings is None
                                      else max_halvings, minimum=1)

    def __repr__(self) -> str:
        return f"NewtonSolver(max_halvings={self.max_halvings})"

    def solve(self, dynamics, initial, options):
        max_iterations = options.max_iterations if options.max_iterations is not None else self.default_max_iterations
        sizes, itemsize = dynamics.state_sizes, torch.finfo(dynamics.dtype).bits // 8
        blocks = sum(a * a for a in sizes) + 2 * sum(a * b for a, b in zip(sizes, sizes[1:]))
        # the Jacobian's blocks for every sample, with the factorisation's copies
        check_memory(f"Newton's block Jacobians for a batch of {dynamics.batch_size} and layers {list(sizes)}",
                     3 * dynamics.batch_size * blocks * itemsize,
                     hint="Use solver='anderson' or 'ode', or a smaller batch.")
        with torch.no_grad():
            state = initial.detach().clone()
            rate = dynamics.rate(state, check=False)
            norm = self._norm(rate)
            failure = ""
            for iterations in range(max_iterations + 1):
                residual = rate.abs().amax(-1)
                if bool((residual < options.tol).all()):
                    return iterative_result(dynamics, state, rate, converged=True, iterations=iterations,
                                            options=options, solver="newton", failure="")
                if iterations == max_iterations:
                    failure = (f"Newton did not converge in {iterations} iterations (max ||dh/dt||_inf = "
                               f"{float(residual.max()):.3g}).")
                    break
                try:
                    step = dynamics.jacobian_blocks(state).solve(-rate)
                except (SingularMatrixError, InverseDomainError) as err:
                    failure = f"Newton stopped at iteration {iterations}: {err}"
                    break
                active = residual >= options.tol
                alpha = torch.ones_like(norm)
                accepted = ~active
                new_state, new_rate, new_norm = state.clone(), rate.clone(), norm.clone()
                for _ in range(self.max_halvings):
                    trial = state + alpha.unsqueeze(-1) * step
                    trial_rate = dynamics.rate(trial, check=False)
                    trial_norm = self._norm(trial_rate)
                    ok = ~accepted & torch.isfinite(trial_norm) & (trial_norm <= (1 - 1e-4 * alpha) * norm)
                    new_state[ok], new_rate[ok], new_norm[ok] = trial[ok], trial_rate[ok], trial_norm[ok]
                    accepted = accepted | ok
                    if bool(accepted.all()):
                        break
                    alpha = torch.where(accepted, alpha, alpha / 2)
                if not bool(accepted.all()):
                    failure = (f"Newton's line search failed for {int((~accepted).sum())} sample(s) at iteration "
                               f"{iterations}: no step reduces ||dh/dt|| (a kink of a piecewise-linear "
                               "nonlinearity or a non-attracting region).")
                    break
                state, rate, norm = new_state, new_rate, new_norm
        return iterative_result(dynamics, state, rate, converged=False, iterations=iterations, options=options,
                                solver="newton", failure=failure)

    @staticmethod
    def _norm(rate):
        norm = torch.linalg.vector_norm(rate, dim=-1)
        return torch.where(torch.isfinite(norm), norm, torch.full_like(norm, math.inf))
