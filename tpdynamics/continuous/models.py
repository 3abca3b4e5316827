"""Continuous learning models of chapter 6: learning signals and weight velocities at equilibrium.

Three models (registry :data:`CONTINUOUS_MODELS`), each defined by the phases it runs, the
learning signal it reads from their equilibria, and the resulting plasticity:

============== =============================== =========================================== ==========================
name           phases (teaching signal)        forward plasticity ``dW_i/dt``              feedback plasticity
============== =============================== =========================================== ==========================
single_phase   one (label, eq. 6.10)           eq. 6.17: ``eta_i D_i (h*_i - f_i(h*_{i-1})) h*_{i-1}^T``  eq. 6.26 at ``h*``
two_phase      free (``h_L^trgt = h_L``), then  eq. 6.35: ``eta_i D^l_i (h^l_i - h^f_i) h^l_{i-1}^T``     eq. 6.37 in the free phase
               learning (label)
multiplexed    free, then learning (bursts)    eq. 6.58: ``eta_i D_i (hat h^l_i - hat h^f_i) h*_{i-1}^T`` eq. 6.25 at the event rates
============== =============================== =========================================== ==========================

Signs are written so that the weights move the forward prediction towards the nudged state
(the thesis writes the same updates as ``-eta D (f - h*) h^T`` etc.). Two typos of the text are
corrected: eq. 6.35 prints ``h^{f*}_{i-1} - h^{l*}_i`` and eq. 6.58 ``hat h^{f*}_{i-1} - hat h^{l*}_i``;
the derivations (6.34, 6.36 and 6.59) need the same layer ``i`` in both terms.

``D_i`` is ``s_i'`` at ``W_i`` times the pre-synaptic activity of the update. The feedback
plasticity is gradient descent on the regularised inverse loss
``1/2 ||g_i(h_{i+1}) - h_i||^2 + lambda/2 ||Q_i||_F^2`` (eqs. 6.24-6.26) at the phase's states, computed
by autograd so that it holds for every trainable feedback form (for ``g = Q s^{-1}`` it is exactly
eq. 6.26). For the multiplexed network the thesis leaves the feedback plasticity to future work; its
event rates are exactly the forward pass, so the loss gradient at them is eq. 6.25 itself.

Every velocity is the mean over the batch, like the discrete mini-batch rules of Appendix A.
``compensate_layer_factor=True`` divides ``eta_i`` by the layer factor ``(mu/(1-mu))^(L+1-i)`` of the
mixture models (``eta~_i`` of eq. 6.19).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..validation import check_mu, check_positive
from ..dynamics import MixtureDynamics, MultiplexedDynamics
from .._equilibrium import equilibrium
from ..errors import EquilibriumNotReachedError
from ..layers import ExactInverseFeedback, FixedRandomFeedback
from ..network import LayeredNetwork
from ..registry import Registry


@dataclass
class PhaseStates:
    """Equilibria of every phase of a model for one batch.

    Attributes
    ----------
    results : dict of str -> EquilibriumResult
        Keyed by phase name (``"learning"``, ``"free"``).
    dynamics : dict of str -> NetworkDynamics
        The dynamics whose equilibria these are.
    """

    results: dict
    dynamics: dict


@dataclass
class LearningSignal:
    """Per-layer ingredients of the forward-weight velocity ``eta_i (D_i * signal_i) pre_i^T``.

    Attributes
    ----------
    signal : list of Tensor
        ``signal[i-1]`` has shape ``(B, n_i)``: the nudged state minus the forward reference
        (``h*_i - f_i(h*_{i-1})``, ``h^l_i - h^f_i`` or ``hat h^l_i - hat h^f_i``).
    presynaptic : list of Tensor
        ``presynaptic[i-1]`` has shape ``(B, n_{i-1})``.
    derivative : list of Tensor
        ``D_i`` diagonals, shape ``(B, n_i)``.
    layer_factors : list of float
        ``c_i`` the model scales the signal of layer ``i`` by (1 for the multiplexed network).
    """

    signal: list
    presynaptic: list
    derivative: list
    layer_factors: list

    def scaled(self) -> list[torch.Tensor]:
        """``signal_i / c_i``: the signal with the depth scaling removed (comparable to ``hat h_i - h_i``)."""
        return [s / c for s, c in zip(self.signal, self.layer_factors)]


class ContinuousModel:
    """Base of the continuous learning models (see the module docstring for the contract).

    A model sets ``phases`` (ending with ``"learning"``, the phase with the teaching signal) and
    :meth:`phase_dynamics`; it may override :meth:`layer_factor`, :meth:`activity`,
    :meth:`nudged_activity` and ``feedback_phase``. The forward plasticity reads
    ``nudged - reference`` from the learning phase, the reference being the free phase's nudged
    activity when there is a free phase and the forward prediction ``f_i(h_{i-1})`` otherwise.

    Parameters
    ----------
    mu : float
        Mixing coefficient of the mixture models (ignored by the multiplexed one).
    tau : float
        Neural time constant.
    eta_hat : float
        Output target step of eq. (6.10).
    learning_rate : float
        ``eta`` of the forward plasticity.
    feedback_learning_rate : float
        ``eta^inv`` of the feedback plasticity (0 freezes the feedback weights).
    weight_decay : float
        ``lambda`` of the regularised inverse loss (eq. 4.97 / 6.24).
    compensate_layer_factor : bool
        Divide ``eta_i`` by the layer factor ``c_i`` (eq. 6.19).
    tol : float
        Equilibrium tolerance on the fixed-point residual ``||(1-mu) f + mu g - h||_inf`` (``tau ||dh/dt||_inf``).
    solver : str
        Equilibrium solver (see :func:`tpdynamics.equilibrium`).
    """

    name = "abstract"
    phases: tuple[str, ...] = ()
    #: The phase whose states the feedback plasticity learns from (eqs. 6.26, 6.37).
    feedback_phase = "free"

    def __init__(self, *, mu: float = 0.2, tau: float = 1.0, eta_hat: float = 0.1, learning_rate: float = 1.0,
                 feedback_learning_rate: float = 0.0, weight_decay: float = 0.0,
                 compensate_layer_factor: bool = False, tol: float = 1e-10, solver: str = "auto"):
        self.mu = check_mu(mu)
        self.tau = check_positive("tau", tau)
        self.eta_hat = check_positive("eta_hat", eta_hat)
        self.learning_rate = check_positive("learning_rate", learning_rate, allow_zero=True)
        self.feedback_learning_rate = check_positive("feedback_learning_rate", feedback_learning_rate, allow_zero=True)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.compensate_layer_factor = bool(compensate_layer_factor)
        if self.compensate_layer_factor and self.layer_factor(1, 1) == 0.0:
            raise ValueError(f"mu={self.mu} makes the layer factor c_i = (mu/(1-mu))^(L+1-i) of eq. 6.16 zero: the "
                             "teaching signal never reaches the layers, and compensate_layer_factor cannot divide "
                             "the learning rates by it (eq. 6.19). Use mu > 0, e.g. mu=0.1.")
        self.tol = check_positive("tol", tol)
        self.solver = solver

    def describe(self) -> dict:
        return {"model": self.name, "mu": self.mu, "tau": self.tau, "eta_hat": self.eta_hat,
                "learning_rate": self.learning_rate, "feedback_learning_rate": self.feedback_learning_rate,
                "weight_decay": self.weight_decay, "compensate_layer_factor": self.compensate_layer_factor}

    # -- filled or overridden by the models -------------------------------------------------------
    def phase_dynamics(self, network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor) -> dict:
        """``{phase name: NetworkDynamics}`` for one batch."""
        raise NotImplementedError

    def layer_factor(self, depth: int, i: int) -> float:
        """``c_i``: how much the model scales the learning signal of layer ``i``."""
        return (self.mu / (1.0 - self.mu)) ** (depth + 1 - i)

    def activity(self, dynamics, state: torch.Tensor) -> list[torch.Tensor]:
        """``[h_1, ..., h_L]``, shapes ``(B, n_i)``: the forward activity of a phase state ``(B, N)``.

        The layer states for the mixture models; the event rates (eq. 6.45) for the multiplexed one.
        """
        return dynamics.split(state)

    def nudged_activity(self, dynamics, state: torch.Tensor) -> list[torch.Tensor]:
        """The activity the forward plasticity compares with its reference, shapes ``(B, n_i)``.

        The layer states for the mixture models; the burst probabilities (eq. 6.46) for the multiplexed one.
        """
        return dynamics.split(state)

    def signal_from(self, network, h0, activity, nudged, reference=None) -> LearningSignal:
        """The learning signal ``nudged_i - reference_i`` with ``D_i`` and ``h_{i-1}`` taken at ``activity``.

        Parameters
        ----------
        activity, nudged : list of Tensor
            :meth:`activity` and :meth:`nudged_activity` of the learning-phase state, shapes ``(B, n_i)``.
        reference : list of Tensor, optional
            The free phase's :meth:`nudged_activity` (``h^f_i``, eq. 6.35; ``hat h^f_i``, eq. 6.58); default
            the forward prediction ``f_i(h_{i-1})`` at ``activity`` (single phase, eq. 6.17).
        """
        below, f, d = _forward_reference(network, h0, activity)
        reference = f if reference is None else reference
        return LearningSignal([n - r for n, r in zip(nudged, reference)], below, d, self.layer_factors(network.depth))

    def learning_signal(self, network, h0, label, states: PhaseStates | None = None) -> LearningSignal:
        """The per-layer signal, presynaptic activity and ``D_i`` of the forward plasticity at ``states``.

        A diagnostic of the equilibria: no gradient flows through it.
        """
        if states is None:
            states = self.equilibria(network, h0, label)
        with torch.no_grad():
            dyn, state = states.dynamics["learning"], states.results["learning"].state
            reference = None
            if "free" in states.results:
                reference = self.nudged_activity(states.dynamics["free"], states.results["free"].state)
            return self.signal_from(network, h0, self.activity(dyn, state), self.nudged_activity(dyn, state),
                                    reference)

    def feedback_states(self, network, states: PhaseStates) -> list[torch.Tensor]:
        """``[h_1, ..., h_L]`` at which the feedback plasticity evaluates the inverse loss (its phase's activity)."""
        phase = self.feedback_phase
        return self.activity(states.dynamics[phase], states.results[phase].state)

    # -- shared ------------------------------------------------------------------------------------
    def equilibria(self, network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor, *,
                   initial: PhaseStates | None = None, dynamics: dict | None = None) -> PhaseStates:
        """Bring every phase to equilibrium.

        Parameters
        ----------
        initial : PhaseStates, optional
            Equilibria of a nearby problem (the same batch before a small weight change): each phase
            starts from its state there (a warm start) instead of the forward pass.
        dynamics : dict, optional
            The :meth:`phase_dynamics` of this batch, built once by a caller that solves it repeatedly
            (the dynamics read the network's current weights at every evaluation).

        Raises
        ------
        EquilibriumNotReachedError
            If a phase does not converge (a learning signal from a non-equilibrium would be wrong).
        """
        dynamics = self.phase_dynamics(network, h0, label) if dynamics is None else dynamics
        results = {}
        with torch.no_grad():
            for phase, dyn in dynamics.items():
                start = None if initial is None else initial.results.get(phase)
                result = equilibrium(dyn, tol=self.tol, solver=self.solver, initial_state=start)
                if not result.success:
                    raise EquilibriumNotReachedError(
                        f"{self.name} {phase} phase did not reach equilibrium ({result.status}): {result.message}",
                        result)
                results[phase] = result
        return PhaseStates(results, dynamics)

    def layer_factors(self, depth: int) -> list[float]:
        return [self.layer_factor(depth, i) for i in range(1, depth + 1)]

    def learning_rates(self, depth: int) -> list[float]:
        """``eta_i`` per layer (divided by ``c_i`` with ``compensate_layer_factor``)."""
        if self.compensate_layer_factor:
            return [self.learning_rate / c for c in self.layer_factors(depth)]
        return [self.learning_rate] * depth

    def weight_velocities(self, network, h0, label, states: PhaseStates | None = None) -> list[torch.Tensor]:
        """``dW_i/dt`` for ``i = 1..L``, mean over the batch; shapes ``(n_i, n_{i-1})``."""
        if states is None:
            states = self.equilibria(network, h0, label)
        signal = self.learning_signal(network, h0, label, states)
        return velocities_from_signal(signal, self.learning_rates(network.depth))

    def feedback_velocities(self, network, h0, label, states: PhaseStates | None = None) -> dict:
        """``dQ/dt`` of every trainable feedback weight, keyed by the owning layer index (``i+1`` for ``Q_i``)."""
        if self.feedback_learning_rate == 0.0:
            return {}
        if states is None:
            states = self.equilibria(network, h0, label)
        return inverse_loss_velocities(network, self.feedback_states(network, states),
                                       self.feedback_learning_rate, self.weight_decay)


def velocities_from_signal(signal: LearningSignal, rates) -> list[torch.Tensor]:
    """``eta_i mean_b[(D_i * signal_i) pre_i^T]`` for every layer (eqs. 6.17, 6.35, 6.58).

    Parameters
    ----------
    signal : LearningSignal
    rates : sequence of float
        ``eta_i`` per layer (:meth:`ContinuousModel.learning_rates`).

    Returns
    -------
    list of Tensor
        Entry ``i - 1`` is ``dW_i/dt``, shape ``(n_i, n_{i-1})``.
    """
    out = []
    for rate, s, d, pre in zip(rates, signal.signal, signal.derivative, signal.presynaptic):
        out.append(rate * torch.einsum("bi,bj->ij", d * s, pre) / s.shape[0])
    return out


def trainable_feedback(network: LayeredNetwork) -> dict:
    """``{owner layer index: feedback weight}`` of the feedback mappings that have a trainable weight."""
    out = {}
    for i, layer in enumerate(network.layers, start=1):
        fb = layer.feedback
        if fb is not None and not isinstance(fb, (ExactInverseFeedback, FixedRandomFeedback)):
            out[i] = fb.weight
    return out


def inverse_loss_velocities(network: LayeredNetwork, states: list[torch.Tensor], rate: float,
                            weight_decay: float) -> dict:
    """``-rate * grad_Q [1/2 ||g(h_{i+1}) - h_i||^2 + lambda/2 ||Q||^2]`` (mean over the batch), eqs. 6.24-6.26.

    Parameters
    ----------
    states : list of Tensor
        ``[h_1, ..., h_L]`` (shapes ``(B, n_i)``) at which the loss is evaluated.
    """
    out = {}
    for owner, weight in trainable_feedback(network).items():
        if owner < 2:
            continue  # g_0 maps back onto the clamped input: nothing to learn it from
        h_below, h_above = states[owner - 2].detach(), states[owner - 1].detach()
        with torch.enable_grad():
            reconstruction = network.layer(owner).feedback_forward(h_above)
            loss = 0.5 * (reconstruction - h_below).square().sum() / h_below.shape[0] \
                + 0.5 * weight_decay * weight.square().sum()
            (grad,) = torch.autograd.grad(loss, weight)
        out[owner] = -rate * grad.detach()
    return out


CONTINUOUS_MODELS: Registry[type[ContinuousModel]] = Registry("continuous model", ContinuousModel, "model")


def _forward_reference(network, h0, states):
    """``f_i(h_{i-1})`` of each layer at the states ``[h_1..h_L]``, with its ``D_i``."""
    below = [h0] + list(states[:-1])
    pre = [network.layer(i).preactivation(b) for i, b in enumerate(below, start=1)]
    f = [network.layer(i).nonlinearity(a) for i, a in enumerate(pre, start=1)]
    d = [network.layer(i).nonlinearity.derivative(a) for i, a in enumerate(pre, start=1)]
    return below, f, d


@CONTINUOUS_MODELS.register("single_phase")
class SinglePhaseModel(ContinuousModel):
    """Section 6.4-6.5: one phase with the teaching signal on; eqs. 6.17 and 6.26."""

    phases = ("learning",)
    feedback_phase = "learning"

    def phase_dynamics(self, network, h0, label):
        return {"learning": MixtureDynamics(network, h0, mu=self.mu, tau=self.tau, label=label, eta_hat=self.eta_hat)}


@CONTINUOUS_MODELS.register("two_phase")
class TwoPhaseModel(ContinuousModel):
    """Section 6.6: a free phase (``h_L^trgt = h_L``) and a learning phase; eqs. 6.35 and 6.37."""

    phases = ("free", "learning")

    def phase_dynamics(self, network, h0, label):
        return {"free": MixtureDynamics(network, h0, mu=self.mu, tau=self.tau),
                "learning": MixtureDynamics(network, h0, mu=self.mu, tau=self.tau, label=label, eta_hat=self.eta_hat)}


@CONTINUOUS_MODELS.register("multiplexed")
class MultiplexedModel(ContinuousModel):
    """Section 6.9.2: event rates carry the forward pass, burst probabilities the target; eq. 6.58."""

    phases = ("free", "learning")

    def phase_dynamics(self, network, h0, label):
        return {"free": MultiplexedDynamics(network, h0, tau=self.tau),
                "learning": MultiplexedDynamics(network, h0, tau=self.tau, label=label, eta_hat=self.eta_hat)}

    def layer_factor(self, depth, i):
        return 1.0  # separate channels: no mixing, no decay with depth (section 6.9)

    def activity(self, dynamics, state):
        return dynamics.event_rates(state)

    def nudged_activity(self, dynamics, state):
        return dynamics.burst_probabilities(state)


def get_model(model, **kwargs) -> ContinuousModel:
    """A model instance from a name, class or instance (keyword arguments go to the constructor)."""
    if isinstance(model, ContinuousModel):
        if kwargs:
            raise ValueError("pass keyword arguments only with a model name or class, not an instance.")
        return model
    return CONTINUOUS_MODELS.get(model)(**kwargs)
