"""Classification runs of the discrete rules: S seeds as one ensemble against the same seeds one after another.

Task: a classification task of :mod:`tpdynamics.data` (default ``digits``, 64-H-H-10; ``--task mnist1d`` for
40-H-H-10), MSE on one-hot targets, each rule's preset rates, ``--epochs`` epochs, S = ``--seeds`` seeds (each its
own split and initialisation). Baseline: ``run_classification(..., ensemble=False)``, the serial per-(method, seed)
loop a user would otherwise write (and the path before the classification ensemble). Ours: the default,
``run_classification(...)``, where a method's seeds (a rule and its randomized twin together) train as one
ensemble (:mod:`tpdynamics.ensemble.classification`). Both run side by side in one process, one method at a time,
interleaved, best of ``--repeat``, CPU time per seed-epoch (evaluation of the three splits after each epoch
included); the final test accuracies of the two paths are printed (they agree to round-off).

Run: ``python benchmarks/bench_classification.py [--task digits] [--hidden 64,64 256,256] [--seeds 10]
[--epochs 2] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import time

import torch

from tpdynamics.training import ClassificationConfig, run_classification

METHODS = ("bp", "fa", "tp-ai", "rtp-ai", "dtp-ai", "rdtp-ai", "tp-orig", "dtp-orig", "mtp", "rmtp")


def _timed(config, ensemble: bool, threads: int):
    start = time.process_time()
    result = run_classification(config, ensemble=ensemble, threads=threads)
    return time.process_time() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--hidden", nargs="+", default=["64,64", "256,256"], help="hidden sizes, one case each")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), task {args.task}, S = {args.seeds} seeds, "
          f"{args.epochs} epochs, MSE, float64, CPU time per seed-epoch, best of {args.repeat}")
    for hidden in args.hidden:
        sizes = tuple(int(h) for h in hidden.split(","))
        print(f"\nhidden {'-'.join(map(str, sizes))}:")
        print(f"  {'method':<9s} {'serial ms':>10s} {'ensemble ms':>12s} {'ratio':>7s}   final test accuracy serial / ensemble")
        ratios = []
        for method in methods:
            config = ClassificationConfig(methods=(method,), task=args.task, hidden=sizes, seeds=args.seeds,
                                          epochs=args.epochs)
            best = {True: float("inf"), False: float("inf")}
            accuracy = {}
            for _ in range(args.repeat):
                for ensemble in (False, True):  # interleaved, so that a change of load favours neither
                    seconds, result = _timed(config, ensemble, args.threads)
                    best[ensemble] = min(best[ensemble], seconds)
                    accuracy[ensemble] = result[method].final("test_accuracy")["mean"]
            per = args.seeds * args.epochs
            ratio = best[False] / best[True]
            ratios.append(ratio)
            print(f"  {method:<9s} {1000 * best[False] / per:10.1f} {1000 * best[True] / per:12.1f} {ratio:6.1f}x   "
                  f"{accuracy[False]:.4f} / {accuracy[True]:.4f}")
        print(f"  ratio serial / ensemble: min {min(ratios):.1f}x, max {max(ratios):.1f}x")


if __name__ == "__main__":
    main()
