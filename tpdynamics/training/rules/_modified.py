"""Modified target propagation with batch normalisation (Algorithms A.1 and A.3)."""
from __future__ import annotations

import torch

from ..diagnostics import StepDiagnostics, pseudo_inverse_distances
from ._base import LEARNING_RULES, StepRecord, batch_loss
from ._target_propagation import TargetPropagationRule


@LEARNING_RULES.register("mtp")
class ModifiedTargetPropagation(TargetPropagationRule):
    """Modified TP with batch normalisation (Algorithm A.1 applied to every trainable layer).

    Forward: ``tilde h_{i-1} = (h_{i-1} - mu_{i-1}) / sigma_{i-1}`` (batch statistics, per neuron, no
    affine parameters), ``h_i = f_i(tilde h_{i-1})``. Targets: ``hat h_i = sigma_i * g_i(hat h_{i+1}) + mu_i``
    ("counter batch normalisation"). Update: ``Delta W_k = -(eta_k / B) sum_b D_{s_k}^{-1} (h_k - hat h_k)
    tilde h_{k-1}^T`` — the input of ``W_k`` is the normalised ``tilde h_{k-1}`` (the local-loss gradient).

    Prediction uses running statistics (exponential average with :attr:`momentum`, initialised to
    before the first step the model is the plain network). Exact feedback is
    recomputed after each (not rank-one) mini-batch update; learned feedback is trained by A.8.
    The thesis reports no rates for it (it found the modified rules unstable); the default ``eta``
    is RMTP-EI's 0.0005 (fig. 5.7).
    """

    feedback = "exact"
    other_feedback = ("learned",)
    parameters = ("eta", "eta_hat", "eta_backward", "lambda_", "noise_std", "momentum")
    defaults = {"eta": 0.0005, "eta_hat": 0.1, "eta_backward": 0.0, "lambda_": 0.0, "noise_std": 1.0,
                "momentum": 0.1}
    modified = True
    backward = "A.8"
    algorithm = "A.1"
    #: ``sigma = sqrt(var + bn_epsilon)``, as in common batch-normalisation layers.
    bn_epsilon = 1e-5

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.running_mean: dict[int, torch.Tensor] = {}
        self.running_var: dict[int, torch.Tensor] = {}

    @classmethod
    def check_batch_size(cls, batch_size):
        if batch_size < 2:
            raise ValueError(f"method {cls.name!r} normalises each neuron over the mini-batch (Alg. A.1), which "
                             f"needs at least 2 samples; got batch_size={batch_size}. The thesis uses 32.")

    def _normalised_forward(self, network, h0, statistics=None):
        """Forward pass with batch normalisation of ``h_0..h_{L-1}``: activations, normalised inputs, stats, slopes."""
        activations, inputs, stats, derivatives = [h0], [], [], [None]
        for i in range(1, network.depth + 1):
            h = activations[-1]
            if statistics is None:
                mean, var = h.mean(0), h.var(0, unbiased=False)
            else:
                mean, var = statistics[i - 1]
            sigma = torch.sqrt(var + self.bn_epsilon)
            inputs.append((h - mean) / sigma)
            stats.append((mean, var, sigma))
            layer = network.layer(i)
            a = layer.preactivation(inputs[-1])
            activations.append(layer.nonlinearity(a))
            derivatives.append(layer.nonlinearity.derivative(a))
        return activations, inputs, stats, derivatives

    def predict(self, network, h0):
        if not self.running_mean:  # untrained: no statistics yet, the model is the plain network
            return super().predict(network, h0)
        with torch.no_grad():
            statistics = [(self.running_mean.get(i, torch.zeros(n, dtype=h0.dtype)),
                           self.running_var.get(i, torch.ones(n, dtype=h0.dtype)))
                          for i, n in enumerate(network.layer_sizes[:-1])]
            return self._normalised_forward(network, h0, statistics)[0][-1]

    def _step(self, network, h0, y, diagnostics):
        activations, inputs, stats, derivatives = self._normalised_forward(network, h0)
        L = network.depth
        residual = activations[L] - y
        layers = self._choose_layers(L)
        targets = [None] * (L + 1)
        targets[L] = activations[L] - self.eta_hat * self.convention.output_error(activations[L], y)
        for i in range(L - 1, min(layers) - 1, -1):
            mean, _, sigma = stats[i]  # statistics of h_i
            targets[i] = sigma * network.layer(i + 1).feedback_forward(targets[i + 1]) + mean
        diag = StepDiagnostics(pseudo_inverse_distance=pseudo_inverse_distances(network)) if diagnostics else None
        records = self._update_forward(network, layers, inputs, activations, targets, derivatives)
        for i, (mean, var, _) in enumerate(stats):
            m = self.momentum
            self.running_mean[i] = (1 - m) * self.running_mean.get(i, torch.zeros_like(mean)) + m * mean
            self.running_var[i] = (1 - m) * self.running_var.get(i, torch.ones_like(var)) + m * var
        backward = self._train_backward(network, activations)  # A.8 skips exact feedback
        return StepRecord(loss=batch_loss(residual), updated_layers=tuple(sorted(layers)), sherman_morrison=records,
                          backward_loss=backward, diagnostics=diag)


@LEARNING_RULES.register("rmtp")
class RandomizedModifiedTargetPropagation(ModifiedTargetPropagation):
    """Randomized modified TP with batch normalisation (Algorithm A.3): A.1 for one random layer per step."""

    randomized = True
    algorithm = "A.3"

