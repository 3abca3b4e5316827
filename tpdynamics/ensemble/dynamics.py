"""The mixture dynamics (eq. 6.1) of S ensemble members as one dynamics module: members folded into the batch.

:class:`EnsembleMixtureDynamics` is a :class:`~tpdynamics.MixtureDynamics` whose batch holds the ``B``
samples of every member of an :class:`~tpdynamics.ensemble.EnsembleNetwork`, member-major: row
``s B + b`` is sample ``b`` of member ``s``, and the state is ``(S B, n_1 + ... + n_L)``. Every
right-hand-side evaluation is one batched product per edge over the stacked weights
``(S, n_i, n_{i-1})``, so *every* equilibrium solver of :func:`tpdynamics.equilibrium` solves all
members' equilibria as one batch, unchanged: they work per row (a converged row retires, a failing row
has its own status), and the members are rows.

Row subsets (the solvers' retirement compacts the live rows through :meth:`select`) keep the
member-major order. While every member left has the same number of rows the products stay batched
over the members left (``(G, k, n) @ (G, n, m)``); otherwise each row is multiplied by its own
member's matrix (``(R, 1, n) @ (R, n, m)``, gathered), the same numbers either way.

The dynamics read the ensemble's stacked tensors at every evaluation, so a caller that changes the
weights (continuous learning) and solves again sees the new weights, as with a
:class:`~tpdynamics.LayeredNetwork`.
"""
from __future__ import annotations

import torch

from ..blocktridiagonal import BlockTridiagonal
from ..dynamics.mixture import MixtureDynamics
from ..layers import OriginalFeedback
from ..network import FEEDBACK, FORWARD
from .network import EnsembleNetwork

__all__ = ["EnsembleMixtureDynamics", "fold", "unfold"]


def fold(stacked: torch.Tensor) -> torch.Tensor:
    """``(S, B, n) -> (S B, n)``, member-major (row ``s B + b``)."""
    return stacked.reshape(stacked.shape[0] * stacked.shape[1], *stacked.shape[2:])


