"""Layer objects: the forward mapping ``f_i`` and the feedback mapping that approximates its inverse.

Layer ``i`` (``i = 1..L``) owns

* the forward (basal) mapping ``f_i(h_{i-1}) = s_i(W_i h_{i-1})`` (eqs. 3.1, 4.1, 6.2), and
* the feedback (apical) mapping ``g_{i-1}(h_i)`` that approximates ``f_i^{-1}`` and carries
  ``h_i`` back to the space of ``h_{i-1}`` (eqs. 3.8, 4.3, 6.4). The thesis indexes the
  feedback by the layer it lands in (``g_{i-1}``); it lives here because every form of it
  is built from this layer's weight and nonlinearity.

The feedback forms (registry :data:`FEEDBACK_FORMS`):

========== ============================================ ==================================
name       ``g_{i-1}(h_i)``                              thesis
========== ============================================ ==================================
exact      ``W_i^{-1} s_i^{-1}(h_i)``                    eqs. 4.3, 4.16, 6.4; Alg. 4.1
learned    ``Q_{i-1} s_i^{-1}(h_i)``                     eq. 4.90 (the thesis's form)
original   ``t_{i-1}(Q_{i-1} h_i)``                      eq. 3.9 (Lee et al.), A.14-A.17
fixed      ``B_{i-1} s_i^{-1}(h_i)``, ``B`` fixed random  feedback-alignment limit (after Thm 4.9)
========== ============================================ ==================================

No biases are used, as in the thesis. All tensors are batch-first: a batch of
activations of layer ``i`` has shape ``(B, n_i)``.
"""
from __future__ import annotations

import abc
import math
import warnings

import torch
from torch import nn

from .errors import SingularWeightError, StaleInverseError, TPDynamicsWarning
from .nonlinearities import Nonlinearity, get_nonlinearity
from .registry import Registry
from .sherman_morrison import ShermanMorrisonRecord, robust_sherman_morrison_


def _inverse_or_raise(weight: torch.Tensor, what: str, *, stacklevel: int = 5) -> torch.Tensor:
    """``weight^{-1}``, with a :class:`SingularWeightError` for non-square or (numerically) singular weights
    and a :class:`TPDynamicsWarning` for ill-conditioned ones (``stacklevel`` points it at the caller)."""
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise SingularWeightError(
            f"{what} is {tuple(weight.shape)}, but the exact feedback W^-1 s^-1 needs a square weight: "
            "layers 1..L must all have the same size (the input size may differ). Use feedback='learned' "
            "for layers of unequal size (it learns the pseudo-inverse, Thm 4.6-4.7)."
        )
    s = torch.linalg.svdvals(weight.detach())
    eps = torch.finfo(weight.dtype).eps
    if s.min() <= s.max() * weight.shape[0] * eps:
        raise SingularWeightError(
            f"{what} is singular (sigma_min={float(s.min()):.3g}, sigma_max={float(s.max()):.3g}), so the exact "
            "feedback W^-1 s^-1 does not exist. Initialise with init_threshold > 0 (section 4.2.3) or use a "
            "learned feedback."
        )
    # 1/sqrt(eps) (6.7e7 in float64, 2.9e3 in float32): beyond it W^-1 keeps fewer than half of the
    # digits, and the feedback W^-1 s^-1 magnifies a target displacement by up to 1/sigma_min
    condition = float(s.max() / s.min())
    if condition > 1.0 / math.sqrt(eps):
        warnings.warn(
            f"{what} is ill-conditioned: condition number {condition:.3g} > 1/sqrt(eps) = {1 / math.sqrt(eps):.3g} "
            f"({weight.dtype}), so its inverse keeps only about {max(-math.log10(condition * eps), 0):.0f} of "
            f"{-math.log10(eps):.0f} digits and the exact feedback W^-1 s^-1 amplifies targets by up to "
            f"1/sigma_min = {1 / float(s.min()):.3g}. Redraw the weight (init_threshold > 0, section 4.2.3), use "
            "weight_init='orthogonal', or float64.", TPDynamicsWarning, stacklevel=stacklevel)
    return torch.linalg.inv(weight.detach())


