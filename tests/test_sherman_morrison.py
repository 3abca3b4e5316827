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


def test_robust_branch_fires_and_keeps_the_weight_invertible():
    w, g = _random_square(4, 2)
    w_inv = torch.linalg.inv(w)
    v = torch.randn(4, generator=g, dtype=DT)
    z = torch.randn(4, generator=g, dtype=DT)
    u = w @ z * (-1.0 / float(v @ z))  # d = v^T W^-1 u = -1: W + u v^T is exactly singular
    singular = w + torch.outer(u, v)
    assert torch.linalg.svdvals(singular).min() < 1e-10
    epsilon = 0.1
    new_w, new_inv, rec = tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=epsilon)
    assert rec.clipped and abs(rec.denominator) < epsilon
    assert rec.beta == pytest.approx(1 / (epsilon - rec.d)) and 0 < rec.beta < 1
    torch.testing.assert_close(new_w, w + rec.beta * torch.outer(u, v))
    torch.testing.assert_close(new_w @ new_inv, torch.eye(4, dtype=DT), rtol=1e-9, atol=1e-9)
    # det(W + beta u v^T) = det(W) (1 + beta d) = det(W) epsilon beta: bounded away from 0
    ratio = torch.linalg.det(new_w) / torch.linalg.det(w)
    assert float(ratio) == pytest.approx(epsilon * rec.beta)
    with pytest.raises(SingularWeightError, match="zero to round-off.*epsilon > 0"):
        tp.robust_sherman_morrison(w, w_inv, u, v, epsilon=0.0)


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
