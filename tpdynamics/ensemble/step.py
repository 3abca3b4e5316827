"""One training step of S members at once: the discrete rules of Appendix A over the ensemble dimension.

:class:`EnsembleTrainer` takes S rule objects of one registered class, or of one and its randomized twin
(:func:`ensemble_class`; each with its own hyper-parameters and its own random generator) and an
:class:`~tpdynamics.ensemble.EnsembleNetwork` of their students, and advances all members by one iteration
of that rule with stacked tensors.
It follows the rule's own code path step for step (forward pass, output target ``h_L - eta_hat e_L`` with
the rule's loss convention, target propagation, the rule's
``_forward_factor``, the forward updates top to bottom, then Algorithms A.8/A.9), so that member ``s``
goes exactly where ``rules[s].step`` would have taken it alone (tested to 1e-12 in float64):

* every per-member decision is a mask, not a Python branch: the layer chosen by a randomized rule
  (drawn from the member's own generator, in the serial order), the robust Sherman–Morrison clip
  ``|1 + d| < eps`` with its ``beta = 1/(eps - d)`` (Alg. 4.1), members with ``eta^b = 0``;
* a numerical failure (a Sherman–Morrison denominator zero to round-off, a singular weight whose
  inverse is recomputed, an activity outside the inverse nonlinearity's domain) is a per-member *fault
  code* instead of an exception; the caller stops that member only (:mod:`tpdynamics.ensemble.training`);
* the white noise of A.8 is drawn per member from its generator (torch generators cannot be batched,
  and a batched draw would give other numbers): S draws per epoch, or per step for the randomized
  rules, whose layer choice draws from the same generator in between (:mod:`tpdynamics.ensemble.draws`).

Diagnostics (``diagnostics=True``) are the rule's (``_diagnose``), measured before the update and
batched over the members (:mod:`tpdynamics.ensemble.diagnostics`); ``TrainingConfig.diagnostics_every``
measures them every k-th step only.

Rules whose step is not one of the registered families' (a user subclass overriding ``_step`` or
another hook) are refused by :func:`ensemble_support`, which says why; the runner then trains them
serially.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import TPDynamicsWarning
from ..layers import ExactInverseFeedback, LearnedInverseFeedback, OriginalFeedback
from ..training.loss import LossConvention
from ..training.rules import (Backpropagation, LearningRule, ModifiedTargetPropagation, TargetPropagationRule)
from .draws import MemberDraws, _on
from .network import EnsembleNetwork, activate

#: Per-member fault codes of one step (0: none) and the error class serial training would have raised.
FAULTS = {1: ("SingularWeightError", "Sherman-Morrison denominator 1 + v^T W^-1 u is zero to round-off: "
                                     "W + u v^T is singular (Algorithm 4.1)"),
          2: ("InverseDomainError", "an activity left the domain of the inverse nonlinearity"),
          3: ("SingularWeightError", "a weight whose exact inverse is recomputed is singular")}

_FAMILIES = {"bp": (Backpropagation, ("_step", "_choose_layers", "predict")),
             "tp": (TargetPropagationRule, ("_step", "_choose_layers", "_forward_factor", "_update_forward",
                                            "_rank_one", "_train_backward", "predict")),
             "mtp": (ModifiedTargetPropagation, ("_step", "_choose_layers", "_forward_factor", "_update_forward",
                                                 "_rank_one", "_train_backward", "predict", "_normalised_forward"))}


def _times(slope: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    """``slope * value``; ``None`` is an identity layer's slope, exactly 1 (the product is skipped)."""
    return value if slope is None else slope * value


def _family(cls: type) -> tuple[str | None, str | None]:
    """``(family, None)`` if ``cls`` runs one of the known step codes, else ``(None, reason)``."""
    if not (isinstance(cls, type) and issubclass(cls, LearningRule)):
        return None, f"{cls!r} is not a LearningRule class"
    for family in ("mtp", "tp", "bp"):
        base, hooks = _FAMILIES[family]
        if issubclass(cls, base):
            changed = [h for h in hooks if getattr(cls, h) is not getattr(base, h)]
            if changed:
                return None, (f"{cls.__name__} overrides {', '.join(changed)} of {base.__name__}, which the "
                              "ensemble step does not know")
            return family, None
    return None, f"{cls.__name__} is not a backpropagation or target-propagation rule the ensemble step knows"


