"""Entry point of the ``tpdynamics`` console script."""
from __future__ import annotations

import argparse
import importlib
import sys

#: Sub-command modules of this package, in the order ``tpdynamics --help`` lists them.
SUBCOMMANDS = ("demo", "equilibrium", "stability", "scan", "train", "compare", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpdynamics",
        description="Target propagation as network dynamics: equilibria, stability and training.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tpdynamics_cli.{name}").add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError) as err:  # bad input: one clear line, no traceback
        parser.exit(2, f"tpdynamics {args.command}: error: {err}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
