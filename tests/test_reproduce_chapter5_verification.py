"""Helpers of the chapter-5 verification experiments (figs 5.2-5.4, 5.6, 5.9-5.12) against hand-made cases."""
import math

import pytest
import torch

import tpdynamics as tp
from analysis.reproduce.experiments.factorisation import (factorized_pseudo_inverse, robust_gaussian_diagonal,
                                                          total_jacobian)
from analysis.reproduce.experiments.gauss_newton import angle, gauss_newton_steps, output_jacobians
from analysis.reproduce.experiments.pseudo_inverse import expected_fixed_point, regularized_pseudo_inverse, run_curve
from analysis.reproduce.experiments.toy import toy_gauss_newton_step
from tpdynamics.training import WhiteNoise, gauss_newton_targets

D = torch.float64


# -- figure 5.6: full vs block-diagonal Gauss-Newton ------------------------------------------------------------------
def test_output_jacobians_multiply_from_the_output_down():
    a, b = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=D), torch.tensor([[0.0, 1.0], [3.0, 0.0]], dtype=D)
    blocks = output_jacobians(torch.stack([a, b]))  # J_{h_2} = a, J_{h_3} = b
    torch.testing.assert_close(blocks[1], b)  # J_2 = dh_3/dh_2
    torch.testing.assert_close(blocks[0], b @ a)  # J_1 = J_{h_3} J_{h_2}


def test_gauss_newton_angle_of_two_scalar_blocks():
    # bar J = [1, 2]: full step ~ (1, 2), block-diagonal ~ (1, 1/2), cos = 2|ab| / (a^2 + b^2) = 4/5
    blocks = torch.tensor([1.0, 2.0], dtype=D).reshape(1, 1, 2, 1, 1)
    error = torch.tensor([[[0.7]]], dtype=D)
    full, block = gauss_newton_steps(blocks, error)
    torch.testing.assert_close(full, torch.tensor([[-0.14, -0.28]], dtype=D))
    torch.testing.assert_close(block, torch.tensor([[-0.7, -0.35]], dtype=D))
    assert float(angle(full, block)) == pytest.approx(math.acos(0.8), abs=1e-12)


def test_block_diagonal_curvature_gives_zero_angle():
    # two samples whose Jacobians touch different blocks: G = bar J^T bar J is diagonal, so both steps agree
    blocks = torch.tensor([[[1.0], [0.0]], [[0.0], [3.0]]], dtype=D).reshape(1, 2, 2, 1, 1)
    error = torch.tensor([[[1.0], [-2.0]]], dtype=D)
    full, block = gauss_newton_steps(blocks, error)
    torch.testing.assert_close(full, block)
    assert float(angle(full, block)) == pytest.approx(0.0, abs=1e-7)


def test_batch_one_angles_are_acute():
    # cos(alpha) = (L - 1) e^T (J J^T)^-1 e / (|full| |block|) > 0 for invertible square blocks and one sample
    g = tp.make_generator(3)
    layer_jacobians = torch.randn(200, 1, 3, 4, 4, generator=g, dtype=D)
    full, block = gauss_newton_steps(output_jacobians(layer_jacobians), torch.randn(200, 1, 4, generator=g, dtype=D))
    assert (angle(full, block) < math.pi / 2).all()


def test_block_diagonal_step_matches_the_package_gauss_newton_targets():
    network = tp.LayeredNetwork.build((3, 4, 4, 4), nonlinearity="leaky_relu:0.35", feedback=None, seed=2)
    g = tp.make_generator(5)
    h0 = torch.randn(1, 3, generator=g, dtype=D)
    activations = network(h0)
    error = torch.randn(1, 4, generator=g, dtype=D)
    layer_jacobians = torch.stack([network.layer(k).jacobian(activations[k - 1])[0] for k in (2, 3)])
    _, block = gauss_newton_steps(output_jacobians(layer_jacobians).unsqueeze(0).unsqueeze(0), error.unsqueeze(0))
    reference = gauss_newton_targets(network, activations, error, 1.0, factorized=False)
    torch.testing.assert_close(block, torch.cat([reference[0], reference[1]], dim=-1))


# -- figure 5.12: Lemma 4.8 -------------------------------------------------------------------------------------------
def _draw(sizes, seed):
    g = tp.make_generator(seed)
    n1, n2, n3 = sizes
    weights = [tp.robust_gaussian_matrix(n2, n1, generator=g), tp.robust_gaussian_matrix(n3, n2, generator=g)]
    slopes = [robust_gaussian_diagonal(n2, generator=g), robust_gaussian_diagonal(n3, generator=g)]
    return weights, slopes


def test_total_jacobian_order():
    weights, slopes = _draw((5, 4, 3), 0)
    torch.testing.assert_close(total_jacobian(weights, slopes), slopes[1] @ weights[1] @ slopes[0] @ weights[0])


@pytest.mark.parametrize("sizes, factorizes", [((5, 5, 5), True), ((7, 5, 5), True), ((5, 5, 3), False)])
def test_factorisation_follows_lemma_4_8(sizes, factorizes):
    weights, slopes = _draw(sizes, 1)
    gap = (factorized_pseudo_inverse(weights, slopes) - torch.linalg.pinv(total_jacobian(weights, slopes))).abs().max()
    assert (float(gap) < 1e-9) == factorizes


