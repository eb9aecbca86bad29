"""The command line: ``sluicegate serve`` (main.py) and each subsystem's management commands, one module
each (catalog: providers and configs; store: db; vault; access: admin-token; logs), sharing support.py.

Nothing below imports from here: the CLI is the top of the layer rule (docs/architecture.md).

Both ways in (the ``sluicegate`` script and ``python -m sluicegate``) pass here first, before any library
is loaded, which makes this the place for the process's allocator settings.
"""

import os

# pyreqwest's Rust core allocates with mimalloc, which by default commits its arenas eagerly: ~7 MB of an
# idle gateway's memory (measured). mimalloc reads this when its library loads, so it must be set before
# anything imports pyreqwest; an operator's own setting wins.
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")

from .main import build_parser, main  # noqa: E402 - after the allocator setting above

__all__ = ["build_parser", "main"]