class FeedbackMapping(nn.Module, abc.ABC):
    """Abstract feedback mapping ``g_{i-1}``: from ``h_i`` (shape ``(B, n_i)``) to ``(B, n_{i-1})``.

    Subclasses implement :meth:`forward`, :meth:`jacobian` and :meth:`sympy_forward`;
    each receives the owning :class:`Layer` so it can use ``W_i`` and ``s_i``.
    """

    name: str = "abstract"

    @abc.abstractmethod
    def forward(self, h: torch.Tensor, layer: "Layer", *, check: bool = True) -> torch.Tensor:
        raise NotImplementedError

    @abc.abstractmethod
    def jacobian(self, h: torch.Tensor, layer: "Layer") -> torch.Tensor:
        """``d g_{i-1}(h) / d h``, shape ``(B, n_{i-1}, n_i)``."""
        raise NotImplementedError

    @abc.abstractmethod
    def sympy_forward(self, h: list, layer: "Layer") -> list:
        """The mapping as a list of sympy expressions of the symbols ``h`` (length ``n_i``)."""
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def matrix(self) -> torch.Tensor:
        """The feedback weight (``W_i^{-1}``, ``Q_{i-1}`` or ``B_{i-1}``), shape ``(n_{i-1}, n_i)``."""
        raise NotImplementedError

    # The multiplexed network (section 6.9.2) models the apical compartment as a voltage ``a`` that
    # relaxes to a synaptic input and a rate ``t(a)`` read from it (eqs. 6.44, 6.46); every form splits
    # as g(h) = rate_from_voltage(voltage_input(h)).
    def voltage_input(self, h: torch.Tensor, layer: "Layer", *, check: bool = True) -> torch.Tensor:
        """The apical voltage ``g`` drives towards, shape ``(B, n_{i-1})`` (``M s^{-1}(h)`` or ``Q h``)."""
        return self.forward(h, layer, check=check)

    def rate_from_voltage(self, a: torch.Tensor) -> torch.Tensor:
        """The apical rate read from the voltage ``a`` (identity, or ``t(a)`` for the original form)."""
        return a

    def rate_derivative(self, a: torch.Tensor) -> torch.Tensor:
        """Element-wise derivative of :meth:`rate_from_voltage`."""
        return torch.ones_like(a)

    def voltage_jacobian(self, h: torch.Tensor, layer: "Layer") -> torch.Tensor:
        """``d voltage_input(h) / d h``, shape ``(B, n_{i-1}, n_i)``."""
        return self.jacobian(h, layer)


FEEDBACK_FORMS: Registry[type[FeedbackMapping]] = Registry("feedback form", FeedbackMapping, "feedback")


class _MatrixTimesInverseNonlinearity(FeedbackMapping):
    """Shared form ``M s_i^{-1}(h)`` of the exact, learned and fixed feedback."""

    default_init = "pinv"

    @classmethod
    def initialize(cls, layer: "Layer", *, init: str | None = None, generator=None, **_):
        return cls(_initial_feedback_matrix(layer, init or cls.default_init, generator))

    def forward(self, h, layer, *, check=True):
        return layer.nonlinearity.inverse(h, check=check) @ self.matrix.T

    def jacobian(self, h, layer):
        return self.matrix.unsqueeze(0) * layer.nonlinearity.inverse_derivative(h).unsqueeze(-2)

    def sympy_forward(self, h, layer):
        import sympy  # lazily: only the symbolic Jacobian needs it
        m = sympy.Matrix(self.matrix.detach().cpu().tolist())
        t = sympy.Matrix([layer.nonlinearity.sympy_inverse(x) for x in h])
        return list(m * t)


