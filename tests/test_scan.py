"""The batched random-matrix scan of section 6.7 and the approximate-inverse map."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch

from analysis.scan import InverseApproximationMap, approximate_inverse_map, random_jacobians, stability_scan
from analysis.stability import transient_growth


@pytest.fixture(scope="module")
def scan():
    return stability_scan(600, depths=(2, 3, 5), widths=(1, 3), seed=3, refine=3)


def test_exact_inverse_scan_is_stable_and_matches_the_closed_form(scan):
    assert scan.cases == 600 and scan.fraction_stable == 1.0
    assert np.nanmax(scan.closed_form_error) < 1e-6
    assert scan.worst_abscissa < 0 and scan.worst_abscissa == pytest.approx(scan.closed_form_abscissa.max(), abs=1e-6)
    # Hurwitz, but mostly not negative definite: the thesis's "negative definite" does not hold
    assert 0.0 < scan.fraction_negative_definite < 0.9
    assert set(scan.depth) == {2, 3, 5} and set(scan.width) == {1, 3}
    assert np.all((scan.mu > 0) & (scan.mu < 0.5))


def test_transient_growth_in_the_scan(scan):
    # G = 1 exactly when omega <= 0, and G > 1 when omega > 0 (d||x||/dt = omega at t = 0)
    np.testing.assert_array_equal(scan.transient_growth[scan.numerical_abscissa <= 0], 1.0)
    assert np.all(scan.transient_growth[scan.numerical_abscissa > 1e-6] > 1.0)
    assert scan.refined and scan.max_transient_growth == max(r["transient_growth"] for r in scan.refined)
    for r in scan.refined:  # the batched grid estimate is a lower bound, within a few percent
        assert r["estimate"] <= r["transient_growth"] * (1 + 1e-9)
        assert r["estimate"] >= 0.9 * r["transient_growth"]


def test_batched_spectra_equal_scipy_per_case():
    g = torch.Generator().manual_seed(0)
    B, L, n = 6, 3, 4
    forward = torch.randn(B, L - 1, n, n, generator=g, dtype=torch.float64)
    mu = torch.rand(B, generator=g, dtype=torch.float64) * 0.5
    J = random_jacobians(L, n, mu, forward)
    for b in range(B):
        manual = -np.eye(L * n)
        for i in range(L - 1):
            f = forward[b, i].numpy()
            manual[(i + 1) * n:(i + 2) * n, i * n:(i + 1) * n] = (1 - mu[b].item()) * f
            manual[i * n:(i + 1) * n, (i + 1) * n:(i + 2) * n] = mu[b].item() * np.linalg.inv(f)
        np.testing.assert_allclose(J[b].numpy(), manual, rtol=1e-12, atol=1e-12)
        batched = np.sort(torch.linalg.eigvals(J[b:b + 1])[0].numpy().real)
        np.testing.assert_allclose(batched, np.sort(scipy.linalg.eigvals(manual).real), atol=1e-9)
        closed = -1 + 2 * np.sqrt(mu[b].item() * (1 - mu[b].item())) * np.cos(np.pi / (L + 1))
        assert batched.max() == pytest.approx(closed, abs=1e-9)
        if b < 2:
            assert transient_growth(manual).value >= 1.0


def test_reproducible_and_independent_of_chunking():
    a = stability_scan(120, depths=(2, 4), widths=(2,), seed=5, transient=False)
    b = stability_scan(120, depths=(2, 4), widths=(2,), seed=5, transient=False, chunk_elements=300)
    c = stability_scan(120, depths=(2, 4), widths=(2,), seed=6, transient=False)
    np.testing.assert_array_equal(a.abscissa, b.abscissa)
    np.testing.assert_array_equal(a.mu, b.mu)
    assert not np.array_equal(a.mu, c.mu)


def test_json_and_text(scan):
    payload = json.loads(scan.to_json())
    for key in ("fraction_stable", "worst_abscissa", "fraction_negative_definite", "max_transient_growth", "cases"):
        assert key in payload
    assert payload["cases"] == 600 and payload["closed_form"]["verdict_disagreements"] == 0
    assert sum(row["cases"] for row in payload["by_shape"]) == 600
    assert "fraction stable" in scan.to_text()


def test_approximate_inverses_lose_stability():
    m = approximate_inverse_map(mu_values=[0.1, 0.45], delta_values=[0.0, 30.0], cases_per_cell=60,
                                depths=(3, 6), widths=(2, 4), seed=1)
    assert m.fraction_stable.shape == (2, 2)
    np.testing.assert_array_equal(m.fraction_stable[:, 0], 1.0)        # delta = 0: exact inverses
    assert m.fraction_stable[1, 1] < 0.5                              # large errors near mu = 1/2
    assert m.worst_abscissa[1, 1] > 0
    text = m.to_text()
    assert "delta*" in text and "0.450" in text
    assert json.loads(json.dumps(m.to_dict()))["cases_per_cell"] == 60


def test_boundary_interpolation():
    m = InverseApproximationMap(mu=np.array([0.1, 0.2, 0.3]), delta=np.array([0.01, 0.1, 1.0]),
                                fraction_stable=np.array([[1.0, 1.0, 1.0], [1.0, 0.75, 0.25], [0.2, 0.1, 0.0]]),
                                worst_abscissa=np.zeros((3, 3)), median_abscissa=np.zeros((3, 3)), cases_per_cell=1)
    np.testing.assert_allclose(m.boundary, [np.inf, 10 ** -0.5, 0.0])


def test_bad_scan_arguments():
    with pytest.raises(ValueError, match="cases=0 must be >= 1"):
        stability_scan(0)
    with pytest.raises(ValueError, match="mu_range"):
        stability_scan(10, mu_range=(0.3, 0.2))
    with pytest.raises(ValueError, match="depths must not be empty"):
        stability_scan(10, depths=())
    with pytest.raises(ValueError, match="delta_values must be a 1-D increasing"):
        approximate_inverse_map(delta_values=[0.1, 0.01])


def test_bad_scan_ranges_and_map_arguments():
    with pytest.raises(TypeError, match=r"mu_range must be a pair \(low, high\), got 0.3"):
        stability_scan(10, mu_range=0.3)
    with pytest.raises(ValueError, match=r"std_range=\(0.0, 1.0\) must satisfy"):
        stability_scan(10, std_range=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"depths\[1\]=0 must be >= 1"):
        stability_scan(10, depths=(2, 0))
    with pytest.raises(ValueError, match=r"mu_values must be a 1-D sequence in \(0, 1\)"):
        approximate_inverse_map(mu_values=[0.0, 0.2])
    with pytest.raises(ValueError, match=r"level=1.5 must be in \(0, 1\)"):
        approximate_inverse_map(level=1.5)
    with pytest.raises(ValueError, match="seed=-1 must be >= 0"):
        approximate_inverse_map(seed=-1)
