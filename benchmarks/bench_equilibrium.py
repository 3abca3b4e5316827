"""Time to equilibrium over a matrix of cases: ``tp.equilibrium`` against the loops a user would write.

Every case: exact inverses, float64, batch 256, tolerance ``tol = 1e-6`` on the fixed-point residual
``||(1-mu) f + mu g - h||_inf`` of every sample, output layer linear. *Taught*: a label target
(``eta_hat = 0.1``, label = forward output + N(0, 1)) from the forward pass; *free*: no teaching
signal, from rest (the forward pass is then the fixed point, section 6.4, so starting there is trivial).
The cases (``CASES``) span easy (shallow, small ``mu``) to hard (deep, ``mu`` near 1/2, leaky-ReLU kinks,
Gaussian weights whose inverses amplify the targets).

Solvers, timed side by side in one process with one torch thread (best of ``--repeats`` for runs
under a second, one run otherwise):

* ``ours``: ``tp.equilibrium(dynamics, tol=1e-6)`` (default ``auto``);
* ``naive``: the three-line loop ``h <- h + drive(h) = (1-mu) f + mu g`` until every sample's residual
  is below ``tol`` (at most ``--naive-iterations`` iterations);
* ``deq-anderson`` / ``deq-broyden``: torchdeq's fixed-point solvers (if ``torchdeq`` is installed:
  ``pip install -e '.[bench]'``) on the same map with their defaults, and their own stopping rule (the
  per-sample 2-norm of ``f(z) - z`` below our worst residual: at least as strict as ours), at most
  ``--deq-iterations`` (default 50, torchdeq's own);
* ``dopri5``: plain ``torchdiffeq.odeint(dopri5)`` (rtol 1e-7, atol 1e-9) from the same start to the
  horizon ``T`` where, on a grid of step ``0.5 tau`` up to ``--horizon`` (default ``200 tau``), its
  worst residual first reaches ours (found beforehand, not timed): the best case for a user who knew
  the right horizon. The search stops after ``--dopri5-seconds`` (default 8); where it has not reached
  our residual by then, the time spent is a lower bound of dopri5's time (shown as ``>x``).

Per case the table gives each solver's time, iterations (``nfev`` for dopri5), worst residual and
converged count, and the ratio ``baseline time / our time``; then the geometric means of the ratios
over the cases where the baseline reached the target. A baseline that did not reach it has no ratio
(shown as ``-``), except dopri5, whose time to the horizon is a lower bound (shown as ``>x``). Run: ``python benchmarks/bench_equilibrium.py [--quick] [--cases 1,5,11]``.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import torch
import torchdiffeq

import tpdynamics as tp

try:  # an optional baseline (the `bench` extra)
    from torchdeq.solver import anderson_solver, broyden_solver
except ImportError:  # pragma: no cover - depends on the environment
    anderson_solver = broyden_solver = None

TOL = 1e-6


@dataclass(frozen=True)
class Case:
    depth: int
    width: int
    mu: float
    init: str  # 'orthogonal' or 'gaussian'
    nonlinearity: str
    taught: bool

    @property
    def label(self) -> str:
        nl = "lrelu" if self.nonlinearity.startswith("leaky") else self.nonlinearity
        return (f"L={self.depth:<2d} n={self.width:<3d} mu={self.mu:<4g} {self.init[:5]:5s} {nl:5s} "
                f"{'taught' if self.taught else 'free'}")


LR, TANH = "leaky_relu:0.35", "tanh"
#: The matrix (the default run), roughly from easy to hard within each depth.
CASES = [
    Case(2, 6, 0.1, "orthogonal", LR, True),
    Case(2, 64, 0.1, "orthogonal", LR, True),
    Case(2, 256, 0.1, "orthogonal", TANH, True),
    Case(2, 64, 0.45, "orthogonal", TANH, True),
    Case(2, 256, 0.3, "gaussian", LR, False),
    Case(2, 6, 0.49, "orthogonal", TANH, False),
    Case(4, 6, 0.3, "orthogonal", TANH, False),
    Case(4, 64, 0.1, "gaussian", LR, False),
    Case(4, 64, 0.3, "orthogonal", LR, True),
    Case(4, 256, 0.3, "orthogonal", LR, False),
    Case(4, 6, 0.49, "gaussian", LR, True),
    Case(4, 64, 0.45, "orthogonal", LR, True),
    Case(8, 64, 0.1, "orthogonal", LR, True),
    Case(8, 64, 0.3, "orthogonal", TANH, True),
    Case(8, 64, 0.3, "gaussian", LR, False),
    Case(8, 6, 0.45, "orthogonal", LR, True),
    Case(8, 64, 0.45, "orthogonal", LR, True),  # the hard case
    Case(8, 6, 0.49, "orthogonal", LR, False),
    Case(8, 64, 0.49, "orthogonal", LR, True),
    Case(8, 6, 0.1, "gaussian", TANH, False),
    Case(16, 6, 0.1, "orthogonal", LR, True),
    Case(16, 6, 0.3, "orthogonal", TANH, False),
    Case(16, 6, 0.45, "orthogonal", TANH, False),
    Case(16, 64, 0.3, "orthogonal", LR, True),
    Case(16, 6, 0.49, "orthogonal", LR, True),
    Case(16, 64, 0.45, "orthogonal", LR, True),
]
#: Cases not in the default run (``--extra``): the first four have samples with no fixed point the map, the
#: flow or ours reaches (Gaussian inverses amplify the targets; tanh inverses leave their domain), so every
#: solver spends its whole budget on them; the last two are wide or deep and take minutes for the baselines.
EXTRA = [
    Case(4, 64, 0.3, "gaussian", LR, True),
    Case(4, 64, 0.1, "gaussian", TANH, False),
    Case(4, 64, 0.45, "orthogonal", TANH, True),
    Case(16, 6, 0.45, "orthogonal", LR, True),
    Case(8, 6, 0.45, "orthogonal", TANH, True),
    Case(8, 256, 0.3, "orthogonal", LR, True),
    Case(16, 64, 0.49, "orthogonal", LR, True),
]


def build(case: Case, batch: int):
    net = tp.LayeredNetwork.build([case.width] * (case.depth + 1), nonlinearity=case.nonlinearity,
                                  output_nonlinearity="identity", feedback="exact", weight_init=case.init, seed=0)
    g = tp.make_generator(1)
    h0 = torch.randn(batch, case.width, generator=g, dtype=torch.float64)
    if not case.taught:
        dyn = tp.MixtureDynamics(net, h0, mu=case.mu)
        return dyn, dyn.initial_state("zeros")
    with torch.no_grad():
        label = net(h0)[-1] + torch.randn(batch, case.width, generator=g, dtype=torch.float64)
    dyn = tp.MixtureDynamics(net, h0, mu=case.mu, label=label, eta_hat=0.1)
    return dyn, dyn.initial_state("forward")


@dataclass
class Run:
    time: float
    iterations: int
    residual: float
    converged: int
    reached: bool
    note: str = ""
    lower_bound: float = math.nan  # time a baseline spent without reaching the target


def timed(fn, repeats):
    start = time.perf_counter()
    out = fn()
    best = time.perf_counter() - start
    if best < 1.0:
        for _ in range(repeats - 1):
            start = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - start)
    return best, out


def run_ours(dyn, start, repeats):
    seconds, result = timed(lambda: tp.equilibrium(dyn, tol=TOL, initial_state=start), repeats)
    stages = ", ".join(f"{k} {v}" for k, v in result.stage_counts.items())
    return Run(seconds, result.iterations, float(result.residual.max()), int(result.converged.sum()),
               bool(result.success), stages), result


def naive_loop(dyn, start, max_iterations):
    h = start.clone()
    for k in range(max_iterations + 1):
        d = dyn.drive(h, check=False)
        residual = d.abs().amax(-1)
        if float(residual.max()) < TOL or k == max_iterations:
            return h, k, residual
        h = h + d


def run_naive(dyn, start, repeats, max_iterations):
    seconds, (h, k, residual) = timed(lambda: naive_loop(dyn, start, max_iterations), repeats)
    residual = torch.nan_to_num(residual, nan=math.inf)
    return Run(seconds, k, float(residual.max()), int((residual < TOL).sum()), bool((residual < TOL).all()))


def run_deq(solver, dyn, start, target, repeats, max_iterations):
    fmap = lambda z: z + dyn.drive(z, check=False)  # noqa: E731
    seconds, (z, _, info) = timed(lambda: solver(fmap, start, max_iter=max_iterations, tol=target), repeats)
    residual = torch.nan_to_num(dyn.fixed_point_residual(z), nan=math.inf)
    iterations = int(info["nstep"].max())
    return Run(seconds, iterations, float(residual.max()), int((residual < TOL).sum()),
               bool(float(residual.max()) <= max(target, TOL) and bool((residual < TOL).all())))


def run_dopri5(dyn, start, target, repeats, horizon, budget):
    """Integrate in chunks of ``5 tau`` (grid step ``0.5 tau``) until the worst residual reaches ``target``,
    the horizon, or ``budget`` seconds; then time one plain run to the first grid time that reached it."""
    dyn.reset_counters()
    began, t, y, T = time.perf_counter(), 0.0, start, None
    while t < horizon and time.perf_counter() - began < budget:
        grid = torch.arange(t, min(t + 5.0, horizon) + 0.25, 0.5, dtype=torch.float64)
        try:
            path = torchdiffeq.odeint(dyn, y, grid, rtol=1e-7, atol=1e-9)
        except (tp.DivergenceError, AssertionError) as err:
            return Run(math.nan, 0, math.inf, 0, False, f"failed: {type(err).__name__}")
        worst = torch.stack([torch.nan_to_num(dyn.fixed_point_residual(s), nan=math.inf).max() for s in path])
        hit = torch.nonzero(worst <= target)
        if len(hit):
            T = float(grid[hit[0, 0]])
            break
        t, y = float(grid[-1]), path[-1]
    spent = time.perf_counter() - began  # a lower bound of dopri5's time where it falls short
    if T is None:
        last = torch.nan_to_num(dyn.fixed_point_residual(y), nan=math.inf)
        return Run(math.nan, dyn.nfev, float(last.max()), int((last < TOL).sum()), False,
                   f"not reached by t={t:g} ({spent:.2f} s to get there)", lower_bound=spent)

    def plain():
        dyn.reset_counters()
        return torchdiffeq.odeint(dyn, start, torch.tensor([0.0, T], dtype=torch.float64), rtol=1e-7, atol=1e-9)[-1]

    seconds, end = timed(plain, repeats)
    residual = dyn.fixed_point_residual(end)
    return Run(seconds, dyn.nfev, float(residual.max()), int((residual < TOL).sum()), True, f"T={T:g}")


def fmt_run(run: Run | None) -> str:
    if run is None:
        return f"{'(not installed)':>31s}"
    t = f"{run.time:8.3f}" if math.isfinite(run.time) else f"{'-':>8s}"
    return f"{t} {run.iterations:6d} {run.residual:8.1e} {run.converged:4d}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--cases", default="", help="comma-separated case numbers (1-based); default all")
    parser.add_argument("--extra", action="store_true", help="run the EXTRA cases instead (slow)")
    parser.add_argument("--naive-iterations", type=int, default=20_000)
    parser.add_argument("--deq-iterations", type=int, default=50, help="torchdeq's own default")
    parser.add_argument("--horizon", type=float, default=200.0)
    parser.add_argument("--dopri5-seconds", type=float, default=8.0,
                        help="stop looking for dopri5's horizon after this many seconds (default 8)")
    parser.add_argument("--skip-dopri5", action="store_true")
    parser.add_argument("--skip-deq", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    table = EXTRA if args.extra else CASES
    chosen = [int(c) for c in args.cases.split(",") if c.strip()] or list(range(1, len(table) + 1))
    deq = {} if args.skip_deq or anderson_solver is None else {"deq-anderson": anderson_solver,
                                                               "deq-broyden": broyden_solver}
    print(f"bench_equilibrium: batch {args.batch}, tol {TOL:g} on the fixed-point residual, float64, exact inverses, "
          f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}")
    if anderson_solver is None:
        print("torchdeq is not installed: its baselines are skipped (pip install -e '.[bench]').")
    names = ["ours", "naive"] + list(deq) + ([] if args.skip_dopri5 else ["dopri5"])
    header = "  #  case                                  " + " | ".join(
        f"{n:^31s}" for n in names) + " | ratios " + " ".join(f"{n:>8s}" for n in names[1:])
    print(header)
    print("                                          " + " | ".join(
        f"{'time s':>8s} {'iters':>6s} {'resid':>8s} {'conv':>4s}" for _ in names))
    ratios = {n: [] for n in names[1:]}
    bounds = {n: [] for n in names[1:]}
    notes, goals_converge = [], []
    start_all = time.perf_counter()
    warm_up, warm_start = build(CASES[0], 8)  # first calls (lazy initialisation in torch) are not timed
    tp.equilibrium(warm_up, tol=TOL, initial_state=warm_start)
    naive_loop(warm_up, warm_start, 10)
    for number in chosen:
        case = table[number - 1]
        case_start = time.perf_counter()
        dyn, start = build(case, args.batch)
        ours, result = run_ours(dyn, start, args.repeats)
        target = max(ours.residual, 1e-300)
        runs = {"ours": ours, "naive": run_naive(dyn, start, args.repeats, args.naive_iterations)}
        for name, solver in deq.items():
            runs[name] = run_deq(solver, dyn, start, target, args.repeats, args.deq_iterations)
        if not args.skip_dopri5:
            runs["dopri5"] = run_dopri5(dyn, start, target, args.repeats, args.horizon, args.dopri5_seconds)
        row = []
        for name in names[1:]:
            run = runs[name]
            if run.reached and ours.reached:
                ratio = run.time / ours.time
                ratios[name].append(ratio)
                row.append(f"{ratio:8.1f}")
            elif ours.reached and math.isfinite(run.lower_bound):
                bounds[name].append(run.lower_bound / ours.time)
                row.append(f"{'>' + format(run.lower_bound / ours.time, '.1f'):>8s}")
            else:
                row.append(f"{'-':>8s}")
        if (runs["naive"].reached or runs.get("dopri5", Run(0, 0, 0, 0, False)).reached) and not ours.reached:
            goals_converge.append(number)
        print(f"{number:3d}  {case.label:36s} " + " | ".join(fmt_run(runs[n]) for n in names) + " | "
              + " ".join(row), flush=True)
        notes.append(f"{number:3d}: ours by stage: {ours.note}" + "".join(
            f"; {n}: {runs[n].note}" for n in names[1:] if runs[n].note)
            + f" ({time.perf_counter() - case_start:.0f} s for the case)")
    print("\nper case:", *notes, sep="\n  ")
    print("\ngeometric mean of the ratios (baseline time / our time) over the cases where the baseline converged:")
    for name, values in ratios.items():
        if values:
            gm = math.exp(sum(math.log(v) for v in values) / len(values))
            print(f"  vs {name:13s} {gm:8.1f}x over {len(values)} case(s); min {min(values):.2f}x, max {max(values):.1f}x")
        else:
            print(f"  vs {name:13s} no case")
        if bounds[name]:
            both = values + bounds[name]
            gm = math.exp(sum(math.log(v) for v in both) / len(both))
            print(f"  vs {name:13s} {gm:8.1f}x at least, over {len(both)} case(s), counting the {len(bounds[name])} "
                  f"where it did not reach our residual by the horizon at the time it spent (a lower bound)")
    print(f"ours converged wherever the naive loop or dopri5 did: "
          f"{'yes' if not goals_converge else 'NO, cases ' + str(goals_converge)}")
    print(f"total benchmark time {time.perf_counter() - start_all:.0f} s")


if __name__ == "__main__":
    main()
