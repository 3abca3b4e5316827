"""``tpdynamics stability``: eigen-spectrum stability report of a fixed point (section 6.7).

Builds the network and the mixture dynamics exactly as ``tpdynamics equilibrium`` does, brings them
to equilibrium with ``tpdynamics.equilibrium``, and reports the spectrum of the flow Jacobian at the
fixed point of one sample (``--sample``): verdict, spectral and numerical abscissa, the fixed-point
map's spectral radius, time scales, non-normality, transient growth and, for exact inverses, the
closed form.
"""
from __future__ import annotations

import argparse

import torch

import tpdynamics as tp
from tpdynamics.validation import check_positive

from .common import (add_dynamics_arguments, add_network_arguments, add_output_arguments, build_mixture,
                     build_network, emit_json, integer, say, warn_no_effect)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "stability", help="stability report of the fixed point (eigenvalues of the flow Jacobian)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(p)
    add_dynamics_arguments(p)
    g = p.add_argument_group("fixed point and report")
    g.add_argument("--tol", type=float, default=1e-10, help="residual tolerance of the fixed point (default 1e-10)")
    g.add_argument("--solver", default="auto", help=f"{', '.join(tp.EQUILIBRIUM_SOLVERS.names())} (default auto)")
    g.add_argument("--sample", type=integer("--sample", 0, 0), default=0,
                   help="which sample of the batch to analyse (default 0)")
    g.add_argument("--method", default="auto",
                   help="abscissa method: auto, closed_form, dense, arnoldi, shift_invert (default auto)")
    g.add_argument("--time-tol", type=float, default=1e-6,
                   help="residual for the predicted and integrated settling time (default 1e-6)")
    g.add_argument("--no-integrate", action="store_true",
                   help="do not integrate the ODE to measure the settling time")
    g.add_argument("--pseudospectrum", action="store_true", help="draw pseudospectrum contours in --plot")
    add_output_arguments(p, plot_help="write the eigenvalue and transient-growth figure (PNG)")
    p.set_defaults(run=run)


def run(args) -> int:
    import analysis

    check_positive("time_tolerance", args.time_tol)  # before the fixed point is computed
    if not args.plot:
        warn_no_effect(args, "pseudospectrum", "without --plot (it draws contours in the figure)")
    network = build_network(args)
    dynamics = build_mixture(args, network)
    if not 0 <= args.sample < dynamics.batch_size:
        raise ValueError(f"--sample={args.sample} must be in 0..{dynamics.batch_size - 1} (--batch={args.batch}).")
    with torch.no_grad():
        fixed = tp.equilibrium(dynamics, tol=args.tol, solver=args.solver)
    say(args, f"fixed point: {fixed.status} ({fixed.solver}): {fixed.message}")
    payload = {"network": network.describe(), "mu": dynamics.mu, "tau": dynamics.tau,
               "teaching": dynamics.teaching.describe(), "seed": args.seed, "batch": dynamics.batch_size,
               "sample": args.sample, "equilibrium": fixed.to_dict()}
    if not bool(fixed.converged[args.sample]):
        payload["error"] = "the fixed point was not reached; no stability report"
        emit_json(args.json, payload)
        say(args, f"error: sample {args.sample} did not reach the fixed point; raise --tol or change --solver.")
        return 1
    report = analysis.stability_report(dynamics, fixed.state, sample=args.sample, method=args.method,
                                       integrate=not args.no_integrate, time_tolerance=args.time_tol,
                                       fixed_point_tol=max(args.tol, 1e-6))
    per_sample = None
    if report.size <= 1500:
        alpha, omega = analysis.batch_abscissae(analysis.jacobian(dynamics, fixed.state))
        per_sample = {"spectral_abscissa": alpha.tolist(), "numerical_abscissa": omega.tolist(),
                      "hurwitz": (alpha < -report.tolerance).tolist(),
                      "negative_definite": (omega < -report.tolerance).tolist()}
    payload.update(report.to_dict())
    payload["per_sample"] = per_sample
    for line in report.to_text().splitlines():
        say(args, line)
    if per_sample is not None and dynamics.batch_size > 1:
        say(args, f"all {dynamics.batch_size} samples: alpha in [{min(per_sample['spectral_abscissa']):.4g}, "
                  f"{max(per_sample['spectral_abscissa']):.4g}], {sum(per_sample['hurwitz'])} Hurwitz, "
                  f"{sum(per_sample['negative_definite'])} negative definite")
    emit_json(args.json, payload)
    if args.plot:
        say(args, f"wrote {report.save_figure(args.plot, pseudospectrum=args.pseudospectrum)}")
    return 0 if report.verdict == analysis.STABLE else 1
