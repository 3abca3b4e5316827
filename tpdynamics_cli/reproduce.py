"""``tpdynamics reproduce``: regenerate the thesis's experiments into figures, JSON and REPORT.md."""
from __future__ import annotations

from .common import add_run_arguments, executor_of, integer, jobs_of, say, warn_no_effect


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="regenerate the thesis's experiments (figures, JSON, REPORT.md)",
        description="Regenerate each experiment into OUT/NAME.png and OUT/NAME.json, and OUT/REPORT.md with what the "
                    "thesis states, what we measured (seeds, 95 % intervals) and whether the claim holds. "
                    "A failed experiment is reported and does not stop the others. Every task's result is kept in "
                    "OUT/runs/ as it finishes: Ctrl-C stops at once and keeps them (REPORT.md marked partial), and "
                    "the same command again resumes. REPORT.md covers every experiment in OUT.")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all; see --list)")
    p.add_argument("--quick", action="store_true",
                   help="reduced sizes (71 s measured with --jobs 2 on 2 shared cores at load 2-4, 39 s of CPU; see the README)")
    p.add_argument("--out", default="tpdynamics-reproduce", help="output folder (default ./tpdynamics-reproduce)")
    p.add_argument("--seeds", type=integer("--seeds", 1, 7), default=None,
                   help="seeds per experiment (default: the thesis's counts)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="run every task alone (the student-teacher slots one seed at a time) instead of training the "
                        "slots of an experiment as one ensemble (same numbers, to rounding; for comparison)")
    add_run_arguments(p, jobs_default="auto", store=False)
    p.set_defaults(run=run, json=None)


def run(args) -> int:
    from analysis.reproduce import EXPERIMENTS, ExperimentStatus, reproduce, resolve_names

    if args.list:
        warn_no_effect(args, ("quick", "out", "seeds", "jobs", "scheduler", "fresh", "quiet", "ensemble"),
                       "with --list")
        if args.names:
            warn_no_effect(args, "names", "with --list")
        for name in EXPERIMENTS.names():
            cls = EXPERIMENTS.get(name)
            say(args, f"{name:<30s} {cls.title}\n{'':<30s} thesis: {cls.reference}")
        return 0
    names = resolve_names(args.names)
    records = reproduce(names, quick=args.quick, out=args.out, seeds=args.seeds, jobs=jobs_of(args),
                        fresh=args.fresh, progress=not args.quiet,
                        threads=1 if args.threads == "auto" else args.threads, executor=executor_of(args),
                        ensemble=args.ensemble)
    failed = [r.name for r in records if r.status != ExperimentStatus.OK]
    for r in records:
        decided = [c for c in r.claims if c.holds is not None]
        reused = f", {r.tasks_reused} of {r.tasks_total} tasks reused" if r.tasks_reused else ""
        say(args, f"{r.name:<34s} {r.status:<7s} {sum(bool(c.holds) for c in decided)}/{len(decided)} claims hold "
                  f"({r.seconds:.1f} s{reused})")
    say(args, f"{records.summary.reuse_message()}; wrote {records.report}"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
