"""Symbolic Jacobians (sympy) of the mixture dynamics, and the symbolic derivation of the exact-inverse spectrum.

:func:`symbolic_dynamics` writes eq. (6.1),

.. math:: \\frac{dh_i}{dt} = \\frac{1}{\\tau}\\big(-h_i + (1-\\mu) f_i(h_{i-1}) + \\mu g_i(h_{i+1})\\big),
          \\qquad g_L = h_L^{trgt},

from the **same layer objects** the numerical code uses — ``Layer.sympy_forward`` (the weights and
the nonlinearities' ``sympy_expression``) and ``feedback.sympy_forward`` (``sympy_inverse``) — with the
connectivity read from ``network.graph``, and with ``mu`` and ``tau`` (and ``eta_hat``) as symbols.
``Matrix.jacobian`` gives the Jacobian; ``lambdify`` turns it into a NumPy or torch function.

Lambdify and constant entries: a lambdified ``Matrix`` whose entries are partly constants (e.g. ``0`` or
``-1/tau``) and partly arrays builds a ragged array instead of a batch of matrices. Here every entry is
lambdified as one element of a flat list and broadcast to the batch before stacking, so a Jacobian with
constant entries (a linear network) evaluates to ``(B, N, N)`` like any other.

The symbolic path costs ``O(N^2)`` expressions; it refuses networks with more than
``max_state_size`` state units (default :data:`MAX_STATE_SIZE`) and names the numeric alternatives.

:func:`derive_exact_inverse_spectrum` proves the closed form of section 6.7 for general ``L``;
:func:`exact_inverse_similarity_residual` checks the block similarity behind it on symbolic blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy
import torch

import tpdynamics as tp
from tpdynamics.validation import check_int

__all__ = ["MAX_STATE_SIZE", "SymbolicDynamics", "symbolic_dynamics", "symbolic_jacobian",
           "ExactInverseDerivation", "derive_exact_inverse_spectrum", "exact_inverse_similarity_residual"]

#: Default limit on the state size ``N`` of the symbolic path (``N^2`` Jacobian entries).
MAX_STATE_SIZE = 40

_TEACHING_KINDS = ("free", "fixed", "loss")


@dataclass
class SymbolicDynamics:
    """Eq. (6.1) of one network as sympy expressions.

    Attributes
    ----------
    network : LayeredNetwork
    teaching : {'free', 'fixed', 'loss'}
        ``h_L^trgt = h_L``, a fixed target (symbols ``t_j``), or ``h_L - eta_hat (h_L - y)`` (eq. 6.10,
        symbols ``y_j`` and ``eta_hat``).
    state_symbols : list of list of Symbol
        ``h_{i,j}``, one list per layer ``1..L``.
    input_symbols : list of Symbol
        ``h_{0,j}`` (the clamped input).
    teaching_symbols : list of Symbol
        ``t_j`` (fixed) or ``y_j`` (loss); empty for a free output.
    mu, tau : Symbol
    eta_hat : Symbol or None
    rate : sympy.Matrix, shape (N, 1)
        ``dh/dt``.
    """

    network: tp.LayeredNetwork
    teaching: str
    state_symbols: list
    input_symbols: list
    teaching_symbols: list
    mu: sympy.Symbol
    tau: sympy.Symbol
    eta_hat: sympy.Symbol | None
    rate: sympy.Matrix

    @property
    def state(self) -> list:
        """Flat list of the ``N`` state symbols, in the order of the stacked state."""
        return [s for layer in self.state_symbols for s in layer]

    @property
    def arguments(self) -> list:
        """Arguments of the lambdified functions, in order: state, input, teaching, ``mu``, ``tau``[, ``eta_hat``]."""
        extra = [self.eta_hat] if self.eta_hat is not None else []
        return self.state + list(self.input_symbols) + list(self.teaching_symbols) + [self.mu, self.tau] + extra

    @cached_property
    def jacobian(self) -> sympy.Matrix:
        """``d(dh/dt)/dh`` as a sympy matrix, shape ``(N, N)``."""
        return self.rate.jacobian(self.state)

    def lambdify_jacobian(self, backend: str = "numpy"):
        """The Jacobian as a function of the data, evaluated on a batch.

        Parameters
        ----------
        backend : {'numpy', 'torch'}

        Returns
        -------
        callable
            ``fn(state, h0, teaching_values, mu, tau, eta_hat=None)`` with ``state`` ``(B, N)``, ``h0``
            ``(B, n_0)``, ``teaching_values`` ``(B, n_L)`` (target or label; ``None`` for a free output)
            as NumPy arrays or tensors; returns the Jacobians, shape ``(B, N, N)`` (float64 for NumPy,
            the dtype of ``state`` for torch).
        """
        if backend not in ("numpy", "torch"):
            raise ValueError(f"backend={backend!r} is not valid; use 'numpy' or 'torch'.")
        entries = list(self.jacobian)  # row-major
        modules = [{"where": _torch_where}, "torch"] if backend == "torch" else "numpy"
        raw = sympy.lambdify(self.arguments, entries, modules=modules, cse=True)
        N = len(self.state)
        needs_teaching = bool(self.teaching_symbols)
        needs_eta = self.eta_hat is not None

        def evaluate(state, h0, teaching_values=None, mu=None, tau=None, eta_hat=None):
            if mu is None or tau is None:
                raise ValueError("mu and tau must be given: they are the symbols of eq. (6.1).")
            if needs_teaching and teaching_values is None:
                raise ValueError(f"the {self.teaching!r} teaching signal needs teaching_values of shape (B, n_L).")
            if needs_eta and eta_hat is None:
                raise ValueError("the 'loss' teaching signal needs eta_hat (eq. 6.10).")
            columns = list(state.T) + list(h0.T) + (list(teaching_values.T) if needs_teaching else [])
            scalars = [mu, tau] + ([eta_hat] if needs_eta else [])
            if backend == "torch":  # torch.pow and friends refuse two Python numbers
                scalars = [torch.as_tensor(x, dtype=state.dtype) for x in scalars]
            batch = state.shape[0]
            values = raw(*columns, *scalars)
            if backend == "numpy":
                stacked = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), (batch,)) for v in values], -1)
                return stacked.reshape(batch, N, N)
            dtype = state.dtype
            stacked = torch.stack([torch.as_tensor(v, dtype=dtype).expand(batch) for v in values], -1)
            return stacked.reshape(batch, N, N)

        return evaluate


def _torch_where(condition, a, b):
    """``torch.where`` that keeps Python-number branches (a Piecewise's constants) in float64."""
    a = a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.float64)
    b = b if isinstance(b, torch.Tensor) else torch.tensor(b, dtype=torch.float64)
    return torch.where(condition, a, b)


