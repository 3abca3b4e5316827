"""Classification on real data from the command line: ``train --task digits|mnist1d|idx:PATH`` and
``compare trajectories --task digits`` (continuous vs discrete learning curves)."""
from __future__ import annotations

import argparse

import torch

from tpdynamics.training.runner import TASKS
from tpdynamics.training.classification import ClassificationConfig, run_classification
from tpdynamics.training.classification_presets import TUNING_SEEDS, tuning_grid
from tpdynamics.training.classification_tuning import tune
from tpdynamics.training.losses import OUTPUT_LOSSES
from tpdynamics.runs import RunInterrupted, sigint_ignored

from .common import emit_json, executor_of, jobs_of, say, store_of, warn_no_effect

#: Options of ``train`` that only the regression tasks read.
REGRESSION_ONLY = ("preset", "layers", "output_nonlinearity", "distance", "batches_per_epoch", "n_train", "n_test",
                   "diagnostics", "epsilon")


def task_spec(text: str) -> str:
    """argparse type of ``--task``: a regression task, ``digits``, ``mnist1d[:SEED[,N]]``, ``idx:PATH`` or ``PATH.npz``."""
    if text in TASKS:
        return text
    from tpdynamics.data import parse_task

    try:
        parse_task(text)
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(f"--task {text!r}: {err} (regression tasks: {', '.join(TASKS)})") from None
    return text


def is_classification(task: str) -> bool:
    return task not in TASKS


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden expects comma-separated positive sizes such as 256,256, got {text!r}")
    return sizes


#: Keys ``--tune-grid`` accepts and their value types.
TUNE_KEYS = {"eta": float, "eta_hat": float, "eta_backward": float, "lambda_": float, "epochs": int, "batch_size": int}


def tune_axis(text: str) -> tuple[str, tuple]:
    """argparse type of ``--tune-grid``: ``NAME=V1,V2,...``, NAME one of :data:`TUNE_KEYS` (``lambda`` for ``lambda_``)."""
    name, sep, values = text.partition("=")
    name = {"lambda": "lambda_"}.get(name.strip().replace("-", "_"), name.strip().replace("-", "_"))
    if not sep or name not in TUNE_KEYS:
        raise argparse.ArgumentTypeError(f"--tune-grid {text!r}: expected NAME=V1,V2,... with NAME one of "
                                         f"{', '.join(k.rstrip('_') for k in TUNE_KEYS)}, e.g. eta=0.1,0.3")
    try:
        parsed = tuple(TUNE_KEYS[name](v) for v in values.split(",") if v.strip())
    except ValueError:
        parsed = ()
    if not parsed or min(parsed) < 0 or (name in ("epochs", "batch_size") and min(parsed) < 1):
        raise argparse.ArgumentTypeError(f"--tune-grid {text!r}: the values of {name} must be comma-separated "
                                         f"{'positive integers' if TUNE_KEYS[name] is int else 'non-negative numbers'}")
    return name, parsed


def add_classification_arguments(parser) -> None:
    g = parser.add_argument_group("classification (--task digits, mnist1d, idx:PATH)")
    g.add_argument("--loss", default="mse", choices=OUTPUT_LOSSES.names(),
                   help="output loss: mse on one-hot targets (the thesis's) or cross-entropy, whose TP output target "
                        "is h_L - eta_hat dL/dh_L (default mse)")
    g.add_argument("--hidden", type=hidden_sizes, default=(256, 256), metavar="N1,...",
                   help="hidden layer sizes (default 256,256: 64-256-256-10 on digits, 40-256-256-10 on mnist1d)")
    g.add_argument("--patience", type=int, default=None,
                   help="early stopping: stop after this many epochs without a better validation accuracy")
    g.add_argument("--mu", type=float, default=None, help="mixing coefficient of the continuous networks (default 0.1)")
    g.add_argument("--tune", action="store_true",
                   help=f"run the task's tuning grid (digits with mse: {tuning_grid('digits')}) on seeds "
                        f"{list(TUNING_SEEDS)} and rank by validation accuracy")
    g.add_argument("--tune-grid", type=tune_axis, nargs="+", default=None, metavar="NAME=V1,V2,...",
                   help="with --tune: search this grid instead (one NAME=V1,V2,... per axis; NAME one of "
                        f"{', '.join(k.rstrip('_') for k in TUNE_KEYS)}), e.g. --tune-grid eta=0.1,0.3 epochs=20,40")


def _config(args) -> ClassificationConfig:
    return ClassificationConfig(
        methods=tuple(args.method), task=args.task, loss=args.loss, hidden=args.hidden, seeds=args.seeds,
        epochs=args.epochs, batch_size=args.batch_size, eta=args.eta, eta_hat=args.eta_hat,
        eta_backward=args.eta_backward, lambda_=args.lambda_, noise_std=args.noise_std, mu=args.mu,
        final_rate_fraction=args.final_rate_fraction, patience=args.patience, nonlinearity=args.nonlinearity,
        dtype=torch.float32 if args.float32 else torch.float64)


