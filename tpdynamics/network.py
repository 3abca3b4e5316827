"""The layered network: a list of :class:`Layer` objects and the ``networkx`` graph of their connections.

The graph (figures 4.1 and 6.1 of the thesis) is the single source of truth for
connectivity: the dynamics modules read which mapping feeds which layer from it, and
the analysis layer reads the block pattern of the Jacobian from it.

Nodes are the integers ``0..L+1``: ``0`` is the clamped input ``h_0``, ``1..L`` the layers,
``L+1`` the teaching node (the "virtual teaching layer" of eq. 6.3). Each node has the
attributes ``name`` (``"h_0"`` ... ``"h_L"``, ``"target"``), ``role`` (``"input"``,
``"hidden"``, ``"output"``, ``"teaching"``), ``size`` and ``clamped``.
Edges carry ``kind`` and ``label``:

* ``forward``  ``i-1 -> i``, label ``f_i``, owned by layer ``i``;
* ``feedback`` ``i+1 -> i``, label ``g_i``, owned by layer ``i+1``;
* ``teaching`` ``L+1 -> L``, label ``g_L`` (``g_L = h_L^trgt``, eq. 6.3).

``owner`` is the index of the :class:`Layer` that computes the mapping (``None`` for the teaching edge).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import torch
from torch import nn

from .validation import check_int, check_memory, check_positive, check_tensor
from .layers import FEEDBACK_FORMS, Layer
from .nonlinearities import get_nonlinearity
from .sherman_morrison import robust_gaussian_matrix

FORWARD, FEEDBACK, TEACHING = "forward", "feedback", "teaching"


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (a fresh random seed if ``None``)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(check_int("seed", seed))
    return generator


class LayeredNetwork(nn.Module):
    """A layered network ``h_i = f_i(h_{i-1})``, ``i = 1..L``, with feedback mappings ``g_i``.

    Parameters
    ----------
    layers : sequence of Layer
        Layers ``1..L``; consecutive sizes must chain (``layers[i].in_features ==
        layers[i-1].out_features``).

    Attributes
    ----------
    layers : nn.ModuleList
        ``layers[i-1]`` is layer ``i`` (Python is 0-based, the thesis 1-based). Use
        :meth:`layer` for thesis indexing.
    graph : networkx.DiGraph
        Frozen connectivity graph (see the module docstring).
    """

    def __init__(self, layers: Sequence[Layer]):
        super().__init__()
        layers = list(layers)
        if not layers:
            raise ValueError("a LayeredNetwork needs at least one layer.")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{k}] is a {type(layer).__name__}, expected a tpdynamics Layer.")
            if k and layer.in_features != layers[k - 1].out_features:
                raise ValueError(f"layer {k + 1} takes {layer.in_features} inputs but layer {k} has "
                                 f"{layers[k - 1].out_features} units.")
        dtypes = {layer.weight.dtype for layer in layers}
        if len(dtypes) > 1:
            raise TypeError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}.")
        self.layers = nn.ModuleList(layers)
        self.graph = self._build_graph()

    # -- structure ------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of layers ``L`` (excluding the input)."""
        return len(self.layers)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``."""
        return (self.layers[0].in_features,) + tuple(layer.out_features for layer in self.layers)

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].weight.dtype

    @property
    def teaching_node(self) -> int:
        return self.depth + 1

    def layer(self, i: int) -> Layer:
        """Layer ``i`` in thesis numbering (``1..L``)."""
        if not 1 <= i <= self.depth:
            raise IndexError(f"layer index {i} is outside 1..{self.depth}")
        return self.layers[i - 1]

    @property
    def feedback_forms(self) -> tuple[str | None, ...]:
        """Feedback form of each layer ``1..L`` (``None`` where there is none)."""
        return tuple(layer.feedback_form for layer in self.layers)

    def _build_graph(self) -> nx.DiGraph:
        L = self.depth
        sizes = self.layer_sizes
        g = nx.DiGraph()
        for i in range(L + 1):
            role = "input" if i == 0 else ("output" if i == L else "hidden")
            g.add_node(i, name=f"h_{i}", role=role, size=sizes[i], clamped=(i == 0))
        g.add_node(L + 1, name="target", role="teaching", size=sizes[L], clamped=True)
        for i in range(1, L + 1):
            g.add_edge(i - 1, i, kind=FORWARD, label=f"f_{i}", owner=i)
            if self.layers[i - 1].feedback is not None:
                g.add_edge(i, i - 1, kind=FEEDBACK, label=f"g_{i - 1}", owner=i,
                           form=self.layers[i - 1].feedback_form)
        g.add_edge(L + 1, L, kind=TEACHING, label=f"g_{L}", owner=None)
        return nx.freeze(g)

    def in_edges(self, node: int) -> list[tuple[int, str, int | None]]:
        """``(source, kind, owner)`` of every edge into ``node``, read from :attr:`graph`."""
        return [(u, data["kind"], data["owner"]) for u, _, data in self.graph.in_edges(node, data=True)]

    # -- computation ----------------------------------------------------------------------------
    def forward(self, h0: torch.Tensor) -> list[torch.Tensor]:
        """Forward pass ``h_i = f_i(h_{i-1})`` (eq. 3.1).

        Parameters
        ----------
        h0 : Tensor, shape (B, n_0)

        Returns
        -------
        list of Tensor
            ``[h_0, h_1, ..., h_L]``, ``h_i`` of shape ``(B, n_i)``.
        """
        check_tensor("h0", h0, ndim=2, size=self.layer_sizes[0], dtype=self.dtype)
        activations = [h0]
        for layer in self.layers:
            activations.append(layer(activations[-1]))
        return activations

    def describe(self) -> dict:
        """JSON-ready summary: sizes, nonlinearities, feedback forms."""
        return {
            "layers": list(self.layer_sizes),
            "nonlinearities": [layer.nonlinearity.spec for layer in self.layers],
            "feedback": list(self.feedback_forms),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def build(cls, layer_sizes: Sequence[int], *, nonlinearity="leaky_relu:0.35", output_nonlinearity=None,
              feedback="exact", feedback_init: str | None = None, seed: int | None = 0,
              generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
              weight_scale: float | str = "fan_in", init_threshold: float = 0.4,
              weight_init: str = "gaussian") -> "LayeredNetwork":
        """Build a random network.

        Parameters
        ----------
        layer_sizes : sequence of int
            ``(n_0, n_1, ..., n_L)``, ``L >= 1``.
        nonlinearity : spec or sequence of L specs
            ``s_1..s_L``; one spec applies to every layer.
        output_nonlinearity : spec, optional
            Overrides ``s_L`` (the thesis's regression networks use ``"identity"``).
        feedback : str, class or sequence
            Feedback form of layers ``2..L`` (``g_1..g_{L-1}``); one name applies to all. A
            sequence of ``L`` entries sets every layer (``None`` for none). ``"exact"`` needs
            ``n_1 = ... = n_L``.
        feedback_init : {'pinv', 'random'}, optional
            Initial ``Q`` for the learned/original/fixed forms (default: ``pinv`` for learned and
            original, as in section 5.2.2; ``random`` for fixed).
        seed : int or None
            Seed of the weight draw (ignored if ``generator`` is given).
        dtype : torch.dtype
            ``torch.float64`` (default) or ``torch.float32``.
        weight_scale : float or 'fan_in'
            Entries of ``W_i`` are ``weight_scale * N(0, 1)``; ``'fan_in'`` uses ``1/sqrt(n_{i-1})``.
            The thesis's student-teacher experiments use 1.0.
        init_threshold : float
            Redraw each ``W_i`` until ``sigma_min sigma_max`` of its standard normal draw exceeds this
            (section 4.2.3; the thesis uses 0.4). 0 disables the test.
        weight_init : {'gaussian', 'orthogonal'}
            ``'gaussian'`` (the thesis's draw, above) or ``'orthogonal'``: ``W_i = weight_scale *
            sqrt(n_{i-1}) * O`` with ``O`` Haar-random with orthonormal rows or columns, i.e. the same
            expected row norm as the Gaussian draw but condition number 1. Deep exact-inverse networks
            amplify targets by ``||W^-1||``, which for Gaussian ``n x n`` draws grows like ``n``.
        """
        sizes = [check_int(f"layer_sizes[{k}]", n, minimum=1) for k, n in enumerate(layer_sizes)]
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes={list(layer_sizes)} must list at least the input and one layer, "
                             "e.g. (4, 8, 8, 2).")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype={dtype} is not supported; use torch.float32 or torch.float64.")
        L = len(sizes) - 1
        # every weight, its feedback matrix (W^-1 or Q) and the draw's temporary copy
        check_memory(f"the weights of layer_sizes={sizes}",
                     3 * sum(a * b for a, b in zip(sizes, sizes[1:])) * (torch.finfo(dtype).bits // 8),
                     hint="Use smaller layers.")
        nonlinearities = _per_layer("nonlinearity", nonlinearity, L)
        nonlinearities = [get_nonlinearity(s) for s in nonlinearities]
        if output_nonlinearity is not None:
            nonlinearities[-1] = get_nonlinearity(output_nonlinearity, argument="output_nonlinearity")
        if isinstance(feedback, (str, type)) or feedback is None:
            if feedback is not None:
                FEEDBACK_FORMS.get(feedback)  # validate the name even for L = 1
            forms = [None] + [feedback] * (L - 1)
        else:
            forms = _per_layer("feedback", feedback, L)
        if any(f is not None and FEEDBACK_FORMS.get(f).name == "exact" for f in forms):
            exact_layers = [i + 1 for i, f in enumerate(forms) if f is not None and FEEDBACK_FORMS.get(f).name == "exact"]
            for i in exact_layers:
                if sizes[i] != sizes[i - 1]:
                    raise ValueError(
                        f"feedback='exact' needs square weights W_i for layers 2..L, i.e. n_1 = ... = n_L; got "
                        f"layer_sizes={sizes} (W_{i} is {sizes[i]}x{sizes[i - 1]}). Use feedback='learned' "
                        "for layers of unequal size.")
        if generator is None:
            generator = make_generator(seed)
        threshold = check_positive("init_threshold", init_threshold, allow_zero=True)
        if weight_init not in ("gaussian", "orthogonal"):
            raise ValueError(f"weight_init={weight_init!r} is not valid; use 'gaussian' or 'orthogonal'.")
        layers = []
        for i in range(1, L + 1):
            if weight_scale == "fan_in":
                scale = 1.0 / math.sqrt(sizes[i - 1])
            else:
                scale = check_positive("weight_scale", weight_scale, hint="Use 'fan_in' or a float, e.g. 1.0.")
            if weight_init == "orthogonal":
                weight = scale * math.sqrt(sizes[i - 1]) * _haar_orthogonal(sizes[i], sizes[i - 1], generator, dtype)
            else:
                weight = robust_gaussian_matrix(sizes[i], sizes[i - 1], threshold=threshold, scale=scale,
                                                generator=generator, dtype=dtype)
            lower = nonlinearities[i - 2] if i >= 2 else get_nonlinearity("identity")
            layers.append(Layer(weight, nonlinearities[i - 1], forms[i - 1], feedback_init=feedback_init,
                                lower_nonlinearity=lower, generator=generator))
        return cls(layers)


def _haar_orthogonal(rows: int, cols: int, generator, dtype) -> torch.Tensor:
    """A Haar-random matrix with orthonormal rows (rows <= cols) or columns (rows > cols)."""
    g = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # sign fix makes the distribution Haar
    return q if rows >= cols else q.T


def _per_layer(name: str, value, L: int) -> list:
    if isinstance(value, (str, type)) or not isinstance(value, Sequence):
        return [value] * L
    value = list(value)
    if len(value) != L:
        raise ValueError(f"{name} has {len(value)} entries, expected one per layer (L={L}) or a single value.")
    return value
