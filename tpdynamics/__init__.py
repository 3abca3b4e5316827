"""tpdynamics: target propagation as network dynamics.

Public API (thesis notation):

* nonlinearities ``s`` — :func:`get_nonlinearity`, :data:`NONLINEARITIES`;
* layers ``f_i``/``g_i`` — :class:`Layer`, :data:`FEEDBACK_FORMS`; network — :class:`LayeredNetwork`;
* dynamics (eq. 6.1) — :class:`MixtureDynamics`, :data:`DYNAMICS`;
* equilibria — :func:`equilibrium`, :class:`EquilibriumResult` (:class:`EquilibriumStatus`),
  :func:`integrate`; solvers :data:`EQUILIBRIUM_SOLVERS` (contract :class:`EquilibriumSolver`; stages
  :class:`SORSolver`, :class:`FixedPointMapSolver`, :class:`AndersonSolver`, :class:`NewtonSolver`,
  :class:`ODESolver`, composed per sample by :class:`AutoSolver`);
* robust Sherman–Morrison (Alg. 4.1) — :func:`robust_sherman_morrison`;
* input checks — :mod:`tpdynamics.validation`; JSON — :mod:`tpdynamics.serialization`.

``tpdynamics.equilibrium`` is the function; its implementation lives in the private
``tpdynamics._equilibrium`` package.
"""
from .blocktridiagonal import BlockTridiagonal
from .dynamics import DYNAMICS, MixtureDynamics, MultiplexedDynamics, NetworkDynamics
from ._equilibrium import (EQUILIBRIUM_SOLVERS, STABILITY_TOLERANCE_RULE, STATUSES, AndersonSolver, AutoSolver,
                           EquilibriumOptions, EquilibriumResult, EquilibriumSolver, EquilibriumStatus, NewtonSolver,
                           ODESolver, Trajectory, attach_implicit_gradient, check_fixed_point_stability, equilibrium,
                           integrate, is_adaptive, iterative_result, make_result, ode_methods, stability_tolerance,
                           FixedPointMapSolver, SORSolver)
from .errors import (DivergenceError, EquilibriumNotReachedError, InverseDomainError, MemoryLimitError,
                     SingularMatrixError, SingularWeightError, StaleInverseError, TPDynamicsError, TPDynamicsWarning)
from .layers import (FEEDBACK_FORMS, ExactInverseFeedback, FeedbackMapping, FixedRandomFeedback, Layer,
                     LearnedInverseFeedback, OriginalFeedback)
from .network import LayeredNetwork, make_generator
from .nonlinearities import NONLINEARITIES, Identity, LeakyReLU, Nonlinearity, Tanh, get_nonlinearity
from .sherman_morrison import (ShermanMorrisonRecord, denominator_round_off, robust_gaussian_matrix,
                               robust_sherman_morrison, singular_value_product)
from .threads import available_cores, default_threads, get_threads, set_threads, thread_limit
from .targets import FixedTarget, FreeTarget, LossTarget, TeachingSignal, l2_loss, l2_loss_gradient

from ._version import __version__

__all__ = [
    "__version__", "BlockTridiagonal", "DYNAMICS", "MixtureDynamics", "MultiplexedDynamics", "NetworkDynamics", "EQUILIBRIUM_SOLVERS",
    "STABILITY_TOLERANCE_RULE", "STATUSES", "AndersonSolver", "AutoSolver", "EquilibriumOptions", "EquilibriumResult",
    "EquilibriumSolver", "EquilibriumStatus", "NewtonSolver", "ODESolver", "Trajectory", "attach_implicit_gradient",
    "check_fixed_point_stability", "equilibrium", "integrate", "is_adaptive", "iterative_result", "make_result",
    "ode_methods", "stability_tolerance", "FixedPointMapSolver", "SORSolver",
    "DivergenceError",
    "EquilibriumNotReachedError", "InverseDomainError", "MemoryLimitError", "SingularMatrixError", "SingularWeightError",
    "StaleInverseError", "TPDynamicsError", "TPDynamicsWarning", "FEEDBACK_FORMS", "ExactInverseFeedback",
    "FeedbackMapping", "FixedRandomFeedback", "Layer", "LearnedInverseFeedback", "OriginalFeedback",
    "LayeredNetwork", "make_generator", "NONLINEARITIES", "Identity", "LeakyReLU", "Nonlinearity", "Tanh",
    "get_nonlinearity", "ShermanMorrisonRecord", "denominator_round_off", "robust_gaussian_matrix",
    "robust_sherman_morrison", "singular_value_product", "FixedTarget", "FreeTarget", "LossTarget", "TeachingSignal", "l2_loss",
    "l2_loss_gradient", "available_cores", "default_threads", "get_threads", "set_threads", "thread_limit",
]

# Discrete TP / DTP learning rules of Appendix A (issue 4): ``tpdynamics.training``.
from . import training  # noqa: E402  (imported last: it builds on everything above)
from . import runs  # noqa: E402  (tasks, result store, executors)
from . import errors, registry, serialization, threads, validation  # noqa: E402  (public modules)

__all__ += ["training", "runs", "errors", "registry", "serialization", "threads", "validation"]
