"""The target-propagation family: exact inverses (A.4-A.6), learned inverses (A.10-A.13), original TP (A.14-A.17),
and fixed random feedback."""
from __future__ import annotations

import torch

from ...layers import ExactInverseFeedback, Layer
from ...sherman_morrison import ShermanMorrisonRecord, robust_step
from ..diagnostics import StepDiagnostics, learning_signals, pseudo_inverse_distances, reconstruction_errors
from ..propagation import propagate_targets
from ._backward_weights import train_backward_weights, train_original_backward_weights
from ._base import LEARNING_RULES, LearningRule, StepRecord, add_outer_products, batch_loss, forward_pass


class TargetPropagationRule(LearningRule):
    """Shared machinery of the target-propagation rules.

    Subclasses set ``difference`` (DTP correction, eq. 4.101), ``modified`` (``D^-1`` instead of
    ``D`` in the forward update, section 5.1.1), ``randomized`` (one random trainable layer per
    step, section 5.1.2) and ``backward`` (``'A.8'``: learned ``Q`` on white noise; ``'A.9'``: original
    ``Q`` on the batch activations; ``None``: no backward training).
    """

    difference = False
    modified = False
    randomized = False
    backward: str | None = None

    def _choose_layers(self, depth):
        layers = self._trainable(depth)
        if not self.randomized:
            return layers
        return (layers[int(torch.randint(len(layers), (1,), generator=self.generator))],)

    def _forward_factor(self, derivative, h, h_hat) -> torch.Tensor:
        """``c D_{s_i} (h_i - hat h_i)`` or, for modified TP, ``c D_{s_i}^{-1} (h_i - hat h_i)``, shape ``(B, n_i)``.

        ``c`` is the loss convention's factor: 1 for the local loss ``1/2 ||h_i - hat h_i||^2`` (eq. 4.12), 2 for
        the thesis's ``||h_i - hat h_i||^2`` (:mod:`tpdynamics.training.loss`).
        """
        difference = self.convention.factor * (h - h_hat)
        return difference / derivative if self.modified else derivative * difference

    def _update_forward(self, network, layers, inputs, activations, targets, derivatives) -> dict:
        """Local-loss gradient steps of eq. (4.12) for ``layers`` (top to bottom, as in A.4).

        ``inputs[i - 1]`` is the input of ``W_i`` and ``derivatives[i]`` the slope of ``s_i`` at ``W_i inputs[i - 1]``.
        """
        batch = activations[0].shape[0]
        records = {}
        for i in sorted(layers, reverse=True):
            layer = network.layer(i)
            factor = self._forward_factor(derivatives[i], activations[i], targets[i])
            if self.sherman_morrison and isinstance(layer.feedback, ExactInverseFeedback):
                records[i] = self._rank_one(layer, -self._eta(i) * factor[0], inputs[i - 1][0])
            else:
                add_outer_products(layer, factor, inputs[i - 1], -self._eta(i) / batch)
        return records

    def _rank_one(self, layer: Layer, u: torch.Tensor, v: torch.Tensor) -> ShermanMorrisonRecord:
        """Robust Sherman–Morrison step of Alg. 4.1 (or the same step with the inverse recomputed)."""
        if self.inverse_update != "recompute":
            return layer.rank_one_update(u, v, self.epsilon)
        feedback = layer.feedback
        feedback.check_synced(layer.weight)
        record = robust_step(float(v @ (feedback.weight_inverse @ u)), self.epsilon)
        layer.weight.addr_(u, v, alpha=record.beta)
        feedback.weight_inverse.copy_(torch.linalg.inv(layer.weight))  # the O(n^3) baseline of the benchmark
        feedback.mark_synced(layer.weight)
        return record

    def _train_backward(self, network, activations) -> dict:
        if self.backward is None or not self.eta_backward:
            return {}
        if self.backward == "A.8":
            return train_backward_weights(network, eta_backward=self.eta_backward, lambda_=self.lambda_,
                                          batch_size=activations[0].shape[0], noise_std=self.noise_std,
                                          generator=self.generator)
        return train_original_backward_weights(network, activations, eta_backward=self.eta_backward,
                                               lambda_=self.lambda_)

    def _diagnose(self, network, activations, targets, error) -> StepDiagnostics:
        signals = learning_signals(network, activations, targets, error, self.eta_hat)
        return StepDiagnostics(signals=signals.summary(),
                               reconstruction_error=reconstruction_errors(network, activations),
                               pseudo_inverse_distance=pseudo_inverse_distances(network))

    def _step(self, network, h0, y, diagnostics):
        activations, derivatives = forward_pass(network, h0)
        L = network.depth
        residual = activations[L] - y
        error = self.convention.output_error(activations[L], y)  # e_L: h_L - y or 2 (h_L - y)
        layers = self._choose_layers(L)
        top = activations[L] - self.eta_hat * error  # output_target of the rule's convention (eq. 4.4)
        # randomized rules need targets down to the chosen layer only; diagnostics look at every hidden layer
        lowest = 1 if diagnostics else min(layers)
        targets = propagate_targets(network, activations, top, difference=self.difference, lowest=lowest)
        diag = self._diagnose(network, activations, targets, error) if diagnostics else None
        records = self._update_forward(network, layers, activations, activations, targets, derivatives)
        backward = self._train_backward(network, activations)
        return StepRecord(loss=batch_loss(residual), updated_layers=tuple(sorted(layers)), sherman_morrison=records,
                          backward_loss=backward, diagnostics=diag)


