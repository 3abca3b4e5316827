"""Intra-op torch threads: every thread count against the package's default (:func:`tpdynamics.default_threads`).

Cases (float64), on the thesis's sizes and on 512-wide layers:

* ``train 6-6-6 dtp-ai``: 60 steps of DTP with learned inverses, batch 32 (section 5.2.2's setting);
* ``train 6-6-6 tp-ei``: 200 steps of TP with exact inverses, batch 1 (section 5.1.3's setting);
* ``equilibrium 6-6-6-6``: ``tp.equilibrium`` (default solver), exact inverses, batch 8, tol 1e-8;
* ``train 512-512-512 dtp-ai``: 3 steps, batch 32;
* ``equilibrium 4 x 512``: ``tp.equilibrium``, exact inverses, batch 256, tol 1e-6.

The table's ``busy`` column is :func:`tpdynamics.threads.busy_cores` when the default was read (the
processes running besides this one). Each case is timed with 1, 2, ..., ``cores`` threads (best of ``--repeats`` interleaved rounds), once
with the machine as it is ("idle") and once with a CPU-bound Python busy loop that this script starts
beside it ("busy"). The default thread count is taken at the moment the case runs (it looks at the
cores that are busy then). The check: the default's time is within ``--limit`` (1.5x) of the best
count's. The script prints the table and exits with status 1 if a case misses the limit.

Run: ``python benchmarks/bench_threads.py [--repeats 3] [--limit 1.5] [--only idle|busy]``.
On a machine shared with other work "idle" is not idle: report the load with the numbers.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

import tpdynamics as tp
from tpdynamics.threads import busy_cores
from tpdynamics.training import get_learning_rule


def _training_case(sizes, method: str, batch: int, steps: int):
    feedback = "exact" if method == "tp-ei" else "learned"
    network = tp.LayeredNetwork.build(sizes, output_nonlinearity="identity", feedback=feedback, seed=0,
                                      weight_init="orthogonal")
    rule = get_learning_rule(method, eta=1e-3, generator=tp.make_generator(3))
    g = tp.make_generator(1)
    inputs = torch.randn(steps, batch, sizes[0], generator=g, dtype=torch.float64)
    labels = torch.randn(steps, batch, sizes[-1], generator=g, dtype=torch.float64)

    def run():
        for k in range(steps):
            rule.step(network, inputs[k], labels[k])

    return run


def _equilibrium_case(width: int, depth: int, batch: int, tol: float):
    network = tp.LayeredNetwork.build([width] * (depth + 1), feedback="exact", weight_init="orthogonal", seed=0,
                                      output_nonlinearity="identity")
    g = tp.make_generator(1)
    h0 = torch.randn(batch, width, generator=g, dtype=torch.float64)
    with torch.no_grad():
        label = network(h0)[-1] + torch.randn(batch, width, generator=g, dtype=torch.float64)
    dynamics = tp.MixtureDynamics(network, h0, mu=0.2, label=label, eta_hat=0.1)

    def run():
        with torch.no_grad():
            result = tp.equilibrium(dynamics, tol=tol)
        if not bool(result.converged.all()):
            raise RuntimeError(f"benchmark equilibrium did not converge: {result.status}")

    return run


CASES = [  # (label, widest layer, factory)
    ("train 6-6-6 dtp-ai, batch 32 x 60", 6, lambda: _training_case((6, 6, 6), "dtp-ai", 32, 60)),
    ("train 6-6-6 tp-ei, batch 1 x 200", 6, lambda: _training_case((6, 6, 6), "tp-ei", 1, 200)),
    ("equilibrium 6-6-6-6, batch 8", 6, lambda: _equilibrium_case(6, 3, 8, 1e-8)),
    ("train 512-512-512 dtp-ai, batch 32 x 3", 512, lambda: _training_case((512, 512, 512), "dtp-ai", 32, 3)),
    ("equilibrium 4 x 512, batch 256", 512, lambda: _equilibrium_case(512, 4, 256, 1e-6)),
]


def _time(run, threads: int) -> float:
    with tp.thread_limit(threads):
        start = time.perf_counter()
        run()
        return time.perf_counter() - start


def measure(cases, counts, repeats: int):
    """``{label: (default, busy cores, {threads: best seconds})}``, the default read after each case's timings."""
    table = {}
    for label, width, factory in cases:
        run = factory()
        _time(run, 1)  # warm-up (first-call allocations, lazy imports)
        best = {n: float("inf") for n in counts}
        for _ in range(repeats):  # interleaved, so a change of load does not favour one count
            for n in counts:
                best[n] = min(best[n], _time(run, n))
        table[label] = (tp.default_threads(width), busy_cores(), best)
    return table


def report(scenario: str, table, limit: float) -> bool:
    counts = sorted(next(iter(table.values()))[2])
    print(f"\n{scenario}: seconds per case (best of the rounds) for each thread count; default = tp.default_threads")
    head = (f"  {'case':<40s} " + " ".join(f"{f'{n} thr':>9s}" for n in counts)
            + f" {'default':>8s} {'busy':>5s} {'ratio':>6s}")
    print(head)
    ok = True
    for label, (default, busy, best) in table.items():
        fastest = min(best.values())
        ratio = best[min(default, max(counts))] / fastest
        ok &= ratio <= limit
        print(f"  {label:<40s} " + " ".join(f"{best[n]:>9.4f}" for n in counts)
              + f" {default:>8d} {busy:>5d} {ratio:>6.2f}" + ("" if ratio <= limit else "  MISSES the limit"))
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=1.5, help="allowed default / best ratio (default 1.5)")
    parser.add_argument("--only", choices=("idle", "busy"), default=None)
    args = parser.parse_args(argv)
    cores = tp.available_cores()
    counts = list(range(1, cores + 1))
    with open("/proc/loadavg") as handle:
        load = handle.read().strip()
    print(f"cores available: {cores}; thread counts timed: {counts}; /proc/loadavg at start: {load}; "
          f"torch {torch.__version__}, default threads of torch here: {torch.get_num_threads()}")
    ok = True
    if args.only in (None, "idle"):
        ok &= report("idle (as the machine is)", measure(CASES, counts, args.repeats), args.limit)
    if args.only in (None, "busy"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            ok &= report("busy (a Python busy loop beside it)", measure(CASES, counts, args.repeats), args.limit)
        finally:
            busy.kill()
            busy.wait()
    print("\nevery default within the limit" if ok else "\nsome default MISSES the limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
