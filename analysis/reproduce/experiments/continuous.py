"""Chapter 6, tested: continuous learning against the discrete rules, and the predictions of section 6.8.

The thesis states these results in theory only ("Future work should experimentally validate the
performance and learning dynamics of these biologically plausible networks"); here they are measured
with :mod:`analysis.comparisons` on the same layer objects the discrete rules train.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from tpdynamics.statistics import POSITIVE, curve_intervals

from ...comparisons import learning_trajectories, section_6_8_predictions, update_alignment
from ...training_plots import band_label, legend_outside, loss_panel
from ..base import EXPERIMENTS, Claim, Experiment, Summary, fmt_ci


@EXPERIMENTS.register("ch6-update-alignment")
class UpdateAlignment(Experiment):
    """Eqs. 6.17-6.59: the updates over mu vs TP-EI / DTP-AI (:func:`~analysis.comparisons.update_alignment`)."""

    title = "Equilibrium weight updates / layer factor vs the discrete TP and DTP updates, over mu"
    reference = "eqs. 6.17-6.19, 6.35-6.36, 6.58-6.59"
    thesis_says = ("\"When this continuous weight update (6.19) [is compared] with the discrete weight update of target "
                   "propagation with exact inverses (4.12), it can be seen that both are equal, except from the layer "
                   "specific learning rate\" eta_i (mu/(1-mu))^(L+1-i); the two-phase update (6.35) is \"chosen to stay "
                   "close to the original difference target propagation method\"; in the multiplexed network (6.59) "
                   "\"the reconstruction errors have exactly cancelled out in the first order Taylor expansion\".")
    full = {"mus": [0.2, 0.1, 0.05, 0.025, 0.0125], "layers": [4, 4, 4, 4, 4], "batch": 8, "eta_hat": 0.01,
            "feedback_noise": 0.2}
    quick = {"mus": [0.2, 0.1, 0.05, 0.025], "layers": [4, 4, 4, 4], "batch": 3, "eta_hat": 0.01, "feedback_noise": 0.2}

    def tasks(self, settings, seeds):
        return [{"seed": 0, "feedback_noise": settings["feedback_noise"]}, {"seed": 0, "feedback_noise": 0.0}]

    def run_task(self, settings, task):
        result = update_alignment(mus=tuple(settings["mus"]), layers=tuple(settings["layers"]), batch=settings["batch"],
                                  eta_hat=settings["eta_hat"], feedback_noise=task["feedback_noise"], seed=task["seed"])
        return {**result.to_dict(), "feedback_noise": task["feedback_noise"]}

    def summarize(self, settings, results):
        noisy, exact = results
        claims = []
        for mode, rule in (("single_phase", "tp-ei"), ("two_phase", "dtp-ai")):
            rows = [r for r in noisy["rows"] if r["mode"] == mode]
            smallest = min(settings["mus"])
            err = max(r["relative_error"] for r in rows if r["mu"] == smallest)
            cos = min(r["cosine"] for r in rows if r["mu"] == smallest)
            slope = noisy["slopes"][mode]
            claims.append(Claim(
                f"The {mode} update divided by its layer factor is the {rule} update in the limit mu -> 0.",
                f"relative error vs mu: log-log slope {slope:.2f}; at mu = {smallest}: max relative error {err:.2e}, "
                f"min cosine {cos:.6f} (L = {len(settings['layers']) - 1}, eta_hat = {settings['eta_hat']}). "
                "Criterion: the error falls at least like mu^0.8 (convergence in the limit).",
                holds=bool(slope is not None and slope > 0.8),
                values={"slope": slope, "max_relative_error": err, "min_cosine": cos}))
        exact_err = max(r["relative_error"] for r in exact["rows"] if r["mode"] == "multiplexed")
        noisy_err = max(r["relative_error"] for r in noisy["rows"] if r["mode"] == "multiplexed")
        noisy_cos = min(r["cosine"] for r in noisy["rows"] if r["mode"] == "multiplexed")
        claims.append(Claim(
            "The multiplexed update (6.58) is the DTP update (no mu, no layer factor).",
            f"with Q = W^+ (perfect inverses): max relative error {exact_err:.1e}; with approximate inverses (relative "
            f"noise {settings['feedback_noise']}): max relative error {noisy_err:.2e}, min cosine {noisy_cos:.4f}"
            + (" — the multiplexed network evaluates g at the free backward pass hat h^f instead of the forward pass "
               "h, so the two differ where reconstruction errors move units across a leaky-ReLU kink."
               if noisy_err > 1e-6 else " (no unit crossed a kink: the piecewise-linear updates coincide)."),
            holds=bool(exact_err < 1e-8), values={"exact": exact_err, "approximate": noisy_err, "cosine": noisy_cos}))
        fig = Figure(figsize=(9, 4), layout="constrained")
        ax = fig.subplots()
        for mode in ("single_phase", "two_phase"):
            for layer in sorted({r["layer"] for r in noisy["rows"]}):
                pts = sorted((r["mu"], r["relative_error"]) for r in noisy["rows"]
                             if r["mode"] == mode and r["layer"] == layer)
                ax.loglog(*zip(*pts), "o-" if mode == "single_phase" else "s--", ms=3,
                          label=f"{mode} vs {'tp-ei' if mode == 'single_phase' else 'dtp-ai'}, layer {layer}")
        ax.axhline(noisy_err, color="gray", ls=":", label="multiplexed vs dtp-ai (approx. inverses; no mu)")
        ax.set_xlabel(r"$\mu$")
        ax.set_xticks(settings["mus"], [f"{m:g}" for m in settings["mus"]])
        ax.minorticks_off()
        ax.set_ylabel(r"relative error $\|\dot W_i / c_i - \Delta W_i\| / \|\Delta W_i\|$")
        legend_outside(ax, fontsize=7)
        return Summary(data={"approximate_inverses": noisy, "perfect_inverses": exact}, claims=claims, figure=fig)


@EXPERIMENTS.register("ch6-learning-trajectories")
class LearningTrajectories(Experiment):
    """Eq. 6.19: continuous learning vs discrete TP-EI steps (:func:`~analysis.comparisons.learning_trajectories`)."""

    title = "Continuous learning (weight ODE at equilibrium) vs discrete TP-EI steps, matched budgets"
    reference = "eq. 6.19 vs Alg. A.4, task of section 5.1.3"
    thesis_says = ("\"These weight dynamics can be seen as the continuous version of the discrete weight update rules "
                   "discussed in chapter 4.\" (after eq. 6.19). Student-teacher 6-6-6 of section 5.1.3: leaky ReLU 0.35, "
                   "linear output, batch 1, eta_hat = 0.1, eta = 0.01 for TP-EI.")
    full = {"steps": 2000, "eta": 0.01, "eta_hat": 0.1, "mu": 0.1, "record_every": 100, "n_test": 1000}
    quick = {"steps": 60, "eta": 0.01, "eta_hat": 0.1, "mu": 0.1, "record_every": 20, "n_test": 200}
    default_seeds = 7
    full_slot_seconds = 7.8  # 3 December 2026: the 7 seeds as one ensemble
    quick_seeds = 2

    def run_task(self, settings, task):
        """One seed: its continuous learner as a one-member ensemble, so that its numbers are those it gets in
        a batch (:meth:`run_batch`) whatever the batching (a resumed run, ``--no-ensemble``)."""
        return self.run_batch(settings, [task])[0]

    def batch_key(self, settings, task) -> str:
        """Every seed's slot runs with the others (:meth:`run_batch`)."""
        return "seeds"

    def run_batch(self, settings, tasks):
        """The slots' seeds in one :func:`~analysis.comparisons.learning_trajectories`: the continuous learners as
        one ensemble (a member's curve does not depend on the others), the discrete ones seed by seed."""
        seeds = [int(task["seed"]) for task in tasks]
        result = learning_trajectories(seeds=seeds, steps=settings["steps"], eta=settings["eta"],
                                       eta_hat=settings["eta_hat"], mu=settings["mu"],
                                       record_every=settings["record_every"], n_test=settings["n_test"])
        return [{"budget": result.budget, "continuous": result.curves["continuous"]["runs"][k],
                 "discrete": result.curves["discrete"]["runs"][k],
                 "diverged": {name: int(not all(math.isfinite(x) for x in result.curves[name]["runs"][k]))
                              for name in ("continuous", "discrete")}}
                for k in range(len(seeds))]

    def summarize(self, settings, results):
        budget = results[0]["budget"]
        curves, finals = {}, {}
        for name in ("continuous", "discrete"):
            runs = np.array([r[name] for r in results], dtype=float)
            curves[name] = runs
            finals[name] = runs[:, -1].tolist()
        diverged = {name: sum(r["diverged"][name] for r in results) for name in ("continuous", "discrete")}
        ratio = [c / d for c, d in zip(finals["continuous"], finals["discrete"])]
        initial = float(curves["discrete"][:, 0].mean())
        claims = [
            Claim("Continuous learning is the continuous version of the discrete TP update: with matched budgets the "
                  "two learners make the same progress.",
                  f"test loss {initial:.4g} -> continuous {fmt_ci(finals['continuous'], method=POSITIVE)}, discrete "
                  f"{fmt_ci(finals['discrete'], method=POSITIVE)}; ratio continuous/discrete "
                  f"{fmt_ci(ratio, method=POSITIVE)}; diverged runs: {diverged}.",
                  holds=bool(np.all(np.abs(np.log(ratio)) < np.log(1.25)) and max(finals["continuous"]) < initial),
                  values={"final_continuous": finals["continuous"], "final_discrete": finals["discrete"],
                          "ratio": ratio, "initial": initial, "diverged": diverged})]
        fig = Figure(figsize=(7.5, 4), layout="constrained")
        ax = fig.subplots()
        panel, described = [], None
        for name, runs in curves.items():
            stats = curve_intervals(runs.tolist(), POSITIVE)
            described = stats[0].describe()
            panel.append({"centre": [s.centre for s in stats], "low": [s.low for s in stats],
                          "high": [s.high for s in stats], "runs": runs.tolist(),
                          "label": f"{name} ({runs.shape[0]} seeds, {diverged[name]} diverged)"})
        loss_panel(ax, panel, x=budget, xlabel=r"budget: learning rate $\times$ steps = integrated time",
                   ylabel=r"test MSE $\langle\|h_L - y\|^2\rangle$ over samples", title=band_label(described))
        legend_outside(ax)
        data = {"budget": budget, "continuous": curves["continuous"].tolist(), "discrete": curves["discrete"].tolist(),
                "diverged": diverged}
        return Summary(data=data, claims=claims, figure=fig)


