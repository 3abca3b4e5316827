"""The ODE stage: integrate with torchdiffeq until every sample's residual is below ``tol``."""
from __future__ import annotations

import contextlib
import warnings

import torch
import torchdiffeq

from ..errors import DivergenceError, InverseDomainError
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._result import EquilibriumStatus, converged_message, make_result

try:  # torchdiffeq keeps its solver table private; without it, torchdiffeq's own errors are the fallback
    from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS
    from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver as _AdaptiveRungeKutta
except ImportError:  # pragma: no cover
    _TORCHDIFFEQ_SOLVERS, _AdaptiveRungeKutta = None, None


def ode_methods() -> list[str]:
    """The method names torchdiffeq accepts (its own solver table), sorted; empty if the table moved."""
    return sorted(_TORCHDIFFEQ_SOLVERS or ())


def is_adaptive(method: str) -> bool:
    """Whether torchdiffeq's ``method`` is an adaptive Runge-Kutta solver (it takes ``max_num_steps``, ``first_step``).

    Read from the class in torchdiffeq's solver table, so methods added to torchdiffeq are classified
    without a hand-kept list.
    """
    cls = (_TORCHDIFFEQ_SOLVERS or {}).get(method)
    return cls is not None and _AdaptiveRungeKutta is not None and issubclass(cls, _AdaptiveRungeKutta)


def check_method(method: str) -> None:
    """Raise ``ValueError`` listing torchdiffeq's methods if ``method`` is not one of them."""
    if _TORCHDIFFEQ_SOLVERS is not None and method not in _TORCHDIFFEQ_SOLVERS:
        raise ValueError(f"Unknown ODE method={method!r}. Valid torchdiffeq methods: {', '.join(ode_methods())}.")


@EQUILIBRIUM_SOLVERS.register("ode")
class ODESolver(EquilibriumSolver):
    """Integrate with torchdiffeq until every sample's ``||dh/dt||_inf < tol``.

    ``method``, ``rtol``, ``atol`` and ``options`` go to torchdiffeq. The residual is checked at the ends
    of successive integration chunks whose length grows with the elapsed time, so the time reached
    overshoots the first time the tolerance is met by at most ``check_growth``. Reaching ``t_max`` or
    ``max_steps`` returns the last state with a non-converged status (torchdiffeq's own
    ``AssertionError`` at its step limit is caught); a non-finite state returns ``status='diverged'``
    with the time and layer in the message.
    """

    def solve(self, dynamics, initial, options):
        integrate = torchdiffeq.odeint_adjoint if options.gradient == "adjoint" else torchdiffeq.odeint
        extra = {}
        if options.gradient == "adjoint":
            extra["adjoint_params"] = tuple(dynamics.parameters()) + tuple(
                x for x in dynamics.inputs() if x.requires_grad)
        adaptive = is_adaptive(options.method)
        steps0 = dynamics.n_accepted_steps + dynamics.n_rejected_steps
        t = 0.0
        state = initial if options.gradient != "implicit" else initial.detach()
        trajectory = [(0.0, initial.detach().clone())] if options.record else []
        interval = options.check_interval
        grad_context = torch.no_grad() if options.gradient == "implicit" else contextlib.nullcontext()
        with grad_context:
            while True:
                steps = dynamics.n_accepted_steps + dynamics.n_rejected_steps - steps0
                with torch.no_grad():
                    residual = dynamics.rate(state, check=False).abs().amax(-1)
                if bool((residual < options.tol).all()):
                    return self._finish(dynamics, state, t=t, status=EquilibriumStatus.CONVERGED, options=options,
                                        n_steps=steps, trajectory=trajectory,
                                        message=converged_message(residual, options.tol, f"at t={t:.6g}"))
                if t >= options.t_max:
                    return self._finish(dynamics, state, t=t, status=EquilibriumStatus.MAX_TIME, options=options,
                                        n_steps=steps, trajectory=trajectory,
                                        message=self._stall_message(residual, options, dynamics,
                                                                    f"t_max={options.t_max:g}"))
                t_next = min(t + interval, options.t_max)
                solver_options = dict(options.options)
                if adaptive:
                    solver_options.setdefault("max_num_steps", max(options.max_steps - steps, 1))
                    if dynamics.last_step_size is not None and "first_step" not in options.options:
                        solver_options["first_step"] = dynamics.last_step_size
                grid = torch.tensor([t, t_next], dtype=torch.float64)
                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*does not support callbacks.*")
                        state = integrate(dynamics, state, grid, method=options.method, rtol=options.rtol,
                                          atol=options.atol, options=solver_options, **extra)[-1]
                except DivergenceError as err:
                    return self._finish(dynamics, state, t=t, status=EquilibriumStatus.DIVERGED, options=options,
                                        n_steps=steps, trajectory=trajectory,
                                        message=f"{err} The returned state is the last finite checkpoint, t={t:.6g}.")
                except InverseDomainError as err:
                    return self._finish(dynamics, state, t=t, status=EquilibriumStatus.DOMAIN_ERROR, options=options,
                                        n_steps=steps, trajectory=trajectory,
                                        message=f"{err} (during integration after t={t:.6g}).")
                except AssertionError as err:  # torchdiffeq signals its limits with bare asserts
                    steps = dynamics.n_accepted_steps + dynamics.n_rejected_steps - steps0
                    text = str(err)
                    if "max_num_steps" in text:
                        status, message = EquilibriumStatus.MAX_STEPS, (
                            f"the step limit max_steps={options.max_steps} was reached between t={t:.6g} and "
                            f"t={t_next:.6g}; raise max_steps or loosen rtol/atol.")
                    elif "underflow" in text:
                        status, message = EquilibriumStatus.STEP_UNDERFLOW, (
                            f"the step size underflowed between t={t:.6g} and t={t_next:.6g} ({text}); the "
                            "dynamics are probably blowing up.")
                    else:
                        raise
                    return self._finish(dynamics, state, t=t, status=status, options=options, n_steps=steps,
                                        message=message + f" The returned state is the checkpoint at t={t:.6g}.",
                                        trajectory=trajectory)
                t = t_next
                if options.record:
                    trajectory.append((t, state.detach().clone()))
                interval = max(options.check_interval, (options.check_growth - 1.0) * t)

    @staticmethod
    def _finish(dynamics, state, *, status, options, **kwargs):
        return make_result(dynamics, state, status=status, solver="ode", options=options, **kwargs)

    @staticmethod
    def _stall_message(residual, options, dynamics, limit):
        eps = torch.finfo(dynamics.dtype).eps
        message = (f"{limit} reached with max ||dh/dt||_inf = {float(residual.max()):.3g} >= tol={options.tol:g} "
                   f"({int((residual >= options.tol).sum())} of {residual.numel()} samples not converged).")
        if options.tol < 100 * eps:
            message += f" tol is close to the {dynamics.dtype} round-off ({eps:.1e}); use float64 or a larger tol."
        else:
            message += (f" If the residual has stalled, the integrator's own error (rtol={options.rtol:g}, "
                        f"atol={options.atol:g}) is the floor: tighten them; otherwise raise t_max or check "
                        "the stability of the fixed point.")
        return message
