"""Training of the backward weights: learned inverses on white noise (Algorithm A.8) and original TP's
feedback on the forward activations (Algorithm A.9)."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from ...layers import LearnedInverseFeedback, OriginalFeedback
from ...network import LayeredNetwork
from ...validation import check_int, check_positive
from ..data import NoiseSource, WhiteNoise


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

