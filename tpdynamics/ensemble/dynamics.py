"""The dynamics of S ensemble members as one dynamics module: the members folded into the batch.

:class:`EnsembleMixtureDynamics` is a :class:`~tpdynamics.MixtureDynamics` (and
:class:`EnsembleMultiplexedDynamics` a :class:`~tpdynamics.MultiplexedDynamics`) whose batch holds the ``B``
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
from ..dynamics.multiplexed import MultiplexedDynamics
from ..layers import OriginalFeedback
from ..network import FEEDBACK, FORWARD
from .network import EnsembleNetwork

__all__ = ["EnsembleMixtureDynamics", "EnsembleMultiplexedDynamics", "fold", "unfold"]


def fold(stacked: torch.Tensor) -> torch.Tensor:
    """``(S, B, n) -> (S B, n)``, member-major (row ``s B + b``)."""
    return stacked.reshape(stacked.shape[0] * stacked.shape[1], *stacked.shape[2:])


def unfold(rows: torch.Tensor, members: int) -> torch.Tensor:
    """``(S B, n) -> (S, B, n)``, the inverse of :func:`fold`."""
    return rows.reshape(members, rows.shape[0] // members, *rows.shape[1:])


def _check_stacked(ensemble, **tensors):
    if not isinstance(ensemble, EnsembleNetwork):
        raise TypeError(f"ensemble must be an EnsembleNetwork, got {type(ensemble).__name__}.")
    S = ensemble.size
    for name, value in tensors.items():
        if value is not None and (not isinstance(value, torch.Tensor) or value.ndim != 3 or value.shape[0] != S):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must have shape (S={S}, B, n) (one batch per member), got {shape}; stack "
                             "the members' batches with ensemble.stack([...]).")
    return [None if t is None else t.to(ensemble.device) for t in tensors.values()]


class _MemberRows:
    """The member-major row layout of the folded batch and the per-row products (module docstring)."""

    def _init_rows(self, ensemble: EnsembleNetwork, batch: int, sizes) -> None:
        self.ensemble = ensemble
        self._sizes = tuple(sizes)  # (read once: the base classes walk the network each time)
        self.row_member = torch.arange(ensemble.size, device=ensemble.device).repeat_interleave(batch)
        self._groups = None  # members present (None: all of them, in order)
        self._per_group = batch  # rows per member present; None: uneven (products per row)

    @property
    def state_sizes(self):
        return self._sizes

    @property
    def members(self) -> int:
        return self.ensemble.size

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

    def _select_rows(self, clone, index):
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


class EnsembleMixtureDynamics(_MemberRows, MixtureDynamics):
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
        h0, label, target = _check_stacked(ensemble, h0=h0, label=label, target=target)
        super().__init__(ensemble.member(0), fold(h0), mu=mu, tau=tau, label=None if label is None else fold(label),
                         eta_hat=eta_hat, target=None if target is None else fold(target))
        self._init_rows(ensemble, h0.shape[1], ensemble.layer_sizes[1:])

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
        return self._select_rows(super().select(index), index)

    def describe(self):
        return {**super().describe(), "members": self.members}


class EnsembleMultiplexedDynamics(_MemberRows, MultiplexedDynamics):
    """The multiplexed network (section 6.9.2, eqs. 6.43-6.46) for every member at once; a :class:`MultiplexedDynamics`.

    Parameters
    ----------
    ensemble : EnsembleNetwork
    h0 : Tensor, shape (S, B, n_0)
    tau : float
    label, eta_hat, target
        As for :class:`EnsembleMixtureDynamics`; none: the free phase ``hat h_L = h_L``.

    Notes
    -----
    The same folded, member-major layout as :class:`EnsembleMixtureDynamics`; the state of a row is the
    serial model's ``[a^b_1..a^b_L, a^a_{L-1}..a^a_1]``. The element-wise read-outs (event rates, burst
    probabilities, ``t_i``) are the serial class's own.
    """

    name = "ensemble_multiplexed"

    def __init__(self, ensemble: EnsembleNetwork, h0: torch.Tensor, *, tau: float = 1.0, label=None, eta_hat=None,
                 target=None):
        h0, label, target = _check_stacked(ensemble, h0=h0, label=label, target=target)
        super().__init__(ensemble.member(0), fold(h0), tau=tau, label=None if label is None else fold(label),
                         eta_hat=eta_hat, target=None if target is None else fold(target))
        sizes = ensemble.layer_sizes
        self._init_rows(ensemble, h0.shape[1],
                        tuple(sizes[1:]) + tuple(sizes[i] for i in range(ensemble.depth - 1, 0, -1)))

    def _preactivation(self, i: int, rate: torch.Tensor) -> torch.Tensor:
        """``W_i h_{i-1}`` per row."""
        return self._product(rate, self.ensemble.weights[i - 1])

    def _voltage_input(self, owner: int, burst: torch.Tensor, check: bool) -> torch.Tensor:
        """The apical input of layer ``owner - 1`` from ``hat h_owner``: ``M s^{-1}(hat h)`` or ``Q hat h`` (original)."""
        e = self.ensemble
        if e.kinds[owner - 1] is OriginalFeedback:
            return self._product(burst, e.feedback[owner - 1])
        return self._product(e.nonlinearities[owner - 1].inverse(burst, check=check), e.feedback[owner - 1])

    def _voltage_jacobian(self, owner: int, burst: torch.Tensor) -> torch.Tensor:
        e = self.ensemble
        matrix = self._rows_of(e.feedback[owner - 1])
        if e.kinds[owner - 1] is OriginalFeedback:
            return matrix
        return matrix * e.nonlinearities[owner - 1].inverse_derivative(burst).unsqueeze(-2)

    def drive(self, state, *, check=True):
        basal, apical = self._parts(state)
        L = self.network.depth
        rates = [self.h0] + self._event_rates(basal)
        bursts = self._bursts(apical, rates[L])  # bursts[i] = hat h_{i+1}
        out = [-basal[i - 1] + self._preactivation(i, rates[i - 1]) for i in range(1, L + 1)]
        for i in range(L - 1, 0, -1):
            out.append(-apical[i] + self._voltage_input(i + 1, bursts[i], check))
        return self.join(out)

    def _block_drive(self, k, blocks, check):
        net, L = self.network, self.network.depth
        if k < L:  # basal voltage of layer i = k + 1
            i = k + 1
            rate = self.h0 if i == 1 else net.layer(i - 1).nonlinearity(blocks[k - 1])
            return -blocks[k] + self._preactivation(i, rate)
        i = 2 * L - 1 - k  # apical voltage of layer i; its input comes from hat h_{i+1} (block k - 1)
        if i + 1 == L:
            burst = self.teaching.value(net.layer(L).nonlinearity(blocks[L - 1]))
        else:
            burst = net.layer(i + 2).feedback.rate_from_voltage(blocks[k - 1])
        return -blocks[k] + self._voltage_input(i + 1, burst, check)

    def jacobian_blocks(self, state):
        """Block lower-bidiagonal Jacobian per row, each row with its member's weights."""
        basal, apical = self._parts(state)
        L, net, R = self.network.depth, self.network, state.shape[0]
        sizes, inv_tau = self.state_sizes, 1.0 / self.tau
        diagonal = [(-inv_tau * torch.eye(n, dtype=state.dtype, device=state.device)).expand(R, n, n) for n in sizes]
        lower = []
        for i in range(2, L + 1):
            d = net.layer(i - 1).nonlinearity.derivative(basal[i - 2])
            lower.append(inv_tau * self._rows_of(self.ensemble.weights[i - 1]) * d.unsqueeze(-2))
        if L > 1:
            bursts = self._bursts(apical, net.layer(L).nonlinearity(basal[-1]))
            d = self.teaching.jacobian_scale * net.layer(L).nonlinearity.derivative(basal[-1])
            lower.append(inv_tau * self._voltage_jacobian(L, bursts[-1]) * d.unsqueeze(-2))
            for i in range(L - 2, 0, -1):
                d = net.layer(i + 2).feedback.rate_derivative(apical[i + 1])
                lower.append(inv_tau * self._voltage_jacobian(i + 1, bursts[i]) * d.unsqueeze(-2))
        upper = [torch.zeros(R, sizes[k], sizes[k + 1], dtype=state.dtype, device=state.device)
                 for k in range(len(sizes) - 1)]
        return BlockTridiagonal(diagonal, lower, upper)

    def initial_state(self, kind: str = "forward"):
        """``'forward'``: the forward pass's basal voltages and the free backward pass's apical ones; ``'zeros'``."""
        if kind != "forward":
            return super().initial_state(kind)
        net, L = self.network, self.network.depth
        rates, basal = [self.h0], []
        for i in range(1, L + 1):
            basal.append(self._preactivation(i, rates[-1]))
            rates.append(net.layer(i).nonlinearity(basal[-1]))
        burst, apical = rates[L], []
        for i in range(L - 1, 0, -1):
            voltage = self._voltage_input(i + 1, burst, True)
            apical.append(voltage)
            burst = net.layer(i + 1).feedback.rate_from_voltage(voltage)
        return self.join(basal + apical)

    def select(self, index):
        return self._select_rows(super().select(index), index)

    def describe(self):
        return {**super().describe(), "members": self.members}
