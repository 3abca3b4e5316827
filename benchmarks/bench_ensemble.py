"""Per-seed epoch time of every learning rule: an ensemble of S seeds (tpdynamics.ensemble) vs S serial runs.

For each registered rule, on its home experiment of the thesis (6-6-6 students; batch 1 x 2000 steps
for the exact-inverse rules and BP, batch 32 x 60 for the others; ``--batches-per-epoch`` shortens
the epochs), the S problems are drawn first, then timed side by side in one process:

* ``serial``: the runner's per-run loop, one seed after another (today's path, ``--no-ensemble``);
* ``ensemble``: :func:`tpdynamics.ensemble.train_ensemble`, all S seeds in one stacked computation.

Both include the evaluation on the training and test sets before and after the epoch, as a runner
epoch does. Reported: milliseconds per seed-epoch and the ratio (goal: >= 10x at S = 10). With
``--diagnostics`` it also times the diagnosed epoch (``diagnostics_every`` steps) against the plain
one for both paths (goal: <= 2x).

With ``--twins`` it times instead each randomized rule with its base (``rtp-ai`` with ``tp-ai``, ...: the pairs
:func:`tpdynamics.ensemble.ensemble_class` joins), S seeds of each, three ways: serial (2 S runs), two ensembles
of S (one per rule) and one ensemble of 2 S (both rules, as the runner and ``reproduce`` now train them);
reported per seed-epoch of the pair.

Run:  python benchmarks/bench_ensemble.py [--seeds 10] [--batches-per-epoch N] [--methods tp-ei,bp]
      [--epochs 3] [--diagnostics] [--diagnostics-every K] [--threads 1] [--device cpu] [--clock cpu|wall]
      [--twins]

Not measured here: the continuous models' ensemble (``benchmarks/bench_continuous.py``) and ``reproduce`` with
ensembles (its wall time is in the README, "Reproducing the thesis").

One torch thread by default (the policy for these sizes). The machine this was written on is shared
and noisy: each case is timed ``--repeats`` times, interleaved, and the best is kept.
"""
from __future__ import annotations

import argparse
import time

import torch

from tpdynamics.ensemble import ensemble_class, train_ensemble
from tpdynamics.network import make_generator
from tpdynamics.training.data import derived_seed
from tpdynamics.training.presets import RUN_SETTINGS
from tpdynamics.training.rules import LEARNING_RULES
from tpdynamics.training.runner import TrainingConfig, _problem, _train_run, training_tasks


def _setup(method: str, seeds: int, batches: int | None, diagnostics: bool, every: int, epochs: int):
    config = TrainingConfig(methods=(method,), seeds=seeds, epochs=epochs, batches_per_epoch=batches,
                            diagnostics=diagnostics, diagnostics_every=every, n_test=1000)
    names, hyper, settings, tasks = training_tasks(config)
    hyper = hyper[names[0]]
    problems = [_problem(config, settings, s) for s in config.seed_list()]
    cls = LEARNING_RULES.get(method)
    # the rule's own hyper-parameters, as run_training_task builds them (the run settings are the loop's)
    arguments = {k: v for k, v in hyper.items() if k not in RUN_SETTINGS or k == "loss_convention"}

    def rules():
        return [cls(**arguments, trainable_layers=p.trainable_layers, generator=make_generator(derived_seed(s, "rule")))
                for p, s in zip(problems, config.seed_list())]

    return config, hyper, settings, problems, rules


def _clock(clock: str) -> float:
    return time.process_time() if clock == "cpu" else time.perf_counter()


def _time_serial(setup, clock) -> float:
    config, hyper, settings, problems, rules = setup
    made = rules()
    start = _clock(clock)
    for rule, problem, seed in zip(made, problems, config.seed_list()):
        _train_run(rule, problem, hyper, settings, config, seed, None)
    return _clock(clock) - start


def _time_ensemble(setup, device, clock) -> float:
    config, hyper, settings, problems, rules = setup
    made = rules()
    start = _clock(clock)
    train_ensemble(made, problems, hyper, settings, config, config.seed_list(), device=device)
    if device != "cpu":
        torch.cuda.synchronize()
    return _clock(clock) - start


