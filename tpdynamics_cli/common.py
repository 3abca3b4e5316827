"""Options and output helpers shared by the sub-commands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import tpdynamics as tp
from tpdynamics.serialization import write_json
from tpdynamics.threads import check_threads


def layer_sizes(text: str) -> list[int]:
    """argparse type for ``--layers n0,n1,...,nL``."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers must be comma-separated integers such as 6,6,6,6, got {text!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--layers needs at least two positive sizes (input and one layer), got {text!r}")
    return sizes


def add_network_arguments(parser: argparse.ArgumentParser, *, layers: str = "6,6,6,6") -> None:
    """``--layers --nonlinearity --output-nonlinearity --feedback --weight-init --seed --float32``."""
    g = parser.add_argument_group("network")
    g.add_argument("--layers", type=layer_sizes, default=layer_sizes(layers), metavar="N0,N1,...,NL",
                   help=f"layer sizes from the input h_0 to the output h_L (default {layers})")
    g.add_argument("--nonlinearity", default="leaky_relu:0.35",
                   help="s_i of every layer: identity, tanh, leaky_relu[:slope] (default leaky_relu:0.35)")
    g.add_argument("--output-nonlinearity", default=None, help="override s_L (e.g. identity)")
    g.add_argument("--feedback", default="exact",
                   help=f"feedback form g_i: {', '.join(tp.FEEDBACK_FORMS.names())} (default exact)")
    g.add_argument("--weight-init", default="orthogonal", choices=("orthogonal", "gaussian"),
                   help="forward weight draw (default orthogonal; gaussian is the thesis's, section 4.2.3)")
    g.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    g.add_argument("--float32", action="store_true", help="use float32 instead of float64")


def add_dynamics_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mu --tau --batch --eta-hat --free``."""
    g = parser.add_argument_group("dynamics (eq. 6.1)")
    g.add_argument("--mu", type=float, default=0.2, help="mixing coefficient mu in [0, 1) (default 0.2)")
    g.add_argument("--tau", type=float, default=1.0, help="neural time constant tau > 0 (default 1)")
    g.add_argument("--batch", type=int, default=8, help="number of input samples (default 8)")
    g.add_argument("--eta-hat", type=float, default=0.1,
                   help="output target step of eq. 6.10 for a random label (default 0.1)")
    g.add_argument("--free", action="store_true", help="no teaching signal (h_L^trgt = h_L)")


def add_output_arguments(parser, *, plot_help: str = "write a PNG figure") -> None:
    """``--json [FILE]`` and ``--plot FILE`` on ``parser`` (an ``ArgumentParser`` or an argument group)."""
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the results as JSON to FILE, or to stdout if no FILE is given")
    parser.add_argument("--plot", default=None, metavar="FILE", help=plot_help)


def build_network(args) -> tp.LayeredNetwork:
    return tp.LayeredNetwork.build(
        args.layers, nonlinearity=args.nonlinearity, output_nonlinearity=args.output_nonlinearity,
        feedback=args.feedback, seed=args.seed, weight_init=args.weight_init,
        dtype=torch.float32 if args.float32 else torch.float64)


def build_mixture(args, network: tp.LayeredNetwork) -> tp.MixtureDynamics:
    """Input ``h_0 ~ N(0, 1)`` and label ``y = h_L + N(0, 1)`` (seeded), then the single-phase dynamics."""
    generator = tp.make_generator(args.seed + 1)
    if args.batch < 1:
        raise ValueError(f"--batch={args.batch} must be >= 1.")
    h0 = torch.randn(args.batch, network.layer_sizes[0], generator=generator, dtype=network.dtype)
    if args.free:
        return tp.MixtureDynamics(network, h0, mu=args.mu, tau=args.tau)
    with torch.no_grad():
        output = network(h0)[-1]
    label = output + torch.randn(output.shape, generator=generator, dtype=network.dtype)
    return tp.MixtureDynamics(network, h0, mu=args.mu, tau=args.tau, label=label, eta_hat=args.eta_hat)


def _int_or_auto(option: str, what: str):
    """argparse type: ``auto`` or an integer (its range is checked where it is used, naming the option)."""
    def parse(text: str):
        if text == "auto":
            return "auto"
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a positive integer ({what}) or 'auto', "
                                             f"got {text!r}") from None

    return parse


def add_thread_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads N|auto`` (every command has it: :func:`tpdynamics_cli.main.build_parser` adds it)."""
    parser.add_argument("--threads", type=_int_or_auto("--threads", "intra-op torch threads of this process"),
                        default="auto", metavar="N",
                        help="intra-op torch threads of this process (default auto: 1 below 256-wide layers, "
                             "else the idle cores; worker processes always use 1)")


def apply_threads(args) -> int:
    """Set this process's torch threads from ``--threads`` (``auto``: :func:`tpdynamics.default_threads` of the
    widest ``--layers``); return the count."""
    threads = getattr(args, "threads", "auto")
    if threads == "auto":
        layers = getattr(args, "layers", None)
        threads = tp.default_threads(max(layers) if layers else None)
    tp.set_threads(check_threads(threads, name="--threads"))
    return threads


def add_run_arguments(parser, *, jobs_default, store: bool) -> None:
    """``--jobs N|auto``, ``--fresh`` and (``store=True``) ``--store DIR``: the options of commands that keep
    their tasks' results (:mod:`tpdynamics.runs`)."""
    g = parser.add_argument_group("runs (results kept as they finish; Ctrl-C keeps them, a rerun resumes)")
    default_text = "the cores available" if jobs_default == "auto" else str(jobs_default)
    g.add_argument("--jobs", type=_int_or_auto("--jobs", "worker processes"), default=jobs_default, metavar="N",
                   help=f"worker processes, one torch thread each; 1 runs in this process; auto = the cores "
                        f"available ({tp.available_cores()} here) (default {default_text})")
    g.add_argument("--fresh", action="store_true", help="redo every task even if its result is stored")
    if store:
        g.add_argument("--store", default=None, metavar="DIR",
                       help="folder of the task results (default: tpdynamics-runs/ next to the first output file "
                            "of --json/--csv/--plot; nothing is kept without one)")


def jobs_of(args) -> int:
    """``--jobs`` as a number (``auto``: the cores available)."""
    return tp.available_cores() if args.jobs == "auto" else args.jobs


def store_of(args, *outputs):
    """``--store``, else ``tpdynamics-runs/`` in the folder of the first output file given (not stdout), else None."""
    if getattr(args, "store", None):
        return args.store
    for output in outputs:
        if output and output != "-":
            return str(Path(output).expanduser().resolve().parent / "tpdynamics-runs")
    return None


def emit_json(destination: str | None, payload: dict) -> None:
    """Write ``payload`` to ``destination`` (a path, or ``'-'`` for stdout); no-op if ``None``."""
    if destination is None:
        return
    text = write_json(None if destination == "-" else destination, payload)
    if destination == "-":
        sys.stdout.write(text + "\n")


def say(args, message: str) -> None:
    """Human-readable output; goes to stderr when the JSON goes to stdout."""
    stream = sys.stderr if getattr(args, "json", None) == "-" else sys.stdout
    print(message, file=stream)
