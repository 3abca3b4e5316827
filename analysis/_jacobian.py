"""Numeric Jacobians of the network dynamics at a state (section 6.7, eqs. 6.39-6.42).

Two independent ways to the same matrix ``J = d(dh/dt)/dh`` (the flow Jacobian, which
includes the ``1/tau`` of eq. 6.1; the thesis's ``J-bar`` of eq. 6.40 is ``tau J``):

* :func:`jacobian` — **assembled** from the layers' own Jacobians ``J_{f_i} = D_{s_i} W_i``
  (eq. 6.41) and ``J_{g_i}`` through the dynamics' ``jacobian_blocks`` hook, and stored as a
  :class:`BlockJacobian` whose block pattern is read from the network's ``networkx`` graph
  (:func:`block_pattern`): block ``(r, c)`` exists only if an edge carries ``h_{c+1}`` into
  ``h_{r+1}``. For eq. (6.1) this gives

  .. math::

      J = \\frac{1}{\\tau}\\begin{pmatrix}
          -I & \\mu J_{g_1} & & \\\\
          (1-\\mu) J_{f_2} & -I & \\mu J_{g_2} & \\\\
          & \\ddots & \\ddots & \\ddots \\\\
          & & (1-\\mu) J_{f_L} & (-1 + \\mu c) I
      \\end{pmatrix},

  with ``c = d h_L^trgt / d h_L`` of the teaching signal (0 for a fixed target, the thesis's
  case; 1 for a free output; ``1 - eta_hat`` for the L2 target of eq. 6.10).
* :func:`autograd_jacobian` — by reverse-mode autodiff of ``dynamics.rate`` with
  ``torch.func.jacrev`` (whose vector-Jacobian products are batched by ``vmap``).

Both are float tensors with the network's dtype; batch-first: ``B`` samples, state size
``N = n_1 + ... + n_L``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

import tpdynamics as tp
from tpdynamics.validation import check_sample

__all__ = ["BlockJacobian", "block_pattern", "jacobian", "autograd_jacobian"]


def block_pattern(network: tp.LayeredNetwork) -> frozenset[tuple[int, int]]:
    """Non-zero blocks of the Jacobian of the layer dynamics, read from ``network.graph``.

    State block ``k`` is layer ``h_{k+1}`` (``k = 0..L-1``). Every layer has a diagonal block
    (the leak ``-h_i``); an edge ``u -> v`` between two layer nodes adds block ``(v-1, u-1)``;
    the clamped input ``h_0`` adds nothing; the teaching edge ``L+1 -> L`` adds to the diagonal
    block of ``h_L`` (the target ``h_L^trgt`` depends on ``h_L`` only, eq. 6.10).

    Parameters
    ----------
    network : LayeredNetwork

    Returns
    -------
    frozenset of (int, int)
        ``(row, column)`` block indices.
    """
    if not isinstance(network, tp.LayeredNetwork):
        raise TypeError(f"network must be a tpdynamics LayeredNetwork, got {type(network).__name__}.")
    graph = network.graph
    layers = [node for node, data in graph.nodes(data=True) if data["role"] in ("hidden", "output")]
    index = {node: k for k, node in enumerate(sorted(layers))}
    pattern = {(k, k) for k in index.values()}
    for source, target, data in graph.edges(data=True):
        if target not in index:
            continue
        if source in index:
            pattern.add((index[target], index[source]))
        elif data["kind"] == "teaching":
            pattern.add((index[target], index[target]))
        # the clamped input h_0 is not part of the state
    return frozenset(pattern)


@dataclass
class BlockJacobian:
    """A batch of block-sparse Jacobians ``J = d(dh/dt)/dh``.

    Attributes
    ----------
    blocks : dict of (int, int) -> Tensor
        Block ``(r, c)`` of shape ``(B, n_r, n_c)``: the derivative of ``dh_{r+1}/dt`` with respect
        to ``h_{c+1}``. Blocks outside the pattern are zero and not stored.
    block_sizes : tuple of int
        ``(n_1, ..., n_L)``.
    block_names : tuple of str
        ``("h_1", ..., "h_L")``.
    """

    blocks: dict
    block_sizes: tuple
    block_names: tuple = ()

    def __post_init__(self):
        self.block_sizes = tuple(int(n) for n in self.block_sizes)
        if not self.block_names:
            self.block_names = tuple(f"h_{k + 1}" for k in range(len(self.block_sizes)))
        if not self.blocks:
            raise ValueError("a BlockJacobian needs at least one block.")
        batches = set()
        for (r, c), block in self.blocks.items():
            expected = (self.block_sizes[r], self.block_sizes[c])
            if block.ndim != 3 or tuple(block.shape[1:]) != expected:
                raise ValueError(f"block ({r}, {c}) has shape {tuple(block.shape)}, expected (B, {expected[0]}, "
                                 f"{expected[1]}).")
            batches.add(block.shape[0])
        if len(batches) != 1:
            raise ValueError(f"all blocks must share one batch size, got {sorted(batches)}.")

    # -- structure -------------------------------------------------------------------------------
    @property
    def pattern(self) -> list[tuple[int, int]]:
        """Sorted ``(row, column)`` indices of the stored blocks."""
        return sorted(self.blocks)

    @property
    def depth(self) -> int:
        """Number of state blocks ``L``."""
        return len(self.block_sizes)

    @property
    def batch_size(self) -> int:
        """Number of samples ``B``."""
        return next(iter(self.blocks.values())).shape[0]

    @property
    def size(self) -> int:
        """State size ``N``."""
        return sum(self.block_sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start index of each block in the stacked state, plus ``N`` at the end."""
        out = [0]
        for n in self.block_sizes:
            out.append(out[-1] + n)
        return tuple(out)

    @property
    def dtype(self) -> torch.dtype:
        """The blocks' dtype (the network's)."""
        return next(iter(self.blocks.values())).dtype

    @property
    def is_block_tridiagonal(self) -> bool:
        """Whether every stored block ``(r, c)`` has ``|r - c| <= 1`` (the layered dynamics of eq. 6.40)."""
        return all(abs(r - c) <= 1 for r, c in self.blocks)

    def block(self, row: int, column: int) -> torch.Tensor:
        """Block ``(row, column)``, shape ``(B, n_row, n_column)`` (zeros if outside the pattern)."""
        if (row, column) in self.blocks:
            return self.blocks[(row, column)]
        some = next(iter(self.blocks.values()))
        return some.new_zeros(self.batch_size, self.block_sizes[row], self.block_sizes[column])

    def select(self, index) -> "BlockJacobian":
        """The Jacobians of the samples ``index`` (an int keeps a batch dimension of 1)."""
        if isinstance(index, int):
            index = [index]
        return BlockJacobian({key: b[index] for key, b in self.blocks.items()}, self.block_sizes, self.block_names)

    def detach(self) -> "BlockJacobian":
        """The same Jacobians with every block detached from autograd."""
        return BlockJacobian({key: b.detach() for key, b in self.blocks.items()}, self.block_sizes, self.block_names)

    # -- exports ---------------------------------------------------------------------------------
    def to_dense(self) -> torch.Tensor:
        """Dense Jacobians, shape ``(B, N, N)``."""
        off = self.offsets
        some = next(iter(self.blocks.values()))
        dense = some.new_zeros(self.batch_size, self.size, self.size)
        for (r, c), block in self.blocks.items():
            dense[:, off[r]:off[r + 1], off[c]:off[c + 1]] = block
        return dense

    def to_numpy(self, sample: int = 0) -> np.ndarray:
        """Dense Jacobian of one sample as a float64 NumPy array, shape ``(N, N)``."""
        check_sample(sample, self.batch_size)
        return self.select(sample).to_dense()[0].detach().cpu().to(torch.float64).numpy()

    def to_sparse(self, sample: int = 0, format: str = "csr"):
        """Jacobian of one sample as a SciPy sparse matrix with the graph's block pattern, shape ``(N, N)``.

        Parameters
        ----------
        sample : int
            Index in the batch.
        format : str
            Any SciPy sparse format name (``'csr'``, ``'csc'``, ``'coo'``, ``'bsr'`` ...).
        """
        check_sample(sample, self.batch_size)
        grid = [[None] * self.depth for _ in range(self.depth)]
        for (r, c), block in self.blocks.items():
            grid[r][c] = block[sample].detach().cpu().to(torch.float64).numpy()
        for k, n in enumerate(self.block_sizes):  # bmat needs every block row and column represented
            if grid[k][k] is None:
                grid[k][k] = scipy.sparse.coo_matrix((n, n))
        return scipy.sparse.bmat(grid, format=format)  # bmat (not block_array): SciPy >= 1.10

    def to_block_tridiagonal(self) -> tp.BlockTridiagonal:
        """The same matrices as a :class:`tpdynamics.BlockTridiagonal` (for its block-LU ``solve``)."""
        if not self.is_block_tridiagonal:
            raise ValueError(f"the block pattern {self.pattern} is not block tridiagonal.")
        L = self.depth
        return tp.BlockTridiagonal([self.block(k, k) for k in range(L)],
                                   [self.block(k + 1, k) for k in range(L - 1)],
                                   [self.block(k, k + 1) for k in range(L - 1)])


