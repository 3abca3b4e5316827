"""The multiplexed network of section 6.9.2: decoupled basal and apical voltages (eqs. 6.43-6.46).

.. math::

    \\tau \\frac{d a^b_i}{dt} = -a^b_i + W_i h_{i-1}, \\qquad h_i = s_i(a^b_i),

    \\tau \\frac{d a^a_i}{dt} = -a^a_i + (\\text{apical input from } \\hat h_{i+1}), \\qquad \\hat h_i = t_i(a^a_i),

with ``h_i`` the event rates (feed-forward signal) and ``hat h_i`` the burst probabilities
(feedback signal); the output's burst probability is the teaching signal, ``hat h_L = h_L^trgt``
(eq. 6.51). The apical input and ``t_i`` come from the feedback mapping ``g_i`` owned by layer
``i+1`` (:meth:`~tpdynamics.layers.FeedbackMapping.voltage_input` and
:meth:`~tpdynamics.layers.FeedbackMapping.rate_from_voltage`, so that ``g_i = t_i(input)``): for the
original form ``t_i(Q_i hat h_{i+1})`` of eq. 6.50 the voltage is ``Q_i hat h_{i+1}``; for the
matrix forms ``M s_{i+1}^{-1}(hat h_{i+1})`` the voltage is that product and ``t_i`` the identity.

Equilibria (eqs. 6.47-6.50): ``h*_i = f_i(h*_{i-1})`` (the forward pass) and
``hat h*_i = g_i(hat h*_{i+1})`` (the target propagated backwards by the feedback mappings).

State layout: ``[a^b_1, ..., a^b_L, a^a_{L-1}, ..., a^a_1]`` — the apical voltages in reverse order,
so that every block depends only on the block before it and the Jacobian is block (lower-bi)tridiagonal.
"""
from __future__ import annotations

import torch

from ..blocktridiagonal import BlockTridiagonal
from ..network import LayeredNetwork
from ..targets import TeachingSignal, make_teaching_signal
from .base import DYNAMICS, NetworkDynamics


