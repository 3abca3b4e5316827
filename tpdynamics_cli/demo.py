"""``tpdynamics demo``: the main job on built-in defaults.

A 6-6-6-6 network with exact inverses (the thesis's layer width) is brought to equilibrium
without and with a teaching signal; the demo checks the two statements of section 6.4 that
define the model — the free equilibrium is the forward pass, and the teaching signal reaches
layer ``i`` scaled by ``(mu/(1-mu))^(L+1-i)`` (eq. 6.16) — and writes figures and JSON.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import tpdynamics as tp
from tpdynamics.theory import layer_factor, mixture_displacement_first_order

from .common import emit_json, integer, layer_sizes, say


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main job on built-in defaults (figures + JSON)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="tpdynamics-demo", help="output folder (default ./tpdynamics-demo)")
    p.add_argument("--layers", type=layer_sizes, default=layer_sizes("6,6,6,6"), metavar="N0,...,NL",
                   help="layer sizes from the input h_0 to the output h_L; layers 1..L equal, for the exact "
                        "inverses (default 6,6,6,6)")
    p.add_argument("--mu", type=float, default=0.2, help="mixing coefficient mu in (0, 1) of eq. 6.1 (default 0.2)")
    p.add_argument("--eta-hat", type=float, default=0.1,
                   help="output target step eta_hat of eq. 6.10 (default 0.1)")
    p.add_argument("--batch", type=integer("--batch", 1, 16), default=16,
                   help="number of random input samples (default 16)")
    p.add_argument("--seed", type=integer("--seed", 0, 0), default=0, help="seed of weights and data (default 0)")
    p.set_defaults(run=run, json=None)


def run(args) -> int:
    from analysis.plotting import plot_layer_signals, plot_trajectory

    if args.mu == 0:  # legal for the dynamics, but nothing to show: no teaching signal reaches any layer
        raise ValueError("--mu=0 leaves nothing to demonstrate: the teaching signal reaches layer i scaled by "
                         "(mu/(1-mu))^(L+1-i) (eq. 6.16), which is 0. Use mu in (0, 0.5), e.g. --mu 0.2.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    network = tp.LayeredNetwork.build(args.layers, nonlinearity="leaky_relu:0.35", output_nonlinearity="identity",
                                      feedback="exact", weight_init="orthogonal", seed=args.seed)
    generator = tp.make_generator(args.seed + 1)
    h0 = torch.randn(args.batch, network.layer_sizes[0], generator=generator, dtype=network.dtype)
    with torch.no_grad():
        forward = network(h0)
        label = forward[-1] + torch.randn(forward[-1].shape, generator=generator, dtype=network.dtype)
        free = tp.MixtureDynamics(network, h0, mu=args.mu)
        taught = tp.MixtureDynamics(network, h0, mu=args.mu, label=label, eta_hat=args.eta_hat)
        # start the free network at rest (h = 0) so that the figure shows it settle on the forward pass
        free_result = tp.equilibrium(free, tol=1e-10, solver="ode", initial_state=free.initial_state("zeros"))
        taught_result = tp.equilibrium(taught, tol=1e-10, solver="ode")
        taught_newton = tp.equilibrium(taught, tol=1e-10, solver="auto")
        measured = [h - layer(prev) for layer, prev, h in
                    zip(network.layers, [h0] + taught_result.layers[:-1], taught_result.layers)]
        predicted = mixture_displacement_first_order(network, h0, label, mu=args.mu, eta_hat=args.eta_hat)
        free_deviation = float((free_result.state - free.initial_state()).abs().max())
        rows = []
        for i, (m, p) in enumerate(zip(measured, predicted), start=1):
            rows.append({
                "layer": i, "layer_factor": layer_factor(args.mu, network.depth, i),
                "measured_norm": float(m.norm(dim=-1).mean()), "predicted_norm": float(p.norm(dim=-1).mean()),
                "relative_error": float((m - p).norm() / p.norm()),
            })
        solver_gap = float((taught_result.state - taught_newton.state).abs().max())

    payload = {
        "network": network.describe(), "mu": args.mu, "eta_hat": args.eta_hat, "batch": args.batch, "seed": args.seed,
        "free": {**free_result.to_dict(), "max_deviation_from_forward_pass": free_deviation},
        "taught": taught_result.to_dict(), "taught_auto_solver": taught_newton.to_dict(),
        "max_gap_between_solvers": solver_gap, "learning_signal_eq_6_16": rows,
    }
    emit_json(str(out / "demo.json"), payload)
    with torch.no_grad():
        for name, dyn, res in (("free", free, free_result), ("taught", taught, taught_result)):
            times = torch.linspace(0.0, max(res.t or 1.0, 1.0), 200, dtype=torch.float64)
            start = dyn.initial_state("zeros" if name == "free" else "forward")
            # the teaching signal moves the units by O(eta_hat c_i): drawn as the deviation from the forward pass
            # (the free equilibrium), at whose scale the approach shows
            plot_trajectory(tp.integrate(dyn, times, initial_state=start, rtol=1e-11, atol=1e-13), dyn,
                            out / f"trajectory_{name}.png", title=f"{name} equilibrium, mu={args.mu}",
                            reference=None if name == "free" else free.initial_state("forward"),
                            reference_name="free", reference_label="the free equilibrium (the forward pass)")
    plot_layer_signals([r["measured_norm"] for r in rows], [r["predicted_norm"] for r in rows],
                       out / "learning_signal.png", title=r"$\|h^*_i - f_i(h^*_{i-1})\|$ vs eq. (6.16)")

    say(args, f"free equilibrium: {free_result.status} at t={free_result.t:.3g}; max |h* - forward pass| = "
              f"{free_deviation:.2e} (section 6.4: should be 0)")
    say(args, f"with teaching signal: {taught_result.status} at t={taught_result.t:.3g} ({taught_result.nfev} "
              f"evaluations); auto solver: {taught_newton.solver}, {taught_newton.nfev} evaluations, "
              f"max gap {solver_gap:.1e}")
    for r in rows:
        say(args, f"  layer {r['layer']}: ||h*_i - f_i|| = {r['measured_norm']:.3e}, eq. 6.16 predicts "
                  f"{r['predicted_norm']:.3e} (layer factor {r['layer_factor']:.3g}, rel. error {r['relative_error']:.1e})")
    say(args, f"wrote {out}/demo.json, trajectory_free.png, trajectory_taught.png, learning_signal.png")
    return 0 if free_result.success and taught_result.success else 1
