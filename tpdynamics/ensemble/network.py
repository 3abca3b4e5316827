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

from ..layers import ExactInverseFeedback, FixedRandomFeedback, LearnedInverseFeedback, OriginalFeedback
from ..network import LayeredNetwork
from ..validation import check_device

#: Feedback classes the ensemble knows how to stack (their tensor attribute).
_FEEDBACK_TENSORS = {ExactInverseFeedback: "weight_inverse", LearnedInverseFeedback: "weight",
                     FixedRandomFeedback: "weight", OriginalFeedback: "weight"}


def resolve_device(device) -> torch.device:
    """``torch.device(device)`` (default ``cpu``), with a clear error for an unavailable CUDA device."""
    return check_device(device)


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

    def forward_pass(self, h0: torch.Tensor) -> tuple[list, list]:
        """Batched :func:`~tpdynamics.training.rules.forward_pass`: ``h_i = s_i(h_{i-1} W_i^T)``, ``h0`` (S, B, n_0).

        Returns ``[h_0, ..., h_L]`` and ``[None, d_1, ..., d_L]`` (the slopes ``s_i'`` at the pre-activations).
        """
        activations, derivatives = [h0], [None]
        for weight, nonlinearity in zip(self.weights, self.nonlinearities):
            a = activations[-1] @ weight.mT
            activations.append(nonlinearity(a))
            derivatives.append(nonlinearity.derivative(a))
        return activations, derivatives

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        """The output ``h_L`` of every member, ``(S, B, n_L)``."""
        h = h0
        for weight, nonlinearity in zip(self.weights, self.nonlinearities):
            h = nonlinearity(h @ weight.mT)
        return h

    def feedback_forward(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``g_{i-1}(h_i)`` of layer ``i`` for every member, and the members whose ``h_i`` left the inverse's domain.

        Returns
        -------
        value : Tensor, shape (S, B, n_{i-1})
        outside : Tensor of bool, shape (S,), or None
            ``None`` when the inverse nonlinearity is defined everywhere (no check needed).
        """
        kind, matrix = self.kinds[i - 1], self.feedback[i - 1]
        if kind is OriginalFeedback:
            return self.feedback_nonlinearities[i - 1](h @ matrix.mT), None
        nonlinearity = self.nonlinearities[i - 1]
        outside = None
        if nonlinearity.inverse_bound is not None:
            outside = (~nonlinearity.in_inverse_domain(h)).flatten(1).any(1)
        return nonlinearity.inverse(h, check=False) @ matrix.mT, outside
