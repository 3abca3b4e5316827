"""Symbolic Jacobians (sympy, from the same layer objects) == assembled == autograd; the closed form derived."""
import numpy as np
import pytest
import sympy
import torch

import tpdynamics as tp
from analysis import (MAX_STATE_SIZE, autograd_jacobian, derive_exact_inverse_spectrum, exact_inverse_eigenvalues,
                      exact_inverse_similarity_residual, jacobian, symbolic_dynamics, symbolic_jacobian)

from .problems import make_problem

DT = torch.float64


def _random_state(dyn, seed, nonlinearity):
    """A random point (not only the forward pass); inside atanh's domain for tanh layers."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(dyn.batch_size, dyn.state_size, generator=g, dtype=DT)
    return 0.9 * torch.tanh(state) if nonlinearity == "tanh" else state


@pytest.mark.parametrize("form", tp.FEEDBACK_FORMS.names())
@pytest.mark.parametrize("nonlinearity", tp.NONLINEARITIES.names())
def test_symbolic_equals_assembled_equals_autograd(form, nonlinearity):
    net, h0, label, dyn = make_problem((2, 3, 3, 3), feedback=form, nonlinearity=nonlinearity, output=nonlinearity,
                                       mu=0.35, tau=0.8, batch=4, seed=3)
    state = _random_state(dyn, 7, nonlinearity)
    assembled = jacobian(dyn, state).to_dense()
    np.testing.assert_allclose(symbolic_jacobian(dyn, state), assembled.numpy(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(symbolic_jacobian(dyn, state, backend="torch"), assembled, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(autograd_jacobian(dyn, state), assembled, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("teaching", ["free", "fixed", "loss"])
def test_symbolic_teaching_signals(teaching):
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.1), "loss": dict(eta_hat=0.3)}[teaching]
    net, h0, label, dyn = make_problem((2, 3, 3), mu=0.25, tau=1.7, batch=3, **kwargs)
    state = _random_state(dyn, 1, "leaky_relu")
    np.testing.assert_allclose(symbolic_jacobian(dyn, state), jacobian(dyn, state).to_dense().numpy(),
                               rtol=1e-10, atol=1e-12)
    model = symbolic_dynamics(net, teaching=teaching)
    assert model.mu in model.jacobian.free_symbols and model.tau in model.jacobian.free_symbols
    # d(dh_L/dt)/dh_L = (-1 + mu c) / tau on the diagonal, with c read off the teaching signal
    c = {"free": 1, "fixed": 0, "loss": 1 - model.eta_hat if model.eta_hat is not None else 0}[teaching]
    assert sympy.simplify(model.jacobian[-1, -1] - (-1 + model.mu * c) / model.tau) == 0


def test_constant_entries_broadcast_to_the_batch():
    """A linear network has a Jacobian with no state dependence: every entry is a constant or depends only on
    mu and tau. Lambdifying the Matrix as a whole would mix scalars and (B,)-arrays; ours stacks (B, N, N)."""
    net, h0, label, dyn = make_problem((2, 3, 3), nonlinearity="identity", output="identity", batch=5, free=True)
    state = _random_state(dyn, 2, "identity")
    model = symbolic_dynamics(net)
    assert not (model.jacobian.free_symbols & set(model.state))
    for backend in ("numpy", "torch"):
        out = symbolic_jacobian(dyn, state, backend=backend)
        assert tuple(out.shape) == (5, 6, 6)
        expected = jacobian(dyn, state).to_dense()
        np.testing.assert_allclose(np.asarray(out), expected.numpy(), rtol=1e-12, atol=1e-14)


def test_lambdified_function_takes_mu_and_tau():
    net, h0, label, dyn = make_problem((2, 3, 3), feedback="learned", batch=2, free=True)
    fn = symbolic_dynamics(net).lambdify_jacobian("numpy")
    state = dyn.initial_state().detach().numpy()
    for mu, tau in ((0.1, 1.0), (0.45, 3.0)):
        other = tp.MixtureDynamics(net, h0, mu=mu, tau=tau)
        np.testing.assert_allclose(fn(state, h0.numpy(), None, mu, tau),
                                   jacobian(other, dyn.initial_state()).to_dense().numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="mu and tau"):
        fn(state, h0.numpy())


def test_network_too_large_for_the_symbolic_path():
    net, h0, label, dyn = make_problem((4, 16, 16, 16), batch=1)
    with pytest.raises(ValueError, match=rf"state size N = 48.*max_state_size={MAX_STATE_SIZE}.*analysis.jacobian"):
        symbolic_jacobian(dyn, dyn.initial_state())
    with pytest.raises(ValueError, match="autograd_jacobian"):
        symbolic_dynamics(net)
    with pytest.raises(ValueError, match="max_state_size=8"):
        symbolic_dynamics(tp.LayeredNetwork.build([2, 3, 3, 3]), max_state_size=8)


def test_bad_symbolic_input():
    net, h0, label, dyn = make_problem((2, 3, 3), batch=2)
    with pytest.raises(ValueError, match="state has 5 features"):
        symbolic_jacobian(dyn, torch.zeros(2, 5, dtype=DT))
    with pytest.raises(ValueError, match="teaching='target' is not valid"):
        symbolic_dynamics(net, teaching="target")
    with pytest.raises(ValueError, match="backend='jax' is not valid"):
        symbolic_dynamics(net).lambdify_jacobian("jax")


def test_closed_form_spectrum_is_derived_for_every_depth():
    derivation = derive_exact_inverse_spectrum()
    assert derivation.interior_residual == 0 and derivation.boundary_residual == 0 and derivation.verified
    s = derivation.symbols
    expected = (-1 + 2 * sympy.sqrt(s["mu"] * (1 - s["mu"])) * sympy.cos(s["k"] * sympy.pi / (s["L"] + 1))) / s["tau"]
    assert sympy.simplify(derivation.eigenvalue - expected) == 0
    for L, mu, tau in ((1, 0.2, 1.0), (3, 0.3, 2.0), (7, 0.45, 0.5)):
        np.testing.assert_allclose(derivation.evaluate(L, mu, tau), exact_inverse_eigenvalues(L, mu, tau), rtol=1e-14)


@pytest.mark.parametrize("depth", [2, 3])
def test_derived_eigenvalues_are_the_roots_of_the_characteristic_polynomial(depth):
    """Independent of the ansatz: sympy's own eigenvalues of T = tridiag(1-mu, -1, mu)/tau."""
    mu, tau = sympy.symbols("mu tau", positive=True)
    T = sympy.zeros(depth, depth)
    for i in range(depth):
        T[i, i] = -1 / tau
        if i:
            T[i, i - 1], T[i - 1, i] = (1 - mu) / tau, mu / tau
    derivation = derive_exact_inverse_spectrum()
    s = derivation.symbols
    formula = derivation.eigenvalue.subs({s["mu"]: mu, s["tau"]: tau, s["L"]: depth})
    lam = sympy.Symbol("lambda")
    charpoly = T.charpoly(lam).as_expr()
    for k in range(1, depth + 1):
        root = formula.subs(s["k"], k)
        assert sympy.simplify(charpoly.subs(lam, root)) == 0


def test_block_similarity_on_symbolic_blocks():
    """S^-1 J S = T kron I for generic (symbolic) 2x2 forward Jacobians and any teaching slope c."""
    residual = exact_inverse_similarity_residual(depth=3, width=2)
    assert residual.shape == (6, 6) and residual.is_zero_matrix


def test_bad_symbolic_arguments():
    net, h0, label, dyn = make_problem((2, 3, 3), batch=2, target=lambda out: out + 0.1)
    with pytest.raises(TypeError, match="dynamics must be a tpdynamics MixtureDynamics .*got LayeredNetwork"):
        symbolic_jacobian(net, dyn.initial_state())
    with pytest.raises(TypeError, match="network must be a tpdynamics LayeredNetwork, got MixtureDynamics"):
        symbolic_dynamics(dyn)
    fn = symbolic_dynamics(net, teaching="fixed").lambdify_jacobian("numpy")
    with pytest.raises(ValueError, match="'fixed' teaching signal needs teaching_values"):
        fn(dyn.initial_state().detach().numpy(), h0.numpy(), None, 0.2, 1.0)
    with pytest.raises(ValueError, match=r"depth \* width = 15 is too large.*keep it <= 12"):
        exact_inverse_similarity_residual(depth=5, width=3)
