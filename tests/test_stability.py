"""Stability reports: closed form vs numerics, verdicts, transient growth, sparse vs dense paths, bad input."""
import json
import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

import tpdynamics as tp
from analysis import (ABSCISSA_METHODS, MARGINAL, STABLE, UNSTABLE, BlockJacobian, batch_abscissae,
                      exact_inverse_eigenvalues, exact_inverse_spectrum, jacobian, pseudospectrum, reduced_tridiagonal,
                      spectral_abscissa, stability_report, structured_spectrum, transient_growth)
from tpdynamics.errors import TPDynamicsWarning

from .problems import (VERDICT_CASES, exact_inverse_problem, jordan_block, jordan_block_transient_growth, make_problem,
                       normal_matrices)

DT = torch.float64


# -- the closed form of section 6.7 ------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 5), width=st.integers(1, 6), mu=st.floats(0.01, 0.49), tau=st.floats(0.3, 3.0),
       seed=st.integers(0, 10_000), teaching=st.sampled_from(["fixed", "free", "loss"]),
       nonlinearity=st.sampled_from(["leaky_relu:0.35", "identity"]))
def test_closed_form_equals_numeric_eigenvalues_for_exact_inverses(depth, width, mu, tau, seed, teaching, nonlinearity):
    """Random Gaussian weights: at the forward pass J_g = J_f^-1 exactly, whatever the weights."""
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.3), "loss": dict(eta_hat=0.2)}[teaching]
    net, h0, label, dyn = make_problem((width + 1,) + (width,) * depth, nonlinearity=nonlinearity, output=nonlinearity,
                                       mu=mu, tau=tau, seed=seed, batch=1, weight_init="gaussian", **kwargs)
    J = jacobian(dyn, dyn.initial_state())
    numeric = scipy.linalg.eigvals(J.to_numpy(0))
    numeric = numeric[np.argsort(-numeric.real)]
    c = dyn.teaching.jacobian_scale
    closed = exact_inverse_spectrum(depth, mu, tau, c, width)
    np.testing.assert_allclose(numeric.real, closed.full(), atol=1e-7)
    np.testing.assert_allclose(numeric.imag, 0.0, atol=1e-7)
    if teaching == "fixed":  # the thesis's formula (c = 0)
        np.testing.assert_allclose(closed.eigenvalues, exact_inverse_eigenvalues(depth, mu, tau), rtol=1e-12)
    structured = structured_spectrum(J)
    assert structured.applies and structured.multiplicity == width
    np.testing.assert_allclose(structured.full().real, closed.full(), atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(1, 12), mu=st.floats(0.01, 0.49), tau=st.floats(0.1, 10.0), c=st.floats(-1.0, 1.0))
def test_reduced_matrix_spectrum(depth, mu, tau, c):
    """Against the eigenvalues of T itself in 40-digit arithmetic (mpmath): T is far from normal for small mu
    (a diagonal similarity with condition ((1-mu)/mu)^((L-1)/2) symmetrises it), so float64 LAPACK on T is not
    an accurate oracle. mu = 0 is checked exactly below."""
    T = reduced_tridiagonal(depth, mu, tau, c)
    with mpmath.workdps(40):
        values = mpmath.eig(mpmath.matrix(T.tolist()), left=False, right=False)
        values = values[0] if isinstance(values, tuple) else values  # mpmath returns (E, ER, EL) for 1 x 1
        expected = np.sort([float(mpmath.re(v)) for v in values])[::-1]
    np.testing.assert_allclose(exact_inverse_spectrum(depth, mu, tau, c).eigenvalues, expected, atol=1e-12 / tau)
    if c == 0.0:
        np.testing.assert_allclose(exact_inverse_eigenvalues(depth, mu, tau), expected, atol=1e-12 / tau)
    # every eigenvalue is negative for mu < 1/2 and c <= 1: the fixed point is stable
    assert exact_inverse_spectrum(depth, mu, tau, min(c, 1.0)).abscissa < 0


def test_reduced_matrix_spectrum_without_feedback():
    """mu = 0: T is lower bidiagonal, its eigenvalues are its diagonal."""
    np.testing.assert_allclose(exact_inverse_spectrum(4, 0.0, 2.0, 0.5).eigenvalues, [-0.5] * 4)
    np.testing.assert_allclose(exact_inverse_eigenvalues(3, 0.0, 1.0), [-1.0] * 3)


