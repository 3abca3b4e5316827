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
    """Every sample reached the fixed-point residual ``||drive||_inf = tau ||dh/dt||_inf < tol``."""
    MAX_TIME = "max_time"
    """The integration reached ``t_max`` first."""
    MAX_STEPS = "max_steps"
    """The adaptive integrator used up ``max_steps``."""
    MAX_ITERATIONS = "max_iterations"
    """An iterative stage stopped without converging (iteration limit, no progress, singular Jacobian)."""
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
    """Result of :func:`tpdynamics.equilibrium`: the state and, per sample, how it was reached.

    Attributes
    ----------
    state : Tensor, shape (B, N)
        Last state (the equilibrium where converged; for a sample that did not converge, the iterate
        with the smallest residual the last stage saw).
    t : float or None
        Integration time reached by the ODE stage (``None`` when no sample needed it).
    residual : Tensor, shape (B,)
        The fixed-point residual ``||drive(h)||_inf = ||(1-mu) f + mu g - h||_inf = tau ||dh/dt||_inf``
        per sample at ``state``: how far one step of the fixed-point map moves it. ``tol`` bounds this
        quantity, which does not depend on ``tau``.
    converged : Tensor, shape (B,), bool
        ``residual < tol`` per sample.
    nfev : int
        Evaluations of the right-hand side (a Gauss-Seidel sweep over every block counts as one).
    status : EquilibriumStatus
        ``converged`` when every sample converged; otherwise the most frequent status of the samples
        that did not (``max_time``, ``max_steps``, ``max_iterations``, ``diverged``, ``domain_error``,
        ``step_size_underflow``, ``unstable``); :attr:`sample_status` has each sample's own.
    message : str
        Human-readable explanation, with the fix where there is one.
    solver : str
        The stages that ran, in order (``'sor'``, ``'sor->anderson->newton'``, ...).
    tol : float
        Requested tolerance on the fixed-point residual.
    n_steps : int
        Accepted plus rejected adaptive ODE steps (0 when no sample was integrated).
    iterations : int
        Largest number of iterations any sample took (summed over the iterative stages).
    state_sizes : tuple of int
        Block sizes of the state (``(n_1, ..., n_L)``).
    spectral_abscissa : Tensor, shape (B,), optional
        ``max Re lambda`` of the flow Jacobian at ``state`` per sample (with ``check_stability``).
    rate : Tensor, shape (B, N)
        ``dh/dt`` at ``state`` (= ``drive / tau``), for users who want the time derivative.
    tau : float
        Time constant of the dynamics (``rate = drive / tau``).
    stages : list of str, length B
        The stage that solved each sample (for one that was not solved: the last stage that tried).
    sample_iterations : Tensor, shape (B,), int64
        Iterations each sample took, summed over the iterative stages it went through.
    sample_status : list of EquilibriumStatus, length B
        Each sample's own status.
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
    rate: torch.Tensor | None = field(default=None, repr=False)
    tau: float = 1.0
    stages: list = field(default_factory=list, repr=False)
    sample_iterations: torch.Tensor | None = field(default=None, repr=False)
    sample_status: list = field(default_factory=list, repr=False)

    @property
    def success(self) -> bool:
        return self.status == EquilibriumStatus.CONVERGED

    @property
    def rate_residual(self) -> torch.Tensor:
        """``||dh/dt||_inf`` per sample, shape ``(B,)`` (``residual / tau``)."""
        return self.residual / self.tau

    @property
    def stage_counts(self) -> dict:
        """``{stage: number of samples it solved}`` (unsolved samples under ``'<stage> (status)'``)."""
        counts: dict = {}
        for stage, status in zip(self.stages, self.sample_status):
            key = stage if status == EquilibriumStatus.CONVERGED else f"{stage} ({status})"
            counts[key] = counts.get(key, 0) + 1
        return counts

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
            "residual_definition": "||(1-mu) f + mu g - h||_inf = tau ||dh/dt||_inf (the fixed-point residual)",
            "rate_residual": float(self.rate_residual.max()),
            "t": self.t,
            "nfev": self.nfev,
            "n_steps": self.n_steps,
            "iterations": self.iterations,
            "solver": self.solver,
            "stage_counts": self.stage_counts,
            "stage_per_sample": list(self.stages),
            "iterations_per_sample": None if self.sample_iterations is None else self.sample_iterations.tolist(),
            "status_per_sample": list(self.sample_status),
            "tol": self.tol,
            "tau": self.tau,
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
def overall_status(sample_status) -> EquilibriumStatus:
    """``converged`` if every sample converged, else the most frequent status among those that did not."""
    failed = [EquilibriumStatus(s) for s in sample_status if s != EquilibriumStatus.CONVERGED]
    if not failed:
        return EquilibriumStatus.CONVERGED
    return max(STATUSES, key=lambda s: (failed.count(s), -STATUSES.index(s)))


def make_result(dynamics, state, *, t, status, message, solver, options, n_steps=0, iterations=0,
                trajectory=None, stages=None, sample_iterations=None, sample_status=None,
                nfev=None, drive=None, residual=None,
                state_sizes=None) -> EquilibriumResult:
    """The :class:`EquilibriumResult` of ``state``: residual (not counted in ``nfev``), flags, per-sample fields.

    Without ``sample_status`` every converged sample gets ``converged`` and the others ``status``; without
    ``stages`` every sample gets ``solver``; without ``sample_iterations`` every sample gets ``iterations``.
    ``drive`` is the drive at ``state`` when the stage has it (otherwise one uncounted evaluation), and
    ``residual`` its ``||.||_inf`` per row (``inf`` where non-finite) when the caller has it already;
    ``state_sizes`` the block sizes (default: read from ``dynamics``).
    """
    if drive is None:
        with torch.no_grad():
            drive = dynamics.drive(state.detach(), check=False)
        residual = None
    if residual is None:
        residual = drive.abs().amax(-1)
        residual = torch.where(torch.isfinite(residual), residual, torch.full_like(residual, math.inf))
    converged = residual < options.tol
    B = state.shape[0]
    if sample_status is None:
        sample_status = [EquilibriumStatus.CONVERGED if c else EquilibriumStatus(status) for c in converged.tolist()]
    if sample_iterations is None:
        sample_iterations = torch.full((B,), int(iterations), dtype=torch.int64, device=state.device)
    return EquilibriumResult(state=state, t=t, residual=residual, converged=converged,
                             nfev=dynamics.nfev if nfev is None else nfev, status=EquilibriumStatus(status),
                             message=message, solver=solver, tol=options.tol, n_steps=n_steps,
                             iterations=int(iterations),
                             state_sizes=tuple(dynamics.state_sizes if state_sizes is None else state_sizes),
                             trajectory=trajectory or [], rate=drive if dynamics.tau == 1.0 else drive / dynamics.tau, tau=dynamics.tau,
                             stages=list(stages) if stages is not None else [solver] * B,
                             sample_iterations=sample_iterations, sample_status=list(sample_status))


def iterative_result(dynamics, state, rate, *, converged, iterations, options, solver, failure) -> EquilibriumResult:
    """The result of a whole-batch iterative solver: converged, or ``max_iterations`` with the message ``failure``."""
    if converged:
        return make_result(dynamics, state, t=None, status=EquilibriumStatus.CONVERGED, solver=solver,
                           options=options, iterations=iterations,
                           message=converged_message(dynamics.fixed_point_residual(state), options.tol,
                                                     f"after {iterations} {solver} iteration(s)"))
    return make_result(dynamics, state, t=None, status=EquilibriumStatus.MAX_ITERATIONS, solver=solver,
                       options=options, iterations=iterations, message=failure)


def converged_message(residual: torch.Tensor, tol: float, where: str) -> str:
    """The message of a converged result: the tolerance, the largest residual and where it was reached."""
    return (f"all samples reached the fixed-point residual ||(1-mu) f + mu g - h||_inf < {tol:g} "
            f"(max {float(residual.max()):.3g}) {where}.")
