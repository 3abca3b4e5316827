"""Per-sample step time of TP with exact inverses (Sherman–Morrison vs recomputed inverse) and of backprop.

Section 4.1.3: keeping ``W_i^{-1}`` by the rank-one Sherman–Morrison update costs ``O(n^2)`` per
sample instead of the ``O(n^3)`` of a fresh inverse, and Table 4.3 counts about ``7n^2`` multiplications
per layer for TP-EI against ``3n^2`` for backprop (Table 4.2), i.e. about 2.3x.

Measured here, side by side in one process on the same network sizes:

* ``tp-ei`` (robust Sherman–Morrison, Alg. 4.1) vs ``tp-ei`` with ``inverse_update='recompute'``
  (the same step, ``W^{-1}`` recomputed with ``torch.linalg.inv``); goal: >= 20x at n = 512;
* ``tp-ei`` vs ``bp`` (Alg. A.7), both with batch size 1.

Run:  python benchmarks/bench_training.py [--layers 512,512,512] [--steps 100] [--repeats 7] [--threads N]

Single-threaded by default: a per-sample step is a handful of O(n^2) memory-bound passes that
threads barely speed up, and on a shared machine oversubscribed threads distort every case.
``torch.linalg.inv`` does gain from threads on an idle machine, so ``--threads N`` lowers the
speed-up; report the thread count with the numbers.

The cases are timed in interleaved repeats and the best mean per case is kept, so that a change of
load on the machine does not favour one of them.
"""
from __future__ import annotations

import argparse
import time

import torch

import tpdynamics as tp
from tpdynamics.training import get_learning_rule


def _setup(method: str, sizes, steps: int, **hyper):
    feedback = "exact" if method == "tp-ei" else None
    network = tp.LayeredNetwork.build(sizes, output_nonlinearity="identity", feedback=feedback, seed=0,
                                      weight_init="orthogonal")
    rule = get_learning_rule(method, **hyper)
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(steps, 1, sizes[0], generator=g, dtype=torch.float64)
    labels = torch.randn(steps, 1, sizes[-1], generator=g, dtype=torch.float64)
    for k in range(min(steps, 5)):  # warm-up
        rule.step(network, inputs[k], labels[k])
    return rule, network, inputs, labels


def _mean_step_time(rule, network, inputs, labels) -> float:
    start = time.perf_counter()
    for k in range(inputs.shape[0]):
        rule.step(network, inputs[k], labels[k])
    return (time.perf_counter() - start) / inputs.shape[0]


def measure(sizes, steps: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds per sample of the three cases, timed in interleaved repeats."""
    small = {"eta": 1e-4, "eta_hat": 0.1, "epsilon": 0.5}  # tiny steps: the timing does not depend on the values
    cases = {
        "tp-ei, Sherman-Morrison (Alg. 4.1)": _setup("tp-ei", sizes, steps, **small),
        "tp-ei, torch.linalg.inv each step": _setup("tp-ei", sizes, max(steps // 4, 5), inverse_update="recompute",
                                                    **small),
        "bp (Alg. A.7)": _setup("bp", sizes, steps, eta=1e-4),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):  # interleaved, so that a load change on the machine hits every case alike
        for name, case in cases.items():
            best[name] = min(best[name], _mean_step_time(*case))
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="512,512,512", help="layer sizes n_0,...,n_L (default 512,512,512)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per repeat (recompute: a quarter)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: see the module docstring; 0 keeps torch's choice)")
    parser.add_argument("--scan", default="256,1024", help="also report the speed-up for these widths n "
                                                          "(layers n,n,n; '' to skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(n) for n in args.layers.split(",")]
    print(f"layers {sizes} (L={len(sizes) - 1}, {len(sizes) - 2} inverse(s) kept), float64, batch size 1, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of {args.repeats} interleaved repeats")
    best = measure(sizes, args.steps, args.repeats)
    for name, t in best.items():
        print(f"  {name:42s} {1e3 * t:9.3f} ms/sample")
    t_sm, t_inv, t_bp = best.values()
    print(f"speed-up of Sherman-Morrison over recomputing the inverse: {t_inv / t_sm:6.1f}x (goal >= 20x)")
    print(f"tp-ei / bp time per sample: {t_sm / t_bp:6.2f}x (Table 4.3 / 4.2 flop count: "
          f"(7n^2+3n)/(3n^2+2n) = {(7 * sizes[1] + 3) / (3 * sizes[1] + 2):.2f}x per layer)")
    widths = [int(n) for n in args.scan.split(",") if n.strip()]
    if widths:
        print("speed-up against the width (layers n,n,n; the O(n^3)/O(n^2) ratio grows like n):")
    for n in widths:
        scan = measure([n, n, n], max(args.steps // max(n // 512, 1) ** 2, 8), max(args.repeats // 2, 3))
        t_sm, t_inv, t_bp = scan.values()
        print(f"  n = {n:5d}: Sherman-Morrison {1e3 * t_sm:8.3f} ms, inverse {1e3 * t_inv:9.3f} ms -> "
              f"{t_inv / t_sm:6.1f}x; tp-ei / bp {t_sm / t_bp:5.2f}x")


if __name__ == "__main__":
    main()
