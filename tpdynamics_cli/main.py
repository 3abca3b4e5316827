"""Entry point of the ``tpdynamics`` console script."""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import signal
import sys
import threading
import warnings

import tpdynamics as tp
from tpdynamics.runs import RunInterrupted

from .common import Parser, add_thread_arguments, apply_threads, check_outputs, cli_names

#: Sub-command modules of this package, in the order ``tpdynamics --help`` lists them.
SUBCOMMANDS = ("demo", "equilibrium", "stability", "scan", "train", "compare", "reproduce", "sweep")

#: API parameter names that differ from the option's destination, per sub-command (for messages).
API_NAMES = {
    "stability": {"time_tolerance": "time_tol"},
    "scan": {"cases_per_cell": "map_cases"},
}

_UNSET = object()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tpdynamics",
        description="Target propagation as network dynamics: equilibria, stability and training.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tpdynamics_cli.{name}").add_parser(subparsers)
        add_thread_arguments(subparsers.choices[name])  # --threads on every command, the same way
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The sub-parser of ``command``."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--layers -3,6,6`` -> ``--layers=-3,6,6``: argparse would take ``-3,6,6`` for an option.

    (argparse accepts ``-3`` and ``-0.5`` as values, but not a list that starts with a minus sign;
    joined, the value reaches the option's own check and its message.)
    """
    out: list[str] = []
    for token in argv:
        if out and re.match(r"-\d", token) and out[-1].startswith("--") and "=" not in out[-1] and out[-1] != "--":
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _given_options(sub: argparse.ArgumentParser, rest: list[str], args) -> set[str]:
    """Destinations of the options given on the command line (argparse fills only the missing defaults)."""
    probe = argparse.Namespace(**{dest: _UNSET for dest in vars(args)})
    try:
        sub.parse_args(rest, namespace=probe)
    except SystemExit:  # pragma: no cover - the same arguments parsed a moment ago
        return set()
    return {dest for dest, value in vars(probe).items() if value is not _UNSET}


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    parser = build_parser()
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    sub = subcommand_parser(parser, args.command)
    if extra:  # reported by the sub-command, with the option meant where there is a close one
        known = [o for a in sub._actions for o in a.option_strings]
        guesses = [g for e in extra for g in difflib.get_close_matches(e.split("=")[0], known, n=1, cutoff=0.7)]
        sub.error(f"unrecognized arguments: {' '.join(extra)}"
                  + (f" (did you mean {', '.join(guesses)}?)" if guesses else ""))
    options = {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings and a.dest != "help"}
    names = {dest: option for dest, option in options.items()}
    names.update({api: options[dest] for api, dest in API_NAMES.get(args.command, {}).items() if dest in options})
    names.setdefault("layer_sizes", options.get("layers", "layer_sizes"))
    args.option_names = options
    args.given_options = _given_options(sub, argv[argv.index(args.command) + 1:], args)
    prefix = f"tpdynamics {args.command}"

    def show(message, category, filename, lineno, file=None, line=None):
        (file or sys.stderr).write(f"{prefix}: warning: {cli_names(str(message), names)}\n")

    previous = tp.get_threads()
    main_thread = threading.current_thread() is threading.main_thread()
    on_term = signal.getsignal(signal.SIGTERM)
    if main_thread:  # `kill PID` stops as Ctrl-C does: workers stopped, results kept
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show  # one line per warning, in the command's own option names
            check_outputs(args)
            apply_threads(args)
            return int(args.run(args) or 0)
    except (ValueError, TypeError) as err:  # bad input: one clear line, no traceback
        parser.exit(2, f"{prefix}: error: {cli_names(str(err), names)}\n")
    except RunInterrupted as err:  # Ctrl-C in a command that keeps its results: say what was kept
        print(f"{prefix}: {err.message}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, on_term)
        tp.set_threads(previous)  # the caller's setting again (main() is also called in-process, e.g. by tests)


def console() -> None:
    """The ``tpdynamics`` console script: :func:`main`, then exit with its status.

    After an interrupt (status 130) everything has been written and fsync-ed and the workers are gone,
    so the process leaves at once (``os._exit``): the interpreter's own teardown of torch and the other
    modules takes seconds on a loaded machine (3.5 s measured here at load 6.5 on 2 cores), and Ctrl-C
    must be answered within 5 s.
    """
    code = main()
    if code == 130:
        _leave_now(code)
    sys.exit(code)


def _leave_now(code: int) -> None:
    """Flush, run multiprocessing's exit finalisers, then ``os._exit(code)``.

    ``os._exit`` skips the interpreter's exit handlers, among them multiprocessing's, which unlink the
    named semaphores of a worker pool's queues (registered with its resource tracker in this process).
    Whether the pool was already garbage-collected then depends on timing; when it was not, the tracker
    printed "There appear to be N leaked semaphore objects" after the interrupt message. The finalisers
    are quick once the workers are gone.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    import multiprocessing.util

    multiprocessing.util._run_finalizers(0)  # what normal exit runs first (exit priority >= 0)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
