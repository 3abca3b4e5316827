"""Confidence intervals over runs that respect the quantity, and the divergence threshold of a loss.

Every figure the package reports over seeds (a loss curve, a final test MSE, a norm, a cosine) is
summarised by one :class:`Interval`: a central value, the two ends of a two-sided interval at
``confidence`` (default 0.95), the number of finite values it rests on, and the method. The method
is chosen by the *kind of quantity*, never by the data:

==============  ================  =================  ==========================================================
method          for               centre             interval
==============  ================  =================  ==========================================================
``"t"``         signed quantities arithmetic mean    ``m +- t_{q, n-1} s / sqrt(n)`` (Student t)
                (cosines, slopes)
``"log-t"``     positive          geometric mean     the t interval of ``log x`` mapped back:
                quantities        ``g = exp(mean     ``g */ exp(t_{q, n-1} s_log / sqrt(n))``, a multiplicative
                (losses, norms,   log x)``           interval that never reaches 0 (the t interval of a
                times, ratios)                       lognormal median)
``"bootstrap"`` non-negative      arithmetic mean    percentile bootstrap of the mean (seeded, deterministic);
                quantities that                      it lies inside ``[min x, max x]``, so it keeps any bound
                can be exactly 0                     of the data, but it is too narrow for a handful of values
==============  ================  =================  ==========================================================

``q = (1 + confidence) / 2``. The centre and the interval go together: a curve drawn from
``centre`` with a band from ``low`` to ``high`` is coherent (for ``"log-t"`` the line is the
geometric mean, which is also the centre of the band on a log axis). With 2 seeds and values
``1e-3`` and ``1e3`` the 95 % ``"log-t"`` interval is ``[7.6e-39, 1.3e38]`` around 1: wide — two runs
say little — but positive, where the t interval, ``[-5853, 6853]``, would say a loss could be negative.
(``t_{0.975, 1} = 12.7``: with two runs any 95 % interval is wide.)

Non-finite values (``None``, NaN, +-inf: runs that diverged) are left out and counted
(``n_excluded``); the reports count diverged runs separately. One finite value gives the value
and a NaN interval (no spread to estimate); none gives NaN throughout. All values equal give the
degenerate interval ``[x, x]`` exactly. The computations are scaled (``t``: by ``max |x|``;
``log-t``: on ``log x``), so values from ``1e-300`` to ``1e308`` never overflow in a square; a
result beyond the float range is ``inf``, never an exception. For ``"log-t"`` a value exactly 0 (an
underflowed loss) makes the geometric mean and the lower end 0 and the upper end ``inf`` (the
spread on the log scale is infinite); a negative value is a ``ValueError``. The lower end of a
``"log-t"`` interval of positive values is positive unless ``exp`` underflows (a multiplicative
half-width beyond ``e^700``, i.e. values spread over hundreds of decades).

:data:`DIVERGENCE_THRESHOLD` is where a training loss counts as diverged although finite.

Comparisons of two methods trained on the *same* problems (same teacher, data and initialisation per
seed) are paired: :func:`paired_comparison` works on the per-problem log-ratios ``log(a_k / b_k)``
of a positive quantity (a final test loss), reports their mean with a seeded percentile-bootstrap
interval (resampling problems) and the count of problems where ``a_k < b_k``, and decides an ordering
only when the interval excludes the other direction (:meth:`PairedComparison.ordering`: ``True``,
``False``, or ``None`` for *inconclusive*). Pairing removes the spread of problem difficulty, which can
be orders of magnitude across seeds and can make the unpaired medians disagree with the paired ordering.
"""
from __future__ import annotations

import abc
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .registry import Registry

__all__ = ["DIVERGENCE_THRESHOLD", "INTERVAL_METHODS", "Interval", "IntervalMethod", "LogStudentT", "NONNEGATIVE",
           "POSITIVE", "PairedComparison", "PercentileBootstrap", "SIGNED", "StudentT", "curve_intervals", "diverged",
           "finite_values", "interval", "mean_and_interval", "paired_comparison"]

