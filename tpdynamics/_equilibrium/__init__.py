"""Equilibria of the network dynamics (private implementation; the public names are exported by ``tpdynamics``).

One module per concept: ``_result`` (result objects, status vocabulary), ``_base`` (the solver contract,
its registry and options), ``_batch`` (per-sample book-keeping of the stages: retirement, compaction),
one module per stage (``_sweep``: the plain map and block SOR; ``_anderson``, ``_newton``, ``_ode``),
``_auto`` (the default per-sample composition), ``_stability`` (the fixed-point stability check and its tolerance rule),
``_implicit`` (implicit gradients) and ``_solve`` (the entry functions).
"""
from ._anderson import AndersonSolver
from ._auto import AutoSolver
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumOptions, EquilibriumSolver
from ._implicit import attach_implicit_gradient
from ._newton import NewtonSolver
from ._ode import ODESolver, is_adaptive, ode_methods
from ._result import STATUSES, EquilibriumResult, EquilibriumStatus, Trajectory, iterative_result, make_result
from ._solve import equilibrium, integrate
from ._stability import STABILITY_TOLERANCE_RULE, check_fixed_point_stability, stability_tolerance
from ._sweep import FixedPointMapSolver, SORSolver

__all__ = [
    "AndersonSolver", "AutoSolver", "EQUILIBRIUM_SOLVERS", "EquilibriumOptions", "EquilibriumSolver",
    "attach_implicit_gradient", "NewtonSolver", "ODESolver", "is_adaptive", "ode_methods", "STATUSES",
    "EquilibriumResult", "EquilibriumStatus", "Trajectory", "iterative_result", "make_result", "equilibrium",
    "integrate",
    "STABILITY_TOLERANCE_RULE", "check_fixed_point_stability", "stability_tolerance", "FixedPointMapSolver",
    "SORSolver",
]
