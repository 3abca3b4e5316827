"""The single-phase mixture dynamics of section 6.3 (eq. 6.1).

.. math::

    \\tau \\frac{d h_i}{dt} = -h_i + (1-\\mu) f_i(h_{i-1}) + \\mu g_i(h_{i+1}), \\qquad i = 1..L,

with ``h_0`` clamped to the input and ``g_L = h_L^trgt`` the teaching signal (eq. 6.3).
The update is a convex combination of the basal (forward) and apical (feedback)
inputs, not a sum, so with exact inverses and no teaching signal the forward pass is a
fixed point for every ``mu`` (section 6.4).

Which mapping feeds which layer is read from ``network.graph``: each layer node needs
one ``forward`` in-edge and one ``feedback`` or ``teaching`` in-edge.
"""
from __future__ import annotations

import torch

from ..validation import check_mu
from ..blocktridiagonal import BlockTridiagonal
from ..network import FEEDBACK, FORWARD, TEACHING, LayeredNetwork
from ..targets import TeachingSignal, make_teaching_signal
from .base import DYNAMICS, NetworkDynamics


@DYNAMICS.register("single_phase")
class MixtureDynamics(NetworkDynamics):
    """Single-phase mixture dynamics, eq. (6.1), as a torchdiffeq-ready module.

    Parameters
    ----------
    network : LayeredNetwork
        Layers ``2..L`` must have feedback mappings (``g_1..g_{L-1}``).
    h0 : Tensor, shape (B, n_0)
        Clamped input.
    mu : float
        Mixing coefficient in ``[0, 1)`` (the thesis uses ``0 < mu < 0.5``; above 0.5 warns).
    tau : float
        Neural time constant.
    target : Tensor, shape (B, n_L), optional
        Fixed output target ``h_L^trgt``.
    label : Tensor, shape (B, n_L), optional
        Label ``y`` for the L2 target ``h_L - eta_hat (h_L - y)`` of eq. (6.10); needs ``eta_hat``.
    eta_hat : float, optional
        Output target step size.
    teaching : TeachingSignal, optional
        Any teaching signal object. With none of ``target``, ``label``, ``teaching`` the output is
        free (``h_L^trgt = h_L``).
    device : str or torch.device, optional
        Where to compute (:class:`~tpdynamics.NetworkDynamics`): ``h0``, ``target`` and ``label`` are moved
        there; the network must be there already. Default: where ``h0`` is.

    Notes
    -----
    State: ``(h_1, ..., h_L)`` stacked, shape ``(B, n_1 + ... + n_L)``.
    """

    def __init__(self, network: LayeredNetwork, h0: torch.Tensor, *, mu: float, tau: float = 1.0,
                 target=None, label=None, eta_hat=None, teaching: TeachingSignal | None = None, device=None):
        super().__init__(network, h0, tau=tau, device=device)
        if device is not None:
            target, label = (None if t is None else t.to(self.device) for t in (target, label))
        self.mu = check_mu(mu)
        self.teaching = make_teaching_signal(target=target, label=label, eta_hat=eta_hat, teaching=teaching)
        self.teaching.validate(self.batch_size, network.layer_sizes[-1], network.dtype)
        self._edges = self._read_graph(network, "mixture")
        # the evaluation plan, read from the graph once (the hot path of every solver): per layer node,
        # its in-edges as (source, kind, owning Layer, mixing weight)
        self._plan = [[(source, kind, None if owner is None else network.layer(owner), self.edge_weight(kind))
                       for source, kind, owner in incoming] for incoming in self._edges]

    def edge_weight(self, kind: str) -> float:
        """Mixing weight of an edge kind: ``1 - mu`` for forward, ``mu`` for feedback and teaching."""
        return 1.0 - self.mu if kind == FORWARD else self.mu

    def inputs(self):
        return (self.h0,) + self.teaching.tensors()

    def _node_drive(self, node: int, blocks, check: bool) -> torch.Tensor:
        """``-h_i + (1-mu) f_i(h_{i-1}) + mu g_i(h_{i+1})`` of one layer node, from :attr:`_plan`.

        ``f_i`` is the owning layer's ``forward``, ``g_i`` its feedback mapping's, ``g_L`` the teaching signal;
        they are called directly, not through ``nn.Module.__call__`` (no per-call hook machinery).
        """
        total = -blocks[node - 1]
        for source, kind, layer, weight in self._plan[node - 1]:
            if kind == FORWARD:
                value = layer.forward(self.h0 if source == 0 else blocks[source - 1])
            elif kind == FEEDBACK:
                value = layer.feedback.forward(blocks[source - 1], layer, check=check)
            else:
                value = self.teaching.value(blocks[node - 1])
            total = total + weight * value
        return total

    def drive(self, state, *, check=True):
        """``-h_i + (1-mu) f_i(h_{i-1}) + mu g_i(h_{i+1})`` for every layer, shape ``(B, N)``."""
        blocks = self.split(state)
        return self.join([self._node_drive(node, blocks, check) for node in range(1, len(blocks) + 1)])

    # -- block sweeps: layer i depends on layers i-1 and i+1 only, so the odd layers can be updated
    # together from the even ones and vice versa (a red-black Gauss-Seidel ordering)
    @property
    def sweep_groups(self):
        L = self.network.depth
        return tuple(g for g in (tuple(range(0, L, 2)), tuple(range(1, L, 2))) if g)

    def block_slopes(self):
        """``-1`` per layer, ``-1 + mu c`` on the output layer (``c`` the slope of the teaching signal)."""
        L = self.network.depth
        return (-1.0,) * (L - 1) + (-1.0 + self.mu * self.teaching.jacobian_scale,)

    def drive_group(self, blocks, group, *, check=True):
        return [self._node_drive(k + 1, blocks, check) for k in group]

    def jacobian_blocks(self, state):
        """Block-tridiagonal Jacobian of ``dh/dt`` (eqs. 6.39-6.42), from the graph's edges.

        Diagonal blocks ``(-I + mu c I) / tau`` (``c`` from the teaching signal on the output
        layer, 0 elsewhere), lower blocks ``(1-mu) J_{f_i} / tau``, upper blocks ``mu J_{g_i} / tau``.
        """
        blocks = self.split(state)
        B, L = self.batch_size, self.network.depth
        inv_tau = 1.0 / self.tau
        diagonal_scale = [-inv_tau] * L
        lower, upper = [None] * (L - 1), [None] * (L - 1)
        for node, incoming in enumerate(self._edges, start=1):
            for source, kind, owner in incoming:
                w = self.edge_weight(kind) * inv_tau
                if kind == TEACHING:
                    diagonal_scale[node - 1] += w * self.teaching.jacobian_scale
                elif source == 0:
                    continue  # the clamped input contributes no state block
                elif kind == FORWARD and source == node - 1:
                    lower[node - 2] = self.network.layer(owner).jacobian(blocks[source - 1]).mul_(w)
                elif kind == FEEDBACK and source == node + 1:
                    upper[node - 1] = self.network.layer(owner).feedback_jacobian(blocks[source - 1]).mul_(w)
                else:  # pragma: no cover - the layered graph has no other edges
                    raise ValueError(f"edge {source}->{node} ({kind}) is not block tridiagonal.")
        diagonal = [(c * torch.eye(n, dtype=state.dtype, device=state.device)).expand(B, n, n)
                    for c, n in zip(diagonal_scale, self.state_sizes)]
        return BlockTridiagonal(diagonal, lower, upper)

    def initial_state(self, kind: str = "forward"):
        if kind == "forward":
            return self.join(self.network(self.h0)[1:])
        if kind == "zeros":
            return self.h0.new_zeros(self.batch_size, self.state_size)
        raise ValueError(f"initial state kind={kind!r} is not valid; use 'forward' or 'zeros'.")

    def select(self, index):
        clone = super().select(index)
        clone.teaching = self.teaching.select(index)
        return clone

    def describe(self):
        return {**super().describe(), "mu": self.mu, "teaching": self.teaching.describe()}
