"""The random-matrix stability scan of section 6.7, batched, and its extension to approximate inverses.

Section 6.7 checked "experimentally that a matrix of this form is always negative definite" on
100,000 random cases: block-tridiagonal ``J-bar`` (eq. 6.40, ``tau = 1``) with ``-I`` on the
diagonal, ``(1-mu) J_i`` below and ``mu J_i^{-1}`` above (``i = 2..L``), ``J_i`` Gaussian with a
randomly selected variance and ``mu`` uniform in ``(0, 0.5)``; the teaching signal is a fixed target
(``c = 0``). :func:`stability_scan` repeats it over several depths ``L`` and widths ``n``, with the
eigenvalues of whole batches computed at once (``torch.linalg.eigvals`` / ``eigvalsh`` on ``(B, N, N)``
tensors), and reports what the claim needs:

* ``fraction_stable`` — ``alpha = max Re lambda < -tol`` (Hurwitz), the criterion that matters;
* ``fraction_negative_definite`` — ``omega = lambda_max((J + J^T)/2) < -tol``, the thesis's wording;
* ``worst_abscissa`` — the largest ``alpha`` over the cases;
* ``max_transient_growth`` — the largest ``max_t ||exp(tJ)||_2``;
* the distance of every numerical ``alpha`` from the closed form ``(-1 + 2 sqrt(mu(1-mu))
  cos(pi/(L+1)))`` (:mod:`analysis.spectrum`), i.e. how far rounding moves the computed spectrum of
  these very non-normal matrices.

Transient growth in the batch: ``G = 1`` exactly when ``omega <= 0``. For the other cases
``||exp(tJ)||_2`` is estimated on the time grid ``t = 2^(j/2) / 32``, ``j = 0..24`` (``t`` up to 128):
``exp(t_0 J)`` and ``exp(sqrt(2) t_0 J)`` by ``torch.linalg.matrix_exp``, the rest by repeated
squaring, each norm as ``sqrt(lambda_max(E^T E))``. Each per-case value is a lower bound of its
``G``; the cases with the largest estimates are then recomputed exactly with
:func:`analysis.stability.transient_growth` (``refine`` of them), so ``max_transient_growth`` is exact
for the case it names.

:func:`approximate_inverse_map` replaces ``J_i^{-1}`` by ``J_i^{-1} + E_i`` with ``||E_i||_F = delta
||J_i^{-1}||_F`` (``E_i`` Gaussian, rescaled) and maps the fraction of stable cases over a grid of
``(mu, delta)``; the stability boundary ``delta*(mu)`` is where that fraction crosses a level.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from tpdynamics import stability_tolerance
from tpdynamics.serialization import jsonable, write_json
from tpdynamics.validation import check_int, check_memory, check_positive

from .stability import transient_growth

__all__ = ["ScanResult", "stability_scan", "InverseApproximationMap", "approximate_inverse_map",
           "random_jacobians"]

_TIMES = 2.0 ** (np.arange(25) / 2.0) / 32.0


def _check_sizes(name: str, values) -> tuple[int, ...]:
    if isinstance(values, int):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive ints, got {type(values).__name__}.") from None
    if not values:
        raise ValueError(f"{name} must not be empty.")
    return tuple(check_int(f"{name}[{i}]", v, minimum=1) for i, v in enumerate(values))


def _check_range(name: str, value, lo: float, hi: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high), got {value!r}.") from None
    if not (lo <= a < b <= hi):
        raise ValueError(f"{name}={value!r} must satisfy {lo} <= low < high <= {hi}.")
    return a, b


def random_jacobians(depth: int, width: int, mu: torch.Tensor, forward: torch.Tensor, *,
                     feedback: torch.Tensor | None = None) -> torch.Tensor:
    """Dense flow Jacobians of eq. (6.40) (``tau = 1``, fixed target) from batches of layer Jacobians.

    Parameters
    ----------
    depth, width : int
        ``L`` and ``n``.
    mu : Tensor, shape (B,)
    forward : Tensor, shape (B, L-1, n, n)
        ``J_{f_2}, ..., J_{f_L}``.
    feedback : Tensor, shape (B, L-1, n, n), optional
        ``J_{g_1}, ..., J_{g_{L-1}}``; default the exact inverses ``J_{f_{i+1}}^{-1}``.

    Returns
    -------
    Tensor, shape (B, L n, L n)
        Diagonal blocks ``-I``, lower ``(1-mu) J_{f_{i+1}}``, upper ``mu J_{g_i}``.
    """
    B, n, L = mu.shape[0], width, depth
    if feedback is None:
        feedback = torch.linalg.inv(forward)
    J = -torch.eye(L * n, dtype=forward.dtype).repeat(B, 1, 1)
    m = mu.view(B, 1, 1)
    for i in range(L - 1):
        J[:, (i + 1) * n:(i + 2) * n, i * n:(i + 1) * n] = (1 - m) * forward[:, i]
        J[:, i * n:(i + 1) * n, (i + 1) * n:(i + 2) * n] = m * feedback[:, i]
    return J


def _draw(generator, B, L, n, std_range):
    """Gaussian layer Jacobians with a random standard deviation per block, redrawn until invertible.

    Returns ``forward`` and its exact inverses, both of shape ``(B, L-1, n, n)``.
    """
    log_lo, log_hi = math.log10(std_range[0]), math.log10(std_range[1])
    std = 10.0 ** (log_lo + (log_hi - log_lo) * torch.rand(B, max(L - 1, 0), 1, 1, generator=generator,
                                                             dtype=torch.float64))
    forward = torch.randn(B, max(L - 1, 0), n, n, generator=generator, dtype=torch.float64) * std
    inverse, info = torch.linalg.inv_ex(forward)
    bad = (info != 0) | ~torch.isfinite(inverse).flatten(2).all(-1)
    while bool(bad.any()):  # probability zero, but a singular draw has no exact inverse
        redraw = torch.randn(int(bad.sum()), n, n, generator=generator, dtype=torch.float64) * std[bad]
        forward[bad] = redraw
        inverse, info = torch.linalg.inv_ex(forward)
        bad = (info != 0) | ~torch.isfinite(inverse).flatten(2).all(-1)
    return forward, inverse


def _spectral_norms(E: torch.Tensor) -> torch.Tensor:
    """``||E_b||_2 = sqrt(lambda_max(E_b^T E_b))`` (batched ``eigvalsh`` of the Gram matrices)."""
    return torch.linalg.eigvalsh(E.mT @ E)[:, -1].clamp_min(0.0).sqrt()


def _transient_estimate(J: torch.Tensor) -> torch.Tensor:
    """``max_j ||exp(t_j J)||_2`` on the module's time grid (a lower bound of ``G``), shape ``(B,)``."""
    best = torch.ones(J.shape[0], dtype=J.dtype)
    for start in (_TIMES[0], _TIMES[1]):
        E = torch.linalg.matrix_exp(start * J)
        for _ in range(0, len(_TIMES), 2):
            norms = _spectral_norms(E)
            best = torch.maximum(best, torch.where(torch.isfinite(norms), norms, best))
            E = E @ E  # exp(2 t J) = exp(t J)^2
    return best


