"""Batched stability scan (section 6.7) vs a loop of ``scipy.linalg.eigvals``, measured side by side.

The same random block-tridiagonal Jacobians (exact inverses, ``tau = 1``, Gaussian layer Jacobians with
random variance, ``mu`` uniform in (0, 0.5)) are solved (a) in batches by ``torch.linalg.eigvals`` as
:func:`analysis.stability_scan` does, and (b) one by one with ``scipy.linalg.eigvals``; the spectral
abscissae are compared and the ratio of the times printed. Then the full scan (with the symmetric part
and the transient growth) is timed for context.

Run: ``python benchmarks/bench_scan.py [--cases 4000]`` (several sizes ``(L, n)``, the cases each).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
import torch

from analysis.scan import random_jacobians, stability_scan


def compare(B: int, L: int, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    std = 10.0 ** (2 * torch.rand(B, L - 1, 1, 1, generator=g, dtype=torch.float64) - 1)
    forward = torch.randn(B, L - 1, n, n, generator=g, dtype=torch.float64) * std
    mu = 0.5 * torch.rand(B, generator=g, dtype=torch.float64)
    J = random_jacobians(L, n, mu, forward)
    dense = J.numpy()
    start = time.perf_counter()
    batched = torch.linalg.eigvals(J).real.amax(-1).numpy()
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = np.array([scipy.linalg.eigvals(dense[b]).real.max() for b in range(B)])
    t_loop = time.perf_counter() - start
    closed = -1 + 2 * np.sqrt(mu.numpy() * (1 - mu.numpy())) * np.cos(np.pi / (L + 1))
    print(f"  {B} cases, L = {L}, n = {n} (N = {L * n}): batched torch.linalg.eigvals {t_batched:.3f} s, loop of "
          f"scipy.linalg.eigvals {t_loop:.3f} s, ratio {t_loop / t_batched:.1f}x; max |batched - loop| = "
          f"{np.abs(batched - looped).max():.1e}, max |batched - closed form| = {np.abs(batched - closed).max():.1e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"spectral abscissa of the same matrices, float64, torch threads = {torch.get_num_threads()}:")
    for L, n in ((2, 2), (4, 2), (4, 4), (4, 8), (6, 8)):
        compare(args.cases, L, n, args.seed)
    for transient in (False, True):
        start = time.perf_counter()
        result = stability_scan(args.cases, seed=args.seed, transient=transient)
        elapsed = time.perf_counter() - start
        print(f"full stability_scan({args.cases} cases, L in 2,3,4,6, n in 1,2,4,8, transient={transient}): "
              f"{elapsed:.2f} s ({1e6 * elapsed / args.cases:.0f} us/case); fraction stable "
              f"{result.fraction_stable:.4f}, negative definite {result.fraction_negative_definite:.4f}, max "
              f"transient growth {result.max_transient_growth:.4g}")


if __name__ == "__main__":
    main()
