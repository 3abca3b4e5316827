"""``tpdynamics compare {alignment,trajectories,predictions}``: continuous weight dynamics vs discrete updates."""
from __future__ import annotations

import argparse

from tpdynamics.validation import check_positive

from .common import add_output_arguments, emit_json, integer, layer_sizes, say, warn_no_effect


def _mus(text: str) -> tuple[float, ...]:
    """argparse type for ``--mus 0.2,0.1,...``: values of mu in (0, 1)."""
    try:
        values = tuple(float(m) for m in text.split(",") if m.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"--mus must be comma-separated numbers such as 0.2,0.1,0.05, got {text!r}")
    bad = [m for m in values if not 0.0 < m < 1.0]
    if bad:
        raise argparse.ArgumentTypeError(
            f"--mus {text!r} contains {bad[0]:g}; every mu must lie in (0, 1): the comparison divides by the layer "
            "factor (mu/(1-mu))^(L+1-i), which is 0 at mu=0. Use e.g. 0.2,0.1,0.05")
    return values


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="continuous learning (chapter 6) vs the discrete rules (Appendix A)",
        description="alignment: continuous update / layer factor vs the discrete rule's update over a sweep of mu; "
                    "trajectories: continuous vs discrete learning on the student-teacher task with matched budgets; "
                    "predictions: the three predictions of section 6.8, measured and fitted.")
    p.add_argument("comparison", choices=("alignment", "trajectories", "predictions"),
                   help="which comparison to run (see the description above)")
    p.add_argument("--seed", type=integer("--seed", 0, 0), default=0,
                   help="seed of network, inputs and labels (alignment, predictions; default 0)")
    p.add_argument("--mus", type=_mus, default="0.2,0.1,0.05,0.025,0.0125",
                   help="mu sweep, values in (0, 1) (alignment; predictions uses the first three; "
                        "default 0.2,0.1,0.05,0.025,0.0125)")
    p.add_argument("--eta-hat", type=float, default=None,
                   help="output target step (default 0.01; 0.1 for trajectories)")
    p.add_argument("--layers", type=layer_sizes, default=None, metavar="N0,...,NL",
                   help="architecture (default 4,4,4,4,4 for alignment, 6,6,6 for trajectories)")
    g = p.add_argument_group("trajectories")
    g.add_argument("--seeds", type=integer("--seeds", 1, 3), default=3,
                   help="number of random runs (seeds 0..N-1; default 3)")
    g.add_argument("--steps", type=integer("--steps", 1, 400), default=400,
                   help="samples presented (batch size 1; default 400)")
    g.add_argument("--eta", type=float, default=0.01,
                   help="learning rate = integrated time per sample (default 0.01)")
    g.add_argument("--mu", type=float, default=0.1, help="mu of the continuous learner, in (0, 1) (default 0.1)")
    g.add_argument("--task", default="student-teacher", metavar="TASK",
                   help="student-teacher (default) or a classification task (digits, mnist1d, idx:PATH): bp, dtp-ai "
                        "and the two-phase network from the same initialisations, per-epoch accuracy")
    g.add_argument("--epochs", type=integer("--epochs", 1, 10), default=None,
                   help="epochs of a classification task (default: the preset's)")
    g.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="train the seeds one after another instead of as one stacked ensemble (the same numbers to "
                        "the equilibrium tolerance; for comparison)")
    add_output_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from analysis import comparisons

    mus = args.mus
    if args.comparison == "trajectories":
        warn_no_effect(args, ("mus", "seed"), "for 'trajectories' (it uses --mu, and seeds 0..--seeds-1)")
    else:
        warn_no_effect(args, ("seeds", "steps", "eta", "mu", "task", "epochs", "ensemble"),
                       f"for {args.comparison!r} (a 'trajectories' option)")
    if args.comparison == "predictions":
        warn_no_effect(args, "layers", "for 'predictions' (section 6.8 fixes its architectures)")
    default_eta_hat = 0.1 if args.comparison == "trajectories" else 0.01
    eta_hat = default_eta_hat if args.eta_hat is None else args.eta_hat  # an explicit 0 reaches the validation
    check_positive("eta_hat", eta_hat)  # before a progress bar starts
    if args.comparison == "alignment":
        result = comparisons.update_alignment(mus=mus, layers=tuple(args.layers or (4, 4, 4, 4, 4)),
                                              eta_hat=eta_hat, seed=args.seed, progress=True)
        for mode, slope in result.slopes.items():
            if slope is None:
                slope_text = "n/a (no mu)" if mode == "multiplexed" else "n/a (needs two or more --mus)"
            else:
                slope_text = f"{slope:.2f}"
            say(args, f"{mode}: relative error vs mu, log-log slope = {slope_text}; at the smallest mu: "
                      f"{max(r['relative_error'] for r in result.rows if r['mode'] == mode and r['mu'] in (None, min(mus))):.2e}")
    elif args.comparison == "trajectories" and args.task != "student-teacher":
        from .classify import run_trajectories

        return run_trajectories(args)
    elif args.comparison == "trajectories":
        result = comparisons.learning_trajectories(layers=tuple(args.layers or (6, 6, 6)), seeds=args.seeds,
                                                   steps=args.steps, eta=args.eta, eta_hat=eta_hat,
                                                   mu=args.mu, progress=True, ensemble=args.ensemble)
        for name, curve in result.curves.items():
            low, high = curve["ci"][-1]
            say(args, f"{name}: test loss {curve['centre'][0]:.4g} -> {curve['centre'][-1]:.4g} (geometric mean of "
                      f"{args.seeds} seeds; 95% log-t interval [{low:.4g}, {high:.4g}])")
    else:
        result = comparisons.section_6_8_predictions(mus=mus[:3], eta_hat=eta_hat, seed=args.seed)
        for mu in result.depth_decay["ratio"]:
            say(args, f"mu={mu}: fitted log layer factor {result.depth_decay['fitted_log_factor'][mu]:.4f}, "
                      f"predicted log(mu/(1-mu)) = {result.depth_decay['predicted_log_factor'][mu]:.4f}")
        for name in ("single_phase", "two_phase"):
            cos = result.reconstruction[name]["cosine"]
            say(args, f"{name} with approximate inverses: cos(signal, e_TP) at layer 1 = "
                      + ", ".join(f"{c[0]:.3f} (mu={m})" for m, c in cos.items()))
        say(args, f"multiplexed: ratio per layer {['%.3f' % r for r in result.multiplexed['ratio']]}, "
                  f"fitted slope vs depth {result.multiplexed['fitted_log_slope_vs_depth']:.3f} (predicted 0)")
    emit_json(args.json, result.to_dict())
    if args.plot:
        say(args, f"wrote {result.save_figure(args.plot)}")
    return 0