#: A loss above this counts as diverged even though finite: ``sqrt(float64 max) ~ 1.34e154``, beyond which
#: the loss's square (a variance, a squared error of it) overflows; no training that still learns gets there.
DIVERGENCE_THRESHOLD = math.sqrt(sys.float_info.max)

#: The interval method for each kind of quantity.
SIGNED, POSITIVE, NONNEGATIVE = "t", "log-t", "bootstrap"


def diverged(value) -> bool:
    """Whether a loss value counts as diverged: non-finite, or above :data:`DIVERGENCE_THRESHOLD`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return True
    return not math.isfinite(value) or abs(value) > DIVERGENCE_THRESHOLD


@dataclass(frozen=True)
class Interval:
    """A central value over runs and its two-sided confidence interval (see the module docstring).

    Attributes
    ----------
    centre : float
        The arithmetic (``t``, ``bootstrap``) or geometric (``log-t``) mean of the finite values.
    low, high : float
        The interval's ends; NaN for fewer than two finite values.
    n : int
        Finite values used.
    n_excluded : int
        Values left out (``None``, NaN, +-inf).
    method : str
        ``"t"``, ``"log-t"`` or ``"bootstrap"``.
    confidence : float
    centre_name : str
        ``"arithmetic mean"`` or ``"geometric mean"``.
    """

    centre: float
    low: float
    high: float
    n: int
    n_excluded: int
    method: str
    confidence: float
    centre_name: str

    def describe(self) -> dict:
        """``{"method", "confidence", "centre"}``: what the JSON says about the interval used."""
        return {"method": self.method, "confidence": self.confidence, "centre": self.centre_name}

    def __iter__(self):
        """``centre, low, high`` (so ``m, lo, hi = interval(...)`` works)."""
        return iter((self.centre, self.low, self.high))

    def format(self, digits: int = 3) -> str:
        """One line: ``"0.012 [0.0041, 0.035] (geometric mean, 95 % log-t interval, n = 3)"``.

        The symmetric t interval is written ``m +- h``; one value: ``"x (n = 1, no interval)"``.
        """
        if self.n == 0:
            return "n/a (no finite value)"
        if self.n == 1:
            return f"{self.centre:.{digits}g} (n = 1, no interval)"
        level = f"{100 * self.confidence:g} %"
        if self.method == SIGNED:
            half = max(self.high - self.centre, self.centre - self.low)
            body = f"{self.centre:.{digits}g} +- {half:.2g}"
        else:
            body = f"{self.centre:.{digits}g} [{self.low:.2g}, {self.high:.2g}]"
        return f"{body} ({self.centre_name}, {level} {self.method} interval, n = {self.n})"


class IntervalMethod(abc.ABC):
    """One way to summarise runs: ``compute(x, confidence)`` on finite values, ``len(x) >= 2``, not all equal.

    Subclasses set ``centre_name`` and implement :meth:`compute` returning ``(centre, low, high)``;
    :func:`interval` does the filtering, the small and degenerate cases, and builds the :class:`Interval`.
    """

    name = "abstract"
    centre_name = ""

    def check(self, x: np.ndarray) -> None:
        """Raise ``ValueError`` when ``x`` (finite values) is outside the method's domain."""

    @abc.abstractmethod
    def compute(self, x: np.ndarray, confidence: float) -> tuple[float, float, float]:
        raise NotImplementedError


INTERVAL_METHODS: Registry[type[IntervalMethod]] = Registry("interval method", IntervalMethod, "method")


def _t_quantile(confidence: float, n: int) -> float:
    from scipy.stats import t  # scipy is needed here only

    return float(t.ppf(0.5 + confidence / 2, n - 1))


@INTERVAL_METHODS.register("t")
class StudentT(IntervalMethod):
    """Arithmetic mean and ``m +- t_{q, n-1} s / sqrt(n)``, computed on ``x / max|x|`` (no overflow in ``s``)."""

    centre_name = "arithmetic mean"

    def compute(self, x, confidence):
        scale = float(np.max(np.abs(x)))
        y = x / scale
        mean, sd = float(np.mean(y)), float(np.std(y, ddof=1))
        half = _t_quantile(confidence, x.size) * sd / math.sqrt(x.size)
        with np.errstate(over="ignore"):
            out = np.array([mean, mean - half, mean + half]) * scale
        return float(out[0]), float(out[1]), float(out[2])


