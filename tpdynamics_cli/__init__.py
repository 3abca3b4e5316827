"""Command-line interface of tpdynamics (``tpdynamics <command> ...``).

The CLI sits above both ``tpdynamics`` and ``analysis`` (imports point one way:
``tpdynamics_cli -> analysis -> tpdynamics``). Each sub-command is one module with
``add_parser(subparsers)`` and ``run(args) -> int``; :data:`main.SUBCOMMANDS` lists them.
"""

__all__: list[str] = []  # used through the console script (tpdynamics_cli.main:main), not as a library
