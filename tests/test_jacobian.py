"""Numeric Jacobians: assembled from the layers (block-sparse, pattern from the graph) == torch.func autograd."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tpdynamics as tp
from analysis import BlockJacobian, autograd_jacobian, block_pattern, jacobian

from .problems import make_problem

DT = torch.float64
FORMS = tp.FEEDBACK_FORMS.names()  # every registered variant, read at collection time
NONLINEARITIES = tp.NONLINEARITIES.names()


def _perturbed_state(dyn, scale=0.01, seed=1):
    g = torch.Generator().manual_seed(seed)
    start = dyn.initial_state()
    return start + scale * torch.randn(start.shape, generator=g, dtype=start.dtype)


def check_feedback_form(form, nonlinearity="tanh"):
    """The check every registered feedback form must pass: the assembled Jacobian (the form's own
    ``jacobian``) equals autograd through its ``forward``."""
    net, h0, label, dyn = make_problem((3, 4, 4, 4), feedback=form, nonlinearity=nonlinearity, output=nonlinearity,
                                       tau=1.5, mu=0.3)
    state = _perturbed_state(dyn)
    assembled = jacobian(dyn, state)
    assert isinstance(assembled, BlockJacobian)
    torch.testing.assert_close(assembled.to_dense(), autograd_jacobian(dyn, state), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_assembled_equals_autograd_for_every_form_and_nonlinearity(form, nonlinearity):
    check_feedback_form(form, nonlinearity)


@pytest.mark.parametrize("teaching", ["free", "fixed", "loss"])
def test_teaching_signal_enters_the_last_diagonal_block(teaching):
    kwargs = {"free": dict(free=True), "fixed": dict(target=lambda out: out + 0.1),
              "loss": dict(eta_hat=0.25)}[teaching]
    net, h0, label, dyn = make_problem((3, 4, 4, 4), mu=0.3, tau=2.0, **kwargs)
    state = _perturbed_state(dyn)
    J = jacobian(dyn, state)
    torch.testing.assert_close(J.to_dense(), autograd_jacobian(dyn, state), rtol=1e-10, atol=1e-12)
    c = {"free": 1.0, "fixed": 0.0, "loss": 0.75}[teaching]
    torch.testing.assert_close(J.block(2, 2), ((-1 + 0.3 * c) / 2.0 * torch.eye(4, dtype=DT)).expand(5, 4, 4))
    torch.testing.assert_close(J.block(0, 0), (-0.5 * torch.eye(4, dtype=DT)).expand(5, 4, 4))


@settings(max_examples=20, deadline=None)
@given(depth=st.integers(1, 4), width=st.integers(1, 5), mu=st.floats(0.01, 0.49), tau=st.floats(0.2, 5.0),
       seed=st.integers(0, 10_000), form=st.sampled_from(FORMS))
def test_assembled_equals_autograd_property(depth, width, mu, tau, seed, form):
    if form == "exact":
        sizes = [width + 1] + [width] * depth
    else:  # unequal widths are allowed without exact inverses
        sizes = [width + 1] + [width + (i % 2) for i in range(depth)]
    net, h0, label, dyn = make_problem(tuple(sizes), feedback=form, mu=mu, tau=tau, seed=seed, batch=3)
    state = _perturbed_state(dyn, seed=seed)
    torch.testing.assert_close(jacobian(dyn, state).to_dense(), autograd_jacobian(dyn, state), rtol=1e-10, atol=1e-12)


def test_block_pattern_is_read_from_the_graph():
    net, h0, label, dyn = make_problem((3, 4, 4, 4))
    assert block_pattern(net) == {(0, 0), (1, 1), (2, 2), (1, 0), (0, 1), (2, 1), (1, 2)}
    # a network whose layer 3 has no feedback mapping g_2 has no block (1, 2)
    partial = tp.LayeredNetwork.build([3, 4, 4, 4], feedback=[None, "exact", None])
    assert (1, 2) not in block_pattern(partial) and (0, 1) in block_pattern(partial)
    # the pattern is exactly the non-zero block structure of the autograd Jacobian
    dense = autograd_jacobian(dyn, _perturbed_state(dyn))
    nonzero = {(r, c) for r in range(3) for c in range(3)
               if bool((dense[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] != 0).any())}
    assert nonzero == set(block_pattern(net))


def test_exports_agree():
    net, h0, label, dyn = make_problem((3, 5, 5, 5, 5), feedback="learned")
    J = jacobian(dyn, _perturbed_state(dyn))
    dense = J.to_dense()
    for b in (0, 3):
        sparse = J.to_sparse(b)
        np.testing.assert_array_equal(sparse.toarray(), dense[b].numpy())
        np.testing.assert_array_equal(J.to_numpy(b), dense[b].numpy())
        assert sparse.nnz <= len(J.pattern) * 25
    torch.testing.assert_close(J.to_block_tridiagonal().to_dense(), dense)
    # the BlockTridiagonal solve of the foundation works on the exported blocks
    rhs = torch.randn(5, 20, dtype=DT, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(J.to_block_tridiagonal().solve(rhs), torch.linalg.solve(dense, rhs))
    assert J.select(2).batch_size == 1 and J.size == 20 and J.depth == 4


def test_float32_network():
    net, h0, label, dyn = make_problem((3, 4, 4), dtype=torch.float32)
    state = dyn.initial_state()
    J = jacobian(dyn, state)
    assert J.dtype == torch.float32
    torch.testing.assert_close(J.to_dense(), autograd_jacobian(dyn, state), rtol=1e-5, atol=1e-6)


def test_bad_state_and_arguments():
    net, h0, label, dyn = make_problem((3, 4, 4, 4))
    with pytest.raises(ValueError, match="state has 11 features.*expected 12"):
        jacobian(dyn, torch.zeros(5, 11, dtype=DT))
    with pytest.raises(ValueError, match="state must have 2 dimensions"):
        autograd_jacobian(dyn, torch.zeros(12, dtype=DT))
    with pytest.raises(ValueError, match="batch size 4, expected 5"):
        jacobian(dyn, torch.zeros(4, 12, dtype=DT))
    with pytest.raises(TypeError, match="state must be a torch.Tensor"):
        jacobian(dyn, np.zeros((5, 12)))
    with pytest.raises(TypeError, match="dynamics must be a tpdynamics NetworkDynamics"):
        jacobian(net, torch.zeros(5, 12, dtype=DT))
    J = jacobian(dyn, dyn.initial_state())
    with pytest.raises(ValueError, match="sample=7 must be an int in 0..4"):
        J.to_sparse(7)
    with pytest.raises(ValueError, match=r"block \(0, 0\) has shape"):
        BlockJacobian({(0, 0): torch.zeros(1, 3, 3)}, (4,))


def test_bad_block_jacobian_and_pattern_input():
    net, h0, label, dyn = make_problem((3, 4, 4, 4))
    with pytest.raises(TypeError, match="network must be a tpdynamics LayeredNetwork, got MixtureDynamics"):
        block_pattern(dyn)
    with pytest.raises(ValueError, match="needs at least one block"):
        BlockJacobian({}, (4,))
    with pytest.raises(ValueError, match=r"one batch size, got \[1, 2\]"):
        BlockJacobian({(0, 0): torch.zeros(1, 4, 4), (1, 1): torch.zeros(2, 4, 4)}, (4, 4))
    skip = BlockJacobian({(0, 0): torch.zeros(1, 2, 2), (0, 2): torch.zeros(1, 2, 2)}, (2, 2, 2))
    with pytest.raises(ValueError, match=r"block pattern \[\(0, 0\), \(0, 2\)\] is not block tridiagonal"):
        skip.to_block_tridiagonal()
    with pytest.raises(ValueError, match="sample=-1 must be an int in 0..0"):
        skip.to_numpy(-1)
