"""The contract of a reproduced experiment, and what it reports.

An :class:`Experiment` reproduces one figure group of the thesis from the package's public API.
It splits its work into independent *tasks* (typically one per seed), so that ``--jobs`` can run
tasks of every experiment in parallel processes, and then *summarizes* the task results into
data (JSON), a figure (PNG) and a list of :class:`Claim` objects — what the thesis states beside
what we measured, and whether the thesis's qualitative claim holds.

Rules for writing an experiment (subclass, register with ``@EXPERIMENTS.register(name)``):

* class attributes ``title``, ``reference`` (thesis figures/sections), ``thesis_says`` (quote the
  text's numbers and hyper-parameters), ``quick`` and ``full`` (settings dicts; ``full`` uses the
  thesis's values, ``quick`` a reduced size that runs in well under a minute), ``default_seeds``
  (the thesis's seed count) and ``quick_seeds``;
* :meth:`tasks` returns picklable task dicts; :meth:`run_task` does the work of one task and returns
  a picklable dict (plain numbers/lists, or the package's result objects) (it may run in another
  process: no shared state, every random draw seeded from the task);
* :meth:`summarize` combines the task results. No run is dropped: diverged runs are counted and
  reported in the data and the claims;
* use only the public API of ``tpdynamics`` and ``analysis``.
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field

from matplotlib.figure import Figure

from tpdynamics.registry import Registry
from tpdynamics.statistics import SIGNED, interval


@dataclass
class Claim:
    """One statement of the thesis set beside our measurement.

    Attributes
    ----------
    statement : str
        What the thesis states (quoted numbers where the text gives them).
    measured : str
        What we measured, with seeds and 95 % intervals where they apply (:func:`fmt_ci`: the t interval
        around the mean for signed quantities, the log-scale interval around the geometric mean for
        positive ones; the text names which).
    holds : bool or None
        Whether the thesis's qualitative claim holds in this run (``None``: not decidable here,
        e.g. a quantity the thesis does not state).
    robust : bool
        Whether the verdict is reproducible at quick size (the test suite requires ``holds == expected``
        for those).
    values : dict
        The numbers behind ``measured``.
    expected : bool
        The verdict our full-size measurement gives: ``True`` where we confirm the thesis, ``False``
        where we find the claim does not hold (a finding, stated in ``measured``).
    cause : str
        Why a claim that does not hold (or is inconclusive) does not, with the measurement behind it: a
        setting we differ in, a statistic the thesis computed differently (ours and the thesis's way
        side by side), or a claim the thesis's own data does not support. Empty when the claim holds.
    """

    statement: str
    measured: str
    holds: bool | None
    robust: bool = True
    values: dict = field(default_factory=dict)
    expected: bool = True
    cause: str = ""

    def to_dict(self) -> dict:
        """The claim's fields as a dict."""
        return asdict(self)


@dataclass
class Summary:
    """What :meth:`Experiment.summarize` returns.

    Attributes
    ----------
    data : dict
        Everything measured, plain numbers and lists (written to ``NAME.json``).
    claims : list of Claim
    figure : matplotlib.figure.Figure
        Written to ``NAME.png``.
    """

    data: dict
    claims: list
    figure: Figure


