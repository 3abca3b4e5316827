"""One epoch of continuous learning vs the same epoch of discrete tp-ei, serial and as an ensemble; where the time goes.

Task: the student–teacher problem of section 5.1.3 (6-6-6, leaky ReLU 0.35, linear output, exact
inverses), one epoch of ``--samples`` training samples presented one at a time, for ``--seeds`` seeds
(each its own teacher, data and initialisation).

* discrete: ``tp-ei`` (Alg. A.4), learning rate ``eta``, one step per sample;
* continuous: the time-scale-separated weight ODE of the single-phase network (eq. 6.17, layer factor
  compensated) integrated over ``[0, eta]`` per sample with one RK4 step: four batch-1 equilibria per
  sample, each warm-started from the previous evaluation's (:func:`tpdynamics.continuous.integrate_weights`);
  and with one Euler step (``--integrators rk4,euler``, the default): one equilibrium per sample, the
  first-order integration whose step is the discrete rule's limit case;
* the same Euler step as the classification runner takes it (``continuous learner`` rows:
  :class:`tpdynamics.training.ContinuousLearner` and :class:`tpdynamics.ensemble.EnsembleContinuousLearner`, no
  torchdiffeq, each equilibrium from the forward pass instead of a warm start).

Serial: the seeds one after another (``LearningRule.step``, ``integrate_weights``). Ensemble: the seeds as
one stacked computation (:class:`tpdynamics.ensemble.EnsembleTrainer`,
:func:`tpdynamics.ensemble.integrate_weights_ensemble`: every RK4 evaluation solves the S members'
equilibria as one batch). All four run side by side in one process on the same data and initial
weights, CPU time per seed-epoch, best of ``--repeat``; the ensemble's final weights are checked against
the serial ones. Then a profile of one serial and one ensemble continuous epoch.

Run: ``python benchmarks/bench_continuous.py [--samples 500] [--seeds 10] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from tpdynamics.continuous import get_model, integrate_weights
from tpdynamics.ensemble import EnsembleNetwork, EnsembleTrainer
from tpdynamics.ensemble.continuous import EnsembleContinuousLearner, integrate_weights_ensemble
from tpdynamics.training import ContinuousLearner, get_learning_rule, mean_squared_error, student_teacher


def epoch_discrete(problems, n, eta, eta_hat):
    nets = [p.student("exact") for p in problems]
    for p, net in zip(problems, nets):
        rule = get_learning_rule("tp-ei", eta=eta, eta_hat=eta_hat)
        for k in range(n):
            rule.step(net, p.train_inputs[k:k + 1], p.train_labels[k:k + 1])
    return nets


def _ensemble_epoch(problems, n, trainer_of):
    """One epoch of the members' students as one ensemble, ``trainer_of(ensemble).step(x, y)`` per sample."""
    nets = [p.student("exact") for p in problems]
    ensemble = EnsembleNetwork(nets)
    trainer = trainer_of(ensemble)
    x = ensemble.stack([p.train_inputs[:n] for p in problems])
    y = ensemble.stack([p.train_labels[:n] for p in problems])
    for k in range(n):
        trainer.step(x[:, k:k + 1], y[:, k:k + 1])
    ensemble.sync_members()
    return nets


def epoch_discrete_ensemble(problems, n, eta, eta_hat):
    rules = [get_learning_rule("tp-ei", eta=eta, eta_hat=eta_hat) for _ in problems]
    return _ensemble_epoch(problems, n, lambda ensemble: EnsembleTrainer(rules, ensemble))


SOLVER = "auto"


def _learner(eta, eta_hat, mu, tol):
    return ContinuousLearner("single-phase", eta=eta, eta_hat=eta_hat, mu=mu, eta_backward=0.0, tol=tol)


def epoch_learner(problems, n, eta, eta_hat, mu, tol):
    """The classification runner's continuous learner: one explicit Euler step per sample without torchdiffeq."""
    nets = [p.student("exact") for p in problems]
    for p, net in zip(problems, nets):
        learner = _learner(eta, eta_hat, mu, tol)
        for k in range(n):
            learner.step(net, p.train_inputs[k:k + 1], p.train_labels[k:k + 1])
    return nets


