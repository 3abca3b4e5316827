"""Error backpropagation (Algorithm A.7) and its control that trains only the output layer."""
from __future__ import annotations

from ..diagnostics import StepDiagnostics
from ._base import LEARNING_RULES, LearningRule, StepRecord, add_outer_products, batch_loss, forward_pass


@LEARNING_RULES.register("bp")
class Backpropagation(LearningRule):
    """Error backpropagation with mini-batch SGD (Algorithm A.7).

    ``delta_L = D_{s_L} e_L``, ``delta_i = D_{s_i} W_{i+1}^T delta_{i+1}`` (A.7 writes ``W^T a``
    for ``W^T delta``), ``Delta W_i = -(eta_i / B) sum_b delta_i h_{i-1}^T``: exactly SGD on the mean
    of ``1/2 ||h_L - y||^2`` over the batch (``loss_convention='half'``) or of ``||h_L - y||^2`` (``'thesis'``:
    ``delta_L = 2 D_{s_L} (h_L - y)``, as chapter 5 and the toolbox). The feedback mappings, if any, are not used.

    Thesis defaults: ``eta = 0.001`` with batch size 1 (fig. 5.7); 0.01 with batch size 32 (figs 5.14-5.15).
    """

    parameters = ("eta",)
    defaults = {"eta": 0.001}
    algorithm = "A.7"

    def _step(self, network, h0, y, diagnostics):
        activations, derivatives = forward_pass(network, h0)
        L = network.depth
        residual = activations[L] - y
        layers = self._choose_layers(L)
        deltas = {L: derivatives[L] * self.convention.output_error(activations[L], y)}  # c D_{s_L} (h_L - y)
        for i in range(L - 1, min(layers) - 1, -1):  # all deltas from the weights before the step
            deltas[i] = derivatives[i] * (deltas[i + 1] @ network.layer(i + 1).weight)
        batch = h0.shape[0]
        for i in sorted(layers, reverse=True):
            add_outer_products(network.layer(i), deltas[i], activations[i - 1], -self._eta(i) / batch)
        return StepRecord(loss=batch_loss(residual), updated_layers=tuple(sorted(layers)),
                          diagnostics=StepDiagnostics() if diagnostics else None)


@LEARNING_RULES.register("bp-fixed")
class BackpropagationFixedHidden(Backpropagation):
    """Backpropagation that trains only the output weights ``W_L`` (the control of sections 5.1.3 and 5.2.2).

    A method that beats it propagates useful learning signals to its hidden layers.
    """

    default_trainable_layers = "output"

