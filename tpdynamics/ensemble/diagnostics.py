"""The learning-signal diagnostics of :mod:`tpdynamics.training.diagnostics`, batched over the ensemble dimension.

The same quantities as :class:`~tpdynamics.training.diagnostics.StepDiagnostics` (``e_TP``, ``e_rec``,
``e_approx``, ``e_GN``, ``e_BP`` of eqs. 5.39-5.41, 5.57-5.61, their norms and cosines, the
reconstruction errors of eq. 4.84 and the distances of the feedback matrices to ``W^+`` of fig. 5.9),
for every member at once: tensors ``(S, B, n)``, per-sample Jacobians ``(S, B, n_i, n_{i+1})``,
batched pseudo-inverses. Each quantity comes out as an ``(S, L - 1)`` tensor (one value per member
and hidden layer) instead of S lists of floats, so that the epoch means are formed on the device.
:func:`_norms_and_cosines` forms all the signals' norms and the cosines of
:data:`~tpdynamics.training.diagnostics.COSINE_PAIRS` of a layer on one stack of the six signals (some
sixteen operations instead of some hundred), with ``batch_cosine`` 's formula.
"""
from __future__ import annotations

import torch

from ..layers import OriginalFeedback
from ..training.diagnostics import COSINE_PAIRS
from .network import EnsembleNetwork


