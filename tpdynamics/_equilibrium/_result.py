"""The result objects of :func:`tpdynamics.equilibrium` and :func:`tpdynamics.integrate`, and the status vocabulary."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import torch

from ..errors import EquilibriumNotReachedError
from ..serialization import write_json


class EquilibriumStatus(str, enum.Enum):
    """Why an equilibrium solve stopped (:attr:`EquilibriumResult.status`).

    A ``str`` enum: every member equals (and prints as, and is written to JSON as) its value, so
    ``result.status == "converged"`` and ``result.status == EquilibriumStatus.CONVERGED`` agree.
    Values are lower-case words joined by underscores.
    """

    CONVERGED = "converged"
    """Every sample reached ``||dh/dt||_inf < tol``."""
    MAX_TIME = "max_time"
    """The integration reached ``t_max`` first."""
    MAX_STEPS = "max_steps"
    """The adaptive integrator used up ``max_steps``."""
    MAX_ITERATIONS = "max_iterations"
    """Anderson or Newton stopped without converging (iteration limit, failed line search, singular Jacobian)."""
    DIVERGED = "diverged"
    """The state became non-finite."""
    DOMAIN_ERROR = "domain_error"
    """An inverse nonlinearity was evaluated outside its domain (e.g. tanh's ``(-1, 1)``)."""
    STEP_UNDERFLOW = "step_size_underflow"
    """The adaptive step size underflowed."""
    UNSTABLE = "unstable"
    """An iterative solver converged to a fixed point that the flow does not approach (``check_stability``)."""

    __str__ = str.__str__
    __format__ = str.__format__


#: Every equilibrium status, in the order of :class:`EquilibriumStatus`.
STATUSES = tuple(EquilibriumStatus)


@dataclass
class EquilibriumResult:
    """Result of :func:`tpdynamics.equilibrium`.

    Attributes
    ----------
    state : Tensor, shape (B, N)
        Last state (the equilibrium if converged).
    t : float or None
        Integration time reached (``None`` when an iterative solver alone produced the state).
    residual : Tensor, shape (B,)
        ``||dh/dt||_inf`` per sample at ``state``.
    converged : Tensor, shape (B,), bool
        ``residual < tol`` per sample.
    nfev : int
        Evaluations of the right-hand side (including residual checks and Newton's line search).
    status : EquilibriumStatus
        ``converged``, ``max_time``, ``max_steps``, ``max_iterations``, ``diverged``, ``domain_error``,
        ``step_size_underflow`` or ``unstable`` (an iterative solver converged to a fixed point that the
        flow does not approach; only with ``check_stability``).
    message : str
        Human-readable explanation, with the fix where there is one.
    solver : str
        ``'ode'``, ``'newton'`` or ``'newton->ode'`` (Newton failed, integration took over).
    tol : float
        Requested tolerance on ``||dh/dt||_inf``.
    n_steps : int
        Accepted plus rejected adaptive ODE steps (0 for the iterative solvers or fixed-grid methods).
    iterations : int
        Iterations of the iterative solvers (Anderson or Newton) taken.
    state_sizes : tuple of int
        Block sizes of the state (``(n_1, ..., n_L)``).
    spectral_abscissa : Tensor, shape (B,), optional
        ``max Re lambda`` of the flow Jacobian at ``state`` per sample (with ``check_stability``).
    """

    state: torch.Tensor
    t: float | None
    residual: torch.Tensor
    converged: torch.Tensor
    nfev: int
    status: EquilibriumStatus
    message: str
    solver: str
    tol: float
    n_steps: int = 0
    iterations: int = 0
    state_sizes: tuple = ()
    trajectory: list = field(default_factory=list, repr=False)
    spectral_abscissa: torch.Tensor | None = None

    @property
    def success(self) -> bool:
        return self.status == EquilibriumStatus.CONVERGED

    @property
    def layers(self) -> list[torch.Tensor]:
        """The state split into layers ``[h_1, ..., h_L]`` (shapes ``(B, n_i)``)."""
        return list(torch.split(self.state, self.state_sizes, dim=-1))

    def raise_for_status(self) -> "EquilibriumResult":
        """Return ``self`` if converged, else raise :class:`EquilibriumNotReachedError` (or the divergence)."""
        if self.success:
            return self
        raise EquilibriumNotReachedError(f"equilibrium not reached ({self.status}): {self.message}", self)

    def to_dict(self, *, include_state: bool = False) -> dict:
        """JSON-ready dictionary; the state is included on request."""
        out = {
            "status": self.status,
            "converged": bool(self.converged.all()),
            "converged_per_sample": self.converged.tolist(),
            "residual": float(self.residual.max()),
            "residual_per_sample": self.residual.detach().tolist(),
            "t": self.t,
            "nfev": self.nfev,
            "n_steps": self.n_steps,
            "iterations": self.iterations,
            "solver": self.solver,
            "tol": self.tol,
            "message": self.message,
            "spectral_abscissa": None if self.spectral_abscissa is None else self.spectral_abscissa.tolist(),
        }
        if include_state:
            out["state"] = [b.detach().tolist() for b in self.layers]
        return out

    def to_json(self, path=None, **kwargs) -> str:
        return write_json(path, self.to_dict(**kwargs))


@dataclass
class Trajectory:
    """States on a time grid (:func:`tpdynamics.integrate`): ``times`` (T,), ``states`` (T, B, N)."""

    times: torch.Tensor
    states: torch.Tensor
    state_sizes: tuple

    def layer(self, k: int) -> torch.Tensor:
        """Block ``k`` of the state over time, shape ``(T, B, n_k)``."""
        return torch.split(self.states, self.state_sizes, dim=-1)[k]


# -- building results (shared by the solvers) ------------------------------------------------------
def make_result(dynamics, state, *, t, status, message, solver, options, n_steps=0, iterations=0,
                trajectory=None) -> EquilibriumResult:
    """The :class:`EquilibriumResult` of ``state``: residual (not counted in ``nfev``), convergence flags, counters."""
    with torch.no_grad():
        residual = dynamics.residual(state)
    residual = torch.where(torch.isfinite(residual), residual, torch.full_like(residual, math.inf))
    return EquilibriumResult(state=state, t=t, residual=residual, converged=residual < options.tol,
                             nfev=dynamics.nfev, status=status, message=message, solver=solver, tol=options.tol,
                             n_steps=n_steps, iterations=iterations,
                             state_sizes=tuple(dynamics.state_sizes), trajectory=trajectory or [])


def converged_message(residual: torch.Tensor, tol: float, where: str) -> str:
    """The message of a converged result: the tolerance, the largest residual and where it was reached."""
    return f"all samples reached ||dh/dt||_inf < {tol:g} (max {float(residual.max()):.3g}) {where}."


def iterative_result(dynamics, state, rate, *, converged, iterations, options, solver, failure) -> EquilibriumResult:
    """The result of an iterative stage (Anderson, Newton): converged, or ``max_iterations`` with ``failure``."""
    if converged:
        return make_result(dynamics, state, t=None, status=EquilibriumStatus.CONVERGED, solver=solver,
                           options=options, iterations=iterations,
                           message=converged_message(rate.abs().amax(-1), options.tol,
                                                     f"after {iterations} {solver} iteration(s)"))
    return make_result(dynamics, state, t=None, status=EquilibriumStatus.MAX_ITERATIONS, solver=solver,
                       options=options, iterations=iterations, message=failure)
