"""Options, argument types, checks of output paths and output helpers shared by the sub-commands."""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import tpdynamics as tp
from tpdynamics.errors import TPDynamicsWarning
from tpdynamics.serialization import write_json
from tpdynamics.threads import check_threads


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``tpdynamics CMD: error: ... (see 'tpdynamics CMD --help')``.

    Sub-parsers inherit the class (``add_subparsers`` uses the parent's class).
    """

    def error(self, message):
        # argument types below name their option themselves: drop argparse's "argument --x: " prefix then
        message = re.sub(r"^argument (-[\w-]+)(?:/-[\w-]+)*: (?=\1[= ])", "", message)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _sizes_type(option: str, example: str, *, at_least: int):
    """argparse type for ``option N,N,...``: positive integers, no empty entries, at least ``at_least`` of them."""
    def parse(text: str) -> list[int]:
        parts = [x.strip() for x in text.split(",")]
        if "" in parts:
            raise argparse.ArgumentTypeError(f"{option} {text!r} has an empty entry; write comma-separated positive "
                                             f"integers without gaps, such as {example}")
        try:
            sizes = [int(x) for x in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be comma-separated positive integers such as {example}, "
                                             f"got {text!r}") from None
        if min(sizes) < 1:
            raise argparse.ArgumentTypeError(f"{option} {text!r} contains {min(sizes)}; every entry must be a positive "
                                             f"integer, such as {example}")
        if len(sizes) < at_least:
            raise argparse.ArgumentTypeError(f"{option} needs at least two positive sizes (input and one layer), got "
                                             f"{text!r}; e.g. {example}")
        return sizes
    parse.__name__ = "sizes"
    return parse


#: argparse type for ``--layers n0,n1,...,nL``.
layer_sizes = _sizes_type("--layers", "6,6,6,6", at_least=2)


def integer(option: str, minimum: int, example: int, *, hint: str | None = None):
    """argparse type for a whole-number option ``>= minimum``; the message names the option and the expected form."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            form = " (write it in digits, without a decimal point or exponent)" if re.fullmatch(
                r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text.strip()) else ""
            raise argparse.ArgumentTypeError(f"{option} expects a whole number >= {minimum} such as {example}{form}, "
                                             f"got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{option}={value} must be >= {minimum} ({hint or f'e.g. {example}'})")
        return value
    parse.__name__ = "integer"
    return parse


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
    g.add_argument("--seed", type=integer("--seed", 0, 0), default=0, help="seed of weights and data (default 0)")
    g.add_argument("--float32", action="store_true", help="use float32 instead of float64")


def add_dynamics_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mu --tau --batch --eta-hat --free``."""
    g = parser.add_argument_group("dynamics (eq. 6.1)")
    g.add_argument("--mu", type=float, default=0.2, help="mixing coefficient mu in [0, 1) (default 0.2)")
    g.add_argument("--tau", type=float, default=1.0, help="neural time constant tau > 0 (default 1)")
    g.add_argument("--batch", type=integer("--batch", 1, 8), default=8, help="number of input samples (default 8)")
    g.add_argument("--eta-hat", type=float, default=None,
                   help="output target step of eq. 6.10 for a random label (default 0.1; no effect with --free)")
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
        warn_no_effect(args, "eta_hat", "with --free (there is no teaching signal to scale)")
        return tp.MixtureDynamics(network, h0, mu=args.mu, tau=args.tau)
    with torch.no_grad():
        output = network(h0)[-1]
    label = output + torch.randn(output.shape, generator=generator, dtype=network.dtype)
    if args.mu == 0:
        warn_no_effect(args, "eta_hat", "with --mu 0 (the teaching signal reaches the network through the feedback, "
                                        "whose weight is mu)")
    eta_hat = 0.1 if args.eta_hat is None else args.eta_hat
    return tp.MixtureDynamics(network, h0, mu=args.mu, tau=args.tau, label=label, eta_hat=eta_hat)


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
    g.add_argument("--scheduler", type=scheduler_spec, default="processes", metavar="WHERE",
                   help="where tasks run: processes (default: --jobs local processes), local-cluster[:N] (a Dask "
                        "LocalCluster of N worker processes, default the cores available or --jobs), or "
                        "tcp://HOST:PORT (a running Dask scheduler); Dask needs pip install 'tpdynamics[distributed]'")
    g.add_argument("--fresh", action="store_true", help="redo every task even if its result is stored")
    if store:
        g.add_argument("--store", default=None, metavar="DIR",
                       help="folder of the task results (default: tpdynamics-runs/ next to the first output file "
                            "of --json/--csv/--plot; nothing is kept without one)")


def jobs_of(args) -> int:
    """``--jobs`` as a number (``auto``: the cores available)."""
    return tp.available_cores() if args.jobs == "auto" else args.jobs


def scheduler_spec(text: str) -> str:
    """argparse type of ``--scheduler``: ``processes``, ``serial``, ``local-cluster[:N]`` or ``SCHEME://HOST:PORT``."""
    name, colon, count = text.partition(":")
    if text in ("processes", "serial", "local-cluster") or re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", text):
        return text
    if name == "local-cluster" and colon and count.isdigit() and int(count) >= 1:
        return text
    raise argparse.ArgumentTypeError(f"--scheduler must be processes, local-cluster, local-cluster:N (N >= 1 worker "
                                     f"processes) or tcp://HOST:PORT (a running Dask scheduler), got {text!r}")


