"""The contract of a learning rule, its registry and the helpers every rule shares."""
from __future__ import annotations

import abc
import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...errors import TPDynamicsWarning
from ...layers import FEEDBACK_FORMS, Layer
from ...network import LayeredNetwork, make_generator
from ...registry import Registry
from ...validation import check_positive, check_tensor, unknown_names_message
from ..diagnostics import StepDiagnostics
from ..loss import get_loss_convention


@dataclass
class StepRecord:
    """What one call of :meth:`LearningRule.step` did.

    Attributes
    ----------
    loss : float
        Mini-batch loss before the update: mean over the batch of ``||h_L - y||^2`` (summed over the outputs, in
        either loss convention; ``n_L`` times the MSE of :data:`~tpdynamics.training.loss.LOSS_UNIT`).
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


class LearningRule(abc.ABC):
    """Base class of the learning rules: one mini-batch in, parameters updated in place, a record out.

    Parameters
    ----------
    eta, eta_hat, eta_backward, lambda_, epsilon, noise_std, inverse_update, momentum
        See :data:`HYPERPARAMETERS`; ``None`` takes the thesis default of the rule
        (:attr:`defaults`). Passing one the rule does not use warns (it would have no effect).
    loss_convention : {'half', 'thesis'} or LossConvention subclass
        Scaling of the L2 loss (:mod:`tpdynamics.training.loss`): ``'half'`` (default, eq. 4.40:
        ``e_L = h_L - y``, local losses ``1/2 ||h_i - hat h_i||^2``) or ``'thesis'`` (eqs. 5.36, 5.50 and
        the thesis's toolbox: ``e_L = 2 (h_L - y)`` and local-loss gradients ``2 D_{s_i} (h_i - hat h_i)``;
        the rates printed in chapter 5 assume it). The backward weights take no factor in either.
    trainable_layers : sequence of int, 'output' or None
        Layers whose forward weights may change (``None``: all; ``'output'``: only ``W_L``).
    generator : torch.Generator, optional
        Randomness of the randomized layer choice and of the white noise of Alg. A.8.
    seed : int
        Seeds a new generator when ``generator`` is not given.

    Notes
    -----
    Rules for writing a learning rule (register it with ``@LEARNING_RULES.register(name)``):

    * class attributes: ``feedback`` (feedback form needed on layers ``2..L``, ``None`` if the
      rule uses none), ``other_feedback`` (further forms it accepts), ``parameters`` (the
      hyper-parameters it reads, keys of :data:`HYPERPARAMETERS`), ``defaults`` (the thesis's values
      for them), ``sherman_morrison`` (batch size must be 1), ``algorithm`` (Appendix A reference),
      ``default_trainable_layers``;
    * the one abstract hook, :meth:`_step`, receives validated ``h0`` (B, n_0) and ``y`` (B, n_L)
      under ``torch.no_grad()`` (the public :meth:`step` checks them), changes ``layer.weight`` (and
      the feedback parameters) of ``network`` in place — never a copy — and returns a
      :class:`StepRecord`;
    * optional hooks: :meth:`predict` (the network output the rule's model uses: the plain forward
      pass except with batch normalisation), :meth:`check_batch_size` (a batch size the rule cannot
      use), :meth:`_choose_layers` (which trainable layers one step updates);
    * hyper-parameters are attributes and may be changed between steps (learning-rate schedules).
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
                 seed: int = 0, loss_convention="half", **unknown):
        if unknown:
            raise TypeError(unknown_names_message(f"method {self.name!r}", "hyper-parameter", unknown,
                                                  self.parameters + ("trainable_layers", "generator", "seed",
                                                                     "loss_convention")))
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
        self.convention = get_loss_convention(loss_convention)
        self.loss_convention = self.convention.name

    # -- description -------------------------------------------------------------------------------
    @classmethod
    def feedback_forms(cls) -> tuple:
        """Feedback forms the rule accepts (the first one builds its student networks)."""
        return ((cls.feedback,) if cls.feedback is not None else ()) + tuple(cls.other_feedback)

    def hyperparameters(self) -> dict:
        """The rule's hyper-parameters as a JSON-ready dict."""
        out = {k: getattr(self, k) for k in self.parameters}
        out["loss_convention"] = self.loss_convention
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

    @abc.abstractmethod
    def _step(self, network, h0, y, diagnostics) -> StepRecord:
        """The update itself, on validated inputs under ``torch.no_grad()`` (class docstring)."""

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


def batch_loss(residual: torch.Tensor) -> float:
    """Mini-batch loss of a residual ``h_L - y`` (B, n_L): the mean over the batch of ``||h_L - y||^2``.

    The same number in both loss conventions (it is what :attr:`StepRecord.loss` reports); the runner
    divides it by ``n_L`` to report it in :data:`~tpdynamics.training.loss.LOSS_UNIT`.
    """
    return float((residual ** 2).sum(-1).mean())


def add_outer_products(layer: Layer, left: torch.Tensor, right: torch.Tensor, alpha: float) -> None:
    """``W_i <- W_i + alpha sum_b left_b right_b^T`` in place (``addmm_``: no temporary matrix).

    An exact inverse is recomputed afterwards: a sum of outer products is not a rank-one change.
    """
    layer.weight.addmm_(left.T, right, alpha=alpha)
    layer.sync_inverse()


LEARNING_RULES: Registry[type[LearningRule]] = Registry("learning rule", LearningRule, "method")



def get_learning_rule(method, **hyperparameters) -> LearningRule:
    """Instantiate a rule from a registered name or a :class:`LearningRule` subclass.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    return LEARNING_RULES.create(method, **hyperparameters)
