"""The entry functions :func:`equilibrium` (integration to equilibrium) and :func:`integrate` (a trajectory).

Solvers (registry :data:`EQUILIBRIUM_SOLVERS`, one module per stage; contract :class:`EquilibriumSolver`):

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

import torch
import torchdiffeq

from ..dynamics.base import NetworkDynamics
from ..validation import check_int, check_positive
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumOptions
from ._implicit import attach_implicit_gradient
from ._ode import ODESolver, check_method
from ._result import EquilibriumResult, EquilibriumStatus, Trajectory
from ._stability import check_fixed_point_stability


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
    solver : {'auto', 'anderson', 'newton', 'ode'}, EquilibriumSolver subclass or instance
        ``auto`` (default): Anderson, then Newton, then integration; ``anderson``, ``newton``, ``ode`` alone
        (registry :data:`EQUILIBRIUM_SOLVERS`). A configured instance such as ``AndersonSolver(memory=3)``
        is used as is.
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
        point found by Anderson or Newton that is not stable gets status ``unstable``; with
        ``solver='auto'`` integration takes over instead. Without it the iterative solvers may return
        an unstable fixed point (they solve ``dh/dt = 0``, they do not follow the flow).
    strict : bool
        Raise :class:`EquilibriumNotReachedError` instead of returning a non-converged result.

    Returns
    -------
    EquilibriumResult
    """
    if not isinstance(dynamics, NetworkDynamics):
        raise TypeError(f"dynamics must be a NetworkDynamics module (e.g. MixtureDynamics), got "
                        f"{type(dynamics).__name__}.")
    solver = EQUILIBRIUM_SOLVERS.create(solver)
    check_method(method)
    if gradient not in ("implicit", "solver", "adjoint"):
        raise ValueError(f"gradient={gradient!r} is not valid; use 'implicit' (default), 'solver' or 'adjoint'.")
    if gradient != "implicit" and type(solver) is not ODESolver:
        raise ValueError(f"gradient={gradient!r} backpropagates through the ODE solver and needs solver='ode' "
                         f"(got solver={solver.name!r}); the other solvers give the implicit gradient.")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict of torchdiffeq solver options, got {type(options).__name__}.")
    floor = 100 * torch.finfo(dynamics.dtype).eps  # tighter integrator tolerances only buy tiny steps
    opts = EquilibriumOptions(
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
    result = solver.solve(dynamics, initial_state, opts)
    if opts.check_stability and result.spectral_abscissa is None and result.status == EquilibriumStatus.CONVERGED:
        check_fixed_point_stability(dynamics, result)
    if opts.gradient == "implicit":
        result.state = attach_implicit_gradient(dynamics, result.state) if result.success else result.state.detach()
    if strict:
        result.raise_for_status()
    return result


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
    check_method(method)
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be a 1-D increasing sequence of at least two time points.")
    state = dynamics.initial_state("forward") if initial_state is None else dynamics.check_state(initial_state)
    states = torchdiffeq.odeint(dynamics, state, times, method=method, rtol=rtol, atol=atol, options=options)
    return Trajectory(times=times, states=states, state_sizes=tuple(dynamics.state_sizes))
