"""The query strings of the admin listings: the parameters each takes, each given once and not empty, and
Portkey's paging.

A misspelt filter that is ignored returns every entry, which reads as an answer (``?workspace=team-a`` gave
every workspace's providers), and a parameter given twice was read as its first. The logs API has its own
parser with the same rules (telemetry/params.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import numerals
from ..errors import BadRequest

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100  # the portkey-ai SDK's default for every listing it pages


def checked_query(request: web.Request, known: Sequence[str], *, what: str = "this listing") -> Mapping[str, str]:
    """``request.query``, once each name is one of ``known``, given once, with a value that holds no NUL
    (no id, slug, name or filter does, and PostgreSQL refuses one in a parameter: a 500, not "none found")."""
    query = request.query
    for name in query:
        if name not in known:
            raise BadRequest(f"'{name[:64]}' is not a parameter of {what} (parameters: {', '.join(known)})")
        if len(query.getall(name)) > 1:
            raise BadRequest(f"'{name[:64]}' is given twice; give it once")
        if not query[name]:
            raise BadRequest(f"'{name[:64]}' must not be empty")
        if "\x00" in query[name]:
            raise BadRequest(f"'{name[:64]}' must not hold a NUL character")
    return query


@dataclass(frozen=True)
class Paging:
    """Portkey's ``current_page`` (from 0) and ``page_size``; its workspaces API spells them in camelCase."""

    current_page: str = "current_page"
    page_size: str = "page_size"

    @property
    def names(self) -> tuple[str, str]:
        return self.current_page, self.page_size

    def listing(self, query: Mapping[str, str], entries: list[Any]) -> dict[str, Any]:
        """``{"object": "list", "total": every entry, "data": the asked page}``."""
        page = _whole(query, self.current_page, 0, 10**9, 0)
        size = _whole(query, self.page_size, 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
        return {"object": "list", "total": len(entries), "data": entries[page * size:(page + 1) * size]}


SNAKE_PAGING = Paging()
CAMEL_PAGING = Paging("currentPage", "pageSize")


def _whole(query: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    if name not in query:
        return default
    value = numerals.integer(query[name])
    if value is None or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}")
    return value
