"""``tpdynamics sweep CONFIG.toml``: a grid and random samples over training runs, on processes or Dask."""
from __future__ import annotations

from .common import add_run_arguments, executor_of, jobs_of, say, warn_no_effect


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="train a grid / random samples of methods, architectures, rates and seeds from a TOML file",
        description="Train every point of CONFIG.toml ([fixed] settings, a [grid] of lists, [random] samples; see "
                    "examples/sweep.toml), each point one method from one seed, as 'tpdynamics train' trains it. "
                    "Each run is kept in OUT/runs/ as it finishes and reused by the next sweep that needs it; "
                    "OUT/results.csv has one row per stored run (configuration and final losses). A failed run is "
                    "stored with its error and the others go on (exit status 1). Ctrl-C keeps the finished runs.")
    p.add_argument("config", metavar="CONFIG.toml", help="the sweep's configuration (TOML)")
    p.add_argument("--out", default="tpdynamics-sweep", help="output folder (default ./tpdynamics-sweep)")
    p.add_argument("--dry-run", action="store_true", help="list the tasks and whether each would run or be reused; "
                                                          "run nothing")
    p.add_argument("--status", action="store_true", help="show which tasks are done, failed or pending in OUT/runs/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_run_arguments(p, jobs_default="auto", store=False)
    p.set_defaults(run=run)


def run(args) -> int:
    from tpdynamics.sweep import load_sweep, plan_sweep, run_sweep, sweep_status

    spec = load_sweep(args.config)
    if args.dry_run and args.status:
        raise ValueError("--dry-run and --status both only look; give one of them.")
    if args.dry_run:
        warn_no_effect(args, ("jobs", "scheduler", "quiet"), "with --dry-run")
    if args.status:
        warn_no_effect(args, ("jobs", "scheduler", "fresh", "quiet"), "with --status")
    if args.dry_run:
        return _dry_run(args, spec, plan_sweep(spec))
    if args.status:
        return _status(args, sweep_status(spec, args.out))
    result = run_sweep(spec, args.out, executor=executor_of(args), jobs=jobs_of(args), fresh=args.fresh,
                       progress=not args.quiet, threads=1 if args.threads == "auto" else args.threads)
    summary = result.summary
    for record in result.failed:
        say(args, f"FAILED {record.task.label}: {record.error} (traceback in {result.store.path(record.task)})")
    ran = summary.finished - summary.reused
    say(args, f"{summary.reuse_message()}; ran {ran} on {summary.executor or 'none'}"
              + (f", {len(result.failed)} failed" if result.failed else "") + f"; wrote {result.table}")
    return 1 if result.failed else 0


def _dry_run(args, spec, plan) -> int:
    from tpdynamics.runs import ResultStore
    from tpdynamics.sweep import STORE_FOLDER

    store = ResultStore(f"{args.out}/{STORE_FOLDER}")
    seen, stored = set(), 0
    for task in plan.tasks:
        if task.key in seen:
            continue
        seen.add(task.key)
        record = None if args.fresh else store.get(task)
        reuse = record is not None and record.ok
        stored += reuse
        say(args, f"{'reuse' if reuse else 'run':<6s} {task.key}  {task.label}")
    say(args, f"{len(plan.points)} points ({spec.shape()}), {plan.distinct} distinct tasks: {stored} stored in "
              f"{store.root}, {plan.distinct - stored} to run (dry run: nothing ran)")
    return 0


def _status(args, status) -> int:
    for state in ("done", "failed", "pending"):
        for task, record in status[state]:
            error = f": {record.error}" if state == "failed" else ""
            say(args, f"{state:<8s} {task.label}{error}")
    total = sum(len(v) for v in status.values())
    say(args, f"{total} tasks: {len(status['done'])} done, {len(status['failed'])} failed, "
              f"{len(status['pending'])} pending (in {args.out})")
    return 0