@dataclass
class ScanResult:
    """Result of :func:`stability_scan`: one entry per random case.

    Attributes
    ----------
    depth, width : ndarray of int, shape (C,)
        ``L`` and ``n`` of each case.
    mu : ndarray, shape (C,)
    delta : float
        Relative feedback perturbation (0: exact inverses, the thesis's scan).
    abscissa : ndarray, shape (C,)
        Numerical ``alpha = max Re lambda`` (``torch.linalg.eigvals``).
    numerical_abscissa : ndarray, shape (C,)
        ``omega = lambda_max((J + J^T)/2)``.
    closed_form_abscissa : ndarray, shape (C,)
        ``(-1 + 2 sqrt(mu(1-mu)) cos(pi/(L+1)))`` (exact inverses only; NaN otherwise).
    transient_growth : ndarray, shape (C,)
        Lower bounds of ``max_t ||exp(tJ)||_2`` (exactly 1 where ``omega <= 0``; ``inf`` where ``alpha > tol``).
    tolerance : ndarray, shape (C,)
        Verdict tolerance ``sqrt(eps) max|lambda|`` of each case.
    refined : list of dict
        Exact transient growth of the cases with the largest estimates.
    seed : int
    runtime : float
        Wall-clock seconds.
    settings : dict
    """

    depth: np.ndarray
    width: np.ndarray
    mu: np.ndarray
    delta: float
    abscissa: np.ndarray
    numerical_abscissa: np.ndarray
    closed_form_abscissa: np.ndarray
    transient_growth: np.ndarray
    tolerance: np.ndarray
    refined: list = field(default_factory=list)
    seed: int = 0
    runtime: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return int(self.mu.shape[0])

    @property
    def stable(self) -> np.ndarray:
        return self.abscissa < -self.tolerance

    @property
    def negative_definite(self) -> np.ndarray:
        return self.numerical_abscissa < -self.tolerance

    @property
    def fraction_stable(self) -> float:
        return float(self.stable.mean())

    @property
    def fraction_negative_definite(self) -> float:
        return float(self.negative_definite.mean())

    @property
    def worst_abscissa(self) -> float:
        return float(self.abscissa.max())

    @property
    def max_transient_growth(self) -> float:
        """Largest transient growth: the exact value of the refined cases where they are the largest."""
        values = [r["transient_growth"] for r in self.refined]
        return float(max(values + [float(self.transient_growth.max())]))

    @property
    def closed_form_error(self) -> np.ndarray:
        """``|alpha_numerical - alpha_closed_form|`` per case (NaN for approximate inverses)."""
        return np.abs(self.abscissa - self.closed_form_abscissa)

    def by_shape(self) -> list[dict]:
        """Summary per ``(L, n)``."""
        rows = []
        for L, n in sorted(set(zip(self.depth.tolist(), self.width.tolist()))):
            m = (self.depth == L) & (self.width == n)
            row = {"depth": L, "width": n, "cases": int(m.sum()), "fraction_stable": float(self.stable[m].mean()),
                   "fraction_negative_definite": float(self.negative_definite[m].mean()),
                   "worst_abscissa": float(self.abscissa[m].max()),
                   "max_transient_growth": float(self.transient_growth[m].max())}
            if self.delta == 0.0:
                row["max_closed_form_error"] = float(np.nanmax(self.closed_form_error[m]))
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        """JSON-ready summary: the fractions, extremes, closed-form errors, per-shape rows and criteria."""
        exact = self.delta == 0.0
        err = self.closed_form_error
        out = {
            "cases": self.cases, "seed": self.seed, "delta": self.delta,
            "fraction_stable": self.fraction_stable,
            "fraction_negative_definite": self.fraction_negative_definite,
            "worst_abscissa": self.worst_abscissa,
            "max_transient_growth": jsonable(self.max_transient_growth),
            "fraction_transient_growth_above_1": float((self.transient_growth > 1.0).mean()),
            "median_transient_growth": float(np.median(self.transient_growth)),
            "closed_form": {
                "formula": "alpha = -1 + 2 sqrt(mu (1 - mu)) cos(pi / (L + 1))",
                "max_error": float(np.nanmax(err)), "median_error": float(np.nanmedian(err)),
                "verdict_disagreements": int(((self.abscissa < -self.tolerance)
                                              != (self.closed_form_abscissa < -self.tolerance)).sum()),
            } if exact else None,
            "refined_transient_growth": self.refined,
            "by_shape": self.by_shape(),
            "runtime_s": self.runtime,
            "settings": self.settings,
            "criteria": {"stable": "alpha = max Re lambda < -tol",
                         "negative_definite": "omega = lambda_max((J+J^T)/2) < -tol",
                         "tol": "sqrt(eps) * max|lambda| per case",
                         "transient_growth": "max over t = 2^(j/2)/32, j=0..24, of ||exp(tJ)||_2; "
                                             "lower bound, exact (1) when omega <= 0; largest cases refined exactly"},
        }
        return out

    def to_json(self, path=None) -> str:
        """The :meth:`to_dict` payload as JSON text, also written to ``path`` if given."""
        return write_json(path, self.to_dict())

    def to_text(self) -> str:
        """A human-readable summary with one row per ``(L, n)``."""
        d = self.to_dict()
        kind = "exact inverses" if self.delta == 0.0 else f"approximate inverses, delta={self.delta:g}"
        lines = [f"stability scan ({kind}): {self.cases} random cases, seed {self.seed}, {self.runtime:.1f} s",
                 f"  fraction stable (Hurwitz, alpha < -tol):        {self.fraction_stable:.6f}",
                 f"  fraction negative definite (omega < -tol):     {self.fraction_negative_definite:.6f}",
                 f"  worst spectral abscissa:                        {self.worst_abscissa:.6g}",
                 f"  max transient growth max_t ||exp(tJ)||_2:       {self.max_transient_growth:.6g}",
                 f"  fraction with transient growth > 1:             {d['fraction_transient_growth_above_1']:.6f}"]
        if d["closed_form"]:
            cf = d["closed_form"]
            lines.append(f"  |alpha - closed form|: max {cf['max_error']:.3g}, median {cf['median_error']:.3g}; "
                         f"verdicts differing from the closed form: {cf['verdict_disagreements']}")
        lines.append("  L   n   cases  stable    neg.def.  worst alpha   max growth")
        for r in d["by_shape"]:
            lines.append(f"  {r['depth']:<3d} {r['width']:<3d} {r['cases']:<6d} {r['fraction_stable']:<9.4f} "
                         f"{r['fraction_negative_definite']:<9.4f} {r['worst_abscissa']:<13.5g} "
                         f"{r['max_transient_growth']:.4g}")
        return "\n".join(lines)


