"""The continuous networks of chapter 6 as mini-batch learners, so they train on the same tasks as the rules.

:class:`ContinuousLearner` takes one explicit Euler step of the time-scale-separated weight flow
(:class:`~tpdynamics.continuous.WeightFlow`) per mini-batch: every phase of the model is brought to
equilibrium for the batch, and::

    W_i <- W_i + eta dW_i/ds        (eqs. 6.17, 6.35, 6.58; eta_i / c_i with the layer-factor compensation, eq. 6.19)
    Q_i <- Q_i + eta_b dQ_i/ds      (eqs. 6.26, 6.37: gradient of the inverse loss at the feedback phase's states)

i.e. slow time ``s`` advances by 1 per batch and the rates are the velocities' scale. With
``compensate_layer_factor`` and ``mu -> 0`` the two-phase forward step tends to the DTP update
``eta_i D_i (hat h_i - h_i) h_{i-1}^T`` of ``dtp-ai`` (section 6.6); its feedback learns from the free
phase's activities (eq. 6.37), not from white noise as Alg. A.8 does. Predictions are the forward pass
(the free phase with the teaching signal off, in the limit ``mu -> 0``).

Methods (:data:`CONTINUOUS_METHODS`): ``two-phase``, ``single-phase``, ``multiplexed`` -> the models of
:data:`~tpdynamics.continuous.CONTINUOUS_MODELS`, all with learned feedback ``g = Q s^{-1}``.
"""
from __future__ import annotations

import math

import torch

from .._equilibrium import equilibrium
from ..continuous import PhaseStates, get_model, inverse_loss_velocities
from ..continuous.models import velocities_from_signal
from ..errors import EquilibriumNotReachedError
from ..layers import ExactInverseFeedback
from .rules import StepRecord
from .rules._base import batch_loss, forward_pass

__all__ = ["CONTINUOUS_METHODS", "ContinuousLearner"]

#: Method name -> continuous model name.
CONTINUOUS_METHODS = {"two-phase": "two_phase", "single-phase": "single_phase", "multiplexed": "multiplexed"}


class ContinuousLearner:
    """One Euler step of a continuous model's weight flow per mini-batch (module docstring).

    Parameters
    ----------
    method : str
        A key of :data:`CONTINUOUS_METHODS`.
    eta, eta_backward : float
        Forward and feedback rates (the slow-time step times the velocities' scale).
    eta_hat : float
        Output target step of the teaching signal (eq. 6.10).
    mu : float
        Mixing coefficient of the mixture models.
    lambda_ : float
        Weight decay of the inverse loss.
    tol : float
        Equilibrium tolerance (fixed-point residual).
    max_iterations, max_steps : int
        Budget of each equilibrium (iterative stages; ODE stage): a phase that does not settle within it
        stops the run with status ``numerical_error`` instead of integrating for minutes.
    loss_limit : float
        A batch loss (of the rules' label, before the step) above this counts as diverged: the step is not
        taken and ``loss = inf`` is reported, so the run stops with status ``diverged``. Losses on one-hot
        targets start near 1-2 (MSE) or ``log K`` (cross-entropy); past ``1e4`` the weights have exploded and
        the equilibria of the next steps would take minutes (measured: the single-phase network with learned
        feedback on digits reaches weight norms of 2e4 in its third step).
    """

    feedback = "learned"
    parameters = ("eta", "eta_hat", "eta_backward", "lambda_", "mu")
    defaults = {"eta": 0.1, "eta_hat": 0.1, "eta_backward": 0.001, "lambda_": 0.0, "mu": 0.1}

    def __init__(self, method: str, *, eta=None, eta_hat=None, eta_backward=None, lambda_=None, mu=None,
                 tol: float = 1e-9, max_iterations: int = 2000, max_steps: int = 5000,
                 loss_limit: float = 1e4, **unused):
        if method not in CONTINUOUS_METHODS:
            raise ValueError(f"method={method!r} is not a continuous method; use one of {', '.join(CONTINUOUS_METHODS)}.")
        self.name = method
        values = {k: v if v is not None else self.defaults[k]
                  for k, v in {"eta": eta, "eta_hat": eta_hat, "eta_backward": eta_backward, "lambda_": lambda_,
                               "mu": mu}.items()}
        self.eta, self.eta_backward = values["eta"], values["eta_backward"]
        self.model = get_model(CONTINUOUS_METHODS[method], mu=values["mu"], eta_hat=values["eta_hat"], learning_rate=1.0,
                               feedback_learning_rate=1.0, weight_decay=values["lambda_"],
                               compensate_layer_factor=method != "multiplexed", tol=tol)
        self.eta_hat, self.lambda_, self.mu = values["eta_hat"], values["lambda_"], values["mu"]
        self.n_equilibria = 0
        self.max_iterations, self.max_steps, self.loss_limit = max_iterations, max_steps, loss_limit

    def hyperparameters(self) -> dict:
        return {"eta": self.eta, "eta_hat": self.eta_hat, "eta_backward": self.eta_backward, "lambda_": self.lambda_,
                "mu": self.mu, "tol": self.model.tol}

    def predict(self, network, h0: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return network(h0)[-1]

    def training_output(self, network, h0):
        return self.predict(network, h0)

    @torch.no_grad()
    def step(self, network, h0: torch.Tensor, y: torch.Tensor, *, diagnostics: bool = False) -> StepRecord:
        """Equilibria of every phase for the batch, then one Euler step of the weights; raises
        :class:`~tpdynamics.errors.EquilibriumNotReachedError` if a phase does not settle."""
        model = self.model
        loss = batch_loss(forward_pass(network, h0)[0][-1] - y)
        if not loss < self.loss_limit:
            return StepRecord(loss=math.inf, updated_layers=())
        dynamics, results = model.phase_dynamics(network, h0, y), {}
        for phase, dyn in dynamics.items():
            result = equilibrium(dyn, tol=model.tol, solver=model.solver, max_iterations=self.max_iterations,
                                 max_steps=self.max_steps)
            if not result.success:
                raise EquilibriumNotReachedError(f"{self.name} {phase} phase did not reach equilibrium "
                                                 f"({result.status}): {result.message}", result)
            results[phase] = result
        states = PhaseStates(results, dynamics)
        self.n_equilibria += len(results)
        signal = model.learning_signal(network, h0, y, states)
        forward = velocities_from_signal(signal, model.learning_rates(network.depth))
        feedback = {}
        if self.eta_backward:
            feedback = inverse_loss_velocities(network, model.feedback_states(network, states), 1.0, self.lambda_)
        for i, velocity in enumerate(forward, start=1):
            network.layer(i).weight.add_(velocity, alpha=self.eta)
        for owner, velocity in feedback.items():
            network.layer(owner).feedback.weight.add_(velocity, alpha=self.eta_backward)
        for layer in network.layers:
            if isinstance(layer.feedback, ExactInverseFeedback):
                layer.sync_inverse()
        return StepRecord(loss=loss, updated_layers=tuple(range(1, network.depth + 1)))