def ensemble_support(rule_class) -> str | None:
    """``None`` if the rule class can be trained as an ensemble, else the reason why not (a sentence)."""
    return _family(rule_class)[1]


#: What a randomized rule class may define beyond its base and still share an ensemble with it (its name,
#: its Appendix-A number and the flag itself): the rest of the step is the base's.
_TWIN_ATTRIBUTES = {"randomized", "name", "algorithm", "_abc_impl"}


def ensemble_class(rule_class: type) -> type:
    """The class whose ensembles ``rule_class``'s members may join.

    A randomized rule that is its base class with a random layer choice only (``rtp-ai``, Alg. A.11, of
    ``tp-ai``, A.10; ``rdtp-ai`` of ``dtp-ai``; ``rtp-ei`` of ``tp-ei``; ``rmtp`` of ``mtp``, ...) is grouped with
    its base; any other class with itself. Members of twin classes run one step code, the randomized ones masked
    to their chosen layer and the others to all trainable layers, so one ensemble of both gives each member the
    numbers it gets alone.

    Parameters
    ----------
    rule_class : type
        A :class:`~tpdynamics.training.rules.LearningRule` subclass.

    Returns
    -------
    type
        Its non-randomized base (a twin) or ``rule_class`` itself.

    Examples
    --------
    >>> from tpdynamics.training.rules import LEARNING_RULES
    >>> ensemble_class(LEARNING_RULES.get("rtp-ai")).name
    'tp-ai'
    >>> ensemble_class(LEARNING_RULES.get("rmtp-ei")).name
    'rmtp-ei'
    """
    own = {k for k in vars(rule_class) if not k.startswith("__")}
    base = rule_class.__mro__[1] if len(rule_class.__mro__) > 1 else None
    if (getattr(rule_class, "randomized", False) and own <= _TWIN_ATTRIBUTES and base is not None
            and not getattr(base, "randomized", False) and _family(base)[0] is not None):
        return base
    return rule_class


@dataclass
class EnsembleStep:
    """What one batched step did, as per-member tensors (on the ensemble's device).

    Attributes
    ----------
    residual : Tensor, shape (S, B, n_L)
        ``h_L - y`` of each member before the update.
    loss : Tensor, shape (S,)
        Mini-batch loss of each member before the update (mean over the batch of ``||h_L - y||^2``), formed
        from :attr:`residual` when read (:func:`batch_losses` forms an epoch's at once).
    fault : Tensor of int16, shape (S,), or None
        Bit ``2**code`` set for every :data:`FAULTS` code of a numerical failure that would have raised
        in serial training (``None``: no check of this step can fail, e.g. backpropagation, or target
        propagation through leaky-ReLU inverses with learned or original feedback).
    chosen : dict
        Layer ``i`` -> bool mask ``(S,)`` of the members that updated ``W_i``.
    sherman_morrison : dict
        Layer ``i`` -> ``(denominator, clipped, beta)``, each ``(S, 1, 1)`` (member ``s``: ``[s]``), for members
        ``chosen[i]``.
    backward_loss : dict
        Thesis index ``i`` of ``Q_i`` -> ``(S,)`` losses of Alg. A.8/A.9 before the step.
    diagnostics : dict or None
        Name -> ``(S, L - 1)`` tensor of the diagnostics measured before the update, named as in
        :meth:`StepDiagnostics.flat` (:mod:`tpdynamics.ensemble.diagnostics`); None when not asked for.
    """

    residual: torch.Tensor
    fault: torch.Tensor | None
    chosen: dict = field(default_factory=dict)
    sherman_morrison: dict = field(default_factory=dict)
    backward_loss: dict = field(default_factory=dict)
    diagnostics: list | None = None

    @property
    def loss(self) -> torch.Tensor:
        return batch_losses(self.residual)


