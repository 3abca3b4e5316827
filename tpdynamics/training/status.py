"""The status vocabulary of training runs (:class:`~tpdynamics.training.RunHistory`, :class:`TrainingResult`)."""
from __future__ import annotations

import enum


class TrainingStatus(str, enum.Enum):
    """How a training run ended (:attr:`RunHistory.status`, :attr:`TrainingResult.status`).

    A ``str`` enum: members equal, print as and are written to JSON as their values (lower-case words
    joined by underscores, as :class:`tpdynamics.EquilibriumStatus`).
    """

    COMPLETED = "completed"
    """Every epoch ran."""
    DIVERGED = "diverged"
    """A loss became non-finite; the history is kept up to the last finite epoch."""
    NUMERICAL_ERROR = "numerical_error"
    """The algorithm failed numerically (singular weight, inverse outside its domain, ...)."""

    __str__ = str.__str__
    __format__ = str.__format__
