"""Learning-signal diagnostics of the discrete TP / DTP family (sections 5.1.3 and 5.2.2).

For a forward pass ``h_0..h_L``, output error ``e_L`` (``h_L - y``, or ``2 (h_L - y)`` under the thesis's loss
convention, :mod:`tpdynamics.training.loss`) and propagated targets
``hat h_i``, the thesis compares the learning signal ``hat h_i - h_i`` with

==========  =====================================================================  ==============
name        definition (layer ``i = 1..L-1``)                                      thesis
==========  =====================================================================  ==============
e_TP        ``-eta_hat [prod_{k=i}^{L-1} J_{g_k}] e_L``                             5.39, 5.57
e_rec       ``r_i + sum_{j=i+1}^{L-1} (prod_{k=i}^{j-1} J_{g_k}) r_j``,              5.40, 5.58
            ``r_j = g_j(h_{j+1}) - h_j``
e_approx    ``hat h_i - h_i - e_TP = e_rec + e_Taylor`` (DTP: ``e_Taylor`` only)     5.41, 5.59
e_GN        ``-eta_hat [prod_{k=i+1}^{L} W_k^+ D_{s_k}^{-1}] e_L``                   5.60
e_BP        ``-eta_hat [prod_{k=i+1}^{L} W_k^T D_{s_k}] e_L``                        5.61
==========  =====================================================================  ==============

``J_{g_k}`` is the Jacobian of the feedback mapping ``g_k`` at ``h_{k+1}``; products are ordered
with ``k = i`` leftmost. ``e_GN`` of eq. (5.60) is the *factorised* pseudo-inverse, equal to the
block-diagonal Gauss-Newton step ``-eta_hat J_i^+ e_L`` of Lemma 4.2 (eq. 4.48) when Lemma 4.8's
architecture conditions hold; :func:`gauss_newton_targets` gives both.

All functions work on batch-first tensors; per-layer lists have entry ``i - 1`` for layer ``i``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from ..network import LayeredNetwork
from ..sherman_morrison import ShermanMorrisonRecord
from ..theory import propagate_error

#: Pairs whose cosine :meth:`LearningSignals.summary` reports (first, second, name).
COSINE_PAIRS = (
    ("signal", "e_tp", "cos_signal_tp"),
    ("signal", "e_gn", "cos_signal_gn"),
    ("signal", "e_bp", "cos_signal_bp"),
    ("e_tp", "e_gn", "cos_tp_gn"),
    ("e_tp", "e_bp", "cos_tp_bp"),
    ("e_gn", "e_bp", "cos_gn_bp"),
)


def batch_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between ``a[k]`` and ``b[k]`` for each sample ``k``, shape ``(B,)`` for inputs ``(B, n)``.

    A zero vector has cosine 0 with everything (rather than NaN).
    """
    dot = (a * b).sum(-1)
    norms = a.norm(dim=-1) * b.norm(dim=-1)
    return torch.where(norms > 0, dot / torch.where(norms > 0, norms, torch.ones_like(norms)),
                       torch.zeros_like(dot))


def tp_signal(network: LayeredNetwork, activations, error: torch.Tensor, eta_hat: float) -> list[torch.Tensor]:
    """``e_TP`` of eqs. (5.39)/(5.57) for layers ``1..L`` (entry ``L - 1`` is ``-eta_hat e_L``)."""
    return [-eta_hat * p for p in propagate_error(network, activations, error)]


def reconstruction_residuals(network: LayeredNetwork, activations) -> list[torch.Tensor]:
    """``r_i = g_i(h_{i+1}) - h_i`` for ``i = 1..L-1`` (the reconstruction error of eq. 4.84), shapes ``(B, n_i)``."""
    return [network.layer(i + 1).feedback_forward(activations[i + 1]) - activations[i]
            for i in range(1, network.depth)]


def reconstruction_signal(network: LayeredNetwork, activations) -> list[torch.Tensor]:
    """``e_rec`` of eqs. (5.40)/(5.58) for ``i = 1..L-1``.

    Computed by the recursion ``e_rec_{L-1} = r_{L-1}``, ``e_rec_i = r_i + J_{g_i} e_rec_{i+1}``,
    which expands to the sum of eq. (5.40).
    """
    L = network.depth
    residuals = reconstruction_residuals(network, activations)
    out: list[torch.Tensor] = [None] * (L - 1)  # type: ignore[list-item]
    for i in range(L - 1, 0, -1):
        value = residuals[i - 1]
        if i < L - 1:
            jac = network.layer(i + 1).feedback_jacobian(activations[i + 1])
            value = value + torch.einsum("bij,bj->bi", jac, out[i])
        out[i - 1] = value
    return out


