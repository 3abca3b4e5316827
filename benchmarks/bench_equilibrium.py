"""Time to equilibrium: tpdynamics' default solver vs the integration a user would write by hand.

Problem (issue 2): L = 4 layers of 64 units (input 64), batch 256, exact inverses, mu = 0.2,
leaky ReLU 0.35, tolerance 1e-6 on ||dh/dt||_inf, a label target (eta_hat = 0.1, label = forward
output + N(0, 1)). All runs use float64 and are timed side by side in one process (best of
``--repeats``), so the printed ratios, not the absolute times, are the result.

Baselines:

* plain ``torchdiffeq.odeint(dopri5)`` from the forward pass to a fixed horizon ``T``, with ``T`` the
  first time (found beforehand on a fine grid) at which its residual is <= the residual our solver
  returned: the best case for a user who knew the right horizon;
* ``scipy.integrate.solve_ivp(method='LSODA')`` on the flattened batch, same horizon and tolerances.
  The Jacobian is declared banded (``lband = uband = 2n - 1``, the block-tridiagonal band); without it
  LSODA allocates a dense 65536^2 work array (32 GiB) and cannot start.

Run: ``python benchmarks/bench_equilibrium.py [--weight-init gaussian] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import time

import scipy.integrate
import torch
import torchdiffeq

import tpdynamics as tp


def best_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weight-init", default="orthogonal", choices=("orthogonal", "gaussian"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--skip-scipy", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    n, tol = args.width, 1e-6
    net = tp.LayeredNetwork.build([n] * 5, feedback="exact", weight_init=args.weight_init, seed=0,
                                  output_nonlinearity="identity")
    g = tp.make_generator(1)
    h0 = torch.randn(args.batch, n, generator=g, dtype=torch.float64)
    with torch.no_grad():
        label = net(h0)[-1] + torch.randn(args.batch, n, generator=g, dtype=torch.float64)
    dyn = tp.MixtureDynamics(net, h0, mu=0.2, label=label, eta_hat=0.1)
    print(f"problem: L=4 x {n} units, batch {args.batch}, exact inverses, mu=0.2, tol={tol:g}, "
          f"weight_init={args.weight_init}, torch threads={torch.get_num_threads()}")

    with torch.no_grad():
        ours_time, ours = best_time(lambda: tp.equilibrium(dyn, tol=tol), args.repeats)
        target_residual = float(ours.residual.max())
        print(f"tpdynamics.equilibrium (default, solver={ours.solver}): {ours_time:.4f} s, status={ours.status}, "
              f"nfev={ours.nfev}, residual={target_residual:.3g}")
        ode_time, ode = best_time(lambda: tp.equilibrium(dyn, tol=tol, solver="ode"), args.repeats)
        print(f"tpdynamics.equilibrium (solver=ode): {ode_time:.4f} s, status={ode.status}, t={ode.t}, "
              f"nfev={ode.nfev}, residual={float(ode.residual.max()):.3g}")

        # horizon the plain integration needs to reach our residual (found once, not timed)
        y0 = dyn.initial_state()
        grid = torch.linspace(0.0, 400.0, 4001, dtype=torch.float64)
        path = torchdiffeq.odeint(dyn, y0, grid)
        residuals = torch.stack([dyn.residual(s).max() for s in path])
        reached = torch.nonzero(residuals <= target_residual)
        if len(reached) == 0:
            print(f"plain odeint never reached residual {target_residual:.3g} by t=400 "
                  f"(min {float(residuals.min()):.3g}); no ratio.")
            return
        horizon = float(grid[reached[0, 0]])

        def plain():
            dyn.reset_counters()
            return torchdiffeq.odeint(dyn, y0, torch.tensor([0.0, horizon], dtype=torch.float64))[-1]

        plain_time, plain_state = best_time(plain, args.repeats)
        plain_nfev = dyn.nfev
        plain_residual = float(dyn.residual(plain_state).max())
        print(f"plain torchdiffeq.odeint(dopri5) to T={horizon:g}: {plain_time:.4f} s, nfev={plain_nfev}, "
              f"residual={plain_residual:.3g}")

    rows = [("plain torchdiffeq dopri5", plain_time)]
    if not args.skip_scipy:
        shape = y0.shape

        def rhs(t, y):
            with torch.no_grad():
                return dyn.rate(torch.from_numpy(y).view(shape)).reshape(-1).numpy()

        scipy_time, sol = best_time(lambda: scipy.integrate.solve_ivp(
            rhs, (0.0, horizon), y0.reshape(-1).numpy(), method="LSODA", rtol=1e-7, atol=1e-9,
            lband=2 * n - 1, uband=2 * n - 1), 1)
        scipy_residual = float(dyn.residual(torch.from_numpy(sol.y[:, -1]).view(shape)).max())
        print(f"scipy solve_ivp(LSODA) to T={horizon:g}: {scipy_time:.4f} s, nfev={sol.nfev}, "
              f"residual={scipy_residual:.3g}")
        rows.append(("scipy solve_ivp LSODA", scipy_time))
    print("\nspeed-up of tpdynamics.equilibrium (default) at equal or smaller residual:")
    for name, t in rows:
        print(f"  vs {name:<26s} {t / ours_time:7.1f}x")
    print(f"  (our own ODE path vs plain dopri5: {plain_time / ode_time:.2f}x)")


if __name__ == "__main__":
    main()
