"""One epoch of continuous learning vs the same epoch of discrete tp-ei, and where the time goes.

Task: the student–teacher problem of section 5.1.3 (6-6-6, leaky ReLU 0.35, linear output,
exact inverses), one epoch of ``--samples`` training samples presented one at a time.

* discrete: ``tp-ei`` (Alg. A.4), learning rate ``eta``, one step per sample;
* continuous: the time-scale-separated weight ODE of the single-phase network (eq. 6.17, layer factor
  compensated) integrated over ``[0, eta]`` per sample with one RK4 step — four batch-1 equilibria
  (Anderson acceleration) per sample.

Both run side by side in one process on the same data and initial weights; the printed ratio and
the profile breakdown are the result. Run: ``python benchmarks/bench_continuous.py [--samples 2000]``.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from tpdynamics.continuous import get_model, integrate_weights
from tpdynamics.training import get_learning_rule, mean_squared_error, student_teacher


def epoch_discrete(problem, n, eta, eta_hat):
    net = problem.student("exact")
    rule = get_learning_rule("tp-ei", eta=eta, eta_hat=eta_hat)
    for k in range(n):
        rule.step(net, problem.train_inputs[k:k + 1], problem.train_labels[k:k + 1])
    return net


def epoch_continuous(problem, n, eta, eta_hat, mu):
    net = problem.student("exact")
    model = get_model("single_phase", mu=mu, eta_hat=eta_hat, compensate_layer_factor=True, tol=1e-10)
    span = torch.tensor([0.0, eta], dtype=torch.float64)
    for k in range(n):
        integrate_weights(model, net, problem.train_inputs[k:k + 1], problem.train_labels[k:k + 1], span, method="rk4")
    return net


def test_loss(net, problem):
    with torch.no_grad():
        return mean_squared_error(net(problem.test_inputs)[-1], problem.test_labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000, help="samples in the epoch (thesis: 2000)")
    parser.add_argument("--eta", type=float, default=0.01)
    parser.add_argument("--eta-hat", type=float, default=0.1)
    parser.add_argument("--mu", type=float, default=0.1)
    args = parser.parse_args(argv)
    problem = student_teacher((6, 6, 6), n_train=args.samples, n_test=500, seed=0)
    print(f"student-teacher 6-6-6, one epoch of {args.samples} samples (batch 1), eta={args.eta}, "
          f"eta_hat={args.eta_hat}, mu={args.mu} (continuous), float64, torch threads={torch.get_num_threads()}")
    start = time.perf_counter()
    discrete = epoch_discrete(problem, args.samples, args.eta, args.eta_hat)
    t_discrete = time.perf_counter() - start
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    continuous = epoch_continuous(problem, args.samples, args.eta, args.eta_hat, args.mu)
    profiler.disable()
    t_continuous = time.perf_counter() - start
    print(f"discrete tp-ei:        {t_discrete:8.3f} s   test loss after the epoch {test_loss(discrete, problem):.4g}")
    print(f"continuous (separated): {t_continuous:8.3f} s   test loss after the epoch {test_loss(continuous, problem):.4g}")
    print(f"cost ratio continuous / discrete: {t_continuous / t_discrete:.1f}x")

    stats = pstats.Stats(profiler)
    total = stats.total_tt
    groups = {
        "equilibrium solves (tp.equilibrium, Anderson)": ("equilibrium.py", "equilibrium"),
        "right-hand side evaluations in the solves": ("mixture.py", "drive"),
        "weight velocities (eq. 6.17)": ("models.py", "weight_velocities"),
        "loading weights + exact inverses": ("flows.py", "load"),
        "torchdiffeq RK4 bookkeeping": ("torchdiffeq", "odeint"),
    }
    print("\nwhere the continuous epoch's time goes (share of the profiled run; rows overlap: the solves contain")
    print("their right-hand-side evaluations, and everything runs inside torchdiffeq's RK4 loop):")
    for label, (file_part, func) in groups.items():
        cum = sum(v[3] for k, v in stats.stats.items() if file_part in k[0] and k[2] == func)
        print(f"  {label:<45s} {cum:7.2f} s  ({100 * cum / total:5.1f} %)")


if __name__ == "__main__":
    main()
