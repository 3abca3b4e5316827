"""The default solver: per sample, the fixed-point sweeps, then Anderson, then Newton, and integration last."""
from __future__ import annotations

import torch

from ..errors import MemoryLimitError
from ._anderson import AndersonSolver
from ._base import EQUILIBRIUM_SOLVERS, EquilibriumSolver
from ._newton import NewtonSolver
from ._ode import ODESolver
from ._result import STATUSES, EquilibriumStatus, converged_message, make_result, overall_status
from ._stability import spectral_abscissa
from ._sweep import SORSolver


@EQUILIBRIUM_SOLVERS.register("auto")
class AutoSolver(EquilibriumSolver):
    """Per-sample composition of the stages, in this order; each sample stops at the first that solves it.

    1. ``sor`` — the fixed-point map, swept over the layers in Gauss-Seidel order with a safeguarded
       over-relaxation (:class:`SORSolver`: Young's optimum of the closed-form Jacobi radius with exact
       inverses, adapted from the observed rate otherwise; the plain map for dynamics without a block
       ordering). One evaluation per sweep; it solves every sample whose map contracts (spectral radius
       below one), kinks or not, and hands on those that make no progress in ``patience`` sweeps. When it
       solves every sample (the common case) its result is returned as is, with no per-stage book-keeping.
    2. ``anderson`` — safeguarded Anderson acceleration (:class:`AndersonSolver`) from each remaining
       sample's best iterate: it can converge where the map is mildly expansive.
    3. ``newton`` — semismooth Newton (:class:`NewtonSolver`), ``O(L n^3)`` per iteration, for fixed points
       the maps cannot reach.
    4. ``ode`` — integration of the flow (:class:`ODESolver`) from each remaining sample's best iterate:
       the attractor the dynamics actually reach.

    Only the samples a stage fails on go to the next one; converged samples retire from every stage, so
    one hard sample never costs the others anything. With ``check_stability`` a fixed point that an
    iterative stage found but that is not stable sends its sample straight to integration, from its
    initial state (Newton would find the same point). The result records, per sample, the stage that
    solved it (:attr:`~tpdynamics.EquilibriumResult.stages`), its iterations and its status.
    """

    def __init__(self):
        self.stages = (("sor", SORSolver()), ("anderson", AndersonSolver()), ("newton", NewtonSolver()))
        self.fallback = ODESolver()

    def __repr__(self) -> str:
        return "AutoSolver(" + " -> ".join(name for name, _ in self.stages) + " -> ode)"

    def solve(self, dynamics, initial, options):
        initial = initial.detach()
        # the common case first, before any book-keeping: the first stage solves every sample
        name, stage = self.stages[0]
        dynamics.reset_counters()
        try:
            first = stage.solve(dynamics, initial, options)
        except MemoryLimitError:
            first = None
        if first is not None and first.success and not options.check_stability:
            return first
        return self._compose(dynamics, initial, options, first)

    def _compose(self, dynamics, initial, options, first):
        """The per-sample composition of the stages, given the first stage's result on the whole batch."""
        B = initial.shape[0]
        state = initial.clone()
        names = [name for name, _ in self.stages] + ["ode"]
        device = state.device  # every per-sample tensor lives with the state
        stage_of = torch.zeros(B, dtype=torch.int64, device=device)  # index into names
        code = torch.full((B,), STATUSES.index(EquilibriumStatus.MAX_ITERATIONS), dtype=torch.int64, device=device)
        converged_code, unstable_code = STATUSES.index(EquilibriumStatus.CONVERGED), STATUSES.index(
            EquilibriumStatus.UNSTABLE)
        iterations = torch.zeros(B, dtype=torch.int64, device=device)
        drive = torch.zeros_like(state)
        abscissa = torch.full((B,), float("nan"), dtype=state.dtype, device=device) if options.check_stability else None
        pending = torch.arange(B, device=device)
        restart_from_initial = torch.zeros(B, dtype=torch.bool, device=device)  # unstable fixed points: integrate from the start
        ran, nfev, t, n_steps, trajectory, messages = [], 0, None, 0, [], {}
        for number, (name, stage) in enumerate(self.stages + (("ode", self.fallback),)):
            if name == "ode":
                pending = torch.cat([pending, torch.nonzero(restart_from_initial).flatten()]).sort().values
            if pending.numel() == 0:
                break
            whole = pending.numel() == B
            sub = dynamics if whole else dynamics.select(pending)
            start = state[pending]
            if bool(restart_from_initial.any()):
                start = torch.where(restart_from_initial[pending].unsqueeze(-1), initial[pending], start)
            if number == 0:  # solve() ran it already, on the whole batch
                result = first
            else:
                if whole:
                    dynamics.reset_counters()  # each stage's result counts its own evaluations
                try:
                    result = stage.solve(sub, start, options)
                except MemoryLimitError:  # Newton's Jacobians do not fit: integration needs only O(B N) memory
                    result = None
            if result is None:
                ran.append(f"{name} (skipped: not enough memory)")
                continue
            nfev += result.nfev
            label = name
            sub_code = torch.tensor([STATUSES.index(s) for s in result.sample_status], dtype=torch.int64,
                                    device=device)
            solved = sub_code == converged_code
            if options.check_stability and name != "ode" and bool(solved.any()):
                alpha, unstable = spectral_abscissa(sub, result.state)
                abscissa[pending] = alpha
                if bool((unstable & solved).any()):
                    label = f"{name} (unstable fixed point)"
                    restart_from_initial[pending[unstable & solved]] = True
                    sub_code = torch.where(unstable & solved, unstable_code, sub_code)
                    solved = solved & ~unstable
            ran.append(label)
            state[pending] = result.state.detach()
            drive[pending] = result.rate * dynamics.tau
            iterations[pending] += result.sample_iterations
            stage_of[pending] = number
            code[pending] = sub_code
            if name == "ode":
                t, n_steps, trajectory = result.t, result.n_steps, result.trajectory
                restart_from_initial[pending] = False
            if not result.success:
                messages[name] = result.message
            pending = pending[~solved & ~restart_from_initial[pending]]
        stages = [names[i] for i in stage_of.tolist()]
        status = [STATUSES[c] for c in code.tolist()]
        final = overall_status(status)
        counts = {}
        for stage_name, s in zip(stages, status):
            if s == EquilibriumStatus.CONVERGED:
                counts[stage_name] = counts.get(stage_name, 0) + 1
        solved_by = ", ".join(f"{n} {c}" for n, c in counts.items())
        if final == EquilibriumStatus.CONVERGED:
            message = converged_message(drive.abs().amax(-1), options.tol, f"(samples solved by stage: {solved_by})")
        else:
            last = next(reversed(messages.values()), "")
            message = (f"{sum(s != EquilibriumStatus.CONVERGED for s in status)} of {B} sample(s) not solved "
                       f"(solved by stage: {solved_by or 'none'}); last stage: {last}")
        result = make_result(dynamics, state, t=t, status=final, message=message, solver="->".join(ran),
                             options=options, n_steps=n_steps, iterations=int(iterations.max()),
                             trajectory=trajectory, stages=stages, sample_iterations=iterations,
                             sample_status=status, nfev=nfev, drive=drive)
        if abscissa is not None and not bool(torch.isnan(abscissa).any()):
            result.spectral_abscissa = abscissa
        return result
