"""Figure 5.12: when does the pseudo-inverse of ``J_1 = dh_L/dh_1`` factorise over the layers (Lemma 4.8)?

For a network ``h_1 -> h_2 -> h_3`` (two hidden layers and the output) with layer Jacobians ``D_{s_k} W_k``,

    ``J_1 = D_{s_3} W_3 D_{s_2} W_2``  and its factorised pseudo-inverse  ``J_1^f = W_2^+ D_{s_2}^+ W_3^+ D_{s_3}^+``

(eq. 5.48). Lemma 4.8: ``J_i^+ = J_i^f`` for all ``i`` if and only if ``n_L = ... = n_2 <= n_1`` (with full-rank
``W_k`` and ``D_{s_k}``). The thesis measures ``||J_1^f e_L - J_1^+ e_L||_2`` for Gaussian ``e_L``, averaged over a
mini-batch of 8, in 1000 repetitions, with ``W_k`` and the diagonal ``D_{s_k}`` random Gaussian with
``sigma_min sigma_max > 0.4``. Only ``J_1`` is tested: ``J_2 = D_{s_3} W_3`` factorises in all three
architectures (``W_3`` has full row rank).
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

import tpdynamics as tp

from ..base import EXPERIMENTS, Claim, Experiment, Summary

#: Architectures of figure 5.12: (label, (n_1, n_2, n_3), description).
ARCHITECTURES = (("a", (5, 5, 5), "equal sizes"), ("b", (7, 5, 5), "larger first hidden layer"),
                 ("c", (5, 5, 3), "smaller output layer"))


def robust_gaussian_diagonal(n: int, *, threshold: float = 0.4, generator=None, max_tries: int = 1000) -> torch.Tensor:
    """Diagonal ``D = diag(d)``, ``d ~ N(0, I_n)``, redrawn until ``sigma_min sigma_max = min|d| max|d|`` exceeds
    ``threshold`` (the criterion of figure 5.12)."""
    for _ in range(max_tries):
        d = torch.randn(n, generator=generator, dtype=torch.float64)
        if tp.singular_value_product(torch.diag(d)) > threshold:
            return torch.diag(d)
    raise tp.SingularWeightError(f"no diagonal matrix with sigma_min sigma_max > {threshold} in {max_tries} draws")


def total_jacobian(weights, slopes) -> torch.Tensor:
    """``J_1 = D_{s_L} W_L ... D_{s_2} W_2`` (eq. 5.35) from ``weights = [W_2, ..., W_L]`` and
    ``slopes = [D_{s_2}, ..., D_{s_L}]``."""
    jacobian = None
    for w, d in zip(weights, slopes):
        block = d @ w
        jacobian = block if jacobian is None else block @ jacobian
    return jacobian


def factorized_pseudo_inverse(weights, slopes) -> torch.Tensor:
    """``J_1^f = W_2^+ D_{s_2}^+ W_3^+ D_{s_3}^+ ... W_L^+ D_{s_L}^+`` (eq. 5.48)."""
    out = None
    for w, d in zip(weights, slopes):
        block = torch.linalg.pinv(w) @ torch.linalg.pinv(d)
        out = block if out is None else out @ block
    return out


@EXPERIMENTS.register("fig5.12-factorisation")
class PseudoInverseFactorisation(Experiment):
    """Figure 5.12: ``||J_1^f e - J_1^+ e||`` for the three :data:`ARCHITECTURES` (see the module docstring)."""

    title = "Factorised vs true pseudo-inverse of the network Jacobian for three architectures (Lemma 4.8)"
    reference = "figure 5.12, section 5.2.1 (Lemma 4.8)"
    thesis_says = (
        "1000 repetitions, e_L random Gaussian, \"each result is averaged over a mini-batch size of 8\", W_i and "
        "diagonal D_si Gaussian with sigma_min sigma_max > 0.4, two hidden layers and one output layer. (a) n1 = n2 = "
        "n3 = 5: \"the distance ||J^f e_L - J^+ e_L||_2 is indeed approximately zero\" (\"deviations ... due to the "
        "limited accuracy of the inverse matrix computations\"); (b) n1 = 7, n2 = n3 = 5: \"approximately zero and "
        "comparable to\" (a); (c) n1 = n2 = 5, n3 = 3: \"not approximately zero anymore and ... for many random cases, "
        "the distance is actually significantly big\".")
    full = {"repetitions": 1000, "batch_size": 8, "threshold": 0.4}
    quick = {"repetitions": 300, "batch_size": 8, "threshold": 0.4}
    default_seeds = 1
    quick_seeds = 1

    def run_task(self, settings, task):
        g = tp.make_generator(51_200 + task["seed"])
        out = {}
        for label, (n1, n2, n3), _ in ARCHITECTURES:
            distances, norms = [], []
            for _ in range(settings["repetitions"]):
                weights = [tp.robust_gaussian_matrix(n2, n1, threshold=settings["threshold"], generator=g),
                           tp.robust_gaussian_matrix(n3, n2, threshold=settings["threshold"], generator=g)]
                slopes = [robust_gaussian_diagonal(n2, threshold=settings["threshold"], generator=g),
                          robust_gaussian_diagonal(n3, threshold=settings["threshold"], generator=g)]
                pinv = torch.linalg.pinv(total_jacobian(weights, slopes))
                factorized = factorized_pseudo_inverse(weights, slopes)
                e = torch.randn(settings["batch_size"], n3, generator=g, dtype=torch.float64)
                distances.append(float(((e @ (factorized - pinv).T).norm(dim=1)).mean()))
                norms.append(float((e @ pinv.T).norm(dim=1).mean()))
            out[label] = {"distance": distances, "norm_pinv_e": norms}
        return out

    def summarize(self, settings, results):
        data, stats = {"architectures": {}}, {}
        for label, sizes, description in ARCHITECTURES:
            dist = np.concatenate([r[label]["distance"] for r in results])
            norm = np.concatenate([r[label]["norm_pinv_e"] for r in results])
            stats[label] = {"median": float(np.median(dist)), "mean": float(dist.mean()), "max": float(dist.max()),
                            "p95": float(np.percentile(dist, 95)), "median_norm_pinv_e": float(np.median(norm)),
                            "median_relative": float(np.median(dist / norm)),
                            "fraction_above_0.1": float((dist > 0.1).mean()), "repetitions": int(dist.size)}
            data["architectures"][label] = {"sizes_n1_n2_n3": list(sizes), "description": description,
                                            "distance": stats[label], "distances": dist.tolist()}
        a, b, c = stats["a"], stats["b"], stats["c"]
        claims = [
            Claim("(a) n1 = n2 = n3 = 5: ||J^f e - J^+ e|| is approximately zero (up to the accuracy of the inverses).",
                  f"median {a['median']:.1e}, max {a['max']:.1e} over {a['repetitions']} repetitions (median "
                  f"||J^+ e|| = {a['median_norm_pinv_e']:.2g}). Criterion: max below 1e-8.",
                  holds=bool(a["max"] < 1e-8), values=a),
            Claim("(b) n1 = 7 > n2 = n3 = 5: approximately zero, comparable to (a) (Lemma 4.8 allows n2 <= n1).",
                  f"median {b['median']:.1e}, max {b['max']:.1e} over {b['repetitions']} repetitions. Criterion: max "
                  "below 1e-8.",
                  holds=bool(b["max"] < 1e-8), values=b),
            Claim("(c) n1 = n2 = 5 > n3 = 3: not approximately zero; for many random cases significantly big "
                  "(Lemma 4.8's constraints cannot be relaxed).",
                  f"median {c['median']:.3g} (relative to ||J^+ e||: {c['median_relative']:.2f}), 95th percentile "
                  f"{c['p95']:.3g}, {100 * c['fraction_above_0.1']:.0f} % of repetitions above 0.1, against a maximum "
                  f"of {max(a['max'], b['max']):.1e} in (a) and (b).",
                  holds=bool(c["median"] > 1e3 * max(a["max"], b["max"]) and c["fraction_above_0.1"] > 0.5), values=c),
        ]
        fig = Figure(figsize=(14, 4), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, (label, sizes, description) in zip(axes, ARCHITECTURES):
            dist = np.asarray(data["architectures"][label]["distances"])
            ax.hist(np.log10(np.maximum(dist, 1e-18)), bins=60, color="tab:blue")
            ax.set_title(f"({label}) n1, n2, n3 = {', '.join(map(str, sizes))}: {description}", fontsize=10)
            ax.set_xlabel(r"$\log_{10}\, \|J^f_1 e_L - J^{\dagger}_1 e_L\|_2$ (mean over a batch of "
                          f"{settings['batch_size']})")
        axes[0].set_ylabel(f"count (of {stats['a']['repetitions']} repetitions)")
        fig.suptitle("Lemma 4.8: factorised vs true pseudo-inverse of J_1 = D3 W3 D2 W2")
        return Summary(data=data, claims=claims, figure=fig)
