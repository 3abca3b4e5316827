"""``tpdynamics scan``: the random-matrix stability scan of section 6.7, and approximate inverses.

Draws ``--cases`` random block-tridiagonal Jacobians of eq. (6.40) with exact inverses (Gaussian
layer Jacobians with random variance, ``mu`` uniform in (0, 0.5), several depths and widths),
computes their spectra in batches and reports the fraction that is stable (Hurwitz), the fraction
that is negative definite (the thesis's wording), the worst spectral abscissa and the largest
transient growth. Then maps the fraction of stable cases over (mu, delta) for approximate inverses
``J_g = J_f^-1 + E`` with ``||E||_F = delta ||J_f^-1||_F``.

With --json FILE, --plot FILE or --store DIR, every batch of cases (and every row of the map) is kept
in a store (default tpdynamics-runs/ next to the output file) as it finishes: Ctrl-C keeps them and the
same command resumes; --jobs N spreads the batches over N processes.
"""
from __future__ import annotations

import argparse

from .common import (_sizes_type, add_output_arguments, add_run_arguments, emit_json, executor_of, integer, jobs_of,
                     say, store_of)


def _sizes(option: str, example: str):
    parse = _sizes_type(option, example, at_least=1)

    def sizes(text: str) -> tuple[int, ...]:
        return tuple(parse(text))
    return sizes


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("scan", help="random-matrix stability scan of section 6.7 (+ approximate inverses)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=integer("--cases", 1, 100_000), default=100_000,
                   help="random cases (default 100000, the thesis's number)")
    p.add_argument("--seed", type=integer("--seed", 0, 0), default=0, help="seed (default 0)")
    p.add_argument("--depths", type=_sizes("--depths", "2,3,4,6"), default=(2, 3, 4, 6), metavar="L,...",
                   help="depths L (default 2,3,4,6)")
    p.add_argument("--widths", type=_sizes("--widths", "1,2,4,8"), default=(1, 2, 4, 8), metavar="N,...",
                   help="widths n (default 1,2,4,8)")
    p.add_argument("--no-transient", action="store_true", help="skip the transient growth (the costliest part)")
    p.add_argument("--map-cases", type=integer("--map-cases", 0, 100, hint="0 skips the map"), default=100,
                   help="cases per (mu, delta) cell of the approximate-inverse map (default 100; 0 skips the map)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_arguments(p, plot_help="write the scan and map figure (PNG)")
    add_run_arguments(p, jobs_default=1, store=True)
    p.set_defaults(run=run)


def run(args) -> int:
    from analysis.scan import approximate_inverse_map, stability_scan

    if args.cases < 1:
        raise ValueError(f"--cases={args.cases} must be >= 1.")
    if args.map_cases < 0:
        raise ValueError(f"--map-cases={args.map_cases} must be >= 0 (0 skips the map).")
    progress = not args.no_progress
    runs = {"store": store_of(args, args.json, args.plot), "jobs": jobs_of(args), "fresh": args.fresh,
            "executor": executor_of(args)}
    scan = stability_scan(args.cases, depths=args.depths, widths=args.widths, seed=args.seed,
                          transient=not args.no_transient, progress=progress, **runs)
    for line in scan.to_text().splitlines():
        say(args, line)
    approximate = None
    if args.map_cases:
        approximate = approximate_inverse_map(cases_per_cell=args.map_cases, depths=args.depths, widths=args.widths,
                                              seed=args.seed, progress=progress, **runs)
        for line in approximate.to_text().splitlines():
            say(args, line)
    payload = scan.to_dict()
    payload["approximate_inverses"] = None if approximate is None else approximate.to_dict()
    emit_json(args.json, payload)
    if args.plot:
        from analysis.plotting import plot_scan

        say(args, f"wrote {plot_scan(scan, args.plot, approximate)}")
    return 0