@INTERVAL_METHODS.register("log-t")
class LogStudentT(IntervalMethod):
    """Geometric mean ``g = exp(mean log x)`` and ``g */ exp(t_{q, n-1} s_log / sqrt(n))``; needs ``x >= 0``."""

    centre_name = "geometric mean"

    def check(self, x):
        if np.any(x < 0):
            raise ValueError(f"method='log-t' is for positive quantities (losses, norms, times, ratios); got the "
                             f"negative value {float(x[x < 0][0])!r}. Use method='t' for a signed quantity.")

    def compute(self, x, confidence):
        if np.any(x == 0):
            return 0.0, 0.0, math.inf  # log 0 = -inf: the geometric mean is 0, the log-scale spread infinite
        z = np.log(x)
        mean, sd = float(np.mean(z)), float(np.std(z, ddof=1))
        half = _t_quantile(confidence, x.size) * sd / math.sqrt(x.size)
        with np.errstate(over="ignore", under="ignore"):
            out = np.exp(np.array([mean, mean - half, mean + half]))
        return float(out[0]), float(out[1]), float(out[2])


@INTERVAL_METHODS.register("bootstrap")
class PercentileBootstrap(IntervalMethod):
    """Arithmetic mean and the percentile bootstrap interval of the mean (2000 resamples, seed 0)."""

    centre_name = "arithmetic mean"
    resamples = 2000

    def compute(self, x, confidence):
        scale = float(np.max(np.abs(x)))
        y = x / scale
        index = np.random.default_rng(0).integers(0, x.size, size=(self.resamples, x.size))
        means = y[index].mean(axis=1)
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(means, [tail, 100 - tail])
        with np.errstate(over="ignore"):
            out = np.array([np.mean(y), low, high]) * scale
        return float(out[0]), float(min(out[1], out[0])), float(max(out[2], out[0]))


def finite_values(values: Iterable) -> tuple[np.ndarray, int]:
    """The finite entries of ``values`` as a float array, and how many were left out (None, NaN, +-inf)."""
    kept, excluded = [], 0
    for v in values:
        try:
            v = float(v)
        except (TypeError, ValueError):
            excluded += 1
            continue
        if math.isfinite(v):
            kept.append(v)
        else:
            excluded += 1
    return np.asarray(kept, dtype=float), excluded


