"""Figure 5.5: the Sherman–Morrison denominator ``|1 + d|`` against ``sigma_min`` of the updated matrix."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

import tpdynamics as tp

from ..base import EXPERIMENTS, Claim, Experiment, Summary


@EXPERIMENTS.register("fig5.5-sherman-morrison")
class ShermanMorrisonCorrelation(Experiment):
    """Figure 5.5: ``|1 + d|`` of :func:`~tpdynamics.robust_sherman_morrison` against ``sigma_min`` of the update."""

    title = "Sherman–Morrison denominator vs smallest singular value, plain and robust (eps = 0.1)"
    reference = "figure 5.5, section 5.1.2"
    thesis_says = ("\"For samples with |1+d| < 0.1 (the samples for which the robust Sherman-Morrison update would "
                   "threshold the denominator), a Pearson correlation coefficient of rho = 0.80 was measured with "
                   "sigma_min.\" 20000 trials, W Gaussian with sigma_min sigma_max > 0.4, u and v Gaussian; with the "
                   "robust update (eps = 0.1) \"sigma_min of the updated matrix is lower bounded\". The toolbox's "
                   "figure_5_5.py: n = 5, W = 5 x robust Gaussian, u, v = 0.5 x Gaussian, rho over |1+d| < 0.3.")
    #: The thesis's toolbox, figure_scripts/figure_5_5.py: n = 5, W = 5 x robust Gaussian, u, v = 0.5 x Gaussian,
    #: Pearson correlation over the trials with |1 + d| < 0.3 (np.corrcoef), 20000 trials. ``package`` is the
    #: draw this experiment used before (n = 6, unscaled W, u, v), kept beside it.
    full = {"trials": 20000, "n": 5, "w_scale": 5.0, "uv_scale": 0.5, "epsilon": 0.1, "threshold": 0.4,
            "clip_text": 0.1, "clip_script": 0.3, "package_trials": 20000, "package_n": 6}
    quick = {**full, "trials": 6000, "package_trials": 1000}
    #: Each seed is one 20000-trial draw, the size of the thesis's statistic: their spread is its sampling spread.
    default_seeds = 5
    full_slot_seconds = 7.7  # 3 December 2026
    quick_seeds = 1

    @staticmethod
    def _trials(settings, trials: int, n: int, w_scale: float, uv_scale: float, generator) -> dict:
        eps = settings["epsilon"]
        denominators, plain, robust = [], [], []
        for _ in range(trials):
            w = w_scale * tp.robust_gaussian_matrix(n, n, threshold=settings["threshold"], generator=generator)
            u = uv_scale * torch.randn(n, generator=generator, dtype=torch.float64)
            v = uv_scale * torch.randn(n, generator=generator, dtype=torch.float64)
            w_inv = torch.linalg.inv(w)
            new_w, _, record = tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=eps)
            denominators.append(abs(record.denominator))
            plain.append(float(torch.linalg.svdvals(w + torch.outer(u, v)).min()))
            robust.append(float(torch.linalg.svdvals(new_w).min()))
        return {"abs_denominator": denominators, "sigma_min_plain": plain, "sigma_min_robust": robust}

    def run_task(self, settings, task):
        g = tp.make_generator(1000 + task["seed"])
        out = self._trials(settings, settings["trials"], settings["n"], settings["w_scale"], settings["uv_scale"], g)
        if task["seed"] == 0:  # the earlier draw, once
            out["package"] = self._trials(settings, settings["package_trials"], settings["package_n"], 1.0, 1.0,
                                          tp.make_generator(2000))
        return out

    @staticmethod
    def pearson(d, sigma, clip: float) -> dict:
        """Pearson's rho of ``|1+d|`` and ``sigma_min`` over the trials with ``|1+d| < clip``, with the 95 % Fisher-z
        interval (``rho = tanh(atanh r +- 1.96 / sqrt(m - 3))``)."""
        small = d < clip
        m = int(small.sum())
        if m < 4:
            return {"clip": clip, "trials": m, "rho": float("nan"), "low": float("nan"), "high": float("nan")}
        rho = float(stats.pearsonr(d[small], sigma[small])[0])
        half = 1.959963984540054 / np.sqrt(m - 3)
        return {"clip": clip, "trials": m, "rho": rho, "low": float(np.tanh(np.arctanh(rho) - half)),
                "high": float(np.tanh(np.arctanh(rho) + half))}

    def summarize(self, settings, results):
        d = np.concatenate([r["abs_denominator"] for r in results])
        plain = np.concatenate([r["sigma_min_plain"] for r in results])
        robust = np.concatenate([r["sigma_min_robust"] for r in results])
        text, script = (self.pearson(d, plain, settings[k]) for k in ("clip_text", "clip_script"))
        per_draw = [self.pearson(np.asarray(r["abs_denominator"]), np.asarray(r["sigma_min_plain"]),
                                 settings["clip_script"]) for r in results]
        package = self.pearson(np.asarray(results[0]["package"]["abs_denominator"]),
                               np.asarray(results[0]["package"]["sigma_min_plain"]), settings["clip_text"])
        # the thesis's 0.80 is one 20000-trial draw: compare it with the spread of that statistic around the pooled
        # value, tanh(atanh rho +- 1.96 sqrt(1/(m - 3) + 1/(M - 3))) with m trials below the clip per draw, M pooled
        m = float(np.mean([p["trials"] for p in per_draw]))
        spread = 1.959963984540054 * np.sqrt(1 / max(m - 3, 1) + 1 / max(script["trials"] - 3, 1))
        predicted = [float(np.tanh(np.arctanh(script["rho"]) + k * spread)) for k in (-1, 1)]
        clipped = d < settings["epsilon"]
        data = {"trials": int(d.size), "settings": "toolbox figure_5_5.py: n = 5, W = 5 x robust Gaussian, u, v = "
                "0.5 x Gaussian", "pearson_text_clip": text, "pearson_script_clip": script,
                "pearson_all": float(stats.pearsonr(d, plain)[0]), "package_draw": package,
                "pearson_script_clip_per_draw": per_draw, "one_draw_range": predicted,
                "min_sigma_min_plain": float(plain.min()), "min_sigma_min_robust": float(robust.min()),
                "min_sigma_min_robust_clipped": float(robust[clipped].min()) if clipped.any() else None,
                "min_sigma_min_plain_clipped": float(plain[clipped].min()) if clipped.any() else None}

        def fmt(p):
            return f"rho = {p['rho']:.3f} [{p['low']:.2f}, {p['high']:.2f}] over {p['trials']} trials with |1+d| < " \
                   f"{p['clip']:g}"

        inside = bool(predicted[0] <= 0.80 <= predicted[1])
        draws = ", ".join(f"{p['rho']:.2f}" for p in per_draw)
        claims = [
            Claim("|1+d| \"correlates well\" with sigma_min(W + u v^T) over the trials with small |1+d| "
                  "(qualitative).",
                  f"toolbox settings (n = 5, W x 5, u, v x 0.5; {d.size} trials): {fmt(script)} (the script's clip), "
                  f"{fmt(text)} (the text's); 95 % Fisher-z intervals. Criterion: rho > 0.4 over the script's clip.",
                  holds=bool(script["rho"] > 0.4), values={"script_clip": script, "text_clip": text}),
            Claim("rho = 0.80 between |1+d| and sigma_min (the thesis's number; the text says \"|1+d| < 0.1\", its "
                  "figure script correlates the trials with |1+d| < 0.3).",
                  f"pooled over {len(results)} draws of {settings['trials']} trials at the toolbox's settings: "
                  f"{fmt(script)}, {fmt(text)}; the script's statistic per draw: {draws}, so one draw of the "
                  f"thesis's size ({m:.0f} trials below the clip) lands in [{predicted[0]:.2f}, {predicted[1]:.2f}] "
                  f"(95 %); with the package's earlier draw (n = 6, unscaled standard Gaussian W, u, v): "
                  f"{fmt(package)}. Criterion: 0.80 inside the 95 % range of one draw's statistic.",
                  holds=inside, robust=False, values={"script_clip": script, "text_clip": text, "package": package,
                                                      "per_draw": per_draw, "one_draw_range": predicted},
                  cause=("a setting we differed in, now matched: the toolbox draws n = 5, W = 5 x robust Gaussian, "
                         "u, v = 0.5 x Gaussian and correlates over |1+d| < 0.3; the earlier 0.57 came from n = 6 "
                         "unscaled draws (measured beside it)" + ("" if inside else
                                                                  "; the thesis's 0.80 still lies outside the "
                                                                  "spread of one draw's statistic"))),
            Claim("With the robust update (eps = 0.1) sigma_min of the updated matrix is lower bounded.",
                  f"min sigma_min over all trials: plain {plain.min():.2e}, robust {robust.min():.2e}; "
                  f"{int((plain < 1e-3).sum())} plain and {int((robust < 1e-3).sum())} robust updates below 1e-3.",
                  holds=bool((robust >= 1e-3).all() and robust.min() > plain.min()),
                  values={"plain": float(plain.min()), "robust": float(robust.min())}),
        ]
        fig = Figure(figsize=(10, 4), layout="constrained")
        a, b = fig.subplots(1, 2, sharey=True)
        for ax, sigma, label in ((a, plain, "(a) W + u v^T"), (b, robust, f"(b) robust, eps = {settings['epsilon']}")):
            ax.loglog(d, sigma, ".", ms=1.5, alpha=0.5)
            ax.axvline(settings["clip_text"], color="crimson", lw=0.8)
            ax.axvline(settings["clip_script"], color="crimson", lw=0.8, ls="--")
            ax.set_xlabel("|1 + d|")
            ax.set_title(label)
        a.set_ylabel(r"$\sigma_{min}$ of the updated matrix")
        fig.suptitle(f"toolbox settings: n = 5, W = 5 x robust Gaussian, u, v = 0.5 x Gaussian; {fmt(script)}",
                     fontsize=9)
        return Summary(data=data, claims=claims, figure=fig)
