"""Command-line interface of tpdynamics (``tpdynamics <command> ...``).

The CLI sits above both ``tpdynamics`` and ``analysis`` (imports point one way:
``tpdynamics_cli -> analysis -> tpdynamics``). Each sub-command is one module with
``add_parser(subparsers)`` and ``run(args) -> int``; :data:`main.SUBCOMMANDS` lists them.
"""
