"""The discrete learning rules of Appendix A, all acting in place on the same :class:`~tpdynamics.Layer` objects.

Registry :data:`LEARNING_RULES` (name -> class):

============ ====================================================== ================ ==========
name         rule                                                   feedback g_i     algorithm
============ ====================================================== ================ ==========
bp           error backpropagation, SGD                             none             A.7
bp-fixed     backpropagation training only ``W_L`` (control)        none             A.7
tp-ei        TP, exact inverses, robust Sherman–Morrison            exact            A.4
rtp-ei       randomized TP, exact inverses (one layer per step)     exact            A.5
rmtp-ei      randomized modified TP (``D^-1``), exact inverses      exact            A.6
mtp          modified TP with batch normalisation, all layers       exact or learned A.1
rmtp         randomized modified TP with batch normalisation        exact or learned A.3
tp-ai        TP, learned inverses ``Q s^-1``                         learned          A.10 + A.8
rtp-ai       randomized TP, learned inverses                        learned          A.11 + A.8
dtp-ai       difference TP, learned inverses                        learned          A.12 + A.8
rdtp-ai      randomized DTP, learned inverses                       learned          A.13 + A.8
tp-orig      original TP, ``g = s(Q h)``                             original         A.14 + A.9
rtp-orig     randomized original TP                                 original         A.15 + A.9
dtp-orig     original (simplified) DTP                              original         A.16 + A.9
rdtp-orig    randomized original DTP                                original         A.17 + A.9
fa           DTP with fixed random feedback (feedback alignment)    fixed            A.12, no A.8
============ ====================================================== ================ ==========

Conventions shared by every rule (so the discrete and the continuous models compare):

* loss ``L = 1/2 ||h_L - y||^2`` per sample (eq. 4.40), ``e_L = h_L - y``, output target
  ``hat h_L = h_L - eta_hat e_L`` (eq. 4.4);
* the forward update of every TP rule is the gradient step on the local loss
  ``1/2 ||h_i - hat h_i||^2`` (eq. 4.12), averaged over the mini-batch (Appendix A)::

      Delta W_i = -(eta_i / B) sum_b D_{s_i}^(b) (h_i^(b) - hat h_i^(b)) h_{i-1}^(b)T

  (the modified rules use ``D_{s_i}^{-1}``); backpropagation's is
  ``Delta W_i = -(eta_i / B) sum_b delta_i^(b) h_{i-1}^(b)T`` (A.7);
* all targets are computed from the weights before the step; then the forward weights change
  (``L`` down to 1, as in A.4), then the backward weights (A.8/A.9).
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .._validation import check_int, check_positive, check_tensor, unknown_names_message
from ..errors import TPDynamicsWarning
from ..layers import FEEDBACK_FORMS, ExactInverseFeedback, Layer, LearnedInverseFeedback, OriginalFeedback
from ..network import LayeredNetwork, make_generator
from ..registry import Registry
from ..sherman_morrison import ShermanMorrisonRecord, robust_step
from .data import NoiseSource, WhiteNoise
from .diagnostics import StepDiagnostics, learning_signals, pseudo_inverse_distances, reconstruction_errors
from .propagation import output_target, propagate_targets


@dataclass
class StepRecord:
    """What one call of :meth:`LearningRule.step` did.

    Attributes
    ----------
    loss : float
        Mini-batch loss before the update: mean over the batch of ``||h_L - y||^2`` (the thesis's MSE).
    updated_layers : tuple of int
        Layers ``i`` whose forward weights ``W_i`` changed (one layer for the randomized rules).
    sherman_morrison : dict
        Layer ``i`` -> :class:`~tpdynamics.ShermanMorrisonRecord` of its robust Sherman–Morrison step.
    backward_loss : dict
        Thesis index ``i`` of ``Q_i`` -> mean ``||g_i(h_{i+1}) - h_i||^2`` on the batch of Alg. A.8/A.9,
        before the step.
    diagnostics : StepDiagnostics or None
        Learning-signal diagnostics measured before the update (when asked for).
    """

    loss: float
    updated_layers: tuple
    sherman_morrison: dict = field(default_factory=dict)
    backward_loss: dict = field(default_factory=dict)
    diagnostics: StepDiagnostics | None = None

    @property
    def finite(self) -> bool:
        """Whether :attr:`loss` is finite (the run has not diverged)."""
        return math.isfinite(self.loss)


#: Every hyper-parameter a rule may take, with its meaning (used in messages and docs).
HYPERPARAMETERS = {
    "eta": "forward learning rate eta_i (float, or one per layer)",
    "eta_hat": "output target step size eta_hat of eq. 4.4",
    "eta_backward": "backward learning rate eta^b_i of Alg. A.8/A.9",
    "lambda_": "weight decay lambda of the regularised inverse loss, eq. 4.97",
    "epsilon": "threshold eps on |1 + d| of the robust Sherman-Morrison update, Alg. 4.1",
    "noise_std": "standard deviation sigma of the white noise of Alg. A.8",
    "inverse_update": "'sherman-morrison' (Alg. 4.1) or 'recompute' (torch.linalg.inv, for benchmarks)",
    "momentum": "momentum of the running batch-normalisation statistics used for prediction",
}


class LearningRule:
    """Base class of the learning rules: one mini-batch in, parameters updated in place, a record out.

    Parameters
    ----------
    eta, eta_hat, eta_backward, lambda_, epsilon, noise_std, inverse_update, momentum
        See :data:`HYPERPARAMETERS`; ``None`` takes the thesis default of the rule
        (:attr:`defaults`). Passing one the rule does not use warns (it would have no effect).
    trainable_layers : sequence of int, 'output' or None
        Layers whose forward weights may change (``None``: all; ``'output'``: only ``W_L``).
    generator : torch.Generator, optional
        Randomness of the randomized layer choice and of the white noise of Alg. A.8.
    seed : int
        Seeds a new generator when ``generator`` is not given.

    Notes
    -----
    Contract for subclasses:

    * Class attributes: ``feedback`` (feedback form needed on layers ``2..L``, ``None`` if the
      rule uses none), ``parameters`` (the hyper-parameters it reads, keys of
      :data:`HYPERPARAMETERS`), ``defaults`` (the thesis's values for them), ``sherman_morrison``
      (batch size must be 1), ``algorithm`` (Appendix A reference).
    * :meth:`_step` receives validated ``h0`` (B, n_0) and ``y`` (B, n_L) under ``torch.no_grad()``,
      changes ``layer.weight`` (and the feedback parameters) of ``network`` in place — never a
      copy — and returns a :class:`StepRecord`.
    * :meth:`predict` gives the network output the rule's model uses (the plain forward pass
      except with batch normalisation).
    * Hyper-parameters are attributes and may be changed between steps (learning-rate schedules).
    """

    name = "abstract"
    feedback: str | None = None
    #: Other feedback forms the rule accepts besides :attr:`feedback`.
    other_feedback: tuple = ()
    parameters: tuple = ("eta",)
    defaults: dict = {}
    sherman_morrison = False
    algorithm = ""
    default_trainable_layers: object = None

    def __init__(self, *, eta=None, eta_hat=None, eta_backward=None, lambda_=None, epsilon=None, noise_std=None,
                 inverse_update=None, momentum=None, trainable_layers=None, generator: torch.Generator | None = None,
                 seed: int = 0, **unknown):
        if unknown:
            raise TypeError(unknown_names_message(f"method {self.name!r}", "hyper-parameter", unknown,
                                                  self.parameters + ("trainable_layers", "generator", "seed")))
        given = {"eta": eta, "eta_hat": eta_hat, "eta_backward": eta_backward, "lambda_": lambda_,
                 "epsilon": epsilon, "noise_std": noise_std, "inverse_update": inverse_update, "momentum": momentum}
        unused = [k for k, v in given.items() if v is not None and k not in self.parameters]
        if unused:
            warnings.warn(f"method {self.name!r} does not use {', '.join(unused)}; "
                          f"{'it has' if len(unused) == 1 else 'they have'} no effect. It uses: "
                          f"{', '.join(self.parameters)}.", TPDynamicsWarning, stacklevel=2)
        values = {k: (given[k] if given[k] is not None else self.defaults.get(k)) for k in self.parameters}
        self.eta = _check_rates("eta", values.get("eta"))
        self.eta_hat = check_positive("eta_hat", values["eta_hat"]) if "eta_hat" in values else None
        self.eta_backward = (check_positive("eta_backward", values["eta_backward"], allow_zero=True)
                             if "eta_backward" in values else None)
        self.lambda_ = check_positive("lambda_", values["lambda_"], allow_zero=True) if "lambda_" in values else None
        self.epsilon = check_positive("epsilon", values["epsilon"], allow_zero=True) if "epsilon" in values else None
        self.noise_std = check_positive("noise_std", values["noise_std"]) if "noise_std" in values else None
        self.momentum = check_positive("momentum", values["momentum"]) if "momentum" in values else None
        self.inverse_update = values.get("inverse_update")
        if "inverse_update" in values and self.inverse_update not in ("sherman-morrison", "recompute"):
            raise ValueError(f"inverse_update={self.inverse_update!r} is not valid; use 'sherman-morrison' "
                             "(Alg. 4.1, O(n^2)) or 'recompute' (torch.linalg.inv, O(n^3)).")
        self.trainable_layers = self.default_trainable_layers if trainable_layers is None else trainable_layers
        if not (self.trainable_layers is None or self.trainable_layers == "output"):
            if isinstance(self.trainable_layers, (str, int)) or not isinstance(self.trainable_layers, Sequence) \
                    or not self.trainable_layers:
                raise ValueError(f"trainable_layers={trainable_layers!r} must be None (all layers), 'output' or a "
                                 "non-empty sequence of layer indices such as (1,).")
            self.trainable_layers = tuple(int(i) for i in self.trainable_layers)
        self.generator = generator if generator is not None else make_generator(seed)

    # -- description -------------------------------------------------------------------------------
    @classmethod
    def feedback_forms(cls) -> tuple:
        """Feedback forms the rule accepts (the first one builds its student networks)."""
        return ((cls.feedback,) if cls.feedback is not None else ()) + tuple(cls.other_feedback)

    def hyperparameters(self) -> dict:
        """The rule's hyper-parameters as a JSON-ready dict."""
        out = {k: getattr(self, k) for k in self.parameters}
        out["trainable_layers"] = self.trainable_layers if not isinstance(self.trainable_layers, tuple) \
            else list(self.trainable_layers)
        if isinstance(out.get("eta"), tuple):
            out["eta"] = list(out["eta"])
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    # -- checks ----------------------------------------------------------------------------------------
    @classmethod
    def check_layer_sizes(cls, layer_sizes: Sequence[int]) -> None:
        """Raise ``ValueError`` if the architecture cannot use this rule (exact inverses need square ``W_2..W_L``)."""
        if "exact" in cls.feedback_forms() and "learned" not in cls.feedback_forms() \
                and len(set(layer_sizes[1:])) > 1:
            raise ValueError(
                f"method {cls.name!r} uses exact inverses W_i^-1 (eq. 4.16), which exist only for square W_2..W_L, "
                f"i.e. n_1 = ... = n_L; got layer sizes {list(layer_sizes)}. Use equal sizes (e.g. 6,6,6) or a "
                "learned-inverse method such as 'dtp-ai' or 'tp-ai' (pseudo-inverses, Thms 4.6-4.7).")

    @classmethod
    def check_batch_size(cls, batch_size: int) -> None:
        """Raise ``ValueError`` for a batch size the rule cannot use."""
        if cls.sherman_morrison and batch_size != 1:
            raise ValueError(
                f"method {cls.name!r} keeps W_i^-1 exact with the Sherman-Morrison formula (eq. 4.19), which updates "
                "an inverse only for a rank-one change u v^T of W_i. The update of a mini-batch averages B outer "
                f"products u_b v_b^T and has rank up to B, so batch_size must be 1 (got {batch_size}). Use "
                "batch_size=1, or 'mtp' / a learned-inverse method for mini-batches.")

    def check_network(self, network: LayeredNetwork) -> None:
        """Raise ``ValueError``/``TypeError`` if ``network`` lacks what the rule needs."""
        if not isinstance(network, LayeredNetwork):
            raise TypeError(f"network must be a tpdynamics LayeredNetwork, got {type(network).__name__}.")
        self.check_layer_sizes(network.layer_sizes)
        forms = self.feedback_forms()
        if forms:
            classes = tuple(FEEDBACK_FORMS.get(f) for f in forms)
            for i in range(2, network.depth + 1):
                fb = network.layer(i).feedback
                if not isinstance(fb, classes):
                    raise ValueError(
                        f"method {self.name!r} needs {' or '.join(repr(f) for f in forms)} feedback on layers 2..L, "
                        f"but layer {i} has {network.layer(i).feedback_form!r}. Build the network with "
                        f"feedback={forms[0]!r} (e.g. LayeredNetwork.build(..., feedback={forms[0]!r})).")
        self._trainable(network.depth)

    def _trainable(self, depth: int) -> tuple:
        if self.trainable_layers is None:
            return tuple(range(1, depth + 1))
        if self.trainable_layers == "output":
            return (depth,)
        bad = [i for i in self.trainable_layers if not 1 <= i <= depth]
        if bad:
            raise ValueError(f"trainable_layers={list(self.trainable_layers)} contains {bad}, outside 1..L={depth}.")
        return tuple(sorted(set(self.trainable_layers)))

    def _eta(self, i: int) -> float:
        if isinstance(self.eta, tuple):
            return self.eta[i - 1]
        return self.eta

    # -- the step --------------------------------------------------------------------------------------
    def step(self, network: LayeredNetwork, h0: torch.Tensor, y: torch.Tensor, *,
             diagnostics: bool = False) -> StepRecord:
        """One training iteration on the mini-batch ``(h0, y)``; updates ``network`` in place.

        Parameters
        ----------
        network : LayeredNetwork
            The network to train (its layers' parameters change in place).
        h0 : Tensor, shape (B, n_0)
            Input mini-batch.
        y : Tensor, shape (B, n_L)
            Labels.
        diagnostics : bool
            Also measure the learning signals of :mod:`~tpdynamics.training.diagnostics` (before the update).

        Returns
        -------
        StepRecord
        """
        self.check_network(network)
        check_tensor("h0", h0, ndim=2, size=network.layer_sizes[0], dtype=network.dtype)
        check_tensor("y", y, ndim=2, size=network.layer_sizes[-1], dtype=network.dtype, batch=h0.shape[0])
        self.check_batch_size(h0.shape[0])
        if isinstance(self.eta, tuple) and len(self.eta) != network.depth:
            raise ValueError(f"eta has {len(self.eta)} entries but the network has L={network.depth} layers.")
        with torch.no_grad():
            return self._step(network, h0, y, diagnostics)

    def _step(self, network, h0, y, diagnostics) -> StepRecord:
        raise NotImplementedError

    def weight_updates(self, network: LayeredNetwork, h0: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The forward-weight changes ``Delta W_i`` that :meth:`step` would make, without making them.

        For comparisons with the continuous weight velocities (eqs. 6.17, 6.35, 6.58): the step is
        applied to copies of ``network`` and of the rule (so neither, nor the rule's random generator,
        changes) and the differences are returned.

        Returns
        -------
        list of Tensor
            Entry ``i - 1`` is ``Delta W_i``, shape ``(n_i, n_{i-1})`` (zero for layers not updated).
        """
        trial_network, trial_rule = copy.deepcopy(network), copy.deepcopy(self)
        trial_rule.step(trial_network, h0, y)
        return [(new.weight - old.weight).detach() for new, old in zip(trial_network.layers, network.layers)]

    def predict(self, network: LayeredNetwork, h0: torch.Tensor) -> torch.Tensor:
        """The output ``h_L`` of the model the rule trains, shape ``(B, n_L)``."""
        with torch.no_grad():
            return network(h0)[-1]

    def _choose_layers(self, depth: int) -> tuple:
        return self._trainable(depth)


def _check_rates(name: str, value):
    if value is None:
        raise ValueError(f"{name} is required: {HYPERPARAMETERS[name]}.")
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(check_positive(f"{name}[{k}]", v) for k, v in enumerate(value))
    return check_positive(name, value)


def forward_pass(network: LayeredNetwork, h0: torch.Tensor) -> tuple[list, list]:
    """``h_i = s_i(W_i h_{i-1})`` for ``i = 1..L`` and the slopes ``D_{s_i}`` from the same pre-activations.

    Returns
    -------
    activations : list of Tensor
        ``[h_0, ..., h_L]``.
    derivatives : list
        ``[None, d_1, ..., d_L]`` with ``d_i = s_i'(W_i h_{i-1})`` of shape ``(B, n_i)`` (the diagonal of
        ``D_{s_i}``), so that the updates do not recompute ``W_i h_{i-1}``.
    """
    activations, derivatives = [h0], [None]
    for layer in network.layers:
        a = layer.preactivation(activations[-1])
        activations.append(layer.nonlinearity(a))
        derivatives.append(layer.nonlinearity.derivative(a))
    return activations, derivatives


def _batch_loss(error: torch.Tensor) -> float:
    return float((error ** 2).sum(-1).mean())


def _add_outer_products(layer: Layer, left: torch.Tensor, right: torch.Tensor, alpha: float) -> None:
    """``W_i <- W_i + alpha sum_b left_b right_b^T`` in place (``addmm_``: no temporary matrix).

    An exact inverse is recomputed afterwards: a sum of outer products is not a rank-one change.
    """
    layer.weight.addmm_(left.T, right, alpha=alpha)
    layer.sync_inverse()


LEARNING_RULES: Registry[type[LearningRule]] = Registry("learning rule", LearningRule, "method")


# ------------------------------------------------------------------------------------------------------
# Error backpropagation (Alg. A.7)
# ------------------------------------------------------------------------------------------------------
@LEARNING_RULES.register("bp")
class Backpropagation(LearningRule):
    """Error backpropagation with mini-batch SGD (Algorithm A.7).

    ``delta_L = D_{s_L} e_L``, ``delta_i = D_{s_i} W_{i+1}^T delta_{i+1}`` (A.7 writes ``W^T a``
    for ``W^T delta``), ``Delta W_i = -(eta_i / B) sum_b delta_i h_{i-1}^T``: exactly SGD on the mean
    of ``1/2 ||h_L - y||^2`` over the batch. The feedback mappings, if any, are not used.

    Thesis defaults: ``eta = 0.001`` with batch size 1 (fig. 5.7); 0.01 with batch size 32 (figs 5.14-5.15).
    """

    parameters = ("eta",)
    defaults = {"eta": 0.001}
    algorithm = "A.7"

    def _step(self, network, h0, y, diagnostics):
        activations, derivatives = forward_pass(network, h0)
        L = network.depth
        error = activations[L] - y
        layers = self._choose_layers(L)
        deltas = {L: derivatives[L] * error}
        for i in range(L - 1, min(layers) - 1, -1):  # all deltas from the weights before the step
            deltas[i] = derivatives[i] * (deltas[i + 1] @ network.layer(i + 1).weight)
        batch = h0.shape[0]
        for i in sorted(layers, reverse=True):
            _add_outer_products(network.layer(i), deltas[i], activations[i - 1], -self._eta(i) / batch)
        return StepRecord(loss=_batch_loss(error), updated_layers=tuple(sorted(layers)),
                          diagnostics=StepDiagnostics() if diagnostics else None)


@LEARNING_RULES.register("bp-fixed")
class BackpropagationFixedHidden(Backpropagation):
    """Backpropagation that trains only the output weights ``W_L`` (the control of sections 5.1.3 and 5.2.2).

    A method that beats it propagates useful learning signals to its hidden layers.
    """

    default_trainable_layers = "output"


# ------------------------------------------------------------------------------------------------------
# Target propagation family
# ------------------------------------------------------------------------------------------------------
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
        """``D_{s_i} (h_i - hat h_i)`` or, for modified TP, ``D_{s_i}^{-1} (h_i - hat h_i)``, shape ``(B, n_i)``."""
        return (h - h_hat) / derivative if self.modified else derivative * (h - h_hat)

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
                _add_outer_products(layer, factor, inputs[i - 1], -self._eta(i) / batch)
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
        error = activations[L] - y
        layers = self._choose_layers(L)
        top = output_target(activations[L], y, self.eta_hat)
        # randomized rules need targets down to the chosen layer only; diagnostics look at every hidden layer
        lowest = 1 if diagnostics else min(layers)
        targets = propagate_targets(network, activations, top, difference=self.difference, lowest=lowest)
        diag = self._diagnose(network, activations, targets, error) if diagnostics else None
        records = self._update_forward(network, layers, activations, activations, targets, derivatives)
        backward = self._train_backward(network, activations)
        return StepRecord(loss=_batch_loss(error), updated_layers=tuple(sorted(layers)), sherman_morrison=records,
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


# ------------------------------------------------------------------------------------------------------
# Modified TP with batch normalisation (Alg. A.1 / A.3)
# ------------------------------------------------------------------------------------------------------
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
        error = activations[L] - y
        layers = self._choose_layers(L)
        targets = [None] * (L + 1)
        targets[L] = output_target(activations[L], y, self.eta_hat)
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
        return StepRecord(loss=_batch_loss(error), updated_layers=tuple(sorted(layers)), sherman_morrison=records,
                          backward_loss=backward, diagnostics=diag)


@LEARNING_RULES.register("rmtp")
class RandomizedModifiedTargetPropagation(ModifiedTargetPropagation):
    """Randomized modified TP with batch normalisation (Algorithm A.3): A.1 for one random layer per step."""

    randomized = True
    algorithm = "A.3"


# ------------------------------------------------------------------------------------------------------
# Backward weights (Alg. A.8 / A.9)
# ------------------------------------------------------------------------------------------------------
def train_backward_weights(network: LayeredNetwork, *, eta_backward: float, lambda_: float = 0.0,
                           batch_size: int = 1, noise_std: float = 1.0, noise: Mapping[int, NoiseSource] | None = None,
                           generator: torch.Generator | None = None) -> dict[int, float]:
    """One gradient step of Algorithm A.8 on every learned feedback ``Q_i`` (``i = 1..L-1``).

    For each ``i``: draw ``h_i`` from white noise ``N(0, sigma^2 I)`` (or ``noise[i]``), propagate
    ``h_{i+1} = f_{i+1}(h_i)`` and ``tilde h_i = g_i(h_{i+1}) = Q_i s_{i+1}^{-1}(h_{i+1})``, then

    .. math:: Q_i \\leftarrow (1 - \\eta^b \\lambda) Q_i - \\frac{\\eta^b}{B} \\sum_b
              (\\tilde h_i - h_i)\\, s_{i+1}^{-1}(h_{i+1})^T,

    the gradient step on ``1/2 ||g_i(f_{i+1}(h_i)) - h_i||^2 + lambda/2 ||Q_i||_F^2`` (eq. 4.97 up to a
    factor 2). Its fixed point in expectation is ``Q_i = W^T (W W^T + lambda / sigma^2 I)^{-1}`` with
    ``W = W_{i+1}`` (Thm 4.7): ``W^{-1}`` for square ``W`` and ``W^+`` for contracting layers at
    ``lambda = 0`` (Thm 4.6).

    Parameters
    ----------
    network : LayeredNetwork
        Layers with :class:`~tpdynamics.LearnedInverseFeedback` are trained; others are skipped.
    eta_backward : float
        Backward learning rate ``eta^b``.
    lambda_ : float
        Weight decay ``lambda``.
    batch_size : int
        Number of noise samples ``B`` per step.
    noise_std : float
        ``sigma`` of the white noise.
    noise : mapping, optional
        ``{i: NoiseSource}`` replacing the white noise of layer ``i`` (e.g. :class:`ColouredNoise`).
    generator : torch.Generator, optional

    Returns
    -------
    dict
        ``i -> `` mean ``||tilde h_i - h_i||^2`` over the noise batch, before the step.
    """
    eta_backward = check_positive("eta_backward", eta_backward, allow_zero=True)
    lambda_ = check_positive("lambda_", lambda_, allow_zero=True)
    check_int("batch_size", batch_size, minimum=1)
    losses = {}
    with torch.no_grad():
        for i in range(1, network.depth):
            layer = network.layer(i + 1)
            feedback = layer.feedback
            if not isinstance(feedback, LearnedInverseFeedback):
                continue
            source = (noise or {}).get(i) or WhiteNoise(layer.in_features, noise_std)
            if source.dim != layer.in_features:
                raise ValueError(f"noise[{i}] has dimension {source.dim}, but h_{i} has {layer.in_features} units.")
            h = source.sample(batch_size, generator=generator, dtype=network.dtype)
            pre = layer.nonlinearity.inverse(layer(h))  # s_{i+1}^{-1}(h_{i+1})
            reconstruction = pre @ feedback.weight.T
            residual = reconstruction - h
            losses[i] = float((residual ** 2).sum(-1).mean())
            feedback.weight.mul_(1.0 - eta_backward * lambda_).sub_((eta_backward / batch_size) * residual.T @ pre)
    return losses


def train_original_backward_weights(network: LayeredNetwork, activations, *, eta_backward: float,
                                    lambda_: float = 0.0) -> dict[int, float]:
    """One gradient step of Algorithm A.9 on every original feedback ``g_i(h) = t_i(Q_i h)``.

    With the activations of the forward pass (not white noise):
    ``tilde h_i = t_i(Q_i h_{i+1})``, ``D = t_i'(Q_i h_{i+1})`` and

    .. math:: Q_i \\leftarrow (1 - \\eta^b \\lambda) Q_i - \\frac{\\eta^b}{B}
              \\sum_b D (\\tilde h_i - h_i)\\, h_{i+1}^T,

    the gradient step on ``1/2 ||g_i(h_{i+1}) - h_i||^2`` (eq. 4.91; A.9 adds the weight decay).

    Parameters
    ----------
    activations : list of Tensor
        ``[h_0, ..., h_L]`` of the forward pass of this iteration.

    Returns
    -------
    dict
        ``i -> `` mean ``||tilde h_i - h_i||^2`` before the step.
    """
    eta_backward = check_positive("eta_backward", eta_backward, allow_zero=True)
    lambda_ = check_positive("lambda_", lambda_, allow_zero=True)
    losses = {}
    batch = activations[0].shape[0]
    with torch.no_grad():
        for i in range(1, network.depth):
            feedback = network.layer(i + 1).feedback
            if not isinstance(feedback, OriginalFeedback):
                continue
            pre = feedback.preactivation(activations[i + 1])
            residual = feedback.nonlinearity(pre) - activations[i]
            losses[i] = float((residual ** 2).sum(-1).mean())
            gradient = (feedback.nonlinearity.derivative(pre) * residual).T @ activations[i + 1]
            feedback.weight.mul_(1.0 - eta_backward * lambda_).sub_((eta_backward / batch) * gradient)
    return losses


def get_learning_rule(method, **hyperparameters) -> LearningRule:
    """Instantiate a rule from a registered name or a :class:`LearningRule` subclass.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    return LEARNING_RULES.get(method)(**hyperparameters)