def _evaluate(J: torch.Tensor, *, transient: bool) -> dict:
    values = torch.linalg.eigvals(J)
    alpha = values.real.amax(-1)
    tol = stability_tolerance(values)
    omega = torch.linalg.eigvalsh(0.5 * (J + J.mT))[:, -1]
    growth = torch.ones_like(alpha)
    if transient:
        growth[alpha > tol] = math.inf
        todo = (omega > 0) & (alpha <= tol)
        if bool(todo.any()):
            growth[todo] = _transient_estimate(J[todo])
    return {"alpha": alpha, "omega": omega, "tol": tol, "growth": growth}


def stability_scan(cases: int = 100_000, *, depths=(2, 3, 4, 6), widths=(1, 2, 4, 8), mu_range=(0.0, 0.5),
                   std_range=(0.1, 10.0), delta: float = 0.0, seed: int = 0, transient: bool = True,
                   refine: int = 5, chunk_elements: int = 15_000_000, progress: bool = False, store=None,
                   jobs: int | None = 1, fresh: bool = False, batch_cases: int = 5000, executor=None) -> ScanResult:
    """Batched random-matrix stability scan of section 6.7 (module docstring).

    The cases are evaluated in batches, each a task of :mod:`tpdynamics.runs`: with a ``store`` every
    batch is kept as it finishes and a rerun reuses them (an interrupted scan resumes); ``jobs`` spreads
    the batches over worker processes. The result does not depend on the batching.

    Parameters
    ----------
    cases : int
        Number of random cases (the thesis used 100,000).
    depths, widths : sequence of int
        Each case draws ``L`` from ``depths`` and ``n`` from ``widths`` uniformly (``N = L n``).
    mu_range : (float, float)
        ``mu`` is uniform in this interval (the thesis: ``(0, 0.5)``).
    std_range : (float, float)
        Each ``J_i`` has i.i.d. ``N(0, s^2)`` entries with ``log10 s`` uniform in this range ("randomly
        selected variance"; drawn per block).
    delta : float
        Relative Frobenius size of the feedback perturbation ``E_i`` (0: exact inverses).
    seed : int
        Seed; the result does not depend on ``chunk_elements``, ``batch_cases`` or ``jobs``.
    transient : bool
        Estimate the transient growth (the costliest part).
    refine : int
        Number of cases with the largest estimated growth recomputed exactly.
    chunk_elements : int
        Largest ``B N^2`` per batched eigenvalue call (memory).
    progress : bool
        Show a tqdm progress bar (on stderr).
    store : tpdynamics.runs.ResultStore or path, optional
        Keep each batch's result there and reuse the ones it has.
    jobs : int, optional
        Worker processes (1: this process; ``None``: every core).
    fresh : bool
        Recompute batches the store has.
    batch_cases : int
        Largest number of cases per batch (task).
    executor : str or tpdynamics.runs.Executor, optional
        Where the batches run (:func:`tpdynamics.runs.make_executor`: ``"local-cluster:N"``,
        ``"tcp://HOST:PORT"``, ...); default by ``jobs``.

    Returns
    -------
    ScanResult

    Raises
    ------
    tpdynamics.runs.RunInterrupted
        On Ctrl-C (the finished batches are in the store).
    """
    cases = check_int("cases", cases, minimum=1)
    _check_scan_memory(cases, depths, widths, delta, chunk_elements)
    mu_lo, mu_hi = _check_range("mu_range", mu_range, 0.0, 1.0)
    seed = check_int("seed", seed)
    mu = {"low": mu_lo, "high": mu_hi, "cases": cases, "seed": seed}
    result = _scan(mu, depths=depths, widths=widths, std_range=std_range, delta=delta, seed=seed,
                   transient=transient, refine=refine, chunk_elements=chunk_elements, batch_cases=batch_cases,
                   store=store, jobs=jobs, fresh=fresh, progress=progress, desc="stability scan", executor=executor)
    result.settings["mu_range"] = [mu_lo, mu_hi]
    return result


