"""Subcommands of the ``zapvisor`` CLI, one module each.

A command module provides two things, and `api.cli.COMMANDS` lists the modules:

- ``add_parser(subparsers)``: adds its subparser (help, arguments) and sets
  ``handler=<function>`` as a parser default;
- the handler, ``(args: argparse.Namespace) -> int``, returning the process exit code.
  It may raise `config.ConfigError`; the CLI turns that into exit code 2.

Handlers import what they run (the daemon, an HTTP client...) inside the function, so that
``zapvisor --help`` and light commands do not pay for loading the whole runtime.
"""