def batch_losses(residual: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||h_L - y||^2`` (``batch_loss``): ``(..., S, B, n_L) -> (..., S)``.

    The same reductions of the same rows whatever the leading dimensions, so that the epoch's losses can be
    formed in three operations from its stacked residuals instead of three per step.
    """
    return (residual ** 2).sum(-1).mean(-1)


class EnsembleTrainer(MemberDraws):
    """Advance S members, each with its own rule object, by batched steps (module docstring).

    Parameters
    ----------
    rules : sequence of LearningRule
        One rule object per member, all of one class or of one class and its randomized twin
        (:func:`ensemble_class`: e.g. ``tp-ai`` and ``rtp-ai`` members together), with distinct generators.
        Their hyper-parameters are read by :meth:`refresh` (call it after changing them, e.g. per epoch).
    network : EnsembleNetwork
        The members' students, stacked.

    Raises
    ------
    ValueError
        For a class :func:`ensemble_support` refuses, members that differ in something that is not
        a per-member value (``trainable_layers``, ``inverse_update``), or shared generators.
    """

    def __init__(self, rules: Sequence[LearningRule], network: EnsembleNetwork):
        rules = list(rules)
        if len(rules) != len(network):
            raise ValueError(f"got {len(rules)} rules for an ensemble of {len(network)} members; pass one per member.")
        classes = {ensemble_class(type(r)) for r in rules}
        if len(classes) != 1:
            raise ValueError(f"an ensemble trains one rule class (or one and its randomized twin), got "
                             f"{sorted({type(r).__name__ for r in rules})}; train the others in ensembles of "
                             "their own.")
        cls = classes.pop()
        family, reason = _family(cls)
        if family is None:
            raise ValueError(f"method {cls.name!r} cannot be trained as an ensemble: {reason}. Train it serially.")
        for s, (rule, member) in enumerate(zip(rules, network.members)):
            rule.check_network(member)
        for attribute in ("trainable_layers", "inverse_update", "loss_convention"):
            values = {repr(getattr(r, attribute, None)) for r in rules}
            if len(values) > 1:
                raise ValueError(f"the members' {attribute} differ ({sorted(values)}); an ensemble shares it.")
        if len({id(r.generator) for r in rules}) != len(rules):
            raise ValueError("two members share one random generator; give each rule its own (seed= or generator=).")
        self.rules, self.network, self.family, self.rule_class = rules, network, family, cls
        #: the members' loss convention (shared): ``e_L = c (h_L - y)`` and the rule's local-gradient factor ``c``
        self.convention = rules[0].convention
        self.size, self.depth = len(rules), network.depth
        self.trainable = rules[0]._trainable(self.depth)
        #: which members choose one layer per step (a randomized rule); the others update every trainable layer
        self.member_randomized = [bool(getattr(type(r), "randomized", False)) for r in rules]
        self.randomized = any(self.member_randomized)
        # batch-normalisation state of mtp / rmtp: running statistics of h_0..h_{L-1}, (S, 1, n_i)
        self._eye = torch.eye(self.depth + 1, dtype=torch.bool, device=network.device)
        self._one_hot = self._eye[torch.tensor(self.trainable, device=network.device)]  # row k: trainable[k]'s mask
        # and a last row of all trainable layers: the mask of a member of the non-randomized twin
        self._one_hot = torch.cat([self._one_hot, self._one_hot.any(0, keepdim=True)])
        self.running = None
        self._buffers = {}  # kept per-member draw buffers (_buffer)
        if self.randomized:  # the layer picks; a member of the non-randomized twin keeps row n, every trainable layer
            self._buffer("picks", (), torch.long)[0].fill_(len(self.trainable))
        self._eyes = {}  # layer -> identity (the stand-in of a non-finite weight in the inverse's checks)
        self._noise = None  # white noise of A.8 drawn ahead (predraw_noise)
        #: Whether steps report the losses of Alg. A.8/A.9 (``EnsembleStep.backward_loss``; the runner does not
        #: record them, so it turns them off).
        self.backward_losses = True
        # the local-gradient factor c D (h - hat h) of the rule (``_forward_factor``), its product by c = 1 skipped
        self._unit_factor = float(self.convention.factor) == 1.0
        self._one = torch.ones((), dtype=network.dtype, device=network.device)
        self._plain_error = type(self.convention).output_error is LossConvention.output_error
        factor = float(self.convention.factor)
        # c a power of 2: c x is exact, so (d (c x)) s = (d x) (c s) bit for bit and c may join another factor
        self._exact_c = factor > 0 and math.frexp(factor)[0] == 0.5 and self._plain_error
        self._modified = bool(getattr(cls, "modified", False))
        self.refresh()

    # -- hyper-parameters ---------------------------------------------------------------------------
    def _column(self, name: str, default: float = 0.0) -> torch.Tensor:
        values = [getattr(r, name, None) for r in self.rules]
        values = [default if v is None else float(v) for v in values]
        return torch.tensor(values, dtype=self.network.dtype, device=self.network.device)

    def refresh(self) -> None:
        """Read every member's hyper-parameters (after a change, e.g. the per-epoch rate schedule)."""
        net = self.network
        self.eta = torch.tensor([[r._eta(i) for i in range(1, self.depth + 1)] for r in self.rules],
                                dtype=net.dtype, device=net.device)  # (S, L)
        self._scale = [None] * self.depth  # -eta_i / B per member, (S, 1, 1), set at the first step of a batch size
        self._scale_batch = None
        self._ones = torch.ones(self.size, dtype=torch.bool, device=net.device)
        self.eta_hat = self._column("eta_hat").view(-1, 1, 1)
        self._eta_hat_c = self.eta_hat * float(self.convention.factor)  # eta_hat c: exact where used (_exact_c)
        self.epsilon = self._column("epsilon")
        self._epsilon = self.epsilon.view(-1, 1, 1)
        self._neg_eta = [(-self.eta[:, i]).view(-1, 1, 1) for i in range(self.depth)]
        self._neg_eta_c = [float(self.convention.factor) * e for e in self._neg_eta]
        self.eta_backward = self._column("eta_backward")
        self.lambda_ = self._column("lambda_")
        self.noise_std = self._column("noise_std", 1.0).view(-1, 1, 1)
        self._unit_noise = bool((self.noise_std == 1.0).all())
        self.momentum = self._column("momentum").view(-1, 1, 1)
        self._keep = 1 - self.momentum
        # as in TargetPropagationRule._train_backward: no backward step (and no noise draw) when eta^b is 0
        self.backward_on = [bool(getattr(r, "backward", None)) and bool(r.eta_backward) for r in self.rules]
        self._backward_on = torch.tensor(self.backward_on, dtype=torch.bool, device=net.device)
        # the weight decay of A.8/A.9 and the per-batch step factor, formed once per refresh (not per step)
        self._decay = None if not bool(self.lambda_.any()) else \
            1.0 - self.eta_backward.view(-1, 1, 1) * self.lambda_.view(-1, 1, 1)
        self._backward_step, self._backward_batch = None, None

    # -- the step -----------------------------------------------------------------------------------
    def step(self, h0: torch.Tensor, y: torch.Tensor, *, diagnostics: bool = False) -> EnsembleStep:
        """One iteration of every member on its mini-batch: ``h0`` (S, B, n_0), ``y`` (S, B, n_L)."""
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.step(h0, y, diagnostics=diagnostics)
        if self._scale_batch != h0.shape[1]:
            self._scale_batch = h0.shape[1]
            self._scale = [(-self.eta[:, i] / h0.shape[1]).view(-1, 1, 1) for i in range(self.depth)]
            # the local gradients' factor c folded into the scale where that is exact (c a power of 2)
            self._scale_c = [self.convention.factor * scale for scale in self._scale] if self._exact_c else None
        if self.family == "bp":
            return self._step_bp(h0, y, diagnostics)
        return self._step_tp(h0, y, diagnostics)

    def _choose(self) -> tuple[tuple, torch.Tensor | None]:
        """The layers to compute and, for randomized rules, the (S, L + 1) mask of each member's chosen layer.

        Each member draws its layer from its own generator (the serial ``_choose_layers``); the draws stay on
        the device (no host read per step), so every trainable layer is computed, masked: a member's
        unchosen layers get the factor 0, and at S = 10 nearly every layer is someone's choice anyway.
        """
        if not self.randomized:
            return self.trainable, None
        n = len(self.trainable)
        # torch.randint(n, (1,), generator=g) is empty(1).random_(0, n, generator=g): the same draw, written
        # straight into member s's slot of one buffer (no allocation, no concatenation)
        picks, slots = self._buffer("picks", (), torch.long)
        for slot, r, randomized in zip(slots, self.rules, self.member_randomized):
            if randomized:
                slot.random_(0, n, generator=r.generator)
        mask = self._one_hot[_on(picks, self.network.device)]  # row k of the one-hot masks of the trainable layers (one op, not an index_put)
        return self.trainable, mask

    def _add(self, i: int, left: torch.Tensor, right: torch.Tensor, chosen: torch.Tensor | None) -> None:
        """``W_i <- W_i - (eta_i / B) sum_b left_b right_b^T`` for the chosen members (``add_outer_products``).

        The per-member factor multiplies ``left`` before the product (one fused ``baddbmm_``); a member not
        chosen gets the factor 0, i.e. an exact no-op.
        """
        scale = self._scale[i - 1] if chosen is None else self._scale[i - 1] * chosen.view(-1, 1, 1)
        self.network.weights[i - 1].baddbmm_(left.mT * scale, right)

    def _u(self, i, derivative, h, h_hat) -> torch.Tensor:
        """``u_i = -eta_i c D (h_i - hat h_i)`` of the Sherman–Morrison step as a column ``(S, n_i, 1)`` (batch 1).

        With ``c`` a power of 2 it joins ``-eta_i`` (exact, as in :meth:`_add_local`).
        """
        if not self._exact_c:
            return self._forward_factor(derivative, h, h_hat).mT * self._neg_eta[i - 1]
        difference = h - h_hat
        if derivative is not None:
            difference = difference / derivative if self._modified else derivative * difference
        return difference.mT * self._neg_eta_c[i - 1]

    def _add_local(self, i, derivative, h, h_hat, right, chosen) -> None:
        """:meth:`_add` of the rule's local gradient ``c D (h - hat h)`` with ``c`` folded into the scale (exact).

        ``(D (c x)) (-eta / B) = (D x) (-c eta / B)`` bit for bit for ``c`` a power of 2 (``D^-1`` for modified TP,
        no ``D`` for an identity layer), one product fewer per layer.
        """
        difference = h - h_hat
        if derivative is not None:
            difference = difference / derivative if self._modified else derivative * difference
        scale = self._scale_c[i - 1] if chosen is None else self._scale_c[i - 1] * chosen.view(-1, 1, 1)
        self.network.weights[i - 1].baddbmm_((difference * scale).mT, right)

    def _step_bp(self, h0, y, diagnostics):
        net = self.network
        activations, derivatives = net.forward_pass(h0, unit_slopes=False)
        L = self.depth
        residual = activations[L] - y
        error = self._output_error(residual, activations[L], y)  # e_L of the rule's loss convention
        layers, mask = self._choose()
        deltas = {L: _times(derivatives[L], error)}
        for i in range(L - 1, min(layers) - 1, -1):
            deltas[i] = _times(derivatives[i], torch.bmm(deltas[i + 1], net.weights[i]))
        chosen = {}
        for i in sorted(layers, reverse=True):
            column = None if mask is None else mask[:, i]
            self._add(i, deltas[i], activations[i - 1], column)
            chosen[i] = column
        diag = {} if diagnostics else None  # StepDiagnostics() of backpropagation: nothing to average
        return EnsembleStep(residual=residual, fault=None, chosen=self._full(chosen), diagnostics=diag)

    def _forward_factor(self, derivative, h, h_hat) -> torch.Tensor:
        """The rule's ``_forward_factor`` (``c D (h - hat h)``, modified TP ``c D^{-1} (h - hat h)``) in fewer ops.

        The products by ``c = 1`` and by an identity layer's slope (``derivative`` None) are skipped: they are
        exact (``1 x = x / 1 = x``), so the numbers are the rule's.
        """
        difference = h - h_hat if self._unit_factor else self.convention.factor * (h - h_hat)
        if derivative is None:
            return difference
        return difference / derivative if self._modified else derivative * difference

    def _full(self, chosen: dict) -> dict:
        return {i: self._ones if m is None else m for i, m in chosen.items()}

    # -- target propagation ---------------------------------------------------------------------------
    def _normalised_forward(self, h0, statistics=None, *, slopes=True, unit_slopes=True):
        """Batched ``ModifiedTargetPropagation._normalised_forward`` (statistics over the batch dimension 1).

        ``slopes=False``: no derivatives (prediction); ``unit_slopes=False``: ``None`` for an identity layer's
        (:func:`~tpdynamics.ensemble.network.activate`).
        """
        net, eps = self.network, self.rule_class.bn_epsilon
        activations, inputs, stats, derivatives = [h0], [], [], [None]
        for i in range(1, self.depth + 1):
            h = activations[-1]
            if statistics is None:
                mean, var = h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)
            else:
                mean, var = statistics[i - 1]
            sigma = torch.sqrt(var + eps)
            inputs.append((h - mean) / sigma)
            stats.append((mean, var, sigma))
            h, d = activate(net.nonlinearities[i - 1], torch.bmm(inputs[-1], net.weights[i - 1].mT), slope=slopes,
                            unit_slope=unit_slopes)
            activations.append(h)
            derivatives.append(d)
        return activations, inputs, stats, derivatives

    def _step_tp(self, h0, y, diagnostics):
        net, L, rule = self.network, self.depth, self.rules[0]
        faults = []  # (bad, code): a fault table only where a check can fail (none for leaky-ReLU learned inverses)

        def flag(bad, code):
            if bad is not None:
                faults.append((bad, code))

        if self.family == "mtp":
            activations, inputs, stats, derivatives = self._normalised_forward(h0, unit_slopes=diagnostics)
        else:
            activations, derivatives = net.forward_pass(h0, unit_slopes=diagnostics)  # diagnostics divide by them
            inputs, stats = activations, None
        residual = activations[L] - y
        # e_L of the rule's loss convention (only the diagnostics read it where c joins eta_hat below)
        error = self._output_error(residual, activations[L], y) if diagnostics or not self._exact_c else None
        layers, mask = self._choose()
        targets = [None] * (L + 1)
        # output_target (eq. 4.4) of that convention; eta_hat (c r) = (eta_hat c) r exactly for c a power of 2
        targets[L] = activations[L] - (self._eta_hat_c * residual if self._exact_c else self.eta_hat * error)
        lowest = 1 if diagnostics else min(layers)
        for i in range(L - 1, lowest - 1, -1):
            propagated, outside = net.feedback_forward(i + 1, targets[i + 1])
            flag(self._needs(outside, mask, i, diagnostics), 2)
            if stats is not None:
                mean, _, sigma = stats[i]
                targets[i] = sigma * propagated + mean
            elif rule.difference:
                at_activation, outside = net.feedback_forward(i + 1, activations[i + 1])
                flag(self._needs(outside, mask, i, diagnostics), 2)
                targets[i] = activations[i] + (propagated - at_activation)
            else:
                targets[i] = propagated
        diag = self._diagnose(activations, derivatives, targets, error) if diagnostics else None
        record = EnsembleStep(residual=residual, fault=None, diagnostics=diag)
        for i in sorted(layers, reverse=True):
            column = None if mask is None else mask[:, i]
            if rule.sherman_morrison and net.kinds[i - 1] is ExactInverseFeedback:
                # u_i = -eta_i c D (h_i - hat h_i) as a column (S, n_i, 1), v_i = h_{i-1} as a row (S, 1, n_{i-1})
                record.sherman_morrison[i] = self._sherman_morrison(i, self._u(i, derivatives[i], activations[i],
                                                                               targets[i]), inputs[i - 1], column, flag)
            elif self._exact_c:
                self._add_local(i, derivatives[i], activations[i], targets[i], inputs[i - 1], column)
                if net.kinds[i - 1] is ExactInverseFeedback:
                    self._recompute_inverse(i, column, flag)
            else:
                self._add(i, self._forward_factor(derivatives[i], activations[i], targets[i]), inputs[i - 1], column)
                if net.kinds[i - 1] is ExactInverseFeedback:
                    self._recompute_inverse(i, column, flag)
            record.chosen[i] = column
        record.chosen = self._full(record.chosen)
        if stats is not None:
            self._update_running(stats)
        record.backward_loss = self._train_backward(activations, flag)
        if len(faults) == 1:
            bad, code = faults[0]
            record.fault = bad.to(torch.int16) << code
        elif faults:
            fault = torch.zeros(self.size, dtype=torch.int16, device=net.device)
            for bad, code in faults:
                fault.bitwise_or_(bad.to(torch.int16) << code)
            record.fault = fault
        return record

    def _output_error(self, residual: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The convention's ``e_L = c (h_L - y)`` from the residual ``h_L - y`` (the same numbers, fewer ops)."""
        if not self._plain_error:
            return self.convention.output_error(h, y)
        return residual if self._unit_factor else self.convention.factor * residual

    @staticmethod
    def _needs(outside, mask, i, diagnostics):
        """``outside`` of the members that need the target of layer ``i``: those whose chosen layer is ``<= i``.

        A randomized rule's serial step propagates its targets down to its chosen layer only (and every layer
        when it diagnoses), so only there can its domain check fail.
        """
        if outside is None or mask is None or diagnostics:
            return outside
        return outside & mask[:, : i + 1].any(1)

    def _diagnose(self, activations, derivatives, targets, error) -> dict:
        """The rule's diagnostics (``TargetPropagationRule._diagnose``; mtp: the ``W^+`` distances), batched."""
        from .diagnostics import pseudo_inverse_distance, pseudo_inverses, target_propagation_diagnostics

        if self.family == "mtp":
            return {"pseudo_inverse_distance": pseudo_inverse_distance(self.network, pseudo_inverses(self.network))}
        return target_propagation_diagnostics(self.network, activations, derivatives, targets, error, self.eta_hat)

    def _sherman_morrison(self, i, u, v, chosen, flag):
        """Batched robust Sherman–Morrison step (Alg. 4.1; ``robust_sherman_morrison_``) on ``W_i`` and ``W_i^{-1}``.

        ``u`` (S, n_i, 1) a column, ``v`` (S, 1, n_{i-1}) a row (batch size 1), so that every product is one
        ``bmm`` with no reshaping; each member clips with its own ``eps`` and ``beta``. Returns
        ``(denominator, clipped, beta)``, each ``(S, 1, 1)``.
        """
        weight, inverse = self.network.weights[i - 1], self.network.feedback[i - 1]
        epsilon = self._epsilon
        w_inv_u = torch.bmm(inverse, u)                 # (S, n, 1)
        d = torch.bmm(v, w_inv_u)                       # (S, 1, 1): v^T W^-1 u
        denominator = d + 1.0
        clipped = denominator.abs() < epsilon
        # clipped means eps - d > 1, so the reciprocal is safe where it is selected
        beta = torch.where(clipped, torch.reciprocal(epsilon - d), 1.0)
        chosen3 = None if chosen is None else chosen.view(-1, 1, 1)
        step = beta if chosen is None else torch.where(chosen3, beta, 0.0)  # 0: an exact no-op
        record = denominator, clipped, beta  # (S, 1, 1): flattened once per epoch by the runner's loop
        if self.rules[0].inverse_update == "recompute":
            weight.baddbmm_(u * step, v)
            self._recompute_inverse(i, chosen, flag, checks=False)
            return record
        used = torch.where(clipped, epsilon, denominator)
        # denominator_round_off: 2 n eps (1 + ||v|| ||W^-1||_F ||u||)
        norms = torch.linalg.vector_norm(v, dim=(-2, -1), keepdim=True) * \
            torch.linalg.vector_norm(inverse, dim=(-2, -1), keepdim=True)
        bound = torch.addcmul(self._one, norms, torch.linalg.vector_norm(u, dim=(-2, -1), keepdim=True)) * \
            (2.0 * inverse.shape[-1] * torch.finfo(d.dtype).eps)
        singular = used.abs() <= bound
        skip = singular if chosen is None else singular | ~chosen3
        flag(singular.view(-1) if chosen is None else singular.view(-1) & chosen, 1)
        alpha = torch.where(skip, 0.0, torch.reciprocal(used))
        # W^-1 <- W^-1 - (W^-1 u)(v^T W^-1) / used: the sign in baddbmm_'s alpha (exact)
        inverse.baddbmm_(w_inv_u * alpha, torch.bmm(v, inverse), alpha=-1.0)
        weight.baddbmm_(u * step, v)
        return record

    def _recompute_inverse(self, i, chosen, flag, *, checks=True):
        """``W_i^{-1}`` recomputed for the chosen members (``Layer.sync_inverse``), with its singularity checks."""
        weight, inverse = self.network.weights[i - 1], self.network.feedback[i - 1]
        active = self._ones if chosen is None else chosen
        if checks:
            # a member gone non-finite is flagged; its identity stand-in keeps the batched SVD from failing
            finite = torch.isfinite(weight).flatten(1).all(1)
            if i not in self._eyes:
                self._eyes[i] = torch.eye(weight.shape[-1], dtype=weight.dtype, device=weight.device)
            s = torch.linalg.svdvals(torch.where(finite.view(-1, 1, 1), weight, self._eyes[i]))
            eps = torch.finfo(weight.dtype).eps
            # svdvals are in descending order: the first is the largest, the last the smallest
            largest, smallest = s[:, 0], s[:, -1]
            singular = ((smallest <= largest * (weight.shape[-1] * eps)) | ~finite) & active
            flag(singular, 3)
            condition = largest / smallest
            ill = (condition > 1.0 / math.sqrt(eps)) & active & ~singular
            if bool(ill.any()):
                members = ill.nonzero().flatten().tolist()
                warnings.warn(f"W_{i} of ensemble member(s) {members} is ill-conditioned (condition number up to "
                              f"{float(condition[ill].max()):.3g} > 1/sqrt(eps)); its recomputed inverse keeps few "
                              "digits. Redraw the weight (init_threshold > 0), use weight_init='orthogonal', or "
                              "float64.", TPDynamicsWarning, stacklevel=5)
        new, info = torch.linalg.inv_ex(weight)
        inverse.copy_(torch.where((active & (info == 0)).view(-1, 1, 1), new, inverse))

    def _update_running(self, stats) -> None:
        """``(1 - m) r + m x`` of the rule (``addcmul``: the same two products and one sum), ``1 - m`` formed per refresh."""
        m, keep = self.momentum, self._keep
        if self.running is None:
            self.running = [(torch.zeros_like(mean), torch.ones_like(var)) for mean, var, _ in stats]
        self.running = [(torch.addcmul(keep * rm, m, mean), torch.addcmul(keep * rv, m, var))
                        for (rm, rv), (mean, var, _) in zip(self.running, stats)]

    def _train_backward(self, activations, flag) -> dict:
        """Algorithms A.8 (learned ``Q`` on white noise) and A.9 (original ``Q`` on the activations), batched."""
        net, rule = self.network, self.rules[0]
        if rule.backward is None or not any(self.backward_on):
            return {}
        batch = activations[0].shape[1]
        # Q <- (1 - eta^b lambda) Q - (eta^b / B) sum_b residual_b pre_b^T, the factor folded into one baddbmm_
        if self._backward_batch != batch:
            self._backward_step, self._backward_batch = -self.eta_backward.view(-1, 1, 1) / batch, batch
        step, decay = self._backward_step, self._decay
        noise = self._draw_noise(batch) if rule.backward == "A.8" and self._noise is None else None
        losses = {}
        for i in range(1, self.depth):
            kind, q = net.kinds[i], net.feedback[i]  # g_i lives on layer i + 1
            if rule.backward == "A.8" and kind is LearnedInverseFeedback:
                n = net.layer_sizes[i]
                if self._noise is not None and self._noise_cursor < self._noise.shape[1]:
                    start = self._noise_offsets[i]  # already scaled by sigma
                    h = self._noise[:, self._noise_cursor, start:start + batch * n].view(-1, batch, n)
                elif noise is not None:
                    h = noise[i]
                else:
                    h = self._draw_layer_noise(batch, n)
                upper = net.nonlinearities[i]
                out = activate(upper, torch.bmm(h, net.weights_t[i]), slope=False)[0]
                if upper.inverse_bound is not None:
                    flag((~upper.in_inverse_domain(out)).flatten(1).any(1) & self._backward_on, 2)
                pre = upper.inverse(out, check=False)
                residual = torch.bmm(pre, net.feedback_t[i]) - h
                left, right = residual, pre
            elif rule.backward == "A.9" and kind is OriginalFeedback:
                pre = torch.bmm(activations[i + 1], net.feedback_t[i])
                value, slope = activate(net.feedback_nonlinearities[i], pre)
                residual = value - activations[i]
                left, right = slope * residual, activations[i + 1]
            else:
                continue
            if self.backward_losses:
                losses[i] = (residual ** 2).sum(-1).mean(-1)
            if decay is not None:
                q.mul_(decay)
            q.baddbmm_(left.mT * step, right)
        if self._noise is not None:
            self._noise_cursor += 1
        return losses

    # -- the model's output ---------------------------------------------------------------------------
    def training_output(self, h0: torch.Tensor) -> torch.Tensor:
        """``h_L`` of the model every member trains on this batch, ``(S, B, n_0) -> (S, B, n_L)``: the forward pass the
        step makes (for mtp / rmtp batch-normalised with the batch's own statistics, not the running ones)."""
        with torch.no_grad():
            if self.family == "mtp":
                return self._normalised_forward(h0, slopes=False)[0][-1]
            return self.network.forward(h0)

    def predict(self, h0: torch.Tensor) -> torch.Tensor:
        """Every member's ``rule.predict``: ``(S, N, n_0) -> (S, N, n_L)`` (running statistics for mtp)."""
        with torch.no_grad():
            if self.family == "mtp" and self.running is not None:
                return self._normalised_forward(h0, self.running, slopes=False)[0][-1]
            return self.network.forward(h0)

    def write_back(self) -> None:
        """Give each rule object its member's state (mtp's running statistics), as serial training leaves it."""
        if self.family != "mtp" or self.running is None:
            return
        for s, rule in enumerate(self.rules):
            rule.running_mean = {i: mean[s, 0].clone() for i, (mean, _) in enumerate(self.running)}
            rule.running_var = {i: var[s, 0].clone() for i, (_, var) in enumerate(self.running)}