def epoch_learner_ensemble(problems, n, eta, eta_hat, mu, tol):
    learners = [_learner(eta, eta_hat, mu, tol) for _ in problems]
    return _ensemble_epoch(problems, n, lambda ensemble: EnsembleContinuousLearner(learners, ensemble))


def _model(mu, eta_hat, tol):
    return get_model("single_phase", mu=mu, eta_hat=eta_hat, compensate_layer_factor=True, tol=tol, solver=SOLVER)


def epoch_continuous(problems, n, eta, eta_hat, mu, tol, method="rk4"):
    nets = [p.student("exact") for p in problems]
    model = _model(mu, eta_hat, tol)
    span = torch.tensor([0.0, eta], dtype=torch.float64)
    for p, net in zip(problems, nets):
        for k in range(n):
            integrate_weights(model, net, p.train_inputs[k:k + 1], p.train_labels[k:k + 1], span, method=method)
    return nets


def epoch_continuous_ensemble(problems, n, eta, eta_hat, mu, tol, method="rk4"):
    nets = [p.student("exact") for p in problems]
    ensemble = EnsembleNetwork(nets)
    model = _model(mu, eta_hat, tol)
    span = torch.tensor([0.0, eta], dtype=torch.float64)
    x = ensemble.stack([p.train_inputs[:n] for p in problems])
    y = ensemble.stack([p.train_labels[:n] for p in problems])
    for k in range(n):
        integrate_weights_ensemble(model, ensemble, x[:, k:k + 1], y[:, k:k + 1], span, method=method)
    return nets


