"""Per-sample book-keeping shared by the iterative stages: live rows, retirement, compaction, the result.

A stage iterates on *rows* (the samples it still works on). A sample that converges, or that the
stage gives up on, *retires*: its state, drive, status and iteration count are recorded and it stops
costing anything once the retired rows are compacted away (``dynamics.select`` of the live samples).
Compaction waits until a quarter of the rows have retired, so that a trickle of retirements does not
copy the stage's buffers every iteration.
"""
from __future__ import annotations

import math

import torch

from ._result import STATUSES, EquilibriumResult, EquilibriumStatus, converged_message, make_result, overall_status

_CODE = {s: i for i, s in enumerate(STATUSES)}


def finite_residual(drive: torch.Tensor) -> torch.Tensor:
    """``||drive||_inf`` per row, with ``inf`` for a row that has a non-finite entry."""
    residual = drive.abs().amax(-1)
    return torch.where(torch.isfinite(residual), residual, torch.full_like(residual, math.inf))


def nonfinite_status(state_finite: bool) -> EquilibriumStatus:
    """A non-finite drive at a finite state is an inverse evaluated outside its domain (e.g. ``atanh``)."""
    return EquilibriumStatus.DOMAIN_ERROR if state_finite else EquilibriumStatus.DIVERGED


class SampleBatch:
    """The live rows of an iterative stage and the per-sample outputs of the whole batch.

    Parameters
    ----------
    dynamics : NetworkDynamics
        The dynamics of the whole batch (``B`` samples).
    initial : Tensor, shape (B, N)
    stage : str
        Name of the stage (written to each sample's result).
    """

    def __init__(self, dynamics, initial: torch.Tensor, stage: str):
        B, device = initial.shape[0], initial.device
        self.root = dynamics
        self.dynamics = dynamics
        self.stage = stage
        self.sizes = tuple(dynamics.state_sizes)  # (read once: the property walks the network)
        self.index = torch.arange(B, device=device)
        self.live = torch.ones(B, dtype=torch.bool, device=device)
        self.state = initial.detach().clone()
        self.drive = torch.full_like(self.state, math.nan)
        self.known = torch.zeros(B, dtype=torch.bool, device=device)  # whether self.drive holds the drive at self.state
        self.codes = torch.full((B,), _CODE[EquilibriumStatus.MAX_ITERATIONS], dtype=torch.int64,
                                device=device)  # status codes
        self.iterations = torch.zeros(B, dtype=torch.int64, device=device)
        self.reasons: dict = {}
        self.n_live = B  # live rows (kept as a Python int: the stages test it every iteration)
        self.n_converged = 0  # samples retired as converged
        self._spent = 0  # evaluations of sub-dynamics that have been replaced

    @property
    def nfev(self) -> int:
        return self.root.nfev + self._spent + (self.dynamics.nfev if self.dynamics is not self.root else 0)

    def retire(self, rows: torch.Tensor, state: torch.Tensor, status, iterations, drive=None, reason: str = ""):
        """Record the live rows in the mask ``rows`` as finished with ``status`` (``state``, ``drive``: row tensors)."""
        rows = rows & self.live
        if not bool(rows.any()):
            return
        where = torch.nonzero(rows).flatten()
        if where.numel() == self.index.numel() == self.state.shape[0]:
            # every sample at once, before any compaction (the common case): plain copies, no indexing
            self.state.copy_(state.detach())
            if drive is not None:
                self.drive.copy_(drive.detach())
            self.known.fill_(drive is not None)
            status = EquilibriumStatus(status)
            self.codes.fill_(_CODE[status])
            if isinstance(iterations, torch.Tensor) and iterations.ndim:
                self.iterations.copy_(iterations)
            else:
                self.iterations.fill_(int(iterations))
            self.live.fill_(False)
            self.n_live = 0
            self.n_converged += where.numel() if status == EquilibriumStatus.CONVERGED else 0
            if reason and status != EquilibriumStatus.CONVERGED:
                self.reasons.setdefault(status, reason)
            return
        samples = self.index[where]
        self.state[samples] = state[where].detach()
        if drive is not None:
            self.drive[samples] = drive[where].detach()
            self.known[samples] = True
        else:
            self.known[samples] = False
        status = EquilibriumStatus(status)
        self.codes[samples] = _CODE[status]
        its = iterations[where] if isinstance(iterations, torch.Tensor) and iterations.ndim else iterations
        self.iterations[samples] = torch.as_tensor(its, dtype=torch.int64, device=self.iterations.device)
        self.live[where] = False
        self.n_live -= where.numel()
        if status == EquilibriumStatus.CONVERGED:
            self.n_converged += where.numel()
        if reason and status != EquilibriumStatus.CONVERGED:
            self.reasons.setdefault(status, reason)

    #: A batch whose state has at most this many entries (rows x state size) is not compacted (unless forced).
    #: The sweep stages set it to 2048: for so small a state a retired row costs less to carry along than the
    #: copy of every buffer and a new ``dynamics.select`` (measured: 6-11 % of a continuous ensemble epoch of
    #: 10 members of 6-6-6, whose rows retire one sweep apart), and their every decision is per row. 0
    #: elsewhere (Newton's Jacobian solve is one call for all rows, and a carried non-finite row would spoil it).
    min_compact_entries = 0

    def compact(self, *tensors, force: bool = False):
        """Drop the retired rows (when a quarter or more have retired, or ``force``); returns the tensors, cut.

        Rows still carried after they retired keep being iterated; nothing of them is read again (a retired
        row is never retired twice), so the result is the same.
        """
        n, n_live = self.live.numel(), self.n_live
        small = n * self.state.shape[-1] <= self.min_compact_entries
        if n_live == n or n_live == 0 or (not force and (n_live > 0.75 * n or small)):
            return tensors
        keep = torch.nonzero(self.live).flatten()
        if self.dynamics is not self.root:
            self._spent += self.dynamics.nfev
        self.dynamics = self.dynamics.select(keep)
        self.index = self.index[keep]
        self.live = torch.ones(n_live, dtype=torch.bool, device=self.live.device)
        return tuple(t[keep] for t in tensors)

    @property
    def status(self) -> list:
        """Each sample's :class:`EquilibriumStatus`."""
        return [STATUSES[c] for c in self.codes.tolist()]

    def finish(self, options) -> EquilibriumResult:
        """The result of the stage for the whole batch (live rows left are reported as ``max_iterations``)."""
        state = self.state
        drive = None
        if bool(self.known.all()):
            drive = self.drive
        B = self.codes.numel()
        if self.n_converged == B:  # (counted by retire: no pass over the codes on the common path)
            sample_status, n_converged, status = [EquilibriumStatus.CONVERGED] * B, B, EquilibriumStatus.CONVERGED
        else:
            sample_status = self.status
            n_converged = sample_status.count(EquilibriumStatus.CONVERGED)
            status = overall_status(sample_status)
        iterations = int(self.iterations.max()) if self.iterations.numel() else 0
        residual = None if drive is None else finite_residual(drive)
        if status == EquilibriumStatus.CONVERGED:
            if residual is None:
                residual = self.root.fixed_point_residual(state)
            message = converged_message(residual, options.tol, f"after {iterations} {self.stage} iteration(s)")
        else:
            failed = len(sample_status) - n_converged
            parts = [f"{sample_status.count(s)} {s}" + (f" ({self.reasons[s]})" if s in self.reasons else "")
                     for s in dict.fromkeys(s for s in sample_status if s != EquilibriumStatus.CONVERGED)]
            message = (f"{self.stage}: {failed} of {len(sample_status)} sample(s) did not reach the fixed-point residual "
                       f"tol={options.tol:g}: " + "; ".join(parts) + ".")
        return make_result(self.root, state, t=None, status=status, message=message, solver=self.stage,
                           options=options, iterations=iterations, stages=[self.stage] * len(sample_status),
                           sample_iterations=self.iterations.clone(), sample_status=sample_status,
                           nfev=self.nfev, drive=drive, residual=None if drive is None else residual,
                           state_sizes=self.sizes)