def _check_size(network: tp.LayeredNetwork, max_state_size: int) -> None:
    max_state_size = check_int("max_state_size", max_state_size, minimum=1)
    N = sum(network.layer_sizes[1:])
    if N > max_state_size:
        raise ValueError(
            f"the network is too large for the symbolic path: state size N = {N} (layers "
            f"{list(network.layer_sizes)}) exceeds max_state_size={max_state_size}, and the Jacobian would have "
            f"N^2 = {N * N} sympy expressions. Use the numeric Jacobians instead: analysis.jacobian(dynamics, state) "
            f"(assembled from the layers, block-sparse) or analysis.autograd_jacobian(dynamics, state); or pass "
            f"max_state_size={N} if you accept the cost.")


def symbolic_dynamics(network: tp.LayeredNetwork, *, teaching: str = "free",
                      max_state_size: int = MAX_STATE_SIZE) -> SymbolicDynamics:
    """Eq. (6.1) for ``network`` as sympy expressions (module docstring).

    Parameters
    ----------
    network : LayeredNetwork
        Layers ``2..L`` need feedback mappings.
    teaching : {'free', 'fixed', 'loss'}
        The teaching signal ``g_L = h_L^trgt`` (eq. 6.3): free output, fixed target, or the L2 target
        of eq. (6.10).
    max_state_size : int
        Largest accepted ``N = n_1 + ... + n_L``.

    Returns
    -------
    SymbolicDynamics

    Raises
    ------
    ValueError
        If ``N > max_state_size`` (the message names the numeric alternatives) or ``teaching`` is unknown.
    """
    if not isinstance(network, tp.LayeredNetwork):
        raise TypeError(f"network must be a tpdynamics LayeredNetwork, got {type(network).__name__}.")
    if teaching not in _TEACHING_KINDS:
        raise ValueError(f"teaching={teaching!r} is not valid; use one of {', '.join(_TEACHING_KINDS)}.")
    _check_size(network, max_state_size)
    L, sizes = network.depth, network.layer_sizes
    layers = [[sympy.Symbol(f"h_{i}_{j}", real=True) for j in range(sizes[i])] for i in range(L + 1)]
    mu = sympy.Symbol("mu", positive=True)
    tau = sympy.Symbol("tau", positive=True)
    eta_hat = sympy.Symbol("eta_hat", positive=True) if teaching == "loss" else None
    if teaching == "fixed":
        teach = [sympy.Symbol(f"t_{j}", real=True) for j in range(sizes[L])]
        target = list(teach)
    elif teaching == "loss":
        teach = [sympy.Symbol(f"y_{j}", real=True) for j in range(sizes[L])]
        target = [h - eta_hat * (h - y) for h, y in zip(layers[L], teach)]
    else:
        teach, target = [], list(layers[L])
    rate = []
    for node in range(1, L + 1):
        total = [-h for h in layers[node]]
        for source, kind, owner in network.in_edges(node):  # the graph says which mapping feeds h_node
            if kind == "forward":
                term, weight = network.layer(owner).sympy_forward(layers[source]), 1 - mu
            elif kind == "feedback":
                layer = network.layer(owner)
                term, weight = layer.feedback.sympy_forward(layers[source], layer), mu
            elif kind == "teaching":
                term, weight = target, mu
            else:  # pragma: no cover - the layered graph has no other edge kinds
                raise ValueError(f"unknown edge kind {kind!r} into h_{node}.")
            total = [t + weight * x for t, x in zip(total, term)]
        rate.extend(t / tau for t in total)
    return SymbolicDynamics(network, teaching, layers[1:], layers[0], teach, mu, tau, eta_hat,
                            sympy.Matrix(rate))