def bp_signal(network: LayeredNetwork, activations, error: torch.Tensor, eta_hat: float) -> list[torch.Tensor]:
    """``e_BP`` of eq. (5.61) for layers ``1..L``: ``-eta_hat dL/dh_i`` (entry ``L - 1`` is ``-eta_hat e_L``)."""
    L = network.depth
    out = [None] * L
    v = error
    out[L - 1] = -eta_hat * v
    for i in range(L - 1, 0, -1):
        upper = network.layer(i + 1)
        v = (upper.derivative(activations[i]) * v) @ upper.weight  # W_{i+1}^T D_{s_{i+1}} v
        out[i - 1] = -eta_hat * v
    return out


def gauss_newton_targets(network: LayeredNetwork, activations, error: torch.Tensor, eta_hat: float, *,
                         factorized: bool = True) -> list[torch.Tensor]:
    """Gauss–Newton learning signals ``hat h^GN_i - h_i`` for layers ``1..L``.

    Parameters
    ----------
    factorized : bool
        ``True``: eq. (5.60), ``-eta_hat [prod_{k=i+1}^{L} W_k^+ D_{s_k}^{-1}] e_L`` (with exact
        inverses this is eq. 4.57). ``False``: the block-diagonal Gauss–Newton step of Lemma 4.2,
        ``-eta_hat J_i^+ e_L`` with ``J_i = dh_L/dh_i = prod_{k=L}^{i+1} D_{s_k} W_k`` formed
        explicitly and pseudo-inverted per sample (eqs. 4.48, 4.56).

    Returns
    -------
    list of Tensor
        Entry ``i - 1`` has shape ``(B, n_i)``; entry ``L - 1`` is ``-eta_hat e_L``.
    """
    L = network.depth
    out = [None] * L
    out[L - 1] = -eta_hat * error
    if factorized:
        v = error
        for i in range(L - 1, 0, -1):
            upper = network.layer(i + 1)
            v = (v / upper.derivative(activations[i])) @ torch.linalg.pinv(upper.weight.detach()).T
            out[i - 1] = -eta_hat * v
        return out
    jacobian = None  # dh_L / dh_i, shape (B, n_L, n_i)
    for i in range(L - 1, 0, -1):
        block = network.layer(i + 1).jacobian(activations[i])  # D_{s_{i+1}} W_{i+1}
        jacobian = block if jacobian is None else jacobian @ block
        out[i - 1] = -eta_hat * torch.einsum("bij,bj->bi", torch.linalg.pinv(jacobian), error)
    return out


@dataclass
class LearningSignals:
    """The learning signals of one mini-batch for the hidden layers ``i = 1..L-1``.

    Every attribute is a list with entry ``i - 1`` for layer ``i``, each a tensor of shape ``(B, n_i)``.

    Attributes
    ----------
    eta_hat : float
        Output target step the signals were built with.
    signal : list of Tensor
        The propagated learning signal ``hat h_i - h_i`` actually used by the rule.
    e_tp, e_rec, e_approx, e_gn, e_bp : list of Tensor
        See the module docstring (eqs. 5.39-5.41, 5.57-5.61).
    """

    eta_hat: float
    signal: list
    e_tp: list
    e_rec: list
    e_approx: list
    e_gn: list
    e_bp: list

    def cosine(self, first: str, second: str) -> list[float]:
        """Batch-mean cosine between two of the signals, per layer."""
        return [float(batch_cosine(a, b).mean()) for a, b in zip(getattr(self, first), getattr(self, second))]

    def norm(self, name: str) -> list[float]:
        """Batch-mean 2-norm of one signal, per layer."""
        return [float(t.norm(dim=-1).mean()) for t in getattr(self, name)]

    def summary(self) -> dict[str, list[float]]:
        """Norms (``*_norm``) and cosines (``cos_*``, see :data:`COSINE_PAIRS`), one float per hidden layer."""
        out = {f"{name}_norm": self.norm(name) for name in ("signal", "e_tp", "e_rec", "e_approx", "e_gn", "e_bp")}
        for first, second, key in COSINE_PAIRS:
            out[key] = self.cosine(first, second)
        return out


