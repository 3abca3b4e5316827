"""Batched block-tridiagonal matrices: the Jacobian structure of the layered dynamics (section 6.7).

Layer ``i`` interacts only with layers ``i-1`` and ``i+1``, so the Jacobian of the
stacked state ``(h_1, ..., h_L)`` is block tridiagonal. Storing the blocks instead of the
dense ``(N, N)`` matrix makes Newton steps ``O(L n^3)`` instead of ``O((L n)^3)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import SingularMatrixError


@dataclass
class BlockTridiagonal:
    """A batch of block-tridiagonal matrices.

    Attributes
    ----------
    diagonal : list of Tensor
        ``diagonal[k]`` is block ``(k, k)``, shape ``(B, n_k, n_k)``, ``k = 0..L-1``.
    lower : list of Tensor
        ``lower[k]`` is block ``(k+1, k)``, shape ``(B, n_{k+1}, n_k)``, ``k = 0..L-2``.
    upper : list of Tensor
        ``upper[k]`` is block ``(k, k+1)``, shape ``(B, n_k, n_{k+1})``, ``k = 0..L-2``.

    Block ``k`` holds layer ``h_{k+1}`` (thesis numbering).
    """

    diagonal: list
    lower: list
    upper: list

    def __post_init__(self):
        n = len(self.diagonal)
        if len(self.lower) != n - 1 or len(self.upper) != n - 1:
            raise ValueError(f"{n} diagonal blocks need {n - 1} lower and upper blocks, got "
                             f"{len(self.lower)} and {len(self.upper)}.")

    @property
    def block_sizes(self) -> tuple[int, ...]:
        return tuple(d.shape[-1] for d in self.diagonal)

    @property
    def batch_size(self) -> int:
        return self.diagonal[0].shape[0]

    @property
    def size(self) -> int:
        return sum(self.block_sizes)

    def detach(self) -> "BlockTridiagonal":
        return BlockTridiagonal([d.detach() for d in self.diagonal], [b.detach() for b in self.lower],
                                [b.detach() for b in self.upper])

    def select(self, index) -> "BlockTridiagonal":
        """The matrices of the samples ``index`` of the batch."""
        return BlockTridiagonal([d[index] for d in self.diagonal], [b[index] for b in self.lower],
                                [b[index] for b in self.upper])

    def to_dense(self) -> torch.Tensor:
        """Dense matrices, shape ``(B, N, N)``."""
        sizes = self.block_sizes
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        d0 = self.diagonal[0]
        dense = d0.new_zeros(d0.shape[0], offsets[-1], offsets[-1])
        for k, block in enumerate(self.diagonal):
            dense[:, offsets[k]:offsets[k + 1], offsets[k]:offsets[k + 1]] = block
        for k in range(len(sizes) - 1):
            dense[:, offsets[k + 1]:offsets[k + 2], offsets[k]:offsets[k + 1]] = self.lower[k]
            dense[:, offsets[k]:offsets[k + 1], offsets[k + 1]:offsets[k + 2]] = self.upper[k]
        return dense

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(x, self.block_sizes, dim=-1))

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(B, N)``."""
        xs = self.split(x)
        out = [torch.einsum("bij,bj->bi", d, xk) for d, xk in zip(self.diagonal, xs)]
        for k in range(len(xs) - 1):
            out[k + 1] = out[k + 1] + torch.einsum("bij,bj->bi", self.lower[k], xs[k])
            out[k] = out[k] + torch.einsum("bij,bj->bi", self.upper[k], xs[k + 1])
        return torch.cat(out, dim=-1)

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """Solve ``A x = rhs`` by block LU (the block Thomas algorithm), ``rhs`` of shape ``(B, N)``.

        Gradients flow through ``rhs`` (and the blocks, if they require grad).

        Raises
        ------
        SingularMatrixError
            If a pivot block (a Schur complement) is singular for some sample.
        """
        rs = self.split(rhs)
        n = len(self.diagonal)
        c_prime, d_prime = [None] * n, [None] * n
        for k in range(n):
            pivot = self.diagonal[k]
            r = rs[k].unsqueeze(-1)
            if k > 0:
                pivot = pivot - self.lower[k - 1] @ c_prime[k - 1]
                r = r - self.lower[k - 1] @ d_prime[k - 1]
            columns = [r] if k == n - 1 else [self.upper[k], r]
            solution, info = torch.linalg.solve_ex(pivot, torch.cat(columns, dim=-1))
            if (info != 0).any() or not torch.isfinite(solution).all():
                raise SingularMatrixError(f"block {k} of the block-tridiagonal system is singular for "
                                          f"{int((info != 0).sum())} sample(s).")
            if k < n - 1:
                m = self.upper[k].shape[-1]
                c_prime[k], d_prime[k] = solution[..., :m], solution[..., m:]
            else:
                d_prime[k] = solution
        x = [None] * n
        x[-1] = d_prime[-1]
        for k in range(n - 2, -1, -1):
            x[k] = d_prime[k] - c_prime[k] @ x[k + 1]
        return torch.cat([xk.squeeze(-1) for xk in x], dim=-1)
