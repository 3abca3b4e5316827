"""The entry functions :func:`equilibrium` (integration to equilibrium) and :func:`integrate` (a trajectory).

Solvers (registry :data:`EQUILIBRIUM_SOLVERS`, one module per stage; contract :class:`EquilibriumSolver`).
Every stage works per sample: a sample retires when it converges, and each sample's result says which
stage solved it, its iterations and its status.

``"auto"`` (default)
    Per sample, in this order: ``sor``, ``anderson``, ``newton``, ``ode`` — each sample stops at the
    first stage that solves it, and only the samples a stage fails on go on (see :class:`AutoSolver`).
``"sor"``
    The fixed-point map swept over the layers in Gauss-Seidel order with an adaptive, safeguarded
    over-relaxation (one evaluation per sweep); converges where the map contracts.
``"map"``
    The plain fixed-point map ``h <- (1-mu) f + mu g`` (the naive loop), with retirement.
``"anderson"``
    Safeguarded Anderson acceleration of the map (restart on growth, plain map from the best iterate).
``"newton"``
    Semismooth Newton with the block-tridiagonal generalized Jacobian and a per-sample line search that
    recovers from failures at kinks.
``"ode"``
    Integrate with torchdiffeq (``method``, ``rtol``, ``atol``, ``options`` passed through) until every
    sample's residual is below ``tol``, checking at chunk ends whose spacing grows with the elapsed time
    (overshoot at most ``check_growth``). ``t_max`` / ``max_steps`` give a non-converged status; a
    non-finite state gives ``status='diverged'`` with the time and layer in the message.

The tolerance bounds the fixed-point residual ``||(1-mu) f + mu g - h||_inf = tau ||dh/dt||_inf`` of
every sample (``||drive||_inf`` for any dynamics module), which does not depend on ``tau``; ``dh/dt``
itself is ``result.rate``. The iterative solvers find *a* fixed point near the initial state (the
forward pass); the ODE path finds the attractor the flow actually reaches. ``check_stability=True``
verifies the fixed point (an unstable one sends ``auto`` on to integration). Gradients: by default
(``gradient='implicit'``) the solvers build no autograd graph and the converged state carries the
implicit-function-theorem gradient ``d h*/d theta = -J^{-1} dF/d theta``; ``gradient='solver'`` or
``'adjoint'`` backpropagate through torchdiffeq instead.
"""
from __future__ import annotations

import contextlib
import functools

import torch
import torchdiffeq

