"""The thesis's experimental settings and hyper-parameters, as data (chapter 5 figure captions).

Each :class:`ThesisPreset` is one experiment: architecture, mini-batch size, batches per epoch,
the output target step ``eta_hat``, the Sherman–Morrison threshold ``epsilon``, the weight decay
``lambda`` and the initial learning rates found by the thesis's grid search, per method. All
learning rates decay linearly to ``eta_init / 5`` over the epochs (every caption says so).

Backward learning rates are not printed in the thesis; the values here are those of its toolbox
(``experiments/Combined_toy_example_final.py`` of AlexanderMeulemans/PyProp): TP-AI 0.08,
DTP-AI 0.05, original TP and DTP 0.01. The randomized variants use the same values.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..validation import unknown_names_message
from .rules import HYPERPARAMETERS, LEARNING_RULES, LearningRule

_AI_BACKWARD = {"tp-ai": 0.08, "rtp-ai": 0.08, "dtp-ai": 0.05, "rdtp-ai": 0.05,
                "tp-orig": 0.01, "rtp-orig": 0.01, "dtp-orig": 0.01, "rdtp-orig": 0.01}


@dataclass(frozen=True)
class ThesisPreset:
    """One experiment of chapter 5.

    Attributes
    ----------
    name, source : str
        Key and where in the thesis the numbers come from.
    layers : tuple of int
        ``(n_0, ..., n_L)``.
    batch_size, batches_per_epoch, epochs, seeds : int
        Training schedule and the number of random runs averaged in the figure.
    eta_hat, epsilon, lambda_ : float
        Output target step, Sherman–Morrison threshold, backward weight decay.
    eta, eta_backward : mapping
        Initial forward / backward learning rate per method name.
    task : str
        ``student-teacher`` or a toy case.
    """

    name: str
    source: str
    layers: tuple
    batch_size: int
    batches_per_epoch: int
    epochs: int
    seeds: int
    eta: Mapping = field(default_factory=dict)
    eta_backward: Mapping = field(default_factory=dict)
    eta_hat: float = 0.1
    epsilon: float = 0.5
    lambda_: float = 0.0
    task: str = "student-teacher"


THESIS_PRESETS: dict[str, ThesisPreset] = {p.name: p for p in (
    ThesisPreset("5.1.3", "section 5.1.3, figure 5.7 (exact inverses; 7 runs kept of 10)", (6, 6, 6), 1, 2000, 60, 7,
                 eta={"tp-ei": 0.01, "rtp-ei": 0.01, "rmtp-ei": 0.0005, "bp": 0.001, "bp-fixed": 0.001}),
    ThesisPreset("5.2.2", "section 5.2.2, figures 5.14-5.15 (equal layers, one hidden layer)", (6, 6, 6), 32, 60, 60,
                 15, eta={"tp-ai": 0.09, "rtp-ai": 0.09, "dtp-ai": 0.1, "rdtp-ai": 0.1, "tp-orig": 0.01,
                          "rtp-orig": 0.01, "dtp-orig": 0.1, "rdtp-orig": 0.1, "bp": 0.01, "bp-fixed": 0.01},
                 eta_backward=_AI_BACKWARD),
    ThesisPreset("5.2.2-contracting", "section 5.2.2, figures 5.18-5.19 (contracting output layer)", (6, 6, 4), 32,
                 60, 60, 15, eta={"tp-ai": 0.09, "rtp-ai": 0.09, "dtp-ai": 0.1, "rdtp-ai": 0.1, "dtp-orig": 0.1,
                                  "rdtp-orig": 0.1, "tp-orig": 0.005, "rtp-orig": 0.005, "bp": 0.05,
                                  "bp-fixed": 0.05},
                 eta_backward=_AI_BACKWARD),
    # The toolbox's 4-hidden-layer script uses one rate for forward and backward weights (1e-4). The
    # one-hidden-layer backward rate 0.08 diverges here in the first epoch (10 of 10 runs): gradient
    # descent on the inverse loss needs eta_b sigma_max(W)^2 < 2, and these students start at sigma_max 6-9.
    ThesisPreset("5.2.2-deep", "section 5.2.2, figure 5.13 (4 hidden layers; a single run)", (6,) * 6, 32, 120, 60, 1,
                 eta={"tp-ai": 1e-4, "rtp-ai": 1e-4, "bp": 5e-6, "bp-fixed": 5e-6},
                 eta_backward={"tp-ai": 1e-4, "rtp-ai": 1e-4}),
    ThesisPreset("toy-linear", "section 5.1.1, figure 5.2 (TP: eta_hat = 0.8 with eta = 1; BP: eta = 0.3)", (1, 2, 2),
                 1, 1, 20, 1, eta={"tp-ei": 1.0, "rtp-ei": 1.0, "rmtp-ei": 1.0, "bp": 0.3}, eta_hat=0.8,
                 task="toy-linear"),
    ThesisPreset("toy-leaky-relu", "section 5.1.1, figures 5.3-5.4 (TP and modified TP: eta_hat = 1, eta = 1; "
                 "BP: eta = 0.5)", (1, 2, 2), 1, 1, 20, 1, eta={"tp-ei": 1.0, "rtp-ei": 1.0, "rmtp-ei": 1.0, "bp": 0.5},
                 eta_hat=1.0, task="toy-leaky-relu"),
)}


def home_preset(method) -> str:
    """The experiment a method belongs to: 5.1.3 for the exact-inverse rules and BP, 5.2.2 for the rest."""
    cls = LEARNING_RULES.get(method)
    return "5.1.3" if cls.sherman_morrison or cls.name in ("bp", "bp-fixed") else "5.2.2"


def resolve_hyperparameters(method, preset: str | None = None, **overrides) -> dict:
    """The hyper-parameters a method runs with: thesis values, then ``overrides`` (``None`` values ignored).

    Parameters
    ----------
    method : str or LearningRule subclass
    preset : str, optional
        Key of :data:`THESIS_PRESETS`; default :func:`home_preset`. A method without a rate in the
        preset keeps its own default (its class's ``defaults``, from its home experiment). A method
        that cannot use the preset's batch size (Sherman–Morrison rules need 1, batch normalisation
        at least 2) takes its home batch size with as many batches as keep the samples per epoch.
    overrides
        ``eta``, ``eta_hat``, ``eta_backward``, ``lambda_``, ``epsilon``, ``noise_std``,
        ``batch_size``, ``batches_per_epoch``.

    Returns
    -------
    dict
        The rule's keyword arguments plus ``batch_size`` and ``batches_per_epoch``.
    """
    cls: type[LearningRule] = LEARNING_RULES.get(method)
    valid = tuple(HYPERPARAMETERS) + ("batch_size", "batches_per_epoch")
    unknown = [name for name in overrides if name not in valid]
    if unknown:
        raise TypeError(unknown_names_message("resolve_hyperparameters", "override", unknown, valid))
    key = preset or home_preset(cls)
    if key not in THESIS_PRESETS:
        raise ValueError(f"preset={key!r} is not valid; use one of {', '.join(THESIS_PRESETS)}.")
    p = THESIS_PRESETS[key]
    out = {k: v for k, v in cls.defaults.items()}
    if cls.name in p.eta:
        out["eta"] = p.eta[cls.name]
    if cls.name in p.eta_backward and "eta_backward" in cls.parameters:
        out["eta_backward"] = p.eta_backward[cls.name]
    for name in ("eta_hat", "epsilon", "lambda_"):
        if name in cls.parameters:
            out[name] = getattr(p, name)
    batch_size, batches = p.batch_size, p.batches_per_epoch
    try:
        cls.check_batch_size(batch_size)
    except ValueError:
        home = THESIS_PRESETS[home_preset(cls)]
        batch_size = home.batch_size if home.batch_size != p.batch_size else (1 if cls.sherman_morrison else 32)
        batches = max(1, math.ceil(p.batch_size * p.batches_per_epoch / batch_size))
    out["batch_size"], out["batches_per_epoch"] = batch_size, batches
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in cls.parameters and name not in ("batch_size", "batches_per_epoch"):
            continue  # an option for other methods of a comparison; it does not apply to this one
        out[name] = value
    return out
