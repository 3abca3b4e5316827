"""Continuous weight dynamics against discrete updates, on the same layer objects (thesis chapter 6 vs 4-5).

Three comparisons, each a function returning a result object with ``to_dict`` / ``to_json`` and a
matplotlib figure:

* :func:`update_alignment` — the equilibrium-based update of each layer, divided by its layer factor
  ``(mu/(1-mu))^(L+1-i)``, against the discrete update of the corresponding rule (``tp-ei`` for the
  single-phase network with exact inverses, ``dtp-ai`` for the two-phase and the multiplexed networks
  with approximate inverses), over a sweep of ``mu``; the convergence as ``mu -> 0`` is reported as
  a fitted log-log slope.
* :func:`learning_trajectories` — continuous learning (the time-scale-separated weight ODE integrated
  over each presented sample for a time ``eta``) against discrete ``tp-ei`` steps with learning rate
  ``eta`` on the same student–teacher data, order and initial weights: matched budgets
  (learning rate x steps = integrated time); test-loss curves over seeds.
* :func:`section_6_8_predictions` — the three predictions of section 6.8, measured: the learning
  signal decays with depth as ``(mu/(1-mu))^(L+1-i)`` in the single-phase network; with approximate
  inverses the single-phase network's signal is swamped by reconstruction errors (scaled ``mu/(1-mu)``)
  while the two-phase network cancels them; the multiplexed network's signal does not decay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

import tpdynamics as tp
from tpdynamics.continuous import get_model, integrate_weights, trainable_feedback
from tpdynamics.serialization import write_json
from tpdynamics.theory import layer_factor
from tpdynamics.statistics import POSITIVE, curve_intervals
from tpdynamics.training import get_learning_rule, mean_squared_error, student_teacher, tp_signal
from tpdynamics.validation import check_int, check_positive

from .plotting import save
from .training_plots import band_label, legend_outside, loss_panel

#: Discrete rule each continuous model is the limit of (issue 5; sections 6.4, 6.6, 6.9.2).
DISCRETE_COUNTERPART = {"single_phase": "tp-ei", "two_phase": "dtp-ai", "multiplexed": "dtp-ai"}
#: Feedback form of each comparison: exact inverses for the single-phase network, learned otherwise.
FEEDBACK_OF_MODE = {"single_phase": "exact", "two_phase": "learned", "multiplexed": "learned"}


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))


def perturb_feedback(network: tp.LayeredNetwork, relative_size: float, generator: torch.Generator) -> None:
    """Make the learned inverses approximate: ``Q <- Q + delta ||Q||_F / sqrt(size) N(0, 1)``."""
    with torch.no_grad():
        for q in trainable_feedback(network).values():
            q.add_(relative_size * q.norm() / q.numel() ** 0.5 * torch.randn(q.shape, dtype=q.dtype, generator=generator))


def discrete_update(method: str, network: tp.LayeredNetwork, h0: torch.Tensor, y: torch.Tensor, **hyper) -> list:
    """``Delta W_i`` of one step of a registered rule, without changing ``network``.

    The step is :meth:`LearningRule.weight_updates` (run on copies); for rules that need batch size 1
    (Sherman–Morrison) the updates of the samples, each from the same starting weights, are averaged —
    the mean-over-batch update of Appendix A.

    Parameters
    ----------
    method : str or LearningRule subclass
        A registered rule, e.g. ``"tp-ei"`` or ``"dtp-ai"``.
    h0 : Tensor, shape (B, n_0)
    y : Tensor, shape (B, n_L)
    **hyper
        Hyper-parameters of the rule (``eta``, ``eta_hat``, ...).

    Returns
    -------
    list of Tensor
        Entry ``i - 1`` is ``Delta W_i``, shape ``(n_i, n_{i-1})``.
    """
    rule = get_learning_rule(method, **hyper)
    batches = [(h0[b:b + 1], y[b:b + 1]) for b in range(h0.shape[0])] if rule.sherman_morrison else [(h0, y)]
    updates = [rule.weight_updates(network, x, t) for x, t in batches]
    return [sum(layer) / len(batches) for layer in zip(*updates)]


def _alignment_problem(mode, layers, nonlinearity, batch, feedback_noise, seed):
    net = tp.LayeredNetwork.build(list(layers), nonlinearity=nonlinearity, output_nonlinearity="identity",
                                  feedback=FEEDBACK_OF_MODE[mode], weight_init="orthogonal", seed=seed)
    g = tp.make_generator(seed + 1)
    if FEEDBACK_OF_MODE[mode] != "exact":
        perturb_feedback(net, feedback_noise, g)
    h0 = torch.randn(batch, layers[0], dtype=net.dtype, generator=g)
    with torch.no_grad():
        y = net(h0)[-1] + 0.5 * torch.randn(batch, layers[-1], dtype=net.dtype, generator=g)
    return net, h0, y


def _fit_slope(x, y) -> float | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


class _Comparison:
    """``to_json`` and ``save_figure`` of the comparison results, from their ``to_dict`` and ``figure``."""

    def to_json(self, path=None) -> str:
        return write_json(path, self.to_dict())

    def save_figure(self, path):
        return save(self.figure(), path)


@dataclass
class AlignmentResult(_Comparison):
    """Rows ``{mode, mu, layer, cosine, relative_error}`` and the fitted slopes of the relative error vs ``mu``.

    ``mu`` is ``None`` for the multiplexed network, which has no mixing coefficient (one row per layer).
    """

    rows: list
    slopes: dict
    settings: dict

    def to_dict(self) -> dict:
        return {"comparison": "alignment", "rows": self.rows, "slopes": self.slopes, "settings": self.settings}

    def figure(self) -> Figure:
        """Left: relative error of each layer's update against ``mu`` (log-log); right: ``1 - cos`` of the same
        updates. The multiplexed network has no ``mu``: its layers' mean is a dotted horizontal line of the
        quantity of each panel. ``1 - cos`` below round-off (1e-15) is drawn at 1e-15."""
        from matplotlib.ticker import FixedLocator, NullLocator

        fig = Figure(figsize=(11, 3.8), layout="constrained")
        axes = fig.subplots(1, 2)
        floor = 1e-15  # 1 - cos is at round-off level (or exactly 0) where the updates coincide
        mus = sorted({r["mu"] for r in self.rows if r["mu"] is not None})
        styles = {"single_phase": "o-", "two_phase": "s--"}
        for mode in sorted({r["mode"] for r in self.rows}):
            rows = [r for r in self.rows if r["mode"] == mode]
            rule = rows[0].get("discrete_rule", DISCRETE_COUNTERPART.get(mode))
            if rows[0]["mu"] is None:
                error = float(np.mean([r["relative_error"] for r in rows]))
                gap = float(np.mean([max(1.0 - r["cosine"], floor) for r in rows]))
                label = f"{mode} vs {rule} (no mu; mean of {len(rows)} layers)"
                line = axes[0].axhline(max(error, floor), ls=":", color="gray", label=label)
                axes[1].axhline(gap, ls=":", color=line.get_color())
                continue
            for layer in sorted({r["layer"] for r in rows}):
                pts = sorted((r["mu"], r["relative_error"], r["cosine"]) for r in rows if r["layer"] == layer)
                x = [p[0] for p in pts]
                line, = axes[0].plot(x, [max(p[1], floor) for p in pts], styles.get(mode, "o-"), ms=3,
                                     label=f"{mode} vs {rule}, layer {layer}")
                axes[1].plot(x, [max(1.0 - p[2], floor) for p in pts], styles.get(mode, "o-"), ms=3,
                             color=line.get_color())
        labels = (r"relative error $\|\dot W_i / c_i - \Delta W_i\| / \|\Delta W_i\|$",
                  r"$1 - \cos(\dot W_i, \Delta W_i)$")
        for ax, label in zip(axes, labels):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"$\mu$")
            ax.set_ylabel(label)
            if mus:  # one tick per swept mu, no minor labels (they overlapped)
                ax.xaxis.set_major_locator(FixedLocator(mus))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xticklabels([f"{m:g}" for m in mus], rotation=30 if len(mus) > 4 else 0)
        handles, labels = axes[0].get_legend_handles_labels()
        legend_outside(axes[1], handles=handles, labels=labels)
        fig.suptitle(r"continuous update / layer factor $c_i$ vs the discrete update (one step, same network and data)",
                     fontsize=10)
        return fig


def update_alignment(*, mus=(0.2, 0.1, 0.05, 0.025, 0.0125), modes=("single_phase", "two_phase", "multiplexed"),
                     layers=(4, 4, 4, 4, 4), nonlinearity="leaky_relu:0.35", eta_hat: float = 0.01,
                     batch: int = 4, feedback_noise: float = 0.2, seed: int = 0, progress: bool = False) -> AlignmentResult:
    """Continuous (equilibrium) weight updates vs the discrete rule's update, per layer, over ``mu``.

    For each mode the continuous velocity of :mod:`tpdynamics.continuous` (learning rate 1, divided
    by the layer factor ``c_i``; eqs. 6.17, 6.35, 6.58) is compared with ``Delta W_i`` of one step
    of the discrete rule (learning rate 1, same ``eta_hat``; no backward-weight step), on the same
    network, inputs and labels. Approximate inverses are ``Q = W^+`` plus relative noise
    ``feedback_noise``.

    Returns
    -------
    AlignmentResult
        ``slopes[mode]`` is the log-log slope of the mean relative error against ``mu`` (``None`` for
        the multiplexed network).
    """
    unknown = [m for m in modes if m not in DISCRETE_COUNTERPART]
    if unknown:
        raise ValueError(f"modes={tuple(modes)!r} contains {unknown}; valid modes: {', '.join(DISCRETE_COUNTERPART)}.")
    rows, slopes = [], {}
    for mode in tqdm(modes, desc="alignment", disable=not progress):
        net, h0, y = _alignment_problem(mode, layers, nonlinearity, batch, feedback_noise, seed)
        hyper = dict(eta=1.0, eta_hat=eta_hat)
        if DISCRETE_COUNTERPART[mode] == "dtp-ai":
            hyper["eta_backward"] = 0.0  # compare the forward updates only
        discrete = discrete_update(DISCRETE_COUNTERPART[mode], net, h0, y, **hyper)
        sweep = [None] if mode == "multiplexed" else list(mus)
        errors = []
        for mu in sweep:
            model = get_model(mode, mu=0.2 if mu is None else mu, eta_hat=eta_hat, learning_rate=1.0,
                              compensate_layer_factor=True, tol=1e-12)
            continuous = model.weight_velocities(net, h0, y)
            layer_errors = []
            for i, (c, d) in enumerate(zip(continuous, discrete), start=1):
                error = float((c - d).norm() / d.norm().clamp_min(1e-300))
                layer_errors.append(error)
                rows.append({"mode": mode, "mu": mu, "layer": i, "cosine": _cosine(c, d), "relative_error": error,
                             "discrete_rule": DISCRETE_COUNTERPART[mode]})
            errors.append(float(np.mean(layer_errors)))
        slopes[mode] = None if mode == "multiplexed" else _fit_slope(sweep, errors)
    settings = {"layers": list(layers), "nonlinearity": nonlinearity, "eta_hat": eta_hat, "batch": batch,
                "feedback_noise": feedback_noise, "seed": seed, "mus": list(mus),
                "discrete_counterpart": DISCRETE_COUNTERPART, "feedback": FEEDBACK_OF_MODE}
    return AlignmentResult(rows=rows, slopes=slopes, settings=settings)


# -- learning trajectories ---------------------------------------------------------------------------------

@dataclass
class TrajectoryComparison(_Comparison):
    """Test-loss curves of continuous and discrete learning over the same budget, mean and 95 % interval over seeds.

    Attributes
    ----------
    budget : list of float
        Learning rate x steps (= integrated slow time) at each record point.
    curves : dict
        ``{"continuous" | "discrete": {"centre": [...], "ci": [[low, high], ...], "interval": {...},
        "runs": [[...], ...]}}``: per record point the geometric mean over seeds of the test loss and its 95 %
        log-scale interval (:mod:`tpdynamics.statistics`, ``"log-t"``; NaN for one seed); ``interval`` says so.
    """

    budget: list
    curves: dict
    settings: dict
    diverged: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"comparison": "trajectories", "budget": self.budget, "curves": self.curves,
                "diverged": self.diverged, "settings": self.settings}

    def figure(self) -> Figure:
        fig = Figure(figsize=(7.5, 4), layout="constrained")
        ax = fig.subplots()
        curves = [{"centre": c["centre"], "low": [lo for lo, _ in c["ci"]], "high": [hi for _, hi in c["ci"]],
                   "label": f"{name} ({len(c['runs'])} seeds, {self.diverged.get(name, 0)} diverged)",
                   "runs": c["runs"]}
                  for name, c in self.curves.items()]
        loss_panel(ax, curves, x=self.budget, xlabel=r"budget: learning rate $\times$ steps = integrated time",
                   ylabel=r"test MSE $\langle\|h_L - y\|^2\rangle$ over samples",
                   title=f"continuous {self.settings['model']} vs discrete {self.settings['method']}\n"
                         + band_label(next(iter(self.curves.values()))["interval"]))
        legend_outside(ax)
        return fig


def _curve_summary(runs: np.ndarray) -> dict:
    """Per column of ``runs`` (seeds x record points): geometric mean and 95 % log-t interval (a loss is positive)."""
    stats = curve_intervals(runs.tolist(), POSITIVE)
    return {"centre": [s.centre for s in stats], "ci": [[s.low, s.high] for s in stats],
            "interval": stats[0].describe()}


def _test_loss(net, problem) -> float:
    with torch.no_grad():
        return mean_squared_error(net(problem.test_inputs)[-1], problem.test_labels)


def _continuous_ensemble_curves(problems, continuous_model, eta, steps, record_every, points) -> tuple[list, int]:
    """The continuous learner of every problem as one ensemble (:func:`tpdynamics.ensemble.integrate_weights_ensemble`):
    per problem its test-loss curve (``points`` record points, NaN after a failure) and the count of failures.

    Each sample is one RK4 step of every live member's weight flow, their equilibria one batched solve per
    stage; each member takes the steps its serial run takes, equal to it to the equilibrium tolerance. A member
    whose test loss is not finite, or whose equilibrium does not settle (the step is undone for all and retried
    without it), stops there, as the serial loop stops it.
    """
    from tpdynamics.ensemble import EnsembleNetwork, integrate_weights_ensemble

    nets = [p.student("exact") for p in problems]
    curves, live, failures = [[] for _ in problems], list(range(len(problems))), 0
    times = torch.tensor([0.0, eta])

    def stop(stopped):
        nonlocal failures, ensemble
        for s in stopped:
            failures += 1
            curves[s] += [math.nan] * (points - len(curves[s]))
            live.remove(s)
        if stopped and live:
            ensemble = EnsembleNetwork([nets[s] for s in live])  # the live members' current weights, restacked

    ensemble = EnsembleNetwork(nets)
    for k in range(steps + 1):
        if k % record_every == 0:
            for s in live:
                curves[s].append(_test_loss(nets[s], problems[s]))
            stop([s for s in live if not math.isfinite(curves[s][-1])])
        if k == steps or not live:
            break
        while live:
            plastic = [t for t in ensemble.weights + ensemble.feedback if t is not None]
            saved = [t.clone() for t in plastic]
            x = ensemble.stack([problems[s].train_inputs[k:k + 1] for s in live])
            y = ensemble.stack([problems[s].train_labels[k:k + 1] for s in live])
            try:
                integrate_weights_ensemble(continuous_model, ensemble, x, y, times, method="rk4")
                break
            except tp.EquilibriumNotReachedError as err:
                with torch.no_grad():  # the weights of the failed step's last stage: back to the step's start
                    for t, value in zip(plastic, saved):
                        t.copy_(value)
                stop([live[m] for m in err.members])
    return curves, failures


def learning_trajectories(*, model: str = "single_phase", layers=(6, 6, 6), seeds=3, steps: int = 400,
                          eta: float = 0.01, eta_hat: float = 0.1, mu: float = 0.1, record_every: int = 20,
                          n_test: int = 500, progress: bool = False, ensemble: bool = True) -> TrajectoryComparison:
    """Continuous learning vs discrete ``tp-ei`` on the student–teacher task (section 5.1.3), matched budgets.

    Each seed draws a student–teacher problem; both learners start from the same student weights and
    see the same training samples in the same order (batch size 1). The discrete learner takes a
    ``tp-ei`` step with learning rate ``eta``; the continuous learner integrates the time-scale-separated
    weight ODE of the single-phase network (layer-factor compensated, so the velocity is the TP update
    per unit time) over ``[0, eta]`` with one RK4 step per presented sample.

    ``seeds`` is a count (seeds ``0..seeds-1``) or an explicit sequence of seeds. ``steps`` samples
    are presented; the test loss is recorded every ``record_every`` of them. ``ensemble=True`` (default)
    integrates the continuous learners of all seeds as one ensemble (their equilibria one batched solve;
    equal to the serial runs, ``ensemble=False``, to the equilibrium tolerance; each seed's curve does not
    depend on the other seeds but through that tolerance); the discrete learners run seed by seed.
    """
    seed_list = list(range(check_int("seeds", seeds, minimum=1))) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds=[] is empty; pass a positive count or a non-empty list of seeds, e.g. seeds=3.")
    if model != "single_phase":
        raise ValueError(f"model={model!r}: the discrete counterpart tp-ei needs exact inverses, i.e. the "
                         "single_phase model; use update_alignment for the two-phase and multiplexed networks.")
    steps, record_every = check_int("steps", steps, minimum=1), check_int("record_every", record_every, minimum=1)
    eta = check_positive("eta", eta)
    budget = [eta * k for k in range(0, steps + 1, record_every)]
    runs = {"continuous": [], "discrete": []}
    diverged = {"continuous": 0, "discrete": 0}
    continuous_model = get_model("single_phase", mu=mu, eta_hat=eta_hat, learning_rate=1.0,
                                 compensate_layer_factor=True, tol=1e-10)
    problems = [student_teacher(layers, n_train=steps, n_test=n_test, seed=seed) for seed in seed_list]
    if ensemble:
        runs["continuous"], diverged["continuous"] = _continuous_ensemble_curves(
            problems, continuous_model, eta, steps, record_every, len(budget))
    for problem in tqdm(problems, desc="trajectories", disable=not progress):
        for name in ("discrete",) if ensemble else runs:
            net = problem.student("exact")
            rule = get_learning_rule("tp-ei", eta=eta, eta_hat=eta_hat) if name == "discrete" else None
            curve = []
            for k in range(steps + 1):
                if k % record_every == 0:
                    curve.append(_test_loss(net, problem))
                    if not math.isfinite(curve[-1]):
                        diverged[name] += 1
                        curve += [math.nan] * (len(budget) - len(curve))
                        break
                if k == steps:
                    break
                x, t = problem.train_inputs[k:k + 1], problem.train_labels[k:k + 1]
                try:
                    if name == "discrete":
                        rule.step(net, x, t)
                    else:
                        integrate_weights(continuous_model, net, x, t, torch.tensor([0.0, eta]), method="rk4")
                except tp.EquilibriumNotReachedError:
                    diverged[name] += 1
                    curve += [math.nan] * (len(budget) - len(curve))
                    break
            runs[name].append(curve)
    curves = {}
    for name, rs in runs.items():
        arr = np.array(rs, dtype=float)
        curves[name] = {**_curve_summary(arr), "runs": arr.tolist()}
    settings = {"model": model, "method": "tp-ei", "layers": list(layers), "seeds": seed_list, "steps": steps, "eta": eta,
                "eta_hat": eta_hat, "mu": mu, "record_every": record_every, "n_test": n_test,
                "continuous_integrator": "rk4, one step of length eta per sample",
                "continuous_ensemble": bool(ensemble)}
    return TrajectoryComparison(budget=budget, curves=curves, settings=settings, diverged=diverged)


# -- the predictions of section 6.8 ----------------------------------------------------------------------

@dataclass
class PredictionsResult(_Comparison):
    """Measured learning-signal ratios per layer and the numbers fitted to them (section 6.8).

    Attributes
    ----------
    depth_decay : dict
        Single-phase, exact inverses: ``ratio[mu][i] = ||signal_i|| / ||e_TP_i||`` and, per ``mu``, the
        fitted slope of ``log ratio`` against ``L+1-i`` beside the predicted ``log(mu/(1-mu))``.
    reconstruction : dict
        Approximate inverses: per model, ``cosine[mu][i]`` between ``signal_i / c_i`` and ``e_TP_i``.
    multiplexed : dict
        ``ratio[i]`` and the fitted slope against depth (prediction: 0).
    """

    depth_decay: dict
    reconstruction: dict
    multiplexed: dict
    settings: dict

    def to_dict(self) -> dict:
        return {"comparison": "predictions", "depth_decay": self.depth_decay, "reconstruction": self.reconstruction,
                "multiplexed": self.multiplexed, "settings": self.settings}

    def figure(self) -> Figure:
        fig = Figure(figsize=(13, 3.8), layout="constrained")
        a, b, c = fig.subplots(1, 3)
        L = self.settings["depth"]
        layers = list(range(1, L + 1))
        for mu, ratios in self.depth_decay["ratio"].items():
            line, = a.semilogy(layers, ratios, "o", label=fr"$\mu$={mu}")
            a.semilogy(layers, [layer_factor(float(mu), L, i) for i in layers], "--",
                       color=line.get_color(), lw=0.8)
        a.set_title("single phase, exact inverses\n(dashed: $(\\mu/(1-\\mu))^{L+1-i}$)", fontsize=9)
        for ax in (a, b, c):
            ax.set_xticks(layers)
        a.set_xlabel("layer $i$")
        a.set_ylabel(r"$\|h^*_i - f_i\| / \|e^{TP}_i\|$")
        a.legend(fontsize=7)
        for model, style in (("single_phase", "o-"), ("two_phase", "s--")):
            for mu, cosines in self.reconstruction[model]["cosine"].items():
                b.plot(layers, cosines, style, ms=4, label=f"{model}, $\\mu$={mu}")
        b.set_title(f"approximate inverses (relative noise {self.settings['feedback_noise']})", fontsize=9)
        b.set_xlabel("layer $i$")
        b.set_ylabel(r"$\cos(\mathrm{signal}_i, e^{TP}_i)$")
        legend_outside(b, "below", ncols=3, fontsize=6)
        c.plot(layers, self.multiplexed["ratio"], "o-")
        c.axhline(1.0, color="k", lw=0.5)
        c.set_ylim(0, 1.5)
        c.set_title("multiplexed: no decay with depth", fontsize=9)
        c.set_xlabel("layer $i$")
        c.set_ylabel(r"$\|\hat h^l_i - \hat h^f_i\| / \|e^{TP}_i\|$")
        return fig


def _tp_signal(net, h0, y, eta_hat):
    with torch.no_grad():
        acts = net(h0)
        return tp_signal(net, acts, acts[-1] - y, eta_hat)


def section_6_8_predictions(*, depth: int = 5, width: int = 4, mus=(0.3, 0.2, 0.1), eta_hat: float = 0.01,
                            feedback_noise: float = 0.2, batch: int = 8, seed: int = 0) -> PredictionsResult:
    """Measure the three predictions of section 6.8 and fit the numbers they state.

    The useful learning signal is ``e_TP_i = -eta_hat [prod_k J_{g_k}] e_L`` (eq. 5.39) computed with the
    network's own feedback mappings at the forward pass.
    """
    sizes = [width] * (depth + 1)
    # (1) depth decay, exact inverses
    net, h0, y = _alignment_problem("single_phase", sizes, "leaky_relu:0.35", batch, 0.0, seed)
    e_tp = _tp_signal(net, h0, y, eta_hat)
    decay = {"ratio": {}, "fitted_log_factor": {}, "predicted_log_factor": {}}
    for mu in mus:
        model = get_model("single_phase", mu=mu, eta_hat=eta_hat, tol=1e-12)
        signal = model.learning_signal(net, h0, y).signal
        ratios = [float(s.norm() / e.norm()) for s, e in zip(signal, e_tp)]
        exponents = [depth + 1 - i for i in range(1, depth + 1)]
        decay["ratio"][str(mu)] = ratios
        decay["fitted_log_factor"][str(mu)] = float(np.polyfit(exponents, np.log(ratios), 1)[0])
        decay["predicted_log_factor"][str(mu)] = math.log(mu / (1 - mu))
    # (2) reconstruction errors with approximate inverses: single vs two phase
    net, h0, y = _alignment_problem("two_phase", sizes, "leaky_relu:0.35", batch, feedback_noise, seed)
    e_tp = _tp_signal(net, h0, y, eta_hat)
    reconstruction = {}
    for name in ("single_phase", "two_phase"):
        out = {"cosine": {}, "relative_error": {}}
        for mu in mus:
            model = get_model(name, mu=mu, eta_hat=eta_hat, tol=1e-12)
            scaled = model.learning_signal(net, h0, y).scaled()
            out["cosine"][str(mu)] = [_cosine(s, e) for s, e in zip(scaled, e_tp)]
            out["relative_error"][str(mu)] = [float((s - e).norm() / e.norm()) for s, e in zip(scaled, e_tp)]
        # reconstruction terms scale mu/(1-mu), the signal (mu/(1-mu))^(L+1-i): their ratio at layer 1
        # grows like (mu/(1-mu))^-(L-1) as mu decreases (single phase); fit it
        errs = [out["relative_error"][str(mu)][0] for mu in mus]
        out["slope_of_layer1_error_vs_mu"] = _fit_slope(mus, errs)
        reconstruction[name] = out
    reconstruction["predicted_single_phase_slope"] = -(depth - 1)
    # (3) multiplexed: no decay
    model = get_model("multiplexed", eta_hat=eta_hat, tol=1e-12)
    signal = model.learning_signal(net, h0, y).signal
    ratios = [float(s.norm() / e.norm()) for s, e in zip(signal, e_tp)]
    multiplexed = {"ratio": ratios, "fitted_log_slope_vs_depth":
                   float(np.polyfit(list(range(depth, 0, -1)), np.log(ratios), 1)[0]), "predicted": 0.0}
    settings = {"depth": depth, "width": width, "mus": list(mus), "eta_hat": eta_hat, "feedback_noise": feedback_noise,
                "batch": batch, "seed": seed, "nonlinearity": "leaky_relu:0.35"}
    return PredictionsResult(depth_decay=decay, reconstruction=reconstruction, multiplexed=multiplexed,
                             settings=settings)
