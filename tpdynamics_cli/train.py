"""``tpdynamics train``: train discrete TP / DTP / BP rules on the thesis's regression problems."""
from __future__ import annotations

import argparse

import torch

from tpdynamics.training import LEARNING_RULES, LOSS_CONVENTIONS, THESIS_PRESETS, TrainingConfig, run_experiment
from tpdynamics.training.runner import TASKS

from tpdynamics.runs import RunInterrupted, sigint_ignored

from .classify import add_classification_arguments, is_classification, run_train, task_spec
from .common import (add_output_arguments, add_run_arguments, device_spec, emit_json, executor_of, integer, jobs_of,
                     layer_sizes, say, store_of)


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
                    "figures): the geometric mean over seeds with its 95% interval computed on the log scale "
                    "(positive however few the seeds). Options left unset take the thesis's values (--preset, or each method's "
                    "own experiment: section 5.1.3 for the exact-inverse rules and BP, 5.2.2 for the others). "
                    f"Methods: {', '.join(LEARNING_RULES.names())}.")
    p.add_argument("--method", type=_methods, required=True, metavar="NAME[,NAME...]",
                   help="method, a comma-separated list to compare side by side, or 'all'")
    p.add_argument("--task", default="student-teacher", type=task_spec, metavar="TASK",
                   help=f"problem: {', '.join(TASKS)} (regression), or digits, mnist1d, idx:PATH (classification; "
                        "see the classification options) (default student-teacher)")
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
    run.add_argument("--seeds", type=integer("--seeds", 1, 7), default=1,
                     help="number of random runs (seeds 0..N-1; default 1; the thesis averages 7 or 15)")
    run.add_argument("--epochs", type=integer("--epochs", 1, 60), default=None, help="epochs (thesis: 60)")
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
    run.add_argument("--batch-size", type=integer("--batch-size", 1, 32), default=None,
                     help="mini-batch size (thesis: 1 for EI, 32 for AI)")
    run.add_argument("--batches-per-epoch", type=integer("--batches-per-epoch", 1, 60), default=None,
                     help="thesis: 2000 for EI, 60 for AI")
    run.add_argument("--final-rate-fraction", type=float, default=0.2,
                     help="learning rates decay linearly to this fraction of their initial value (thesis 1/5)")
    run.add_argument("--n-train", type=integer("--n-train", 1, 2000), default=None,
                     help="training-set size (default batch x batches)")
    run.add_argument("--n-test", type=integer("--n-test", 1, 1000), default=1000, help="test-set size (default 1000)")
    run.add_argument("--diagnostics", action="store_true",
                     help="record learning-signal diagnostics (e_TP, e_approx, cosines with e_GN and e_BP, ...)")
    run.add_argument("--diagnostics-every", type=integer("--diagnostics-every", 1, 10), default=1, metavar="K",
                     help="with --diagnostics: measure them every K-th step only (default 1: every step)")
    run.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                     help="train the seeds one after another instead of as one stacked ensemble (same numbers, "
                          "to rounding; for comparison)")
    run.add_argument("--device", type=device_spec, default=None, metavar="DEV",
                     help="where the ensemble computes: cpu (default), cuda or cuda:N")
    out = p.add_argument_group("output")
    add_output_arguments(out, plot_help="write a figure of the train and test loss curves (PNG)")
    out.add_argument("--csv", default=None, metavar="FILE", help="write per-epoch geometric mean and 95%% log-scale interval as CSV")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    add_classification_arguments(p)
    add_run_arguments(p, jobs_default=1, store=True)
    p.set_defaults(run=run_command)


def run_command(args) -> int:
    if is_classification(args.task):
        return run_train(args)
    config = TrainingConfig(
        methods=tuple(args.method), task=args.task, layers=args.layers, nonlinearity=args.nonlinearity,
        output_nonlinearity=args.output_nonlinearity, seeds=args.seeds, epochs=args.epochs, preset=args.preset,
        eta=args.eta, eta_hat=args.eta_hat, eta_backward=args.eta_backward, lambda_=args.lambda_,
        epsilon=args.epsilon, noise_std=args.noise_std, loss_convention=args.loss_convention,
        batch_size=args.batch_size,
        batches_per_epoch=args.batches_per_epoch, final_rate_fraction=args.final_rate_fraction,
        n_train=args.n_train, n_test=args.n_test, distance=args.distance, diagnostics=args.diagnostics,
        diagnostics_every=args.diagnostics_every,
        dtype=torch.float32 if args.float32 else torch.float64)
    store = store_of(args, args.json, args.csv, args.plot)
    try:
        result = run_experiment(config, progress=not args.quiet, store=store, jobs=jobs_of(args), fresh=args.fresh,
                                executor=executor_of(args), ensemble=args.ensemble, device=args.device)
    except RunInterrupted as err:  # write what finished, then say so (main prints the line, exit 130)
        with sigint_ignored():
            written = _write_outputs(args, err.partial)
        raise RunInterrupted(err.summary, f"{err.message}; wrote the finished runs to {', '.join(written) or 'nothing'}",
                             partial=err.partial) from None
    if result.summary is not None and result.summary.reused:
        say(args, f"{result.summary.reuse_message()} ({len(result.summary.tasks)} (method, seed) runs)")
    _report(args, result)
    _write_outputs(args, result)
    return 0 if all(r.n_diverged == 0 for r in result.results.values()) else 1


def _report(args, result) -> None:
    for name, r in result.results.items():
        lo, hi = r.test_loss_ci[-1]
        interval = f" (95% log-t interval [{lo:.4g}, {hi:.4g}])" if lo == lo else ""
        say(args, f"{name:10s} test MSE (geometric mean over seeds) {r.test_loss[0]:.4g} -> {r.test_loss[-1]:.4g}"
                  f"{interval} after "
                  f"{r.epochs} epochs; {r.message}")
        for run in r.runs:
            if run.status != "completed":
                say(args, f"  seed {run.seed}: {run.status}: {run.message}")


def _write_outputs(args, result) -> list[str]:
    """The JSON, CSV and figure of ``result`` (complete or partial); the files written."""
    written = []
    emit_json(args.json, result.to_dict())
    if args.json and args.json != "-":
        written.append(args.json)
    if not any(r.runs for r in result.results.values()):
        return written  # nothing finished: no curve to write
    if args.csv:
        say(args, f"wrote {result.write_csv(args.csv)}")
        written.append(args.csv)
    if args.plot:
        from analysis.training_plots import plot_loss_curves

        say(args, f"wrote {plot_loss_curves(result, args.plot)}")
        written.append(args.plot)
    return written