@FEEDBACK_FORMS.register("exact")
class ExactInverseFeedback(_MatrixTimesInverseNonlinearity):
    """``g_{i-1}(h_i) = W_i^{-1} s_i^{-1}(h_i)`` (eq. 4.16), the exact inverse of ``f_i``.

    ``W_i^{-1}`` is kept as a buffer. Change ``W_i`` through :meth:`Layer.rank_one_update`
    (robust Sherman–Morrison, Algorithm 4.1) or call :meth:`Layer.sync_inverse` after any
    other change. Every use of the inverse first checks that the weight is still the one it was
    synced with, however it was changed (``weight.data[...] = ...`` and numpy views bypass
    torch's version counter): a fingerprint ``W r`` with a fixed random probe ``r`` is taken at
    sync time and recomputed before each use (``O(n^2)``, one matrix-vector product). A changed
    fingerprint is confirmed numerically (``max |W W^-1 - I| > sqrt(eps)``) and raises
    :class:`StaleInverseError` instead of giving a wrong number; a change that keeps the inverse
    accurate (e.g. ``load_state_dict`` of a matching pair) is accepted and re-synced.
    """

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight_inverse", _inverse_or_raise(weight, "the layer weight"))
        self.mark_synced(weight)

    @classmethod
    def initialize(cls, layer: "Layer", **_):
        return cls(layer.weight)

    @property
    def matrix(self):
        return self.weight_inverse

    #: Rank-one updates between full recomputations of the fingerprint (each adds rounding to its tolerance).
    refresh_every = 64

    @staticmethod
    def _probe(weight: torch.Tensor) -> torch.Tensor:
        # fixed, so that equal weights give equal fingerprints; random, so that no structured change
        # (a row, a column, a rank-one update) is orthogonal to it except with probability zero
        generator = torch.Generator().manual_seed(0x5EED)
        return torch.randn(weight.shape[1], generator=generator, dtype=torch.float64).to(weight)

    def mark_synced(self, weight: torch.Tensor) -> None:
        """Record the fingerprint ``W r`` of ``weight``: the kept inverse is declared to be its inverse."""
        with torch.no_grad():
            w = weight.detach()
            probe = self._probe(w)
            self._fingerprint = (probe, torch.mv(w, probe))
            self._weight_norm = float(torch.linalg.vector_norm(w))  # an upper bound of ||W||_F, kept current
            # recomputing W r with the same W differs at most by the rounding of the sums, n eps ||W||_F ||r||
            self._fingerprint_tolerance = 4 * w.shape[1] * torch.finfo(w.dtype).eps * self._weight_norm * float(
                torch.linalg.vector_norm(probe))
            self._updates = 0

    def advance_synced(self, weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, beta: float) -> None:
        """Follow the rank-one change ``W <- W + beta u v^T`` just applied to ``weight`` and its inverse.

        ``W' r = W r + beta (v . r) u`` in ``O(n)`` instead of a new ``O(n^2)`` product; the tolerance
        grows by the rounding of the step (of the entries of ``W'`` and of the sum), and every
        :attr:`refresh_every` updates the fingerprint is recomputed from ``weight``.
        """
        self._updates += 1
        if self._updates >= self.refresh_every:
            self.mark_synced(weight)
            return
        with torch.no_grad():
            probe, fingerprint = self._fingerprint
            scale = beta * float(torch.dot(v, probe))
            fingerprint.add_(u, alpha=scale)
            step = abs(beta) * float(torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v))
            self._weight_norm += step
            eps = torch.finfo(fingerprint.dtype).eps
            self._fingerprint_tolerance += 4 * eps * (self._weight_norm * float(torch.linalg.vector_norm(probe))
                                                      + float(fingerprint.abs().max()) + abs(scale) * float(u.abs().max()))

    def check_synced(self, weight: torch.Tensor) -> None:
        """Raise :class:`StaleInverseError` if ``weight_inverse`` is not the inverse of ``weight``."""
        with torch.no_grad():
            w = weight.detach()
            probe, fingerprint = self._fingerprint
            if probe.dtype == w.dtype and probe.device == w.device and probe.shape[0] == w.shape[1]:
                current = torch.mv(w, probe)
                if torch.equal(current, fingerprint) or float(
                        (current - fingerprint).abs().max()) <= self._fingerprint_tolerance:
                    return
            if self.weight_inverse.shape != w.shape[::-1]:
                raise StaleInverseError(f"The kept inverse has shape {tuple(self.weight_inverse.shape)} but the weight "
                                        f"is {tuple(w.shape)}; call layer.sync_inverse() after replacing the weight.")
            eye = torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
            error = (w @ self.weight_inverse.to(w) - eye).abs().max().item()
        if error <= math.sqrt(torch.finfo(w.dtype).eps):
            self.mark_synced(w)
            return
        raise StaleInverseError(
            f"The kept inverse no longer matches the weight (max |W W^-1 - I| = {error:.3g}): the weight was "
            "changed without updating its inverse. Use layer.rank_one_update(u, v) (robust Sherman-"
            "Morrison, Alg. 4.1) or call layer.sync_inverse() after changing the weight."
        )

    def forward(self, h, layer, *, check=True):
        self.check_synced(layer.weight)
        return super().forward(h, layer, check=check)

    def jacobian(self, h, layer):
        self.check_synced(layer.weight)
        return super().jacobian(h, layer)


