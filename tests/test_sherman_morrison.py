import pytest
import torch

import tpdynamics as tp
from tpdynamics.errors import SingularWeightError

DT = torch.float64


def _random_square(n, seed):
    g = torch.Generator().manual_seed(seed)
    return tp.robust_gaussian_matrix(n, n, threshold=0.4, generator=g, dtype=DT), g


def test_kept_inverse_matches_linalg_inv_after_many_rank_one_updates():
    w, g = _random_square(6, 0)
    layer = tp.Layer(w, "identity", "exact")
    records = []
    for _ in range(500):
        u = 0.05 * torch.randn(6, generator=g, dtype=DT)
        v = torch.randn(6, generator=g, dtype=DT)
        records.append(layer.rank_one_update(u, v, epsilon=0.1))
    expected = torch.linalg.inv(layer.weight.detach())
    torch.testing.assert_close(layer.feedback.weight_inverse, expected, rtol=1e-8, atol=1e-8)
    assert all(isinstance(r, tp.ShermanMorrisonRecord) for r in records)


def test_plain_update_is_the_sherman_morrison_formula():
    w, g = _random_square(5, 1)
    u, v = torch.randn(5, generator=g, dtype=DT), torch.randn(5, generator=g, dtype=DT)
    new_w, new_inv, rec = tp.robust_sherman_morrison(w, torch.linalg.inv(w), u, v, epsilon=0.0)
    torch.testing.assert_close(new_w, w + torch.outer(u, v))
    torch.testing.assert_close(new_inv, torch.linalg.inv(w + torch.outer(u, v)), rtol=1e-9, atol=1e-9)
    assert not rec.clipped and rec.beta == 1.0
    assert rec.denominator == pytest.approx(1 + float(v @ torch.linalg.inv(w) @ u))


# W, W^-1, z = W^-1 u and v are dyadic rationals, so W^-1 u and v^T W^-1 u = -1 are exact in floating
# point: W + u v^T is exactly singular and the computed denominator 1 + d is exactly 0.
_W = torch.tensor([[2.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=DT)
_W_INV = torch.tensor([[0.5, -0.25, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.0], [0.0, 0.0, 0.0, 1.0]],
                      dtype=DT)
_Z = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=DT)
_V = torch.tensor([0.5, -0.5, 1.0, 1.0], dtype=DT)  # v^T z = -1


def test_robust_branch_fires_and_keeps_the_weight_invertible():
    w, w_inv, v = _W, _W_INV, _V
    u = w @ _Z
    assert torch.equal(w @ w_inv, torch.eye(4, dtype=DT)) and torch.equal(w_inv @ u, _Z)
    assert float(v @ (w_inv @ u)) == -1.0
    singular = w + torch.outer(u, v)
    assert torch.linalg.svdvals(singular).min() < 1e-12
    epsilon = 0.1
    new_w, new_inv, rec = tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=epsilon)
    assert rec.clipped and rec.denominator == 0.0
    assert rec.beta == pytest.approx(1 / (epsilon - rec.d)) and 0 < rec.beta < 1
    torch.testing.assert_close(new_w, w + rec.beta * torch.outer(u, v))
    torch.testing.assert_close(new_w @ new_inv, torch.eye(4, dtype=DT), rtol=1e-12, atol=1e-12)
    # det(W + beta u v^T) = det(W) (1 + beta d) = det(W) epsilon beta: bounded away from 0
    ratio = torch.linalg.det(new_w) / torch.linalg.det(w)
    assert float(ratio) == pytest.approx(epsilon * rec.beta)
    with pytest.raises(SingularWeightError, match="zero to round-off.*epsilon > 0"):
        tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=0.0)


def test_singularity_criterion_scales_with_the_magnitudes_that_enter_d():
    w, w_inv, v = _W, _W_INV, _V
    # a small but genuine denominator with O(1) magnitudes: 1 + d = 2^-30, far above round-off
    u = w @ (_Z * (1.0 - 2.0 ** -30))
    _, new_inv, rec = tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=0.0)
    assert rec.denominator == pytest.approx(2.0 ** -30, rel=1e-6)
    torch.testing.assert_close(new_inv @ (w + torch.outer(u, v)), torch.eye(4, dtype=DT), rtol=0, atol=1e-5)
    # the same exact denominator when W^-1 u carries a component 2^40 w with v^T w = 0: v^T W^-1 u cancels
    # terms of size 2^40, so its computed value is off by ~ n eps 2^40 >> 2^-30 and must be refused
    w_null = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=DT)
    assert float(v @ w_null) == 0.0
    big_u = w @ (_Z * (1.0 - 2.0 ** -30) + 2.0 ** 40 * w_null)
    assert tp.denominator_round_off(w_inv, big_u, v) > 1e3 * 2.0 ** -30
    assert tp.denominator_round_off(w_inv, u, v) < 2.0 ** -40
    with pytest.raises(SingularWeightError, match="rounding-error bound"):
        tp.robust_sherman_morrison(w, w_inv, big_u, v, epsilon=0.0)


def test_mini_batch_update_is_rejected_because_it_is_not_rank_one():
    w, _ = _random_square(3, 3)
    with pytest.raises(ValueError, match="not rank one: use batch size 1"):
        tp.robust_sherman_morrison(w, torch.linalg.inv(w), torch.ones(2, 3, dtype=DT), torch.ones(2, 3, dtype=DT))


def test_robust_initialisation_meets_its_threshold_and_is_reproducible():
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        m = tp.robust_gaussian_matrix(8, 8, threshold=0.4, generator=g, dtype=DT)
        assert tp.singular_value_product(m) > 0.4
        again = tp.robust_gaussian_matrix(8, 8, threshold=0.4, generator=torch.Generator().manual_seed(seed), dtype=DT)
        torch.testing.assert_close(m, again)
    scaled = tp.robust_gaussian_matrix(8, 8, threshold=0.4, scale=0.5, generator=torch.Generator().manual_seed(0), dtype=DT)
    assert tp.singular_value_product(scaled / 0.5) > 0.4


def test_impossible_threshold_is_reported():
    with pytest.raises(SingularWeightError, match="lower the threshold"):
        tp.robust_gaussian_matrix(3, 3, threshold=1e6, max_tries=5, generator=torch.Generator().manual_seed(0))