def test_factorized_pseudo_inverse_matches_the_package_e_gn():
    network = tp.LayeredNetwork.build((4, 6, 5, 5), nonlinearity="leaky_relu:0.35", feedback=None, seed=4)
    g = tp.make_generator(6)
    activations = network(torch.randn(1, 4, generator=g, dtype=D))
    error = torch.randn(1, 5, generator=g, dtype=D)
    weights = [network.layer(k).weight.detach() for k in (2, 3)]
    slopes = [torch.diag(network.layer(k).derivative(activations[k - 1])[0]) for k in (2, 3)]
    reference = gauss_newton_targets(network, activations, error, 1.0, factorized=True)[0]
    torch.testing.assert_close(-error @ factorized_pseudo_inverse(weights, slopes).T, reference)


def test_robust_gaussian_diagonal_meets_the_threshold():
    g = tp.make_generator(7)
    for _ in range(20):
        d = robust_gaussian_diagonal(4, threshold=0.8, generator=g)
        assert torch.count_nonzero(d - torch.diag(torch.diagonal(d))) == 0
        assert tp.singular_value_product(d) > 0.8


# -- figures 5.9-5.11: learning the pseudo-inverse -------------------------------------------------------------------
def test_expected_fixed_point_reduces_to_the_theorems():
    g = tp.make_generator(8)
    square = tp.robust_gaussian_matrix(4, 4, generator=g)
    torch.testing.assert_close(expected_fixed_point(square, torch.eye(4, dtype=D) * 2.0, 0.0), torch.linalg.inv(square))
    wide = tp.robust_gaussian_matrix(3, 5, generator=g)  # contracting: Thm 4.6 gives W^+ for white noise
    torch.testing.assert_close(expected_fixed_point(wide, torch.eye(5, dtype=D), 0.0), torch.linalg.pinv(wide))
    torch.testing.assert_close(regularized_pseudo_inverse(wide, 0.0), torch.linalg.pinv(wide))
    tall = tp.robust_gaussian_matrix(5, 3, generator=g)  # expanding, white noise of variance 4: Thm 4.7
    torch.testing.assert_close(expected_fixed_point(tall, 4.0 * torch.eye(3, dtype=D), 0.2),
                               regularized_pseudo_inverse(tall, 0.2, noise_std=2.0))
    assert expected_fixed_point(tall, torch.eye(3, dtype=D), 0.0) is None  # many left inverses
    mixing = torch.randn(4, 2, generator=g, dtype=D)
    assert expected_fixed_point(square, mixing @ mixing.T, 0.0) is None  # rank-deficient covariance


def test_learned_inverse_follows_its_mean_dynamics_to_the_inverse():
    g = tp.make_generator(9)
    weight = tp.robust_gaussian_matrix(3, 3, generator=g)
    q0 = tp.robust_gaussian_matrix(3, 3, generator=g)
    source = WhiteNoise(3)
    record = run_curve(weight, q0, source, form="learned", iterations=400, rates=(0.02, 0.02), batch_size=1,
                       lambda_=0.0, record_every=100, evaluation=source.sample(200, generator=g), generator=g)
    measured, predicted = record["distance_pinv"][-1], record["predicted_distance_pinv"][-1]
    assert measured < 0.5 * record["distance_pinv"][0]
    assert 0.5 < measured / predicted < 2.0
    assert record["reconstruction"][-1] < record["reconstruction"][0]


# -- figures 5.2-5.4: the toy example --------------------------------------------------------------------------------
def test_toy_gauss_newton_reaches_the_linear_optimum_in_one_step():
    g = tp.make_generator(10)
    w2 = tp.robust_gaussian_matrix(2, 2, generator=g)
    w1, w1_star = torch.randn(2, 1, generator=g, dtype=D), torch.randn(2, 1, generator=g, dtype=D)
    teacher = tp.LayeredNetwork([tp.Layer(w1_star, "identity"), tp.Layer(w2, "identity")])
    student = tp.LayeredNetwork([tp.Layer(w1, "identity"), tp.Layer(w2, "identity")])
    h0 = torch.randn(3, 1, generator=g, dtype=D)
    torch.testing.assert_close(toy_gauss_newton_step(student, h0, teacher(h0)[-1]), w1_star - w1)


def test_toy_gauss_newton_step_for_one_leaky_relu_sample_is_eq_5_20():
    w2 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=D)
    w1, w1_star = torch.tensor([[0.4], [0.9]], dtype=D), torch.tensor([[-1.0], [-0.2]], dtype=D)
    s = "leaky_relu:0.1"
    teacher = tp.LayeredNetwork([tp.Layer(w1_star, s), tp.Layer(w2, "identity")])
    student = tp.LayeredNetwork([tp.Layer(w1, s), tp.Layer(w2, "identity")])
    h0 = torch.tensor([[1.5]], dtype=D)
    step = toy_gauss_newton_step(student, h0, teacher(h0)[-1])
    # eq. 5.20: (1/h0) D_s^-1 (s(W1* h0) - s(W1 h0)); here D_s = I and s(W1* h0) = 0.1 W1* h0
    torch.testing.assert_close(step, 0.1 * w1_star - w1)