def _initial_feedback_matrix(layer: "Layer", init: str, generator) -> torch.Tensor:
    weight = layer.weight.detach()
    if init == "pinv":
        return torch.linalg.pinv(weight)
    if init == "random":
        n_out = weight.shape[0]
        return torch.randn(weight.shape[1], n_out, generator=generator, dtype=weight.dtype) / math.sqrt(n_out)
    raise ValueError(f"feedback_init={init!r} is not valid; use 'pinv' (the (pseudo-)inverse of W, as in "
                     "section 5.2.2) or 'random'.")


@FEEDBACK_FORMS.register("learned")
class LearnedInverseFeedback(_MatrixTimesInverseNonlinearity):
    """``g_{i-1}(h_i) = Q_{i-1} s_i^{-1}(h_i)`` (eq. 4.90) with a trainable ``Q_{i-1}``.

    This form can represent ``f_i^{-1}`` exactly when ``W_i`` is square (section 4.3.2);
    trained on white noise it converges to ``W_i^+`` (Thms 4.6-4.7).
    """

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(matrix.detach().clone())

    @property
    def matrix(self):
        return self.weight


@FEEDBACK_FORMS.register("fixed")
class FixedRandomFeedback(_MatrixTimesInverseNonlinearity):
    """``g_{i-1}(h_i) = B_{i-1} s_i^{-1}(h_i)`` with ``B`` fixed (a buffer, never trained).

    The feedback-alignment limit mentioned after Thm 4.9: backward weights frozen at
    random values (``N(0, 1/n_i)`` entries by default).
    """

    default_init = "random"

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", matrix.detach().clone())

    @property
    def matrix(self):
        return self.weight