def learning_signals(network: LayeredNetwork, activations, targets, error: torch.Tensor,
                     eta_hat: float) -> LearningSignals:
    """All learning signals of eqs. (5.38)-(5.41), (5.57)-(5.61) for one mini-batch.

    Parameters
    ----------
    activations : list of Tensor
        ``[h_0, ..., h_L]``.
    targets : list
        ``[None, hat h_1, ..., hat h_L]`` from :func:`~tpdynamics.training.propagation.propagate_targets`
        (all hidden layers must have a target).
    error : Tensor, shape (B, n_L)
        The output error ``e_L`` the targets were built with: ``h_L - y``, or ``2 (h_L - y)`` under the
        thesis's loss convention (:mod:`tpdynamics.training.loss`).
    eta_hat : float
        Output target step used to build ``hat h_L = h_L - eta_hat e_L``.

    Returns
    -------
    LearningSignals
    """
    L = network.depth
    hidden = range(1, L)
    signal = [targets[i] - activations[i] for i in hidden]
    e_tp = tp_signal(network, activations, error, eta_hat)[: L - 1]
    return LearningSignals(
        eta_hat=eta_hat, signal=signal, e_tp=e_tp, e_rec=reconstruction_signal(network, activations),
        e_approx=[s - t for s, t in zip(signal, e_tp)],
        e_gn=gauss_newton_targets(network, activations, error, eta_hat)[: L - 1],
        e_bp=bp_signal(network, activations, error, eta_hat)[: L - 1],
    )


def reconstruction_errors(network: LayeredNetwork, activations) -> list[float]:
    """Batch-mean ``||g_i(h_{i+1}) - h_i||`` for ``i = 1..L-1`` (the reconstruction error, eq. 4.84, fig. 5.10)."""
    return [float(r.norm(dim=-1).mean()) for r in reconstruction_residuals(network, activations)]


def pseudo_inverse_distances(network: LayeredNetwork) -> list[float]:
    """Relative distance ``||M_i - W_{i+1}^+||_F / ||W_{i+1}^+||_F`` for ``i = 1..L-1`` (fig. 5.9).

    ``M_i`` is the feedback matrix of ``g_i`` (``W^{-1}`` kept by Sherman–Morrison, ``Q_i`` or
    ``B_i``); ``nan`` where layer ``i + 1`` has no feedback.
    """
    out = []
    for i in range(1, network.depth):
        layer = network.layer(i + 1)
        if layer.feedback is None:
            out.append(math.nan)
            continue
        pinv = torch.linalg.pinv(layer.weight.detach())
        out.append(float((layer.feedback.matrix.detach() - pinv).norm() / pinv.norm()))
    return out


def sherman_morrison_summary(records: Iterable[ShermanMorrisonRecord]) -> dict[str, float]:
    """``|1 + d|`` statistics of a set of robust Sherman–Morrison steps (Alg. 4.1, fig. 5.5).

    Returns
    -------
    dict
        ``count``, ``abs_denominator_mean``, ``abs_denominator_min`` and ``clipped_fraction``
        (``nan`` when there are no records).
    """
    records = list(records)
    if not records:
        return {"count": 0, "abs_denominator_mean": math.nan, "abs_denominator_min": math.nan,
                "clipped_fraction": math.nan}
    absolute = [abs(r.denominator) for r in records]
    return {"count": len(records), "abs_denominator_mean": sum(absolute) / len(absolute),
            "abs_denominator_min": min(absolute),
            "clipped_fraction": sum(r.clipped for r in records) / len(records)}


@dataclass
class StepDiagnostics:
    """Diagnostics of one training step, measured before the parameters changed.

    Attributes
    ----------
    signals : dict
        :meth:`LearningSignals.summary` (``None`` for rules without propagated targets).
    reconstruction_error : list of float
        :func:`reconstruction_errors` per hidden layer (empty without feedback).
    pseudo_inverse_distance : list of float
        :func:`pseudo_inverse_distances` per hidden layer.
    """

    signals: dict | None = None
    reconstruction_error: list = field(default_factory=list)
    pseudo_inverse_distance: list = field(default_factory=list)

    def flat(self) -> dict[str, list[float]]:
        """Every per-layer quantity under one name (for averaging over steps)."""
        out = dict(self.signals or {})
        if self.reconstruction_error:
            out["reconstruction_error"] = self.reconstruction_error
        if self.pseudo_inverse_distance:
            out["pseudo_inverse_distance"] = self.pseudo_inverse_distance
        return out
