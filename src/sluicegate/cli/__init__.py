"""The command line: ``sluicegate serve`` (main.py) and each subsystem's management commands, one module
each (catalog: providers and configs; store: db; vault; access: admin-token; logs), sharing support.py.

Nothing below imports from here: the CLI is the top of the layer rule (docs/architecture.md).
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
