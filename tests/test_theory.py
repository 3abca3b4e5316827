import pytest
import torch

import tpdynamics as tp
from tpdynamics.theory import layer_factor, mixture_displacement_first_order, propagate_error

DT = torch.float64


def test_layer_factor():
    assert layer_factor(0.2, 4, 4) == pytest.approx(0.25)
    assert layer_factor(0.2, 4, 1) == pytest.approx(0.25 ** 4)
    with pytest.raises(ValueError, match="layer index i=0 must be in 1..L=4"):
        layer_factor(0.2, 4, 0)


def test_propagated_error_is_the_product_of_inverse_jacobians():
    net = tp.LayeredNetwork.build([3, 4, 4, 4], nonlinearity="leaky_relu:0.35", feedback="exact", seed=0)
    h0 = torch.randn(1, 3, dtype=DT)
    hs = net(h0)
    e = torch.randn(1, 4, dtype=DT)
    with torch.no_grad():
        out = propagate_error(net, hs, e)
        jf = [None] + [net.layer(i).jacobian(hs[i - 1])[0] for i in range(1, 4)]
        expected_1 = torch.linalg.solve(jf[3] @ jf[2], e[0])  # (J_f3 J_f2)^-1 e
        torch.testing.assert_close(out[0][0], expected_1)
        torch.testing.assert_close(out[2], e)


def test_displacement_prediction_has_the_layer_factors():
    net = tp.LayeredNetwork.build([3, 4, 4], nonlinearity="identity", feedback="exact", seed=1)
    h0, y = torch.randn(2, 3, dtype=DT), torch.randn(2, 4, dtype=DT)
    with torch.no_grad():
        pred = mixture_displacement_first_order(net, h0, y, mu=0.2, eta_hat=0.1)
        e = net(h0)[-1] - y
        torch.testing.assert_close(pred[1], -0.1 * 0.25 * e)
        torch.testing.assert_close(pred[0], -0.1 * 0.25 ** 2 * e @ net.layer(2).feedback.weight_inverse.T)