def _check_scan_memory(cases: int, depths, widths, delta: float, chunk_elements: int) -> None:
    """Refuse a scan whose arrays exceed the available memory, before drawing anything.

    Per case: ``mu``, the shape index and nine float64 results (72 bytes); per shape group (about
    ``cases / groups`` cases, 20 % added for the fluctuation of the draw) its ``J_i`` and their inverses
    (and ``E_i`` and ``J_g`` with ``delta > 0``), drawn up front; per chunk the assembled Jacobians
    and their eigen-decompositions (about four copies of ``chunk_elements`` float64 values).
    """
    depths, widths = _check_sizes("depths", depths), _check_sizes("widths", widths)
    chunk_elements = check_int("chunk_elements", chunk_elements, minimum=1)
    groups = len(depths) * len(widths)
    copies = 4 if check_positive("delta", delta, allow_zero=True) else 2
    group = max(max(L - 1, 0) * n * n for L in depths for n in widths) * copies * 8 * math.ceil(1.2 * cases / groups)
    check_memory(f"a stability scan of cases={cases} with depths {list(depths)} and widths {list(widths)}",
                 72 * cases + group + 4 * 8 * chunk_elements,
                 hint="Use fewer cases, or several scans with different seeds.")


def _mu(spec: dict) -> torch.Tensor:
    """``mu`` of every case: uniform ``{"low", "high", "cases", "seed"}`` or constant ``{"value", "cases"}``."""
    if "value" in spec:
        return torch.full((spec["cases"],), float(spec["value"]), dtype=torch.float64)
    generator = torch.Generator().manual_seed(spec["seed"])
    return spec["low"] + (spec["high"] - spec["low"]) * torch.rand(spec["cases"], generator=generator,
                                                                     dtype=torch.float64)


