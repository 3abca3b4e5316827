"""Continuous learning (chapter 6) of S ensemble members as one tensor program.

The members of an :class:`~tpdynamics.ensemble.EnsembleNetwork` share one continuous model (its ``mu``,
``tau``, ``eta_hat``, tolerance and solver); their inputs, labels and weights are their own.

* :class:`EnsembleContinuousModel` — every phase's equilibria of every member as **one** batched solve
  (:class:`~tpdynamics.ensemble.dynamics.EnsembleMixtureDynamics`: the members folded into the batch,
  so every solver of :func:`tpdynamics.equilibrium` works on them unchanged, per row), and the learning
  signals and weight velocities of eqs. 6.17, 6.26, 6.35, 6.37 batched over the stacked weights
  ``(S, n_i, n_{i-1})``;
* :func:`integrate_weights_ensemble` — the time-scale-separated weight flow (:func:`tpdynamics.continuous.integrate_weights`)
  of every member in one torchdiffeq state, each evaluation warm-started from the previous one's equilibria;
* :class:`EnsembleContinuousLearner` — :class:`~tpdynamics.training.ContinuousLearner` 's Euler step per
  mini-batch for every member, each member with its own rates; a member whose phase does not settle (or
  whose loss passes the limit) stops alone, as the serial run would.

Supported: every registered model (``single_phase``, ``two_phase``: :class:`EnsembleMixtureDynamics`;
``multiplexed``: :class:`EnsembleMultiplexedDynamics`); a subclass that overrides a hook the batched
computation does not call is refused by :func:`ensemble_continuous_support` (its runs go the serial way).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchdiffeq

from .._equilibrium import equilibrium
from ..continuous.models import ContinuousModel, MultiplexedModel, SinglePhaseModel, TwoPhaseModel
from ..errors import EquilibriumNotReachedError
from ..layers import ExactInverseFeedback, FixedRandomFeedback, OriginalFeedback
from .dynamics import EnsembleMixtureDynamics, EnsembleMultiplexedDynamics, unfold
from .network import EnsembleNetwork

__all__ = ["EnsembleContinuousModel", "EnsemblePhaseStates", "EnsembleWeightTrajectory", "EnsembleContinuousLearner",
           "EnsembleContinuousStep", "ensemble_continuous_support", "integrate_weights_ensemble"]


def ensemble_continuous_support(model) -> str | None:
    """``None`` if the ensemble path computes ``model`` (a :class:`ContinuousModel` or its class), else why not."""
    cls = model if isinstance(model, type) else type(model)
    if cls in _ENSEMBLED:
        return None
    base = next((b for b in _ENSEMBLED if issubclass(cls, b)), None)
    if base is not None:
        hooks = [name for name in ("phase_dynamics", "activity", "nudged_activity", "signal_from", "learning_signal",
                                   "layer_factor", "learning_rates", "feedback_states", "weight_velocities",
                                   "feedback_velocities", "equilibria") if getattr(cls, name) is not getattr(base, name)]
        if not hooks:
            return None
        return f"{cls.__name__} overrides {', '.join(hooks)}, which the ensemble's batched computation does not call"
    return (f"the {getattr(cls, 'name', cls.__name__)} model is not ensembled (only single_phase, two_phase and "
            "multiplexed are): its runs go one after another")


_ENSEMBLED = (SinglePhaseModel, TwoPhaseModel, MultiplexedModel)


@dataclass
class EnsemblePhaseStates:
    """Every phase's equilibria for the S members.

    Attributes
    ----------
    results : dict of str -> EquilibriumResult
        One solve per phase. ``state``, ``converged`` and ``sample_status`` cover the whole folded batch
        (row ``s B + b``; rows of members not solved: zeros, ``False``, ``"not solved"``); the other fields
        cover the rows solved.
    dynamics : dict of str -> EnsembleMixtureDynamics
    converged : Tensor of bool, shape (S,)
        Whether every sample of a member converged in every phase (``False`` for a member not solved).
    failures : dict of int -> str
        Member -> what did not converge (the serial run's error message, in words).
    """

    results: dict
    dynamics: dict
    converged: torch.Tensor
    failures: dict


class EnsembleContinuousModel:
    """A mixture-model :class:`ContinuousModel` for the members of an ensemble (module docstring).

    Parameters
    ----------
    model : ContinuousModel
        ``single_phase``, ``two_phase`` or ``multiplexed`` (:func:`ensemble_continuous_support`), shared by the
        members.
    ensemble : EnsembleNetwork
    """

    def __init__(self, model: ContinuousModel, ensemble: EnsembleNetwork):
        if not isinstance(model, ContinuousModel):
            raise TypeError(f"model must be a ContinuousModel, got {type(model).__name__}.")
        if not isinstance(ensemble, EnsembleNetwork):
            raise TypeError(f"ensemble must be an EnsembleNetwork, got {type(ensemble).__name__}.")
        reason = ensemble_continuous_support(model)
        if reason is not None:
            raise ValueError(f"model={model.name!r} cannot run as an ensemble: {reason}.")
        self.model, self.ensemble = model, ensemble

    # -- equilibria ---------------------------------------------------------------------------------
    def phase_dynamics(self, h0: torch.Tensor, label: torch.Tensor) -> dict:
        """``{phase: EnsembleMixtureDynamics}`` for the stacked batch ``h0`` (S, B, n_0), ``label`` (S, B, n_L)."""
        m, e = self.model, self.ensemble
        if isinstance(m, MultiplexedModel):
            return {"free": EnsembleMultiplexedDynamics(e, h0, tau=m.tau),
                    "learning": EnsembleMultiplexedDynamics(e, h0, tau=m.tau, label=label, eta_hat=m.eta_hat)}
        taught = EnsembleMixtureDynamics(e, h0, mu=m.mu, tau=m.tau, label=label, eta_hat=m.eta_hat)
        if isinstance(m, TwoPhaseModel):
            return {"free": EnsembleMixtureDynamics(e, h0, mu=m.mu, tau=m.tau), "learning": taught}
        return {"learning": taught}

    def equilibria(self, h0, label, *, initial: EnsemblePhaseStates | None = None, dynamics: dict | None = None,
                   members: torch.Tensor | None = None, name: str | None = None, **options) -> EnsemblePhaseStates:
        """Bring every phase of the members in ``members`` (bool (S,), default all) to equilibrium, one solve per phase.

        Each phase starts from ``initial`` 's state of that phase (a warm start) where given, else from the
        forward pass. A member with a sample that does not converge in a phase gets ``converged = False``,
        its reason in ``failures``, and is not solved in the later phases (the serial run raises there).
        ``options`` go to :func:`tpdynamics.equilibrium` (e.g. ``max_iterations``, ``max_steps``).
        """
        m, S = self.model, self.ensemble.size
        dynamics = self.phase_dynamics(h0, label) if dynamics is None else dynamics
        device = h0.device
        ok = torch.ones(S, dtype=torch.bool, device=device) if members is None else members.clone()
        results, failures = {}, {}
        B = h0.shape[1]
        name = name or m.name
        with torch.no_grad():
            for phase, dyn in dynamics.items():
                start = None if initial is None else initial.results.get(phase)
                start = None if start is None else start.state.detach()
                if bool(ok.all()):
                    sub, rows = dyn, None
                else:
                    rows = torch.nonzero(ok.repeat_interleave(B)).flatten()
                    if rows.numel() == 0:
                        break
                    sub = dyn.select(rows)
                    start = None if start is None else start[rows]
                result = equilibrium(sub, tol=m.tol, solver=m.solver, initial_state=start, **options)
                if rows is not None:
                    result = _scatter(result, rows, dyn, S * B)
                converged = unfold(result.converged, S).all(1)
                bad = ok & ~converged
                for s in torch.nonzero(bad).flatten().tolist():
                    statuses = result.sample_status[s * B:(s + 1) * B]
                    worst = next(x for x in statuses if x != "converged")
                    failures[s] = (f"{name} {phase} phase did not reach equilibrium ({worst}): "
                                   f"{sum(x != 'converged' for x in statuses)} of {B} sample(s) did not reach the "
                                   f"fixed-point residual tol={m.tol:g}")
                ok = ok & converged
                results[phase] = result
        return EnsemblePhaseStates(results, dynamics, ok, failures)

    # -- learning signals and velocities ------------------------------------------------------------
    def _states(self, states: EnsemblePhaseStates, phase: str, nudged: bool = False) -> list[torch.Tensor]:
        """The model's activity (or nudged activity) of a phase, ``[h_1..h_L]`` as ``(S, B, n_i)``.

        The serial model's own read-outs (layer states; event rates and burst probabilities for the
        multiplexed network), which are element-wise and so work on the folded rows.
        """
        dyn, state = states.dynamics[phase], states.results[phase].state.detach()
        values = (self.model.nudged_activity if nudged else self.model.activity)(dyn, state)
        return [unfold(b, self.ensemble.size) for b in values]

    def learning_signal(self, h0, states: EnsemblePhaseStates):
        """``(signal, presynaptic, derivative)`` per layer, shapes ``(S, B, n_i)`` / ``(S, B, n_{i-1})`` (eqs. 6.17, 6.35).

        The nudged state minus its reference: ``h*_i - f_i(h*_{i-1})`` (single phase), ``h^l_i - h^f_i`` (two phase);
        ``D_i = s_i'(W_i h_{i-1})`` and the presynaptic ``h_{i-1}`` at the learning phase's states.
        """
        e = self.ensemble
        activity, nudged = self._states(states, "learning"), self._states(states, "learning", nudged=True)
        below = [h0] + activity[:-1]
        pre = [b @ W.mT for b, W in zip(below, e.weights)]
        d = [s.derivative(a) for s, a in zip(e.nonlinearities, pre)]
        if "free" in states.results:
            reference = self._states(states, "free", nudged=True)
        else:
            reference = [s(a) for s, a in zip(e.nonlinearities, pre)]
        return [n - r for n, r in zip(nudged, reference)], below, d

    def weight_velocities(self, h0, states: EnsemblePhaseStates, rate=None) -> list[torch.Tensor]:
        """``dW_i/dt`` of every member, shapes ``(S, n_i, n_{i-1})``: ``eta_i mean_b[(D_i signal_i) h_{i-1}^T]``.

        ``rate``: ``(S,)`` per-member factor multiplying the model's ``eta_i`` (default 1).
        """
        signal, below, d = self.learning_signal(h0, states)
        rates = self.model.learning_rates(self.ensemble.depth)
        B = h0.shape[1]
        out = []
        for r, s, dd, pre in zip(rates, signal, d, below):
            v = ((dd * s).mT @ pre) * (r / B)
            out.append(v if rate is None else v * rate.view(-1, 1, 1))
        return out

    def feedback_states(self, states: EnsemblePhaseStates) -> list[torch.Tensor]:
        """``[h_1..h_L]`` (S, B, n_i) of the phase the feedback plasticity learns from (eqs. 6.26, 6.37)."""
        return self._states(states, self.model.feedback_phase)

    def feedback_velocities(self, states: EnsemblePhaseStates, rate, weight_decay) -> dict:
        """``dQ/dt`` per trainable feedback matrix (owner layer ``o >= 2`` -> ``(S, n_{o-1}, n_o)``), eqs. 6.24-6.26.

        ``-rate grad_Q [1/2 mean_b ||g(h_o) - h_{o-1}||^2 + lambda/2 ||Q||^2]`` in closed form: for
        ``g = Q s^{-1}(h)`` the gradient is ``mean_b (g - h_{o-1}) s^{-1}(h)^T + lambda Q``, for the original
        form ``g = t(Q h)`` it is ``mean_b ((g - h_{o-1}) t'(Q h)) h^T + lambda Q``. ``rate`` and
        ``weight_decay``: floats or ``(S,)`` tensors.
        """
        e = self.ensemble
        h = self.feedback_states(states)
        B = h[0].shape[1]
        out = {}
        rate = _per_member(rate, e)
        decay = _per_member(weight_decay, e)
        for owner in range(2, e.depth + 1):
            kind = e.kinds[owner - 1]
            if kind is None or kind in (ExactInverseFeedback, FixedRandomFeedback):
                continue
            Q, below, above = e.feedback[owner - 1], h[owner - 2], h[owner - 1]
            if kind is OriginalFeedback:
                a = above @ Q.mT
                error = (e.feedback_nonlinearities[owner - 1](a) - below) \
                    * e.feedback_nonlinearities[owner - 1].derivative(a)
                grad = error.mT @ above / B
            else:
                inverse = e.nonlinearities[owner - 1].inverse(above, check=False)
                grad = (inverse @ Q.mT - below).mT @ inverse / B
            out[owner] = -rate * (grad + decay * Q)
        return out


def _per_member(value, ensemble) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor):
        return value.to(ensemble.dtype).view(-1, 1, 1)
    return float(value)


def _scatter(result, rows, dynamics, total):
    """A sub-batch result put back into the whole folded batch (rows not solved: not converged)."""
    state = dynamics.initial_state("zeros")
    state[rows] = result.state.detach()
    converged = torch.zeros(total, dtype=torch.bool, device=state.device)
    converged[rows] = result.converged
    status = ["not solved"] * total
    for r, s in zip(rows.tolist(), result.sample_status):
        status[r] = s
    result.state, result.converged, result.sample_status = state, converged, status
    return result


def sync_exact_inverses(ensemble: EnsembleNetwork) -> torch.Tensor:
    """Recompute every exact inverse ``W_i^{-1}`` from the stacked weights (batched); the members it failed for.

    Returns a bool ``(S,)`` of the members with a singular weight (their inverse is left as it was).
    """
    bad = torch.zeros(ensemble.size, dtype=torch.bool, device=ensemble.device)
    for k, kind in enumerate(ensemble.kinds):
        if kind is ExactInverseFeedback:
            inverse, info = torch.linalg.inv_ex(ensemble.weights[k])
            singular = (info != 0) | ~torch.isfinite(inverse).flatten(1).all(1)
            ensemble.feedback[k].copy_(torch.where(singular.view(-1, 1, 1), ensemble.feedback[k], inverse))
            bad |= singular
    return bad


class _PlasticStacks:
    """The plastic stacked tensors: ``W_1..W_L`` then the trainable feedback matrices (owner ``>= 2``)."""

    def __init__(self, ensemble: EnsembleNetwork, *, feedback: bool):
        self.ensemble = ensemble
        self.owners = [o for o in range(2, ensemble.depth + 1)
                       if feedback and ensemble.kinds[o - 1] not in (None, ExactInverseFeedback, FixedRandomFeedback)]

    def tensors(self):
        e = self.ensemble
        return list(e.weights) + [e.feedback[o - 1] for o in self.owners]

    def snapshot(self):
        return tuple(t.detach().clone() for t in self.tensors())

    @torch.no_grad()
    def load(self, values):
        for tensor, value in zip(self.tensors(), values):
            tensor.copy_(value)
        bad = sync_exact_inverses(self.ensemble)
        if bool(bad.any()):
            raise EquilibriumNotReachedError(f"members {torch.nonzero(bad).flatten().tolist()} have a singular weight: "
                                             "the exact inverse does not exist.")

    def pack(self, forward, feedback):
        e = self.ensemble
        return tuple(forward) + tuple(feedback.get(o, torch.zeros_like(e.feedback[o - 1])) for o in self.owners)


class EnsembleWeightFlow(torch.nn.Module):
    """:class:`~tpdynamics.continuous.WeightFlow` for every member: ``d theta/ds = v(theta)`` on the stacked weights.

    Each evaluation solves every phase of every member as one batch, starting from the previous
    evaluation's equilibria (``warm_start``). A member whose phase does not settle raises
    :class:`~tpdynamics.errors.EquilibriumNotReachedError`, as the serial flow does; its ``members`` attribute
    lists the members that did not settle.
    """

    def __init__(self, model: ContinuousModel, ensemble: EnsembleNetwork, h0, label, *, warm_start: bool = True):
        super().__init__()
        self.model = EnsembleContinuousModel(model, ensemble)
        self.h0, self.label = h0, label
        self.params = _PlasticStacks(ensemble, feedback=model.feedback_learning_rate > 0)
        self.phase_dynamics = self.model.phase_dynamics(h0, label)
        self.warm_start = bool(warm_start)
        self._last = None
        self.nfev = 0

    @torch.no_grad()
    def forward(self, s, state):
        self.nfev += 1
        self.params.load(state)
        m = self.model
        states = m.equilibria(self.h0, self.label, dynamics=self.phase_dynamics,
                              initial=self._last if self.warm_start else None)
        if states.failures:
            s, text = next(iter(states.failures.items()))
            raise EquilibriumNotReachedError(f"member {s}: {text}", None, members=sorted(states.failures))
        self._last = states
        forward = m.weight_velocities(self.h0, states)
        feedback = {}
        if m.model.feedback_learning_rate > 0:
            feedback = m.feedback_velocities(states, m.model.feedback_learning_rate, m.model.weight_decay)
        return self.params.pack(forward, feedback)


@dataclass
class EnsembleWeightTrajectory:
    """Stacked weights over slow time: ``weights[k]`` the tuple of ``(S, ...)`` tensors at ``times[k]``."""

    times: torch.Tensor
    weights: list
    nfev: int
    n_equilibria: int


def integrate_weights_ensemble(model: ContinuousModel, ensemble: EnsembleNetwork, h0: torch.Tensor,
                               label: torch.Tensor, times, *, method: str = "rk4", rtol: float = 1e-7,
                               atol: float = 1e-9, options: dict | None = None,
                               warm_start: bool = True) -> EnsembleWeightTrajectory:
    """:func:`tpdynamics.continuous.integrate_weights` for every member at once (one torchdiffeq state).

    Parameters
    ----------
    model : ContinuousModel
        ``single_phase`` or ``two_phase``, shared.
    ensemble : EnsembleNetwork
        Its stacked weights are the initial state; it holds the final weights afterwards (members synced).
    h0 : Tensor, shape (S, B, n_0)
    label : Tensor, shape (S, B, n_L)
    times : sequence of float, shape (T,)
        Slow-time points, strictly increasing.
    method, rtol, atol, options
        Passed to ``torchdiffeq.odeint``. With a fixed-step method (``rk4``) every member takes the steps
        its serial run takes; an adaptive method chooses one step for all members (an error norm over
        the whole state), so it matches the serial runs only to its tolerance.
    """
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError(f"times must be a 1-D increasing sequence of at least two slow-time points, got "
                         f"{times.tolist()[:4]}; pass e.g. torch.linspace(0, T, K).")
    flow = EnsembleWeightFlow(model, ensemble, h0, label, warm_start=warm_start)
    with torch.no_grad():
        path = torchdiffeq.odeint(flow, flow.params.snapshot(), times.to(ensemble.device), method=method, rtol=rtol,
                                  atol=atol, options=options)
    weights = [tuple(p[k] for p in path) for k in range(len(times))]
    flow.params.load(weights[-1])
    ensemble.sync_members()
    return EnsembleWeightTrajectory(times=times, weights=weights, nfev=flow.nfev,
                                    n_equilibria=flow.nfev * len(model.phases))


@dataclass
class EnsembleContinuousStep:
    """What :meth:`EnsembleContinuousLearner.step` did, per member.

    Attributes
    ----------
    loss : Tensor, shape (S,)
        Mini-batch loss before the step (mean over the batch of ``||h_L - y||^2``; ``inf`` where it passed
        ``loss_limit`` or was not finite: no step taken, the serial learner reports the same).
    stepped : Tensor of bool, shape (S,)
        The members whose weights moved.
    failures : dict of int -> str
        Members whose equilibrium did not settle (the serial learner raises
        :class:`~tpdynamics.errors.EquilibriumNotReachedError` with this message): no step taken.
    """

    loss: torch.Tensor
    stepped: torch.Tensor
    failures: dict


class EnsembleContinuousLearner:
    """:class:`~tpdynamics.training.ContinuousLearner` 's step for S members at once (module docstring).

    Parameters
    ----------
    learners : sequence of ContinuousLearner
        One per member: one method and one ``mu``, ``eta_hat``, ``tol``, iteration budget and loss limit;
        ``eta``, ``eta_backward`` and ``lambda_`` may differ (they are read at every step, so a rate
        schedule that sets ``learner.eta`` reaches the ensemble).
    ensemble : EnsembleNetwork
    warm_start : {'free', None}
        ``'free'`` (default): the learning phase of the two-phase model starts from the same batch's
        free-phase equilibrium, the nearest known point to it; ``None``: from the forward pass, as the
        serial learner. The fixed point is the same either way (to the tolerance).
    """

    def __init__(self, learners, ensemble: EnsembleNetwork, *, warm_start: str | None = "free"):
        learners = list(learners)
        if len(learners) != ensemble.size:
            raise ValueError(f"got {len(learners)} learners for an ensemble of {ensemble.size} members; pass one per "
                             "member.")
        first = learners[0]
        shared = ("name", "mu", "eta_hat", "max_iterations", "max_steps", "loss_limit")
        for k, learner in enumerate(learners[1:], start=1):
            diff = [a for a in shared if getattr(learner, a) != getattr(first, a)] + (
                ["tol"] if learner.model.tol != first.model.tol else [])
            if diff:
                raise ValueError(f"learners[{k}] differs from learners[0] in {', '.join(diff)}; the members of a "
                                 "continuous ensemble share the model and its solver settings (only eta, "
                                 "eta_backward and lambda_ may differ).")
        if warm_start not in ("free", None):
            raise ValueError(f"warm_start={warm_start!r} is not valid; use 'free' or None.")
        self.learners, self.ensemble = learners, ensemble
        self.model = EnsembleContinuousModel(first.model, ensemble)
        self.warm_start = warm_start
        self.n_equilibria = 0  # batch equilibria solved per member (as each serial learner counts them)

    def _rates(self, name):
        return torch.tensor([getattr(x, name) for x in self.learners], dtype=self.ensemble.dtype,
                            device=self.ensemble.device)

    def predict(self, h0: torch.Tensor) -> torch.Tensor:
        """Every member's forward output ``(S, B, n_L)``."""
        with torch.no_grad():
            return self.ensemble.forward(h0)

    @torch.no_grad()
    def step(self, h0: torch.Tensor, y: torch.Tensor, active: torch.Tensor | None = None) -> EnsembleContinuousStep:
        """Equilibria of every phase for every active member's batch (one solve per phase), then each one's Euler step.

        Parameters
        ----------
        h0 : Tensor, shape (S, B, n_0)
        y : Tensor, shape (S, B, n_L)
            The rule labels (as the serial learner's ``y``).
        active : Tensor of bool, shape (S,), optional
            Members still training (default all); the others are not solved and do not move.
        """
        e, first = self.ensemble, self.learners[0]
        S = e.size
        active = torch.ones(S, dtype=torch.bool, device=e.device) if active is None else active.to(e.device)
        loss = ((e.forward(h0) - y) ** 2).sum(-1).mean(-1)
        ok = active & (loss < first.loss_limit)
        loss = torch.where(loss < first.loss_limit, loss, torch.full_like(loss, float("inf")))
        m = self.model
        if not bool(ok.any()):
            return EnsembleContinuousStep(loss, ok, {})
        dynamics = m.phase_dynamics(h0, y)
        options = dict(max_iterations=first.max_iterations, max_steps=first.max_steps)
        if self.warm_start == "free" and "free" in dynamics:
            free = m.equilibria(h0, y, dynamics={"free": dynamics["free"]}, members=ok, name=first.name, **options)
            start = EnsemblePhaseStates({"learning": free.results["free"]}, {}, free.converged, {})
            states = m.equilibria(h0, y, dynamics={"learning": dynamics["learning"]}, members=free.converged,
                                  initial=start, name=first.name, **options)
            states = EnsemblePhaseStates({**free.results, **states.results}, dynamics, states.converged,
                                         {**free.failures, **states.failures})
        else:
            states = m.equilibria(h0, y, dynamics=dynamics, members=ok, name=first.name, **options)
        self.n_equilibria += len(dynamics)
        stepped = states.converged
        if not bool(stepped.any()):
            return EnsembleContinuousStep(loss, stepped, states.failures)
        mask = stepped.to(e.dtype).view(-1, 1, 1)
        forward = m.weight_velocities(h0, states)
        eta = self._rates("eta").view(-1, 1, 1) * mask
        for k, velocity in enumerate(forward):
            # a member that did not settle may have non-finite velocities: where, not a product, keeps it out
            e.weights[k].add_(torch.where(mask > 0, velocity, 0.0) * eta)
        eta_backward = self._rates("eta_backward")
        if bool((eta_backward != 0).any()):
            feedback = m.feedback_velocities(states, 1.0, self._rates("lambda_"))
            for owner, velocity in feedback.items():
                e.feedback[owner - 1].add_(torch.where(mask > 0, velocity, 0.0) * (eta_backward.view(-1, 1, 1) * mask))
        if any(k is ExactInverseFeedback for k in e.kinds):
            sync_exact_inverses(e)
            e.sync_members()
        return EnsembleContinuousStep(loss, stepped, states.failures)