def _teaching_kind(dynamics) -> tuple[str, torch.Tensor | None, float | None]:
    signal = dynamics.teaching
    if isinstance(signal, tp.FreeTarget):
        return "free", None, None
    if isinstance(signal, tp.FixedTarget):
        return "fixed", signal.target, None
    if isinstance(signal, tp.LossTarget):
        return "loss", signal.label, signal.eta_hat
    raise TypeError(f"the symbolic path knows the FreeTarget, FixedTarget and LossTarget teaching signals, got "
                    f"{type(signal).__name__}; use analysis.jacobian(dynamics, state) instead.")


def symbolic_jacobian(dynamics, state: torch.Tensor, *, backend: str = "numpy",
                      max_state_size: int = MAX_STATE_SIZE):
    """The Jacobian ``d(dh/dt)/dh`` of a :class:`tpdynamics.MixtureDynamics` from sympy, at ``state``.

    Parameters
    ----------
    dynamics : MixtureDynamics
        Its network, ``h0``, ``mu``, ``tau`` and teaching signal are used.
    state : Tensor, shape (B, N)
    backend : {'numpy', 'torch'}
        Lambdify target.
    max_state_size : int
        Largest accepted ``N``.

    Returns
    -------
    ndarray or Tensor, shape (B, N, N)
    """
    if not isinstance(dynamics, tp.MixtureDynamics):
        raise TypeError(f"dynamics must be a tpdynamics MixtureDynamics (the model of eq. 6.1), got "
                        f"{type(dynamics).__name__}.")
    _check_size(dynamics.network, max_state_size)
    dynamics.check_state(state, "state")
    kind, values, eta_hat = _teaching_kind(dynamics)
    model = symbolic_dynamics(dynamics.network, teaching=kind, max_state_size=max_state_size)
    fn = model.lambdify_jacobian(backend)
    if backend == "numpy":
        convert = lambda t: None if t is None else t.detach().cpu().to(torch.float64).numpy()  # noqa: E731
    else:
        convert = lambda t: None if t is None else t.detach()  # noqa: E731
    return fn(convert(state), convert(dynamics.h0), convert(values), dynamics.mu, dynamics.tau, eta_hat)


@dataclass
class ExactInverseDerivation:
    """The closed-form spectrum of section 6.7, derived with sympy (see :func:`derive_exact_inverse_spectrum`).

    Attributes
    ----------
    eigenvalue : sympy.Expr
        ``lambda_k`` in the symbols ``k, L, mu, tau``.
    eigenvector : sympy.Expr
        Component ``j`` of the eigenvector of ``T`` (symbols ``j, k, L, mu``).
    interior_residual : sympy.Expr
        ``(T v - lambda v)_j`` for a generic row ``j``, simplified: ``0``.
    boundary_residual : sympy.Expr
        ``v_{L+1}``, which must vanish for the last row: ``0``.
    symbols : dict
        ``{'k', 'L', 'j', 'mu', 'tau'}`` -> Symbol.
    """

    eigenvalue: sympy.Expr
    eigenvector: sympy.Expr
    interior_residual: sympy.Expr
    boundary_residual: sympy.Expr
    symbols: dict

    @property
    def verified(self) -> bool:
        return self.interior_residual == 0 and self.boundary_residual == 0

    def evaluate(self, depth: int, mu: float, tau: float = 1.0) -> np.ndarray:
        """The derived ``lambda_k`` for ``k = 1..L`` as floats, shape ``(L,)``."""
        s = self.symbols
        fn = sympy.lambdify((s["k"], s["L"], s["mu"], s["tau"]), self.eigenvalue, modules="numpy")
        return np.asarray(fn(np.arange(1, depth + 1), depth, mu, tau), dtype=float)