from ..dynamics.base import NetworkDynamics
from ..validation import check_device, check_int, check_positive, same_device
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
                strict: bool = False, device=None) -> EquilibriumResult:
    """Bring a dynamics module to equilibrium ``dh/dt = 0`` (the fixed point of eq. 6.5).

    Parameters
    ----------
    dynamics : NetworkDynamics
        E.g. :class:`~tpdynamics.MixtureDynamics`; batch ``B``, state size ``N``.
    tol : float
        Convergence tolerance on each sample's fixed-point residual ``||(1-mu) f + mu g - h||_inf``
        (``= tau ||dh/dt||_inf``; for any dynamics ``||drive(h)||_inf``, the step the fixed-point map would
        take). It does not depend on ``tau``, so neither do the state returned and its converged flags.
    solver : {'auto', 'sor', 'map', 'anderson', 'newton', 'ode'}, EquilibriumSolver subclass or instance
        ``auto`` (default): per sample ``sor``, then ``anderson``, then ``newton``, then ``ode``, each
        sample stopping at the first stage that solves it; or one stage alone (registry
        :data:`EQUILIBRIUM_SOLVERS`). A configured instance such as ``AndersonSolver(memory=3)`` is used as is.
    initial_state : Tensor of shape (B, N), or EquilibriumResult, optional
        Starting state; default ``dynamics.initial_state('forward')`` (the forward pass). A result of an
        earlier call (a *warm start*: the equilibrium of a nearby problem, e.g. before a small weight
        change) starts from its state.
    method, rtol, atol, options
        Passed to ``torchdiffeq.odeint`` (any torchdiffeq method). ``rtol`` and ``atol`` default to
        ``min(1e-7, tol/10)`` and ``min(1e-9, tol/100)``, but not below 10 machine epsilons: near a
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
        Iteration limit of each iterative stage (defaults: ``sor`` and ``map`` 10000 sweeps, ``anderson``
        2000, ``newton`` 50).
    record : bool
        Keep ``(t, state)`` at every residual check in ``result.trajectory`` (ODE path).
    check_stability : bool
        Compute each sample's spectral abscissa at the result (dense eigenvalues, ``O(B N^3)``). A fixed
        point found by an iterative stage that is not stable gets status ``unstable``; with
        ``solver='auto'`` that sample is integrated instead, from its initial state. Without it the iterative solvers may return
        an unstable fixed point (they solve ``dh/dt = 0``, they do not follow the flow).
    strict : bool
        Raise :class:`EquilibriumNotReachedError` instead of returning a non-converged result.
    device : str or torch.device, optional
        Where to solve. The solvers create every tensor of theirs on the dynamics' device
        (:attr:`~tpdynamics.NetworkDynamics.device`, set by the dynamics' own ``device=``); given here it must
        be that device (``ValueError`` otherwise: build the dynamics with ``device=`` and the network moved there).

    Returns
    -------
    EquilibriumResult
        With, per sample, the fixed-point residual, the converged flag, the stage that solved it
        (``result.stages``), its iterations and its status; ``result.rate`` is ``dh/dt``.

    Notes
    -----
    The solvers keep no state between calls and the default ``auto`` instance is built once, so a caller
    that solves near-identical problems many times (continuous learning) pays only for the iterations;
    pass the previous result as ``initial_state`` to start next to the new fixed point.
    """
    if not isinstance(dynamics, NetworkDynamics):
        raise TypeError(f"dynamics must be a NetworkDynamics module (e.g. MixtureDynamics), got "
                        f"{type(dynamics).__name__}.")
    if device is not None and not same_device(check_device(device), dynamics.device):
        raise ValueError(f"device={str(device)!r} but the dynamics compute on {str(dynamics.device)!r}; build them "
                         f"there (e.g. MixtureDynamics(network.to({str(device)!r}), h0, ..., device={str(device)!r})).")
    solver = _default_solver() if solver == "auto" else EQUILIBRIUM_SOLVERS.create(solver)
    check_method(method)
    if gradient not in ("implicit", "solver", "adjoint"):
        raise ValueError(f"gradient={gradient!r} is not valid; use 'implicit' (default), 'solver' or 'adjoint'.")
    if gradient != "implicit" and type(solver) is not ODESolver:
        raise ValueError(f"gradient={gradient!r} backpropagates through the ODE solver and needs solver='ode' "
                         f"(got solver={solver.name!r}); the other solvers give the implicit gradient.")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict of torchdiffeq solver options, got {type(options).__name__}.")
    floor = 10 * torch.finfo(dynamics.dtype).eps  # tighter integrator tolerances only buy tiny steps
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
        if isinstance(initial_state, EquilibriumResult):
            initial_state = initial_state.state.detach()
        dynamics.check_state(initial_state, "initial_state")
        initial_state = initial_state.to(dynamics.device)
    result = solver.solve(dynamics, initial_state, opts)
    if opts.check_stability and result.spectral_abscissa is None and result.status == EquilibriumStatus.CONVERGED:
        check_fixed_point_stability(dynamics, result)
    if opts.gradient == "implicit":
        result.state = attach_implicit_gradient(dynamics, result.state) if result.success else result.state.detach()
    if strict:
        result.raise_for_status()
    return result


@functools.lru_cache(maxsize=1)
def _default_solver():
    """One ``auto`` instance for every call (solvers keep no state between calls): no set-up per call."""
    return EQUILIBRIUM_SOLVERS.create("auto")


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
    states = torchdiffeq.odeint(dynamics, state, times.to(state.device), method=method, rtol=rtol, atol=atol,
                                options=options)
    return Trajectory(times=times, states=states, state_sizes=tuple(dynamics.state_sizes))
