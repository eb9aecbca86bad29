"""``GET /dashboard/api/targets``: what this process's load board knows about each least-busy target (in
flight, the queue and KV-cache use its server reports, health, requests), for the Targets page.

Organisation-level sign-ins only (the admin token, organisation keys): the board is keyed by upstream, not by
workspace, and a target may serve several workspaces' configs, so a workspace key is refused (403) rather
than shown a filtered list that could not be told apart from the whole. Nothing secret leaves: the board key's
digest of the upstream's API key is dropped, and the base URL loses any user info, query and fragment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from ..routing.breaker import key_labels
from ..routing.load import TargetView
from ..server.appkeys import GATEWAY
from .guard import Forbidden, current_principal

MAX_ROWS = 500  # as many as /metrics shows: the answer stays small whatever the board holds


def target_rows(views: Iterable[TargetView]) -> list[dict[str, Any]]:
    """The board's views as JSON rows, sorted by provider, host and model (a stable table between polls)."""
    rows = []
    for n, view in enumerate(views):
        if n >= MAX_ROWS:
            break
        provider, _, model = key_labels(view.key)
        rows.append({"provider": provider or None, "base_url": display_url(view.base_url), "model": model or None,
                     "in_flight": view.in_flight, "server_queue": view.server_queue,
                     "cache_usage": view.cache_usage, "healthy": view.healthy, "requests": view.requests})
    rows.sort(key=lambda r: (r["provider"] or "", r["base_url"], r["model"] or ""))
    return rows


def display_url(url: str) -> str:
    """``scheme://host[:port]/path``: a base URL without user info, query or fragment (either could carry a
    credential)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme and host else ""


async def list_targets(request: web.Request) -> web.Response:
    if current_principal(request).workspace_id is not None:
        raise Forbidden("Refused: targets are shared by every workspace; sign in with the admin token "
                        "or an organisation key to see them")
    board = request.config_dict[GATEWAY].dispatcher.board
    body = {"object": "list", "data": target_rows(board.views())}
    return web.Response(body=orjson.dumps(body), content_type="application/json")