def derive_exact_inverse_spectrum() -> ExactInverseDerivation:
    """Derive ``lambda_k = (-1 + 2 sqrt(mu(1-mu)) cos(k pi/(L+1))) / tau`` for every ``L``.

    After the block similarity (:func:`exact_inverse_similarity_residual`), the spectrum is that of
    ``T = tridiag(1-mu, -1, mu) / tau`` (fixed target, ``c = 0``). With ``p = mu``, ``q = 1 - mu``
    and ``r = sqrt(q/p)``, the ansatz ``v_j = r^j sin(j theta)`` gives for every row ``j``

    .. math:: (q v_{j-1} - v_j + p v_{j+1})/\\tau - \\lambda v_j
              = \\frac{r^j}{\\tau} \\big[\\sqrt{pq}\\,(\\sin(j-1)\\theta + \\sin(j+1)\\theta)
                - (1 + \\tau\\lambda)\\sin j\\theta\\big],

    zero for ``lambda = (-1 + 2 sqrt(pq) cos theta)/tau`` (sympy simplifies it with ``expand_trig``).
    Row 1 needs ``v_0 = 0`` (true), row ``L`` needs ``v_{L+1} = 0``: ``theta = k pi / (L+1)``. The ``L``
    values of ``k`` give ``L`` distinct eigenvalues (``0 < mu < 1``), hence the whole spectrum of ``T``.

    Returns
    -------
    ExactInverseDerivation
        With ``verified`` True when both residuals simplify to 0.
    """
    p, q, tau = sympy.symbols("p q tau", positive=True)
    mu = sympy.Symbol("mu", positive=True)
    theta = sympy.Symbol("theta", real=True)
    j = sympy.Symbol("j", integer=True)
    k, L = sympy.symbols("k L", integer=True, positive=True)
    r = sympy.sqrt(q / p)

    def v(m):
        return r ** m * sympy.sin(m * theta)

    lam = (-1 + 2 * sympy.sqrt(p * q) * sympy.cos(theta)) / tau
    row = (q * v(j - 1) - v(j) + p * v(j + 1)) / tau - lam * v(j)
    interior = sympy.simplify(sympy.expand_trig(sympy.expand(sympy.powsimp(sympy.expand(row / r ** j), force=True))))
    theta_k = k * sympy.pi / (L + 1)
    boundary = sympy.simplify(v(L + 1).subs(theta, theta_k))
    back = {p: mu, q: 1 - mu}
    return ExactInverseDerivation(
        eigenvalue=lam.subs(theta, theta_k).subs(back),
        eigenvector=v(j).subs(theta, theta_k).subs(back),
        interior_residual=interior, boundary_residual=boundary,
        symbols={"k": k, "L": L, "j": j, "mu": mu, "tau": tau})


def exact_inverse_similarity_residual(depth: int = 3, width: int = 2) -> sympy.Matrix:
    """``S^{-1} J S - T kron I`` for symbolic forward Jacobians (should simplify to the zero matrix).

    ``J`` (times ``tau``) has blocks ``-I`` on the diagonal except ``(-1 + mu c) I`` last,
    ``(1-mu) A_{i+1}`` below and ``mu A_{i+1}^{-1}`` above (eqs. 6.40-6.42), with ``A_i`` a ``width x
    width`` matrix of free symbols ``a^{(i)}_{rs}``. ``S = diag(I, A_2, A_3 A_2, ...)``.

    Parameters
    ----------
    depth : int
        ``L`` (keep it small: the entries are rational functions of ``(L-1) width^2`` symbols).
    width : int
        ``n``.

    Returns
    -------
    sympy.Matrix, shape (L n, L n)
        The simplified difference.
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    if depth * width > 12:
        raise ValueError(f"depth * width = {depth * width} is too large for a symbolic check; keep it <= 12.")
    mu, c = sympy.symbols("mu c", real=True)
    eye = sympy.eye(width)
    A = {i: sympy.Matrix(width, width, lambda r, s: sympy.Symbol(f"a{i}_{r}{s}")) for i in range(2, depth + 1)}
    S = [eye]
    for i in range(2, depth + 1):
        S.append(A[i] * S[-1])
    S_inv = [s.inv() for s in S]
    N = depth * width
    residual = sympy.zeros(N, N)

    def put(r, s, block):
        residual[r * width:(r + 1) * width, s * width:(s + 1) * width] = block.applyfunc(sympy.cancel)

    for r in range(depth):
        d = -1 + (mu * c if r == depth - 1 else 0)
        put(r, r, S_inv[r] * (d * eye) * S[r] - d * eye)
        if r + 1 < depth:
            put(r + 1, r, S_inv[r + 1] * ((1 - mu) * A[r + 2]) * S[r] - (1 - mu) * eye)
            put(r, r + 1, S_inv[r] * (mu * A[r + 2].inv()) * S[r + 1] - mu * eye)
    return residual
