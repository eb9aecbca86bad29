"""JSON documents with one member replaced: the cases of the tests that no JSON a client or an upstream sends
reaches a 500 (each field of a valid document, given a value of another type in turn)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path in a JSON document: the root's (``()``) first, then each member's and item's, depth first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def fields(value: Any) -> list[tuple]:
    """Every path but the root's: what can be replaced inside the document."""
    return list(paths(value))[1:]


def replaced(value: Any, path: tuple, new: Any) -> Any:
    """A deep copy of ``value`` with what is at ``path`` replaced by ``new`` (``()``: ``new`` itself)."""
    if not path:
        return new
    out = copy.deepcopy(value)
    holder = out
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = new
    return out