def interval(values: Iterable, method: str = SIGNED, confidence: float = 0.95) -> Interval:
    """Central value and two-sided confidence interval of ``values`` (one entry per run).

    Parameters
    ----------
    values : iterable of float or None
        One value per run; ``None``, NaN and +-inf are left out (counted in ``n_excluded``).
    method : {'t', 'log-t', 'bootstrap'} or IntervalMethod subclass
        :data:`SIGNED` (``"t"``) for signed quantities, :data:`POSITIVE` (``"log-t"``) for positive ones
        (losses, norms, times, ratios), :data:`NONNEGATIVE` (``"bootstrap"``) for non-negative ones that
        can be exactly 0. See the module docstring for the formulas.
    confidence : float
        In ``(0, 1)``.

    Returns
    -------
    Interval
        Never raises for finite values of any magnitude; results beyond the float range are ``inf``.

    Raises
    ------
    ValueError
        For a confidence outside ``(0, 1)``, an unknown method, or a negative value with ``"log-t"``.

    Examples
    --------
    >>> iv = interval([1e-3, 1e3], "log-t")
    >>> iv.centre, iv.low > 0
    (1.0, True)
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be a number in (0, 1), e.g. 0.95.")
    strategy = INTERVAL_METHODS.get(method)()
    x, excluded = finite_values(values)
    strategy.check(x)

    def make(centre, low, high) -> Interval:
        return Interval(float(centre), float(low), float(high), int(x.size), excluded, strategy.name,
                        float(confidence), strategy.centre_name)

    if x.size == 0:
        return make(math.nan, math.nan, math.nan)
    if x.size == 1:
        return make(x[0], math.nan, math.nan)
    if np.all(x == x[0]):
        return make(x[0], x[0], x[0])  # no spread: exactly the value (no round trip through log/exp)
    return make(*strategy.compute(x, float(confidence)))


def mean_and_interval(values: Iterable, confidence: float = 0.95, method: str = SIGNED) -> tuple[float, float, float]:
    """``(centre, low, high)`` of :func:`interval` (default: arithmetic mean and Student-t interval).

    Kept for the callers of :func:`tpdynamics.training.mean_and_interval`; pass ``method="log-t"`` for a
    positive quantity. ``low``/``high`` are NaN for fewer than two finite values.
    """
    return tuple(interval(values, method, confidence))


def curve_intervals(runs: Iterable[Iterable], method: str = POSITIVE, confidence: float = 0.95) -> list[Interval]:
    """Per index (epoch, record point), the :class:`Interval` over the runs that reach it.

    ``runs`` is a list of per-run curves, possibly of different lengths (a run that diverged stops early):
    entry ``e`` of the result is over the runs with more than ``e`` values.
    """
    runs = [list(r) for r in runs]
    length = max((len(r) for r in runs), default=0)
    return [interval([r[e] for r in runs if len(r) > e], method, confidence) for e in range(length)]


@dataclass(frozen=True)
class PairedComparison:
    """Two methods on the same problems: the per-problem log-ratios ``z_k = log(a_k / b_k)`` and their mean.

    Attributes
    ----------
    log_ratios : tuple of float
        ``z_k`` (natural log) for the problems where both values are finite and positive, in problem order
        (``z_k = a_k - b_k`` for a signed quantity, ``difference=True``).
    mean : float
        ``mean_k z_k``; ``exp(mean)`` (:attr:`ratio`) is the geometric mean of the per-problem ratios.
    low, high : float
        Percentile-bootstrap interval of ``mean`` at ``confidence`` (problems resampled with replacement;
        seeded, so deterministic); NaN for fewer than two problems.
    n : int
        Problems with both values (the pairs used).
    n_excluded : int
        Problems left out (a value non-finite, e.g. a diverged run, or not positive).
    a_lower : int
        Problems with ``a_k < b_k``.
    confidence : float
    """

    log_ratios: tuple
    mean: float
    low: float
    high: float
    n: int
    n_excluded: int
    a_lower: int
    confidence: float
    difference: bool = False

    @property
    def ratio(self) -> float:
        """``exp(mean)``: the geometric mean of ``a_k / b_k`` (NaN for ``difference``)."""
        return math.exp(self.mean) if math.isfinite(self.mean) and not self.difference else math.nan

    @property
    def ratio_interval(self) -> tuple[float, float]:
        """``(exp(low), exp(high))`` (NaN for ``difference``)."""
        return tuple(math.exp(v) if math.isfinite(v) and not self.difference else math.nan
                     for v in (self.low, self.high))

    def ordering(self) -> bool | None:
        """Whether ``a < b``: ``True`` if the interval lies below 0, ``False`` if above, ``None`` (inconclusive) if it
        straddles 0 or there are fewer than two problems."""
        return self.below(0.0 if self.difference else 1.0)

    def below(self, bound: float) -> bool | None:
        """Whether the per-problem comparison is below ``bound`` (a ratio ``a/b``, or ``a - b`` for
        ``difference``): ``True`` if the whole interval is, ``False`` if the whole interval is above, else
        ``None`` (inconclusive)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        level = bound if self.difference else math.log(bound)
        if self.high < level:
            return True
        if self.low > level:
            return False
        return None

    def within(self, factor: float) -> bool | None:
        """Whether ``a`` and ``b`` agree within ``factor``: ``True`` if the interval lies inside ``[-log f, log f]``,
        ``False`` if it lies wholly outside it, ``None`` (inconclusive) otherwise."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        bound = math.log(factor)
        if -bound <= self.low and self.high <= bound:
            return True
        if self.high < -bound or self.low > bound:
            return False
        return None

    def format(self, a: str = "a", b: str = "b") -> str:
        """One line: ``"a/b per problem: geometric-mean ratio 0.41 [0.22, 0.77] (paired bootstrap 95 %), a lower on
        12 of 15"``."""
        if self.n == 0:
            return f"{a}/{b}: no problem where both completed"
        level = f"{100 * self.confidence:g} %"
        excluded = f"; {self.n_excluded} problem(s) left out (diverged)" if self.n_excluded else ""
        if self.difference:
            band = f"[{self.low:+.3g}, {self.high:+.3g}]" if math.isfinite(self.low) else "(no interval, n = 1)"
            return (f"{a} - {b} per problem: mean {self.mean:+.3g} {band} (paired bootstrap {level}), {a} lower on "
                    f"{self.a_lower} of {self.n}{excluded}")
        lo, hi = self.ratio_interval
        band = f"[{lo:.3g}, {hi:.3g}]" if math.isfinite(lo) else "(no interval, n = 1)"
        return (f"{a}/{b} per problem: geometric-mean ratio {self.ratio:.3g} {band} (paired bootstrap {level} of the "
                f"mean log-ratio), {a} lower on {self.a_lower} of {self.n}{excluded}")

    def to_dict(self) -> dict:
        """JSON-ready fields (with :attr:`ratio`, :attr:`ratio_interval` and the verdict :meth:`ordering`)."""
        return {"log_ratios": list(self.log_ratios), "mean_log_ratio": self.mean, "low": self.low, "high": self.high,
                "ratio": self.ratio, "ratio_interval": list(self.ratio_interval), "n": self.n,
                "n_excluded": self.n_excluded, "a_lower": self.a_lower, "confidence": self.confidence,
                "ordering": self.ordering(), "difference": self.difference,
                "method": f"paired percentile bootstrap of the mean {'difference' if self.difference else 'log-ratio'}"}


