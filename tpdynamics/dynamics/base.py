"""Base class of the network dynamics modules.

A dynamics module is a ``torch.nn.Module`` whose ``forward(t, state)`` returns
``d state / dt``, so it can be handed directly to ``torchdiffeq.odeint`` and
``torchdiffeq.odeint_adjoint``. States are batch-first, shape ``(B, N)``: the
activities of the non-clamped layers stacked along the feature axis.

The contract is :class:`NetworkDynamics` (its docstring lists the hooks a subclass fills); everything
else — the one counted evaluation of the right-hand side, finiteness checks that name the layer and
time of a divergence, step counters, residuals, batch selection — lives here.
"""
from __future__ import annotations

import abc
import copy

import torch
from torch import nn

from ..validation import check_device, check_positive, check_tensor, same_device
from ..blocktridiagonal import BlockTridiagonal
from ..errors import DivergenceError
from ..network import FEEDBACK, FORWARD, TEACHING, LayeredNetwork
from ..registry import Registry


class NetworkDynamics(nn.Module, abc.ABC):
    """Abstract ``tau d state/dt = drive(state)`` over a :class:`LayeredNetwork` with clamped input.

    Rules for writing a dynamics model (register it with ``@DYNAMICS.register(name)``). A subclass
    fills three hooks:

    * :meth:`drive` — ``tau d state / dt`` as a function of the state (``(B, N) -> (B, N)``), with
      ``check`` validating inverse-nonlinearity domains;
    * :meth:`jacobian_blocks` — ``d (d state / dt) / d state`` as a :class:`BlockTridiagonal`;
    * :meth:`initial_state` — the state to start from (``'forward'``: the forward pass; ``'zeros'``).

    It may override :attr:`state_sizes` (default ``(n_1, ..., n_L)``), :meth:`block_name`,
    :meth:`inputs` (tensors that ``adjoint_params`` must see) and :meth:`describe`. The right-hand side
    is evaluated only through :meth:`evaluate` (and :meth:`rate` / :meth:`forward`, which call it), so
    :attr:`nfev` counts every evaluation; :meth:`residual` is an uncounted diagnostic.

    Parameters
    ----------
    network : LayeredNetwork
    h0 : Tensor, shape (B, n_0)
        Clamped input ``h_0``.
    tau : float
        Neural time constant ``tau > 0``.
    device : str or torch.device, optional
        Where the dynamics compute: ``h0`` (and a subclass's teaching tensors) are moved there, and the
        network's weights must live there already (``network.to(device)``; ``ValueError`` otherwise).
        Default: where ``h0`` is (``cpu`` unless given otherwise). The solvers create every tensor of
        theirs on :attr:`device`.

    Attributes
    ----------
    nfev : int
        Right-hand-side evaluations (calls of :meth:`evaluate`, also through :meth:`rate` and
        :meth:`forward`) since construction or :meth:`reset_counters`.
    n_accepted_steps, n_rejected_steps : int
        Adaptive-solver steps, counted through torchdiffeq's step callbacks.
    """

    def __init__(self, network: LayeredNetwork, h0: torch.Tensor, *, tau: float = 1.0, device=None):
        super().__init__()
        if not isinstance(network, LayeredNetwork):
            raise TypeError(f"network must be a LayeredNetwork, got {type(network).__name__}.")
        if device is not None:
            device = check_device(device)
            weights = next(iter(network.parameters()), None)
            if weights is not None and not same_device(weights.device, device):
                raise ValueError(f"device={str(device)!r} but the network's weights are on {str(weights.device)!r}; "
                                 f"move the network first (network.to({str(device)!r})) or pass device="
                                 f"{str(weights.device)!r}.")
            if isinstance(h0, torch.Tensor):
                h0 = h0.to(device)
        self.network = network
        self.h0 = check_tensor("h0", h0, ndim=2, size=network.layer_sizes[0], dtype=network.dtype)
        self.tau = check_positive("tau", tau, hint="tau is the neural time constant of eq. (6.1), e.g. tau=1.0.")
        self.reset_counters()

    # -- state layout ---------------------------------------------------------------------------
    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Sizes of the blocks of the state, ``(n_1, ..., n_L)`` for the mixture model."""
        return self.network.layer_sizes[1:]

    @property
    def state_size(self) -> int:
        return sum(self.state_sizes)

    @property
    def batch_size(self) -> int:
        return self.h0.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.network.dtype

    @property
    def device(self) -> torch.device:
        """Where the dynamics compute (the device of ``h0``); the solvers create their tensors there."""
        return self.h0.device

    def split(self, state: torch.Tensor) -> list[torch.Tensor]:
        """``state`` (B, N) -> list of blocks ``(B, n_k)`` (views)."""
        return list(state.split_with_sizes(self.state_sizes, dim=-1))  # (not torch.split: its Python checks)

    def join(self, blocks) -> torch.Tensor:
        """Inverse of :meth:`split`."""
        return torch.cat(list(blocks), dim=-1)

    def check_state(self, state: torch.Tensor, name: str = "state") -> torch.Tensor:
        return check_tensor(name, state, ndim=2, size=self.state_size, dtype=self.dtype, batch=self.batch_size)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The input tensors the dynamics depend on (``h0``, targets...), e.g. for ``adjoint_params``."""
        return (self.h0,)

    @staticmethod
    def _read_graph(network: LayeredNetwork, model: str) -> list[list[tuple[int, str, int | None]]]:
        """For each layer node ``1..L``: its in-edges ``(source, kind, owner)`` from the graph.

        Checks that every layer has one forward (basal) input and one feedback or teaching (apical)
        input; ``model`` names the dynamics in the error message.
        """
        edges = []
        for node in range(1, network.depth + 1):
            incoming = network.in_edges(node)
            kinds = sorted(kind for _, kind, _ in incoming)
            apical = [k for k in kinds if k in (FEEDBACK, TEACHING)]
            if kinds.count(FORWARD) != 1 or len(apical) != 1:
                if not apical:
                    raise ValueError(
                        f"layer h_{node} has no apical input: layer {node + 1} has no feedback mapping "
                        f"g_{node}. The {model} dynamics need feedback on layers 2..L; build the network "
                        "with feedback='exact', 'learned', 'original' or 'fixed'.")
                raise ValueError(f"layer h_{node} has in-edges {kinds}; the {model} model needs exactly one "
                                 "forward and one feedback/teaching input per layer.")
            edges.append(incoming)
        return edges

    # -- the three hooks ------------------------------------------------------------------------
    @abc.abstractmethod
    def drive(self, state: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """``tau d state / dt``, shape ``(B, N)``. ``check`` validates inverse-nonlinearity domains."""

    @abc.abstractmethod
    def jacobian_blocks(self, state: torch.Tensor) -> BlockTridiagonal:
        """Jacobian of ``d state / dt`` with respect to ``state``, block tridiagonal."""

    @abc.abstractmethod
    def initial_state(self, kind: str = "forward") -> torch.Tensor:
        """Initial state: ``'forward'`` (the forward pass) or ``'zeros'``."""

    # -- derived ----------------------------------------------------------------------------------
    def evaluate(self, state: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """One evaluation of the right-hand side, counted in :attr:`nfev`: ``drive(state)`` = ``tau d state/dt``.

        Every solver evaluates the dynamics through this method (directly, or through :meth:`rate` and
        :meth:`forward`), so ``nfev`` is counted in one place.
        """
        self.nfev += 1
        return self.drive(state, check=check)

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``d state / dt`` at time ``t`` (autonomous: ``t`` is unused except in error messages); counted."""
        rate = self.rate(state)
        if not torch.isfinite(rate).all():
            self._raise_divergence(float(t), state, rate)
        return rate

    def _raise_divergence(self, t: float, state: torch.Tensor, rate: torch.Tensor):
        bad_state = [not torch.isfinite(b).all() for b in self.split(state)]
        bad_rate = [not torch.isfinite(b).all() for b in self.split(rate)]
        k = next((k for k, bad in enumerate(bad_state) if bad), None)
        what = "state"
        if k is None:
            k, what = next(k for k, bad in enumerate(bad_rate) if bad), "rate dh/dt"
        name = self.block_name(k)
        raise DivergenceError(f"non-finite {what} in layer {name} at t={t:.6g}: the dynamics diverged.",
                              t=t, layer=k + 1)

    def block_name(self, k: int) -> str:
        """Name of state block ``k`` (``h_{k+1}`` for the mixture model)."""
        return f"h_{k + 1}"

    def rate(self, state: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """``d state / dt = evaluate(state) / tau``, shape ``(B, N)``; counted, without finiteness checks."""
        return self.evaluate(state, check=check) / self.tau

    def residual(self, state: torch.Tensor) -> torch.Tensor:
        """Per-sample ``||d state / dt||_inf``, shape ``(B,)`` (a diagnostic: no gradient, not counted in ``nfev``)."""
        with torch.no_grad():
            return (self.drive(state, check=False) / self.tau).abs().amax(dim=-1)

    def fixed_point_residual(self, state: torch.Tensor) -> torch.Tensor:
        """Per-sample ``||drive(state)||_inf = tau ||d state / dt||_inf``, shape ``(B,)`` (uncounted, no gradient).

        The distance the fixed-point map moves the state, ``||(1-mu) f + mu g - h||_inf`` for the mixture
        model: the quantity the equilibrium tolerance bounds. It does not depend on ``tau`` (the fixed
        point does not either), unlike :meth:`residual`.
        """
        with torch.no_grad():
            return self.drive(state, check=False).abs().amax(dim=-1)

    def fixed_point_map(self, state: torch.Tensor) -> torch.Tensor:
        """The map ``state <- state + tau d state/dt`` (``h <- (1-mu) f + mu g`` for the mixture model)."""
        return state + self.drive(state)

    # -- block sweeps (the Gauss-Seidel / SOR stage of the equilibrium solvers) -------------------
    @property
    def sweep_groups(self) -> tuple[tuple[int, ...], ...]:
        """Groups of state blocks that a Gauss-Seidel sweep updates one group after the other.

        Blocks within a group must not depend on each other (except each on itself), so that a group is
        updated at once from the freshest values of the others. The default, one group of all blocks, makes
        a sweep the plain fixed-point map (a Jacobi step); a subclass whose :meth:`drive_group` is cheap
        returns a finer ordering (the mixture model: odd layers, then even layers).
        """
        return (tuple(range(len(self.state_sizes))),)

    def block_slopes(self) -> tuple[float, ...]:
        """``d drive_k / d block_k`` of each block, a scalar multiple of the identity (default ``-1``).

        A Gauss-Seidel sweep divides the drive of block ``k`` by ``-slope_k``, which solves the block's own
        (linear) self-dependence exactly, e.g. the teaching signal ``mu c h_L`` of the output layer.
        """
        return (-1.0,) * len(self.state_sizes)

    def drive_group(self, blocks: list[torch.Tensor], group, *, check: bool = True) -> list[torch.Tensor]:
        """The drive of the blocks in ``group`` at the state ``blocks`` (a list of ``(B, n_k)``); uncounted hook.

        Default: the whole drive, sliced; a subclass that lists a finer :attr:`sweep_groups` computes only
        the blocks asked for. Solvers call :meth:`evaluate_group`, which counts.
        """
        full = self.split(self.drive(self.join(blocks), check=check))
        return [full[k] for k in group]

    def evaluate_group(self, blocks: list[torch.Tensor], group, *, check: bool = True) -> list[torch.Tensor]:
        """:meth:`drive_group`, counted in :attr:`nfev` as one evaluation when ``group`` holds block 0.

        A sweep over every group of :attr:`sweep_groups` evaluates each block once: one evaluation of the
        right-hand side.
        """
        if 0 in group:
            self.nfev += 1
        return self.drive_group(blocks, group, check=check)

    #: Plain counters, set past ``nn.Module.__setattr__`` (which checks for parameters, buffers and modules on
    #: every assignment: ``nfev += 1`` runs once per evaluation, in the solvers' innermost loop).
    _COUNTERS = frozenset({"nfev", "n_accepted_steps", "n_rejected_steps", "last_step_size"})

    def __setattr__(self, name, value):
        if name in NetworkDynamics._COUNTERS:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def reset_counters(self) -> None:
        self.nfev = 0
        self.n_accepted_steps = 0
        self.n_rejected_steps = 0
        self.last_step_size = None

    # torchdiffeq step callbacks (called by the adaptive Runge-Kutta solvers)
    def callback_accept_step(self, t0, y0, dt):
        self.n_accepted_steps += 1
        self.last_step_size = float(dt.detach()) if isinstance(dt, torch.Tensor) else float(dt)

    def callback_reject_step(self, t0, y0, dt):
        self.n_rejected_steps += 1

    def select(self, index) -> "NetworkDynamics":
        """A copy of these dynamics restricted to the samples ``index`` of the batch (same network)."""
        clone = copy.copy(self)
        clone._modules = dict(self._modules)  # share the network, not the dict
        clone.h0 = self.h0[index]
        clone.reset_counters()
        return clone

    def describe(self) -> dict:
        return {"model": getattr(self, "name", type(self).__name__), "tau": self.tau,
                **self.network.describe()}


DYNAMICS: Registry[type[NetworkDynamics]] = Registry("dynamics model", NetworkDynamics, "model")
