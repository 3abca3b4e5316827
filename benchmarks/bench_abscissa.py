"""Spectral abscissa of a large network: the structured path vs a dense ``scipy.linalg.eigvals``.

Network: L = 8 layers of n = 512 units (N = 4096), exact inverses, leaky ReLU, float64, one sample.
Two fixed points, measured side by side in one run:

* ``forward pass`` — free output (``h_L^trgt = h_L``): the forward pass is the fixed point (section 6.4)
  and ``J_g = J_f^{-1}`` there, so ``method='auto'`` takes the closed form (``O(L n^2)`` probe test plus an
  ``L x L`` eigenproblem);
* ``taught equilibrium`` — L2 target (eq. 6.10, ``eta_hat = 0.1``): the equilibrium moves, some units change
  side, the closed form no longer applies and ``method='auto'`` runs ARPACK ``eigs(which='LR')`` on the
  block-sparse matrix.

The structured time is that of ``analysis.spectral_abscissa(J)`` from the assembled ``BlockJacobian``; the
dense time is that of ``scipy.linalg.eigvals`` on the dense ``(N, N)`` array (its construction excluded).
Goal: ratio >= 20.

Run: ``python benchmarks/bench_abscissa.py [--layers 8] [--width 512] [--weight-init orthogonal|gaussian]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
import torch

import analysis
import tpdynamics as tp


def best_time(fn, repeat):
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--weight-init", default="orthogonal", choices=("orthogonal", "gaussian"))
    parser.add_argument("--mu", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    L, n = args.layers, args.width
    network = tp.LayeredNetwork.build([n] * (L + 1), feedback="exact", weight_init=args.weight_init, seed=args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    h0 = torch.randn(1, n, generator=g, dtype=torch.float64)
    with torch.no_grad():
        output = network(h0)[-1]
    label = output + torch.randn(output.shape, generator=g, dtype=torch.float64)
    print(f"L = {L} layers of n = {n} units (N = {L * n}), exact inverses, leaky_relu:0.35, {args.weight_init} "
          f"weights, mu = {args.mu}, float64, torch threads = {torch.get_num_threads()}")
    cases = {
        "forward pass (free output)": tp.MixtureDynamics(network, h0, mu=args.mu),
        "taught equilibrium (L2 target)": tp.MixtureDynamics(network, h0, mu=args.mu, label=label, eta_hat=0.1),
    }
    for name, dynamics in cases.items():
        with torch.no_grad():
            fixed = tp.equilibrium(dynamics, tol=1e-10)
        if not fixed.success:
            print(f"{name}: equilibrium not reached ({fixed.status}); skipped")
            continue
        J = analysis.jacobian(dynamics, fixed.state)
        t_structured, (alpha_structured, method) = best_time(lambda: analysis.spectral_abscissa(J), 3)
        dense = J.to_numpy(0)
        t_dense, values = best_time(lambda: scipy.linalg.eigvals(dense), 1)
        alpha_dense = float(np.max(values.real))
        print(f"{name}: structured path ({method}) alpha = {alpha_structured:.12f} in {t_structured:.3f} s; "
              f"dense scipy.linalg.eigvals alpha = {alpha_dense:.12f} in {t_dense:.2f} s; "
              f"|difference| = {abs(alpha_structured - alpha_dense):.2e}; speed ratio = {t_dense / t_structured:.0f}x")
        t_report, report = best_time(lambda: analysis.stability_report(dynamics, fixed.state, integrate=False), 1)
        print(f"  full stability_report (auto: {report.method}; numerical abscissa, map radius by ARPACK; "
              f"transient skipped above N = 500): {t_report:.2f} s; alpha = {report.spectral_abscissa:.6f}, "
              f"omega = {report.numerical_abscissa:.4g}, rho(I + tau J) = {report.map_spectral_radius:.6f}")


if __name__ == "__main__":
    main()