def _shapes(spec: dict):
    """The ``(L, n)`` shapes and the shape index of every case."""
    shapes = [(L, n) for L in spec["depths"] for n in spec["widths"]]
    which = torch.randint(len(shapes), (spec["mu"]["cases"],),
                          generator=torch.Generator().manual_seed(_seed(spec["seed"], -1)))
    return shapes, which


def _group_draws(spec: dict, g: int, count: int, L: int, n: int):
    """Forward Jacobians and feedback blocks of shape group ``g``, all drawn up front (batching-independent)."""
    group_gen = torch.Generator().manual_seed(_seed(spec["seed"], g))
    forward, inverse = _draw(group_gen, count, L, n, tuple(spec["std_range"]))
    if spec["delta"] > 0 and L > 1:
        E = torch.randn(forward.shape, generator=group_gen, dtype=torch.float64)
        scale = torch.linalg.matrix_norm(inverse) / torch.linalg.matrix_norm(E)
        return forward, inverse + spec["delta"] * scale[..., None, None] * E
    return forward, inverse


def _scan_batch(spec: dict) -> dict:
    """Task function (any process): cases ``start:stop`` of shape group ``group``; arrays and refinement candidates."""
    mu = _mu(spec["mu"])
    shapes, which = _shapes(spec)
    g, sl = spec["group"], slice(spec["start"], spec["stop"])
    L, n = shapes[g]
    index = torch.nonzero(which == g).flatten()
    forward, feedback = _group_draws(spec, g, index.numel(), L, n)
    res = _evaluate(random_jacobians(L, n, mu[index][sl], forward[sl], feedback=feedback[sl]),
                    transient=spec["transient"])
    top = []
    if spec["transient"] and spec["refine"]:
        finite = torch.where(torch.isfinite(res["growth"]), res["growth"], torch.zeros_like(res["growth"]))
        best = torch.topk(finite, min(spec["refine"], finite.numel()))
        top = [[value, int(index[sl][j])] for value, j in zip(best.values.tolist(), best.indices.tolist())]
    return {"index": index[sl].numpy(), **{k: v.numpy() for k, v in res.items()}, "top": top}