@FEEDBACK_FORMS.register("original")
class OriginalFeedback(FeedbackMapping):
    """``g_{i-1}(h_i) = t_{i-1}(Q_{i-1} h_i)`` (eq. 3.9), the auto-encoder form of Lee et al.

    ``t`` defaults to the nonlinearity ``s_{i-1}`` of the layer below, as in Algorithms
    A.14-A.17 (``s_i(Q_i h)``); the input layer has no nonlinearity, so there the identity is used.
    """

    default_init = "pinv"

    def __init__(self, matrix: torch.Tensor, nonlinearity: Nonlinearity | str = "identity"):
        super().__init__()
        self.weight = nn.Parameter(matrix.detach().clone())
        self.nonlinearity = get_nonlinearity(nonlinearity, argument="feedback nonlinearity")

    @classmethod
    def initialize(cls, layer: "Layer", *, init: str | None = None, generator=None,
                   lower_nonlinearity: Nonlinearity | None = None, **_):
        return cls(_initial_feedback_matrix(layer, init or cls.default_init, generator),
                   lower_nonlinearity or "identity")

    @property
    def matrix(self):
        return self.weight

    def preactivation(self, h):
        return h @ self.weight.T

    def forward(self, h, layer, *, check=True):
        return self.nonlinearity(self.preactivation(h))

    def voltage_input(self, h, layer, *, check=True):
        return self.preactivation(h)

    def rate_from_voltage(self, a):
        return self.nonlinearity(a)

    def rate_derivative(self, a):
        return self.nonlinearity.derivative(a)

    def voltage_jacobian(self, h, layer):
        return self.weight.unsqueeze(0).expand(h.shape[0], -1, -1)

    def jacobian(self, h, layer):
        return self.nonlinearity.derivative(self.preactivation(h)).unsqueeze(-1) * self.weight.unsqueeze(0)

    def sympy_forward(self, h, layer):
        import sympy  # lazily: only the symbolic Jacobian needs it
        q = sympy.Matrix(self.weight.detach().cpu().tolist())
        return [self.nonlinearity.sympy_expression(a) for a in q * sympy.Matrix(h)]


