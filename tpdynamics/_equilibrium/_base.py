"""The contract of an equilibrium solver, its registry and the options every solver reads."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import torch

from ..registry import Registry
from ._result import EquilibriumResult


@dataclass
class EquilibriumOptions:
    """The validated settings of one :func:`tpdynamics.equilibrium` call, as the solvers read them.

    Built by :func:`tpdynamics.equilibrium` from its keyword arguments (see there for the meaning and
    the defaults); a solver only reads it.

    Attributes
    ----------
    tol : float
        Tolerance on each sample's fixed-point residual ``||drive||_inf = tau ||dh/dt||_inf`` (tau-free).
    method : str
        torchdiffeq method of the ODE stage.
    rtol, atol : float
        torchdiffeq tolerances.
    options : dict
        Extra torchdiffeq solver options.
    t_max : float
        Time limit of the ODE stage.
    max_steps : int
        Limit on adaptive ODE steps (accepted + rejected).
    gradient : {'implicit', 'solver', 'adjoint'}
        How gradients reach the returned state.
    check_interval, check_growth : float
        Residual checks of the ODE stage: first interval, and growth factor of the later ones.
    max_iterations : int or None
        Iteration limit of each iterative stage (``None``: each solver's own default).
    record : bool
        Keep ``(t, state)`` at every residual check of the ODE stage.
    check_stability : bool
        Check the spectral abscissa at fixed points found by the iterative stages.
    """

    tol: float
    method: str = "dopri5"
    rtol: float = 1e-7
    atol: float = 1e-9
    options: dict = field(default_factory=dict)
    t_max: float = 1000.0
    max_steps: int = 100_000
    gradient: str = "implicit"
    check_interval: float = 1.0
    check_growth: float = 1.25
    max_iterations: int | None = None
    record: bool = False
    check_stability: bool = False


class EquilibriumSolver(abc.ABC):
    """Contract of an equilibrium solver (one stage, or a composition of stages such as ``auto``).

    Rules for writing a solver (register it with ``@EQUILIBRIUM_SOLVERS.register(name)``, or pass the
    class or a configured instance as ``solver=``):

    * the one hook is :meth:`solve` ``(dynamics, initial, options) -> EquilibriumResult``:
      ``dynamics`` is a :class:`~tpdynamics.NetworkDynamics` with batch ``B`` and state size ``N``,
      ``initial`` a ``(B, N)`` state, ``options`` the :class:`EquilibriumOptions` of the call;
    * evaluate the right-hand side only through ``dynamics.evaluate`` / ``dynamics.rate`` /
      ``dynamics.evaluate_group`` (or ``dynamics.forward`` inside torchdiffeq), which count every
      evaluation in ``dynamics.nfev``; ``dynamics.residual`` / ``fixed_point_residual`` are uncounted;
    * converge on the fixed-point residual ``||drive||_inf < options.tol`` of each sample, not on
      ``dh/dt`` (the tolerance must not depend on ``tau``);
    * work per sample: a sample that converges stops costing anything (the iterative stages use
      ``_batch.SampleBatch``: retirement, compaction through ``dynamics.select``), and each sample gets
      its own status and iteration count; a sample that fails is returned at the best iterate seen, so
      that a following stage (``auto``) continues from there;
    * return a result built with :func:`make_result` / :func:`iterative_result` (so ``residual``,
      ``converged``, the per-sample fields, ``nfev`` and the block sizes are filled the same way
      everywhere), with a status of :class:`EquilibriumStatus` and a message that says what to change
      when it did not converge;
    * do not raise for a numerical failure (divergence, domain error, singular Jacobian): return the
      last good state with its status;
    * with ``options.gradient == 'implicit'`` build no autograd graph (the entry function attaches the
      implicit gradient to a converged state afterwards);
    * configuration (e.g. Anderson's memory) goes to ``__init__``, so that a configured instance can be
      passed as ``solver=``; :meth:`solve` keeps no state between calls.
    """

    name = "abstract"

    @abc.abstractmethod
    def solve(self, dynamics, initial: torch.Tensor, options: EquilibriumOptions) -> EquilibriumResult:
        """Bring ``dynamics`` from ``initial`` (B, N) to ``dh/dt = 0``; see the class docstring."""


EQUILIBRIUM_SOLVERS: Registry[type[EquilibriumSolver]] = Registry("equilibrium solver", EquilibriumSolver, "solver",
                                                                  instances=True)
