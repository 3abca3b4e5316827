"""Figures 5.2-5.4: the toy example of section 5.1.1 — GN, TP, BP and modified-TP paths over the loss contours.

The network is ``h_0`` (1) -> ``h_1 = s(W_1 h_0)`` (2) -> ``h_2 = W_2 h_1`` (2); teacher and student share
``W_2`` (fixed), so the loss is a function of the two entries of ``W_1`` and every method's path can be
drawn over its contours. Per sample, with ``e = h_2 - y`` (eqs. 5.7-5.22):

* Gauss–Newton: ``Delta W_1 = -(sum_b J_b^T J_b)^{-1} sum_b J_b^T e_b`` with ``J_b = dh_2/dW_1 =
  W_2 D_s h_0^(b)`` — in the linear case exactly ``W_1^* - W_1`` (eq. 5.11); for one leaky-ReLU sample
  ``(1/h_0) D_s^{-1} (s(W_1^* h_0) - s(W_1 h_0))`` (eq. 5.20);
* TP (Alg. A.4 restricted to ``W_1``): ``Delta W_1 = -eta D_s (h_1 - hat h_1) h_0``, ``hat h_1 =
  W_2^{-1}(h_2 - eta_hat e)`` — in the linear case ``-eta eta_hat h_0^2 (W_1 - W_1^*)``, the GN direction
  (eq. 5.9);
* BP (Alg. A.7): ``Delta W_1 = -eta h_0 D_s W_2^T e`` (eqs. 5.7, 5.16), steepest descent;
* modified TP (section 5.1.1, Alg. A.1): ``D_s^{-1}`` instead of ``D_s`` and batch-normalised layer inputs.

Decisions where the thesis is silent (recorded in the JSON):

* ``W_2`` is a robustly invertible Gaussian matrix (``sigma_min sigma_max > 0.4``), redrawn until the
  caption's BP rate is in the regime figure 5.2c shows — stable but oscillating,
  ``1 < eta_BP E[h_0^2] sigma_max(W_2)^2 < 2`` (with ``eta = 0.3`` a standard Gaussian ``W_2`` diverges about
  one time in five); ``W_1^* ~ N(0, I)``.
* Linear case: the start is at distance 2 from ``W_1^*`` in a random direction, and every step draws a
  fresh sample ``h_0 ~ N(0, 1)`` (batch size 1; "the expectations are estimated by mini-batches, resulting in
  a stochastic training scheme"); all methods see the same samples. Contours: the expected loss.
* Non-linear case: one input sample ``h_0 ~ N(0, 1)`` is drawn once and used at every step (batch size 1).
  The text's analysis needs it: "the starting point is located in the positive region of both leaky-ReLU
  nonlinearities" and after TP's first step "the negative region of both ... resulting in D_s = 0.1 I" —
  regions that a fresh sample of the other sign would swap. ``W_1^*`` and the start are oriented
  accordingly (``W_1^* h_0 < 0`` and ``W_1 h_0 > 0`` entry-wise). Contours: that sample's loss.
* TP's forward rate is ``eta = 1`` (eqs. 5.8 and 5.17 have none); modified TP uses ``eta eta_hat = 1``
  (the text's choice after eq. 5.34). Batch normalisation cannot centre a batch of one sample; its
  scaling to unit second moment, written in the original ``W_1`` coordinates, divides the step by
  ``mean_b h_0^2`` — so modified TP is rule ``'rmtp-ei'`` (``D^{-1}``, Alg. A.6 with ``W_1`` the only
  trainable layer) with ``eta = 1 / mean_b h_0^2``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

import tpdynamics as tp
from tpdynamics.training import StudentTeacherProblem, get_learning_rule, toy_loss_surface

from ..base import EXPERIMENTS, Claim, Experiment, Summary

#: Relative distance to ``W_1^*`` below which a step's direction is no longer compared: near the optimum the
#: step is dominated by rounding (TP's target goes through ``W_2^{-1}``, amplifying it by ``cond(W_2)``).
REACHED = 1e-4


def toy_gauss_newton_step(network: tp.LayeredNetwork, h0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gauss–Newton step on the hidden weights ``W_1`` of the toy network (eqs. 5.10, 5.18).

    With ``J_b = dh_2 / dvec(W_1) = W_2 D_s^(b) h_0^(b)`` (shape ``(n_2, n_1)`` because ``h_0`` is a
    scalar) and ``e_b = h_2^(b) - y^(b)``, the step solves ``min_d sum_b ||J_b d + e_b||^2``, i.e.
    ``d = -(sum_b J_b^T J_b)^{-1} sum_b J_b^T e_b`` (the minimum-norm solution if singular).

    Parameters
    ----------
    network : LayeredNetwork
        The 1-n_1-n_2 toy network (``W_1`` of shape ``(n_1, 1)``).
    h0 : Tensor, shape (B, 1)
    y : Tensor, shape (B, n_2)

    Returns
    -------
    Tensor, shape (n_1, 1)
        ``Delta W_1^GN``.
    """
    if network.layer_sizes[0] != 1 or network.depth != 2:
        raise ValueError(f"toy_gauss_newton_step needs a 1-n-m network, got layer sizes {network.layer_sizes}.")
    with torch.no_grad():
        hidden, output = network.layer(1), network.layer(2)
        error = network(h0)[-1] - y  # (B, n_2)
        slope = hidden.derivative(h0) * h0  # (B, n_1): D_s h_0 as a row per sample
        # J_b = D_{s_2} W_2 diag(slope_b); for the toy's linear output D_{s_2} = I, kept general here
        jacobians = output.derivative(network(h0)[1]).unsqueeze(-1) * output.weight.unsqueeze(0) * slope.unsqueeze(1)
        stacked = jacobians.reshape(-1, slope.shape[1])
        step = torch.linalg.lstsq(stacked, -error.reshape(-1, 1), driver="gelsd").solution
    return step.reshape(-1, 1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    norms = float(a.norm() * b.norm())
    return float((a.flatten() @ b.flatten()) / norms) if norms > 0 else math.nan


def _draw_output_weight(generator, eta_bp: float, max_tries: int = 1000) -> torch.Tensor:
    """Robust Gaussian ``W_2`` (2 x 2) with ``1 < eta_bp sigma_max^2 < 2`` (BP stable but oscillating)."""
    for _ in range(max_tries):
        w2 = tp.robust_gaussian_matrix(2, 2, threshold=0.4, generator=generator)
        top = float(torch.linalg.svdvals(w2)[0]) ** 2
        if 1.0 < eta_bp * top < 2.0:
            return w2
    raise RuntimeError(f"no W_2 with 1 < {eta_bp} sigma_max^2 < 2 in {max_tries} draws")


def _networks(w1: torch.Tensor, w2: torch.Tensor, nonlinearity: str):
    return tp.LayeredNetwork([tp.Layer(w1, nonlinearity), tp.Layer(w2, "identity", feedback="exact")])


def _run_rule(method, hyper, w1_start, w2, nonlinearity, inputs, teacher, *, scale_by_second_moment=False):
    """Train ``W_1`` with a package learning rule on the sequence ``inputs``; return the path of ``W_1``."""
    network = _networks(w1_start, w2, nonlinearity)
    rule = get_learning_rule(method, trainable_layers=(1,), **hyper)
    path = [network.layer(1).weight.detach().flatten().clone()]
    with torch.no_grad():
        for h0 in inputs:
            if scale_by_second_moment:
                rule.eta = hyper["eta"] / float((h0 ** 2).mean())
            rule.step(network, h0, teacher(h0)[-1])
            w = network.layer(1).weight.detach().flatten().clone()
            path.append(w)
            if not torch.isfinite(w).all():
                break
    return torch.stack(path)


def _run_gauss_newton(w1_start, w2, nonlinearity, inputs, teacher):
    network = _networks(w1_start, w2, nonlinearity)
    path = [network.layer(1).weight.detach().flatten().clone()]
    with torch.no_grad():
        for h0 in inputs:
            step = toy_gauss_newton_step(network, h0, teacher(h0)[-1])
            network.layer(1).weight.add_(step)
            path.append(network.layer(1).weight.detach().flatten().clone())
    return torch.stack(path)


def _relative(path: torch.Tensor, optimum: torch.Tensor) -> list[float]:
    return ((path - optimum).norm(dim=1) / (path[0] - optimum).norm()).tolist()


def _first_below(values, level):
    return next((k for k, v in enumerate(values) if v < level), None)


@EXPERIMENTS.register("fig5.2-toy-example")
class ToyExample(Experiment):
    """Figures 5.2-5.4: GN, TP, BP and modified-TP paths of ``W_1`` on the toy network (see the module docstring)."""

    title = "Toy example: Gauss–Newton, TP, BP and modified TP on the 1-2-2 network, linear and leaky-ReLU(0.1)"
    reference = "figures 5.2-5.4, section 5.1.1"
    thesis_says = (
        "Linear (fig. 5.2, inputs Gaussian with sigma^2 = 1): \"(a) The Gauss-Newton training method reaches the "
        "optimum in a single step. (b) The target propagation training method has updates in the same direction as "
        "the Gauss-Newton method, but needs multiple steps to reach the optimum ... eta_hat = 0.8. (c) the error "
        "back-propagation method follows the gradient direction, resulting in a typical zig-zag trajectory towards "
        "the optimum ... eta = 0.3.\" Leaky ReLU, slope 0.1 (fig. 5.3, batch size 1): \"(a) Gauss-Newton reaches "
        "the optimum in two steps. (b) target propagation has updates in the same direction as the Gauss-Newton "
        "method, but needs multiple steps ... eta_hat = 1.0. (c) error back-propagation follows the gradient "
        "direction ... [eta] = 0.5\"; TP's first step has D_s = I, so it \"lies in the same direction as Delta W^GN\" "
        "and, since E[h0^2] = 1 and eta_hat = 1, roughly the same magnitude; afterwards D_s = 0.1 I and "
        "\"Delta W^TP ~ 0.1^2 eta_hat h0^2 Delta W^GN\" (printed \"0.12\", the exponent lost), \"explaining the many "
        "small steps\". Fig. 5.4: modified TP (D_s^-1, batch normalisation, eta eta_hat = 1): \"the optimum is "
        "reached in two steps, similar to the Gauss-Newton optimization\".")
    full = {"linear_iterations": 100, "nonlinear_iterations": 500, "gauss_newton_iterations": 5,
            "eta_hat_tp_linear": 0.8, "eta_bp_linear": 0.3, "eta_hat_tp_nonlinear": 1.0, "eta_bp_nonlinear": 0.5,
            "eta_tp": 1.0, "eta_mtp": 1.0, "eta_hat_mtp": 1.0, "negative_slope": 0.1, "start_distance": 2.0,
            "linear_batch_size": 1, "nonlinear_inputs": "one fixed sample", "contour_samples": 2000,
            "contour_grid": 120}
    quick = {**full, "contour_grid": 60}
    default_seeds = 1
    quick_seeds = 1

    def run_task(self, settings, task):
        seed = task["seed"]
        # separate streams for the problem, the linear case's inputs and the contour samples
        g = tp.make_generator(52_000 + 10 * seed)
        inputs_g, contour_g = tp.make_generator(52_000 + 10 * seed + 1), tp.make_generator(52_000 + 10 * seed + 2)
        dtype = torch.float64
        w2 = _draw_output_weight(g, settings["eta_bp_linear"])
        w1_star = torch.randn(2, 1, generator=g, dtype=dtype)
        direction = torch.randn(2, 1, generator=g, dtype=dtype)
        h0 = torch.randn(1, 1, generator=g, dtype=dtype)  # the non-linear case's single input sample
        start_magnitude = torch.randn(2, 1, generator=g, dtype=dtype).abs()
        out = {"seed": seed, "w2": w2.tolist(), "w2_singular_values": torch.linalg.svdvals(w2).tolist()}

        # -- linear case (fig. 5.2) --------------------------------------------------------------------
        start = w1_star + settings["start_distance"] * direction / direction.norm()
        teacher = tp.LayeredNetwork([tp.Layer(w1_star, "identity"), tp.Layer(w2, "identity")])
        batch = settings["linear_batch_size"]
        inputs = [torch.randn(batch, 1, generator=inputs_g, dtype=dtype) for _ in range(settings["linear_iterations"])]
        paths = {
            "GN": _run_gauss_newton(start, w2, "identity", inputs[:settings["gauss_newton_iterations"]], teacher),
            "TP": _run_rule("tp-ei", {"eta": settings["eta_tp"], "eta_hat": settings["eta_hat_tp_linear"]},
                            start, w2, "identity", inputs, teacher),
            "BP": _run_rule("bp", {"eta": settings["eta_bp_linear"]}, start, w2, "identity", inputs, teacher),
        }
        optimum = w1_star.flatten()
        linear = {"w1_star": optimum.tolist(), "start": start.flatten().tolist(),
                  "paths": {k: v.tolist() for k, v in paths.items()},
                  "relative_distance": {k: _relative(v, optimum) for k, v in paths.items()},
                  "inputs_squared": [float((x ** 2).mean()) for x in inputs]}
        for name in ("TP", "BP"):
            path, rel = paths[name], linear["relative_distance"][name]
            steps = path[1:] - path[:-1]
            active = [k for k in range(len(steps)) if rel[k] > REACHED]
            linear[f"{name}_cos_with_gn"] = [_cosine(steps[k], optimum - path[k]) for k in active]
            linear[f"{name}_turns"] = sum(1 for k in active[1:] if float(steps[k] @ steps[k - 1]) < 0)
            linear[f"{name}_steps"] = len(active)
        # eq. (5.7): Delta W_BP = -eta mean_b(h_0^2) W_2^T W_2 (W_1 - W_1^*) for the linear toy
        bp_path = paths["BP"]
        gram = w2.T @ w2
        deviations = []
        for k in range(len(bp_path) - 1):
            if linear["relative_distance"]["BP"][k] <= REACHED:
                continue
            predicted = -settings["eta_bp_linear"] * float((inputs[k] ** 2).mean()) * gram @ (bp_path[k] - optimum)
            step = bp_path[k + 1] - bp_path[k]
            # measured against |W_1|: the step is read off as a difference of weights, exact up to rounding of W_1
            deviations.append(float((step - predicted).norm() / bp_path[k].norm()))
        linear["BP_deviation_from_eq_5_7"] = max(deviations)
        linear["eta_bp_sigma_max_sq"] = settings["eta_bp_linear"] * float(torch.linalg.svdvals(w2)[0]) ** 2
        contour_inputs = torch.randn(settings["contour_samples"], 1, generator=contour_g, dtype=dtype)
        linear["contours"] = self._contours(teacher, w2, contour_inputs, paths, optimum, settings["contour_grid"])
        out["linear"] = linear

        # -- leaky-ReLU case (figs 5.3, 5.4) -----------------------------------------------------------
        s = f"leaky_relu:{settings['negative_slope']}"
        sign = 1.0 if float(h0) > 0 else -1.0
        w1_star_nl = -sign * w1_star.abs()  # W_1^* h_0 < 0: the optimum in the negative region of both units
        start_nl = sign * start_magnitude  # start in the positive region of both units
        teacher_nl = tp.LayeredNetwork([tp.Layer(w1_star_nl, s), tp.Layer(w2, "identity")])
        fixed = [h0] * settings["nonlinear_iterations"]
        eta_hat = settings["eta_hat_tp_nonlinear"]
        paths_nl = {
            "GN": _run_gauss_newton(start_nl, w2, s, fixed[:settings["gauss_newton_iterations"]], teacher_nl),
            "TP": _run_rule("tp-ei", {"eta": settings["eta_tp"], "eta_hat": eta_hat}, start_nl, w2, s, fixed,
                            teacher_nl),
            "BP": _run_rule("bp", {"eta": settings["eta_bp_nonlinear"]}, start_nl, w2, s, fixed, teacher_nl),
            "MTP": _run_rule("rmtp-ei", {"eta": settings["eta_mtp"], "eta_hat": settings["eta_hat_mtp"]},
                             start_nl, w2, s, fixed[:settings["gauss_newton_iterations"]], teacher_nl,
                             scale_by_second_moment=True),
        }
        optimum_nl = w1_star_nl.flatten()
        nonlinear = {"h0": float(h0), "w1_star": optimum_nl.tolist(), "start": start_nl.flatten().tolist(),
                     "paths": {k: v.tolist() for k, v in paths_nl.items()},
                     "relative_distance": {k: _relative(v, optimum_nl) for k, v in paths_nl.items()}}
        # TP's steps against the GN step taken from the same point
        tp_path = paths_nl["TP"]
        ratios, cosines, regions = [], [], []
        for k in range(len(tp_path) - 1):
            if nonlinear["relative_distance"]["TP"][k] <= REACHED:
                break
            network = _networks(tp_path[k].reshape(2, 1), w2, s)
            gn = toy_gauss_newton_step(network, h0, teacher_nl(h0)[-1]).flatten()
            step = tp_path[k + 1] - tp_path[k]
            ratios.append(float(step.norm() / gn.norm()))
            cosines.append(_cosine(step, gn))
            regions.append("positive" if bool((tp_path[k] * sign > 0).all()) else
                           "negative" if bool((tp_path[k] * sign < 0).all()) else "mixed")
        nonlinear.update({"TP_ratio_to_gn": ratios, "TP_cos_with_gn": cosines, "TP_regions": regions})
        bp_path = paths_nl["BP"]
        nonlinear["BP_cos_with_gn"] = [
            _cosine(bp_path[k + 1] - bp_path[k],
                    toy_gauss_newton_step(_networks(bp_path[k].reshape(2, 1), w2, s), h0,
                                          teacher_nl(h0)[-1]).flatten())
            for k in range(min(len(bp_path) - 1, 20)) if nonlinear["relative_distance"]["BP"][k] > REACHED]
        nonlinear["contours"] = self._contours(teacher_nl, w2, h0, paths_nl, optimum_nl, settings["contour_grid"])
        out["nonlinear"] = nonlinear
        return out

    @staticmethod
    def _contours(teacher, w2, inputs, paths, optimum, grid):
        """``log10`` of the mean ``||h_2 - y||^2`` over ``inputs`` on a grid around the paths.

        Uses :func:`~tpdynamics.training.toy_loss_surface` on a problem whose test set is ``inputs``.
        """
        with torch.no_grad():
            labels = teacher(inputs)[-1]
        problem = StudentTeacherProblem(teacher=teacher, student_weights=(optimum.reshape(2, 1), w2),
                                        train_inputs=inputs, train_labels=labels, test_inputs=inputs,
                                        test_labels=labels, seed=0, distance=0.0, trainable_layers=(1,))
        points = torch.cat([p[torch.isfinite(p).all(1)] for p in paths.values()] + [optimum.reshape(1, 2)])
        points = points[(points - optimum).norm(dim=1) < 10 * (paths["GN"][0] - optimum).norm()]
        low, high = points.min(0).values, points.max(0).values
        margin = 0.2 * (high - low).clamp(min=0.5)
        a = torch.linspace(float(low[0] - margin[0]), float(high[0] + margin[0]), grid, dtype=torch.float64)
        b = torch.linspace(float(low[1] - margin[1]), float(high[1] + margin[1]), grid, dtype=torch.float64)
        aa, bb = torch.meshgrid(a, b, indexing="ij")
        loss = toy_loss_surface(problem, torch.stack([aa.flatten(), bb.flatten()], -1)).reshape(grid, grid)
        return {"a": a.tolist(), "b": b.tolist(), "log10_loss": loss.clamp(min=1e-12).log10().tolist()}

    def summarize(self, settings, results):
        r = results[0]
        lin, nl = r["linear"], r["nonlinear"]
        eta_hat = settings["eta_hat_tp_nonlinear"]
        h0_sq = nl["h0"] ** 2

        gn_one = lin["relative_distance"]["GN"][1]
        tp_cos = lin["TP_cos_with_gn"]
        tp_reach = _first_below(lin["relative_distance"]["TP"], 1e-3)
        bp_cos = lin["BP_cos_with_gn"]
        bp_turn_fraction = lin["BP_turns"] / max(1, lin["BP_steps"] - 1)
        gn_nl = nl["relative_distance"]["GN"]
        mtp = nl["relative_distance"]["MTP"]
        first_ratio, first_cos = nl["TP_ratio_to_gn"][0], nl["TP_cos_with_gn"][0]
        negative = [ratio for ratio, region in zip(nl["TP_ratio_to_gn"], nl["TP_regions"]) if region == "negative"]
        predicted = settings["negative_slope"] ** 2 * eta_hat * h0_sq
        tp_nl_final = nl["relative_distance"]["TP"][-1]
        tp_nl_reach = _first_below(nl["relative_distance"]["TP"], 1e-2)
        bp_nl = nl["relative_distance"]["BP"]

        data = {
            "seed": r["seed"], "w2": r["w2"], "w2_singular_values": r["w2_singular_values"],
            "linear": {"w1_star": lin["w1_star"], "start": lin["start"],
                       "gn_relative_distance_after_1_step": gn_one,
                       "tp_min_cos_with_gn": min(tp_cos), "tp_steps_to_1e-3": tp_reach,
                       "bp_mean_cos_with_gn": float(np.mean(bp_cos)), "bp_min_cos_with_gn": min(bp_cos),
                       "bp_turns": lin["BP_turns"], "bp_turn_fraction": bp_turn_fraction,
                       "eta_bp_sigma_max_sq": lin["eta_bp_sigma_max_sq"],
                       "final_relative_distance": {k: v[-1] for k, v in lin["relative_distance"].items()},
                       "relative_distance": lin["relative_distance"], "paths": lin["paths"]},
            "nonlinear": {"h0": nl["h0"], "h0_squared": h0_sq, "w1_star": nl["w1_star"], "start": nl["start"],
                          "gn_relative_distance_after_1_step": gn_nl[1], "gn_relative_distance_after_2_steps": gn_nl[2],
                          "tp_first_step_cos_with_gn": first_cos, "tp_first_step_ratio_to_gn": first_ratio,
                          "tp_negative_region_ratio_to_gn_mean": float(np.mean(negative)) if negative else None,
                          "tp_negative_region_steps": len(negative),
                          "predicted_ratio_0.1^2_eta_hat_h0^2": predicted,
                          "tp_final_relative_distance": tp_nl_final, "tp_steps_to_1e-2": tp_nl_reach,
                          "bp_final_relative_distance": bp_nl[-1],
                          "bp_mean_cos_with_gn": float(np.mean(nl["BP_cos_with_gn"])) if nl["BP_cos_with_gn"] else None,
                          "mtp_relative_distance_after_1_step": mtp[1], "mtp_relative_distance_after_2_steps": mtp[2],
                          "relative_distance": nl["relative_distance"], "paths": nl["paths"]},
        }

        neg_mean = data["nonlinear"]["tp_negative_region_ratio_to_gn_mean"]
        claims = [
            Claim("Linear (fig. 5.2a, eq. 5.11): Gauss-Newton reaches the optimum in a single step.",
                  f"||W1 - W1*|| / ||W1(0) - W1*|| after one GN step = {gn_one:.1e} (batch size 1).",
                  holds=bool(gn_one < 1e-8), values={"relative_distance_after_1_step": gn_one}),
            Claim("Linear (fig. 5.2b, eq. 5.9): TP's updates point in the Gauss-Newton direction W1* - W1 but it needs "
                  "multiple steps (eta_hat = 0.8).",
                  f"min cos(Delta W_TP, W1* - W1) over the {len(tp_cos)} steps taken farther than {REACHED:g} "
                  f"(relative) from W1* = {min(tp_cos):.10f}; relative distance below 1e-3 after {tp_reach} steps.",
                  holds=bool(min(tp_cos) > 1 - 1e-6 and (tp_reach is None or tp_reach > 1)),
                  values={"min_cos": min(tp_cos), "steps_to_1e-3": tp_reach}),
            Claim("Linear (fig. 5.2c, eqs. 5.7, 5.12): BP follows the gradient direction "
                  "-eta E[h0^2] W2^T W2 (W1 - W1*), which weights the parameter error by W2^T W2 instead of following "
                  "the Gauss-Newton direction (eta = 0.3).",
                  f"max |Delta W_BP - eq. 5.7| / |W1| over the steps = {lin['BP_deviation_from_eq_5_7']:.1e}; "
                  f"cos(Delta W_BP, W1* - W1): first step {bp_cos[0]:.3f}, mean {np.mean(bp_cos):.3f}, min "
                  f"{min(bp_cos):.3f} over {len(bp_cos)} steps (TP and GN: 1); cond(W2) = "
                  f"{r['w2_singular_values'][0] / r['w2_singular_values'][1]:.1f}. How far BP turns from the GN "
                  "direction depends on cond(W2) and on the start, which the thesis does not give.",
                  holds=bool(lin["BP_deviation_from_eq_5_7"] < 1e-12 and min(bp_cos) < 1 - 1e-6),
                  values={"deviation_from_eq_5_7": lin["BP_deviation_from_eq_5_7"], "first_cos": bp_cos[0],
                          "mean_cos": float(np.mean(bp_cos)), "min_cos": min(bp_cos),
                          "cond_w2": r["w2_singular_values"][0] / r["w2_singular_values"][1]}),
            Claim("Linear (fig. 5.2c): BP's trajectory zig-zags towards the optimum.",
                  f"{lin['BP_turns']} of {lin['BP_steps'] - 1} consecutive BP steps turn by more than 90 degrees "
                  f"(fraction {bp_turn_fraction:.2f}); final relative distance "
                  f"{lin['relative_distance']['BP'][-1]:.2e} after {len(lin['relative_distance']['BP']) - 1} steps. "
                  f"W2 was drawn in the oscillating-but-stable regime 1 < eta sigma_max(W2)^2 < 2 (here "
                  f"{lin['eta_bp_sigma_max_sq']:.2f}) that the figure shows; whether the oscillation is visible also "
                  "depends on the start (the thesis gives neither).",
                  holds=bool(lin["BP_turns"] > 0 and lin["relative_distance"]["BP"][-1] < 1.0), robust=False,
                  values={"turns": lin["BP_turns"], "turn_fraction": bp_turn_fraction,
                          "eta_sigma_max_sq": lin["eta_bp_sigma_max_sq"]}),
            Claim("Leaky ReLU (fig. 5.3a, eq. 5.20): Gauss-Newton needs two steps (start and optimum in different "
                  "regions of the nonlinearity).",
                  f"relative distance after 1 GN step {gn_nl[1]:.2e}, after 2 steps {gn_nl[2]:.1e}.",
                  holds=bool(gn_nl[2] < 1e-8 and gn_nl[1] > 1e-3),
                  values={"after_1_step": gn_nl[1], "after_2_steps": gn_nl[2]}),
            Claim("Leaky ReLU (fig. 5.3b, eqs. 5.17, 5.20): TP's first step (D_s = I) lies in the Gauss-Newton "
                  "direction; its magnitude is eta_hat h0^2 times GN's (\"roughly equal\" since E[h0^2] = 1).",
                  f"cos(first TP step, GN step) = {first_cos:.12f}; norm ratio {first_ratio:.4f} against "
                  f"eta_hat h0^2 = {eta_hat * h0_sq:.4f} for the drawn sample h0 = {nl['h0']:.4f}.",
                  holds=bool(first_cos > 1 - 1e-9 and abs(first_ratio - eta_hat * h0_sq) < 1e-6 * max(1, first_ratio)),
                  values={"cos": first_cos, "ratio": first_ratio, "eta_hat_h0_sq": eta_hat * h0_sq}),
            Claim("Leaky ReLU (fig. 5.3b): after its first step TP \"suffers from the same slow convergence as "
                  "gradient descent\", needing many steps where Gauss-Newton needs two.",
                  f"relative distance after {len(nl['relative_distance']['TP']) - 1} TP steps = {tp_nl_final:.2e}; "
                  f"below 1e-2 after {tp_nl_reach} steps (None: not reached); Gauss-Newton: 2 steps.",
                  holds=bool(tp_nl_reach is None or tp_nl_reach > 10),
                  values={"steps_to_1e-2": tp_nl_reach, "final_relative_distance": tp_nl_final}),
            Claim("Leaky ReLU (eqs. 5.21-5.22): once TP's iterate is in the optimum's (negative) region, "
                  "D_s = D_s* = 0.1 I and Delta W_TP = 0.1^2 eta_hat h0^2 Delta W_GN (the text prints \"0.12\", the "
                  "exponent lost in typesetting).",
                  (f"mean |Delta W_TP| / |Delta W_GN| over {len(negative)} TP steps in the negative region = "
                   f"{neg_mean:.6g}, predicted 0.1^2 eta_hat h0^2 = {predicted:.6g}." if negative else
                   f"TP never entered the negative region in {len(nl['relative_distance']['TP']) - 1} steps "
                   f"(h0^2 = {h0_sq:.3g} makes its steps small), so the ratio cannot be measured."),
                  holds=(bool(abs(neg_mean - predicted) < 1e-6 * predicted) if negative else None),
                  robust=bool(negative),
                  values={"measured_ratio": neg_mean, "predicted_ratio": predicted,
                          "negative_region_steps": len(negative)}),
            Claim("Fig. 5.4: modified TP (D_s^-1, batch normalisation, eta eta_hat = 1) reaches the optimum in two "
                  "steps, like Gauss-Newton.",
                  f"relative distance after 1 MTP step {mtp[1]:.2e}, after 2 steps {mtp[2]:.1e} (batch normalisation "
                  "of the single sample: scaling to unit second moment, see the module notes).",
                  holds=bool(mtp[2] < 1e-6), values={"after_1_step": mtp[1], "after_2_steps": mtp[2]}),
        ]
        return Summary(data=data, claims=claims, figure=self._figure(r, settings))

    @staticmethod
    def _figure(r, settings):
        fig = Figure(figsize=(17, 8), layout="constrained")
        axes = fig.subplots(2, 4)
        rows = (("linear", r["linear"], ("GN", "TP", "BP")),
                ("leaky ReLU (0.1)", r["nonlinear"], ("GN", "TP", "BP", "MTP")))
        labels = {"GN": "Gauss-Newton", "TP": "target propagation", "BP": "backpropagation", "MTP": "modified TP"}
        rates = {("linear", "TP"): f"eta_hat = {settings['eta_hat_tp_linear']}",
                 ("linear", "BP"): f"eta = {settings['eta_bp_linear']}",
                 ("leaky ReLU (0.1)", "TP"): f"eta_hat = {settings['eta_hat_tp_nonlinear']}",
                 ("leaky ReLU (0.1)", "BP"): f"eta = {settings['eta_bp_nonlinear']}",
                 ("leaky ReLU (0.1)", "MTP"): "eta eta_hat = 1"}
        for row, (case, data, methods) in enumerate(rows):
            c = data["contours"]
            aa, bb = np.meshgrid(np.array(c["a"]), np.array(c["b"]), indexing="ij")
            for col, method in enumerate(methods):
                ax = axes[row, col]
                ax.contour(aa, bb, np.array(c["log10_loss"]), levels=20, cmap="Blues")
                path = np.array(data["paths"][method])
                path = path[np.isfinite(path).all(1)]
                ax.plot(path[:, 0], path[:, 1], "r*-", ms=5, lw=0.8)
                ax.plot(*data["w1_star"], "kx", ms=10, mew=2)
                ax.set_xlim(c["a"][0], c["a"][-1])
                ax.set_ylim(c["b"][0], c["b"][-1])
                ax.set_title(f"{case}: {labels[method]}" + (f" ({rates[(case, method)]})" if (case, method) in rates
                                                             else ""), fontsize=9)
                ax.set_xlabel(r"$W_1^{(1)}$")
                ax.set_ylabel(r"$W_1^{(2)}$")
        ax = axes[0, 3]
        for method, values in r["linear"]["relative_distance"].items():
            ax.semilogy(range(len(values)), np.maximum(values, 1e-17), ".-", label=method)
        ax.set_xlabel("iteration")
        ax.set_ylabel(r"$\|W_1 - W_1^*\| / \|W_1(0) - W_1^*\|$")
        ax.set_title("linear: distance to the optimum", fontsize=9)
        ax.legend(fontsize=8)
        fig.suptitle("Toy example (figs 5.2-5.4): contours of log10 loss, iterations as red stars, optimum x")
        return fig