def test_structured_spectrum_detects_a_mismatch():
    """tanh with a teaching signal: the equilibrium leaves the forward pass, so J_g J_f != I there."""
    net, h0, label, dyn = make_problem((3, 4, 4, 4), nonlinearity="tanh", output="tanh", batch=2)
    fixed = tp.equilibrium(dyn, tol=1e-12)
    s = structured_spectrum(jacobian(dyn, fixed.state))
    assert not s.applies and s.mismatch > 1e-6 and "not the inverses" in s.reason
    report = stability_report(dyn, fixed.state, integrate=False)
    assert report.closed_form is not None and report.closed_form["matched"] is False
    with pytest.raises(ValueError, match="method='closed_form' needs exact inverses"):
        stability_report(dyn, fixed.state, method="closed_form", integrate=False)
    # learned feedback that is not the inverse: no closed form at all
    net, h0, label, dyn = make_problem((3, 4, 4, 4), feedback="fixed", batch=1)
    assert stability_report(dyn, integrate=False, transient=False).closed_form is None


# -- verdicts on hand-made matrices ------------------------------------------------------------------
@pytest.mark.parametrize("matrix, verdict, hurwitz, negative_definite", VERDICT_CASES)
def test_verdicts(matrix, verdict, hurwitz, negative_definite):
    report = stability_report(jacobian=matrix)
    assert report.verdict == verdict and report.verdict in (STABLE, UNSTABLE, MARGINAL)
    assert report.hurwitz is hurwitz and report.negative_definite is negative_definite
    assert report.tolerance == pytest.approx(math.sqrt(np.finfo(float).eps) * np.abs(np.linalg.eigvals(matrix)).max())
    np.testing.assert_allclose(report.numerical_abscissa, np.linalg.eigvalsh(0.5 * (matrix + matrix.T)).max())


def test_explicit_tolerance_and_unstable_growth():
    report = stability_report(jacobian=np.diag([1e-6, -1.0]), tol=1e-3)
    assert report.verdict == MARGINAL and report.tolerance_rule == "given by the caller"
    report = stability_report(jacobian=np.array([[0.5, 3.0], [0.0, -1.0]]))
    assert report.verdict == UNSTABLE and report.transient_growth == math.inf and not report.transient.bounded
    assert report.to_dict()["transient_growth"] is None and report.to_dict()["transient_growth_bounded"] is False


def test_map_spectral_radius_is_a_separate_criterion():
    """diag(-0.5, -2.5): a stable flow whose plain fixed-point iteration diverges (|1 - 2.5| > 1)."""
    report = stability_report(jacobian=np.diag([-0.5, -2.5]))
    assert report.hurwitz and report.map_spectral_radius == pytest.approx(1.5) and not report.map_converges
    assert stability_report(jacobian=np.diag([-0.5, -2.5]), tau=0.5).map_spectral_radius == pytest.approx(0.75)
    net, h0, label, dyn = make_problem((3, 4, 4, 4), feedback="learned", batch=1)
    report = stability_report(dyn, integrate=False)
    np.testing.assert_allclose(report.map_spectral_radius, np.abs(1 + dyn.tau * report.eigenvalues).max())


# -- transient growth -------------------------------------------------------------------------------
def test_transient_growth_of_normal_matrices_is_one():
    for matrix, _ in normal_matrices():
        growth = transient_growth(matrix)
        assert growth.value == 1.0 and growth.time == 0.0 and growth.bounded
        np.testing.assert_array_less(growth.norms, 1.0 + 1e-12)  # the curve is exp(alpha t)


def test_transient_growth_of_a_jordan_block():
    """J = [[-1, a], [0, -1]]: the closed form of :func:`tests.problems.jordan_block_transient_growth`."""
    a = 10.0
    value, time = jordan_block_transient_growth(a)
    growth = transient_growth(jordan_block(a))
    assert growth.value == pytest.approx(value, rel=1e-9)
    assert growth.time == pytest.approx(time, rel=1e-4)


@pytest.mark.parametrize("a", [3.0, 10.0, 100.0])
def test_transient_growth_of_a_non_normal_2x2(a):
    """J = [[-1, a], [0, -2]]: exp(tJ) = [[x, a(x - x^2)], [0, x^2]], x = e^-t, so with F = ||.||_F^2 and
    d = det = x^3, ||exp(tJ)||_2^2 = (F + sqrt(F^2 - 4 d^2)) / 2, maximised over x in (0, 1] (no expm)."""
    def norm(x):
        F = x ** 2 + a ** 2 * (x - x ** 2) ** 2 + x ** 4
        return math.sqrt((F + math.sqrt(max(F * F - 4 * x ** 6, 0.0))) / 2)

    xs = np.linspace(1e-6, 1.0, 200_001)
    x0 = xs[np.argmax([norm(x) for x in xs])]
    best = scipy.optimize.minimize_scalar(lambda x: -norm(x), bounds=(x0 - 1e-5, min(x0 + 1e-5, 1.0)),
                                          method="bounded", options={"xatol": 1e-14})
    report = stability_report(jacobian=np.array([[-1.0, a], [0.0, -2.0]]))
    assert report.transient_growth == pytest.approx(-best.fun, rel=1e-9)
    assert report.transient.time == pytest.approx(-math.log(best.x), rel=1e-4)
    assert not report.negative_definite and report.hurwitz