def executor_of(args):
    """The executor of ``--scheduler`` for :func:`tpdynamics.runs.run_tasks` (``None``: processes by ``--jobs``).

    ``local-cluster`` without ``:N`` has ``--jobs`` workers when it is given, else the cores available;
    the Dask forms are checked here (a missing extra fails before any work).
    """
    from tpdynamics.runs import make_executor

    spec = getattr(args, "scheduler", "processes")
    if spec == "processes":
        return None
    if spec == "local-cluster":
        spec = f"local-cluster:{jobs_of(args) if given(args, 'jobs') else tp.available_cores()}"
    elif spec.startswith("local-cluster:"):
        warn_no_effect(args, "jobs", f"with --scheduler {spec} (N sets the worker processes)")
    elif "://" in spec:
        warn_no_effect(args, "jobs", "with a scheduler address (the cluster's workers run the tasks)")
    make_executor(spec, jobs=jobs_of(args))
    return spec


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


# -- options given on the command line, and options that have no effect ------------------------------
def given(args, dest: str) -> bool:
    """Whether option ``dest`` was given on the command line (set by :func:`tpdynamics_cli.main.main`)."""
    return dest in getattr(args, "given_options", ())


def warn_no_effect(args, dests, reason: str) -> None:
    """Warn (``TPDynamicsWarning``) about the options of ``dests`` that were given but have no effect."""
    for dest in [dests] if isinstance(dests, str) else dests:
        if given(args, dest):
            option = getattr(args, "option_names", {}).get(dest, "--" + dest.replace("_", "-"))
            warnings.warn(f"{option} has no effect {reason}; leave it out.", TPDynamicsWarning, stacklevel=2)


def cli_names(message: str, names: dict[str, str]) -> str:
    """Rewrite the API's parameter names in ``message`` as the command's options.

    E.g. ``time_tolerance=0`` -> ``--time-tol=0``.

    ``names`` maps parameter names to options. Names with an underscore are replaced wherever they
    stand as a word; plain names (``mu``, ``tol``) only where they are followed by ``=``.
    """
    for name in sorted(names, key=len, reverse=True):
        option = names[name]
        tail = r"(?![\w-])" if "_" in name else r"(?==)"
        message = re.sub(rf"(?<![\w.\-\[]){re.escape(name)}{tail}", option, message)
    return message


# -- output paths: checked before any work is done -----------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(option: str, value: str, folder: Path) -> None:
    if not folder.is_dir():
        raise ValueError(f"{option} {value}: {folder} is a file, not a folder; choose another location.")
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".tpdynamics-write-test-")
        os.close(handle)
        os.unlink(name)
    except OSError as err:
        raise ValueError(f"{option} {value}: cannot write in {folder} ({err.strerror or err}); choose a writable "
                         "location.") from None


def check_output_file(option: str, value: str, example: str) -> None:
    """Refuse an output file that is a folder or lies where nothing can be written."""
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{option} {value} is a folder; give a file name such as {path / example}.")
    _probe_writable(option, value, _nearest_existing(path.parent))


def check_output_folder(option: str, value: str) -> None:
    """Refuse an output folder that is a file or cannot be created."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {value} is a file; give the name of a folder (new or existing) to write the "
                         "results into.")
    _probe_writable(option, value, _nearest_existing(path))


def figure_path(option: str, value: str) -> str:
    """``value`` with ``.png`` added when it has no suffix; an unknown figure format is refused."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(value)
    if not path.suffix:
        return str(path.with_name(path.name + ".png"))
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise ValueError(f"{option} {value}: matplotlib cannot write .{path.suffix[1:]} figures; end the name with "
                         f"one of {', '.join('.' + f for f in sorted(formats))} (e.g. {path.with_suffix('.png')}).")
    return value


def check_outputs(args) -> None:
    """Check ``--json``, ``--csv``, ``--plot`` and ``--out`` of ``args`` before the command runs.

    Nothing is created; a folder that is in the way, a file where a folder is needed or a location
    that cannot be written fails at once instead of after the computation.
    """
    command = getattr(args, "command", "result")
    json_path = getattr(args, "json", None)
    if json_path not in (None, "-"):
        check_output_file("--json", json_path, f"{command}.json")
    if getattr(args, "csv", None) is not None:
        check_output_file("--csv", args.csv, f"{command}.csv")
    if getattr(args, "plot", None) is not None:
        check_output_file("--plot", args.plot, f"{command}.png")  # a folder is refused, not given a suffix
        args.plot = figure_path("--plot", args.plot)
    if getattr(args, "out", None) is not None and not getattr(args, "list", False):
        check_output_folder("--out", args.out)
