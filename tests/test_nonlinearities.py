import math

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tpdynamics as tp
from tpdynamics.errors import InverseDomainError

# every registered nonlinearity (read at collection time), plus parameter variants
SPECS = list(dict.fromkeys(tp.NONLINEARITIES.names() + ["leaky_relu:0.1", "leaky_relu:0.35", "leaky_relu:2.5"]))


def test_registry_lists_the_three_required_families():
    assert {"identity", "leaky_relu", "tanh"} <= set(tp.NONLINEARITIES.names())


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trip(spec):
    s = tp.get_nonlinearity(spec)
    assert tp.get_nonlinearity(s.spec) == s
    assert tp.get_nonlinearity(s) is s


def test_leaky_relu_default_slope_is_the_thesis_value():
    assert tp.get_nonlinearity("leaky_relu").negative_slope == 0.35
    assert tp.get_nonlinearity("leaky_relu:0.1").negative_slope == 0.1


@given(x=st.lists(st.floats(-20, 20), min_size=1, max_size=12), spec=st.sampled_from(SPECS))
@settings(max_examples=60, deadline=None)
def test_inverse_undoes_the_function(x, spec):
    s = tp.get_nonlinearity(spec)
    x = torch.tensor(x, dtype=torch.float64)
    if spec == "tanh":
        # atanh is ill-conditioned near |y| = 1 (condition ~ 1/(1 - y^2) ~ e^(2|x|)/4): stay where
        # round-off amplified by it is below the tolerance
        x = x.clamp(-5, 5)
    torch.testing.assert_close(s.inverse(s(x)), x, rtol=1e-9, atol=1e-9)


def check_nonlinearity(spec):
    """The check every registered nonlinearity must pass: derivative and inverse derivative == autograd."""
    s = tp.get_nonlinearity(spec)
    x = torch.linspace(-3, 3, 41, dtype=torch.float64)
    x = x[x != 0].requires_grad_()  # the leaky kink
    (grad,) = torch.autograd.grad(s(x).sum(), x)
    torch.testing.assert_close(s.derivative(x.detach()), grad)
    y = s(x.detach()).requires_grad_()
    (grad_inv,) = torch.autograd.grad(s.inverse(y).sum(), y)
    torch.testing.assert_close(s.inverse_derivative(y.detach()), grad_inv)


@pytest.mark.parametrize("spec", SPECS)
def test_derivatives_match_autograd(spec):
    check_nonlinearity(spec)


@pytest.mark.parametrize("spec", SPECS)
def test_sympy_expressions_are_the_same_functions(spec):
    s = tp.get_nonlinearity(spec)
    z = sympy.Symbol("z", real=True)
    f = sympy.lambdify(z, s.sympy_expression(z), "math")
    finv = sympy.lambdify(z, s.sympy_inverse(z), "math")
    fprime = sympy.lambdify(z, sympy.diff(s.sympy_expression(z), z), "math")
    for value in (-2.3, -0.4, 0.7, 1.9):
        t = torch.tensor(value, dtype=torch.float64)
        assert math.isclose(f(value), float(s(t)), rel_tol=1e-12)
        assert math.isclose(fprime(value), float(s.derivative(t)), rel_tol=1e-12)
        y = float(s(t))
        assert math.isclose(finv(y), value, rel_tol=1e-12)


def test_tanh_inverse_outside_its_domain_is_an_error_that_says_so():
    s = tp.get_nonlinearity("tanh")
    with pytest.raises(InverseDomainError, match=r"\|y\| < 1.*max \|y\| = 1\.5"):
        s.inverse(torch.tensor([0.2, 1.5]))
    with pytest.raises(InverseDomainError):
        s.inverse(torch.tensor([-1.0]))
    assert not torch.isfinite(s.inverse(torch.tensor([1.5]), check=False)).all()


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown nonlinearity.*'relu'.*identity, leaky_relu, tanh"):
        tp.get_nonlinearity("relu")


@pytest.mark.parametrize("spec, match", [
    ("leaky_relu:abc", "must be a number"),
    ("leaky_relu:0", "negative_slope=0.0 must be a finite number > 0"),
    ("leaky_relu:-0.1", "> 0"),
    ("tanh:2", "tanh takes no parameter"),
])
def test_bad_parameters(spec, match):
    with pytest.raises(ValueError, match=match):
        tp.get_nonlinearity(spec)


def test_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="spec string"):
        tp.get_nonlinearity(0.35)


def test_a_user_class_can_be_passed_instead_of_a_name():
    class Cube(tp.Nonlinearity):
        name = "cube"

        def __call__(self, x):
            return x ** 3 + x

        def derivative(self, x):
            return 3 * x ** 2 + 1

    assert isinstance(tp.get_nonlinearity(Cube()), Cube)
    with pytest.raises(TypeError, match="not a Nonlinearity subclass"):
        tp.get_nonlinearity(int)