_EI_PARAMETERS = ("eta", "eta_hat", "epsilon", "inverse_update")


@LEARNING_RULES.register("tp-ei")
class TargetPropagationExactInverse(TargetPropagationRule):
    """Target propagation with exact inverses (Algorithm A.4, section 4.1).

    ``hat h_i = W_{i+1}^{-1} s_{i+1}^{-1}(hat h_{i+1})``; ``W_i`` and ``W_i^{-1}`` (``i >= 2``) change together
    by the robust Sherman–Morrison update (Alg. 4.1) with ``u_i = -eta_i D_{s_i}(h_i - hat h_i)`` and
    ``v_i = h_{i-1}`` (eqs. 4.17-4.19), hence batch size 1; ``W_1`` has no inverse and takes the plain step.

    Thesis defaults (fig. 5.7): ``eta = 0.01``, ``eta_hat = 0.1``, ``epsilon = 0.5``, batch size 1.

    Notes
    -----
    Thm 4.1 claims ``cos(Delta W_i^TP, Delta W_i^BP) > 0`` for ``eta_hat -> 0``. Its proof treats
    ``J D_{s_i}^2 J^{-1}`` (similar to ``D_{s_i}^2``, so with positive eigenvalues) as positive definite,
    which a non-symmetric matrix need not be: the claim holds when ``D_{s_i}`` is a multiple of the
    identity (e.g. a linear layer, or all units on one side of a leaky ReLU) and on average, but
    single samples with a negative cosine exist (roughly 10-15% of samples of random 6-6-6 leaky-ReLU(0.35)
    networks in layer 1; see ``tests/test_training_theory.py``).
    """

    feedback = "exact"
    parameters = _EI_PARAMETERS
    defaults = {"eta": 0.01, "eta_hat": 0.1, "epsilon": 0.5, "inverse_update": "sherman-morrison"}
    sherman_morrison = True
    algorithm = "A.4"


@LEARNING_RULES.register("rtp-ei")
class RandomizedTargetPropagationExactInverse(TargetPropagationExactInverse):
    """Randomized TP with exact inverses (Algorithm A.5): one random layer ``k`` (and ``W_k^{-1}``) per step.

    Thesis defaults (fig. 5.7): ``eta = 0.01``, ``eta_hat = 0.1``, ``epsilon = 0.5``, batch size 1.
    """

    randomized = True
    algorithm = "A.5"


@LEARNING_RULES.register("rmtp-ei")
class RandomizedModifiedTargetPropagationExactInverse(TargetPropagationExactInverse):
    """Randomized modified TP with exact inverses (Algorithm A.6): A.5 with ``D_{s_k}^{-1}`` in ``u_k``.

    No batch normalisation: it needs a batch, and Sherman–Morrison needs batch size 1 (section 5.1.3).
    Thesis defaults (fig. 5.7): ``eta = 0.0005``, ``eta_hat = 0.1``, ``epsilon = 0.5``.
    """

    randomized = True
    modified = True
    defaults = {**TargetPropagationExactInverse.defaults, "eta": 0.0005}
    algorithm = "A.6"


_AI_PARAMETERS = ("eta", "eta_hat", "eta_backward", "lambda_", "noise_std")