def _finite_or_identity(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` with the members that went non-finite replaced by the identity (a batched SVD fails on them;
    those members have stopped, and nothing of theirs is read)."""
    finite = torch.isfinite(weight).flatten(1).all(1).view(-1, 1, 1)
    eye = torch.eye(weight.shape[-2], weight.shape[-1], dtype=weight.dtype, device=weight.device)
    return torch.where(finite, weight, eye)


def pseudo_inverses(network: EnsembleNetwork) -> list:
    """``W_{i+1}^+`` of every member for ``i = 1..L-1`` (entry ``i - 1``), ``(S, n_i, n_{i+1})``."""
    return [torch.linalg.pinv(_finite_or_identity(network.weights[i])) for i in range(1, network.depth)]


def feedback_jacobian(network: EnsembleNetwork, owner: int, h: torch.Tensor) -> torch.Tensor:
    """``J_{g_{owner-1}}`` at ``h`` (S, B, n_owner): ``(S, B, n_{owner-1}, n_owner)`` (the forms' ``jacobian``)."""
    matrix = network.feedback[owner - 1].unsqueeze(1)
    if network.kinds[owner - 1] is OriginalFeedback:
        t = network.feedback_nonlinearities[owner - 1]
        return t.derivative(h @ network.feedback[owner - 1].mT).unsqueeze(-1) * matrix
    return matrix * network.nonlinearities[owner - 1].inverse_derivative(h).unsqueeze(-2)


def pseudo_inverse_distance(network: EnsembleNetwork, pinvs) -> torch.Tensor:
    """``||M_i - W_{i+1}^+||_F / ||W_{i+1}^+||_F`` per member and hidden layer, ``(S, L - 1)`` (fig. 5.9)."""
    out = []
    for i in range(1, network.depth):
        matrix, pinv = network.feedback[i], pinvs[i - 1]
        if matrix is None:
            out.append(torch.full((network.size,), float("nan"), dtype=network.dtype, device=network.device))
            continue
        out.append(torch.linalg.vector_norm(matrix - pinv, dim=(-2, -1)) / torch.linalg.vector_norm(pinv, dim=(-2, -1)))
    return torch.stack(out, -1)


def target_propagation_diagnostics(network: EnsembleNetwork, activations, derivatives, targets, error,
                                   eta_hat: torch.Tensor) -> dict:
    """Batched ``TargetPropagationRule._diagnose``: name -> ``(S, L - 1)`` tensor, in the order of ``StepDiagnostics.flat``.

    Parameters
    ----------
    activations, derivatives : list of Tensor
        Of the batched forward pass (``derivatives[i]`` the slope of ``s_i``), shapes ``(S, B, n_i)``.
    targets : list
        ``[None, hat h_1, ..., hat h_L]``, every hidden layer with a target.
    error : Tensor, shape (S, B, n_L)
    eta_hat : Tensor, shape (S, 1, 1)
    """
    L = network.depth
    hidden = range(1, L)
    pinvs = pseudo_inverses(network)
    jacobians = {k: feedback_jacobian(network, k + 1, activations[k + 1]) for k in hidden}  # J_{g_k} at h_{k+1}
    # e_TP (eqs. 5.39/5.57): [prod J_g] e_L
    propagated = [None] * L
    propagated[L - 1] = error
    for k in range(L - 1, 0, -1):
        propagated[k - 1] = (jacobians[k] @ propagated[k].unsqueeze(-1)).squeeze(-1)
    e_tp = [-eta_hat * p for p in propagated[: L - 1]]
    # e_rec (eqs. 5.40/5.58): r_i + J_{g_i} e_rec_{i+1}
    residuals = [network.feedback_forward(i + 1, activations[i + 1])[0] - activations[i] for i in hidden]
    e_rec = [None] * (L - 1)
    for i in range(L - 1, 0, -1):
        value = residuals[i - 1]
        if i < L - 1:
            value = value + (jacobians[i] @ e_rec[i].unsqueeze(-1)).squeeze(-1)
        e_rec[i - 1] = value
    signal = [targets[i] - activations[i] for i in hidden]
    e_approx = [s - t for s, t in zip(signal, e_tp)]
    # e_GN, factorised (eq. 5.60), and e_BP (eq. 5.61)
    e_gn, e_bp = [None] * (L - 1), [None] * (L - 1)
    gn, bp = error, error
    for i in range(L - 1, 0, -1):
        gn = (gn / derivatives[i + 1]) @ pinvs[i - 1].mT
        bp = (derivatives[i + 1] * bp) @ network.weights[i]
        e_gn[i - 1], e_bp[i - 1] = -eta_hat * gn, -eta_hat * bp
    signals = {"signal": signal, "e_tp": e_tp, "e_rec": e_rec, "e_approx": e_approx, "e_gn": e_gn, "e_bp": e_bp}
    out = _norms_and_cosines(signals)
    out["reconstruction_error"] = torch.stack([r.norm(dim=-1).mean(-1) for r in residuals], -1)
    out["pseudo_inverse_distance"] = pseudo_inverse_distance(network, pinvs)
    return out


def _norms_and_cosines(signals: dict) -> dict:
    """``{name}_norm`` and the cosines of ``COSINE_PAIRS``, each ``(S, L - 1)``: batch means of ``StepDiagnostics``.

    Per hidden layer the six signals ``(S, B, n_i)`` are stacked once; the norms, dot products and the
    zero-vector guard of :func:`~tpdynamics.training.diagnostics.batch_cosine` (cosine 0 with a zero vector)
    are then one operation each for all names and pairs.
    """
    names = list(signals)
    norm_means, cosine_means = [], []
    for layer in zip(*signals.values()):
        stacked = torch.stack(layer)                       # (6, S, B, n_i)
        first, second = _pair_indices(tuple(names), stacked.device)
        norms = stacked.norm(dim=-1)                       # (6, S, B)
        norm_means.append(norms.mean(-1))
        dot = (stacked.index_select(0, first) * stacked.index_select(0, second)).sum(-1)  # (pairs, S, B)
        product = norms.index_select(0, first) * norms.index_select(0, second)
        positive = product > 0
        cosine = torch.where(positive, dot / torch.where(positive, product, 1.0), 0.0)
        cosine_means.append(cosine.mean(-1))
    norm_means, cosine_means = torch.stack(norm_means, -1), torch.stack(cosine_means, -1)  # (names | pairs, S, L - 1)
    out = {f"{name}_norm": norm_means[k] for k, name in enumerate(names)}
    out.update({key: cosine_means[k] for k, (_, _, key) in enumerate(COSINE_PAIRS)})
    return out


_PAIR_INDICES: dict = {}


def _pair_indices(names: tuple, device) -> tuple:
    """Positions in ``names`` of the first and second signal of each of ``COSINE_PAIRS`` (index tensors, kept)."""
    key = (names, str(device))
    if key not in _PAIR_INDICES:
        _PAIR_INDICES[key] = tuple(torch.tensor([names.index(pair[k]) for pair in COSINE_PAIRS], device=device)
                                   for k in (0, 1))
    return _PAIR_INDICES[key]
