"""Run reproduced experiments (in parallel processes), write ``NAME.json``, ``NAME.png`` and ``REPORT.md``.

A failed experiment does not stop the others: its error is written to its JSON and to the report.
"""
from __future__ import annotations

import multiprocessing
import os
import platform
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm.auto import tqdm

import tpdynamics
from tpdynamics.serialization import jsonable, write_json

from ..plotting import save
from .base import EXPERIMENTS


@dataclass
class ExperimentRecord:
    """Outcome of one experiment, as written to ``NAME.json``.

    Attributes
    ----------
    name, title, reference, thesis_says : str
        The experiment's registered name and its :class:`~analysis.reproduce.Experiment` class attributes.
    status : {'ok', 'failed'}
    seconds : float
        Time spent in its tasks and its summary (summed over worker processes).
    settings : dict
        The settings it ran with (``quick`` or ``full``).
    seeds : int
        Seeds it ran.
    claims : list of Claim
    data : dict
        What :meth:`~analysis.reproduce.Experiment.summarize` measured.
    error : str or None
        The traceback of a failed experiment.
    files : list of str
        Files written into the output folder.
    """

    name: str
    title: str
    reference: str
    thesis_says: str
    status: str
    seconds: float
    settings: dict
    seeds: int
    claims: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    error: str | None = None
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The record as JSON types (:func:`~tpdynamics.serialization.jsonable`; claims as dicts)."""
        return jsonable(asdict(self))


def _run_task(name: str, settings: dict, task: dict, threads: int):
    """Worker entry point: one task of one experiment (top level so that it pickles)."""
    torch.set_num_threads(threads)
    experiment = EXPERIMENTS.get(name)()
    start = time.perf_counter()
    result = experiment.run_task(settings, task)
    return result, time.perf_counter() - start


def resolve_names(names) -> list[str]:
    """Validate experiment names.

    Parameters
    ----------
    names : sequence of str or Experiment subclasses, or None
        Experiments to run; empty or ``None``: every registered one.

    Returns
    -------
    list of str
        Registered names, in the given order.

    Raises
    ------
    ValueError
        For a name that is not registered (the message lists the valid names).
    """
    if not names:
        return EXPERIMENTS.names()
    return [EXPERIMENTS.get(n).name for n in names]


def reproduce(names=None, *, quick: bool = False, out="tpdynamics-reproduce", seeds: int | None = None,
              jobs: int = 1, progress: bool = True) -> list[ExperimentRecord]:
    """Regenerate experiments into ``out/NAME.png``, ``out/NAME.json`` and ``out/REPORT.md``.

    Parameters
    ----------
    names : sequence of str, optional
        Registered experiment names (default: all).
    quick : bool
        Reduced sizes (fewer trials, epochs, seeds).
    out : path
        Output folder.
    seeds : int, optional
        Seeds per experiment (default: the thesis's count, or the quick count).
    jobs : int
        Worker processes; tasks (seeds) of all experiments are spread over them.
    progress : bool
        Show a progress bar over the tasks.

    Returns
    -------
    list of ExperimentRecord
        One per experiment, in the order of ``names``; a failed experiment has ``status == 'failed'``.

    Raises
    ------
    ValueError
        For an unknown name, or ``seeds`` / ``jobs`` that is not a positive int (checked before anything runs).
    """
    names = resolve_names(names)
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an int >= 1 (the number of worker processes; 1 runs everything "
                         "in this process).")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds={seeds!r} must be an int >= 1 (seeds per experiment), or None for each "
                         "experiment's own count.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plans = {}
    for name in names:
        experiment = EXPERIMENTS.get(name)()
        settings = experiment.settings(quick)
        n_seeds = experiment.seeds(quick, seeds)
        plans[name] = (experiment, settings, n_seeds, experiment.tasks(settings, n_seeds))
    results = {name: [None] * len(plan[3]) for name, plan in plans.items()}
    errors, seconds = {}, {name: 0.0 for name in names}
    total = sum(len(p[3]) for p in plans.values())
    bar = tqdm(total=total, desc="reproduce", unit="task", disable=not progress)
    if jobs == 1:
        for name, (experiment, settings, _, tasks) in plans.items():
            for k, task in enumerate(tasks):
                if name in errors:
                    bar.update(1)
                    continue
                try:
                    start = time.perf_counter()
                    results[name][k] = experiment.run_task(settings, task)
                    seconds[name] += time.perf_counter() - start
                except Exception:  # one experiment's failure must not stop the others
                    errors[name] = traceback.format_exc()
                bar.update(1)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_run_task, name, settings, task, threads): (name, k)
                       for name, (_, settings, _, tasks) in plans.items() for k, task in enumerate(tasks)}
            for future in as_completed(futures):
                name, k = futures[future]
                try:
                    results[name][k], took = future.result()
                    seconds[name] += took
                except Exception:
                    errors.setdefault(name, traceback.format_exc())
                bar.update(1)
    bar.close()

    records = []
    for name, (experiment, settings, n_seeds, _) in plans.items():
        record = ExperimentRecord(name=name, title=experiment.title, reference=experiment.reference,
                                  thesis_says=experiment.thesis_says, status="ok", seconds=seconds[name],
                                  settings=settings, seeds=n_seeds)
        if name not in errors:
            try:
                start = time.perf_counter()
                summary = experiment.summarize(settings, results[name])
                record.seconds += time.perf_counter() - start
                record.data, record.claims = summary.data, summary.claims
                save(summary.figure, out / f"{name}.png")
                record.files.append(f"{name}.png")
            except Exception:
                errors[name] = traceback.format_exc()
        if name in errors:
            record.status, record.error = "failed", errors[name]
        write_json(out / f"{name}.json", record.to_dict())
        record.files.append(f"{name}.json")
        records.append(record)
    write_report(records, out / "REPORT.md", quick=quick, jobs=jobs, seeds=seeds,
                 wall=time.perf_counter() - started)
    return records


def _holds(claim) -> str:
    """The verdict column of the report."""
    verdict = {True: "holds", False: "does NOT hold",
               None: "inconclusive (the interval straddles the criterion) or not decided"}
    text = verdict[claim.holds]
    if claim.holds is False and not claim.expected:
        text += " (a finding: the full-size measurement refutes it too)"
    return text


def write_report(records, path, *, quick: bool, jobs: int, seeds, wall: float) -> Path:
    """Write ``REPORT.md``: for every experiment, the thesis's statement, our measurement and the verdict.

    Parameters
    ----------
    records : sequence of ExperimentRecord
    path : path
        The file to write.
    quick, jobs, seeds
        The arguments of :func:`reproduce`, stated in the header.
    wall : float
        Wall-clock seconds of the whole run.

    Returns
    -------
    Path
        ``path``.
    """
    lines = [
        "# Reproduction report",
        "",
        f"- generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by tpdynamics "
        f"{tpdynamics.__version__} (torch {torch.__version__}, Python {platform.python_version()})",
        f"- mode: {'quick (reduced sizes: qualitative checks only)' if quick else 'full (the thesis settings)'}; "
        f"seeds: {seeds if seeds is not None else 'per experiment (below)'}; jobs: {jobs}; "
        f"wall time {wall:.1f} s",
        "- no run is dropped: diverged runs are counted in each experiment's data and claims.",
        "",
        "| experiment | thesis | status | claims holding | time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        decided = [c for c in r.claims if c.holds is not None]
        held = sum(1 for c in decided if c.holds)
        lines.append(f"| [{r.name}](#{r.name}) | {r.reference} | {r.status} | "
                     f"{held}/{len(decided)} | {r.seconds:.1f} |")
    lines += ["", "| experiment | claim | verdict | cause |", "|---|---|---|---|"]  # every claim, with its cause
    for r in records:
        for c in r.claims:
            cells = [r.name, c.statement, _holds(c), c.cause or ("" if c.holds else "not found")]
            lines.append("| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |")
    for r in records:
        lines += ["", f"## {r.name}", "", f"**{r.title}** — thesis {r.reference}. Seeds: {r.seeds}. "
                  f"Files: {', '.join(r.files)}.", "", f"> {r.thesis_says}", ""]
        if r.status == "failed":
            lines += ["**FAILED** — the error (other experiments ran on):", "", "```",
                      (r.error or "").strip()[-3000:], "```"]
            continue
        for c in r.claims:
            lines.append(f"- **Thesis:** {c.statement}  \n  **Measured:** {c.measured}  \n  **Verdict:** {_holds(c)}"
                         + (f"  \n  **Cause:** {c.cause}" if c.cause else ""))
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines += ["", f"Settings: {settings}."]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