def run_train(args) -> int:
    """``tpdynamics train --task digits ...``."""
    warn_no_effect(args, REGRESSION_ONLY, f"with --task {args.task} (a student-teacher option)")
    if args.patience is not None and args.patience < 1:
        raise ValueError(f"--patience={args.patience} must be >= 1 (epochs without a better validation accuracy)")
    if args.tune_grid is not None and not args.tune:
        raise ValueError("--tune-grid needs --tune (it is the grid the tuning searches)")
    if args.tune:
        grids = {m: dict(args.tune_grid) if args.tune_grid else tuning_grid(args.task, args.loss, m)
                 for m in args.method}
        rows = []
        for method in args.method:
            grid = grids[method]
            fixed = {k: getattr(args, k) for k in ("eta", "eta_hat", "eta_backward", "lambda_", "batch_size")
                     if getattr(args, k, None) is not None and k not in grid}
            for row in tune(method, args.task, args.loss, grid=grid, epochs=args.epochs, hidden=args.hidden,
                            progress=not args.quiet, store=store_of(args, args.json), jobs=jobs_of(args), **fixed):
                rows.append({"method": method, **row})
                say(args, f"{method:10s} " + " ".join(f"{k}={v:g}" for k, v in row.items() if k in grid)
                    + f"  validation accuracy {row['val_accuracy']:.4f} [{row['val_low']:.4f}, {row['val_high']:.4f}]"
                    + (f"; {row['failed']} runs stopped early" if row["failed"] else ""))
        emit_json(args.json, {"task": args.task, "loss": args.loss, "grids": grids, "seeds": list(TUNING_SEEDS),
                              "rows": rows})
        return 0
    store = store_of(args, args.json, args.csv, args.plot)
    try:
        result = run_classification(_config(args), progress=not args.quiet, store=store, jobs=jobs_of(args),
                                    fresh=args.fresh, executor=executor_of(args),
                                    ensemble=getattr(args, "ensemble", True), device=getattr(args, "device", None))
    except RunInterrupted as err:
        with sigint_ignored():
            written = write_outputs(args, err.partial)
        raise RunInterrupted(err.summary, f"{err.message}; wrote the finished runs to {', '.join(written) or 'nothing'}",
                             partial=err.partial) from None
    if result.summary is not None and result.summary.reused:
        say(args, f"{result.summary.reuse_message()} ({len(result.summary.tasks)} (method, seed) runs)")
    report(args, result)
    write_outputs(args, result)
    return 0 if all(r.n_failed == 0 for r in result.results.values()) else 1


def report(args, result) -> None:
    for row in result.table():
        interval = f" (95% t interval, cut to [0, 1]: [{row['low']:.4f}, {row['high']:.4f}])" if row["low"] == row["low"] else ""
        say(args, f"{row['method']:12s} test accuracy {row['test_accuracy']:.4f}{interval} over {row['seeds']} seeds, "
                  f"{row['epochs']} epochs, {row['seconds']:.1f} s per run"
                  + (f"; {row['failed']} runs stopped early" if row["failed"] else ""))
        for run in result[row["method"]].runs:
            if run["status"] != "completed":
                say(args, f"  seed {run['seed']}: {run['status']}: {run['message']}")


def write_outputs(args, result) -> list[str]:
    written = []
    emit_json(args.json, result.to_dict())
    if args.json and args.json != "-":
        written.append(args.json)
    if not any(r.runs for r in result.results.values()):
        return written
    if getattr(args, "csv", None):
        say(args, f"wrote {result.write_csv(args.csv)}")
        written.append(args.csv)
    if args.plot:
        from analysis.classification_plots import plot_classification_curves

        say(args, f"wrote {plot_classification_curves(result, args.plot)}")
        written.append(args.plot)
    return written


def run_trajectories(args) -> int:
    """``tpdynamics compare trajectories --task digits``: bp, dtp-ai and the two-phase network from the same
    initialisations, per-epoch accuracy side by side."""
    warn_no_effect(args, ("steps", "layers"), f"with --task {args.task} (the preset's epochs and 64-256-256-10 apply)")
    config = ClassificationConfig(methods=("bp", "dtp-ai", "two-phase"), task=args.task, seeds=args.seeds,
                                  eta_hat=args.eta_hat, mu=args.mu if args.mu != 0.1 else None,
                                  epochs=getattr(args, "epochs", None))
    result = run_classification(config, progress=True, ensemble=getattr(args, "ensemble", True))
    for name, r in result.results.items():
        curve = r.curve("test_accuracy")
        say(args, f"{name}: test accuracy per epoch " + " ".join(f"{c['mean']:.3f}" for c in curve)
            + f" (mean of {len(r.runs)} seeds)")
    emit_json(args.json, result.to_dict())
    if args.plot:
        from analysis.classification_plots import plot_classification_curves

        say(args, f"wrote {plot_classification_curves(result, args.plot, title='continuous vs discrete')}")
    return 0