@LEARNING_RULES.register("tp-ai")
class TargetPropagationApproximateInverse(TargetPropagationRule):
    """TP with learned inverses ``g_i = Q_i s_{i+1}^{-1}`` (Algorithm A.10, eq. 4.90), ``Q`` trained by A.8.

    Thesis defaults (fig. 5.15 and the thesis's toolbox): ``eta = 0.09``, ``eta_backward = 0.08``,
    ``eta_hat = 0.1``, ``lambda = 0``, batch size 32.
    """

    feedback = "learned"
    parameters = _AI_PARAMETERS
    defaults = {"eta": 0.09, "eta_hat": 0.1, "eta_backward": 0.08, "lambda_": 0.0, "noise_std": 1.0}
    backward = "A.8"
    algorithm = "A.10"


@LEARNING_RULES.register("rtp-ai")
class RandomizedTargetPropagationApproximateInverse(TargetPropagationApproximateInverse):
    """Randomized TP with learned inverses (Algorithm A.11): one random ``W_k``, every ``Q_i``, per step."""

    randomized = True
    algorithm = "A.11"


@LEARNING_RULES.register("dtp-ai")
class DifferenceTargetPropagationApproximateInverse(TargetPropagationApproximateInverse):
    """Difference TP with learned inverses (Algorithm A.12, eq. 5.53), ``Q`` trained by A.8.

    Thesis defaults (fig. 5.15 and toolbox): ``eta = 0.1``, ``eta_backward = 0.05``, ``eta_hat = 0.1``, ``lambda = 0``.
    """

    difference = True
    defaults = {**TargetPropagationApproximateInverse.defaults, "eta": 0.1, "eta_backward": 0.05}
    algorithm = "A.12"


@LEARNING_RULES.register("rdtp-ai")
class RandomizedDifferenceTargetPropagationApproximateInverse(DifferenceTargetPropagationApproximateInverse):
    """Randomized difference TP with learned inverses (Algorithm A.13)."""

    randomized = True
    algorithm = "A.13"


_ORIG_PARAMETERS = ("eta", "eta_hat", "eta_backward", "lambda_")


@LEARNING_RULES.register("tp-orig")
class OriginalTargetPropagation(TargetPropagationRule):
    """Original TP of Lee et al.: ``g_i(h) = s_i(Q_i h)`` (Algorithm A.14, eq. 5.54), ``Q`` trained by A.9.

    (A.14 writes ``Q_i s_{i+1}^{-1}`` in its target line, a typo for the form of eq. 5.54.)
    Thesis defaults (fig. 5.15 and toolbox): ``eta = 0.01``, ``eta_backward = 0.01``, ``eta_hat = 0.1``.
    """

    feedback = "original"
    parameters = _ORIG_PARAMETERS
    defaults = {"eta": 0.01, "eta_hat": 0.1, "eta_backward": 0.01, "lambda_": 0.0}
    backward = "A.9"
    algorithm = "A.14"


@LEARNING_RULES.register("rtp-orig")
class RandomizedOriginalTargetPropagation(OriginalTargetPropagation):
    """Randomized original TP (Algorithm A.15)."""

    randomized = True
    algorithm = "A.15"


@LEARNING_RULES.register("dtp-orig")
class OriginalDifferenceTargetPropagation(OriginalTargetPropagation):
    """Original difference TP (Algorithm A.16, eq. 5.56) without the backpropagated last step (i.e. simplified DTP).

    Thesis defaults (fig. 5.15 and toolbox): ``eta = 0.1``, ``eta_backward = 0.01``, ``eta_hat = 0.1``.
    """

    difference = True
    defaults = {**OriginalTargetPropagation.defaults, "eta": 0.1}
    algorithm = "A.16"


@LEARNING_RULES.register("rdtp-orig")
class RandomizedOriginalDifferenceTargetPropagation(OriginalDifferenceTargetPropagation):
    """Randomized original difference TP (Algorithm A.17)."""

    randomized = True
    algorithm = "A.17"


@LEARNING_RULES.register("fa")
class FeedbackAlignmentTargetPropagation(TargetPropagationRule):
    """Difference TP through fixed random feedback ``g_i = B_i s_{i+1}^{-1}`` (the feedback-alignment limit).

    The limit of DTP-AI whose backward weights never learn (discussion after Thm 4.9): the
    difference correction removes the reconstruction errors, so ``hat h_i - h_i`` is about
    ``-eta_hat [prod B_k D_{s_{k+1}}^{-1}] e_L``. The thesis gives no rates for it; the defaults
    are DTP-AI's (``eta = 0.1``, ``eta_hat = 0.1``).
    """

    feedback = "fixed"
    parameters = ("eta", "eta_hat")
    defaults = {"eta": 0.1, "eta_hat": 0.1}
    difference = True
    algorithm = "A.12 with fixed Q"

