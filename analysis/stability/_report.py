"""The stability report of a fixed point of the network dynamics (section 6.7).

One entry function, :func:`stability_report`, linearises ``dh/dt = F(h)`` at a fixed point,
``d(delta h)/dt = J delta h`` with ``J = dF/dh`` (eqs. 6.39-6.40; the thesis's ``J-bar`` is
``tau J``), and returns a :class:`StabilityReport` with every figure a dynamical-systems reader
asks for, each with the criterion it uses:

* **spectral abscissa** ``alpha(J) = max Re lambda``: the fixed point of the flow is locally
  asymptotically stable iff ``alpha < 0`` (``J`` Hurwitz). Verdict ``stable`` / ``unstable`` /
  ``marginal`` with an explicit tolerance: eigenvalues within ``tol`` of the imaginary axis are
  ``marginal`` (the linearisation does not decide).
* **numerical abscissa** ``omega(J) = lambda_max((J + J^T)/2)``: ``J`` is negative definite iff
  ``omega < 0``. Section 6.7 calls the Jacobian "negative definite"; what stability needs is only
  ``alpha < 0``. ``alpha <= omega`` always, and ``omega > 0 > alpha`` means some perturbations first
  *grow* (``d||x||/dt = omega ||x||`` at ``t = 0`` for the worst ``x``) before they decay.
* **transient growth** ``G = max_{t >= 0} ||exp(tJ)||_2`` (:func:`transient_growth`): ``G = 1`` iff
  ``omega <= 0``; for non-normal ``J`` it can be huge although ``alpha < 0``.
* **non-normality**: eigenvalue condition numbers ``kappa(lambda) = 1/|y^H x|`` (unit left/right
  eigenvectors), the condition number of the eigenvector matrix (``||exp(tJ)|| <= kappa(V)
  exp(alpha t)``) and Henrici's departure from normality ``sqrt(||J||_F^2 - sum |lambda|^2)``.
* **fixed-point map** ``h <- h + tau F(h) = (1-mu) f + mu g``: its Jacobian is ``I + tau J`` and plain
  iteration converges locally iff ``rho(I + tau J) < 1``. This is a different criterion from the
  flow's (``alpha < 0``); both are reported, separately.
* **time scales**: stiffness ratio ``max |Re lambda| / min |Re lambda|``; relaxation time
  ``-1/alpha``; the predicted time for the residual to fall from its initial value ``r_0`` to a
  tolerance, ``ln(r_0/tol) / (-alpha)``, set beside the time the ODE integrator actually took.
* the **closed form** of section 6.7 (:mod:`analysis.spectrum`) beside the numerical eigenvalues
  when the feedback is exact.

Scale: the abscissa never needs a dense eigendecomposition of a large Jacobian: the methods of
:mod:`analysis.stability._abscissa` (registry :data:`ABSCISSA_METHODS`) choose dense eigenvalues up to
``dense_limit`` units (so that the numerical eigenvalues stand beside the closed form), the closed
form or ARPACK above it. Transient growth and pseudospectra come from
:mod:`analysis.stability._nonnormality`; the figure from :mod:`analysis.plotting` (imported one way).
"""
from __future__ import annotations

import enum
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

import tpdynamics as tp
from tpdynamics import STABILITY_TOLERANCE_RULE, stability_tolerance
from tpdynamics.errors import TPDynamicsWarning
from tpdynamics.serialization import jsonable, write_json
from tpdynamics.validation import check_int, check_positive, check_sample

from .._jacobian import BlockJacobian, jacobian as assemble_jacobian
from ..spectrum import THESIS_FORMULA, StructuredSpectrum, exact_inverse_spectrum
from ._abscissa import ABSCISSA_METHODS, map_spectral_radius, make_problem
from ._nonnormality import TransientGrowth, pseudospectrum, transient_growth

_EPS = float(np.finfo(np.float64).eps)
_TOLERANCE_RULE = f"{STABILITY_TOLERANCE_RULE} (eps = float64 machine epsilon)"