def _time_together(setups, device, clock) -> float:
    """One ensemble of the members of all ``setups`` (twin rules, one schedule: the first's)."""
    config, hyper, settings = setups[0][:3]
    rules = [r for setup in setups for r in setup[4]()]
    problems = [p for setup in setups for p in setup[3]]
    seeds = [s for setup in setups for s in setup[0].seed_list()]
    start = _clock(clock)
    train_ensemble(rules, problems, hyper, settings, config, seeds, device=device)
    return _clock(clock) - start


def _twins(args) -> None:
    """``--twins``: each randomized rule with its base, serial vs one ensemble per rule vs one for both."""
    print(f"{'pair':18s} {'serial ms/seed-epoch':>21s} {'2 ensembles':>12s} {'1 ensemble':>11s} "
          f"{'serial/2':>9s} {'serial/1':>9s} {'2/1':>6s}")
    methods = [m for m in args.methods.split(",") if ensemble_class(LEARNING_RULES.get(m)) is not LEARNING_RULES.get(m)]
    for method in methods:
        base = ensemble_class(LEARNING_RULES.get(method)).name
        setups = [_setup(m, args.seeds, args.batches_per_epoch, False, 1, args.epochs) for m in (base, method)]
        if setups[0][1]["batch_size"] != setups[1][1]["batch_size"]:
            print(f"{base}+{method}: different batch schedules, not one ensemble")
            continue
        serial, apart, together = [], [], []
        for _ in range(args.repeats):
            serial.append(sum(_time_serial(setup, args.clock) for setup in setups))
            apart.append(sum(_time_ensemble(setup, args.device, args.clock) for setup in setups))
            together.append(_time_together(setups, args.device, args.clock))
        per_seed = 1e3 / (2 * args.seeds * args.epochs)
        a, b, c = (min(t) * per_seed for t in (serial, apart, together))
        print(f"{base + '+' + method:18s} {a:21.1f} {b:12.1f} {c:11.1f} {a / b:8.1f}x {a / c:8.1f}x {b / c:5.2f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batches-per-epoch", type=int, default=None, help="default: the thesis's (2000 / 60)")
    parser.add_argument("--methods", default=",".join(LEARNING_RULES.names()))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per run; the time is divided by them (a run's set-up is shared, as in real runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--diagnostics", action="store_true", help="also time the diagnosed epochs")
    parser.add_argument("--diagnostics-every", type=int, default=1)
    parser.add_argument("--twins", action="store_true",
                        help="time each randomized rule with its base: serial, two ensembles, one ensemble")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (default; on a shared machine it leaves out the time other "
                             "processes hold the core), wall: elapsed time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}, S = {args.seeds} "
          f"seeds, batches per epoch: {args.batches_per_epoch or 'thesis'}, {args.epochs} epochs per run; {args.clock} "
          f"time, best of {args.repeats}")
    header = f"{'method':10s} {'batch x steps':>14s} {'serial ms/seed-epoch':>21s} {'ensemble ms/seed-epoch':>23s} " \
             f"{'speed-up':>9s}"
    if args.diagnostics:
        header += f" {'diag/plain serial':>18s} {'diag/plain ensemble':>20s}"
    if args.twins:
        _twins(args)
        return
    print(header)
    for method in methods:
        plain = _setup(method, args.seeds, args.batches_per_epoch, False, 1, args.epochs)
        diag = _setup(method, args.seeds, args.batches_per_epoch, True, args.diagnostics_every, args.epochs) \
            if args.diagnostics else None
        serial, ensemble, serial_d, ensemble_d = [], [], [], []
        for _ in range(args.repeats):
            serial.append(_time_serial(plain, args.clock))
            ensemble.append(_time_ensemble(plain, args.device, args.clock))
            if diag is not None:
                serial_d.append(_time_serial(diag, args.clock))
                ensemble_d.append(_time_ensemble(diag, args.device, args.clock))
        hyper = plain[1]
        per_seed = 1e3 / (args.seeds * args.epochs)
        line = (f"{method:10s} {hyper['batch_size']:>5d} x {hyper['batches_per_epoch']:<6d} "
                f"{min(serial) * per_seed:21.1f} {min(ensemble) * per_seed:23.1f} {min(serial) / min(ensemble):8.1f}x")
        if diag is not None:
            line += f" {min(serial_d) / min(serial):17.2f}x {min(ensemble_d) / min(ensemble):19.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
