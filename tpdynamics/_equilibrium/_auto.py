"""The default solver: the iterative stages first, integration last."""
from __future__ import annotations

from ..errors import MemoryLimitError
from ._anderson import AndersonSolver
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._newton import NewtonSolver
from ._ode import ODESolver
from ._result import EquilibriumStatus
from ._stability import check_fixed_point_stability


@EQUILIBRIUM_SOLVERS.register("auto")
class AutoSolver(EquilibriumSolver):
    """Anderson acceleration, then Newton, then integration, each from the initial state, until one converges.

    The cheap iterations come first (``O(L n^2)`` each); Newton (``O(L n^3)`` per iteration) handles
    fixed points where the map is not contracting; integration follows the flow to its attractor.
    With ``check_stability`` an unstable fixed point found by an iterative stage sends it straight to
    integration (Newton would find the same point).
    """

    def __init__(self):
        self.stages = (("anderson", AndersonSolver()), ("newton", NewtonSolver()))
        self.fallback = ODESolver()

    def solve(self, dynamics, initial, options):
        attempts = []
        for name, stage in self.stages:
            try:
                result = stage.solve(dynamics, initial, options)
            except MemoryLimitError:  # Newton's Jacobians do not fit: integration needs only O(B N) memory
                attempts.append(f"{name} (skipped: not enough memory)")
                continue
            iterations = result.iterations
            if result.success and options.check_stability:
                check_fixed_point_stability(dynamics, result)
                if result.status == EquilibriumStatus.UNSTABLE:  # Newton would find the same point: follow the flow
                    attempts.append(f"{name} (unstable fixed point)")
                    break
            if result.success:
                if attempts:
                    result.solver = "->".join(attempts + [name])
                    result.message += " (" + "; ".join(f"{a} failed first" for a in attempts) + ")"
                return result
            attempts.append(name)
        result = self.fallback.solve(dynamics, initial, options)
        result.solver = "->".join(attempts + ["ode"])
        result.iterations = iterations
        return result