class StabilityVerdict(str, enum.Enum):
    """The verdict of a stability report (:attr:`StabilityReport.verdict`) from the spectral abscissa ``alpha``.

    A ``str`` enum (members equal, print as and are written to JSON as their values); ``unstable`` is
    the same word as :attr:`tpdynamics.EquilibriumStatus.UNSTABLE`.
    """

    STABLE = "stable"
    """``alpha < -tol``: locally asymptotically stable."""
    UNSTABLE = "unstable"
    """``alpha > tol``: some perturbation grows exponentially."""
    MARGINAL = "marginal"
    """``|alpha| <= tol``: the linearisation does not decide."""

    __str__ = str.__str__
    __format__ = str.__format__


STABLE, UNSTABLE, MARGINAL = StabilityVerdict.STABLE, StabilityVerdict.UNSTABLE, StabilityVerdict.MARGINAL


@dataclass
class StabilityReport:
    """Stability of a fixed point of ``dh/dt = F(h)`` from the spectrum of ``J = dF/dh`` (module docstring).

    Attributes
    ----------
    eigenvalues : ndarray, shape (M,), complex
        Eigenvalues of the flow Jacobian by decreasing real part: all ``N`` of them when
        ``eigenvalues_complete``, else the ``k`` rightmost (Arnoldi).
    eigenvalues_complete : bool
    spectral_abscissa : float
        ``alpha = max Re lambda``.
    verdict : StabilityVerdict
        ``stable`` (``alpha < -tol``), ``unstable`` (``alpha > tol``), otherwise ``marginal``.
    tolerance : float
        ``tol`` of the verdict (and of ``hurwitz`` / ``negative_definite``).
    tolerance_rule : str
    hurwitz : bool
        ``alpha < -tol`` (every eigenvalue in the open left half plane): locally asymptotically stable.
    numerical_abscissa : float
        ``omega = lambda_max((J + J^T)/2)``.
    negative_definite : bool
        ``omega < -tol``: ``x^T J x < 0`` for all ``x`` (the thesis's wording in section 6.7).
    map_spectral_radius : float
        ``rho(I + tau J)``, the local contraction factor of the fixed-point iteration ``h <- (1-mu) f +
        mu g``; the iteration converges locally iff it is ``< 1`` (a separate criterion from the flow's).
    tau : float
    stiffness_ratio : float or None
        ``max |Re lambda| / min |Re lambda|`` over the eigenvalues with ``Re lambda < -tol`` (complete
        spectra only).
    relaxation_time : float or None
        ``-1/alpha`` when ``alpha < 0``.
    transient : TransientGrowth or None
        ``max_t ||exp(tJ)||_2``; ``None`` if skipped (``N > transient_limit``).
    eigenvalue_condition_numbers : ndarray or None
        ``kappa(lambda_i)`` in the order of ``eigenvalues`` (dense method only).
    eigenvector_condition : float or None
        2-norm condition number of the matrix of unit right eigenvectors.
    henrici_departure : float or None
        ``sqrt(||J||_F^2 - sum |lambda|^2)`` (0 iff ``J`` is normal); complete spectra only.
    henrici_departure_relative : float or None
        The same divided by ``||J||_F``.
    abscissa_error_bound : float or None
        First-order bound ``eps ||J||_F kappa(lambda_max)`` on the rounding error of the computed abscissa.
    closed_form : dict or None
        The exact-inverse closed form (:mod:`analysis.spectrum`) with ``matched`` (whether it is the exact
        spectrum here) and ``max_deviation`` from the numerical eigenvalues.
    method : str
        Abscissa method actually used.
    size : int
        ``N``.
    timing : dict
        ``initial_residual``, ``time_tolerance``, ``predicted_time``, ``integrator_time``,
        ``integrator_status`` (dynamics input only).
    source : dict
        What was analysed (network, ``mu``, sample, equilibrium solve).
    notes : list of str
        Interpretation and caveats, in words.
    """

    eigenvalues: np.ndarray
    eigenvalues_complete: bool
    spectral_abscissa: float
    verdict: StabilityVerdict
    tolerance: float
    tolerance_rule: str
    numerical_abscissa: float
    map_spectral_radius: float
    tau: float
    method: str
    size: int
    stiffness_ratio: float | None = None
    transient: TransientGrowth | None = None
    eigenvalue_condition_numbers: np.ndarray | None = None
    eigenvector_condition: float | None = None
    henrici_departure: float | None = None
    henrici_departure_relative: float | None = None
    abscissa_error_bound: float | None = None
    closed_form: dict | None = None
    timing: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    _matrix: np.ndarray | None = field(default=None, repr=False)

    # -- derived criteria ----------------------------------------------------------------------
    @property
    def hurwitz(self) -> bool:
        return self.spectral_abscissa < -self.tolerance

    @property
    def negative_definite(self) -> bool:
        return self.numerical_abscissa < -self.tolerance

    @property
    def map_converges(self) -> bool:
        return self.map_spectral_radius < 1.0

    @property
    def relaxation_time(self) -> float | None:
        return -1.0 / self.spectral_abscissa if self.spectral_abscissa < 0 else None

    @property
    def transient_growth(self) -> float | None:
        return None if self.transient is None else self.transient.value

    @property
    def verdict_reliable(self) -> bool | None:
        """Whether the rounding-error bound keeps ``alpha`` on its side of the tolerance band."""
        if self.abscissa_error_bound is None:
            return None
        return self.abscissa_error_bound < max(abs(self.spectral_abscissa), self.tolerance)

    @property
    def max_eigenvalue_condition(self) -> float | None:
        if self.eigenvalue_condition_numbers is None:
            return None
        return float(np.max(self.eigenvalue_condition_numbers))

    # -- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dictionary (non-finite numbers become ``None``; see ``transient_growth_bounded``)."""
        t = self.transient
        return {
            "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues],
            "eigenvalues_complete": self.eigenvalues_complete,
            "spectral_abscissa": float(self.spectral_abscissa),
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "tolerance_rule": self.tolerance_rule,
            "hurwitz": self.hurwitz,
            "verdict_reliable": self.verdict_reliable,
            "abscissa_error_bound": jsonable(self.abscissa_error_bound),
            "numerical_abscissa": float(self.numerical_abscissa),
            "negative_definite": self.negative_definite,
            "map_spectral_radius": float(self.map_spectral_radius),
            "map_converges": self.map_converges,
            "tau": self.tau,
            "stiffness_ratio": jsonable(self.stiffness_ratio),
            "relaxation_time": jsonable(self.relaxation_time),
            "transient_growth": None if t is None else jsonable(t.value),
            "transient_growth_bounded": None if t is None else t.bounded,
            "transient_growth_time": None if t is None else jsonable(t.time),
            "transient_method": None if t is None else t.method,
            "eigenvalue_condition_numbers": None if self.eigenvalue_condition_numbers is None else
            [jsonable(x) for x in self.eigenvalue_condition_numbers],
            "max_eigenvalue_condition": jsonable(self.max_eigenvalue_condition),
            "eigenvector_condition": jsonable(self.eigenvector_condition),
            "henrici_departure": jsonable(self.henrici_departure),
            "henrici_departure_relative": jsonable(self.henrici_departure_relative),
            "closed_form": self.closed_form,
            "method": self.method,
            "size": self.size,
            **{k: (jsonable(v) if isinstance(v, float) else v) for k, v in self.timing.items()},
            "source": self.source,
            "notes": list(self.notes),
        }

    def to_json(self, path=None) -> str:
        """The :meth:`to_dict` payload as JSON text, also written to ``path`` if given."""
        return write_json(path, self.to_dict())

    def to_text(self) -> str:
        """A human-readable summary."""
        fmt = lambda x: "n/a" if x is None else f"{x:.6g}"  # noqa: E731
        lines = [
            f"flow Jacobian: N = {self.size}, method = {self.method}, "
            f"{'all' if self.eigenvalues_complete else str(len(self.eigenvalues)) + ' rightmost'} eigenvalues",
            f"spectral abscissa alpha = {self.spectral_abscissa:.6g} -> {self.verdict.upper()} "
            f"(tol = {self.tolerance:.3g}; {self.tolerance_rule})",
            f"numerical abscissa omega = {self.numerical_abscissa:.6g} -> "
            f"{'negative definite' if self.negative_definite else 'NOT negative definite'}; "
            f"{'Hurwitz' if self.hurwitz else 'not Hurwitz'}",
            f"fixed-point map h <- h + tau F(h): rho(I + tau J) = {self.map_spectral_radius:.6g} -> plain iteration "
            f"{'converges' if self.map_converges else 'does not converge'} locally (separate from the flow criterion)",
            f"stiffness ratio = {fmt(self.stiffness_ratio)}; relaxation time -1/alpha = {fmt(self.relaxation_time)}",
        ]
        if self.timing.get("predicted_time") is not None or self.timing.get("integrator_time") is not None:
            lines.append(f"time to ||dh/dt||_inf < {self.timing.get('time_tolerance'):g} from r0 = "
                         f"{fmt(self.timing.get('initial_residual'))}: predicted "
                         f"{fmt(self.timing.get('predicted_time'))}, "
                         f"integrator {fmt(self.timing.get('integrator_time'))} "
                         f"({self.timing.get('integrator_status', 'not run')})")
        if self.transient is not None:
            lines.append(f"transient growth max_t ||exp(tJ)||_2 = {fmt(self.transient.value)} at t = "
                         f"{fmt(self.transient.time)} ({self.transient.method})")
        if self.eigenvalue_condition_numbers is not None:
            lines.append(f"non-normality: max eigenvalue condition {fmt(self.max_eigenvalue_condition)}, "
                         f"eigenvector matrix condition {fmt(self.eigenvector_condition)}, Henrici departure "
                         f"{fmt(self.henrici_departure_relative)} (relative)")
        if self.closed_form is not None:
            cf = self.closed_form
            lines.append(f"closed form (exact inverses, {'matched' if cf.get('matched') else 'NOT matched here'}): "
                         f"{', '.join(f'{v:.6g}' for v in cf['eigenvalues'])} x{cf['multiplicity']}; "
                         f"max deviation from numerical eigenvalues {fmt(cf.get('max_deviation'))}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def pseudospectrum(self, real, imag, **kwargs) -> np.ndarray:
        """``sigma_min(z I - J)`` of the kept dense Jacobian on the grid ``z = x + i y`` (:func:`pseudospectrum`).

        Parameters
        ----------
        real : array_like, shape (X,)
        imag : array_like, shape (Y,)
        **kwargs
            ``method``, ``iterations`` of :func:`analysis.pseudospectrum`.

        Returns
        -------
        ndarray, shape (Y, X)
        """
        if self._matrix is None:
            raise ValueError(f"the report keeps no dense Jacobian (N = {self.size} > dense_limit); pass a larger "
                             "dense_limit to stability_report for pseudospectra.")
        return pseudospectrum(self._matrix, real, imag, **kwargs)

    def figure(self, *, pseudospectrum: bool = False, title: str | None = None):
        """Matplotlib ``Figure``: eigenvalues in the complex plane and the transient-growth curve.

        See :func:`analysis.plotting.stability_figure`.
        """
        from ..plotting import stability_figure  # matplotlib only when a figure is asked for

        return stability_figure(self, pseudospectrum=pseudospectrum, title=title)

    def save_figure(self, path, **kwargs):
        """Write :meth:`figure` to ``path`` (PNG); returns the path (:func:`analysis.plotting.plot_stability`)."""
        from ..plotting import plot_stability

        return plot_stability(self, path, **kwargs)

    @property
    def matrix(self) -> np.ndarray | None:
        """The dense Jacobian (kept when ``N <= dense_limit``; used for pseudospectra)."""
        return self._matrix



def _sort_by_real(values: np.ndarray, *arrays):
    order = np.lexsort((-values.imag, -values.real))
    return (values[order],) + tuple(None if a is None else a[:, order] for a in arrays)



def stability_report(dynamics=None, state=None, *, jacobian=None, sample: int = 0, tau: float | None = None,
                     method="auto", tol: float | None = None, equilibrium_tol: float = 1e-10,
                     integrate: bool | None = None, time_tolerance: float = 1e-6, t_max: float | None = None,
                     transient: bool | None = None, transient_limit: int = 500, dense_limit: int = 1500,
                     k: int = 4, match_tol: float = 1e-9, fixed_point_tol: float = 1e-6,
                     arpack_tol: float = 1e-12, seed: int = 0) -> StabilityReport:
    """Stability report of a fixed point (module docstring), from dynamics or from a Jacobian.

    Give either ``dynamics`` (and optionally ``state``) or ``jacobian``.

    Parameters
    ----------
    dynamics : NetworkDynamics, optional
        E.g. :class:`tpdynamics.MixtureDynamics`, batch ``B``.
    state : Tensor, shape (B, N), optional
        The fixed point. Default: ``tpdynamics.equilibrium(dynamics, tol=equilibrium_tol)``.
    jacobian : array_like (N, N), SciPy sparse matrix or BlockJacobian, optional
        The flow Jacobian ``J = dF/dh`` itself (e.g. a hand-made matrix). A :class:`BlockJacobian`
        keeps its block structure (closed form, sparse paths).
    sample : int
        Which sample of the batch to analyse.
    tau : float, optional
        Time constant for the fixed-point map ``I + tau J`` (default ``dynamics.tau``, or 1 for a matrix).
    method : str, AbscissaMethod subclass or instance
        ``'auto'`` (default), ``'closed_form'``, ``'dense'``, ``'arnoldi'`` or ``'shift_invert'``
        (registry :data:`ABSCISSA_METHODS`).
    tol : float, optional
        Verdict tolerance; default ``sqrt(eps) * max|lambda|`` (:func:`tpdynamics.stability_tolerance`).
    equilibrium_tol : float
        Residual tolerance of the fixed-point solve when ``state`` is not given.
    integrate : bool, optional
        Also integrate the ODE (``solver='ode'``) from the forward pass to ``time_tolerance`` and report the
        time it took beside the predicted time. Default: True with ``dynamics``; it has no effect (and
        warns) with ``jacobian``.
    time_tolerance : float
        Residual ``||dh/dt||_inf`` for the predicted and measured times.
    t_max : float, optional
        Time limit of that integration (default ``1000 tau``).
    transient : bool, optional
        Compute the transient growth (default: when ``N <= transient_limit``); needs the dense matrix.
    transient_limit, dense_limit : int
        Size limits of the transient-growth computation and of the dense path of ``method='auto'``.
    k : int
        Number of eigenvalues the Arnoldi methods compute.
    match_tol : float
        Tolerance of the exact-inverse structure test (:func:`analysis.spectrum.structured_spectrum`).
    arpack_tol : float
        Relative accuracy requested from ARPACK (sparse paths).
    fixed_point_tol : float
        A ``state`` with ``||dh/dt||_inf`` above this raises a :class:`TPDynamicsWarning` (the report then
        describes a linearisation at a non-equilibrium point).
    seed : int
        Seed of the random probe and start vectors.

    Returns
    -------
    StabilityReport

    Raises
    ------
    EquilibriumNotReachedError
        When ``state`` is not given and the fixed-point solve fails.
    AbscissaNotConvergedError
        When the iterative eigenvalue solvers fail.
    """
    method = ABSCISSA_METHODS.create(method)
    dense_limit = check_int("dense_limit", dense_limit, minimum=1)
    transient_limit = check_int("transient_limit", transient_limit, minimum=1)
    k = check_int("k", k, minimum=1)
    tol = None if tol is None else check_positive("tol", tol)
    time_tolerance = check_positive("time_tolerance", time_tolerance)
    notes, source = [], {}
    block, sample_in_block = None, 0  # a dynamics' Jacobian holds the analysed sample alone
    if (dynamics is None) == (jacobian is None):
        raise ValueError("pass exactly one of dynamics= (with an optional state=) or jacobian= (a matrix); got "
                         f"{'both' if dynamics is not None else 'neither'}.")
    if dynamics is not None:
        if not isinstance(dynamics, tp.NetworkDynamics):
            raise TypeError(f"dynamics must be a tpdynamics NetworkDynamics (e.g. MixtureDynamics), got "
                            f"{type(dynamics).__name__}; to analyse a matrix, pass jacobian=...")
        sample = check_sample(sample, dynamics.batch_size)
        tau = dynamics.tau if tau is None else check_positive("tau", tau)
        one, state, source = _fixed_point(dynamics, state, equilibrium_tol, fixed_point_tol, sample)
        block = assemble_jacobian(one, state)
    else:
        if state is not None:
            raise ValueError("state= is only used with dynamics=; a jacobian= is already evaluated at its point.")
        ignored = [name for name, value in (("integrate", integrate), ("t_max", t_max)) if value]
        if ignored:
            warnings.warn(f"{', '.join(ignored)} only apply to dynamics= input (they time the ODE integration); "
                          "with jacobian= they have no effect.", TPDynamicsWarning, stacklevel=2)
        tau = 1.0 if tau is None else check_positive("tau", tau)
        if isinstance(jacobian, BlockJacobian):
            sample = check_sample(sample, jacobian.batch_size)
            block, sample_in_block = jacobian, sample
            source = {"input": "BlockJacobian", "sample": sample}
        else:
            source = {"input": "matrix"}
    problem = make_problem(jacobian, block, sample_in_block, dense_limit=dense_limit, k=k, seed=seed,
                            match_tol=match_tol, arpack_tol=arpack_tol)
    structured = problem.structured
    N = problem.size

    spectrum = method.spectrum(problem)
    values, left, right = _sort_by_real(np.asarray(spectrum.eigenvalues, dtype=complex), spectrum.left, spectrum.right)
    if spectrum.note:
        notes.append(spectrum.note)
    alpha = float(values.real.max())
    rule = _TOLERANCE_RULE if tol is None else "given by the caller"
    tol = stability_tolerance(values) if tol is None else tol
    verdict = STABLE if alpha < -tol else (UNSTABLE if alpha > tol else MARGINAL)
    omega = problem.numerical_abscissa()
    rho = map_spectral_radius(problem, tau, spectrum)

    report = StabilityReport(
        eigenvalues=values, eigenvalues_complete=spectrum.complete, spectral_abscissa=alpha, verdict=verdict,
        tolerance=tol, tolerance_rule=rule,
        numerical_abscissa=omega, map_spectral_radius=rho, tau=tau, method=spectrum.method, size=N,
        source=source, notes=notes, _matrix=problem.dense_matrix)

    if spectrum.complete:
        decaying = -values.real[values.real < -tol]
        if decaying.size:
            report.stiffness_ratio = float(decaying.max() / decaying.min())
        if problem.dense_matrix is not None or N <= dense_limit:
            fro = float(np.linalg.norm(problem.dense(), "fro"))
            dep = math.sqrt(max(fro ** 2 - float(np.sum(np.abs(values) ** 2)), 0.0))
            report.henrici_departure = dep
            report.henrici_departure_relative = dep / fro if fro > 0 else 0.0
    if left is not None and right is not None:
        overlap = np.abs(np.einsum("ij,ij->j", left.conj(), right))
        with np.errstate(divide="ignore"):
            report.eigenvalue_condition_numbers = np.where(overlap > 0, 1.0 / overlap, np.inf)
        report.eigenvector_condition = float(np.linalg.cond(right))
        fro = float(np.linalg.norm(problem.dense(), "fro"))
        report.abscissa_error_bound = _EPS * fro * float(report.eigenvalue_condition_numbers[0])

    if transient is None:
        transient = N <= transient_limit
    if transient:
        report.transient = transient_growth(problem.dense(), eigenvalues=values if spectrum.complete else None,
                                            numerical_abscissa=omega, tol=tol)
    else:
        notes.append(f"transient growth skipped (N = {N} > transient_limit = {transient_limit}; pass transient=True)")

    if block is not None:
        report.closed_form = _closed_form(dynamics, block, structured, values if spectrum.complete else None)
    if dynamics is not None:
        report.timing = _timing(one, alpha, time_tolerance, True if integrate is None else bool(integrate), t_max)
    _interpret(report)
    return report



def _fixed_point(dynamics, state, equilibrium_tol, fixed_point_tol, sample):
    """The dynamics of sample ``sample`` alone and its fixed point, shape ``(1, N)``."""
    source = {"input": "dynamics", "sample": sample, **dynamics.describe()}
    if state is not None:
        dynamics.check_state(state, "state")
    one = dynamics.select([sample])
    if state is None:
        with torch.no_grad():
            result = tp.equilibrium(one, tol=check_positive("equilibrium_tol", equilibrium_tol))
        if not result.success:
            raise tp.EquilibriumNotReachedError(
                f"the fixed point of sample {sample} was not found ({result.status}: {result.message}); pass "
                "state= to analyse a given state.", result)
        source["equilibrium"] = {"solver": result.solver, "status": result.status,
                                 "residual": float(result.residual[0]), "tol": result.tol}
        return one, result.state.detach(), source
    state = state.detach()[sample:sample + 1]
    with torch.no_grad():
        residual = float(one.residual(state)[0])
    source["equilibrium"] = {"solver": "given", "residual": residual}
    if not residual <= check_positive("fixed_point_tol", fixed_point_tol):
        warnings.warn(f"state is not a fixed point of the dynamics (||dh/dt||_inf = {residual:.3g} > fixed_point_tol="
                      f"{fixed_point_tol:g} for sample {sample}); the report describes the linearisation at this "
                      "state, not the stability of an equilibrium. Omit state= to solve for the fixed point.",
                      TPDynamicsWarning, stacklevel=3)
    return one, state, source


def _closed_form(dynamics, block: BlockJacobian, structured: StructuredSpectrum, values) -> dict | None:
    """The exact-inverse closed form when the feedback is exact (or the structure holds), else None."""
    mixture = isinstance(dynamics, tp.MixtureDynamics)
    exact_forms = mixture and all(f == "exact" for f in dynamics.network.feedback_forms[1:])
    if not exact_forms and not structured.applies:
        return None
    if mixture and len(set(block.block_sizes)) == 1:
        cf = exact_inverse_spectrum(block.depth, dynamics.mu, dynamics.tau, dynamics.teaching.jacobian_scale,
                                    block.block_sizes[0]).to_dict()
    elif structured.applies:
        cf = {"eigenvalues": [float(v.real) for v in structured.eigenvalues], "multiplicity": structured.multiplicity,
              "formula": "eigenvalues of T = tridiag(1, d_k, gamma_k) from the blocks, each with multiplicity n",
              "abscissa": float(np.max(structured.eigenvalues.real))}
    else:
        return None
    cf["matched"] = bool(structured.applies)
    cf["mismatch"] = jsonable(structured.mismatch)
    cf["thesis_formula"] = THESIS_FORMULA
    if values is not None:
        reference = np.asarray(cf["eigenvalues"])
        cf["max_deviation"] = float(np.max(np.min(np.abs(values[:, None] - reference[None, :]), axis=1)))
    else:
        cf["max_deviation"] = None
    if not structured.applies:
        cf["note"] = ("exact feedback, but J_g J_f != I at this state (" + structured.reason + "): the closed form "
                      "is the spectrum at the forward pass, not here")
    return cf


def _timing(one, alpha, time_tolerance, integrate, t_max) -> dict:
    with torch.no_grad():
        start = one.initial_state("forward")
        r0 = float(one.fixed_point_residual(start)[0])  # the quantity equilibrium's tol bounds
    predicted = None
    if alpha < 0:
        predicted = max(math.log(r0 / time_tolerance), 0.0) / (-alpha) if r0 > 0 else 0.0
    out = {"initial_residual": r0, "time_tolerance": time_tolerance, "predicted_time": predicted,
           "integrator_time": None, "integrator_status": "not run"}
    if integrate:
        with torch.no_grad():
            # small check_growth: the ODE path checks the residual at geometrically spaced times, so the
            # reported time overshoots the first converged time by at most this factor
            result = tp.equilibrium(one, tol=time_tolerance, solver="ode", t_max=t_max, check_growth=1.05,
                                    check_interval=0.05 * one.tau)
        out["integrator_time"] = result.t
        out["integrator_status"] = result.status
        out["integrator_nfev"] = result.nfev
    return out


def _interpret(report: StabilityReport) -> None:
    notes = report.notes
    if report.hurwitz and not report.negative_definite:
        notes.append("Hurwitz but not negative definite: every eigenvalue has Re < 0, so the fixed point is locally "
                     "asymptotically stable, yet the symmetric part has a positive eigenvalue (omega > 0): some "
                     "perturbations grow transiently before they decay (non-normal Jacobian).")
    if report.hurwitz and report.negative_definite:
        notes.append("negative definite (omega < 0): every perturbation shrinks monotonically in the 2-norm.")
    if report.hurwitz and not report.map_converges:
        notes.append("the flow is stable but the plain fixed-point iteration h <- (1-mu) f + mu g is not a local "
                     "contraction (rho(I + tau J) >= 1): integrate the ODE or use Newton/Anderson instead.")
    if report.verdict_reliable is False:
        notes.append(f"the rounding-error bound of the computed abscissa ({report.abscissa_error_bound:.3g}) exceeds "
                     "its distance from 0: the verdict is not reliable in float64.")
    cf = report.closed_form
    if cf is not None and cf.get("matched") and cf.get("max_deviation") is not None and report.method != "closed_form":
        notes.append(f"exact inverses at a matched point: the numerical eigenvalues lie within "
                     f"{cf['max_deviation']:.2g} of the closed form.")

