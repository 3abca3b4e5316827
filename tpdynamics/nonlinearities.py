"""Invertible element-wise nonlinearities ``s`` (thesis sections 4.1 and 4.3.2).

Each nonlinearity gives its value, derivative, inverse (with the inverse's domain
checked), the derivative of the inverse, and the same function as a sympy
expression, so that the symbolic analysis derives from the very objects the
numerical code uses.

A nonlinearity is named wherever one is accepted by a spec string
``"name"`` or ``"name:parameter"``, e.g. ``"leaky_relu:0.35"``.
"""
from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING

import torch

from .errors import InverseDomainError
from .registry import Registry

if TYPE_CHECKING:  # sympy is imported where a symbolic hook runs (it costs ~0.7 s at start-up)
    import sympy


class Nonlinearity(abc.ABC):
    """Abstract invertible, monotonically increasing element-wise function ``s``.

    Subclasses must implement :meth:`__call__` and :meth:`derivative` (abstract); :meth:`_inverse`
    (exact feedback), :meth:`sympy_expression` and :meth:`sympy_inverse` (symbolic Jacobian) are optional
    hooks that raise ``NotImplementedError`` naming themselves until implemented; the inverse domain is given by
    :attr:`inverse_bound` (``None`` if the inverse is defined on all of R, else ``b``
    such that the inverse needs ``|y| < b``).
    """

    name: str = "abstract"
    inverse_bound: float | None = None

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this nonlinearity with :func:`get_nonlinearity`."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Nonlinearity) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    # -- numerics ---------------------------------------------------------------------------
    @abc.abstractmethod
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @abc.abstractmethod
    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """``s'(x)``, element-wise: the diagonal of ``D_s`` in the thesis."""
        raise NotImplementedError

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # optional hook: only the exact feedback (W^-1 s^-1) and the symbolic layer need it
        raise NotImplementedError(f"{type(self).__name__} defines no inverse: implement _inverse(y) to use it in "
                                  "exact feedback mappings.")

    def in_inverse_domain(self, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the entries of ``y`` at which :meth:`inverse` is defined."""
        if self.inverse_bound is None:
            return torch.ones_like(y, dtype=torch.bool)
        return y.abs() < self.inverse_bound

    def check_inverse_domain(self, y: torch.Tensor, *, where: str = "") -> None:
        """Raise :class:`InverseDomainError` if some entry of ``y`` is outside the inverse's domain."""
        if self.inverse_bound is None:
            return
        bad = ~self.in_inverse_domain(y)
        if bad.any():
            worst = y.detach().abs().max().item()
            raise InverseDomainError(
                f"{self.name} inverse needs |y| < {self.inverse_bound:g}, got max |y| = {worst:.6g} "
                f"at {int(bad.sum())} entr{'y' if int(bad.sum()) == 1 else 'ies'}{(' in ' + where) if where else ''}. "
                f"Inputs to the inverse must lie in the range of {self.name}; for feedback mappings, use "
                "a nonlinearity whose range is all of R (e.g. 'leaky_relu') or keep the activity inside the range."
            )

    def inverse(self, y: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """``s^{-1}(y)``; with ``check=True`` a value outside the domain raises :class:`InverseDomainError`.

        With ``check=False`` out-of-domain entries give non-finite values instead (used by
        solvers that reject such trial points themselves).
        """
        if check:
            self.check_inverse_domain(y)
        return self._inverse(y)

    def inverse_derivative(self, y: torch.Tensor) -> torch.Tensor:
        """``d s^{-1}(y) / dy = 1 / s'(s^{-1}(y))`` (inverse function theorem), element-wise."""
        return 1.0 / self.derivative(self._inverse(y))

    # -- symbolic ---------------------------------------------------------------------------
    def sympy_expression(self, x: sympy.Expr) -> sympy.Expr:
        """The same function as a sympy expression of ``x`` (optional hook of the symbolic Jacobian)."""
        raise NotImplementedError(f"{type(self).__name__} defines no sympy expression: implement "
                                  "sympy_expression(x) to use it in the symbolic Jacobian.")

    def sympy_inverse(self, y: sympy.Expr) -> sympy.Expr:
        """The inverse as a sympy expression of ``y`` (optional hook of the symbolic Jacobian)."""
        raise NotImplementedError(f"{type(self).__name__} defines no sympy inverse: implement "
                                  "sympy_inverse(y) to use it in the symbolic Jacobian of exact feedback.")


NONLINEARITIES: Registry[type[Nonlinearity]] = Registry("nonlinearity", Nonlinearity, "nonlinearity")


@NONLINEARITIES.register("identity")
class Identity(Nonlinearity):
    """``s(x) = x`` (the thesis's linear output layers)."""

    def __call__(self, x):
        return x

    def derivative(self, x):
        return torch.ones_like(x)

    def _inverse(self, y):
        return y

    def inverse_derivative(self, y):
        return torch.ones_like(y)

    def sympy_expression(self, x):
        return x

    def sympy_inverse(self, y):
        return y


@NONLINEARITIES.register("leaky_relu")
class LeakyReLU(Nonlinearity):
    """``s(x) = x`` for ``x >= 0`` and ``a x`` otherwise, ``a > 0`` the negative slope.

    The thesis uses ``a = 0.1`` (toy example, section 5.1.1) and ``a = 0.35``
    (student-teacher experiments, sections 5.1.3 and 5.2.2); 0.35 is the default.
    At ``x = 0`` the derivative is taken as 1 (the right derivative).
    """

    def __init__(self, negative_slope: float = 0.35):
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
                or not math.isfinite(negative_slope) or negative_slope <= 0:
            raise ValueError(
                f"leaky_relu negative_slope={negative_slope!r} must be a finite number > 0 so that the "
                "function is invertible; the thesis uses 0.1 and 0.35 (e.g. 'leaky_relu:0.35')."
            )
        self.negative_slope = float(negative_slope)

    @property
    def spec(self):
        return f"leaky_relu:{self.negative_slope:g}"

    def __call__(self, x):
        return torch.where(x >= 0, x, self.negative_slope * x)

    def derivative(self, x):
        return torch.where(x >= 0, torch.ones_like(x), torch.full_like(x, self.negative_slope))

    def _inverse(self, y):
        return torch.where(y >= 0, y, y / self.negative_slope)

    def inverse_derivative(self, y):
        return torch.where(y >= 0, torch.ones_like(y), torch.full_like(y, 1.0 / self.negative_slope))

    def sympy_expression(self, x):
        import sympy  # lazily: only the symbolic Jacobian needs it
        return sympy.Piecewise((x, x >= 0), (sympy.nsimplify(self.negative_slope) * x, True))

    def sympy_inverse(self, y):
        import sympy  # lazily: only the symbolic Jacobian needs it
        return sympy.Piecewise((y, y >= 0), (y / sympy.nsimplify(self.negative_slope), True))


@NONLINEARITIES.register("tanh")
class Tanh(Nonlinearity):
    """``s(x) = tanh(x)``; its inverse ``atanh`` needs ``|y| < 1``."""

    inverse_bound = 1.0

    def __call__(self, x):
        return torch.tanh(x)

    def derivative(self, x):
        return 1.0 - torch.tanh(x) ** 2

    def _inverse(self, y):
        return torch.atanh(y)

    def inverse_derivative(self, y):
        return 1.0 / (1.0 - y ** 2)

    def sympy_expression(self, x):
        import sympy  # lazily: only the symbolic Jacobian needs it
        return sympy.tanh(x)

    def sympy_inverse(self, y):
        import sympy  # lazily: only the symbolic Jacobian needs it
        return sympy.atanh(y)


def get_nonlinearity(spec, *, argument: str = "nonlinearity") -> Nonlinearity:
    """Build a nonlinearity from a spec.

    Parameters
    ----------
    spec : str, Nonlinearity or Nonlinearity subclass
        ``"identity"``, ``"tanh"``, ``"leaky_relu"`` or ``"leaky_relu:0.35"``; an instance
        is returned as is, a class is instantiated with its defaults.
    argument : str
        Name of the caller's argument, for error messages.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names) or a bad parameter.
    """
    if isinstance(spec, Nonlinearity):
        return spec
    if isinstance(spec, type):
        return NONLINEARITIES.get(spec, argument=argument)()
    if not isinstance(spec, str):
        raise TypeError(f"{argument} must be a spec string such as 'leaky_relu:0.35' or a Nonlinearity, "
                        f"got {type(spec).__name__}.")
    name, _, parameter = spec.strip().partition(":")
    cls = NONLINEARITIES.get(name.strip(), argument=argument)
    if not parameter:
        return cls()
    try:
        value = float(parameter)
    except ValueError:
        raise ValueError(f"{argument}={spec!r}: the parameter after ':' must be a number, "
                         f"e.g. 'leaky_relu:0.35'.") from None
    try:
        return cls(value)
    except TypeError:
        raise ValueError(f"{argument}={spec!r}: {name} takes no parameter; use {name!r}.") from None
