"""Entry point of the ``tpdynamics`` console script."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

import tpdynamics as tp
from tpdynamics.runs import RunInterrupted

from .common import add_thread_arguments, apply_threads

#: Sub-command modules of this package, in the order ``tpdynamics --help`` lists them.
SUBCOMMANDS = ("demo", "equilibrium", "stability", "scan", "train", "compare", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpdynamics",
        description="Target propagation as network dynamics: equilibria, stability and training.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tpdynamics_cli.{name}").add_parser(subparsers)
        add_thread_arguments(subparsers.choices[name])  # --threads on every command, the same way
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = tp.get_threads()
    main_thread = threading.current_thread() is threading.main_thread()
    on_term = signal.getsignal(signal.SIGTERM)
    if main_thread:  # `kill PID` stops as Ctrl-C does: workers stopped, results kept
        signal.signal(signal.SIGTERM, _terminate)
    try:
        apply_threads(args)
        return int(args.run(args) or 0)
    except (ValueError, TypeError) as err:  # bad input: one clear line, no traceback
        parser.exit(2, f"tpdynamics {args.command}: error: {err}\n")
    except RunInterrupted as err:  # Ctrl-C in a command that keeps its results: say what was kept
        print(f"tpdynamics {args.command}: {err.message}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"tpdynamics {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, on_term)
        tp.set_threads(previous)  # the caller's setting again (main() is also called in-process, e.g. by tests)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