def timed(function, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        out = function()
        best = min(best, time.process_time() - start)
    return best, out


def weight_gap(a, b):
    return max(float((x.weight - y.weight).detach().abs().max()) for na, nb in zip(a, b) for x, y in zip(na.layers, nb.layers))


def profile(label, function, groups):
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"\n{label}: {total:.2f} s profiled (rows overlap: a solve contains its right-hand-side evaluations)")
    for name, (file_part, func) in groups.items():
        cum = sum(v[3] for k, v in stats.stats.items() if file_part in k[0] and k[2] == func)
        print(f"  {name:<52s} {cum:7.2f} s  ({100 * cum / total:5.1f} %)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=500, help="samples in the epoch (thesis: 2000)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds S (ensemble members)")
    parser.add_argument("--eta", type=float, default=0.01)
    parser.add_argument("--eta-hat", type=float, default=0.1)
    parser.add_argument("--mu", type=float, default=0.1)
    parser.add_argument("--tol", type=float, default=1e-10, help="equilibrium tolerance of the continuous model")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--solver", default="auto", help="equilibrium solver of the continuous model (default auto)")
    parser.add_argument("--integrators", default="rk4,euler",
                        help="torchdiffeq methods of the continuous epoch, one step per sample (default rk4,euler)")
    parser.add_argument("--no-learner", dest="learner", action="store_false",
                        help="leave out the ContinuousLearner rows (the classification runner's Euler step)")
    args = parser.parse_args(argv)
    global SOLVER
    SOLVER = args.solver
    torch.set_num_threads(args.threads)
    n, S = args.samples, args.seeds
    problems = [student_teacher((6, 6, 6), n_train=n, n_test=500, seed=seed) for seed in range(S)]
    print(f"student-teacher 6-6-6, one epoch of {n} samples (batch 1) per seed, S={S} seeds, eta={args.eta}, "
          f"eta_hat={args.eta_hat}, mu={args.mu}, tol={args.tol:g}, solver={args.solver} (continuous), float64, CPU time per seed-epoch, "
          f"best of {args.repeat}, torch threads={torch.get_num_threads()}")
    integrators = args.integrators.split(",")
    runs = {
        "discrete tp-ei, serial": lambda: epoch_discrete(problems, n, args.eta, args.eta_hat),
        "discrete tp-ei, ensemble": lambda: epoch_discrete_ensemble(problems, n, args.eta, args.eta_hat),
    }
    for method in integrators:
        runs[f"continuous {method}, serial"] = (lambda m=method: epoch_continuous(problems, n, args.eta, args.eta_hat,
                                                                                    args.mu, args.tol, m))
        runs[f"continuous {method}, ensemble"] = (lambda m=method: epoch_continuous_ensemble(
            problems, n, args.eta, args.eta_hat, args.mu, args.tol, m))
    if args.learner:
        integrators.append("learner")  # ContinuousLearner: Euler without torchdiffeq (one equilibrium per sample)
        runs["continuous learner, serial"] = lambda: epoch_learner(problems, n, args.eta, args.eta_hat, args.mu,
                                                                   args.tol)
        runs["continuous learner, ensemble"] = lambda: epoch_learner_ensemble(problems, n, args.eta, args.eta_hat,
                                                                              args.mu, args.tol)
    seconds, nets = {}, {}
    for name, function in runs.items():
        total, nets[name] = timed(function, args.repeat)
        seconds[name] = total / S
    for name, value in seconds.items():
        with torch.no_grad():
            loss = sum(mean_squared_error(net(p.test_inputs)[-1], p.test_labels) for net, p in zip(nets[name], problems))
        print(f"  {name:<30s} {1000 * value:9.1f} ms / seed-epoch   mean test loss after the epoch {loss / S:.4g}")
    gaps = ", ".join(f"continuous {m} {weight_gap(nets[f'continuous {m}, serial'], nets[f'continuous {m}, ensemble']):.1e}"
                     for m in integrators)
    print(f"  ensemble = serial weights (max |dW|): discrete "
          f"{weight_gap(nets['discrete tp-ei, serial'], nets['discrete tp-ei, ensemble']):.1e}, {gaps}")
    ds, de = seconds["discrete tp-ei, serial"], seconds["discrete tp-ei, ensemble"]
    print("ratios (goal: continuous / discrete epoch <= 5x):")
    for method in integrators:
        cs, ce = seconds[f"continuous {method}, serial"], seconds[f"continuous {method}, ensemble"]
        print(f"  {method}: continuous / discrete, both serial:      {cs / ds:6.1f}x")
        print(f"  {method}: continuous / discrete, both ensembles:   {ce / de:6.1f}x")
        print(f"  {method}: continuous ensemble / discrete serial:   {ce / ds:6.1f}x")
        print(f"  {method}: ensemble speed-up: discrete {ds / de:.1f}x, continuous {cs / ce:.1f}x per seed-epoch")
    if args.no_profile:
        return
    groups = {
        "equilibrium solves (tp.equilibrium)": ("_solve.py", "equilibrium"),
        "  right-hand-side evaluations (drive, drive_group)": ("mixture.py", "_node_drive"),
        "  ... of the ensemble dynamics": ("ensemble/dynamics.py", "_node_drive"),
        "  result assembly (make_result, retire, finish)": ("_result.py", "make_result"),
        "weight velocities (serial)": ("continuous/models.py", "weight_velocities"),
        "weight velocities (ensemble)": ("ensemble/continuous.py", "weight_velocities"),
        "loading weights + exact inverses (serial)": ("continuous/flows.py", "load"),
        "loading weights + exact inverses (ensemble)": ("ensemble/continuous.py", "load"),
        "torchdiffeq RK4 (everything inside odeint)": ("torchdiffeq/_impl/odeint.py", "odeint"),
    }
    profile("serial continuous epoch (one seed)", lambda: epoch_continuous(problems[:1], n, args.eta, args.eta_hat,
                                                                            args.mu, args.tol), groups)
    profile(f"ensemble continuous epoch (S={S})", runs[f"continuous {integrators[0]}, ensemble"], groups)


if __name__ == "__main__":
    main()