def _check_dynamics(dynamics) -> None:
    if not isinstance(dynamics, tp.NetworkDynamics):
        raise TypeError(f"dynamics must be a tpdynamics NetworkDynamics module (e.g. MixtureDynamics), got "
                        f"{type(dynamics).__name__}.")


def _layer_pattern(dynamics) -> frozenset | None:
    """The graph's block pattern when the state blocks are the layers ``h_1..h_L``, else ``None``."""
    network = dynamics.network
    if tuple(dynamics.state_sizes) != tuple(network.layer_sizes[1:]):
        return None
    return block_pattern(network)


def jacobian(dynamics, state: torch.Tensor) -> BlockJacobian:
    """The Jacobian ``d(dh/dt)/dh`` assembled from the layers' own Jacobians, block by block (eq. 6.40).

    The blocks come from the dynamics' ``jacobian_blocks`` hook (``J_{f_i} = D_{s_i} W_i`` of
    eq. 6.41 from :meth:`Layer.jacobian`, ``J_{g_i}`` from :meth:`Layer.feedback_jacobian`,
    weighted by ``1-mu`` and ``mu`` and divided by ``tau``) and are placed by the block pattern
    of the network graph (:func:`block_pattern`); a non-zero block outside that pattern means the
    dynamics and the graph disagree and raises ``RuntimeError``.

    Parameters
    ----------
    dynamics : NetworkDynamics
        E.g. :class:`tpdynamics.MixtureDynamics` with batch ``B``.
    state : Tensor, shape (B, N)
        Where to evaluate (normally a fixed point ``h*``).

    Returns
    -------
    BlockJacobian
        Blocks of shape ``(B, n_r, n_c)``, detached from autograd.
    """
    _check_dynamics(dynamics)
    dynamics.check_state(state, "state")
    with torch.no_grad():
        tridiagonal = dynamics.jacobian_blocks(state.detach())
    raw = {}
    L = len(tridiagonal.diagonal)
    for k in range(L):
        raw[(k, k)] = tridiagonal.diagonal[k]
    for k in range(L - 1):
        raw[(k + 1, k)] = tridiagonal.lower[k]
        raw[(k, k + 1)] = tridiagonal.upper[k]
    pattern = _layer_pattern(dynamics)
    blocks = {}
    for key, block in raw.items():
        if block is None:
            continue
        if pattern is not None and key not in pattern:
            if bool((block != 0).any()):
                raise RuntimeError(f"the dynamics returned a non-zero Jacobian block {key} that the network graph "
                                   "has no edge for; the dynamics module and network.graph disagree.")
            continue
        blocks[key] = block.detach().contiguous()
    names = tuple(dynamics.block_name(k) for k in range(L))
    return BlockJacobian(blocks, tuple(dynamics.state_sizes), names)


def autograd_jacobian(dynamics, state: torch.Tensor) -> torch.Tensor:
    """The Jacobian ``d(dh/dt)/dh`` by reverse-mode autodiff of ``dynamics.rate`` (``torch.func.jacrev``).

    The samples of a batch do not interact, so ``d (sum_b rate_b) / d state`` — one ``jacrev`` of
    an ``(N,)``-valued function, its ``N`` vector-Jacobian products batched by ``vmap`` — holds every
    per-sample Jacobian: entry ``[i, b, j] = d rate_{b,i} / d state_{b,j}``.

    Parameters
    ----------
    dynamics : NetworkDynamics
    state : Tensor, shape (B, N)

    Returns
    -------
    Tensor, shape (B, N, N)
        Detached.
    """
    _check_dynamics(dynamics)
    dynamics.check_state(state, "state")

    def summed_rate(x):
        return dynamics.rate(x).sum(0)

    jac = torch.func.jacrev(summed_rate)(state.detach())
    return jac.permute(1, 0, 2).detach().contiguous()
