"""The ODE stage: integrate with torchdiffeq until every sample's residual is below ``tol``."""
from __future__ import annotations

import contextlib
import warnings

import torch
import torchdiffeq

from ..errors import DivergenceError, InverseDomainError
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._batch import SampleBatch
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
    """Integrate with torchdiffeq until every sample's fixed-point residual ``||drive||_inf < tol``.

    ``method``, ``rtol``, ``atol`` and ``options`` go to torchdiffeq. The residual is checked at the ends
    of successive integration chunks whose length grows with the elapsed time, so the time reached
    overshoots the first time the tolerance is met by at most ``check_growth``. With the implicit gradient
    (the default) a sample that has converged at a check retires: the next chunks integrate the others
    only. Reaching ``t_max`` or ``max_steps`` returns the last state with a non-converged status
    (torchdiffeq's own ``AssertionError`` at its step limit is caught); a non-finite state returns
    ``status='diverged'`` with the time and layer in the message.
    """

    def solve(self, dynamics, initial, options):
        integrate = torchdiffeq.odeint_adjoint if options.gradient == "adjoint" else torchdiffeq.odeint
        extra = {}
        if options.gradient == "adjoint":
            extra["adjoint_params"] = tuple(dynamics.parameters()) + tuple(
                x for x in dynamics.inputs() if x.requires_grad)
        retire = options.gradient == "implicit"  # retiring rows would cut the graph of the other gradients
        batch = SampleBatch(dynamics, initial, "ode")
        adaptive = is_adaptive(options.method)
        steps = 0
        t = 0.0
        state = initial if options.gradient != "implicit" else initial.detach()
        trajectory = [(0.0, initial.detach().clone())] if options.record else []
        interval = options.check_interval
        grad_context = torch.no_grad() if options.gradient == "implicit" else contextlib.nullcontext()
        status, message = EquilibriumStatus.CONVERGED, ""
        with grad_context:
            while True:
                dyn = batch.dynamics
                with torch.no_grad():
                    drive = dyn.evaluate(state, check=False)
                residual = drive.abs().amax(-1)
                if retire:
                    batch.retire(batch.live & (residual < options.tol), state, EquilibriumStatus.CONVERGED, steps,
                                 drive=drive)
                    if batch.n_live == 0:
                        break
                    step_size = dyn.last_step_size
                    state, = batch.compact(state, force=True)
                    dyn = batch.dynamics
                    dyn.last_step_size = step_size  # the retired samples do not change the stiffness much
                elif bool((residual < options.tol).all()):
                    break
                if t >= options.t_max:
                    status = EquilibriumStatus.MAX_TIME
                    message = self._stall_message(residual[batch.live] if retire else residual, options,
                                                  dynamics, f"t_max={options.t_max:g}", batch.live.numel())
                    break
                t_next = min(t + interval, options.t_max)
                solver_options = dict(options.options)
                if adaptive:
                    solver_options.setdefault("max_num_steps", max(options.max_steps - steps, 1))
                    if dyn.last_step_size is not None and "first_step" not in options.options:
                        solver_options["first_step"] = dyn.last_step_size
                grid = torch.tensor([t, t_next], dtype=torch.float64, device=state.device)
                before = dyn.n_accepted_steps + dyn.n_rejected_steps
                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*does not support callbacks.*")
                        state = integrate(dyn, state, grid, method=options.method, rtol=options.rtol,
                                          atol=options.atol, options=solver_options, **extra)[-1]
                except DivergenceError as err:
                    status = EquilibriumStatus.DIVERGED
                    message = f"{err} The returned state is the last finite checkpoint, t={t:.6g}."
                    break
                except InverseDomainError as err:
                    status, message = EquilibriumStatus.DOMAIN_ERROR, f"{err} (during integration after t={t:.6g})."
                    break
                except AssertionError as err:  # torchdiffeq signals its limits with bare asserts
                    steps += dyn.n_accepted_steps + dyn.n_rejected_steps - before
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
                    message += f" The returned state is the checkpoint at t={t:.6g}."
                    break
                steps += dyn.n_accepted_steps + dyn.n_rejected_steps - before
                t = t_next
                if options.record:
                    trajectory.append((t, state.detach().clone()))
                interval = max(options.check_interval, (options.check_growth - 1.0) * t)
        nfev = batch.nfev
        if not retire:
            if status == EquilibriumStatus.CONVERGED:
                message = converged_message(residual, options.tol, f"at t={t:.6g}")
            return make_result(dynamics, state, t=t, status=status, solver="ode", options=options, n_steps=steps,
                               trajectory=trajectory, message=message, nfev=nfev)
        if batch.n_live:
            batch.retire(batch.live.clone(), state, status, steps, reason=message)
        result = batch.finish(options)
        result.t, result.n_steps, result.trajectory = t, steps, trajectory
        result.sample_iterations = torch.zeros_like(result.sample_iterations)
        result.iterations = 0
        result.message = (converged_message(result.residual, options.tol, f"at t={t:.6g}") if result.success
                          else message)
        return result

    @staticmethod
    def _stall_message(residual, options, dynamics, limit, batch_size):
        eps = torch.finfo(dynamics.dtype).eps
        message = (f"{limit} reached with max fixed-point residual {float(residual.max()):.3g} >= tol={options.tol:g} "
                   f"({int((residual >= options.tol).sum())} of {batch_size} samples not converged).")
        if options.tol < 100 * eps:
            message += f" tol is close to the {dynamics.dtype} round-off ({eps:.1e}); use float64 or a larger tol."
        else:
            message += (f" If the residual has stalled, the integrator's own error (rtol={options.rtol:g}, "
                        f"atol={options.atol:g}) is the floor: tighten them; otherwise raise t_max or check "
                        "the stability of the fixed point.")
        return message
