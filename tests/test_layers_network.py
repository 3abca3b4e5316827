import networkx as nx
import pytest
import torch

import tpdynamics as tp
from tpdynamics.errors import SingularWeightError, StaleInverseError

DT = torch.float64
FORMS = tp.FEEDBACK_FORMS.names()


@pytest.mark.parametrize("nonlinearity", tp.NONLINEARITIES.names())
def test_exact_feedback_inverts_the_forward_mapping(nonlinearity):
    net = tp.LayeredNetwork.build([3, 5, 5, 5], nonlinearity=nonlinearity, feedback="exact", seed=1)
    h = torch.randn(7, 5, dtype=DT, generator=torch.Generator().manual_seed(0)) * 0.5
    for i in (2, 3):
        layer = net.layer(i)
        torch.testing.assert_close(layer.feedback_forward(layer(h)), h, rtol=1e-9, atol=1e-10)


def test_learned_feedback_initialised_to_pinv_is_a_left_inverse_for_square_layers():
    net = tp.LayeredNetwork.build([3, 5, 5], feedback="learned", seed=2)
    layer = net.layer(2)
    torch.testing.assert_close(layer.feedback.weight.detach(), torch.linalg.pinv(layer.weight.detach()))
    h = torch.randn(4, 5, dtype=DT)
    torch.testing.assert_close(layer.feedback_forward(layer(h)), h, rtol=1e-8, atol=1e-9)


def test_feedback_forms_and_their_trainable_parameters():
    for form in FORMS:
        net = tp.LayeredNetwork.build([2, 4, 4], feedback=form, seed=0)
        fb = net.layer(2).feedback
        assert isinstance(fb, tp.FEEDBACK_FORMS.get(form)) and fb.name == form
        names = {name for name, _ in fb.named_parameters()}
        assert names == ({"weight"} if form in ("learned", "original") else set())
    # the fixed (feedback-alignment) matrix is a buffer that no optimiser sees
    net = tp.LayeredNetwork.build([2, 4, 4], feedback="fixed", seed=0)
    assert "layers.1.feedback.weight" in dict(net.named_buffers())


def test_original_form_uses_the_lower_layer_nonlinearity():
    net = tp.LayeredNetwork.build([2, 4, 4, 4], nonlinearity="tanh", feedback="original", seed=0)
    assert net.layer(3).feedback.nonlinearity.spec == "tanh"
    assert net.layer(2).feedback.nonlinearity.spec == "tanh"
    h = torch.randn(3, 4, dtype=DT)
    q = net.layer(3).feedback.weight
    torch.testing.assert_close(net.layer(3).feedback_forward(h), torch.tanh(h @ q.T))


def test_forward_pass_and_shapes():
    net = tp.LayeredNetwork.build([3, 6, 6, 2], feedback="learned", seed=0)
    h0 = torch.randn(5, 3, dtype=DT)
    hs = net(h0)
    assert [h.shape for h in hs] == [(5, 3), (5, 6), (5, 6), (5, 2)]
    torch.testing.assert_close(hs[1], net.layer(1).nonlinearity(h0 @ net.layer(1).weight.T))
    assert net.layer_sizes == (3, 6, 6, 2) and net.depth == 3


def test_graph_is_the_connectivity_of_the_layers():
    net = tp.LayeredNetwork.build([3, 4, 4, 4], feedback="exact", seed=0)
    g = net.graph
    assert nx.is_frozen(g)
    assert sorted(g.nodes) == [0, 1, 2, 3, 4]
    assert g.nodes[0]["clamped"] and g.nodes[4]["role"] == "teaching" and g.nodes[3]["role"] == "output"
    kinds = {(u, v): d["kind"] for u, v, d in g.edges(data=True)}
    assert kinds == {(0, 1): "forward", (1, 2): "forward", (2, 3): "forward",
                     (2, 1): "feedback", (3, 2): "feedback", (4, 3): "teaching"}
    assert g.edges[3, 2]["label"] == "g_2" and g.edges[3, 2]["owner"] == 3
    assert g.edges[0, 1]["label"] == "f_1"