def unfold(rows: torch.Tensor, members: int) -> torch.Tensor:
    """``(S B, n) -> (S, B, n)``, the inverse of :func:`fold`."""
    return rows.reshape(members, rows.shape[0] // members, *rows.shape[1:])


class EnsembleMixtureDynamics(MixtureDynamics):
    """Eq. (6.1) for every member of an ensemble at once (module docstring); a :class:`MixtureDynamics`.

    Parameters
    ----------
    ensemble : EnsembleNetwork
        The members (one architecture; layers ``2..L`` with feedback).
    h0 : Tensor, shape (S, B, n_0)
        Every member's clamped input.
    mu, tau : float
        Shared by the members.
    label : Tensor, shape (S, B, n_L), optional
        Every member's label for the L2 target of eq. (6.10); with ``eta_hat``.
    eta_hat : float, optional
    target : Tensor, shape (S, B, n_L), optional
        A fixed output target per member. None of ``label``, ``target``: the free phase.

    Notes
    -----
    The dynamics compute on the ensemble's device (its ``device=``): ``h0``, ``label`` and ``target`` are
    moved there. :attr:`network` is member 0 (its graph and layer objects give the layout, the edge kinds and the
    feedback forms, which every member shares); the values come from the stacked tensors.
    :attr:`row_member` gives the member of each row.
    """

    name = "ensemble_single_phase"

    def __init__(self, ensemble: EnsembleNetwork, h0: torch.Tensor, *, mu: float, tau: float = 1.0, label=None,
                 eta_hat=None, target=None):
        if not isinstance(ensemble, EnsembleNetwork):
            raise TypeError(f"ensemble must be an EnsembleNetwork, got {type(ensemble).__name__}.")
        S = ensemble.size
        for name, value in (("h0", h0), ("label", label), ("target", target)):
            if value is not None and (not isinstance(value, torch.Tensor) or value.ndim != 3 or value.shape[0] != S):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{name} must have shape (S={S}, B, n) (one batch per member), got {shape}; stack "
                                 "the members' batches with ensemble.stack([...]).")
        h0, label, target = (None if t is None else t.to(ensemble.device) for t in (h0, label, target))
        super().__init__(ensemble.member(0), fold(h0), mu=mu, tau=tau, label=None if label is None else fold(label),
                         eta_hat=eta_hat, target=None if target is None else fold(target))
        self.ensemble = ensemble
        self._sizes = tuple(ensemble.layer_sizes[1:])  # (read once: the base class walks the network each time)
        B = h0.shape[1]
        self.row_member = torch.arange(S, device=h0.device).repeat_interleave(B)
        self._groups = None  # members present (None: all of them, in order)
        self._per_group = B  # rows per member present; None: uneven (products per row)

    @property
    def state_sizes(self):
        return self._sizes

    @property
    def members(self) -> int:
        return self.ensemble.size

    # -- the batched products ---------------------------------------------------------------------
    def _product(self, h: torch.Tensor, stack: torch.Tensor) -> torch.Tensor:
        """``h_r M_{member(r)}^T`` for every row ``r``: ``h`` (R, n), ``stack`` (S, m, n) -> (R, m)."""
        k = self._per_group
        if k is None:
            return (h.unsqueeze(-2) @ stack[self.row_member].mT).squeeze(-2)
        matrices = stack if self._groups is None else stack[self._groups]
        return (h.reshape(matrices.shape[0], k, h.shape[-1]) @ matrices.mT).reshape(h.shape[0], -1)

    def _rows_of(self, stack: torch.Tensor) -> torch.Tensor:
        """Each row's matrix ``(R, m, n)`` (for the Jacobians)."""
        return stack[self.row_member]

    def _forward(self, i: int, below: torch.Tensor) -> torch.Tensor:
        """``f_i(h_{i-1}) = s_i(W_i h_{i-1})`` per row."""
        return self.ensemble.nonlinearities[i - 1](self._product(below, self.ensemble.weights[i - 1]))

    def _feedback(self, owner: int, above: torch.Tensor, check: bool) -> torch.Tensor:
        """``g_{owner-1}(h_owner)`` per row: ``M s^{-1}(h)`` or, for the original form, ``t(Q h)``."""
        e = self.ensemble
        matrix = e.feedback[owner - 1]
        if e.kinds[owner - 1] is OriginalFeedback:
            return e.feedback_nonlinearities[owner - 1](self._product(above, matrix))
        return self._product(e.nonlinearities[owner - 1].inverse(above, check=check), matrix)

    def _node_drive(self, node, blocks, check):
        total = -blocks[node - 1]
        for source, kind, layer, weight in self._plan[node - 1]:
            if kind == FORWARD:
                value = self._forward(node, self.h0 if source == 0 else blocks[source - 1])
            elif kind == FEEDBACK:
                value = self._feedback(source, blocks[source - 1], check)
            else:
                value = self.teaching.value(blocks[node - 1])
            total = total + weight * value
        return total

    def forward_pass(self) -> list[torch.Tensor]:
        """``[h_1, ..., h_L]`` of the forward pass per row, shapes ``(R, n_i)``."""
        out, h = [], self.h0
        for i in range(1, self.network.depth + 1):
            h = self._forward(i, h)
            out.append(h)
        return out

    def initial_state(self, kind: str = "forward"):
        if kind == "forward":
            return self.join(self.forward_pass())
        return super().initial_state(kind)

    def jacobian_blocks(self, state):
        """Block-tridiagonal Jacobian of ``dh/dt`` per row (eqs. 6.39-6.42), each row with its member's weights."""
        blocks = self.split(state)
        e, L, R = self.ensemble, self.network.depth, state.shape[0]
        inv_tau = 1.0 / self.tau
        diagonal_scale = [-inv_tau] * (L - 1) + [(-1.0 + self.mu * self.teaching.jacobian_scale) * inv_tau]
        lower, upper = [], []
        for i in range(2, L + 1):  # d f_i / d h_{i-1} = s_i'(W_i h_{i-1}) W_i
            W = e.weights[i - 1]
            d = e.nonlinearities[i - 1].derivative(self._product(blocks[i - 2], W))
            lower.append(((1.0 - self.mu) * inv_tau) * d.unsqueeze(-1) * self._rows_of(W))
        for owner in range(2, L + 1):  # d g_{owner-1} / d h_owner
            matrix, h = e.feedback[owner - 1], blocks[owner - 1]
            if e.kinds[owner - 1] is OriginalFeedback:
                d = e.feedback_nonlinearities[owner - 1].derivative(self._product(h, matrix))
                jac = d.unsqueeze(-1) * self._rows_of(matrix)
            else:
                jac = self._rows_of(matrix) * e.nonlinearities[owner - 1].inverse_derivative(h).unsqueeze(-2)
            upper.append((self.mu * inv_tau) * jac)
        diagonal = [(c * torch.eye(n, dtype=state.dtype, device=state.device)).expand(R, n, n)
                    for c, n in zip(diagonal_scale, self.state_sizes)]
        return BlockTridiagonal(diagonal, lower, upper)

    def select(self, index):
        """The rows ``index`` (sorted, as the solvers pass them), with the member layout that goes with them."""
        clone = super().select(index)
        index = torch.as_tensor(index, device=self.row_member.device)
        if index.dtype == torch.bool:
            index = torch.nonzero(index).flatten()
        clone.row_member = rows = self.row_member[index]
        counts = torch.bincount(rows, minlength=self.members)
        present = torch.nonzero(counts).flatten()
        sizes = counts[present].unique()
        ordered = rows.numel() < 2 or bool((rows[1:] >= rows[:-1]).all())
        if sizes.numel() == 1 and ordered:
            clone._per_group = int(sizes)
            clone._groups = None if present.numel() == self.members else present
        else:
            clone._per_group, clone._groups = None, None
        return clone

    def member_rows(self, values: torch.Tensor) -> torch.Tensor:
        """A per-row tensor ``(S B, ...)`` of the whole batch as ``(S, B, ...)``."""
        return unfold(values, self.members)

    def describe(self):
        return {**super().describe(), "members": self.members}
