"""tpdynamics: target propagation as network dynamics.

Public API (thesis notation):

* nonlinearities ``s`` — :func:`get_nonlinearity`, :data:`NONLINEARITIES`;
* layers ``f_i``/``g_i`` — :class:`Layer`, :data:`FEEDBACK_FORMS`; network — :class:`LayeredNetwork`;
* dynamics (eq. 6.1) — :class:`MixtureDynamics`, :data:`DYNAMICS`;
* equilibria — :func:`equilibrium`, :class:`EquilibriumResult`, :func:`integrate`;
* robust Sherman–Morrison (Alg. 4.1) — :func:`robust_sherman_morrison`.
"""
from .blocktridiagonal import BlockTridiagonal
from .dynamics import DYNAMICS, MixtureDynamics, MultiplexedDynamics, NetworkDynamics
from .equilibrium import EQUILIBRIUM_SOLVERS, EquilibriumResult, Trajectory, equilibrium, integrate
from .errors import (DivergenceError, EquilibriumNotReachedError, InverseDomainError, MemoryLimitError,
                     SingularMatrixError, SingularWeightError, StaleInverseError, TPDynamicsError, TPDynamicsWarning)
from .layers import (FEEDBACK_FORMS, ExactInverseFeedback, FeedbackMapping, FixedRandomFeedback, Layer,
                     LearnedInverseFeedback, OriginalFeedback)
from .network import LayeredNetwork, make_generator
from .nonlinearities import NONLINEARITIES, Identity, LeakyReLU, Nonlinearity, Tanh, get_nonlinearity
from .sherman_morrison import (ShermanMorrisonRecord, denominator_round_off, robust_gaussian_matrix,
                               robust_sherman_morrison, singular_value_product)
from .targets import FixedTarget, FreeTarget, LossTarget, TeachingSignal, l2_loss, l2_loss_gradient

__version__ = "0.1.0"

__all__ = [
    "BlockTridiagonal", "DYNAMICS", "MixtureDynamics", "MultiplexedDynamics", "NetworkDynamics", "EQUILIBRIUM_SOLVERS",
    "EquilibriumResult", "Trajectory", "equilibrium", "integrate", "DivergenceError",
    "EquilibriumNotReachedError", "InverseDomainError", "MemoryLimitError", "SingularMatrixError",
    "SingularWeightError",
    "StaleInverseError", "TPDynamicsError", "TPDynamicsWarning", "FEEDBACK_FORMS", "ExactInverseFeedback",
    "FeedbackMapping", "FixedRandomFeedback", "Layer", "LearnedInverseFeedback", "OriginalFeedback",
    "LayeredNetwork", "make_generator", "NONLINEARITIES", "Identity", "LeakyReLU", "Nonlinearity", "Tanh",
    "get_nonlinearity", "ShermanMorrisonRecord", "denominator_round_off", "robust_gaussian_matrix",
    "robust_sherman_morrison", "singular_value_product", "FixedTarget", "FreeTarget", "LossTarget", "TeachingSignal", "l2_loss",
    "l2_loss_gradient",
]

# Discrete TP / DTP learning rules of Appendix A (issue 4): ``tpdynamics.training``.
from . import training  # noqa: E402  (imported last: it builds on everything above)

__all__ += ["training"]
