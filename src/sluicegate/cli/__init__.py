"""The command line: ``sluicegate serve`` (main.py) and each subsystem's management commands, one module
each (catalog: providers and configs; store: db; vault; access: admin-token; logs), sharing support.py.

Nothing below imports from here: the CLI is the top of the layer rule (docs/architecture.md).

Both ways in (the ``sluicegate`` script and ``python -m sluicegate``) pass here first, before any library
is loaded, which makes this the place for the process's allocator settings.
"""

import gc
import os

# pyreqwest's Rust core allocates with mimalloc, which by default commits its arenas eagerly: ~7 MB of an
# idle gateway's memory (measured). mimalloc reads this when its library loads, so it must be set before
# anything imports pyreqwest; an operator's own setting wins.
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")

# Importing the gateway builds ~150,000 objects that live as long as the process, and little garbage: the
# collector's passes over them were ~10 % of the start-up's CPU time (measured) for ~0.6 MB they could free.
# So it is off while they load, and they are frozen out of its later passes (serve.py does the same for what
# start-up builds next).
gc.disable()
from .main import build_parser, main  # noqa: E402 - after the allocator setting above

gc.freeze()
gc.enable()

__all__ = ["build_parser", "main"]