class Layer(nn.Module):
    """Layer ``i``: forward mapping ``f_i(h) = s_i(W_i h)`` and, optionally, feedback ``g_{i-1} ~ f_i^{-1}``.

    Parameters
    ----------
    weight : Tensor, shape (n_i, n_{i-1})
        Basal (forward) weight ``W_i``; becomes an ``nn.Parameter``.
    nonlinearity : str or Nonlinearity
        ``s_i``, e.g. ``"leaky_relu:0.35"``.
    feedback : str, FeedbackMapping subclass, FeedbackMapping or None
        Form of ``g_{i-1}`` (see :data:`FEEDBACK_FORMS`); ``None`` for no feedback (the first
        layer, whose input ``h_0`` is clamped).
    feedback_init : {'pinv', 'random'}, optional
        Initial feedback weight for the learned, original and fixed forms.
    lower_nonlinearity : Nonlinearity, optional
        ``s_{i-1}``, used by the original form.
    generator : torch.Generator, optional
        Randomness for a random feedback initialisation.
    """

    def __init__(self, weight: torch.Tensor, nonlinearity="leaky_relu:0.35", feedback=None, *,
                 feedback_init: str | None = None, lower_nonlinearity=None, generator=None):
        super().__init__()
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            raise ValueError(f"weight must be a 2-D tensor of shape (n_i, n_(i-1)), got "
                             f"{getattr(weight, 'shape', type(weight).__name__)}.")
        if not torch.isfinite(weight).all():
            raise ValueError("weight contains non-finite values.")
        self.weight = nn.Parameter(weight.detach().clone())
        self.nonlinearity = get_nonlinearity(nonlinearity)
        if feedback is None or isinstance(feedback, FeedbackMapping):
            self.feedback = feedback
        else:
            cls = FEEDBACK_FORMS.get(feedback)
            lower = get_nonlinearity(lower_nonlinearity) if lower_nonlinearity is not None else None
            self.feedback = cls.initialize(self, init=feedback_init, generator=generator,
                                           lower_nonlinearity=lower)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    @property
    def feedback_form(self) -> str | None:
        return None if self.feedback is None else self.feedback.name

    def extra_repr(self) -> str:
        return (f"{self.in_features} -> {self.out_features}, s={self.nonlinearity.spec}, "
                f"feedback={self.feedback_form}")

    # -- forward mapping f_i ----------------------------------------------------------------
    def preactivation(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``a_i = W_i h_{i-1}``, shape ``(B, n_i)``."""
        return h_prev @ self.weight.T

    def forward(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``f_i(h_{i-1}) = s_i(W_i h_{i-1})`` (eq. 6.2), shape ``(B, n_i)``."""
        return self.nonlinearity(self.preactivation(h_prev))

    def derivative(self, h_prev: torch.Tensor) -> torch.Tensor:
        """Diagonal of ``D_{s_i} = s_i'(W_i h_{i-1})``, shape ``(B, n_i)``."""
        return self.nonlinearity.derivative(self.preactivation(h_prev))

    def jacobian(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``J_{f_i} = D_{s_i} W_i`` (eq. 6.41), shape ``(B, n_i, n_{i-1})``."""
        return self.derivative(h_prev).unsqueeze(-1) * self.weight.unsqueeze(0)

    def sympy_forward(self, h_prev: list) -> list:
        """``f_i`` as sympy expressions of the symbols ``h_prev`` (length ``n_{i-1}``)."""
        import sympy  # lazily: only the symbolic Jacobian needs it
        w = sympy.Matrix(self.weight.detach().cpu().tolist())
        return [self.nonlinearity.sympy_expression(a) for a in w * sympy.Matrix(h_prev)]

    # -- feedback mapping g_{i-1} -------------------------------------------------------------
    def _require_feedback(self) -> FeedbackMapping:
        if self.feedback is None:
            raise ValueError("this layer has no feedback mapping (feedback=None); build it with "
                             "feedback='exact', 'learned', 'original' or 'fixed'.")
        return self.feedback

    def feedback_forward(self, h: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """``g_{i-1}(h_i)``, shape ``(B, n_{i-1})``; ``check`` validates the inverse nonlinearity's domain."""
        return self._require_feedback()(h, self, check=check)

    def feedback_jacobian(self, h: torch.Tensor) -> torch.Tensor:
        """``J_{g_{i-1}} = d g_{i-1}(h_i) / d h_i``, shape ``(B, n_{i-1}, n_i)``."""
        return self._require_feedback().jacobian(h, self)

    # -- weight changes ---------------------------------------------------------------------
    @torch.no_grad()
    def rank_one_update(self, u: torch.Tensor, v: torch.Tensor, epsilon: float = 0.5
                        ) -> ShermanMorrisonRecord | None:
        """Apply ``W_i <- W_i + u v^T``, keeping an exact inverse exact (Algorithm 4.1).

        With exact feedback the robust Sherman–Morrison update is used: if
        ``|1 + v^T W^{-1} u| < epsilon`` the step is rescaled by ``beta = 1/(epsilon - d)``.
        Other feedback forms just add ``u v^T``.

        Parameters
        ----------
        u : Tensor, shape (n_i,)
        v : Tensor, shape (n_{i-1},)
        epsilon : float
            Threshold of Algorithm 4.1 (ignored without exact feedback).

        Returns
        -------
        ShermanMorrisonRecord or None
            The record of the Sherman–Morrison step (None without exact feedback).
        """
        if u.shape != (self.out_features,) or v.shape != (self.in_features,):
            raise ValueError(f"rank_one_update needs u of shape ({self.out_features},) and v of shape "
                             f"({self.in_features},), got {tuple(u.shape)} and {tuple(v.shape)}.")
        if isinstance(self.feedback, ExactInverseFeedback):
            self.feedback.check_synced(self.weight)
            # in place (addr_): no n x n temporaries, the O(n^2) cost of eq. 4.19 without allocation overhead
            record = robust_sherman_morrison_(self.weight, self.feedback.weight_inverse, u, v, epsilon)
            self.feedback.advance_synced(self.weight, u, v, record.beta)
            return record
        self.weight.add_(torch.outer(u, v))
        return None

    @torch.no_grad()
    def sync_inverse(self) -> None:
        """Recompute the exact inverse from the current weight (``O(n^3)``); no-op for other forms."""
        if isinstance(self.feedback, ExactInverseFeedback):
            self.feedback.weight_inverse.copy_(_inverse_or_raise(self.weight, "the layer weight", stacklevel=3))
            self.feedback.mark_synced(self.weight)