def paired_comparison(a: Iterable, b: Iterable, *, confidence: float = 0.95, resamples: int = 10000,
                      seed: int = 0, difference: bool = False) -> PairedComparison:
    """Paired comparison of a positive quantity of two methods measured on the same problems.

    Parameters
    ----------
    a, b : iterable of float or None
        One value per problem, in the same problem order (entry ``k`` of both is problem ``k``); a
        non-finite value (a diverged run) or a value ``<= 0`` leaves its problem out.
    confidence : float
        In ``(0, 1)``.
    resamples : int
        Bootstrap resamples of the problems.
    seed : int
        Seed of the bootstrap (the result is deterministic).
    difference : bool
        For a signed quantity (a cosine): compare ``z_k = a_k - b_k`` instead of the log-ratio; any finite
        values are used.

    Returns
    -------
    PairedComparison
        Per-problem log-ratios ``log(a_k / b_k)``, their mean, its percentile-bootstrap interval and the
        count of problems with ``a_k < b_k``.

    Raises
    ------
    ValueError
        For lists of different lengths, or a confidence outside ``(0, 1)``.

    Examples
    --------
    >>> round(paired_comparison([1.0, 10.0, 100.0], [2.0, 20.0, 200.0]).ratio, 12)
    0.5
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be a number in (0, 1), e.g. 0.95.")
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"a and b must have one value per problem in the same order; got {len(a)} and {len(b)} "
                         "values. Pass the two methods' values for the same problems (seeds).")

    def usable(v) -> bool:
        try:
            v = float(v)
        except (TypeError, ValueError):
            return False
        return math.isfinite(v) and (difference or v > 0)

    pairs = [(float(x), float(y)) for x, y in zip(a, b) if usable(x) and usable(y)]
    z = np.asarray([x - y if difference else math.log(x) - math.log(y) for x, y in pairs], dtype=float)
    lower = sum(x < y for x, y in pairs)
    excluded = len(a) - len(pairs)

    def make(mean, low, high) -> PairedComparison:
        return PairedComparison(tuple(z.tolist()), float(mean), float(low), float(high), int(z.size), excluded, lower,
                                float(confidence), bool(difference))

    if z.size == 0:
        return make(math.nan, math.nan, math.nan)
    mean = float(np.mean(z))
    if z.size == 1:
        return make(mean, math.nan, math.nan)
    index = np.random.default_rng(seed).integers(0, z.size, size=(int(resamples), z.size))
    means = z[index].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return make(mean, min(low, mean), max(high, mean))