@EXPERIMENTS.register("ch6.8-predictions")
class Predictions(Experiment):
    """Section 6.8: the theory's predictions, measured (:func:`~analysis.comparisons.section_6_8_predictions`)."""

    title = "The theoretical predictions of section 6.8, measured"
    reference = "section 6.8 (eqs. 6.16, 6.22, 6.33, 6.57)"
    thesis_says = ("\"these reconstruction errors are scaled with mu/(1-mu), whereas the learning signal (the target "
                   "error) has a scaling factor of mu^(L+1-i)/(1-mu)^(L+1-i). This means that when g_i is not the perfect "
                   "inverse of f_i+1, these reconstruction errors will completely dominate the learning signal\"; "
                   "\"We predict that this [two-phase] network can operate properly even when no perfect inverses of f_i "
                   "exist\"; in the multiplexed network \"there is no decaying scaling term present like in the mixture "
                   "model of 6.3\".")
    # mu >= 0.1: at depth 6 the layer-1 signal is eta_hat (mu/(1-mu))^6 ~ 2e-8 |e_L| for mu = 0.1, well above
    # the 1e-12 equilibrium tolerance; at mu = 0.05 it would be ~2e-10, too close to round-off to measure
    full = {"depth": 6, "width": 6, "mus": [0.3, 0.2, 0.1], "eta_hat": 0.01, "feedback_noise": 0.2, "batch": 32}
    quick = {"depth": 4, "width": 4, "mus": [0.3, 0.1], "eta_hat": 0.01, "feedback_noise": 0.2, "batch": 8}

    def tasks(self, settings, seeds):
        return [{"seed": 0}]

    def run_task(self, settings, task):
        kwargs = {k: settings[k] for k in ("depth", "width", "eta_hat", "feedback_noise", "batch")}
        return section_6_8_predictions(mus=tuple(settings["mus"]), seed=task["seed"], **kwargs).to_dict()

    def summarize(self, settings, results):
        r = results[0]
        decay = r["depth_decay"]
        gaps = {mu: abs(decay["fitted_log_factor"][mu] - decay["predicted_log_factor"][mu]) for mu in decay["ratio"]}
        single, two = r["reconstruction"]["single_phase"], r["reconstruction"]["two_phase"]
        mu_small = str(min(settings["mus"]))
        claims = [
            Claim("Single-phase network, exact inverses: the learning signal of layer i is scaled by "
                  "(mu/(1-mu))^(L+1-i) (eq. 6.16).",
                  "fitted log layer factor vs predicted log(mu/(1-mu)): " + "; ".join(
                      f"mu={mu}: {decay['fitted_log_factor'][mu]:.5f} vs {decay['predicted_log_factor'][mu]:.5f}"
                      for mu in decay["ratio"]),
                  holds=bool(max(gaps.values()) < 1e-3), values={"fitted": decay["fitted_log_factor"],
                                                                   "predicted": decay["predicted_log_factor"]}),
            Claim("Single-phase network, approximate inverses: reconstruction errors dominate the learning signal, "
                  "more so in lower layers and for smaller mu.",
                  f"cos(signal_i / c_i, e_TP_i) per layer at mu={mu_small}: "
                  f"{[round(c, 3) for c in single['cosine'][mu_small]]}; layer-1 relative error grows as mu falls with "
                  f"log-log slope {single['slope_of_layer1_error_vs_mu']:.2f} (predicted {r['reconstruction']['predicted_single_phase_slope']}).",
                  holds=bool(min(single["cosine"][mu_small][:-1]) < 0.5 and single["slope_of_layer1_error_vs_mu"] < -1),
                  values={"cosine": single["cosine"], "slope": single["slope_of_layer1_error_vs_mu"]}),
            Claim("Two-phase network, approximate inverses: the phase difference (almost completely) cancels the "
                  "reconstruction errors, leaving an almost clean learning signal (eq. 6.36).",
                  f"cos(signal_i / c_i, e_TP_i) per layer at mu={mu_small}: {[round(c, 4) for c in two['cosine'][mu_small]]} "
                  f"(single phase: {[round(c, 3) for c in single['cosine'][mu_small]]}). Criterion: every layer above "
                  "0.9; the remainder e_phase of eq. 6.36 is what keeps it below 1, more so in deep layers.",
                  holds=bool(min(two["cosine"][mu_small]) > 0.9), values={"cosine": two["cosine"]}),
            Claim("Multiplexed network: the learning signal does not decay with depth.",
                  f"||hat h^l_i - hat h^f_i|| / ||e_TP_i|| per layer: {[round(x, 3) for x in r['multiplexed']['ratio']]}; "
                  f"fitted log slope vs depth {r['multiplexed']['fitted_log_slope_vs_depth']:.3f} (predicted 0).",
                  holds=bool(abs(r["multiplexed"]["fitted_log_slope_vs_depth"]) < 0.2),
                  values={"ratio": r["multiplexed"]["ratio"], "slope": r["multiplexed"]["fitted_log_slope_vs_depth"]}),
        ]
        from ...comparisons import PredictionsResult
        figure = PredictionsResult(r["depth_decay"], r["reconstruction"], r["multiplexed"], r["settings"]).figure()
        return Summary(data=r, claims=claims, figure=figure)