def _scan(mu: dict, *, depths, widths, std_range, delta, seed, transient, refine, chunk_elements, batch_cases=5000,
          store=None, jobs=1, fresh=False, progress=False, desc="stability scan", executor=None) -> ScanResult:
    """The scan for the ``mu`` of :func:`_mu` as tasks of one batch each; see :func:`stability_scan`."""
    from tpdynamics.runs import Task, run_tasks

    spec = {"mu": mu, "depths": list(_check_sizes("depths", depths)), "widths": list(_check_sizes("widths", widths)),
            "std_range": list(_check_range("std_range", std_range, 1e-300, math.inf)),
            "delta": check_positive("delta", delta, allow_zero=True), "seed": seed, "transient": bool(transient),
            "refine": check_int("refine", refine)}
    chunk_elements = check_int("chunk_elements", chunk_elements, minimum=1)
    batch_cases = check_int("batch_cases", batch_cases, minimum=1)
    _check_scan_memory(mu["cases"], depths, widths, delta, chunk_elements)
    started = time.perf_counter()
    shapes, which = _shapes(spec)
    tasks = []
    for g, (L, n) in enumerate(shapes):
        count = int((which == g).sum())
        chunk = min(max(1, chunk_elements // (L * n) ** 2), batch_cases)
        for s in range(0, count, chunk):
            tasks.append(Task("analysis.scan:_scan_batch", {**spec, "group": g, "start": s, "stop": min(s + chunk, count)},
                              kind="scan", label=f"L={L} n={n} cases {s}..{min(s + chunk, count) - 1}"))
    summary = run_tasks(tasks, store, jobs=jobs, fresh=fresh, progress=progress, desc=desc, unit="batch",
                        executor=executor)
    for record in summary.failed:
        raise RuntimeError(f"scan batch {record.task.label} failed:\n{record.traceback}")
    cases = mu["cases"]
    out = {k: np.empty(cases) for k in ("alpha", "omega", "tol", "growth")}
    keep = []  # (growth estimate, case, group) of the largest estimates, for the exact refinement
    for record in summary.records:
        r = record.result
        for key in out:
            out[key][r["index"]] = r[key]
        group = record.task.config["group"]
        keep = sorted(keep + [(value, case, group) for value, case in r["top"]], key=lambda x: -x[0])[:spec["refine"]]
    depth_arr, width_arr = np.array(shapes)[which.numpy()].T
    mu_np = _mu(mu).numpy()
    if spec["delta"] > 0:
        closed = np.full(cases, np.nan)
    else:
        closed = -1.0 + 2.0 * np.sqrt(mu_np * (1.0 - mu_np)) * np.cos(np.pi / (depth_arr + 1))
    refined, draws = [], {}
    for value, i, g in keep:
        if value <= 1.0:
            continue
        L, n = shapes[g]
        index = torch.nonzero(which == g).flatten()
        if g not in draws:
            draws[g] = _group_draws(spec, g, index.numel(), L, n)
        forward, feedback = draws[g]
        p = int(torch.nonzero(index == i)[0, 0])
        J = random_jacobians(L, n, torch.from_numpy(mu_np[i:i + 1]), forward[p:p + 1], feedback=feedback[p:p + 1])[0]
        exact = transient_growth(J.numpy())
        refined.append({"case": i, "depth": L, "width": n, "mu": float(mu_np[i]), "estimate": value,
                        "transient_growth": exact.value, "time": exact.time})
        out["growth"][i] = max(out["growth"][i], exact.value)
    return ScanResult(depth_arr, width_arr, mu_np, spec["delta"], out["alpha"], out["omega"], closed, out["growth"],
                      out["tol"], refined, seed, time.perf_counter() - started,
                      {"depths": spec["depths"], "widths": spec["widths"], "std_range": spec["std_range"],
                       "transient": spec["transient"], "refine": spec["refine"]})


def _seed(seed: int, stream: int) -> int:
    """An independent seed for sub-stream ``stream`` of ``seed``."""
    return int(np.random.SeedSequence([seed, stream + 1]).generate_state(1)[0])


@dataclass
class InverseApproximationMap:
    """Fraction of stable cases over ``(mu, delta)`` for approximate inverses ``J_g = J_f^{-1} + E``.

    Attributes
    ----------
    mu : ndarray, shape (M,)
    delta : ndarray, shape (D,)
    fraction_stable : ndarray, shape (M, D)
    worst_abscissa : ndarray, shape (M, D)
    median_abscissa : ndarray, shape (M, D)
    cases_per_cell : int
    level : float
        Level of :attr:`boundary`.
    settings : dict
    runtime : float
    """

    mu: np.ndarray
    delta: np.ndarray
    fraction_stable: np.ndarray
    worst_abscissa: np.ndarray
    median_abscissa: np.ndarray
    cases_per_cell: int
    level: float = 0.5
    settings: dict = field(default_factory=dict)
    runtime: float = 0.0

    @property
    def boundary(self) -> np.ndarray:
        """``delta*(mu)``: where the fraction stable first drops below ``level`` (log-linear interpolation).

        ``inf`` if it never drops in the grid, ``0`` if it is below already at the smallest delta.
        """
        out = np.full(len(self.mu), math.inf)
        for i, row in enumerate(self.fraction_stable):
            below = np.nonzero(row < self.level)[0]
            if below.size == 0:
                continue
            j = int(below[0])
            if j == 0:
                out[i] = 0.0
                continue
            d0, d1, f0, f1 = self.delta[j - 1], self.delta[j], row[j - 1], row[j]
            w = (f0 - self.level) / (f0 - f1) if f0 != f1 else 0.0
            if d0 > 0:
                out[i] = float(np.exp(np.log(d0) + w * (np.log(d1) - np.log(d0))))
            else:
                out[i] = float(d0 + w * (d1 - d0))
        return out

    def to_dict(self) -> dict:
        """JSON-ready dictionary of the grid, the fractions and the boundary ``delta*(mu)``."""
        return {"mu": self.mu.tolist(), "delta": self.delta.tolist(),
                "fraction_stable": self.fraction_stable.tolist(), "worst_abscissa": self.worst_abscissa.tolist(),
                "median_abscissa": self.median_abscissa.tolist(), "cases_per_cell": self.cases_per_cell,
                "boundary_level": self.level, "boundary_delta": jsonable(self.boundary),
                "settings": self.settings, "runtime_s": self.runtime,
                "perturbation": "J_g = J_f^-1 + E, ||E||_F = delta ||J_f^-1||_F, E Gaussian"}

    def table(self) -> str:
        """The fraction of stable cases as a text table (rows ``mu``, columns ``delta``)."""
        head = "  mu \\ delta " + " ".join(f"{d:>7.3g}" for d in self.delta) + "   delta*"
        rows = [head]
        for m, row, b in zip(self.mu, self.fraction_stable, self.boundary):
            rows.append(f"  {m:<11.3f} " + " ".join(f"{f:>7.3f}" for f in row) + f"   {b:.3g}")
        return "\n".join(rows)

    def to_text(self) -> str:
        """A header and :meth:`table`."""
        return (f"approximate inverses: fraction of stable cases ({self.cases_per_cell} cases per cell; delta* = "
                f"boundary where it drops below {self.level}), {self.runtime:.1f} s\n" + self.table())


def approximate_inverse_map(mu_values=None, delta_values=None, *, cases_per_cell: int = 200, depths=(2, 3, 4, 6),
                            widths=(1, 2, 4, 8), std_range=(0.1, 10.0), seed: int = 0, level: float = 0.5,
                            progress: bool = False, store=None, jobs: int | None = 1,
                            fresh: bool = False, executor=None) -> InverseApproximationMap:
    """Map the stability boundary of approximate inverses over ``(mu, delta)`` (module docstring).

    Parameters
    ----------
    mu_values : array_like, shape (M,), optional
        Default ``0.025, 0.075, ..., 0.475``.
    delta_values : array_like, shape (D,), optional
        Relative perturbation sizes; default ``0`` and 12 log-spaced values from ``1e-3`` to ``10``.
    cases_per_cell : int
        Random cases per grid cell (each with its own ``L``, ``n``, ``J_i``, ``E_i``).
    depths, widths, std_range
        As in :func:`stability_scan`.
    seed : int
    level : float
        Fraction-stable level of the boundary ``delta*(mu)``.
    progress : bool
        Show a tqdm progress bar.
    store, jobs, fresh, executor
        As in :func:`stability_scan`; a task is one row (one ``mu``) of the grid.

    Returns
    -------
    InverseApproximationMap
    """
    mu_values = np.arange(0.025, 0.5, 0.05) if mu_values is None else np.asarray(mu_values, dtype=float)
    delta_values = (np.concatenate([[0.0], np.logspace(-3, 1, 12)]) if delta_values is None
                    else np.asarray(delta_values, dtype=float))
    if mu_values.ndim != 1 or not np.all((mu_values > 0) & (mu_values < 1)):
        raise ValueError(f"mu_values must be a 1-D sequence in (0, 1), got {mu_values!r}.")
    if delta_values.ndim != 1 or not np.all(delta_values >= 0) or not np.all(np.diff(delta_values) > 0):
        raise ValueError(f"delta_values must be a 1-D increasing sequence of values >= 0, got {delta_values!r}.")
    cases_per_cell = check_int("cases_per_cell", cases_per_cell, minimum=1)
    seed = check_int("seed", seed)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} must be in (0, 1).")
    from tpdynamics.runs import Task, run_tasks

    started = time.perf_counter()
    base = {"deltas": delta_values.tolist(), "cases_per_cell": cases_per_cell, "depths": list(depths),
            "widths": list(widths), "std_range": list(std_range), "seed": seed}
    tasks = [Task("analysis.scan:_map_row", {**base, "row": i, "mu": float(mu)}, kind="scan-map", label=f"mu={mu:g}")
             for i, mu in enumerate(mu_values)]
    summary = run_tasks(tasks, store, jobs=jobs, fresh=fresh, progress=progress, desc="approximate inverses",
                        unit="row", executor=executor)
    for record in summary.failed:
        raise RuntimeError(f"approximate-inverse row {record.task.label} failed:\n{record.traceback}")
    frac, worst, median = (np.array([r.result[key] for r in summary.records]) for key in ("fraction", "worst", "median"))
    return InverseApproximationMap(mu_values, delta_values, frac, worst, median, cases_per_cell, level,
                                   {"depths": list(depths), "widths": list(widths), "std_range": list(std_range),
                                    "seed": seed}, time.perf_counter() - started)


def _map_row(spec: dict) -> dict:
    """Task function (any process): row ``spec["row"]`` of :func:`approximate_inverse_map`, every ``delta``."""
    i, D = spec["row"], len(spec["deltas"])
    row = {"fraction": [], "worst": [], "median": []}
    for j, delta in enumerate(spec["deltas"]):
        res = _scan({"value": spec["mu"], "cases": spec["cases_per_cell"]}, depths=spec["depths"],
                    widths=spec["widths"], std_range=spec["std_range"], delta=float(delta),
                    seed=_seed(spec["seed"], i * D + j), transient=False, refine=0, chunk_elements=15_000_000)
        row["fraction"].append(res.fraction_stable)
        row["worst"].append(res.worst_abscissa)
        row["median"].append(float(np.median(res.abscissa)))
    return row
