"""Exceptions and warnings raised by tpdynamics.

Every numerical failure has its own type so that callers can tell a bad input
(``ValueError`` / ``TypeError``) from a network whose dynamics misbehave.
"""
from __future__ import annotations


class TPDynamicsWarning(UserWarning):
    """Warning about an option or a regime that is allowed but probably not intended."""


class TPDynamicsError(Exception):
    """Base class of the numerical failures reported by tpdynamics."""


class InverseDomainError(TPDynamicsError, ValueError):
    """An inverse nonlinearity was evaluated outside its domain (e.g. ``atanh`` of ``|y| >= 1``)."""


class SingularMatrixError(TPDynamicsError, ValueError):
    """A matrix that must be inverted (a weight, a Jacobian block) is singular."""


class SingularWeightError(SingularMatrixError):
    """A weight matrix that must be inverted is singular or not square."""


class StaleInverseError(TPDynamicsError, RuntimeError):
    """An exact-inverse feedback mapping no longer matches its forward weight."""


class MemoryLimitError(ValueError, MemoryError):
    """A requested size needs more memory than the machine has available (raised before allocating).

    A ``ValueError`` (the size is a bad input on this machine) and a ``MemoryError``.
    """


class MissingExtraError(ImportError, ValueError):
    """An optional dependency that the requested feature needs is not installed; the message names the extra.

    An ``ImportError``, and a ``ValueError`` (the option that asked for it cannot be used on this
    installation), so the command line reports it in one line.
    """


class SchedulerUnreachableError(ConnectionError, ValueError):
    """No Dask scheduler answered at the given address within the connection timeout.

    A ``ConnectionError``, and a ``ValueError`` (the address given is not usable), so the command line
    reports it in one line.
    """


class DivergenceError(TPDynamicsError, FloatingPointError):
    """The network state became non-finite during integration.

    Attributes
    ----------
    t : float
        Time at which the non-finite value was found.
    layer : int
        Index ``i`` of the first layer ``h_i`` with a non-finite entry.
    """

    def __init__(self, message: str, t: float, layer: int):
        super().__init__(message)
        self.t = t
        self.layer = layer


class EquilibriumNotReachedError(TPDynamicsError, RuntimeError):
    """Raised by :meth:`EquilibriumResult.raise_for_status` when the solve did not converge.

    ``members``: for an ensemble's solve, the members that did not settle (empty otherwise), so that a caller
    may go on without them.
    """

    def __init__(self, message: str, result=None, *, members=()):
        super().__init__(message)
        self.result = result
        self.members = list(members)
