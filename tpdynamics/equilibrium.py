"""Integration to equilibrium: one entry function, :func:`equilibrium`, and its result object.

Solvers (registry :data:`EQUILIBRIUM_SOLVERS`):

``"ode"``
    Integrate with torchdiffeq (``method``, ``rtol``, ``atol``, ``options`` passed through) until
    every sample's residual ``||dh/dt||_inf`` is below ``tol``. The residual is checked at the ends
    of successive integration chunks whose length grows with the elapsed time, so the time
    reached overshoots the first time the tolerance is met by at most ``check_growth``. Reaching
    ``t_max`` or ``max_steps`` returns the last state with a non-converged status (torchdiffeq's
    own ``AssertionError`` at its step limit is caught); a non-finite state returns
    ``status='diverged'`` with the time and layer in the message.
``"anderson"``
    Anderson acceleration of the fixed-point map ``h <- (1-mu) f + mu g`` (one right-hand-side
    evaluation per iteration).
``"newton"``
    Newton's method on ``dh/dt = 0`` with the block-tridiagonal Jacobian assembled from the layers'
    own Jacobians and a per-sample backtracking line search.
``"auto"`` (default)
    Anderson, then Newton, then integration, each from the initial state, until one converges.

The iterative solvers find *a* fixed point near the initial state (the forward pass); the ODE
path finds the attractor the flow actually reaches. ``check_stability=True`` verifies the fixed point
(an unstable one sends ``auto`` on to integration). Gradients: by default (``gradient='implicit'``)
the solvers build no autograd graph and the converged state carries the implicit-function-theorem
gradient ``d h*/d theta = -J^{-1} dF/d theta``; ``gradient='solver'`` or ``'adjoint'`` backpropagate
through torchdiffeq instead.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field

import torch
import torchdiffeq

from ._validation import check_int, check_memory, check_positive
from .errors import (DivergenceError, EquilibriumNotReachedError, InverseDomainError, MemoryLimitError,
                     SingularMatrixError)
from .registry import Registry
from .serialization import write_json

CONVERGED = "converged"
MAX_TIME = "max_time"
MAX_STEPS = "max_steps"
MAX_ITERATIONS = "max_iterations"
DIVERGED = "diverged"
DOMAIN_ERROR = "domain_error"
STEP_UNDERFLOW = "step_size_underflow"
UNSTABLE = "unstable_fixed_point"
STATUSES = (CONVERGED, MAX_TIME, MAX_STEPS, MAX_ITERATIONS, DIVERGED, DOMAIN_ERROR, STEP_UNDERFLOW, UNSTABLE)

_ADAPTIVE_METHODS = {"dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun"}


@dataclass
class EquilibriumResult:
    """Result of :func:`equilibrium`.

    Attributes
    ----------
    state : Tensor, shape (B, N)
        Last state (the equilibrium if converged).
    t : float or None
        Integration time reached (``None`` when Newton's method alone produced the state).
    residual : Tensor, shape (B,)
        ``||dh/dt||_inf`` per sample at ``state``.
    converged : Tensor, shape (B,), bool
        ``residual < tol`` per sample.
    nfev : int
        Evaluations of the right-hand side (including residual checks and Newton's line search).
    status : str
        One of ``converged``, ``max_time``, ``max_steps``, ``max_iterations``, ``diverged``,
        ``domain_error``, ``step_size_underflow``, ``unstable_fixed_point`` (an iterative solver
        converged to a fixed point that the flow does not approach; only with ``check_stability``).
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
    status: str
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
        return self.status == CONVERGED

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


class EquilibriumSolver:
    """Contract of an equilibrium solver: ``solve(dynamics, initial, options) -> EquilibriumResult``."""

    name = "abstract"

    def solve(self, dynamics, initial: torch.Tensor, opts: "_Options") -> EquilibriumResult:
        raise NotImplementedError


EQUILIBRIUM_SOLVERS: Registry[type[EquilibriumSolver]] = Registry("equilibrium solver", EquilibriumSolver, "solver")


@dataclass
class _Options:
    tol: float
    method: str
    rtol: float
    atol: float
    options: dict
    t_max: float
    max_steps: int
    gradient: str
    check_interval: float
    check_growth: float
    max_iterations: int | None
    record: bool
    check_stability: bool = False


def _result(dynamics, state, *, t, status, message, solver, opts, n_steps=0, iterations=0,
            trajectory=None) -> EquilibriumResult:
    with torch.no_grad():
        residual = dynamics.residual(state)
    residual = torch.where(torch.isfinite(residual), residual, torch.full_like(residual, math.inf))
    return EquilibriumResult(state=state, t=t, residual=residual, converged=residual < opts.tol,
                             nfev=dynamics.nfev, status=status, message=message, solver=solver, tol=opts.tol,
                             n_steps=n_steps, iterations=iterations,
                             state_sizes=tuple(dynamics.state_sizes), trajectory=trajectory or [])


def _converged_message(residual: torch.Tensor, tol: float, where: str) -> str:
    return f"all samples reached ||dh/dt||_inf < {tol:g} (max {float(residual.max()):.3g}) {where}."


def _needs_gradient(dynamics) -> bool:
    return torch.is_grad_enabled() and (
        any(p.requires_grad for p in dynamics.parameters()) or any(x.requires_grad for x in dynamics.inputs()))


def attach_implicit_gradient(dynamics, state: torch.Tensor) -> torch.Tensor:
    """Return ``state - J^{-1} F(state)`` with ``J`` detached: the fixed point with its IFT gradient.

    At a fixed point ``F(h*) = dh/dt = 0`` the value is ``h*`` (one more Newton step), and the
    gradient with respect to any parameter ``theta`` of the dynamics is
    ``-J^{-1} dF/dtheta`` — the implicit-function-theorem derivative of the fixed point.
    If no gradient is needed the state is returned unchanged.
    """
    if not _needs_gradient(dynamics):
        return state
    state = state.detach()
    with torch.no_grad():
        jacobian = dynamics.jacobian_blocks(state)
    rate = dynamics.rate(state)
    dynamics.nfev += 1
    return state - jacobian.solve(rate)


@EQUILIBRIUM_SOLVERS.register("ode")
class ODESolver(EquilibriumSolver):
    """Integrate with torchdiffeq until every sample's ``||dh/dt||_inf < tol`` (see module docstring)."""

    def solve(self, dynamics, initial, opts):
        integrate = torchdiffeq.odeint_adjoint if opts.gradient == "adjoint" else torchdiffeq.odeint
        extra = {}
        if opts.gradient == "adjoint":
            extra["adjoint_params"] = tuple(dynamics.parameters()) + tuple(
                x for x in dynamics.inputs() if x.requires_grad)
        adaptive = opts.method in _ADAPTIVE_METHODS
        steps0 = dynamics.n_accepted_steps + dynamics.n_rejected_steps
        t = 0.0
        state = initial if opts.gradient != "implicit" else initial.detach()
        trajectory = [(0.0, initial.detach().clone())] if opts.record else []
        interval = opts.check_interval
        grad_context = torch.no_grad() if opts.gradient == "implicit" else contextlib.nullcontext()
        with grad_context:
            while True:
                steps = dynamics.n_accepted_steps + dynamics.n_rejected_steps - steps0
                with torch.no_grad():
                    residual = dynamics.residual(state)
                dynamics.nfev += 1
                if bool((residual < opts.tol).all()):
                    return self._finish(dynamics, state, t=t, status=CONVERGED, opts=opts, n_steps=steps,
                                        message=_converged_message(residual, opts.tol, f"at t={t:.6g}"),
                                        trajectory=trajectory)
                if t >= opts.t_max:
                    return self._finish(dynamics, state, t=t, status=MAX_TIME, opts=opts, n_steps=steps,
                                        trajectory=trajectory,
                                        message=self._stall_message(residual, opts, dynamics, f"t_max={opts.t_max:g}"))
                t_next = min(t + interval, opts.t_max)
                options = dict(opts.options)
                if adaptive:
                    options.setdefault("max_num_steps", max(opts.max_steps - steps, 1))
                    if dynamics.last_step_size is not None and "first_step" not in opts.options:
                        options["first_step"] = dynamics.last_step_size
                grid = torch.tensor([t, t_next], dtype=torch.float64)
                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*does not support callbacks.*")
                        state = integrate(dynamics, state, grid, method=opts.method, rtol=opts.rtol,
                                          atol=opts.atol, options=options, **extra)[-1]
                except DivergenceError as err:
                    return self._finish(dynamics, state, t=t, status=DIVERGED, opts=opts, n_steps=steps,
                                        trajectory=trajectory,
                                        message=f"{err} The returned state is the last finite checkpoint, t={t:.6g}.")
                except InverseDomainError as err:
                    return self._finish(dynamics, state, t=t, status=DOMAIN_ERROR, opts=opts, n_steps=steps,
                                        trajectory=trajectory, message=f"{err} (during integration after t={t:.6g}).")
                except AssertionError as err:  # torchdiffeq signals its limits with bare asserts
                    steps = dynamics.n_accepted_steps + dynamics.n_rejected_steps - steps0
                    text = str(err)
                    if "max_num_steps" in text:
                        status, message = MAX_STEPS, (
                            f"the step limit max_steps={opts.max_steps} was reached between t={t:.6g} and "
                            f"t={t_next:.6g}; raise max_steps or loosen rtol/atol.")
                    elif "underflow" in text:
                        status, message = STEP_UNDERFLOW, (
                            f"the step size underflowed between t={t:.6g} and t={t_next:.6g} ({text}); the "
                            "dynamics are probably blowing up.")
                    else:
                        raise
                    return self._finish(dynamics, state, t=t, status=status, opts=opts, n_steps=steps,
                                        message=message + f" The returned state is the checkpoint at t={t:.6g}.",
                                        trajectory=trajectory)
                t = t_next
                if opts.record:
                    trajectory.append((t, state.detach().clone()))
                interval = max(opts.check_interval, (opts.check_growth - 1.0) * t)

    @staticmethod
    def _finish(dynamics, state, *, status, opts, **kwargs):
        return _result(dynamics, state, status=status, solver="ode", opts=opts, **kwargs)

    @staticmethod
    def _stall_message(residual, opts, dynamics, limit):
        eps = torch.finfo(dynamics.dtype).eps
        message = (f"{limit} reached with max ||dh/dt||_inf = {float(residual.max()):.3g} >= tol={opts.tol:g} "
                   f"({int((residual >= opts.tol).sum())} of {residual.numel()} samples not converged).")
        if opts.tol < 100 * eps:
            message += f" tol is close to the {dynamics.dtype} round-off ({eps:.1e}); use float64 or a larger tol."
        else:
            message += (f" If the residual has stalled, the integrator's own error (rtol={opts.rtol:g}, "
                        f"atol={opts.atol:g}) is the floor: tighten them; otherwise raise t_max or check "
                        "the stability of the fixed point.")
        return message


def _iterative_result(dynamics, state, rate, *, converged, iterations, opts, solver, failure):
    if converged:
        return _result(dynamics, state, t=None, status=CONVERGED, solver=solver, opts=opts,
                       iterations=iterations,
                       message=_converged_message(rate.abs().amax(-1), opts.tol,
                                                  f"after {iterations} {solver} iteration(s)"))
    return _result(dynamics, state, t=None, status=MAX_ITERATIONS, solver=solver, opts=opts,
                   iterations=iterations, message=failure)


@EQUILIBRIUM_SOLVERS.register("anderson")
class AndersonSolver(EquilibriumSolver):
    """Anderson acceleration of the fixed-point map ``h <- h + tau dh/dt = (1-mu) f + mu g``.

    Type-II Anderson mixing with memory ``m`` (Walker & Ni, SIAM J. Numer. Anal. 49, 2011): each
    iterate is the affine combination of the last ``m`` map outputs whose residuals combine to the
    smallest norm, per sample. One right-hand-side evaluation per iteration, ``O(L n^2)``.
    """

    memory = 5
    default_max_iterations = 300

    def solve(self, dynamics, initial, opts):
        max_iterations = opts.max_iterations if opts.max_iterations is not None else self.default_max_iterations
        with torch.no_grad():
            x = initial.detach().clone()
            B, N = x.shape
            m = self.memory
            xs, gs = x.new_zeros(B, m, N), x.new_zeros(B, m, N)
            r = dynamics.drive(x, check=False)
            dynamics.nfev += 1
            start = r.abs().amax(-1)
            failure = ""
            for k in range(max_iterations + 1):
                residual = r.abs().amax(-1) / dynamics.tau
                if not bool(torch.isfinite(residual).all()):
                    failure = f"Anderson iteration {k} produced non-finite values."
                    break
                done = residual < opts.tol
                if bool(done.all()):
                    return _iterative_result(dynamics, x, r, converged=True, iterations=k, opts=opts,
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
                r = dynamics.drive(x, check=False)
                dynamics.nfev += 1
        return _iterative_result(dynamics, x, r, converged=False, iterations=k, opts=opts, solver="anderson",
                                 failure=failure)


@EQUILIBRIUM_SOLVERS.register("newton")
class NewtonSolver(EquilibriumSolver):
    """Newton's method on ``dh/dt = 0`` with the block-tridiagonal Jacobian and per-sample backtracking."""

    max_halvings = 30
    default_max_iterations = 50

    def solve(self, dynamics, initial, opts):
        max_iterations = opts.max_iterations if opts.max_iterations is not None else self.default_max_iterations
        sizes, itemsize = dynamics.state_sizes, torch.finfo(dynamics.dtype).bits // 8
        blocks = sum(a * a for a in sizes) + 2 * sum(a * b for a, b in zip(sizes, sizes[1:]))
        # the Jacobian's blocks for every sample, with the factorisation's copies
        check_memory(f"Newton's block Jacobians for a batch of {dynamics.batch_size} and layers {list(sizes)}",
                     3 * dynamics.batch_size * blocks * itemsize,
                     hint="Use solver='anderson' or 'ode', or a smaller batch.")
        with torch.no_grad():
            state = initial.detach().clone()
            rate = dynamics.rate(state, check=False)
            dynamics.nfev += 1
            norm = self._norm(rate)
            failure = ""
            for iterations in range(max_iterations + 1):
                residual = rate.abs().amax(-1)
                if bool((residual < opts.tol).all()):
                    return _iterative_result(dynamics, state, rate, converged=True, iterations=iterations,
                                             opts=opts, solver="newton", failure="")
                if iterations == max_iterations:
                    failure = (f"Newton did not converge in {iterations} iterations (max ||dh/dt||_inf = "
                               f"{float(residual.max()):.3g}).")
                    break
                try:
                    step = dynamics.jacobian_blocks(state).solve(-rate)
                except (SingularMatrixError, InverseDomainError) as err:
                    failure = f"Newton stopped at iteration {iterations}: {err}"
                    break
                active = residual >= opts.tol
                alpha = torch.ones_like(norm)
                accepted = ~active
                new_state, new_rate, new_norm = state.clone(), rate.clone(), norm.clone()
                for _ in range(self.max_halvings):
                    trial = state + alpha.unsqueeze(-1) * step
                    trial_rate = dynamics.rate(trial, check=False)
                    dynamics.nfev += 1
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
        return _iterative_result(dynamics, state, rate, converged=False, iterations=iterations, opts=opts,
                                 solver="newton", failure=failure)

    @staticmethod
    def _norm(rate):
        norm = torch.linalg.vector_norm(rate, dim=-1)
        return torch.where(torch.isfinite(norm), norm, torch.full_like(norm, math.inf))


def check_fixed_point_stability(dynamics, result: EquilibriumResult) -> EquilibriumResult:
    """Set ``result.spectral_abscissa`` and mark a converged but unstable fixed point ``unstable_fixed_point``.

    ``alpha_b = max Re lambda(J_b)`` from the dense flow Jacobian of every sample (``O(B N^3)``); a
    sample is unstable when ``alpha_b >= -sqrt(eps) max |lambda|``. The thorough report (non-normality,
    transient growth, sparse methods for large ``N``) is :func:`analysis.stability_report`.
    """
    N = dynamics.state_size
    check_memory(f"the dense flow Jacobians of check_stability for a batch of {dynamics.batch_size} and N={N}",
                 4 * dynamics.batch_size * N * N * (torch.finfo(dynamics.dtype).bits // 8),
                 hint="Use check_stability=False, or analysis.stability_report for one sample.")
    with torch.no_grad():
        values = torch.linalg.eigvals(dynamics.jacobian_blocks(result.state.detach()).to_dense())
    alpha = values.real.amax(-1)
    tolerance = math.sqrt(torch.finfo(values.real.dtype).eps) * values.abs().amax(-1)
    result.spectral_abscissa = alpha
    unstable = alpha >= -tolerance
    if result.success and bool(unstable.any()):
        samples = torch.nonzero(unstable).flatten().tolist()
        result.status = UNSTABLE
        result.message = (f"{result.message} But the fixed point is not stable for sample(s) {samples[:10]} "
                          f"(max Re lambda = {float(alpha.max()):.3g}): the flow does not settle there. Use "
                          "solver='ode' for the attractor the dynamics reach.")
    return result


@EQUILIBRIUM_SOLVERS.register("auto")
class AutoSolver(EquilibriumSolver):
    """Anderson acceleration, then Newton, then integration, each from the initial state, until one converges.

    The cheap iterations come first (``O(L n^2)`` each); Newton (``O(L n^3)`` per iteration) handles
    fixed points where the map is not contracting; integration follows the flow to its attractor.
    """

    def solve(self, dynamics, initial, opts):
        attempts = []
        for name, cls in (("anderson", AndersonSolver), ("newton", NewtonSolver)):
            try:
                result = cls().solve(dynamics, initial, opts)
            except MemoryLimitError:  # Newton's Jacobians do not fit: integration needs only O(B N) memory
                attempts.append(f"{name} (skipped: not enough memory)")
                continue
            iterations = result.iterations
            if result.success and opts.check_stability:
                check_fixed_point_stability(dynamics, result)
                if result.status == UNSTABLE:  # Newton would find the same point: follow the flow instead
                    attempts.append(f"{name} (unstable fixed point)")
                    break
            if result.success:
                if attempts:
                    result.solver = "->".join(attempts + [name])
                    result.message += " (" + "; ".join(f"{a} failed first" for a in attempts) + ")"
                return result
            attempts.append(name)
        result = ODESolver().solve(dynamics, initial, opts)
        result.solver = "->".join(attempts + ["ode"])
        result.iterations = iterations
        return result


def equilibrium(dynamics, *, tol: float = 1e-6, solver="auto", initial_state=None, method: str = "dopri5",
                rtol: float | None = None, atol: float | None = None, options: dict | None = None,
                t_max: float | None = None, max_steps: int = 100_000, gradient: str = "implicit",
                check_interval: float | None = None, check_growth: float = 1.25,
                max_iterations: int | None = None, record: bool = False, check_stability: bool = False,
                strict: bool = False) -> EquilibriumResult:
    """Bring a dynamics module to equilibrium ``dh/dt = 0`` (the fixed point of eq. 6.5).

    Parameters
    ----------
    dynamics : NetworkDynamics
        E.g. :class:`~tpdynamics.MixtureDynamics`; batch ``B``, state size ``N``.
    tol : float
        Convergence tolerance on each sample's ``||dh/dt||_inf``.
    solver : {'auto', 'anderson', 'newton', 'ode'} or EquilibriumSolver subclass
        See the module docstring.
    initial_state : Tensor, shape (B, N), optional
        Starting state; default ``dynamics.initial_state('forward')`` (the forward pass).
    method, rtol, atol, options
        Passed to ``torchdiffeq.odeint`` (any torchdiffeq method). ``rtol`` and ``atol`` default to
        ``min(1e-7, tol/10)`` and ``min(1e-9, tol/100)``, but not below 100 machine epsilons: near a
        stable fixed point an explicit adaptive method keeps its local error, and hence the residual,
        at the level of its own tolerance, so the integrator must be more accurate than ``tol``.
    t_max : float, optional
        Time limit of the integration; default ``1000 * tau``.
    max_steps : int
        Limit on adaptive ODE steps (accepted + rejected).
    gradient : {'implicit', 'solver', 'adjoint'}
        How gradients reach the returned state. ``'implicit'`` (default): every solver runs without
        building a graph and the converged state gets the implicit-function-theorem gradient (one
        Newton step with a detached Jacobian); a non-converged state is returned detached.
        ``'solver'``: backpropagate through torchdiffeq's operations (``solver='ode'`` only; memory
        grows with the number of steps). ``'adjoint'``: ``torchdiffeq.odeint_adjoint`` (``solver='ode'``).
    check_interval : float, optional
        First interval between residual checks of the ODE path; default ``tau``.
    check_growth : float
        Later intervals are ``(check_growth - 1) * t``, so ``t`` overshoots the first converged
        time by at most this factor.
    max_iterations : int, optional
        Iteration limit of the Anderson (default 300) and Newton (default 50) solvers.
    record : bool
        Keep ``(t, state)`` at every residual check in ``result.trajectory`` (ODE path).
    check_stability : bool
        Compute each sample's spectral abscissa at the result (dense eigenvalues, ``O(B N^3)``). A fixed
        point found by Anderson or Newton that is not stable gets status ``unstable_fixed_point``; with
        ``solver='auto'`` integration takes over instead. Without it the iterative solvers may return
        an unstable fixed point (they solve ``dh/dt = 0``, they do not follow the flow).
    strict : bool
        Raise :class:`EquilibriumNotReachedError` instead of returning a non-converged result.

    Returns
    -------
    EquilibriumResult
    """
    from .dynamics.base import NetworkDynamics

    if not isinstance(dynamics, NetworkDynamics):
        raise TypeError(f"dynamics must be a NetworkDynamics module (e.g. MixtureDynamics), got "
                        f"{type(dynamics).__name__}.")
    solver_cls = EQUILIBRIUM_SOLVERS.get(solver)
    _check_method(method)
    if gradient not in ("implicit", "solver", "adjoint"):
        raise ValueError(f"gradient={gradient!r} is not valid; use 'implicit' (default), 'solver' or 'adjoint'.")
    if gradient != "implicit" and solver_cls is not ODESolver:
        raise ValueError(f"gradient={gradient!r} backpropagates through the ODE solver and needs solver='ode' "
                         f"(got solver={solver!r}); the other solvers give the implicit gradient.")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict of torchdiffeq solver options, got {type(options).__name__}.")
    floor = 100 * torch.finfo(dynamics.dtype).eps  # tighter integrator tolerances only buy tiny steps
    opts = _Options(
        tol=check_positive("tol", tol), method=method,
        rtol=check_positive("rtol", max(min(1e-7, 0.1 * tol), floor) if rtol is None else rtol),
        atol=check_positive("atol", max(min(1e-9, 0.01 * tol), floor) if atol is None else atol),
        options=dict(options or {}),
        t_max=check_positive("t_max", 1000.0 * dynamics.tau if t_max is None else t_max),
        max_steps=check_int("max_steps", max_steps, minimum=1), gradient=gradient,
        check_interval=check_positive("check_interval", dynamics.tau if check_interval is None else check_interval),
        check_growth=check_positive("check_growth", check_growth), record=bool(record),
        check_stability=bool(check_stability),
        max_iterations=None if max_iterations is None else check_int("max_iterations", max_iterations, minimum=0),
    )
    if opts.check_growth <= 1.0:
        raise ValueError(f"check_growth={check_growth} must be > 1 (e.g. 1.25).")
    dynamics.reset_counters()  # the result's nfev and n_steps count this call only
    if initial_state is None:
        # backpropagating through the solver also differentiates the initial state (the forward pass)
        with torch.no_grad() if gradient == "implicit" else contextlib.nullcontext():
            initial_state = dynamics.initial_state("forward")
    else:
        dynamics.check_state(initial_state, "initial_state")
    result = solver_cls().solve(dynamics, initial_state, opts)
    if opts.check_stability and result.spectral_abscissa is None and result.status == CONVERGED:
        check_fixed_point_stability(dynamics, result)
    if opts.gradient == "implicit":
        result.state = attach_implicit_gradient(dynamics, result.state) if result.success else result.state.detach()
    if strict:
        result.raise_for_status()
    return result


def _check_method(method: str) -> None:
    try:  # torchdiffeq keeps its solver table private; fall back to its own error if it moves
        from torchdiffeq._impl.odeint import SOLVERS
    except ImportError:  # pragma: no cover
        return
    if method not in SOLVERS:
        raise ValueError(f"Unknown ODE method={method!r}. Valid torchdiffeq methods: {', '.join(sorted(SOLVERS))}.")


@dataclass
class Trajectory:
    """States on a time grid: ``times`` shape ``(T,)``, ``states`` shape ``(T, B, N)``."""

    times: torch.Tensor
    states: torch.Tensor
    state_sizes: tuple

    def layer(self, k: int) -> torch.Tensor:
        """Block ``k`` of the state over time, shape ``(T, B, n_k)``."""
        return torch.split(self.states, self.state_sizes, dim=-1)[k]


def integrate(dynamics, times, *, initial_state=None, method: str = "dopri5", rtol: float = 1e-7,
              atol: float = 1e-9, options: dict | None = None) -> Trajectory:
    """Integrate the dynamics on a time grid (for plots of the approach to equilibrium).

    Parameters
    ----------
    dynamics : NetworkDynamics
    times : Tensor or sequence of float, shape (T,)
        Increasing times, starting at the time of ``initial_state``.
    initial_state : Tensor, shape (B, N), optional
        Default: the forward pass.
    """
    _check_method(method)
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be a 1-D increasing sequence of at least two time points.")
    state = dynamics.initial_state("forward") if initial_state is None else dynamics.check_state(initial_state)
    states = torchdiffeq.odeint(dynamics, state, times, method=method, rtol=rtol, atol=atol, options=options)
    return Trajectory(times=times, states=states, state_sizes=tuple(dynamics.state_sizes))
