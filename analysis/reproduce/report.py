"""What one experiment wrote (``NAME.json``), and ``REPORT.md`` rebuilt from every such file in a folder.

The report is written from the folder, not from one run: running a subset of the experiments into
a folder updates their rows and keeps the others, and an interrupted run leaves a report marked
*partial* that lists what is missing.
"""
from __future__ import annotations

import enum
import json
import logging
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

import tpdynamics
from tpdynamics.runs import atomic_write_text
from tpdynamics.serialization import jsonable

from .base import EXPERIMENTS, Claim

__all__ = ["ExperimentRecord", "load_records", "write_report", "REPORT_NAME"]

REPORT_NAME = "REPORT.md"
_FORMAT = "tpdynamics-experiment/1"
_log = logging.getLogger("analysis.reproduce")


class ExperimentStatus(str, enum.Enum):
    """How an experiment of a reproduction ended (:attr:`ExperimentRecord.status`; a ``str`` enum, as
    :class:`tpdynamics.runs.TaskStatus`: members equal and are written to JSON as their values)."""

    OK = "ok"
    """Every task has its result and the summary ran."""
    FAILED = "failed"
    """A task or the summary raised; ``error`` holds the traceback."""
    INCOMPLETE = "incomplete"
    """Some tasks have no result yet (an interrupted run): rerun the same command to finish."""

    __str__ = str.__str__
    __format__ = str.__format__


@dataclass
class ExperimentRecord:
    """Outcome of one experiment, as written to ``NAME.json``.

    Attributes
    ----------
    name, title, reference, thesis_says : str
        The experiment's registered name and its :class:`~analysis.reproduce.Experiment` class attributes.
    status : ExperimentStatus
        ``OK``, ``FAILED`` or
        ``incomplete``: some of its tasks have no result yet (an interrupted run); rerun to finish.
    seconds : float
        Time spent in its tasks (as stored, also for reused ones; summed over processes) and its summary.
    settings : dict
        The settings it ran with (``quick`` or ``full``).
    seeds : int
        Seeds it ran.
    claims : list of Claim
    data : dict
        What :meth:`~analysis.reproduce.Experiment.summarize` measured.
    error : str or None
        The traceback of a failed experiment (its first failed task's, or its summary's).
    files : list of str
        Files written into the output folder.
    mode : {'quick', 'full'}
    tasks_total, tasks_done, tasks_reused : int
        Its tasks; those with a stored result; those of them read from the store by the run that wrote this.
    task_keys : list of str
        Store keys of its tasks (``runs/<key>.json``), in task order.
    missing : list of str
        Labels of the tasks without a result (``incomplete`` only).
    """

    name: str
    title: str
    reference: str
    thesis_says: str
    status: ExperimentStatus
    seconds: float
    settings: dict
    seeds: int
    claims: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    error: str | None = None
    files: list = field(default_factory=list)
    mode: str = ""
    tasks_total: int = 0
    tasks_done: int = 0
    tasks_reused: int = 0
    task_keys: list = field(default_factory=list)
    missing: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The record as JSON types (:func:`~tpdynamics.serialization.jsonable`; claims as dicts)."""
        return {"format": _FORMAT, **jsonable(asdict(self))}

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentRecord":
        """The record of a ``NAME.json`` (:meth:`to_dict`); unknown keys are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in data.items() if k in known}
        fields["claims"] = [c if isinstance(c, Claim) else Claim(**c) for c in fields.get("claims", [])]
        if "status" in fields:
            fields["status"] = ExperimentStatus(fields["status"])
        return cls(**fields)


def load_records(folder) -> list[ExperimentRecord]:
    """Every experiment record (``NAME.json`` written by :func:`~analysis.reproduce.reproduce`) in ``folder``.

    Ordered as the registry lists the experiments, unregistered names after them. Files that are not
    experiment records are skipped.
    """
    folder = Path(folder)
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            _log.warning("skipping unreadable %s", path)
            continue
        if not isinstance(data, dict) or data.get("format") != _FORMAT or path.stem != data.get("name"):
            continue
        try:
            records.append(ExperimentRecord.from_dict(data))
        except TypeError as err:
            _log.warning("skipping %s: %s", path, err)
    order = {name: i for i, name in enumerate(EXPERIMENTS.names())}
    return sorted(records, key=lambda r: (order.get(r.name, len(order)), r.name))