class Experiment(abc.ABC):
    """Base class of the reproduced experiments.

    Rules for writing one (subclass, register with ``@EXPERIMENTS.register(name)``; the module docstring
    says more):

    * class attributes ``title``, ``reference``, ``thesis_says``, ``quick`` and ``full`` (settings
      dicts), ``default_seeds``, ``quick_seeds``;
    * abstract hooks :meth:`run_task` (one picklable task dict in, one picklable result dict out; may run
      in another process) and :meth:`summarize` (the task results, in order, into a :class:`Summary`);
    * optional hook :meth:`tasks` (default: one task ``{"seed": s}`` per seed);
    * optional hooks :meth:`batch_key` and :meth:`run_batch`: tasks with equal batch keys may run as one
      batch (e.g. the seeds of several slots trained as one ensemble, :mod:`tpdynamics.ensemble`), which
      must give each task the result :meth:`run_task` gives it (to rounding);
    * only the public API of ``tpdynamics`` and ``analysis``.
    """

    name = "abstract"
    title = ""
    reference = ""
    thesis_says = ""
    quick: dict = {}
    full: dict = {}
    default_seeds = 1
    quick_seeds = 1

    def settings(self, quick: bool) -> dict:
        """A copy of the ``quick`` or the ``full`` settings."""
        return dict(self.quick if quick else self.full)

    #: Task seconds of one slot of the full run, measured (``reproduce --jobs 2`` on the 2-core machine of the
    #: README): a number, or a dict from a task's ``(field, value)`` to one. Only a hint that orders the units
    #: of ``reproduce`` longest first (:meth:`slot_seconds`), so that a long unit does not start last.
    full_slot_seconds: float | dict | None = None

    def slot_seconds(self, settings: dict, task: dict) -> float:
        """Estimated seconds of ``task``, to order the units of ``reproduce``.

        Parameters
        ----------
        settings : dict
            The experiment's settings the task runs with.
        task : dict
            One entry of :meth:`tasks`.

        Returns
        -------
        float
            :attr:`full_slot_seconds` (the entry whose ``(field, value)`` the task has) for the full settings,
            else 1.
        """
        from tpdynamics.runs.codec import canonical_json

        hint = self.full_slot_seconds
        if hint is None or canonical_json(settings) != canonical_json(self.settings(False)):
            return 1.0
        if isinstance(hint, dict):
            return float(next((v for (field, value), v in hint.items() if task.get(field) == value), 1.0))
        return float(hint)

    def seeds(self, quick: bool, seeds: int | None) -> int:
        """``seeds`` if given, else ``quick_seeds`` or ``default_seeds``."""
        if seeds is not None:
            return seeds
        return self.quick_seeds if quick else self.default_seeds

    def tasks(self, settings: dict, seeds: int) -> list[dict]:
        """Independent units of work (picklable dicts); default: one task ``{"seed": s}`` per seed."""
        return [{"seed": s} for s in range(seeds)]

    @abc.abstractmethod
    def run_task(self, settings: dict, task: dict) -> dict:
        """Do one task (possibly in another process) and return a picklable dict."""

    def batch_key(self, settings: dict, task: dict) -> str | None:
        """Tasks of this experiment with equal keys (not ``None``) may run together by :meth:`run_batch`;
        default ``None``: every task runs alone."""
        return None

    def run_batch(self, settings: dict, tasks: list[dict]) -> list[dict]:
        """Do several tasks of equal :meth:`batch_key` at once; one result per task, in order, each what
        :meth:`run_task` returns for it (to rounding). Default: one after another."""
        return [self.run_task(settings, task) for task in tasks]

    @abc.abstractmethod
    def summarize(self, settings: dict, results: list[dict]) -> Summary:
        """Combine the results of :meth:`tasks`, in their order, into data, claims and a figure."""


EXPERIMENTS: Registry[type[Experiment]] = Registry("experiment", Experiment, "names")


def mean_ci(values) -> tuple[float, float]:
    """Arithmetic mean and half-width of the 95 % Student-t interval of the finite values (signed quantities).

    A thin use of :func:`tpdynamics.statistics.interval` with method ``"t"``: ``None``, NaN and inf
    (diverged runs) are left out; the half-width is NaN for fewer than two values, and both are NaN for
    none. Positive quantities (losses, norms, ratios) take the log-scale interval instead:
    ``interval(values, "log-t")`` or ``fmt_ci(values, method="log-t")``.

    Parameters
    ----------
    values : iterable of float or None

    Returns
    -------
    (mean, half_width) : (float, float)
    """
    iv = interval(values, SIGNED)
    return iv.centre, iv.high - iv.centre


def fmt_ci(values, digits: int = 3, method: str = SIGNED) -> str:
    """One line for a list of per-seed values, centre to ``digits`` digits (:meth:`Interval.format`).

    ``method="t"`` (signed quantities, e.g. cosines): ``"m +- h (arithmetic mean, 95 % t interval, n = k)"``;
    ``method="log-t"`` (positive quantities: losses, norms, ratios):
    ``"g [low, high] (geometric mean, 95 % log-t interval, n = k)"``; ``method="bootstrap"`` (non-negative
    quantities that can be 0). Diverged runs (None, NaN, inf) are left out of ``n``.
    """
    return interval(values, method).format(digits)
