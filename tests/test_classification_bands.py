"""Accuracy bands: every rule of the results table and the two-phase network must still learn digits and MNIST-1D.

CI runs these (it installs the ``data`` extra); they skip only where scikit-learn / mnist1d are missing.

Configuration (``_CONFIG``, ``_EPOCHS``): the task presets of :mod:`tpdynamics.training.classification_presets`
(rates, batch 32, linear decay to 1/5), hidden layers 64-64 instead of 256-256, seeds 0 and 1; digits 2 epochs,
MNIST-1D 5 epochs with 2000 generated samples (``mnist1d:42,2000``: 1200 / 400 / 400) and its own tuned presets.
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
#: MNIST-1D at 2 epochs (its tuned presets): bands 0.08-0.22 over 16 seeds; 5 epochs raise those of bp, dtp-ai,
#: dtp-orig and two-phase to 0.20-0.25 (chance 0.1).
_EPOCHS = {"digits": 2, "mnist1d:42,2000": 5}
METHODS = ("bp", "fa", "tp-ai", "dtp-ai", "tp-orig", "dtp-orig", "two-phase")

# method -> (band, 16-seed mean, sd, min) of the final test accuracy
_BANDS = {
    # measured 2026-12-02 (tpdynamics 0.1.0, torch 2.13.0 CPU, float64); seeds 0, 1 gave the means in the comments
    "digits": {"bp": (0.81, 0.8547, 0.0193, 0.8167),           # seeds 0, 1: 0.8625
               "fa": (0.12, 0.2814, 0.0732, 0.1861),           # 0.2292
               "tp-ai": (0.74, 0.8627, 0.0578, 0.6861),        # 0.8681
               "dtp-ai": (0.68, 0.7401, 0.0252, 0.7056),       # 0.7250
               "tp-orig": (0.32, 0.5085, 0.0883, 0.2528),      # 0.5028
               "dtp-orig": (0.77, 0.8299, 0.0246, 0.7889),     # 0.8208
               "two-phase": (0.68, 0.7368, 0.0259, 0.7056)},   # 0.7278
    # MNIST-1D's own presets (tuned, classification_presets), 5 epochs, measured 2026-12-02 as above over seeds
    # 0..15. Still near chance at this size and budget: fa, tp-ai and tp-orig (bands 0.09-0.13), which catch a
    # rule that stops learning only weakly; bp, dtp-ai, dtp-orig and two-phase sit at 0.20-0.25.
    "mnist1d:42,2000": {"bp": (0.25, 0.3066, 0.025, 0.265),           # 0.295
                        "fa": (0.11, 0.1548, 0.0168, 0.13),           # 0.13
                        "tp-ai": (0.13, 0.1767, 0.0195, 0.145),       # 0.1763
                        "dtp-ai": (0.2, 0.2444, 0.0193, 0.205),       # 0.2437
                        "tp-orig": (0.09, 0.1222, 0.0137, 0.1),       # 0.1237
                        "dtp-orig": (0.21, 0.258, 0.0215, 0.215),     # 0.255
                        "two-phase": (0.2, 0.2427, 0.0184, 0.1925)},  # 0.2425
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