def _holds(claim) -> str:
    """The verdict column of the report."""
    verdict = {True: "holds", False: "does NOT hold",
               None: "inconclusive (the interval straddles the criterion) or not decided"}
    text = verdict[claim.holds]
    if claim.holds is False and not claim.expected:
        text += " (a finding: the full-size measurement refutes it too)"
    return text


def write_report(records, path, *, quick: bool, jobs: int, seeds, wall: float, run: str = "") -> Path:
    """Write ``REPORT.md``: for every experiment, the thesis's statement, our measurement and the verdict.

    Parameters
    ----------
    records : sequence of ExperimentRecord
        Usually :func:`load_records` of the report's folder (every experiment written there).
    path : path
        The file to write (atomically).
    quick, jobs, seeds
        The arguments of the run that writes the report, stated in the header.
    wall : float
        Wall-clock seconds of that run.
    run : str
        One more line about that run (e.g. ``"12 of 29 tasks reused"``).

    Returns
    -------
    Path
        ``path``.
    """
    incomplete = [r for r in records if r.status == ExperimentStatus.INCOMPLETE]
    modes = sorted({r.mode for r in records if r.mode})
    lines = ["# Reproduction report", ""]
    if incomplete:
        lines += [f"**PARTIAL REPORT**: {len(incomplete)} of {len(records)} experiments are incomplete "
                  f"({', '.join(r.name for r in incomplete)}): their tasks were interrupted. Run the same "
                  "command again to finish them; finished tasks are reused from `runs/`.", ""]
    lines += [
        f"- generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by tpdynamics "
        f"{tpdynamics.__version__} (torch {torch.__version__}, Python {platform.python_version()})",
        f"- last run: mode {'quick (reduced sizes: qualitative checks only)' if quick else 'full (the thesis settings)'}; "
        f"seeds: {seeds if seeds is not None else 'per experiment (below)'}; jobs: {jobs}; "
        f"wall time {wall:.1f} s" + (f"; {run}" if run else ""),
        f"- experiments in this folder: {len(records)} (modes: {', '.join(modes) or 'none'}); each row is the "
        "latest run of that experiment into this folder.",
        "- no run is dropped: diverged runs are counted in each experiment's data and claims.",
        "",
        "| experiment | thesis | mode | status | claims holding | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        decided = [c for c in r.claims if c.holds is not None]
        held = sum(1 for c in decided if c.holds)
        status = r.status if r.status != ExperimentStatus.INCOMPLETE else f"incomplete ({r.tasks_done}/{r.tasks_total} tasks)"
        lines.append(f"| [{r.name}](#{r.name}) | {r.reference} | {r.mode or '?'} | {status} | "
                     f"{held}/{len(decided)} | {r.seconds:.1f} |")
    lines += ["", "| experiment | claim | verdict | cause |", "|---|---|---|---|"]  # every claim, with its cause
    for r in records:
        for c in r.claims:
            cells = [r.name, c.statement, _holds(c), c.cause or ("" if c.holds else "not found")]
            lines.append("| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |")
    for r in records:
        lines += ["", f"## {r.name}", "", f"**{r.title}** — thesis {r.reference}. Seeds: {r.seeds}. "
                  f"Files: {', '.join(r.files)}.", "", f"> {r.thesis_says}", ""]
        if r.status == ExperimentStatus.FAILED:
            lines += ["**FAILED** — the error (other experiments ran on):", "", "```",
                      (r.error or "").strip()[-3000:], "```"]
            continue
        if r.status == ExperimentStatus.INCOMPLETE:
            missing = ", ".join(r.missing[:10]) + (f" and {len(r.missing) - 10} more" if len(r.missing) > 10 else "")
            lines += [f"**INCOMPLETE** — {r.tasks_done} of {r.tasks_total} tasks have a result; missing: "
                      f"{missing or 'the summary'}. Rerun to finish."]
            continue
        for c in r.claims:
            lines.append(f"- **Thesis:** {c.statement}  \n  **Measured:** {c.measured}  \n  **Verdict:** {_holds(c)}"
                         + (f"  \n  **Cause:** {c.cause}" if c.cause else ""))
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines += ["", f"Settings: {settings}."]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