def test_float32_networks_work():
    net = tp.LayeredNetwork.build([3, 4, 4], feedback="exact", dtype=torch.float32, seed=0)
    h = net(torch.randn(2, 3))[-1]
    assert h.dtype == torch.float32
    torch.testing.assert_close(net.layer(2).feedback_forward(h), net(torch.randn(2, 3))[1] * 0 + net.layer(2).feedback_forward(h))


def test_exact_feedback_on_unequal_layers_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="square weights.*n_1 = ... = n_L.*feedback='learned'"):
        tp.LayeredNetwork.build([3, 4, 5], feedback="exact")
    with pytest.raises(SingularWeightError, match="needs a square weight"):
        tp.Layer(torch.randn(3, 4, dtype=DT), "identity", "exact")


def test_singular_weight_is_an_error():
    w = torch.ones(3, 3, dtype=DT)
    with pytest.raises(SingularWeightError, match="singular"):
        tp.Layer(w, "identity", "exact")


def test_unknown_feedback_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown feedback form feedback='inverse'.*exact, fixed, learned, original"):
        tp.LayeredNetwork.build([2, 3, 3], feedback="inverse")


@pytest.mark.parametrize("sizes, match", [([3], "at least the input and one layer"), ([3, 0], r"layer_sizes\[1\]=0 must be >= 1"),
                                          ([3, 2.5], "must be an int")])
def test_bad_layer_sizes(sizes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tp.LayeredNetwork.build(sizes)


def test_per_layer_lists_must_have_one_entry_per_layer():
    with pytest.raises(ValueError, match="nonlinearity has 1 entries, expected one per layer"):
        tp.LayeredNetwork.build([2, 3, 3], nonlinearity=["tanh"])
    with pytest.raises(ValueError, match="weight_init='he'"):
        tp.LayeredNetwork.build([2, 3, 3], weight_init="he")


def test_chained_sizes_are_checked():
    a = tp.Layer(torch.randn(4, 3, dtype=DT), "tanh")
    b = tp.Layer(torch.randn(2, 5, dtype=DT), "tanh")
    with pytest.raises(ValueError, match="layer 2 takes 5 inputs but layer 1 has 4 units"):
        tp.LayeredNetwork([a, b])


def test_stale_exact_inverse_is_detected_not_used():
    net = tp.LayeredNetwork.build([2, 3, 3], feedback="exact", seed=0)
    layer = net.layer(2)
    with torch.no_grad():
        layer.weight.mul_(1.5)  # e.g. an optimiser step that bypasses Sherman-Morrison
    with pytest.raises(StaleInverseError, match="sync_inverse"):
        layer.feedback_forward(torch.zeros(1, 3, dtype=DT))
    layer.sync_inverse()
    torch.testing.assert_close(layer.feedback.weight_inverse, torch.linalg.inv(layer.weight.detach()))
    # an in-place change that keeps the inverse valid (e.g. loading the same state) is accepted
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    layer.feedback_forward(torch.zeros(1, 3, dtype=DT))


def test_rank_one_update_on_non_exact_layers_just_adds():
    net = tp.LayeredNetwork.build([2, 3, 3], feedback="learned", seed=0)
    layer = net.layer(2)
    before = layer.weight.detach().clone()
    u, v = torch.ones(3, dtype=DT), torch.arange(3, dtype=DT)
    assert layer.rank_one_update(u, v) is None
    torch.testing.assert_close(layer.weight.detach(), before + torch.outer(u, v))
    with pytest.raises(ValueError, match=r"u of shape \(3,\)"):
        layer.rank_one_update(torch.ones(2, dtype=DT), v)


def test_build_is_reproducible_from_the_seed():
    a = tp.LayeredNetwork.build([3, 4, 4], feedback="fixed", seed=7)
    b = tp.LayeredNetwork.build([3, 4, 4], feedback="fixed", seed=7)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(va, vb)
    c = tp.LayeredNetwork.build([3, 4, 4], feedback="fixed", seed=8)
    assert not torch.equal(a.layer(1).weight, c.layer(1).weight)


def test_orthogonal_initialisation_is_orthogonal():
    net = tp.LayeredNetwork.build([4, 4, 4], weight_init="orthogonal", weight_scale=1.0 / 2, seed=0)
    w = net.layer(2).weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(4, dtype=DT), rtol=1e-12, atol=1e-12)