# -- sparse and dense paths ----------------------------------------------------------------------------
def _non_matched_dynamics(seed=4):
    """Learned feedback perturbed away from the inverse: no closed form, so the sparse paths must work."""
    net, h0, label, dyn = make_problem((6, 12, 12, 12, 12), feedback="learned", batch=2, seed=seed, free=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i in range(2, 5):
            q = net.layer(i).feedback.weight
            q.add_(0.3 * q.abs().mean() * torch.randn(q.shape, generator=g, dtype=DT))
    return dyn


def check_abscissa_method(method):
    """The check every registered abscissa method must pass, on problems with known abscissae.

    Exact inverses at a matched point (closed form), a non-matched block-sparse Jacobian (dense reference),
    normal matrices and a Jordan block (exact eigenvalues): the abscissa agrees, or the method says it does not
    apply (``ValueError`` naming the method to use instead).
    """
    dyn, state, exact = exact_inverse_problem()
    problems = [(jacobian(dyn, state), exact, 1e-8)]
    other = _non_matched_dynamics()
    J = jacobian(other, other.initial_state().detach())
    problems.append((J, float(np.max(np.linalg.eigvals(J.to_numpy(0)).real)), 1e-9))
    problems += [(matrix, float(np.max(values.real)), 1e-10) for matrix, values in normal_matrices()]
    problems.append((jordan_block(), -1.0, 1e-6))  # a defective eigenvalue moves by ~ sqrt(eps ||J||)
    for matrix, expected, tol in problems:
        try:
            alpha, used = spectral_abscissa(matrix, method=method)
        except ValueError as err:
            assert f"method='{method}'" in str(err) and "method='auto'" in str(err), err
            continue
        assert alpha == pytest.approx(expected, abs=tol), (method, used, alpha, expected)


@pytest.mark.parametrize("method", ABSCISSA_METHODS.names())
def test_every_abscissa_method_finds_the_exact_abscissa(method):
    check_abscissa_method(method)


@pytest.mark.parametrize("method", ABSCISSA_METHODS.names())
def test_sparse_paths_agree_with_the_dense_path(method):
    dyn = _non_matched_dynamics()
    state = dyn.initial_state().detach()
    dense = stability_report(dyn, state, method="dense", integrate=False, fixed_point_tol=1.0)
    try:
        sparse = stability_report(dyn, state, method=method, integrate=False, fixed_point_tol=1.0, transient=False)
    except ValueError as err:  # a method that needs structure this Jacobian lacks says so
        assert f"method='{method}' needs" in str(err)
        return
    assert sparse.spectral_abscissa == pytest.approx(dense.spectral_abscissa, abs=1e-9)
    assert sparse.map_spectral_radius == pytest.approx(dense.map_spectral_radius, abs=1e-9)
    if sparse.eigenvalues_complete:  # a dense method: the whole spectrum
        np.testing.assert_allclose(np.sort_complex(sparse.eigenvalues), np.sort_complex(dense.eigenvalues), atol=1e-9)
    else:  # an iterative method: the rightmost eigenvalues only
        assert sparse.method == method and dense.eigenvalues_complete


def test_auto_takes_the_sparse_path_for_large_jacobians():
    dyn = _non_matched_dynamics()
    state = dyn.initial_state().detach()
    dense = stability_report(dyn, state, method="dense", integrate=False, fixed_point_tol=1.0)
    # a large matrix goes the sparse way in 'auto' (dense_limit below N), also for a plain SciPy matrix
    auto = stability_report(dyn, state, integrate=False, fixed_point_tol=1.0, dense_limit=20, transient=False)
    assert auto.method == "arnoldi"
    assert auto.spectral_abscissa == pytest.approx(dense.spectral_abscissa, abs=1e-9)
    assert auto.numerical_abscissa == pytest.approx(dense.numerical_abscissa, abs=1e-9)
    matrix = scipy.sparse.csr_matrix(jacobian(dyn, state).to_numpy(0))
    plain = stability_report(jacobian=matrix, dense_limit=20, transient=False, tau=dyn.tau)
    assert plain.spectral_abscissa == pytest.approx(dense.spectral_abscissa, abs=1e-9)


def test_closed_form_path_agrees_with_the_dense_path():
    dyn, state, _ = exact_inverse_problem((4, 10, 10, 10, 10))
    dense = stability_report(dyn, state, method="dense", integrate=False, transient=False)
    closed = stability_report(dyn, state, method="closed_form", integrate=False, transient=False)
    auto_large = stability_report(dyn, state, dense_limit=10, integrate=False, transient=False)
    assert closed.method == auto_large.method == "closed_form"
    assert closed.spectral_abscissa == pytest.approx(dense.spectral_abscissa, abs=1e-8)
    np.testing.assert_allclose(closed.eigenvalues.real, np.sort(dense.eigenvalues.real)[::-1], atol=1e-7)
    assert dense.closed_form["matched"] and dense.closed_form["max_deviation"] < 1e-7
    assert closed.map_spectral_radius == pytest.approx(dense.map_spectral_radius, abs=1e-8)


def test_registry_lists_the_methods():
    assert set(ABSCISSA_METHODS.names()) == {"auto", "closed_form", "dense", "arnoldi", "shift_invert"}
    with pytest.raises(ValueError, match="Unknown abscissa method method='lanczos'.*Valid names: arnoldi, auto"):
        stability_report(jacobian=np.eye(2) * -1, method="lanczos")


# -- the report from a network ---------------------------------------------------------------------------
def test_report_from_dynamics_is_complete():
    net, h0, label, dyn = make_problem((3, 4, 4, 4), batch=3)
    report = stability_report(dyn, sample=1)
    assert report.source["equilibrium"]["status"] == "converged" and report.source["sample"] == 1
    assert report.verdict == STABLE and report.eigenvalues_complete and report.size == 12
    assert report.relaxation_time == pytest.approx(-1 / report.spectral_abscissa)
    assert report.stiffness_ratio >= 1.0
    t = report.timing
    assert t["integrator_status"] == "converged"
    # the linear prediction ln(r0/tol)/(-alpha) sets the time scale of the integration
    assert 0.5 < t["predicted_time"] / t["integrator_time"] < 2.0
    payload = json.loads(report.to_json())
    for key in ("eigenvalues", "spectral_abscissa", "numerical_abscissa", "hurwitz", "negative_definite",
                "map_spectral_radius", "transient_growth", "closed_form", "verdict", "tolerance",
                "eigenvalue_condition_numbers", "henrici_departure", "stiffness_ratio", "predicted_time",
                "integrator_time"):
        assert key in payload
    assert payload["eigenvalues"][0] == [report.eigenvalues[0].real, report.eigenvalues[0].imag]
    assert payload["closed_form"]["multiplicity"] == 4
    assert "STABLE" in report.to_text()


def test_exact_inverses_are_hurwitz_but_not_negative_definite():
    """Section 6.7 calls the Jacobian negative definite; with Gaussian weights it is only Hurwitz."""
    net, h0, label, dyn = make_problem((8, 8, 8, 8, 8), weight_init="gaussian", batch=1, free=True, mu=0.3, seed=2)
    report = stability_report(dyn, dyn.initial_state().detach(), integrate=False)
    assert report.hurwitz and not report.negative_definite and report.numerical_abscissa > 0
    assert report.transient_growth > 1.0
    assert report.closed_form["matched"]
    # free output (c = 1): the abscissa is that of T = tridiag(0.7, (-1, -1, -1, -0.7), 0.3)
    assert report.spectral_abscissa == pytest.approx(exact_inverse_spectrum(4, 0.3, 1.0, 1.0).abscissa, abs=1e-8)
    assert report.henrici_departure_relative > 0.1 and report.max_eigenvalue_condition > 1.0
    assert any("not negative definite" in note for note in report.notes)


def test_figure(tmp_path):
    report = stability_report(jacobian=np.array([[-1.0, 10.0], [0.0, -2.0]]))
    fig = report.figure(pseudospectrum=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    path = report.save_figure(tmp_path / "stability.png")
    assert path.exists() and path.stat().st_size > 10_000


def test_pseudospectrum_of_a_normal_matrix_is_the_distance_to_the_spectrum():
    matrix = np.diag([-1.0, -3.0])
    xs, ys = np.linspace(-4, 1, 7), np.linspace(-1, 1, 5)
    sigma = pseudospectrum(matrix, xs, ys)
    z = xs[None, :] + 1j * ys[:, None]
    np.testing.assert_allclose(sigma, np.minimum(np.abs(z + 1), np.abs(z + 3)), atol=1e-12)


def test_pseudospectrum_inverse_iteration_matches_the_svd():
    rng = np.random.default_rng(1)
    matrix = -np.eye(30) + np.triu(rng.standard_normal((30, 30)), 1)
    xs, ys = np.linspace(-3, 1, 6), np.linspace(-1.5, 1.5, 5)
    exact = pseudospectrum(matrix, xs, ys, method="svd")
    # inverse iteration stops when 1/sigma^2 changes by < 1e-10 per step: a few 1e-6 of slow convergence remain
    np.testing.assert_allclose(pseudospectrum(matrix, xs, ys, method="inverse_iteration", iterations=200), exact,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="method='lanczos' is not valid"):
        pseudospectrum(matrix, xs, ys, method="lanczos")


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input():
    net, h0, label, dyn = make_problem((3, 4, 4, 4), batch=2)
    with pytest.raises(ValueError, match="state has 10 features"):
        stability_report(dyn, torch.zeros(2, 10, dtype=DT))
    with pytest.raises(ValueError, match="state must have 2 dimensions"):
        stability_report(dyn, torch.zeros(12, dtype=DT))
    with pytest.raises(ValueError, match="exactly one of dynamics"):
        stability_report(dyn, jacobian=np.eye(2))
    with pytest.raises(ValueError, match="exactly one of dynamics"):
        stability_report()
    with pytest.raises(ValueError, match=r"square 2-D matrix \(N, N\), got shape \(2, 3\)"):
        stability_report(jacobian=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        stability_report(jacobian=np.array([[np.nan, 0.0], [0.0, -1.0]]))
    with pytest.raises(TypeError, match="jacobian must be a NumPy array"):
        stability_report(jacobian=[[-1.0]])
    with pytest.raises(ValueError, match="sample=5 must be an int in 0..1"):
        stability_report(dyn, sample=5)
    with pytest.raises(ValueError, match="tol=-1.0 must be finite and > 0"):
        stability_report(jacobian=-np.eye(2), tol=-1.0)
    with pytest.raises(TypeError, match="dynamics must be a tpdynamics NetworkDynamics"):
        stability_report(net)
    with pytest.warns(TPDynamicsWarning, match="integrate only apply to dynamics= input"):
        stability_report(jacobian=-np.eye(2), integrate=True)
    with pytest.warns(TPDynamicsWarning, match="state is not a fixed point"):
        stability_report(dyn, dyn.initial_state().detach() + 0.1, integrate=False)


def test_spectral_abscissa_agrees_with_the_report():
    net, h0, label, dyn = make_problem((3, 4, 4, 4), feedback="learned", batch=2)
    J = jacobian(dyn, dyn.initial_state())
    report = stability_report(jacobian=J, sample=1, transient=False)
    alpha, method = spectral_abscissa(J, sample=1)
    assert method == "dense" and alpha == report.spectral_abscissa
    alpha_batch, omega_batch = batch_abscissae(J)
    assert alpha_batch[1] == pytest.approx(alpha, abs=1e-12)
    assert omega_batch[1] == pytest.approx(report.numerical_abscissa, abs=1e-12)


def test_bad_input_of_the_spectrum_helpers():
    net, h0, label, dyn = make_problem((3, 4, 4, 4), batch=2)
    J = jacobian(dyn, dyn.initial_state())
    with pytest.raises(TypeError, match="jacobian must be an analysis.BlockJacobian .*got ndarray"):
        structured_spectrum(np.eye(2))
    with pytest.raises(ValueError, match="sample=2 must be an int in 0..1"):
        structured_spectrum(J, sample=2)
    with pytest.raises(ValueError, match="sample=2 must be an int in 0..1"):
        spectral_abscissa(J, sample=2)
    with pytest.raises(TypeError, match="teaching_scale must be a finite real number .*got nan"):
        exact_inverse_spectrum(3, 0.2, teaching_scale=float("nan"))
    with pytest.raises(ValueError, match="depth=0 must be >= 1"):
        exact_inverse_eigenvalues(0, 0.2)
    with pytest.raises(ValueError, match="points=4 must be >= 8"):
        transient_growth(-np.eye(2), points=4)
    with pytest.raises(ValueError, match=r"\(B, N, N\) tensor, got shape \(2, 2\).*unsqueeze\(0\)"):
        batch_abscissae(torch.eye(2))
    with pytest.raises(ValueError, match="state= is only used with dynamics="):
        stability_report(jacobian=-np.eye(2), state=torch.zeros(1, 2, dtype=DT))
    broken = BlockJacobian({(0, 0): torch.full((1, 2, 2), math.nan, dtype=DT)}, (2,))
    with pytest.raises(ValueError, match="the Jacobian has non-finite entries at this state"):
        stability_report(jacobian=broken)
