"""Plastic dynamics as torchdiffeq ODE modules: weights that move while (or after) the neurons settle.

Two modes:

:class:`WeightFlow` — time-scale separated
    For every evaluation the neurons are brought to equilibrium (every phase of the model) for the
    batch, and ``d theta / ds = v(theta)`` is the model's weight velocity there (eqs. 6.17, 6.26,
    6.35, 6.37, 6.58). ``s`` is slow (learning) time.
:class:`JointFlow` — neurons and weights in one torchdiffeq tuple state
    ``tau dh/dt`` is the network dynamics with the current weights and
    ``tau_w d theta / dt = v(theta, h(t))`` the same velocity evaluated at the *instantaneous* states,
    phase by phase (two-phase: the free phase runs first with feedback plasticity, then the learning
    phase with forward plasticity against the stored free state). For ``tau_w >> tau`` the joint
    trajectory at ``t`` follows the separated one at ``s = t / tau_w``; when the separation is not
    large the weights move before the neurons settle, which is what this mode lets a user see.

The flows write the weights they integrate into the network (exact inverses are recomputed from
``W``, the continuous counterpart of keeping them by Sherman–Morrison), so after integration the
network holds the final weights.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torchdiffeq
from torch import nn

from ..validation import check_int, check_positive, check_tensor
from ..errors import TPDynamicsWarning
from ..layers import ExactInverseFeedback
from ..network import LayeredNetwork
from .models import ContinuousModel, inverse_loss_velocities, trainable_feedback, velocities_from_signal


class _PlasticParameters:
    """The plastic weights of a network as a flat tuple: ``W_1..W_L`` then trainable ``Q`` (by owner layer)."""

    def __init__(self, network: LayeredNetwork, *, feedback: bool):
        self.network = network
        self.forward_layers = list(range(1, network.depth + 1))
        self.feedback_owners = [o for o in trainable_feedback(network) if o >= 2] if feedback else []

    def tensors(self) -> list[torch.Tensor]:
        net = self.network
        return ([net.layer(i).weight for i in self.forward_layers]
                + [net.layer(o).feedback.weight for o in self.feedback_owners])

    def snapshot(self) -> tuple[torch.Tensor, ...]:
        return tuple(t.detach().clone() for t in self.tensors())

    @torch.no_grad()
    def load(self, values) -> None:
        for tensor, value in zip(self.tensors(), values):
            tensor.copy_(value)
        for layer in self.network.layers:
            if isinstance(layer.feedback, ExactInverseFeedback):
                layer.sync_inverse()

    def pack(self, forward: list, feedback: dict) -> tuple:
        fb = [feedback[o] if o in feedback else torch.zeros_like(self.network.layer(o).feedback.weight)
              for o in self.feedback_owners]
        return tuple(forward) + tuple(fb)


def _check_batch(network, h0, label):
    check_tensor("h0", h0, ndim=2, size=network.layer_sizes[0], dtype=network.dtype)
    check_tensor("label", label, ndim=2, size=network.layer_sizes[-1], dtype=network.dtype, batch=h0.shape[0])


class WeightFlow(nn.Module):
    """Time-scale-separated weight dynamics ``d theta/ds = v(theta)`` for a fixed batch (a torchdiffeq module).

    Parameters
    ----------
    model : ContinuousModel
    network : LayeredNetwork
        Its weights are overwritten by the state at each evaluation.
    h0 : Tensor, shape (B, n_0)
    label : Tensor, shape (B, n_L)

    Each evaluation starts every phase from its equilibrium at the previous evaluation (a warm start: the
    weights moved a little since), and the phase dynamics are built once.

    Attributes
    ----------
    n_equilibria : int
        Number of batch equilibria solved (one per phase per evaluation).
    n_iterations : int
        Iterations of the equilibrium solver, summed over the equilibria (the largest per-sample count of each).
    warm_start : bool
        Start each equilibrium from the previous evaluation's (default ``True``).
    """

    def __init__(self, model: ContinuousModel, network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor, *,
                 warm_start: bool = True):
        super().__init__()
        if not isinstance(model, ContinuousModel):
            raise TypeError(f"model must be a ContinuousModel (see CONTINUOUS_MODELS), got {type(model).__name__}.")
        _check_batch(network, h0, label)
        self.model, self.h0, self.label = model, h0, label
        self.params = _PlasticParameters(network, feedback=model.feedback_learning_rate > 0)
        self.phase_dynamics = model.phase_dynamics(network, h0, label)
        self.warm_start = bool(warm_start)
        self._last = None
        self.nfev = 0
        self.n_iterations = 0

    @property
    def network(self) -> LayeredNetwork:
        return self.params.network

    @property
    def n_equilibria(self) -> int:
        return self.nfev * len(self.model.phases)

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        return self.params.snapshot()

    @torch.no_grad()
    def forward(self, s, state):
        self.nfev += 1
        self.params.load(state)
        states = self.model.equilibria(self.network, self.h0, self.label, dynamics=self.phase_dynamics,
                                       initial=self._last if self.warm_start else None)
        self._last = states
        self.n_iterations += sum(r.iterations for r in states.results.values())
        forward = self.model.weight_velocities(self.network, self.h0, self.label, states)
        feedback = self.model.feedback_velocities(self.network, self.h0, self.label, states)
        return self.params.pack(forward, feedback)


@dataclass
class WeightTrajectory:
    """Weights over (slow) time: ``times`` shape ``(T,)``, ``weights[k]`` the tuple at ``times[k]``."""

    times: torch.Tensor
    weights: list
    nfev: int
    n_equilibria: int


def integrate_weights(model: ContinuousModel, network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor,
                      times, *, method: str = "rk4", rtol: float = 1e-7, atol: float = 1e-9,
                      options: dict | None = None) -> WeightTrajectory:
    """Integrate the time-scale-separated weight flow over ``times`` (slow time) for one batch.

    The network is left with the weights at ``times[-1]``. With ``method='rk4'`` and no
    ``options``, the step is the spacing of ``times``.

    Parameters
    ----------
    model : ContinuousModel
        Gives ``d theta/ds`` at the phases' equilibria (eqs. 6.17, 6.26, 6.35, 6.37, 6.58).
    network : LayeredNetwork
        Its plastic weights are the initial state; it holds the final weights afterwards.
    h0 : Tensor, shape (B, n_0)
    label : Tensor, shape (B, n_L)
    times : sequence of float or Tensor, shape (T,)
        Slow-time points, strictly increasing (``ValueError`` otherwise: backwards in slow time
        would un-learn), the first being the start.
    method, rtol, atol, options
        Passed to ``torchdiffeq.odeint``.

    Returns
    -------
    WeightTrajectory
        ``weights[k]`` is ``(W_1, ..., W_L, Q...)`` at ``times[k]``.
    """
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 2 or not bool(torch.isfinite(times).all()):
        raise ValueError(f"times must be a 1-D sequence of at least two finite slow-time points, got shape "
                         f"{tuple(times.shape)}.")
    if not bool((times[1:] > times[:-1]).all()):
        # torchdiffeq would integrate backwards, i.e. un-learn: the flow models learning, whose time runs forward
        raise ValueError(f"times must increase (got {times[:4].tolist()}{' ...' if times.numel() > 4 else ''}): "
                         "the weight flow runs forward in slow time (learning); pass e.g. torch.linspace(0, T, K).")
    flow = WeightFlow(model, network, h0, label)
    with torch.no_grad():
        path = torchdiffeq.odeint(flow, flow.initial_state(), times.to(h0.device), method=method, rtol=rtol, atol=atol,
                                  options=options)
    weights = [tuple(p[k] for p in path) for k in range(len(times))]
    flow.params.load(weights[-1])
    return WeightTrajectory(times=times, weights=weights, nfev=flow.nfev, n_equilibria=flow.n_equilibria)


class JointFlow(nn.Module):
    """Neurons and weights in one torchdiffeq state, for one phase of a model.

    State: ``(neurons, W_1, ..., W_L, Q...)`` with ``neurons`` the phase dynamics' state ``(B, N)``.

    Parameters
    ----------
    model : ContinuousModel
    network : LayeredNetwork
    h0, label : Tensor
        The batch presented during the phase.
    phase : str
        One of ``model.phases``.
    tau_w : float
        Weight time constant: ``tau_w d theta/dt = v(theta, h(t))``.
    free_reference : list of Tensor, optional
        The free phase's final states ``[h^f_1..h^f_L]`` (mixture) or bursts (multiplexed), needed by
        the learning phase of two-phase models.
    """

    def __init__(self, model: ContinuousModel, network: LayeredNetwork, h0, label, *, phase: str, tau_w: float,
                 free_reference=None):
        super().__init__()
        self.model, self.phase, self.h0, self.label = model, phase, h0, label
        self.tau_w = check_positive("tau_w", tau_w)
        self.dynamics = model.phase_dynamics(network, h0, label)[phase]
        self.params = _PlasticParameters(network, feedback=model.feedback_learning_rate > 0)
        two_phase = len(model.phases) > 1
        self.free_reference = free_reference if two_phase else None
        self.forward_plastic = phase == "learning"
        self.feedback_plastic = phase == model.feedback_phase
        if two_phase and phase == "learning" and free_reference is None:
            raise ValueError("the learning phase compares with the free phase's equilibrium: run the free phase "
                             "first (phases=(('free', T_f), ('learning', T_l))).")
        self.nfev = 0

    @property
    def network(self):
        return self.params.network

    def initial_state(self, neurons: torch.Tensor) -> tuple:
        return (neurons,) + self.params.snapshot()

    @torch.no_grad()
    def forward(self, t, state):
        self.nfev += 1
        neurons, weights = state[0], state[1:]
        self.params.load(weights)
        model, dyn = self.model, self.dynamics
        rate = dyn.rate(neurons)
        activity = model.activity(dyn, neurons)  # the instantaneous, not yet settled, states
        L = self.network.depth
        scale = 1.0 / self.tau_w
        if self.forward_plastic:
            signal = model.signal_from(self.network, self.h0, activity, model.nudged_activity(dyn, neurons),
                                       self.free_reference)
            forward = [scale * v for v in velocities_from_signal(signal, model.learning_rates(L))]
        else:
            forward = [torch.zeros_like(w) for w in weights[:L]]
        feedback = {}
        if self.feedback_plastic and model.feedback_learning_rate > 0:
            feedback = {o: scale * v for o, v in inverse_loss_velocities(
                self.network, activity, model.feedback_learning_rate, model.weight_decay).items()}
        return (rate,) + self.params.pack(forward, feedback)


@dataclass
class JointTrajectory:
    """Result of :func:`integrate_joint`: per phase segment, the times and the tuple states."""

    segments: list  # (phase, times (T,), neurons (T, B, N), weights list of tuples)
    nfev: int

    @property
    def final_weights(self):
        return self.segments[-1][3][-1]


def check_phases(model: ContinuousModel, phases) -> list[tuple[str, float]]:
    """Validate a phase schedule ``[(name, duration), ...]`` against the model's phase order.

    Returns
    -------
    list of (str, float)
        The schedule, durations as floats.

    Raises
    ------
    ValueError
        For an empty schedule, an entry that is not a ``(name, duration)`` pair, an unknown phase, a
        non-positive duration, or (two-phase models) a learning phase not preceded by a free phase.
    """
    schedule = []
    for entry in phases:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise ValueError(f"each phase must be a (name, duration) pair, got {entry!r}.")
        name, duration = entry
        if name not in model.phases:
            raise ValueError(f"phase {name!r} is not a phase of the {model.name} model; valid phases: "
                             f"{', '.join(model.phases)}.")
        schedule.append((name, check_positive(f"duration of phase {name!r}", duration)))
    if not schedule:
        raise ValueError("phases is empty; give at least one (name, duration) pair.")
    if len(model.phases) > 1:
        order = [model.phases.index(name) for name, _ in schedule]
        if order[0] != 0 or any(b < a and b != 0 for a, b in zip(order, order[1:])):
            raise ValueError(
                f"phases given in the wrong order: {[n for n, _ in schedule]}. The {model.name} model runs "
                f"{' then '.join(model.phases)}: the learning phase compares with the free phase's equilibrium, "
                "so each learning phase must follow a free phase.")
    return schedule


def integrate_joint(model: ContinuousModel, network: LayeredNetwork, h0: torch.Tensor, label: torch.Tensor, *,
                    tau_w: float, phases=None, cycles: int = 1, points: int = 50, method: str = "dopri5",
                    rtol: float = 1e-8, atol: float = 1e-10, initial_neurons=None) -> JointTrajectory:
    """Integrate neurons and weights together through a schedule of phases.

    Parameters
    ----------
    tau_w : float
        Weight time constant; a value not larger than ``model.tau`` warns (no time-scale separation).
    phases : sequence of (str, float), optional
        ``(phase, duration)`` pairs in neural time; default one phase of ``100 tau`` per model phase.
    cycles : int
        Repeat the schedule this many times. Two-phase models need alternating phases that are long
        against ``tau`` (the neurons must settle in each phase) and short against ``tau_w`` (the
        learning phase compares with the free state stored at the end of the last free phase, which
        goes stale as the weights move). Measured on a 3-4-4-4 tanh network, ``tau_w = 500``, 250 tau of
        learning in all: the final weights differ from the time-scale-separated ones by 115x the weight
        change with 1 cycle of 250 tau phases, 2.4x with 3 cycles, 0.076x with 10 cycles of 25 tau and
        0.54x with 30 cycles of 8.3 tau.
    points : int
        Output points per phase.
    initial_neurons : Tensor, optional
        Starting neuron state; default the first phase's ``initial_state('forward')``.
    """
    if not isinstance(model, ContinuousModel):
        raise TypeError(f"model must be a ContinuousModel, got {type(model).__name__}.")
    _check_batch(network, h0, label)
    tau_w = check_positive("tau_w", tau_w)
    if tau_w <= model.tau:
        warnings.warn(f"tau_w={tau_w:g} is not larger than tau={model.tau:g}: the weights change as fast as the "
                      "neurons settle, so the learning rules no longer see equilibria (no time-scale separation).",
                      TPDynamicsWarning, stacklevel=2)
    schedule = check_phases(model, phases if phases is not None else [(p, 100.0 * model.tau) for p in model.phases])
    schedule = schedule * check_int("cycles", cycles, minimum=1)
    segments, nfev, t0 = [], 0, 0.0
    neurons, free_reference = initial_neurons, None
    for phase, duration in schedule:
        flow = JointFlow(model, network, h0, label, phase=phase, tau_w=tau_w, free_reference=free_reference)
        if neurons is None:
            with torch.no_grad():
                neurons = flow.dynamics.initial_state("forward")
        times = torch.linspace(t0, t0 + duration, points, dtype=torch.float64)
        with torch.no_grad():
            path = torchdiffeq.odeint(flow, flow.initial_state(neurons), times, method=method, rtol=rtol, atol=atol)
        weights = [tuple(p[k] for p in path[1:]) for k in range(points)]
        flow.params.load(weights[-1])
        neurons = path[0][-1]
        if phase == "free":
            free_reference = model.nudged_activity(flow.dynamics, neurons)
        segments.append((phase, times, path[0], weights))
        nfev += flow.nfev
        t0 += duration
    return JointTrajectory(segments=segments, nfev=nfev)


__all__ = ["WeightFlow", "WeightTrajectory", "integrate_weights", "JointFlow", "JointTrajectory", "integrate_joint",
           "check_phases"]
