"""S networks of one architecture as one set of stacked tensors (the ensemble dimension).

Design: the ensemble *owns* the storage. ``W_i`` of all S members is one tensor of shape
``(S, n_i, n_{i-1})`` (and so is each feedback matrix: ``W_i^{-1}``, ``Q_{i-1}`` or ``B_{i-1}``);
the members stay ordinary :class:`~tpdynamics.LayeredNetwork` objects whose ``Layer.weight`` and
feedback tensors are *views* into that storage (``stack[s]``). So the same layer objects serve
both worlds: the batched step of :mod:`tpdynamics.ensemble.step` writes the stacked tensors once
for all members, and every per-member consumer (the serial rules, the diagnostics, the dynamics
modules, the continuous models, :meth:`member`) reads the current member weights without a copy.
The nonlinearities are element-wise and shared; the feedback *forms* are the same classes.

Shapes: activations carry a leading ensemble dimension, ``h_i`` of shape ``(S, B, n_i)``; the
batched products are ``h_i = s_i(h_{i-1} W_i^T)`` with ``W_i^T`` the last-two-dimension transpose.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from ..layers import ExactInverseFeedback, FixedRandomFeedback, LearnedInverseFeedback, OriginalFeedback
from ..network import LayeredNetwork
from ..nonlinearities import Identity, LeakyReLU, Tanh
from ..validation import check_device

#: Feedback classes the ensemble knows how to stack (their tensor attribute).
_FEEDBACK_TENSORS = {ExactInverseFeedback: "weight_inverse", LearnedInverseFeedback: "weight",
                     FixedRandomFeedback: "weight", OriginalFeedback: "weight"}


def resolve_device(device) -> torch.device:
    """``torch.device(device)`` (default ``cpu``), with a clear error for an unavailable CUDA device."""
    return check_device(device)


def activate(nonlinearity, a: torch.Tensor, *, slope: bool = True, unit_slope: bool = True):
    """``(s(a), s'(a))`` with the very numbers of ``nonlinearity(a)`` and ``nonlinearity.derivative(a)``, in fewer ops.

    The ensemble's steps are some 40-60 tiny tensor operations, so each one saved counts; the
    registered element-wise functions get fused forms that give the same bits:

    * leaky ReLU: ``F.leaky_relu`` (``a > 0 ? a : a s``, equal to ``where(a >= 0, a, s a)`` also at
      ``a = +-0``) and the slope ``H(a) (1 - s) + s`` with the Heaviside step ``H(0) = 1`` (``H(nan) = 0``,
      as ``nan >= 0`` is false), used where ``(1 - s) + s`` is exactly 1 in the dtype;
    * tanh: ``1 - h^2`` from the output ``h = tanh(a)`` (the derivative's own ``tanh(a)``);
    * identity: ``a`` itself and, with ``unit_slope=False``, ``None`` for its slope (exactly 1; the
      callers skip the product).

    Any other nonlinearity is called as it is. ``slope=False`` returns ``(s(a), None)``.
    """
    kind = type(nonlinearity)
    if kind is Identity:
        return a, (torch.ones_like(a) if slope and unit_slope else None)
    if kind is LeakyReLU:
        negative = nonlinearity.negative_slope
        h = functional.leaky_relu(a, negative)
        if not slope:
            return h, None
        if _unit_sum(negative, a.dtype):
            return h, torch.heaviside(a, _one(a)).mul_(1.0 - negative).add_(negative)
        return h, nonlinearity.derivative(a)
    if kind is Tanh:
        h = torch.tanh(a)
        return h, (1.0 - h ** 2 if slope else None)
    return nonlinearity(a), (nonlinearity.derivative(a) if slope else None)


_UNIT_SUMS: dict = {}
_ONES: dict = {}


def _unit_sum(negative: float, dtype) -> bool:
    """Whether ``1 (1 - s) + s`` is exactly 1 in ``dtype`` (then the fused leaky-ReLU slope is exact)."""
    key = (negative, dtype)
    if key not in _UNIT_SUMS:
        one = torch.ones((), dtype=dtype)
        _UNIT_SUMS[key] = bool((one.mul(1.0 - negative).add(negative) == 1.0).item()) and \
            bool((torch.zeros((), dtype=dtype).mul(1.0 - negative).add(negative) == negative).item())
    return _UNIT_SUMS[key]


def _one(a: torch.Tensor) -> torch.Tensor:
    key = (a.dtype, a.device)
    if key not in _ONES:
        _ONES[key] = torch.ones((), dtype=a.dtype, device=a.device)
    return _ONES[key]


def architecture(network: LayeredNetwork) -> tuple:
    """What members of one ensemble must share: sizes, nonlinearities, feedback classes (and ``t``), dtype."""
    forms = []
    for layer in network.layers:
        fb = layer.feedback
        forms.append(None if fb is None else (type(fb), getattr(getattr(fb, "nonlinearity", None), "spec", None)))
    return (network.layer_sizes, tuple(layer.nonlinearity.spec for layer in network.layers), tuple(forms),
            network.dtype)


class EnsembleNetwork:
    """S :class:`~tpdynamics.LayeredNetwork` members of one architecture with stacked, shared tensors.

    Parameters
    ----------
    networks : sequence of LayeredNetwork
        The members (S >= 1), all of one architecture (:func:`architecture`). Their weight and
        feedback tensors are *re-bound* to views of the stacked storage (module docstring): after
        construction ``networks[s]`` and :meth:`member` ``(s)`` are the same object, always current.
    device : str or torch.device, optional
        Where the stacked tensors live (default ``cpu``); the members' views live there too.

    Attributes
    ----------
    weights : list of Tensor
        ``weights[i - 1]`` is ``W_i`` of every member, shape ``(S, n_i, n_{i-1})``.
    feedback : list of Tensor or None
        ``feedback[i - 1]`` is the matrix of ``g_{i-1}`` (owned by layer ``i``), shape ``(S, n_{i-1}, n_i)``.
    kinds : list of type or None
        The feedback class of each layer.
    weights_t, feedback_t : list of Tensor or None
        Their transposes ``W_i^T`` (views, formed once: the stacks change in place only).
    """

    def __init__(self, networks: Sequence[LayeredNetwork], *, device=None):
        networks = list(networks)
        if not networks:
            raise ValueError("an EnsembleNetwork needs at least one member network.")
        for k, net in enumerate(networks):
            if not isinstance(net, LayeredNetwork):
                raise TypeError(f"networks[{k}] is a {type(net).__name__}, expected a tpdynamics LayeredNetwork.")
        reference = architecture(networks[0])
        for k, net in enumerate(networks[1:], start=1):
            if architecture(net) != reference:
                raise ValueError(f"networks[{k}] has the architecture {architecture(net)[:2]} (sizes, nonlinearities) "
                                 f"or other feedback forms than networks[0] {reference[:2]}; an ensemble stacks "
                                 "members of one architecture.")
        if len({id(net) for net in networks}) != len(networks):
            raise ValueError("networks lists one network object twice; each member needs its own tensors.")
        for net in networks:
            for layer in net.layers:
                if layer.feedback is not None and type(layer.feedback) not in _FEEDBACK_TENSORS:
                    raise TypeError(f"feedback {type(layer.feedback).__name__} cannot be stacked; the ensemble knows "
                                    f"{', '.join(c.__name__ for c in _FEEDBACK_TENSORS)}.")
        self.device = resolve_device(device)
        self.members = networks
        first = networks[0]
        self.size = len(networks)
        self.depth = first.depth
        self.layer_sizes = first.layer_sizes
        self.dtype = first.dtype
        self.nonlinearities = [layer.nonlinearity for layer in first.layers]
        self.kinds = [None if layer.feedback is None else type(layer.feedback) for layer in first.layers]
        # the original form's t_{i-1} (the same spec in every member)
        self.feedback_nonlinearities = [getattr(layer.feedback, "nonlinearity", None) for layer in first.layers]
        self.weights, self.feedback = [], []
        with torch.no_grad():
            for k in range(self.depth):
                stacked = torch.stack([net.layers[k].weight.detach() for net in networks]).to(self.device).contiguous()
                self.weights.append(stacked)
                for s, net in enumerate(networks):
                    net.layers[k].weight = nn.Parameter(stacked[s])
                kind = self.kinds[k]
                if kind is None:
                    self.feedback.append(None)
                    continue
                name = _FEEDBACK_TENSORS[kind]
                matrix = torch.stack([getattr(net.layers[k].feedback, name).detach() for net in networks]
                                     ).to(self.device).contiguous()
                self.feedback.append(matrix)
                for s, net in enumerate(networks):
                    fb = net.layers[k].feedback
                    setattr(fb, name, nn.Parameter(matrix[s]) if isinstance(getattr(fb, name), nn.Parameter)
                            else matrix[s])
        self.weights_t = [w.mT for w in self.weights]
        self.feedback_t = [None if m is None else m.mT for m in self.feedback]
        self.sync_members()

    def __len__(self) -> int:
        return self.size

    def member(self, s: int) -> LayeredNetwork:
        """Member ``s`` as a LayeredNetwork (its tensors are views of the stacked storage)."""
        return self.members[s]

    def sync_members(self, members: Sequence[int] | None = None) -> None:
        """Re-take the fingerprints of the members' exact inverses after a batched change (no recomputation)."""
        for s in range(self.size) if members is None else members:
            for layer in self.members[s].layers:
                if isinstance(layer.feedback, ExactInverseFeedback):
                    layer.feedback.mark_synced(layer.weight)

    # -- batched computation ------------------------------------------------------------------------
    def stack(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-member tensors stacked along a new leading dimension, on :attr:`device`."""
        return torch.stack(list(tensors)).to(self.device)

    def forward_pass(self, h0: torch.Tensor, *, unit_slopes: bool = True) -> tuple[list, list]:
        """Batched :func:`~tpdynamics.training.rules.forward_pass`: ``h_i = s_i(h_{i-1} W_i^T)``, ``h0`` (S, B, n_0).

        Returns ``[h_0, ..., h_L]`` and ``[None, d_1, ..., d_L]`` (the slopes ``s_i'`` at the pre-activations;
        with ``unit_slopes=False`` an identity layer's is ``None``, meaning exactly 1: :func:`activate`).
        """
        activations, derivatives = [h0], [None]
        for weight_t, nonlinearity in zip(self.weights_t, self.nonlinearities):
            h, d = activate(nonlinearity, torch.bmm(activations[-1], weight_t), unit_slope=unit_slopes)
            activations.append(h)
            derivatives.append(d)
        return activations, derivatives

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        """The output ``h_L`` of every member, ``(S, B, n_L)``."""
        h = h0
        for weight_t, nonlinearity in zip(self.weights_t, self.nonlinearities):
            h = activate(nonlinearity, torch.bmm(h, weight_t), slope=False)[0]
        return h

    def feedback_forward(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``g_{i-1}(h_i)`` of layer ``i`` for every member, and the members whose ``h_i`` left the inverse's domain.

        Returns
        -------
        value : Tensor, shape (S, B, n_{i-1})
        outside : Tensor of bool, shape (S,), or None
            ``None`` when the inverse nonlinearity is defined everywhere (no check needed).
        """
        kind, matrix_t = self.kinds[i - 1], self.feedback_t[i - 1]
        if kind is OriginalFeedback:
            return activate(self.feedback_nonlinearities[i - 1], torch.bmm(h, matrix_t), slope=False)[0], None
        nonlinearity = self.nonlinearities[i - 1]
        outside = None
        if nonlinearity.inverse_bound is not None:
            outside = (~nonlinearity.in_inverse_domain(h)).flatten(1).any(1)
        return torch.bmm(nonlinearity.inverse(h, check=False), matrix_t), outside
