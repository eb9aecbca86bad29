"""The passthrough path: what follows ``/v1`` is appended to the target's base URL, so it must stay below it.

``/v1/../../leak`` appended to ``https://host/openai/v1`` would become ``https://host/leak`` once the
upstream client normalises the URL, carrying the catalog provider's stored credential to a path its owner
never registered. So dot segments (also percent-encoded: ``%2e%2e``) are resolved here, and a path that
climbs above its root is refused. An encoded slash or a backslash next to a dot segment (``..%2f..``) is
refused too: many servers decode them into separators after routing, which would re-open the same door
behind this check. (Encoded slashes alone stay allowed: model ids like ``org%2Fmodel`` hold them.)
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..errors import BadRequest

# Portkey's Admin API under /v1 (the catalog's and access control's routes, and Portkey's /v1/admin): no path
# below these is proxied to a provider.
PORTKEY_ADMIN_PATHS = ("/v1/integrations", "/v1/providers", "/v1/configs", "/v1/admin", "/v1/api-keys",
                       "/v1/audit-logs")
_ADMIN_NAMES = frozenset(path.removeprefix("/v1/") for path in PORTKEY_ADMIN_PATHS)
_SEGMENT_END = re.compile(r"[;?#]")

_SEPARATOR = re.compile(r"%2f|%5c|\\", re.IGNORECASE)
_DOTS = {".": ".", "%2e": ".", "..": "..", ".%2e": "..", "%2e.": "..", "%2e%2e": ".."}

ESCAPES = "Invalid path: '..' segments may not climb above /v1 (the provider's base path)"
SEPARATORS = ("Invalid path: '..' or '.' next to an encoded slash or backslash (%2F, %5C, \\) is not "
              "accepted in a passthrough path")


def passthrough_tail(tail: str) -> str:
    """``/a/./b/../c?q=..`` → ``/a/c?q=..``: dot segments resolved, the query untouched.

    Raises BadRequest for a path that leaves its root or hides a separator next to dots. Cheap on the
    common path: a path without a dot (plain or ``%2e``) cannot hold a dot segment and is returned as is.
    """
    path, mark, query = tail.partition("?")
    if "." not in path and "%2e" not in path.lower():
        return tail
    return _without_dot_segments(path) + mark + query


def _without_dot_segments(path: str) -> str:
    kept: list[str] = []
    segments = path.split("/")[1:]  # the path starts with "/"
    for segment in segments:
        if _SEPARATOR.search(segment) and any(part.lower() in _DOTS for part in _SEPARATOR.split(segment)):
            raise BadRequest(SEPARATORS)
        dots = _DOTS.get(segment.lower())
        if dots == "..":
            if not kept:
                raise BadRequest(ESCAPES)
            kept.pop()
        elif dots is None:
            kept.append(segment)
    trailing = "/" if segments and segments[-1].lower() in _DOTS else ""
    return "/" + "/".join(kept) + (trailing if kept else "")


def reaches_admin_api(tail: str) -> bool:
    """Would ``tail`` (what follows ``/v1``) name a path below Portkey's Admin API once an upstream decodes and
    normalises it? ``/./admin``, ``/x/../configs``, ``/admin%2Fx``, ``/configs;x``, ``//api-keys``: the
    router matches none of them to the reserved routes, and a server behind the gateway may read each as
    ``/v1/admin/…``. Read the widest way (escapes decoded, dot and empty segments dropped, a segment cut at
    ``;``, ``?`` or ``#``, any case): a false alarm costs a 404 on a path no provider serves."""
    decoded = unquote(tail.partition("?")[0]).replace("\\", "/")
    kept: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    return bool(kept) and _SEGMENT_END.split(kept[0], maxsplit=1)[0].lower() in _ADMIN_NAMES