@DYNAMICS.register("multiplexed")
class MultiplexedDynamics(NetworkDynamics):
    """Event rates and burst probabilities as decoupled dynamics (section 6.9.2).

    Parameters
    ----------
    network : LayeredNetwork
        Layers ``2..L`` must have feedback mappings.
    h0 : Tensor, shape (B, n_0)
        Clamped input.
    tau : float
        Time constant of both compartments.
    target, label, eta_hat, teaching
        The output burst probability ``hat h_L = h_L^trgt``: as for :class:`MixtureDynamics`;
        none of them gives the free phase ``hat h_L = h_L``.
    device : str or torch.device, optional
        Where to compute (as for :class:`MixtureDynamics`). Default: where ``h0`` is.

    Notes
    -----
    There is no mixing coefficient: the feed-forward and feedback signals travel on separate
    channels, which is why the learning signal does not decay with depth (section 6.9).
    """

    def __init__(self, network: LayeredNetwork, h0: torch.Tensor, *, tau: float = 1.0, target=None, label=None,
                 eta_hat=None, teaching: TeachingSignal | None = None, device=None):
        super().__init__(network, h0, tau=tau, device=device)
        if device is not None:
            target, label = (None if t is None else t.to(self.device) for t in (target, label))
        self.teaching = make_teaching_signal(target=target, label=label, eta_hat=eta_hat, teaching=teaching)
        self.teaching.validate(self.batch_size, network.layer_sizes[-1], network.dtype)
        self._read_graph(network, "multiplexed")

    # -- layout -------------------------------------------------------------------------------------
    @property
    def state_sizes(self):
        sizes = self.network.layer_sizes
        return tuple(sizes[1:]) + tuple(sizes[i] for i in range(self.network.depth - 1, 0, -1))

    def block_name(self, k: int) -> str:
        L = self.network.depth
        return f"a^b_{k + 1}" if k < L else f"a^a_{2 * L - 1 - k}"

    def _parts(self, state):
        L = self.network.depth
        blocks = self.split(state)
        basal = blocks[:L]
        apical = {L - 1 - j: blocks[L + j] for j in range(L - 1)}  # layer index -> voltage
        return basal, apical

    def inputs(self):
        return (self.h0,) + self.teaching.tensors()

    # -- read-outs ----------------------------------------------------------------------------------
    def _event_rates(self, basal) -> list[torch.Tensor]:
        return [self.network.layer(i).nonlinearity(a) for i, a in enumerate(basal, start=1)]

    def _bursts(self, apical, h_out) -> list[torch.Tensor]:
        """``[hat h_1, ..., hat h_L]`` from the apical voltages and the output rate ``h_L``."""
        net = self.network
        return ([net.layer(i + 1).feedback.rate_from_voltage(apical[i]) for i in range(1, net.depth)]
                + [self.teaching.value(h_out)])

    def event_rates(self, state) -> list[torch.Tensor]:
        """``[h_1, ..., h_L]`` with ``h_i = s_i(a^b_i)`` (eq. 6.45)."""
        return self._event_rates(self._parts(state)[0])

    def burst_probabilities(self, state) -> list[torch.Tensor]:
        """``[hat h_1, ..., hat h_L]`` with ``hat h_i = t_i(a^a_i)`` (eq. 6.46) and ``hat h_L = h_L^trgt``."""
        basal, apical = self._parts(state)
        return self._bursts(apical, self.network.layer(self.network.depth).nonlinearity(basal[-1]))

    # -- the hooks ----------------------------------------------------------------------------------
    def drive(self, state, *, check=True):
        basal, apical = self._parts(state)
        L, net = self.network.depth, self.network
        rates = [self.h0] + self._event_rates(basal)
        bursts = self._bursts(apical, rates[L])  # bursts[i] = hat h_{i+1}
        out = [-basal[i - 1] + net.layer(i).preactivation(rates[i - 1]) for i in range(1, L + 1)]
        for i in range(L - 1, 0, -1):
            out.append(-apical[i] + net.layer(i + 1).feedback.voltage_input(bursts[i], net.layer(i + 1), check=check))
        return self.join(out)

    # -- block sweeps: block k depends on block k-1 only (the layout is chosen for that), so one
    # Gauss-Seidel sweep in block order is a forward substitution
    @property
    def sweep_groups(self):
        return tuple((k,) for k in range(len(self.state_sizes)))

    def drive_group(self, blocks, group, *, check=True):
        return [self._block_drive(k, blocks, check) for k in group]

    def _block_drive(self, k: int, blocks, check: bool) -> torch.Tensor:
        net, L = self.network, self.network.depth
        if k < L:  # basal voltage of layer i = k + 1
            i = k + 1
            rate = self.h0 if i == 1 else net.layer(i - 1).nonlinearity(blocks[k - 1])
            return -blocks[k] + net.layer(i).preactivation(rate)
        i = 2 * L - 1 - k  # apical voltage of layer i; its input comes from hat h_{i+1} (block k - 1)
        if i + 1 == L:
            burst = self.teaching.value(net.layer(L).nonlinearity(blocks[L - 1]))
        else:
            burst = net.layer(i + 2).feedback.rate_from_voltage(blocks[k - 1])
        return -blocks[k] + net.layer(i + 1).feedback.voltage_input(burst, net.layer(i + 1), check=check)

    def jacobian_blocks(self, state):
        """Block lower-bidiagonal Jacobian of ``d state / dt`` in the reversed-apical layout."""
        basal, apical = self._parts(state)
        L, net, B = self.network.depth, self.network, self.batch_size
        sizes = self.state_sizes
        inv_tau = 1.0 / self.tau
        diagonal = [(-inv_tau * torch.eye(n, dtype=state.dtype, device=state.device)).expand(B, n, n) for n in sizes]
        lower = []
        for i in range(2, L + 1):  # basal i depends on basal i-1 through h_{i-1} = s(a^b_{i-1})
            d = net.layer(i - 1).nonlinearity.derivative(basal[i - 2])
            lower.append(inv_tau * net.layer(i).weight.unsqueeze(0) * d.unsqueeze(-2))
        if L > 1:
            # apical L-1 depends on basal L through hat h_L = h_L^trgt(s_L(a^b_L))
            bursts = self._bursts(apical, net.layer(L).nonlinearity(basal[-1]))  # bursts[i] = hat h_{i+1}
            d = self.teaching.jacobian_scale * net.layer(L).nonlinearity.derivative(basal[-1])
            lower.append(inv_tau * net.layer(L).feedback.voltage_jacobian(bursts[-1], net.layer(L)) * d.unsqueeze(-2))
            for i in range(L - 2, 0, -1):  # apical i depends on apical i+1 through hat h_{i+1} = t(a^a_{i+1})
                d = net.layer(i + 2).feedback.rate_derivative(apical[i + 1])
                lower.append(inv_tau * net.layer(i + 1).feedback.voltage_jacobian(bursts[i], net.layer(i + 1))
                             * d.unsqueeze(-2))
        upper = [torch.zeros(B, sizes[k], sizes[k + 1], dtype=state.dtype, device=state.device)
                 for k in range(len(sizes) - 1)]
        return BlockTridiagonal(diagonal, lower, upper)

    def initial_state(self, kind: str = "forward"):
        """``'forward'``: basal voltages of the forward pass and apical voltages of the free backward pass
        (``hat h_L = h_L``), i.e. the free-phase equilibrium; ``'zeros'``: all voltages 0."""
        if kind == "zeros":
            return self.h0.new_zeros(self.batch_size, self.state_size)
        if kind != "forward":
            raise ValueError(f"initial state kind={kind!r} is not valid; use 'forward' or 'zeros'.")
        net, L = self.network, self.network.depth
        rates = net(self.h0)
        basal = [net.layer(i).preactivation(rates[i - 1]) for i in range(1, L + 1)]
        burst, apical = rates[L], []
        for i in range(L - 1, 0, -1):
            feedback = net.layer(i + 1).feedback
            voltage = feedback.voltage_input(burst, net.layer(i + 1))
            apical.append(voltage)
            burst = feedback.rate_from_voltage(voltage)
        return self.join(basal + apical)

    def select(self, index):
        clone = super().select(index)
        clone.teaching = self.teaching.select(index)
        return clone

    def describe(self):
        return {**super().describe(), "teaching": self.teaching.describe()}
