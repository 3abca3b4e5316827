"""Accuracy bands: every rule of the results table and the two-phase network must still learn digits and MNIST-1D.

CI runs these (it installs the ``data`` extra); they skip only where scikit-learn / mnist1d are missing.

Configuration (``_CONFIG``, ``_EPOCHS``): the task presets of :mod:`tpdynamics.training.classification_presets`
(rates, batch 32, linear decay to 1/5), hidden layers 64-64 instead of 256-256, seeds 0 and 1; digits 5 epochs,
MNIST-1D 30 epochs with 2000 generated samples (``mnist1d:42,2000``: 1200 / 400 / 400) and its own tuned presets.
Durations: see the README (*Accuracy bands in CI*).

How the bands were measured: the same configuration trained on seeds 0..15 (16 seeds, each its own split
and initialisation; ``_BANDS`` lists the mean and standard deviation ``sd`` of the 16 final test accuracies,
and their minimum). A 2-seed mean has standard deviation ``sd / sqrt(2)``; the band is
``mean - 3 sd / sqrt(2)`` rounded down to 0.01, which a correct rule's 2-seed mean falls below with
probability about 0.1 % (normal approximation), while a rule that stops learning falls to chance (0.1).
The runs are deterministic, so on one platform the asserted means are the measured ones for seeds 0 and 1.
"""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("mnist1d")

from tpdynamics.training import ClassificationConfig, run_classification  # noqa: E402

_CONFIG = {"hidden": (64, 64), "seeds": (0, 1)}
#: Budgets long enough for every rule's band to sit clear of chance (0.1): digits at 2 epochs had fa at 0.12, MNIST-1D
#: at 5 epochs fa, tp-ai and tp-orig at 0.09-0.13 (measured over 16 seeds each).
_EPOCHS = {"digits": 5, "mnist1d:42,2000": 30}
METHODS = ("bp", "fa", "tp-ai", "dtp-ai", "tp-orig", "dtp-orig", "two-phase")

# method -> (band, 16-seed mean, sd, min) of the final test accuracy
_BANDS = {
    # measured 2026-12-02 (tpdynamics 0.1.0, torch 2.13.0 CPU, float64); the comments give seeds 0, 1's mean
    # digits, 5 epochs: tp-ai diverged in 1 of the 16 runs (seed 12, epoch 2; its last accuracy, 0.786, is in the
    # statistics); every band is at least 0.4 above chance (0.1)
    "digits": {"bp": (0.87, 0.9148, 0.0195, 0.875),                  # 0.9236
              "fa": (0.51, 0.601, 0.0386, 0.5389),                   # 0.5792
              "tp-ai": (0.82, 0.912, 0.0399, 0.7861),                # 0.9153 (seed 12 diverged)
              "dtp-ai": (0.81, 0.8535, 0.017, 0.8306),               # 0.8528
              "tp-orig": (0.73, 0.797, 0.0314, 0.7417),              # 0.7917
              "dtp-orig": (0.85, 0.9005, 0.0192, 0.8667),            # 0.9
              "two-phase": (0.81, 0.8523, 0.0175, 0.8278)},          # 0.8514
    # MNIST-1D's own presets (tuned, classification_presets), 30 epochs, seeds 0..15 as above: every band at least
    # 0.06 above chance (0.1), i.e. more than 3 standard deviations of a 2-seed mean; at 5 epochs fa, tp-ai and
    # tp-orig had bands of 0.09-0.13, which could not tell a rule that stops learning from one that learns
    "mnist1d:42,2000": {"bp": (0.36, 0.4114, 0.0197, 0.3775),        # 0.4163
                       "fa": (0.18, 0.2263, 0.0194, 0.2),            # 0.2162
                       "tp-ai": (0.19, 0.2364, 0.0213, 0.2075),      # 0.2175
                       "dtp-ai": (0.27, 0.3306, 0.0239, 0.295),      # 0.3237
                       "tp-orig": (0.16, 0.2219, 0.0272, 0.165),     # 0.2325
                       "dtp-orig": (0.27, 0.318, 0.0223, 0.275),     # 0.3137
                       "two-phase": (0.27, 0.3278, 0.0232, 0.285)},  # 0.3313
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TPDYNAMICS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("task", list(_BANDS))
def test_every_rule_stays_above_its_accuracy_band(task, cache):
    # one intra-op thread: these layers are small; on the shared 2-core machine at load 4 the pair took 187 s with
    # torch's default threads and 10 s (5.2 s + 4.5 s) with one
    result = run_classification(ClassificationConfig(methods=METHODS, task=task, epochs=_EPOCHS[task], **_CONFIG),
                                threads=1)
    below = {}
    for method in METHODS:
        r = result[method]
        assert r.n_failed == 0, f"{method} on {task}: {[run['message'] for run in r.runs]}"
        mean = r.final("test_accuracy")["mean"]
        band = _BANDS[task][method][0]
        if not mean >= band:
            below[method] = (round(mean, 4), band)
    assert not below, f"{task}: mean test accuracy over seeds 0, 1 below the band (measured, band): {below}"
