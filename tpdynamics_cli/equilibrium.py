"""``tpdynamics equilibrium``: integrate a network to equilibrium and report how it got there."""
from __future__ import annotations

import torch

import tpdynamics as tp

from .common import (add_dynamics_arguments, add_network_arguments, add_output_arguments, build_mixture,
                     build_network, emit_json, say, warn_no_effect)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "equilibrium", help="bring the mixture dynamics (eq. 6.1) to equilibrium",
        description="Integrate tau dh_i/dt = -h_i + (1-mu) f_i(h_(i-1)) + mu g_i(h_(i+1)) to equilibrium for a "
                    "random input batch, with a teaching signal on the output (eq. 6.10) unless --free.")
    add_network_arguments(p)
    add_dynamics_arguments(p)
    g = p.add_argument_group("solver")
    g.add_argument("--tol", type=float, default=1e-6,
                   help="tolerance on the fixed-point residual ||(1-mu) f + mu g - h||_inf = tau ||dh/dt||_inf "
                        "(default 1e-6)")
    g.add_argument("--solver", default="auto", help=f"{', '.join(tp.EQUILIBRIUM_SOLVERS.names())} (default auto)")
    g.add_argument("--method", default="dopri5", help="torchdiffeq method for the ODE path (default dopri5)")
    g.add_argument("--t-max", type=float, default=None, help="time limit (default 1000 tau)")
    add_output_arguments(p, plot_help="write the trajectories of each layer over time (PNG)")
    p.set_defaults(run=run)


def equilibrium_payload(args, network, dynamics, result) -> dict:
    return {
        **result.to_dict(),
        "mu": dynamics.mu, "tau": dynamics.tau, "layers": list(network.layer_sizes),
        "nonlinearities": [layer.nonlinearity.spec for layer in network.layers],
        "feedback": list(network.feedback_forms), "teaching": dynamics.teaching.describe(),
        "seed": args.seed, "batch": dynamics.batch_size,
        # the stage that solved each sample is in stage_per_sample / stage_counts; the ODE method only if it ran
        "ode_method": args.method if "ode" in result.stages else None,
    }


def run(args) -> int:
    if args.solver in ("anderson", "newton"):
        warn_no_effect(args, ("method", "t_max"), f"with --solver {args.solver} (they set the ODE integration)")
    network = build_network(args)
    dynamics = build_mixture(args, network)
    with torch.no_grad():
        result = tp.equilibrium(dynamics, tol=args.tol, solver=args.solver, method=args.method, t_max=args.t_max)
    say(args, f"{result.status}: {result.message}")
    stages = ", ".join(f"{name}: {count}" for name, count in result.stage_counts.items())
    say(args, f"stages ran: {result.solver}; samples per stage: {stages}; t={result.t} nfev={result.nfev} "
              f"max fixed-point residual={float(result.residual.max()):.3g}")
    emit_json(args.json, equilibrium_payload(args, network, dynamics, result))
    if args.plot:
        from analysis.plotting import plot_trajectory

        horizon = result.t if result.t else _relaxation_horizon(dynamics, args)
        with torch.no_grad():
            trajectory = tp.integrate(dynamics, torch.linspace(0.0, horizon, 200, dtype=torch.float64))
        # with a teaching signal the units move by O(eta_hat c_i) from the forward pass: draw the deviation
        reference = None if args.free else trajectory.states[0]
        written = plot_trajectory(trajectory, dynamics, args.plot, reference=reference, reference_name="fw",
                                  reference_label="the forward pass (t = 0)")
        say(args, f"wrote {written}")
    return 0 if result.success else 1


def _relaxation_horizon(dynamics, args) -> float:
    """Time the ODE path needs to reach tol (the plot's horizon when an iterative solver was used)."""
    with torch.no_grad():
        ode = tp.equilibrium(dynamics, tol=args.tol, solver="ode", method=args.method, t_max=args.t_max)
    return ode.t if ode.t and ode.t > 0 else 10.0 * dynamics.tau
