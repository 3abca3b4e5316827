"""``tpdynamics train``: train discrete TP / DTP / BP rules on the thesis's regression problems."""
from __future__ import annotations

import argparse

import torch

from tpdynamics.training import LEARNING_RULES, LOSS_CONVENTIONS, THESIS_PRESETS, TrainingConfig, run_experiment
from tpdynamics.training.runner import TASKS

from .common import add_output_arguments, emit_json, layer_sizes, say


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if names == ["all"]:
        return LEARNING_RULES.names()
    if not names:
        raise argparse.ArgumentTypeError("--method needs at least one name, e.g. tp-ei or bp,tp-ei,dtp-ai")
    return names


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train discrete learning rules (Appendix A) on a student-teacher problem",
        description="Train one or several methods on identical data and initialisations and report the "
                    "per-epoch train/test MSE (mean over samples and outputs, as torch.nn.MSELoss and the thesis's "
                    "figures), the geometric mean over seeds with a 95%% log-t interval. Options left unset take the thesis's values (--preset, or each method's "
                    "own experiment: section 5.1.3 for the exact-inverse rules and BP, 5.2.2 for the others). "
                    f"Methods: {', '.join(LEARNING_RULES.names())}.")
    p.add_argument("--method", type=_methods, required=True, metavar="NAME[,NAME...]",
                   help="method, a comma-separated list to compare side by side, or 'all'")
    p.add_argument("--task", default="student-teacher", choices=TASKS, help="problem (default student-teacher)")
    p.add_argument("--preset", default=None, choices=sorted(THESIS_PRESETS),
                   help="thesis experiment whose settings and rates to use (default: each method's own)")
    net = p.add_argument_group("network")
    net.add_argument("--layers", type=layer_sizes, default=None, metavar="N0,N1,...,NL",
                     help="layer sizes (default from the preset: 6,6,6)")
    net.add_argument("--nonlinearity", default="leaky_relu:0.35", help="hidden s_i (default leaky_relu:0.35)")
    net.add_argument("--output-nonlinearity", default="identity", help="output s_L (default identity)")
    net.add_argument("--distance", type=float, default=None,
                     help="Frobenius distance of each student matrix from the teacher's (default 8.0; toy 2.0)")
    net.add_argument("--float32", action="store_true", help="use float32 instead of float64")
    run = p.add_argument_group("training (unset: the thesis's value)")
    run.add_argument("--seeds", type=int, default=1, help="number of random runs (seeds 0..N-1; default 1; "
                                                          "the thesis averages 7 or 15)")
    run.add_argument("--epochs", type=int, default=None, help="epochs (thesis: 60)")
    run.add_argument("--eta", type=float, default=None, help="initial forward learning rate eta")
    run.add_argument("--eta-hat", type=float, default=None, help="output target step eta_hat (thesis 0.1)")
    run.add_argument("--eta-backward", type=float, default=None, help="initial backward learning rate (A.8/A.9)")
    run.add_argument("--lambda", dest="lambda_", type=float, default=None,
                     help="weight decay lambda of the inverse loss, eq. 4.97 (thesis 0)")
    run.add_argument("--epsilon", type=float, default=None, help="robust Sherman-Morrison threshold (thesis 0.5)")
    run.add_argument("--noise-std", type=float, default=None, help="std of the white noise of A.8 (default 1)")
    run.add_argument("--loss-convention", default=None, choices=LOSS_CONVENTIONS.names(),
                     help="'thesis': ||h_L - y||^2, factor 2 on e_L and the local gradients (chapter 5 and its "
                          "toolbox; the presets' default); 'half': 1/2 ||h_L - y||^2 (chapter 4)")
    run.add_argument("--batch-size", type=int, default=None, help="mini-batch size (thesis: 1 for EI, 32 for AI)")
    run.add_argument("--batches-per-epoch", type=int, default=None, help="thesis: 2000 for EI, 60 for AI")
    run.add_argument("--final-rate-fraction", type=float, default=0.2,
                     help="learning rates decay linearly to this fraction of their initial value (thesis 1/5)")
    run.add_argument("--n-train", type=int, default=None, help="training-set size (default batch x batches)")
    run.add_argument("--n-test", type=int, default=1000, help="test-set size (default 1000)")
    run.add_argument("--diagnostics", action="store_true",
                     help="record learning-signal diagnostics (e_TP, e_approx, cosines with e_GN and e_BP, ...)")
    out = p.add_argument_group("output")
    add_output_arguments(out, plot_help="write a figure of the train and test loss curves (PNG)")
    out.add_argument("--csv", default=None, metavar="FILE", help="write per-epoch mean and 95%% interval as CSV")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_command)


def run_command(args) -> int:
    config = TrainingConfig(
        methods=tuple(args.method), task=args.task, layers=args.layers, nonlinearity=args.nonlinearity,
        output_nonlinearity=args.output_nonlinearity, seeds=args.seeds, epochs=args.epochs, preset=args.preset,
        eta=args.eta, eta_hat=args.eta_hat, eta_backward=args.eta_backward, lambda_=args.lambda_,
        epsilon=args.epsilon, noise_std=args.noise_std, loss_convention=args.loss_convention,
        batch_size=args.batch_size,
        batches_per_epoch=args.batches_per_epoch, final_rate_fraction=args.final_rate_fraction,
        n_train=args.n_train, n_test=args.n_test, distance=args.distance, diagnostics=args.diagnostics,
        dtype=torch.float32 if args.float32 else torch.float64)
    result = run_experiment(config, progress=not args.quiet)
    for name, r in result.results.items():
        lo, hi = r.test_loss_ci[-1]
        interval = f" (95% log-t interval [{lo:.4g}, {hi:.4g}])" if lo == lo else ""
        say(args, f"{name:10s} test MSE (geometric mean over seeds) {r.test_loss[0]:.4g} -> {r.test_loss[-1]:.4g}"
                  f"{interval} after "
                  f"{r.epochs} epochs; {r.message}")
        for run in r.runs:
            if run.status != "completed":
                say(args, f"  seed {run.seed}: {run.status}: {run.message}")
    emit_json(args.json, result.to_dict())
    if args.csv:
        say(args, f"wrote {result.write_csv(args.csv)}")
    if args.plot:
        from analysis.training_plots import plot_loss_curves

        say(args, f"wrote {plot_loss_curves(result, args.plot)}")
    return 0 if all(r.n_diverged == 0 for r in result.results.values()) else 1
