"""Errors and warnings raised by widenets.

Every error a user can cause is a :class:`WidenetsError` (a ``ValueError``) whose message
names the argument and what was expected: "`<arg>` must be <expected>; got <actual>."
The command line prints such errors as one line and exits with status 2.
"""

from __future__ import annotations


class WidenetsError(ValueError):
    """Base class of every error caused by bad input to widenets."""


class ShapeError(WidenetsError):
    """An input has the wrong rank, size or number of channels."""


class HyperparameterError(WidenetsError):
    """A hyperparameter is impossible (negative std, unknown padding, ...)."""


class InputValueError(WidenetsError):
    """An input contains NaN or infinity, or values outside the allowed range."""


class MemoryPlanError(WidenetsError):
    """A computation would need more memory than is available."""


class NotPositiveDefiniteError(WidenetsError):
    """A kernel matrix that must be positive definite is not."""


class DataNotFoundError(WidenetsError, FileNotFoundError):
    """A bundled data set is not where widenets looks for it."""


class WidenetsWarning(UserWarning):
    """A silent approximation would otherwise happen (jitter added, quadrature used, ...)."""


def expected(arg: str, what: str, got: object) -> str:
    """Format the house error message "`arg` must be what; got got."."""
    return f"`{arg}` must be {what}; got {got}."
