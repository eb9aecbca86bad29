"""The dashboard's files (package data under ``static/``): read once at start, served from memory.

Only the files present at start are served, by exact name: no path from a request ever reaches the file
system.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from ..errors import NotFound

TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".png": "image/png"}


def load_assets() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("static")
    found: dict[str, tuple[bytes, str]] = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in TYPES:
            found[item.name] = (item.read_bytes(), TYPES[suffix])
    return found


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def asset_handlers(assets: dict[str, tuple[bytes, str]]) -> tuple[Handler, Handler]:
    def answer(name: str) -> web.Response:
        if name not in assets:
            raise NotFound("Not Found")
        body, content_type = assets[name]
        response = web.Response(body=body, content_type=content_type, charset="utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def index(request: web.Request) -> web.Response:
        return answer("index.html")

    async def static(request: web.Request) -> web.Response:
        return answer(request.match_info["name"])

    return index, static
